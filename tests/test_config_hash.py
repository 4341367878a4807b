"""Configs written before a field existed keep their hash, so their stores resume (issue 12)."""

from sparsebench import ExperimentConfig

# The quick preset of round 1, spelled out; its hash as round 1 computed it.
ROUND_1_QUICK = dict(
    dataset="mnist1d", hidden=(256, 256, 256), activation="relu", seeds=(0, 1, 2), sparsities=(0.5, 0.9, 0.98),
    methods=("dense", "random", "random-search"), candidates=100, score="loss", probe=0, epochs=30, batch_size=128,
    optimizer="adam", lr=1e-3, momentum=0.9, weight_decay=0.0, val_fraction=0.2, data_seed=0, engine="stacked",
    device="cpu",
)
ROUND_1_QUICK_HASH = "30bd2a39ab6c3eda"
# The tests' tiny config (digits, whose default standardization is per feature, as in round 1).
ROUND_1_TINY_HASH = "8e2c3393c5f68bdf"


def test_a_round_1_config_with_the_legacy_values_of_the_new_fields_keeps_its_hash():
    legacy = dict(patience=0, monitor_fraction=0.0, standardize="feature")
    assert ExperimentConfig(**ROUND_1_QUICK, **legacy).config_hash() == ROUND_1_QUICK_HASH
    tiny = dict(dataset="digits", hidden=(24, 24), seeds=(0, 1), sparsities=(0.5, 0.9), candidates=6, epochs=2, batch_size=64)
    assert ExperimentConfig(**tiny).config_hash() == ROUND_1_TINY_HASH


def test_new_fields_away_from_their_legacy_values_make_a_new_experiment():
    base = ExperimentConfig(**ROUND_1_QUICK, standardize="feature")
    for change in (dict(patience=5), dict(monitor_fraction=0.5), dict(standardize="none")):
        assert ExperimentConfig(**{**ROUND_1_QUICK, "standardize": "feature", **change}).config_hash() != base.config_hash()


def test_mnist1d_is_not_standardized_again_by_default_and_digits_is():
    # The MNIST-1D generator standardizes the whole set already; a second, per-feature
    # standardization cost the dense parent 1-2 pp in the audit (issue 12).
    assert ExperimentConfig(dataset="mnist1d").standardize == "none"
    assert ExperimentConfig(dataset="digits").standardize == "feature"
