"""The experiment config: one frozen dataclass, its presets, validation and hash.

Precedence, lowest first: the dataclass defaults (equal to the ``quick``
preset), a preset, a TOML file, explicit overrides (CLI flags or keyword
arguments). The hash of the validated config names the experiment in the
store, which is what makes a run resumable.

>>> cfg = ExperimentConfig.from_sources(preset="quick", overrides={"epochs": 3})
>>> cfg.epochs, cfg.dataset
(3, 'mnist1d')
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

from .errors import ConfigError, invalid, show
from .names import DENSE, FLAT_PROBE_METHODS, RANDOM, RANDOM_SEARCH, SCORES

if TYPE_CHECKING:
    from .engine.common import TrainSettings

ACTIVATIONS = ("relu", "tanh", "gelu")
OPTIMIZERS = ("adam", "sgd")
ENGINES = ("stacked", "reference")
STANDARDIZATIONS = ("none", "feature", "channel")
#: Training augmentations (``data/augment.py``).
AUGMENTATIONS = ("none", "crop-flip")

#: Values of the fields added after the first stores were written, at which they
#: reproduce the older behaviour. ``config_hash`` leaves a field out while it has
#: this value, so an experiment stored before the field existed keeps its hash
#: (and resumes) when the field is set to it.
LEGACY_VALUES: dict[str, Any] = {"patience": 0, "monitor_fraction": 0.0, "standardize": "feature", "parent": "mlp",
                                  "fc": [], "batchnorm": False, "train_limit": None, "method_specs": [],
                                  "augment": "none"}
DEVICES = ("cpu", "cuda")
#: The keys of a ``[parent]`` table and the config fields they set: the family, and its options.
PARENT_TABLE = {"family": "parent", "hidden": "hidden", "activation": "activation", "fc": "fc", "batchnorm": "batchnorm"}
#: Each optimizer's learning rate when none is given: Adam's usual 1e-3; SGD's (momentum 0.9)
#: usual 0.1. Measured with the quick preset (2 seeds, dense and random): SGD at 0.1 reaches
#: 65%/64%/51%/28% on mnist1d at sparsity 0/0.5/0.9/0.98 (Adam 61/55/41/30); at 0.01 it
#: leaves 0.98 at chance, and at Adam's 1e-3 even the dense parent stays near chance (21%).
DEFAULT_LR = {"adam": 1e-3, "sgd": 0.1}
#: Sparsities are shown with 6 significant digits (``:g``): a larger one would read as 1.
MAX_SPARSITY = 0.9999995


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that determines an experiment's numbers.

    Each field is also a ``sparsebench run`` flag (``--batch-size`` for ``batch_size``), generated
    from its metadata: ``help``; optionally ``metavar``, ``choices`` (shown in the help; checked
    here, in ``_validate``), ``allowed`` (what a flag's parse error says is allowed),
    ``flag_type`` (the flag's type when it differs from the field's: ``seeds`` takes a count),
    ``may_be_empty: True`` for a list flag that takes "" as the empty list,
    ``flag: False`` for a field that is not a flag, and ``hashed: False`` for a field that is not part
    of the experiment's identity (``config_hash`` leaves it out: where the data lies, not what it is).
    """

    dataset: str = field(default="mnist1d", metadata={
        "help": "mnist1d, digits, mnist, fashion-mnist, cifar10, cifar100 (read from --data-dir), npz:PATH, csv:PATH, "
                "a plug-in's name or module:loader; `sparsebench list --names` lists them", "metavar": "NAME"})
    data_dir: str | None = field(default=None, metadata={
        "help": "the folder of the dataset files (default: $SPARSEBENCH_DATA, else ~/.cache/sparsebench/data); "
                "not part of the experiment's identity (the data fingerprint is)", "metavar": "DIR", "hashed": False})
    parent: str = field(default="mlp", metadata={
        "help": "the parent network's family; `sparsebench list --names` lists them", "metavar": "NAME"})
    hidden: tuple[int, ...] | None = field(default=None, metadata={
        "help": "widths of the parent's node layers (the MLP's hidden layers, a CNN's conv channels) "
                "(default: the family's: mlp 256,256,256; cnn1d 128,128,128; cnn 64,64,128,128)",
        "metavar": "W1,W2,...", "allowed": "comma-separated positive integers"})
    fc: tuple[int, ...] | None = field(default=None, metadata={
        "help": "widths of a CNN's hidden fully connected layers, also node layers; \"\" for none (default: cnn 256,256; cnn1d none)",
        "metavar": "W1,W2,...", "allowed": "comma-separated positive integers, or \"\" for none", "may_be_empty": True})
    batchnorm: bool = field(default=False, metadata={"help": "BatchNorm after each convolution of a CNN parent"})
    activation: str = field(default="relu", metadata={"help": "hidden activation", "choices": ACTIVATIONS})
    seeds: tuple[int, ...] = field(default=tuple(range(10)), metadata={
        "help": "run seeds 0..N-1 (a --config file may also list them); each gives a parent initialization and a minibatch order",
        "metavar": "N", "flag_type": int, "allowed": "an integer >= 1 (seeds 0..N-1)"})
    sparsities: tuple[float, ...] = field(default=(0.5, 0.9, 0.98), metadata={
        "help": "fractions of nodes (neurons, channels) removed per node layer, each in [0, 1)", "metavar": "S1,S2,...",
        "allowed": "comma-separated numbers in [0, 1)"})
    methods: tuple[str, ...] = field(default=(DENSE, RANDOM, RANDOM_SEARCH), metadata={
        "help": "mask-choosing methods: registered names or module:Class, each also LABEL=NAME (a second copy of a "
                "method under its own label; set its parameters with --method-param); results call each by its label",
        "metavar": "M1,M2,...", "allowed": "comma-separated method names (or LABEL=NAME)"})
    #: The methods that have a label other than their name or parameters: ``(label, registered name,
    #: canonical JSON of the parameters away from their defaults)``, sorted by label; the others are
    #: plain names at their defaults. Empty (and so left out of the hash) for a config of plain names.
    method_specs: tuple[tuple[str, str, str], ...] = field(default=(), metadata={
        "help": "labelled methods and their parameters ([methods.LABEL] tables)", "flag": False,
        "section_default": True})
    candidates: int = field(default=100, metadata={
        "help": "K, candidates sampled and scored by a search method", "metavar": "K", "allowed": "an integer >= 1"})
    score: str = field(default="loss", metadata={
        "help": "how a search method ranks untrained candidates: loss (lower is better), accuracy, or a "
                "training-free score: naswot (log), jacob-cov, grad-norm, synflow (log) (higher is better)",
        "choices": SCORES})
    probe: int = field(default=0, metadata={
        "help": "also train N other scored random-search candidates per (seed, sparsity), to test if the score "
                "predicts trained accuracy (another search: probe in its [methods.LABEL] table)",
        "metavar": "N", "allowed": "an integer >= 0"})
    epochs: int = field(default=200, metadata={
        "help": "the most training epochs; patience may stop a network earlier", "metavar": "E", "allowed": "an integer >= 1"})
    patience: int = field(default=30, metadata={
        "help": "stop a network once its validation accuracy has not improved for P epochs (0: train every epoch)",
        "metavar": "P", "allowed": "an integer >= 0"})
    batch_size: int = field(default=100, metadata={"help": "minibatch size", "metavar": "B", "allowed": "an integer >= 1"})
    optimizer: str = field(default="adam", metadata={"help": "adam, or sgd with momentum", "choices": OPTIMIZERS})
    lr: float | None = field(default=None, metadata={
        "help": "learning rate (default: the optimizer's own, adam 1e-3, sgd 0.1)", "metavar": "LR", "allowed": "a number > 0"})
    momentum: float = field(default=0.9, metadata={
        "help": "SGD momentum (ignored by adam)", "metavar": "M", "allowed": "a number in [0, 1)"})
    weight_decay: float = field(default=0.0, metadata={"help": "L2 weight decay", "metavar": "WD", "allowed": "a number >= 0"})
    val_fraction: float = field(default=0.125, metadata={
        "help": "fraction of the training split held out (validation, and monitoring if any)", "metavar": "F",
        "allowed": "a number in (0, 1)"})
    monitor_fraction: float = field(default=0.5, metadata={
        "help": "fraction of the held-out rows kept apart as a monitoring split for convergence metrics, which no method selects on (0: none)",
        "metavar": "F", "allowed": "a number in [0, 1)"})
    train_limit: int | None = field(default=None, metadata={
        "help": "train on a class-stratified subset of N training rows, drawn with the data seed, and hold out at most "
                "val_fraction*N rows (quick checks on large datasets; default: every row)", "metavar": "N",
        "allowed": "an integer >= 1"})
    standardize: str | None = field(default=None, metadata={
        "help": "per-feature or per-channel standardization with training statistics, or none (default: the dataset's)",
        "choices": STANDARDIZATIONS})
    augment: str = field(default="none", metadata={
        "help": "training augmentation of images (C, H, W): crop-flip (random crop with 4-pixel zero padding and a "
                "left-right flip with p=0.5, drawn per seed, epoch and example), or none; never of validation or test data",
        "choices": AUGMENTATIONS})
    data_seed: int = field(default=0, metadata={
        "help": "seed of the dataset generation and the validation split", "metavar": "SEED", "allowed": "an integer >= 0"})
    engine: str = field(default="stacked", metadata={
        "help": "stacked (fast: compacted, batched) or reference (plain masked loop)", "choices": ENGINES})
    device: str = field(default="cpu", metadata={"help": "where networks train", "choices": DEVICES})

    def __post_init__(self) -> None:
        # The optimizer's default learning rate is resolved before validation and hashing,
        # so the hash records the number used (and an adam config hashes as before lr had a default of None).
        if self.lr is None and isinstance(self.optimizer, str) and self.optimizer in DEFAULT_LR:
            object.__setattr__(self, "lr", DEFAULT_LR[self.optimizer])
        _resolve_family_defaults(self)
        _resolve_methods(self)
        _validate(self)
        # Normalize so that equal experiments hash equally: 0, 0.0 and -0.0, any order.
        object.__setattr__(self, "seeds", tuple(sorted(self.seeds)))
        object.__setattr__(self, "sparsities", tuple(sorted(_plain_float(s) for s in self.sparsities)))
        object.__setattr__(self, "methods", tuple(sorted(self.methods)))
        for name in ("lr", "momentum", "weight_decay", "val_fraction", "monitor_fraction"):
            object.__setattr__(self, name, _plain_float(getattr(self, name)))
        if self.standardize is None:
            from .data.registry import default_standardization

            object.__setattr__(self, "standardize", default_standardization(self.dataset))

    # -- construction -------------------------------------------------------
    @classmethod
    def from_sources(
        cls,
        preset: str | None = None,
        toml_path: str | Path | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> "ExperimentConfig":
        """Merge defaults, a preset, a TOML file and overrides (highest wins)."""
        values: dict[str, Any] = {}
        overrides = dict(overrides or {})
        method_params = overrides.pop("method_params", None)
        from_file: dict[str, Any] = flatten_tables(load_toml(toml_path)) if toml_path is not None else {}
        file_keys = {f.name for f in dataclasses.fields(cls)} | {"preset"}
        for key in from_file:
            if key not in file_keys:
                raise invalid("config key", key, "one of " + ", ".join(sorted(file_keys)))
        preset_name = preset if preset is not None else from_file.pop("preset", None)
        from_file.pop("preset", None)
        if preset_name is not None:
            values.update(preset_values(preset_name))
        refuse_flat_and_table(from_file)
        values.update(from_file)
        given = {k: v for k, v in overrides.items() if v is not None}
        values.update(given)
        if method_params:
            default_methods = next(f.default for f in dataclasses.fields(cls) if f.name == "methods")
            values["methods"] = given["methods"] = with_method_params(values.get("methods", default_methods), method_params)
        refuse_flat_and_table(given)
        return cls._from_values(values)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "ExperimentConfig":
        """Build from plain values (TOML or JSON types), flat or with a ``parent`` table; unknown keys are refused.

        >>> ExperimentConfig.from_dict({"dataset": "digits", "parent": {"family": "mlp", "hidden": [16]}, "sparsities": [0.5]}).hidden
        (16,)
        """
        values = flatten_tables(values)
        refuse_flat_and_table(values)
        return cls._from_values(values)

    @classmethod
    def _from_values(cls, values: Mapping[str, Any]) -> "ExperimentConfig":
        values = flatten_tables(values)
        known = {f.name for f in dataclasses.fields(cls)}
        for key in values:
            if key not in known:
                raise invalid("config key", key, "one of " + ", ".join(sorted(known)))
        return cls(**{k: _coerce(k, v) for k, v in values.items()})

    # -- identity -----------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def config_hash(self) -> str:
        """A short stable hash of every field: the experiment's identity in the store.

        Fields at their ``LEGACY_VALUES`` are left out, so that configs written
        before those fields existed keep their hash; so are fields marked ``hashed: False``.
        """
        unhashed = {f.name for f in dataclasses.fields(self) if not f.metadata.get("hashed", True)}
        values = {k: v for k, v in self.to_dict().items()
                  if k not in unhashed and not (k in LEGACY_VALUES and v == LEGACY_VALUES[k])}
        text = json.dumps(values, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    # -- sections: the part of the config each stage receives (see SECTION_FIELDS) --------
    @property
    def data(self) -> "DataSection":
        """Which dataset, and how it is split and standardized."""
        return DataSection.of(self)

    @property
    def model(self) -> "ParentSection":
        """The parent network: its family (``parent``) and the family's options (the ``[parent]`` table)."""
        return ParentSection.of(self)

    @property
    def design(self) -> "DesignSection":
        """Which trials the experiment holds: every method at every sparsity for every seed, and the probes."""
        return DesignSection.of(self)

    @property
    def search(self) -> "SearchSection":
        """How a search method samples and ranks its candidates."""
        return SearchSection.of(self)

    @property
    def training(self) -> "TrainSettings":
        """How every network is trained: the engine's ``TrainSettings``, with the parent's activation it runs."""
        from .engine.common import TrainSettings

        return TrainSettings(**{name: getattr(self, name) for name in SECTION_FIELDS["training"]}, activation=self.activation)

    @property
    def execution(self) -> "ExecutionSection":
        """Where and how the work is computed."""
        return ExecutionSection.of(self)


# -- sections -----------------------------------------------------------------------------------
#: The config's sections: which fields each stage of the pipeline receives (``cfg.data``,
#: ``cfg.model``, ...), instead of the whole config. The one place that says which field belongs
#: where: every field belongs to exactly one section (a test checks it), so a new field must be
#: placed here. A section is a frozen dataclass holding its fields under their own names; the
#: config's hash and its TOML and CLI forms stay flat and are not affected.
SECTION_FIELDS: dict[str, tuple[str, ...]] = {
    # data/: what is loaded, and how it is split and standardized.
    "data": ("dataset", "data_dir", "data_seed", "val_fraction", "monitor_fraction", "train_limit", "standardize", "augment"),
    # models/: the parent's family and its options; the keys of a [parent] table, whatever they are.
    "model": tuple(PARENT_TABLE.values()),
    # plan.py: the trials (seeds x sparsities x methods, and the probes).
    "design": ("seeds", "sparsities", "methods", "probe", "method_specs"),
    # methods/: how a search method samples and ranks candidates.
    "search": ("candidates", "score"),
    # engine/: how each network trains (``cfg.training`` is a TrainSettings, which also carries the
    # parent's activation: the engine's forward pass runs it).
    "training": ("epochs", "patience", "batch_size", "optimizer", "lr", "momentum", "weight_decay"),
    # Where and how the numbers are computed (they agree across engines and devices to float tolerance).
    "execution": ("engine", "device"),
}


class Section:
    """A section of the config: some of its fields, under their own names (a frozen dataclass)."""

    section: ClassVar[str]

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return SECTION_FIELDS[cls.section]

    @classmethod
    def of(cls, cfg: ExperimentConfig) -> Any:
        """This section of a validated config."""
        return cls(**{name: getattr(cfg, name) for name in cls.field_names()})

    @classmethod
    def from_stored(cls, values: Mapping[str, Any]) -> Any:
        """This section of a stored config's plain values (lists become tuples; not validated).

        A field that an older store's config lacks has its ``LEGACY_VALUES`` value
        (the behaviour before the field existed), else its default.

        >>> ParentSection.from_stored({"hidden": [16, 8], "activation": "tanh"})
        ParentSection(parent='mlp', hidden=(16, 8), activation='tanh', fc=(), batchnorm=False)
        """
        defaults = {f.name: f.default for f in dataclasses.fields(ExperimentConfig)}
        picked = {name: values[name] if name in values else LEGACY_VALUES.get(name, defaults[name]) for name in cls.field_names()}
        return cls(**{name: tuple(v) if isinstance(v, list) else v for name, v in picked.items()})

    def values(self) -> dict[str, Any]:
        """The section's fields as plain config values (field name to value).

        >>> ExperimentConfig(hidden=(16,), sparsities=(0.5,)).model.values()
        {'parent': 'mlp', 'hidden': (16,), 'activation': 'relu', 'fc': (), 'batchnorm': False}
        """
        return {name: getattr(self, name) for name in self.field_names()}


def _section_class(class_name: str, section: str, doc: str) -> type:
    """A frozen dataclass holding ``SECTION_FIELDS[section]``, typed as in ``ExperimentConfig``."""
    fields = {f.name: f for f in dataclasses.fields(ExperimentConfig)}
    # A field added to a section after code built it from its other fields has its default there too.
    specs = [(name, fields[name].type, field(default=fields[name].default)) if fields[name].metadata.get("section_default")
             else (name, fields[name].type) for name in SECTION_FIELDS[section]]
    cls = dataclasses.make_dataclass(class_name, specs,
                                     bases=(Section,), namespace={"section": section}, frozen=True)
    cls.__module__, cls.__doc__ = __name__, doc  # picklable, and documented, as a class written here would be
    return cls


DataSection = _section_class("DataSection", "data", "Which dataset, and how it is split and standardized (``cfg.data``).")
ParentSection = _section_class(
    "ParentSection", "model",
    "The parent network (``cfg.model``): ``parent``, its family's name, and the family's options (``hidden``, "
    "``activation``, ...), the keys of a ``[parent]`` table (``PARENT_TABLE``).")
DesignSection = _section_class(
    "DesignSection", "design", "Which trials the experiment holds (``cfg.design``): seeds, sparsities, methods and probes.")
SearchSection = _section_class(
    "SearchSection", "search", "How a search method samples and ranks its candidates (``cfg.search``).")
ExecutionSection = _section_class("ExecutionSection", "execution", "Where and how the work is computed (``cfg.execution``).")


PRESETS: dict[str, dict[str, Any]] = {
    # Defaults of the dataclass: the whole protocol in about a minute, with the
    # 10 paired seeds a verdict needs (analysis.paired.MIN_SEEDS), each network
    # trained until its validation accuracy stops improving (README: Presets).
    # Its parent is 256 wide, against the paper preset's 512, to fit the minute.
    "quick": {},
    # The fuller protocol of the paper: the 512-wide parent that reaches the public
    # MNIST-1D MLP figure, a sparsity sweep, K >= 100, probes to test whether the
    # score predicts trained accuracy, and a longer patience.
    "paper": {
        "hidden": [512, 512, 512],
        "sparsities": [0.5, 0.7, 0.8, 0.9, 0.95, 0.98],
        "candidates": 128,
        "epochs": 300,
        "patience": 50,
        "probe": 8,
    },
    # A convolutional parent: cnn1d (3 Conv1d layers, stride 2) on MNIST-1D, searching its
    # channels. 64 channels, not the family's 128: the 128-channel dense parents alone took
    # 200 s of CPU, bound by the convolutions' throughput, and 64 reach as high (92% vs 91%).
    # Adam at 1e-2 reaches 90% within about 15 epochs (at the default 1e-3 it needs 20-30 for
    # 85%); the sparse networks improve for longer, hence 40 epochs at most, with a patience
    # of 8 (README: Convolutional parents).
    "quick-cnn": {
        "parent": "cnn1d",
        "hidden": [64, 64, 64],
        "lr": 0.01,
        "epochs": 40,
        "patience": 8,
    },
    # Real images, read from the data folder (`sparsebench data fetch mnist|cifar10`); meant for a GPU
    # (--device cuda) or a patient CPU (README: Presets for real images). Both train as the lottery-ticket
    # networks of Frankle & Carbin (2019) do: Adam, batch 60, their learning rates; the quick preset's
    # seeds, sparsities, methods and K.
    # LeNet-300-100: an MLP 784 -> 300 -> 100 -> 10 on MNIST (52,500 training images, 3,750 validation,
    # 3,750 monitoring, 10,000 test), standardized per channel (the dataset's default).
    "mnist-mlp": {
        "dataset": "mnist",
        "parent": "mlp",
        "hidden": [300, 100],
        "lr": 0.0012,
        "batch_size": 60,
        "epochs": 50,
        "patience": 10,
    },
    # Conv-4: conv 64, 64, pool, 128, 128, pool, FC 256, 256 (the cnn family's default) on CIFAR-10 (43,750
    # training images, 3,125 validation, 3,125 monitoring, 10,000 test). Frankle & Carbin train it without
    # augmentation for about 30 epochs; with crop-flip (random 4-pixel-padded crop and horizontal flip, in
    # training only) it improves for longer, hence 60 epochs at most with a patience of 10.
    "cifar10-cnn": {
        "dataset": "cifar10",
        "parent": "cnn",
        "hidden": [64, 64, 128, 128],
        "fc": [256, 256],
        "lr": 0.0003,
        "batch_size": 60,
        "epochs": 60,
        "patience": 10,
        "augment": "crop-flip",
    },
}


def preset_values(name: str) -> dict[str, Any]:
    if not isinstance(name, str) or name not in PRESETS:
        raise invalid("preset", name, "one of " + ", ".join(PRESETS))
    return dict(PRESETS[name])


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML config file; a missing, unreadable or malformed file is a ConfigError."""
    shown = show(str(path))
    try:
        data = Path(path).read_bytes()
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"config: cannot read {shown}: {' '.join(reason.split())}; allowed: a readable TOML file") from None
    try:
        parsed = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"config: {shown} is not UTF-8 text; allowed: a TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config: {shown} is not valid TOML ({' '.join(str(exc).split())}); allowed: a TOML file") from None
    except RecursionError:
        raise ConfigError(f"config: {shown} nests too deeply; allowed: a TOML file of config keys") from None
    return parsed


def flatten_tables(values: Mapping[str, Any]) -> dict[str, Any]:
    """Config values with their tables merged into the flat keys the dataclass has.

    An ``[experiment]`` table wraps keys (as round-1 files did); a ``[parent]`` table
    names the family (``family``, the ``parent`` field) and its options (``hidden``,
    ``activation``). A value given twice (a flat key and a table's, or inside and
    outside ``[experiment]``) is refused, even if both are equal: one of them would
    silently lose. ``methods`` is a list of names, or ``[methods.LABEL]`` tables (kept as
    they are: ``ExperimentConfig`` resolves them); a flat key that is a method's default
    (``candidates`` of random-search) and the same parameter in its table are a value given twice.

    >>> flatten_tables({"seeds": 2, "parent": {"family": "mlp", "hidden": [16, 16]}})
    {'seeds': 2, 'parent': 'mlp', 'hidden': [16, 16]}
    >>> flatten_tables({"hidden": [8], "parent": {"hidden": [8]}})
    Traceback (most recent call last):
    ...
    sparsebench.errors.ConfigError: config: hidden is given twice, as top-level hidden and as [parent] hidden; allowed: one of the two
    """
    flat: dict[str, Any] = {}
    places: dict[str, str] = {}

    def put(key: str, value: Any, place: str) -> None:
        if key in flat:
            raise ConfigError(f"config: {_key_name(key)} is given twice, "
                              f"as {places[key]} and as {place}; allowed: one of the two")
        flat[key], places[key] = value, place

    outer = dict(values)
    wrapped = outer.pop("experiment") if isinstance(outer.get("experiment"), dict) else {}
    for table, prefix in ((outer, ""), (wrapped, "experiment.")):
        for key, value in table.items():
            if key == "parent" and isinstance(value, dict):
                for option, option_value in value.items():
                    if option not in PARENT_TABLE:
                        raise invalid(f"[{prefix}parent] key", option, "one of " + ", ".join(sorted(PARENT_TABLE)))
                    put(PARENT_TABLE[option], option_value, f"[{prefix}parent] {option}")
            elif key == "methods" and isinstance(value, dict):
                put(key, value, f"[{prefix}methods] tables")
            else:
                put(key, value, f"[experiment] {_key_name(key)}" if prefix else f"top-level {_key_name(key)}")
    return flat


def refuse_flat_and_table(flat: Mapping[str, Any]) -> None:
    """A method parameter whose default is a flat key (``Method.CONFIG_DEFAULTS``: random-search's
    ``candidates``, ``score``, ``probe``) given in the table of the method's own label
    (``[methods.random-search]``) and as that flat key by the same source (a file, the flags, a dict):
    both set that one method, and one would silently lose. For another label (``[methods.rs-acc]``)
    the flat key is only a default, which its table overrides; so is a preset's value."""
    from .methods.registry import get_method

    if not isinstance(flat.get("methods"), Mapping):
        return
    for label, table in flat["methods"].items():
        if not isinstance(table, dict):
            continue  # refused when the tables are resolved
        name = table.get("method", label)
        if not isinstance(name, str) or name != label:
            continue
        for param, key in getattr(get_method(name), "CONFIG_DEFAULTS", {}).items():
            if param in table and flat.get(key) is not None:
                raise ConfigError(f"config: {_key_name(param)} of method {label!r} is given twice, as the flat key "
                                  f"{_key_name(key)} and as [methods.{label}] {_key_name(param)}; allowed: one of the two "
                                  "(or the parameter in a table of another label, which the flat key is a default for)")


def with_method_params(methods: Any, params: list[tuple[str, str, Any]]) -> dict[str, dict[str, Any]]:
    """``methods`` (names, or label tables) as label tables with ``params`` ``(label, key, value)`` set
    (``--method-param LABEL.KEY=VALUE``); a label that is not among the methods is refused."""
    if isinstance(methods, Mapping):
        tables = {label: dict(t) if isinstance(t, Mapping) else t for label, t in methods.items()}
    elif isinstance(methods, (list, tuple)) and all(isinstance(m, str) for m in methods):
        tables = {m: {} for m in methods}
    else:
        raise invalid("methods", methods, "a list of method names or [methods.LABEL] tables")
    for label, key, value in params:
        if label not in tables or not isinstance(tables[label], dict):
            raise invalid("--method-param label", label, "one of the methods: " + ", ".join(map(str, tables)))
        tables[label][key] = value
    return tables


def _resolve_methods(cfg: "ExperimentConfig") -> None:
    """Turn ``[methods.LABEL]`` tables (or stored ``method_specs``) into ``methods``, the labels, and
    ``method_specs``, canonical: parameters checked against each constructor and at their defaults left out,
    so that equal experiments hash equally and a config of plain names has no specs (and its old hash)."""
    methods, specs = cfg.methods, cfg.method_specs
    if isinstance(methods, Mapping):
        if specs:
            raise ConfigError("methods: given both as [methods.LABEL] tables and as method_specs; allowed: one of the two")
        tables = dict(methods)
    else:
        if not specs:
            return  # plain names: validated as they always were
        if not isinstance(specs, (tuple, list)) or not all(
                isinstance(s, (tuple, list)) and len(s) == 3 and all(isinstance(p, str) for p in s) for s in specs):
            raise invalid("method_specs", specs, "a list of [label, method name, parameters as JSON]")
        if not isinstance(methods, tuple) or not all(isinstance(m, str) for m in methods) or len(set(methods)) != len(methods):
            return  # refused by validation
        tables = {m: {} for m in methods}
        for label, name, params in specs:
            if label not in tables:
                raise invalid("method_specs label", label, "one of the methods: " + ", ".join(methods))
            try:
                decoded = json.loads(params)
            except ValueError:
                decoded = None
            if not isinstance(decoded, dict):
                raise invalid(f"method_specs parameters of {label!r}", params, "a JSON object")
            tables[label] = {"method": name, **decoded}
    labels, resolved = method_tables(tables, {"candidates": cfg.candidates, "score": cfg.score, "probe": cfg.probe})
    object.__setattr__(cfg, "methods", labels)
    object.__setattr__(cfg, "method_specs", resolved)


def method_tables(tables: Mapping[str, Any], flat: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[tuple[str, str, str], ...]]:
    """The labels and the canonical specs of ``[methods.LABEL]`` tables (``method = NAME``, default: the
    label, and the parameters). The dense parent is labelled ``dense``; two labels of one method with the same
    parameters are refused (they would be one experiment's same numbers twice).

    >>> method_tables({"random": {}, "rs-acc": {"method": "random-search", "score": "accuracy"}}, {"score": "loss"})
    (('random', 'rs-acc'), (('rs-acc', 'random-search', '{"score":"accuracy"}'),))
    """
    from .methods.registry import NO_PARAMS, canonical_params, check_label

    if not tables:
        raise invalid("methods", {}, "at least one [methods.LABEL] table")
    specs: list[tuple[str, str, str]] = []
    seen: dict[tuple[str, str], str] = {}
    for label, table in tables.items():
        if not isinstance(table, Mapping):
            raise invalid(f"[methods.{_key_name(label)}]", table, "a table: method = NAME and the method's parameters")
        params = dict(table)
        name = params.pop("method", label)
        if not isinstance(name, str) or not name:
            raise invalid(f"[methods.{_key_name(label)}] method", name, "a registered method name or module:Class")
        check_label(label, name)
        if name == DENSE and label != DENSE:
            raise invalid(f"method label {label!r}", "method 'dense'", "the label dense (the dense parent is trained once per seed)")
        text = canonical_params(label, name, params, flat)
        if (name, text) in seen:
            raise invalid(f"method {label!r}", f"{name} {text}", f"other parameters than method {seen[name, text]!r}, "
                          "or one label (two labels of one method with the same parameters give the same numbers)")
        seen[name, text] = label
        if label != name or text != NO_PARAMS:
            specs.append((label, name, text))
    return tuple(sorted(tables)), tuple(sorted(specs))


def _key_name(key: Any) -> str:
    """A config key as written when it is a plain name, else quoted (so an odd key cannot break the line)."""
    plain = isinstance(key, str) and key.isidentifier() and len(key) <= 40
    return key if plain else show(key)


def node_widths(values: Mapping[str, Any]) -> tuple[int, ...]:
    """The node layers' widths of a config's plain values (as stored): ``hidden``, then ``fc`` (a CNN's hidden FC layers).

    What a stored mask's bits are laid out by; configs stored before ``fc`` existed have none.
    """
    return (*values["hidden"], *(values.get("fc") or ()))


def _resolve_family_defaults(cfg: "ExperimentConfig") -> None:
    """Fill ``hidden`` and ``fc`` left unset with the parent family's defaults, before validation and hashing
    (so the hash records the widths used, and an MLP config hashes as before they had family defaults)."""
    from .models.registry import BUILTIN, get_family

    if not isinstance(cfg.parent, str) or cfg.parent not in parent_names():
        return  # refused by validation
    family = BUILTIN.get(cfg.parent) or get_family(cfg.parent)
    if cfg.hidden is None:
        object.__setattr__(cfg, "hidden", tuple(family.default_hidden))
    if cfg.fc is None:
        object.__setattr__(cfg, "fc", tuple(getattr(family, "default_fc", ())))


def _check_family_options(cfg: "ExperimentConfig") -> None:
    """Refuse, in one line, a family option (``fc``, ``batchnorm``) set for a family that has no such option."""
    from .models.registry import get_family

    family = get_family(cfg.parent)
    for option, unset in (("fc", ()), ("batchnorm", False)):
        if option not in family.options and getattr(cfg, option) != unset:
            takes = [name for name in parent_names() if option in get_family(name).options]
            raise invalid(option, getattr(cfg, option), f"{_plain(unset)} for parent {cfg.parent!r} "
                          f"(the option is for {', '.join(takes) or 'no installed family'})")


def _plain(value: Any) -> str:
    """A value as a TOML file writes it: ``[]``, ``false``."""
    return json.dumps(list(value) if isinstance(value, tuple) else value)


def parent_names() -> list[str]:
    """The parent families a config may name: built-in and installed (``sparsebench.parents``)."""
    from .models.registry import family_names

    return family_names()


def validate_parent_name(name: Any) -> None:
    """Refuse a parent family that is not known, in one line listing the known ones.

    >>> validate_parent_name("resnet")
    Traceback (most recent call last):
    ...
    sparsebench.errors.ConfigError: parent: got 'resnet'; allowed: one of cnn, cnn1d, mlp
    """
    if not isinstance(name, str) or name not in parent_names():
        raise invalid("parent", name, "one of " + ", ".join(parent_names()))


# -- validation ---------------------------------------------------------------
def _coerce(key: str, value: Any) -> Any:
    """Turn list values into tuples, and an integer ``seeds`` N into 0..N-1."""
    if key == "method_specs" and isinstance(value, list):
        return tuple(tuple(v) if isinstance(v, list) else v for v in value)
    if key == "seeds" and _is_int(value):
        if not 1 <= value <= MAX_COUNT:
            raise invalid("seeds", value, f"a count in [1, {MAX_COUNT}] or a list of non-negative integers")
        return tuple(range(value))
    if isinstance(value, list):
        return tuple(value)
    return value


def _plain_float(v: Any) -> float:
    """``float(v)``, with -0.0 as 0.0 (they are the same setting, and must hash the same).

    >>> _plain_float(-0.0), _plain_float(3)
    (0.0, 3.0)
    """
    return float(v) + 0.0


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:  # an int too large for a float
        return False


MAX_WIDTH = 1 << 16
MAX_COUNT = 1 << 20


def _check_int(name: str, value: Any, low: int, high: int = MAX_COUNT) -> None:
    if not _is_int(value) or not low <= value <= high:
        raise invalid(name, value, f"an integer in [{low}, {high}]")


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise invalid(name, value, "one of " + ", ".join(choices))


def _check_realizable(hidden: tuple[int, ...], sparsities: tuple[float, ...]) -> None:
    """Refuse sparsities the parent cannot tell apart: two that keep the same nodes per layer,
    or one above 0 that keeps every node (its sub-networks would be the dense parent)."""
    from .models.mask import kept_count

    kept = {s: tuple(kept_count(w, s) for w in hidden) for s in sparsities}
    widths = list(hidden)
    for s in sorted(sparsities):
        if s > 0 and kept[s] == tuple(hidden):
            dense = f"{s!r} keeps all {list(kept[s])} nodes: its sub-networks would be the dense parent"
            if max(hidden) == 1:
                raise invalid("sparsity", s, f"hidden widths >= 2 (with hidden {widths}, {dense})")
            raise invalid("sparsity", s, f"for hidden {widths}, sparsities above {0.5 / max(hidden):.3g}, which remove "
                          f"a node of the widest layer ({dense})")
    by_kept: dict[tuple[int, ...], list[float]] = {}
    for s in sorted(sparsities):
        by_kept.setdefault(kept[s], []).append(s)
    for counts, same in by_kept.items():
        if len(same) > 1:
            raise invalid("sparsities", list(sparsities),
                          f"sparsities that keep different node counts for hidden {widths}; "
                          f"{' and '.join(repr(s) for s in same)} {'both' if len(same) == 2 else 'all'} keep {list(counts)} nodes per layer")


def _validate(cfg: ExperimentConfig) -> None:
    from .data.registry import validate_dataset_name
    from .methods.registry import validate_method_name

    validate_dataset_name(cfg.dataset)
    if cfg.train_limit is not None:
        _check_int("train_limit", cfg.train_limit, 1, 1 << 31)
    if cfg.data_dir is not None and (not isinstance(cfg.data_dir, str) or not cfg.data_dir or "\0" in cfg.data_dir):
        raise invalid("data_dir", cfg.data_dir, "a folder path")
    validate_parent_name(cfg.parent)
    if not isinstance(cfg.hidden, tuple) or not cfg.hidden or not all(_is_int(w) and 1 <= w <= MAX_WIDTH for w in cfg.hidden):
        raise invalid("hidden", cfg.hidden, f"a non-empty list of widths in [1, {MAX_WIDTH}]")
    if not isinstance(cfg.fc, tuple) or not all(_is_int(w) and 1 <= w <= MAX_WIDTH for w in cfg.fc):
        raise invalid("fc", cfg.fc, f"a list of widths in [1, {MAX_WIDTH}] (may be empty)")
    if not isinstance(cfg.batchnorm, bool):
        raise invalid("batchnorm", cfg.batchnorm, "true or false")
    _check_family_options(cfg)
    _check_choice("activation", cfg.activation, ACTIVATIONS)
    if not isinstance(cfg.seeds, tuple) or not cfg.seeds or not all(_is_int(s) and 0 <= s < 2**31 for s in cfg.seeds):
        raise invalid("seeds", cfg.seeds, "a count >= 1 or a non-empty list of integers in [0, 2^31)")
    if len(set(cfg.seeds)) != len(cfg.seeds):
        raise invalid("seeds", cfg.seeds, "distinct seeds")
    if not isinstance(cfg.sparsities, tuple) or not cfg.sparsities:
        raise invalid("sparsities", cfg.sparsities, "a non-empty list of numbers in [0, 1)")
    for s in cfg.sparsities:
        if not _is_number(s) or not 0 <= s < 1:
            raise invalid("sparsity", s, "a number in [0, 1)")
        if s >= MAX_SPARSITY:
            raise invalid("sparsity", s, f"a number in [0, {MAX_SPARSITY:.7g}) (reports show 6 significant digits: it would read as 1)")
    if len(set(cfg.sparsities)) != len(cfg.sparsities):
        raise invalid("sparsities", cfg.sparsities, "distinct values")
    _check_realizable((*cfg.hidden, *cfg.fc), cfg.sparsities)
    if not isinstance(cfg.methods, tuple) or not cfg.methods or not all(isinstance(m, str) for m in cfg.methods):
        raise invalid("methods", cfg.methods, "a non-empty list of method names")
    if len(set(cfg.methods)) != len(cfg.methods):
        raise invalid("methods", cfg.methods, "distinct names")
    named = method_names_of(cfg)
    for m in cfg.methods:
        validate_method_name(named[m])
    _check_int("candidates", cfg.candidates, 1)
    _check_choice("score", cfg.score, SCORES)
    _check_int("probe", cfg.probe, 0, 1 << 12)
    if cfg.probe > cfg.candidates - 1 and cfg.probe > 0:
        raise invalid("probe", cfg.probe, f"at most candidates - 1 = {cfg.candidates - 1}")
    if cfg.probe > 0 and not set(FLAT_PROBE_METHODS) & set(named.values()):
        raise invalid("probe", cfg.probe, f"0 unless methods include {' or '.join(FLAT_PROBE_METHODS)} (probes are "
                      "its scored candidates; another search takes probe in its own [methods.LABEL] table)")
    _check_int("epochs", cfg.epochs, 1, 100_000)
    _check_int("patience", cfg.patience, 0, 100_000)
    _check_int("batch_size", cfg.batch_size, 1)
    _check_choice("optimizer", cfg.optimizer, OPTIMIZERS)
    if not _is_number(cfg.lr) or cfg.lr <= 0:
        raise invalid("lr", cfg.lr, "a finite number > 0")
    if not _is_number(cfg.momentum) or not 0 <= cfg.momentum < 1:
        raise invalid("momentum", cfg.momentum, "a number in [0, 1)")
    if not _is_number(cfg.weight_decay) or cfg.weight_decay < 0:
        raise invalid("weight_decay", cfg.weight_decay, "a finite number >= 0")
    if not _is_number(cfg.val_fraction) or not 0 < cfg.val_fraction < 1:
        raise invalid("val_fraction", cfg.val_fraction, "a number in (0, 1)")
    if not _is_number(cfg.monitor_fraction) or not 0 <= cfg.monitor_fraction < 1:
        raise invalid("monitor_fraction", cfg.monitor_fraction, "a number in [0, 1)")
    if cfg.standardize is not None:
        _check_choice("standardize", cfg.standardize, STANDARDIZATIONS)
    _check_choice("augment", cfg.augment, AUGMENTATIONS)
    _check_int("data_seed", cfg.data_seed, 0, 2**31 - 1)
    _check_choice("engine", cfg.engine, ENGINES)
    _check_choice("device", cfg.device, DEVICES)


def method_names_of(values: Any) -> dict[str, str]:
    """Each method label's registered name, of a config or a section (``methods``, ``method_specs``)."""
    names = {label: label for label in values.methods}
    names.update({label: name for label, name, _ in values.method_specs})
    return names
