"""The command line: parses, calls the Python API, prints. Nothing else lives here.

    sparsebench run --preset quick --store q.db
    sparsebench list --store q.db
    sparsebench report --store q.db --out rep
    sparsebench export --store q.db --format csv --out trials.csv
    sparsebench data fetch mnist --data-dir data
"""
# Every command is also a Python call: run, load_results, load_curves, list_experiments,
# export_table (sparsebench.api), write_report (sparsebench.report), data_status (sparsebench.data.registry) and
# fetch_dataset (sparsebench.data.fetch).

from __future__ import annotations

import argparse
import dataclasses
import math
import shlex
import signal
import sys
import threading
import tomllib
import typing
import warnings
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

from .errors import SparsebenchError, StoreError, invalid

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a process stopped by Ctrl-C
EXIT_TERMINATED = 143  # 128 + SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, Slurm pre-emption, ``docker stop``), raised in the main thread.

    A KeyboardInterrupt, so that everything that rolls back and cleans up after
    Ctrl-C does the same for it.
    """


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse echoes unrecognized arguments raw: keep a line break in one from splitting the error.
        self.exit(EXIT_USAGE, f"sparsebench: error: {' '.join(message.splitlines())}\n")


def _finite(kind: Callable[[str], Any], text: str) -> Any:
    """``kind(text)``; a ValueError also for text that reads as an infinite or NaN float ('1e400', 'nan'),
    so that the error echoes what was typed, not the ``inf`` it became."""
    value = kind(text)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    return value


def _list_of(kind: Callable[[str], Any], name: str, allowed: str, may_be_empty: bool = False) -> Callable[[str], tuple]:
    def parse(text: str) -> tuple:
        if may_be_empty and not text.strip():
            return ()
        items = [t.strip() for t in text.split(",")]
        if not text.strip() or any(not t for t in items):
            raise argparse.ArgumentTypeError(str(invalid(name, text, allowed)))
        try:
            return tuple(_finite(kind, t) for t in items)
        except ValueError:
            raise argparse.ArgumentTypeError(str(invalid(name, text, allowed))) from None

    return parse


def method_param(text: str) -> tuple[str, str, Any]:
    """``--method-param LABEL.KEY=VALUE`` as ``(label, key, value)``; VALUE reads as a TOML value, else as text.

    >>> method_param("snip.batches=4"), method_param("rs-acc.score=accuracy")
    (('snip', 'batches', 4), ('rs-acc', 'score', 'accuracy'))
    """
    target, equals, value_text = text.partition("=")
    label, dot, key = target.strip().rpartition(".")
    if not equals or not dot or not label or not key.isidentifier():
        raise argparse.ArgumentTypeError(str(invalid("--method-param", text, "LABEL.KEY=VALUE, e.g. snip.batches=4")))
    try:
        value = tomllib.loads(f"v = {value_text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = value_text.strip()
    return label, key, value


def labelled_methods(methods: tuple[str, ...] | None) -> Any:
    """``--methods`` items: plain names as they are; with a ``LABEL=NAME`` among them, label tables.

    >>> labelled_methods(("random", "rs-acc=random-search"))
    {'random': {}, 'rs-acc': {'method': 'random-search'}}
    """
    if methods is None or not any("=" in m for m in methods):
        return methods
    tables: dict[str, dict[str, str]] = {}
    for item in methods:
        label, equals, name = (part.strip() for part in item.partition("="))
        if label in tables:
            raise invalid("methods", ",".join(methods), f"distinct labels ({label!r} is given twice)")
        tables[label] = {"method": name} if equals else {}
    return tables


def _number(kind: Callable[[str], Any], name: str, allowed: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            return _finite(kind, text)
        except ValueError:
            raise argparse.ArgumentTypeError(str(invalid(name, text, allowed))) from None

    return parse


def config_flag_fields(config_class: type | None = None) -> list[dataclasses.Field]:
    """The config fields that are ``run`` flags: all but those whose metadata says ``flag: False``."""
    from .config import ExperimentConfig

    return [f for f in dataclasses.fields(config_class or ExperimentConfig) if f.metadata.get("flag", True)]


def flag_name(field: dataclasses.Field) -> str:
    """``--batch-size`` for ``batch_size``."""
    return "--" + field.name.replace("_", "-")


#: How each field type reads from the command line: the parser of one item, and what an error says is allowed.
_ITEM_KINDS: dict[type, tuple[Callable[[str], Any], str]] = {int: (int, "an integer"), float: (float, "a number"), str: (str, "a name")}


def _flag_type(field: dataclasses.Field, hint: Any) -> Callable[[str], Any] | None:
    """The argparse ``type`` of a config field's flag, from its type (or ``flag_type``) and ``allowed``.

    ``tuple[X, ...]`` fields take comma-separated lists; ``X | None`` fields take an ``X``;
    numbers must be finite; strings are taken as typed (the config checks them).
    """
    hint = field.metadata.get("flag_type", hint)
    name = field.name.replace("_", "-")
    if type(None) in typing.get_args(hint):  # X | None: the flag takes an X
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    item = next((a for a in typing.get_args(hint) if a is not Ellipsis), hint)
    kind, allowed = _ITEM_KINDS[item]
    if typing.get_origin(hint) is tuple:
        return _list_of(kind, name, field.metadata.get("allowed", f"comma-separated values, each {allowed}"),
                        field.metadata.get("may_be_empty", False))
    return None if kind is str else _number(kind, name, field.metadata.get("allowed", allowed))


def _flag_help(field: dataclasses.Field) -> str:
    """The field's help and its default (where it has one of its own; choices show in the metavar)."""
    text = field.metadata["help"]
    default = field.default if field.default is not dataclasses.MISSING else field.default_factory()  # type: ignore[misc]
    if default is not None:
        if field.metadata.get("flag_type") is int and isinstance(default, tuple):
            default = len(default)  # a count of seeds
        shown = ",".join(map(_plain, default)) if isinstance(default, tuple) else _plain(default)
        text += f" (default: {shown})"
    return text.replace("%", "%%")  # argparse formats help with %


def _plain(value: Any) -> str:
    """A default as a user would type it: 0 rather than 0.0."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per config field, generated from the field's type and metadata (see ``ExperimentConfig``)."""
    from .config import ExperimentConfig

    hints = typing.get_type_hints(ExperimentConfig)
    group = parser.add_argument_group("experiment config (each flag is also a --config key)")
    for field in config_flag_fields():
        choices = field.metadata.get("choices")
        metavar = field.metadata.get("metavar") or ("{" + ",".join(choices) + "}" if choices else field.name.upper())
        if hints[field.name] is bool:  # --batchnorm / --no-batchnorm
            group.add_argument(flag_name(field), dest=field.name, action=argparse.BooleanOptionalAction, default=None,
                               help=_flag_help(field))
            continue
        group.add_argument(flag_name(field), dest=field.name, type=_flag_type(field, hints[field.name]), metavar=metavar,
                           help=_flag_help(field))


def build_parser() -> argparse.ArgumentParser:
    from .config import PRESETS

    parser = _Parser(prog="sparsebench", description="Random Search baseline for sparse neural network architecture search.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run or resume an experiment", description="Run or resume an experiment. Flags override --config, which overrides --preset.")
    run.add_argument("--preset", metavar="NAME", help=f"{' or '.join(PRESETS)}; quick is the defaults below")
    run.add_argument("--config", metavar="FILE", help="TOML file with config keys and a [parent] table (see README)")
    add_config_flags(run)
    run.add_argument("--method-param", dest="method_params", action="append", type=method_param, metavar="LABEL.KEY=VALUE",
                     help="set a parameter of the method labelled LABEL (repeatable), VALUE as in TOML (bare words are "
                          "text): --method-param snip.batches=4; with --methods rs-acc=random-search, "
                          "--method-param rs-acc.score=accuracy")
    run.add_argument("--store", default="sparsebench.db", metavar="PATH", help="SQLite results file (default: sparsebench.db)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--dry-run", action="store_true",
                     help="print the plan (work groups, trials, candidates, FLOPs) and an estimated time from a short "
                          "calibration on this machine; nothing is trained, no store is created or changed")
    add_executor_flags(run)

    lst = sub.add_parser("list", help="list experiments in a store, or the available names")
    lst.add_argument("--store", default="sparsebench.db", metavar="PATH")
    lst.add_argument("--names", action="store_true", help="list datasets, methods and presets instead")

    rep = sub.add_parser("report", help="write report.html and report.md (with figures) for an experiment")
    rep.add_argument("--store", default="sparsebench.db", metavar="PATH")
    rep.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    rep.add_argument("--experiment", type=_number(int, "experiment", "an experiment id"), metavar="ID", help="default: the latest")
    rep.add_argument("--margin", type=_number(float, "margin", f"a number of percentage points in (0, {MAX_MARGIN_PP:g}]"), default=1.0, metavar="PP",
                     help="equivalence margin in percentage points of accuracy (default 1)")
    rep.add_argument("--threshold", type=_number(float, "threshold", "a fraction in (0, 1]"), default=0.95, metavar="F",
                     help="convergence: epochs to F x the dense parent's final validation accuracy (default 0.95)")

    data = sub.add_parser("data", help="the dataset files in the data folder")
    data_sub = data.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    data_list = data_sub.add_parser("list", help="each file dataset: whether its files are present, their size and where")
    data_list.add_argument("--data-dir", metavar="DIR", help="the data folder (default: $SPARSEBENCH_DATA, else ~/.cache/sparsebench/data)")
    data_fetch = data_sub.add_parser("fetch", help="download a dataset's official files, check their sha256, unpack them",
                                     description="Download NAME's official files into the data folder (checked against "
                                                 "the sha256 pinned in sparsebench; files already there and correct are "
                                                 "not fetched again).")
    data_fetch.add_argument("name", metavar="NAME", help="mnist, fashion-mnist, cifar10 or cifar100")
    data_fetch.add_argument("--data-dir", metavar="DIR", help="the data folder (default: $SPARSEBENCH_DATA, else ~/.cache/sparsebench/data)")
    data_fetch.add_argument("--url-base", metavar="URL", help="a mirror holding the same file names (default: the official location)")
    data_fetch.add_argument("--no-progress", action="store_true", help="no progress bar")

    exp = sub.add_parser("export", help="write trials (or per-epoch curves) as csv, parquet or json")
    exp.add_argument("--store", default="sparsebench.db", metavar="PATH")
    exp.add_argument("--format", help="csv, parquet or json (default: from the --out extension)")
    exp.add_argument("--out", required=True, metavar="FILE")
    exp.add_argument("--experiment", type=_number(int, "experiment", "an experiment id"), metavar="ID", help="default: all")
    exp.add_argument("--curves", action="store_true", help="one row per (trial, epoch) instead of per trial")
    exp.add_argument("--timings", action="store_true", help="add train_seconds and selection_seconds to trial rows (differ from run to run)")
    exp.add_argument("--threshold", type=_number(float, "threshold", "a fraction in (0, 1]"), default=0.95, metavar="F",
                     help="convergence: epochs to F x the dense parent's final validation accuracy (default 0.95)")

    mrg = sub.add_parser("merge", help="copy the experiments of several stores into one",
                         description="Copy experiments, trials and candidates of several stores into one, without duplicates; "
                                     "experiments differing only in seeds, sparsities or methods also give their union experiment "
                                     "when together they hold all its trials. A failed merge changes nothing.")
    mrg.add_argument("stores", nargs="+", metavar="STORE", help="sparsebench stores to merge (read only)")
    mrg.add_argument("--into", required=True, metavar="PATH", help="the store merged into (created if missing)")
    return parser


def _cmd_merge(args: argparse.Namespace) -> int:
    from .merge import merge_stores

    report = merge_stores(args.stores, args.into)
    print("\n".join(report.lines(args.into)))
    return 0


def add_executor_flags(parser: argparse.ArgumentParser) -> None:
    """How the work is run: not part of the experiment's identity (any executor resumes any other's run)."""
    group = parser.add_argument_group("executor (not part of the experiment's identity)")
    group.add_argument("--executor", choices=("local", "ray"), default="local",
                       help="local: in this process (default); ray: each work group a Ray task (pip install \"sparsebench[ray]\")")
    group.add_argument("--ray-address", metavar="ADDRESS",
                       help="auto: the Ray cluster this machine belongs to; HOST:PORT or ray://HOST:PORT: that cluster "
                            "(default: start a local Ray instance)")
    group.add_argument("--ray-num-cpus", type=_number(int, "ray-num-cpus", "an integer >= 1"), metavar="N",
                       help="CPUs each task asks for, and its torch threads (default: 1; OMP_NUM_THREADS=N with the local "
                            "executor stores the same numbers)")
    group.add_argument("--ray-num-gpus", type=_number(float, "ray-num-gpus", "a number >= 0"), metavar="G",
                       help="GPUs each task asks for (default: 1 with --device cuda, else 0)")
    group.add_argument("--ray-runtime-env", metavar="JSON",
                       help='Ray runtime environment of the tasks, how plug-ins reach the workers: '
                            '\'{"py_modules": ["my_methods.py"]}\' or \'{"working_dir": "."}\'')
    group.add_argument("--ray-max-retries", type=_number(int, "ray-max-retries", "an integer >= 0"), metavar="N",
                       help="runs of a task again after its worker process died (default: 3)")


def executor_from_args(args: argparse.Namespace, device: str) -> Any:
    """The executor ``--executor`` and the ``--ray-*`` flags describe (a ``--ray-*`` flag without ``--executor ray`` is refused)."""
    from .execution import make_executor

    ray_flags = {name: getattr(args, f"ray_{name}") for name in ("address", "num_cpus", "num_gpus", "runtime_env", "max_retries")}
    given = [f"--ray-{name.replace('_', '-')}" for name, value in ray_flags.items() if value is not None]
    if args.executor != "ray":
        if given:
            raise invalid("executor", args.executor, f"ray with {', '.join(given)} (the --ray-* flags set the Ray executor)")
        return make_executor(args.executor)
    from .execution.ray import runtime_env_from_json

    options = {name: value for name, value in ray_flags.items() if value is not None}
    if "runtime_env" in options:
        options["runtime_env"] = runtime_env_from_json(options["runtime_env"])
    if "num_gpus" not in options and device == "cuda":
        options["num_gpus"] = 1
    return make_executor("ray", **options)


def _cmd_run(args: argparse.Namespace) -> int:
    from . import summary
    from .config import ExperimentConfig
    from .runner import run

    overrides = {f.name: getattr(args, f.name) for f in config_flag_fields()}
    overrides["methods"] = labelled_methods(overrides["methods"])
    overrides["method_params"] = args.method_params
    if args.store == ":memory:":
        raise invalid("store", args.store, "a file path (an in-memory store keeps nothing; the Python API accepts ':memory:')")
    cfg = ExperimentConfig.from_sources(preset=args.preset, toml_path=args.config, overrides=overrides)
    if args.dry_run:
        from .dry_run import dry_run, format_dry_run

        print(format_dry_run(dry_run(cfg, store=args.store)))
        return 0
    executor = executor_from_args(args, cfg.device)
    trials = run(cfg, store=args.store, progress=not args.no_progress, executor=executor)
    experiment = int(trials["experiment_id"].iloc[0]) if len(trials) else None
    chance = None if experiment is None else chance_accuracy(args.store, experiment)
    print(summary.format_summary(trials, chance_acc=chance))
    reused = reused_count(trials)
    if reused:
        print(f"reused {reused} of its {len(trials)} trials from other experiments in {args.store} (same identity, data and environment)",
              file=sys.stderr)
    print(f"stored in {args.store}; next: {report_command(args.store, experiment)}", file=sys.stderr)
    return 0


def reused_count(trials: Any) -> int:
    """Trials of an experiment that another experiment's run trained (reused, not trained by its own runs)."""
    if "trained_in" not in trials:
        return 0
    return int((trials["trained_in"] != trials["config_hash"]).sum())


def data_rows(fingerprint: str | None, stats: dict) -> dict[str, str]:
    """What the report's setup table says of the data an experiment ran on (nothing for old stores)."""
    rows = {}
    if fingerprint:
        rows["data fingerprint (sha256)"] = fingerprint
    if stats:
        sizes = ", ".join(f"{split} {stats[f'n_{split}']}" for split in ("train", "val", "monitor", "test") if f"n_{split}" in stats)
        rows["data splits (rows)"] = sizes
        if "chance_acc" in stats:
            rows["chance accuracy"] = f"{100 * stats['chance_acc']:.1f}% (the best constant prediction)"
    return rows


def chance_accuracy(store: str, experiment: int) -> float | None:
    """The experiment's recorded chance accuracy (None for experiments stored before schema 4)."""
    from .store import Store

    with Store(store, create=False) as st:
        return st.data_identity(experiment)[1].get("chance_acc")


def program() -> list[str]:
    """How this sparsebench was started, as words that start it again from the same folder.

    The entry point as typed (``sparsebench`` when that is what the PATH finds,
    else the path it was run by), or ``python -m sparsebench.cli``; "sparsebench"
    when ``main`` is called from other Python code.
    """
    import os
    import shutil

    argv0 = sys.argv[0] if sys.argv else ""
    name = os.path.basename(argv0)
    if name in ("cli.py", "__main__.py") and os.path.basename(os.path.dirname(os.path.abspath(argv0))) == "sparsebench":
        return [sys.executable, "-m", "sparsebench.cli"]
    if not name.startswith("sparsebench"):
        return ["sparsebench"]
    found = shutil.which(name)
    if found and os.path.realpath(found) == os.path.realpath(argv0):
        return [name]
    return [argv0]


def report_command(store: str, experiment: int | None) -> str:
    """The command that writes the report of ``experiment``, ready to paste into a shell."""
    words = [*program(), "report", "--store", store]
    if experiment is not None:
        words += ["--experiment", str(experiment)]
    return shlex.join([*words, "--out", "report"])


def _cmd_list(args: argparse.Namespace) -> int:
    if args.names:
        from .config import PRESETS, parent_names
        from .data.registry import dataset_names
        from .methods.registry import method_names

        print("datasets:", ", ".join(dataset_names()))
        print("parents: ", ", ".join(parent_names()))
        print("methods: ", ", ".join(method_names()))
        print("presets: ", ", ".join(PRESETS))
        return 0
    from .api import list_experiments

    table = list_experiments(args.store).drop(columns="complete", errors="ignore")  # the status says it
    print(table.to_string(index=False) if not table.empty else "no experiments")
    return 0


def _latest_experiment(store: str) -> int:
    from .api import list_experiments

    table = list_experiments(store)
    if table.empty:
        raise StoreError(f"store: {store!r} holds no experiment yet; allowed: a store written by `sparsebench run`")
    return int(table["experiment"].max())


def _check_threshold(value: float) -> None:
    if not 0 < value <= 1:
        raise invalid("threshold", value, "a fraction in (0, 1]")


#: The widest equivalence margin `report` accepts, in percentage points: a wider one would call
#: networks "equivalent" that differ by more than half the accuracy scale.
MAX_MARGIN_PP = 50.0


def _check_margin(value: float) -> None:
    if not 0 < value <= MAX_MARGIN_PP:
        raise invalid("margin", value, f"a number of percentage points in (0, {MAX_MARGIN_PP:g}]")


#: The report's words for what an experiment records of its computing environment besides versions.
SOFTWARE_ROW_NAMES = {"threads": "intra-op threads", "mkl_cbwr": "MKL reproducibility mode (MKL_CBWR)",
                      "kernels": "PyTorch kernels"}


def software_rows(software: dict) -> dict:
    """The report's setup rows of an experiment's software record: "torch version", "intra-op threads", ...

    >>> software_rows({"torch": "2.13.0", "threads": 2})
    {'torch version': '2.13.0', 'intra-op threads': 2}
    """
    return {SOFTWARE_ROW_NAMES.get(name, f"{name} version"): value for name, value in software.items()}


def _cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .api import list_experiments, load_curves, load_results
    from .report import write_report
    from .store import Store

    _check_margin(args.margin)
    _check_threshold(args.threshold)
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise invalid("out", args.out, "a folder (created if missing), not an existing file")
    experiment = args.experiment if args.experiment is not None else _latest_experiment(args.store)
    _check_report_out(args.out, args.store)
    with Store(args.store, create=False) as st:
        config = st.config(experiment)
        software = st.software(experiment)
        fingerprint, stats = st.data_identity(experiment)
    config = {**config, **software_rows(software), **data_rows(fingerprint, stats)}
    trials, curves = load_results(args.store, experiment), load_curves(args.store, experiment)
    if trials.empty:
        raise StoreError(f"experiment {experiment} has no finished trials yet; allowed: resume it with `sparsebench run` first")
    progress = list_experiments(args.store).set_index("experiment").loc[experiment]
    notice = None
    if not progress["complete"]:
        from .summary import incomplete_notice

        notice = incomplete_notice(config, trials)  # names the sparsities and methods still pending
        print(f"sparsebench: warning: experiment {experiment} is incomplete ({progress['trials']} trials)", file=sys.stderr)
    _make_folder(args.out)
    try:
        paths = write_report(trials, curves, config, args.out, margin=args.margin / 100, fraction=args.threshold, notice=notice,
                             chance_acc=chance_accuracy(args.store, experiment))
    except OSError as exc:
        raise _cannot_write("out", args.out, exc, "a folder that can be written") from None
    print(f"experiment {experiment}: wrote {paths['html']} and {paths['markdown']} ({len([k for k in paths if k.startswith('figure:')])} figures)")
    return 0


REPORT_FILES = ("report.html", "report.md", "figures")


def _check_report_out(out: str, store: str) -> None:
    """Refuse a report folder whose files would be written over the store (or its -wal or -shm)."""
    import os

    from .store import is_store_file, store_file_paths

    if "\x00" in out:
        raise invalid("out", out, "a folder path without NUL characters")
    folder = os.path.realpath(out)
    targets = [folder, *(os.path.join(folder, name) for name in REPORT_FILES)]
    figures = os.path.realpath(os.path.join(folder, "figures"))
    # Every file under figures/ may be written or removed as a stale figure.
    try:
        targets += [os.path.join(figures, name) for name in os.listdir(figures)]
    except OSError:
        pass  # no such folder yet (or unreadable: then writing into it fails in one line too)
    inside_figures = any(f.startswith(figures + os.sep) for f in store_file_paths(store))
    if inside_figures or any(is_store_file(t, store) for t in targets):
        raise invalid("out", out, f"a folder where the report's files ({', '.join(REPORT_FILES)}) "
                                  f"do not overwrite the store {store!r} or its -wal/-shm files")


def _make_folder(out: str) -> None:
    """Create the report's folder (and its parents), or say in one line why it cannot be."""
    import os

    try:
        os.makedirs(out, exist_ok=True)
    except OSError as exc:
        raise _cannot_write("out", out, exc, "a folder that can be created and written") from None


def _cannot_write(parameter: str, path: str, exc: OSError, allowed: str):
    from .errors import ConfigError, show

    reason = exc.strerror or str(exc)
    return ConfigError(f"{parameter}: cannot write {show(path)} ({reason}); allowed: {allowed}")


EXPORT_FORMATS = ("csv", "parquet", "json")


def _cmd_export(args: argparse.Namespace) -> int:
    import os
    import stat
    import tempfile
    from pathlib import Path

    from .api import export_table

    if Path(args.out).is_dir():
        raise invalid("out", args.out, "a file path, not a directory")
    from .store import is_store_file

    if is_store_file(args.out, args.store):
        raise invalid("out", args.out, f"a file other than the store {args.store!r} and its -wal/-shm files")
    if args.format is None:
        suffix = Path(args.out).suffix.lower().lstrip(".")
        if suffix not in EXPORT_FORMATS:
            raise invalid("out", args.out, "a file ending in ." + ", .".join(EXPORT_FORMATS) + ", or --format to say which")
        args.format = suffix
    args.format = args.format.lower()
    if args.format not in EXPORT_FORMATS:
        raise invalid("format", args.format, "one of " + ", ".join(EXPORT_FORMATS))
    if args.timings and args.curves:
        raise invalid("timings", "with --curves", "--timings on trial rows only (export without --curves)")
    if args.format == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise invalid("format", "parquet", "csv or json (parquet needs pyarrow: pip install 'sparsebench[parquet]')") from None
    out = Path(args.out)
    if not out.parent.is_dir():
        raise invalid("out", str(out), "a file path in an existing directory")
    _check_threshold(args.threshold)
    if args.experiment is not None:
        from .store import Store

        with Store(args.store, create=False) as st:
            st.config(args.experiment)  # refuses an unknown id
    table = export_table(args.store, args.experiment, curves=args.curves, timings=args.timings, fraction=args.threshold)
    # Write beside the target and rename: an existing file is replaced whole or not at all.
    try:
        fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    except OSError as exc:
        raise _cannot_write("out", args.out, exc, "a file path in a folder that can be written") from None
    os.close(fd)
    try:
        if args.format == "csv":
            table.to_csv(tmp, index=False)
        elif args.format == "parquet":
            table.to_parquet(tmp, index=False)
        else:
            table.to_json(tmp, orient="records", indent=1, double_precision=15)
        # mkstemp makes the file private: give it the mode the replaced file had, or an ordinary file's.
        os.chmod(tmp, stat.S_IMODE(out.stat().st_mode) if out.is_file() else 0o666 & ~_umask())
        os.replace(tmp, out)
    except OSError as exc:
        raise _cannot_write("out", args.out, exc, "a file path in a folder that can be written") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    print(f"wrote {len(table)} rows to {out}")
    return 0


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


def _cmd_data(args: argparse.Namespace) -> int:
    from .data.files import resolve_data_dir
    from .data.registry import data_status

    folder, origin = resolve_data_dir(args.data_dir)
    print(f"data folder: {folder} (from {origin})")
    if args.data_command == "fetch":
        from .data.fetch import fetch_dataset

        fetch_dataset(args.name, args.data_dir, args.url_base, progress=not args.no_progress, say=lambda line: print(line, flush=True))
        return 0
    for row in data_status(args.data_dir):
        size = f"{row['bytes'] / 1e6:.1f} MB" if row["status"] == "present" else "-"
        missing = f" (not found: {', '.join(row['missing'])})" if row["missing"] else ""
        print(f"{row['dataset']:<16} {row['status']:<8} {size:>9}  {row['where']}{missing}")
    return 0


COMMANDS = {"run": _cmd_run, "list": _cmd_list, "report": _cmd_report, "export": _cmd_export, "data": _cmd_data,
            "merge": _cmd_merge}


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """sparsebench's own warnings as one plain line; others as Python shows them."""
    from .errors import SparsebenchWarning

    if issubclass(category, SparsebenchWarning):
        print(f"sparsebench: warning: {message}", file=sys.stderr)
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


_default_showwarning = warnings.showwarning


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """While a command runs, SIGTERM raises ``Terminated``; the previous handler is restored after.

    Only the command line does this: the Python API leaves a program's signal
    handlers alone. (Signal handlers can be set in the main thread only.)
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    warnings.showwarning = _show_warning
    args = build_parser().parse_args(argv)
    try:
        with _sigterm_as_interrupt():
            return COMMANDS[args.command](args)
    except SparsebenchError as exc:
        print(f"sparsebench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as exc:
        code = EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED
        how = "terminated" if isinstance(exc, Terminated) else "interrupted"
        if args.command != "run":
            print(f"\nsparsebench: {how}", file=sys.stderr)
            return code
        command = shlex.join([*program(), *(sys.argv[1:] if argv is None else argv)])
        print(f"\nsparsebench: {how}; finished work groups are stored. Resume with the same command: {command}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
