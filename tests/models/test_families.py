"""The parent family interface: the MLP as one family, the registry, entry-point families, data shapes."""

import textwrap

import pytest
import torch

from sparsebench.errors import ConfigError
from sparsebench.models import MLP, NodeMask, ParentFamily, compact, count_params, family_for, family_names, get_family, random_masks
from sparsebench.models.registry import family_name


def one_line(exc_info) -> str:
    text = str(exc_info.value)
    assert "\n" not in text
    return text


def test_weight_sparsity_comes_from_the_family_and_equals_the_old_count():
    mlp = MLP(5, (4, 4), 3)
    mask = NodeMask.from_indices([[0, 1], [3]], (4, 4))
    full = count_params((5, 4, 4, 3))  # 24 + 20 + 15
    kept = count_params((5, 2, 1, 3))  # 12 + 3 + 6
    assert (full, kept) == (59, 21) == (mlp.count_params(), mlp.count_params(mask))
    assert mlp.weight_sparsity(mask) == 1.0 - kept / full  # the very float NodeMask.weight_sparsity gave
    assert mlp.weight_sparsity(mlp.node_space.full_mask()) == 0.0
    assert not hasattr(NodeMask, "weight_sparsity")  # a mask knows nodes, not what they weigh


def test_flops_per_example_count_each_weight_twice_and_each_bias_once():
    mlp = MLP(5, (4, 4), 3)
    assert mlp.flops() == 2 * (5 * 4 + 4 * 4 + 4 * 3) + (4 + 4 + 3)
    assert mlp.flops((2, 1)) == 2 * (5 * 2 + 2 * 1 + 1 * 3) + (2 + 1 + 3)
    assert mlp.flop_reduction((2, 1)) == 1 - mlp.flops((2, 1)) / mlp.flops()


def test_the_mlp_family_compacts_exports_and_gives_incoming_weights():
    mlp = MLP(6, (8, 5), 3)
    weights = mlp.init(7)
    mask = random_masks(mlp.node_space.widths, 0.5, 1, torch.Generator().manual_seed(0))[0]
    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(1))
    sub = mlp.compact(weights, mask)
    module = mlp.to_module(weights, mask)
    assert [m.weight.shape[0] for m in module if isinstance(m, torch.nn.Linear)] == [4, 2, 3]
    assert torch.equal(module[0].weight, sub[0].weight) and torch.equal(module[2].weight, sub[1].weight)
    # the whole parent, and an expanded sub-network, as modules: same outputs as the compact module
    assert torch.allclose(mlp.to_module(mlp.expand(sub, mask))(x), module(x), atol=1e-6)
    incoming = mlp.incoming_weights(weights)
    assert [tuple(w.shape) for w in incoming] == [(8, 6), (5, 8)]
    assert torch.equal(incoming[1][2], weights[1].weight[2])
    parent = mlp.bind(weights, seed=7)
    assert parent.node_space.widths == (8, 5) and torch.equal(parent.compact(mask)[0].weight, compact(weights, mask)[0].weight)


def test_the_registry_lists_its_families_and_refuses_an_unknown_family_in_one_line():
    assert {"mlp", "cnn1d", "cnn"} <= set(family_names())
    assert get_family("mlp") is MLP
    with pytest.raises(ConfigError) as exc:
        get_family("resnet")
    assert one_line(exc) == "parent: got 'resnet'; allowed: one of cnn, cnn1d, mlp"
    with pytest.raises(ConfigError) as exc:
        family_for({"parent": "resnet", "hidden": [8]}, (40,), 10)
    assert "'resnet'" in one_line(exc)


def test_a_config_without_a_family_is_an_mlp_that_flattens_any_example():
    assert family_name({"hidden": [8]}) == "mlp"  # stored before families existed
    mlp = family_for({"hidden": [8, 4], "activation": "tanh"}, (2, 3, 4), 10)
    assert mlp == MLP(24, (8, 4), 10, "tanh")


FAMILY = textwrap.dedent(
    """
    import torch
    from sparsebench.models import MLP


    class ImagesOnly(MLP):
        '''An MLP that takes images alone: enough to show a family that refuses a shape.'''
        name = "images-only"
        accepted_dims = (4,)


    class NotAFamily:
        pass
    """
)


@pytest.fixture
def family_plugin(install_plugin):
    return install_plugin("ep_family_mod", FAMILY,
                          "[sparsebench.parents]\nimages-only = ep_family_mod:ImagesOnly\nbogus = ep_family_mod:NotAFamily\n")


def test_an_entry_point_family_is_discovered(family_plugin):
    assert {"mlp", "images-only", "bogus"} <= set(family_names())
    family = family_for({"parent": "images-only", "hidden": [8]}, (1, 4, 4), 10)
    assert type(family).__name__ == "ImagesOnly" and isinstance(family, ParentFamily)
    assert family.node_space.widths == (8,) and family.n_inputs == 16
    with pytest.raises(ConfigError) as exc:
        get_family("bogus")
    assert "not a sparsebench.models.ParentFamily subclass" in one_line(exc)


def test_a_shape_the_family_cannot_take_is_refused_in_one_line(family_plugin):
    with pytest.raises(ConfigError) as exc:
        family_for({"parent": "images-only", "hidden": [8]}, (40,), 10)
    assert one_line(exc) == "parent 'images-only': got data of shape (N, 40), tabular (N, F); allowed: images (N, C, H, W)"


def test_a_family_without_an_engine_is_refused_before_training(family_plugin):
    from sparsebench.data import load_dataset
    from sparsebench.runner import parent_family

    import dataclasses

    data = load_dataset("digits", 0, 0.2)
    data = dataclasses.replace(data, x_train=data.x_train.view(len(data.x_train), 1, 8, 8))
    with pytest.raises(ConfigError) as exc:
        parent_family({"parent": "images-only", "hidden": [8]}, data)
    assert "no engine" in one_line(exc) and "'images-only'" in str(exc.value)


def test_a_refused_shape_stops_a_run_before_its_store_is_created(family_plugin, monkeypatch, tmp_path, tiny_config):
    import sparsebench
    from sparsebench.models import registry

    # The config has no family field yet: name the family where the registry reads it.
    monkeypatch.setattr(registry, "family_name", lambda config: "images-only")
    with pytest.raises(ConfigError) as exc:
        sparsebench.run(tiny_config, store=tmp_path / "s.db", progress=False)
    assert one_line(exc).startswith("parent 'images-only': got data of shape (N, 64), tabular (N, F)")
    assert not (tmp_path / "s.db").exists()


def test_the_mlp_trains_images_flattened_to_the_same_numbers_as_rows(tiny_config):
    import dataclasses

    from sparsebench import runner
    from sparsebench.data import load_dataset
    from sparsebench.data.registry import SPLIT_TENSORS

    rows = load_dataset(tiny_config.dataset, tiny_config.data_seed, tiny_config.val_fraction)
    images = dataclasses.replace(rows, **{k: getattr(rows, k).view(-1, 1, 8, 8) for k in SPLIT_TENSORS if k.startswith("x_")})
    family = runner.parent_family(tiny_config.model, images)
    assert family == runner.parent_family(tiny_config.model, rows) == MLP(64, (24, 24), 10)
    group = runner.plan(tiny_config)[-1]
    sections = dict(search=tiny_config.search, engine=tiny_config.engine)
    got, _ = runner.run_group(tiny_config.training, group, images, family, torch.device("cpu"), **sections)
    want, _ = runner.run_group(tiny_config.training, group, rows, family, torch.device("cpu"), **sections)
    strip = lambda t: dataclasses.replace(t, train_seconds=0.0, selection_seconds=0.0)  # noqa: E731
    assert [strip(t) for t in got] == [strip(t) for t in want]
