import sys
import textwrap

import pytest

import sparsebench
from sparsebench.errors import ConfigError
from sparsebench.methods import get_method, method_names

MODULE = textwrap.dedent(
    """
    from sparsebench import Method, Selection
    from sparsebench.models import NodeMask, kept_count

    class LastNodes(Method):
        def select(self, ctx):
            keep = [list(range(w - kept_count(w, ctx.sparsity), w)) for w in ctx.spec.hidden]
            return Selection(NodeMask.from_indices(keep, ctx.spec.hidden))

    class NotAMethod:
        pass
    """
)


@pytest.fixture
def plugin_dir(install_plugin):
    return install_plugin("ep_plugin_mod", MODULE, "[sparsebench.methods]\nlast-nodes = ep_plugin_mod:LastNodes\n")


def test_entry_point_method_is_listed_and_runs(plugin_dir, tmp_path, tiny_dict):
    assert "last-nodes" in method_names()
    trials = sparsebench.run({**tiny_dict, "methods": ["random", "last-nodes"], "seeds": [0], "sparsities": [0.5]}, store=tmp_path / "e.db", progress=False)
    row = trials[trials.method == "last-nodes"]
    mask = sparsebench.load_mask(tmp_path / "e.db", int(row.trial_id.item()))
    assert mask.kept[0] == tuple(range(12, 24))


def test_module_class_spec_must_name_a_method_subclass(plugin_dir):
    assert get_method("ep_plugin_mod:LastNodes").__name__ == "LastNodes"
    with pytest.raises(ConfigError, match="not a sparsebench.methods.Method subclass"):
        get_method("ep_plugin_mod:NotAMethod")
    with pytest.raises(ConfigError, match="cannot load"):
        get_method("ep_plugin_mod:Missing")


def test_register_method_makes_a_name_selectable(tmp_path, tiny_dict):
    @sparsebench.register_method("first-half-test")
    class FirstHalf(sparsebench.Method):
        def select(self, ctx):
            from sparsebench.models import NodeMask, kept_count

            keep = [list(range(kept_count(w, ctx.sparsity))) for w in ctx.spec.hidden]
            return sparsebench.Selection(NodeMask.from_indices(keep, ctx.spec.hidden))

    trials = sparsebench.run({**tiny_dict, "methods": ["first-half-test"], "seeds": [0], "sparsities": [0.5]}, store=tmp_path / "r.db", progress=False)
    assert list(trials.method) == ["first-half-test"]


def test_the_abstract_base_class_is_refused_as_a_method():
    with pytest.raises(ConfigError, match="abstract"):
        get_method("sparsebench.methods.base:Method")


@pytest.mark.parametrize("body, words", [
    ("raise ValueError('no good mask\\nat all')", "failed at sparsity 0.5, seed 0 (ValueError: no good mask at all)"),
    ("return None", "select() result: got 'NoneType'; allowed: a sparsebench.methods.Selection"),
])
def test_a_failing_user_method_is_reported_in_one_line(tmp_path, monkeypatch, cli, body, words):
    (tmp_path / "failing_mod.py").write_text(
        "from sparsebench import Method\n\nclass Failing(Method):\n    def select(self, ctx):\n        " + body + "\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    db = tmp_path / "f.db"
    code, _, err = cli("run", "--methods", "random,failing_mod:Failing", "--seeds", "1", "--sparsities", "0.5",
                       "--epochs", "1", "--candidates", "2", "--store", str(db), "--no-progress")
    sys.modules.pop("failing_mod", None)
    assert code == 2 and words in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err
