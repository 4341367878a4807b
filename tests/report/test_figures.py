import pytest
from matplotlib.figure import Figure

from sparsebench.analysis import convergence_metrics, paired_comparison
from sparsebench.report import figures

from .pngs import png_size


def labels(figure: Figure) -> str:
    """Every axis label, title and legend text of a figure, for checking units and names."""
    texts = [figure._suptitle.get_text()] if figure._suptitle else []
    for ax in figure.axes:
        texts += [ax.get_xlabel(), ax.get_ylabel(), ax.get_title()]
        texts += [t.get_text() for t in ax.get_yticklabels()]
    for legend in figure.legends + [ax.get_legend() for ax in figure.axes if ax.get_legend()]:
        texts += [t.get_text() for t in legend.get_texts()]
    return " | ".join(texts)


@pytest.fixture(scope="module")
def drawn(results):
    trials, curves = results
    metrics = convergence_metrics(trials, curves)
    return {
        "accuracy": figures.accuracy_vs_sparsity(trials),
        "curves": figures.learning_curves(trials, curves),
        "forest": figures.paired_differences(paired_comparison(trials), margin=0.01),
        "auc": figures.convergence_auc(metrics),
        "epochs": figures.epochs_to_threshold(metrics),
        "score": figures.score_vs_accuracy(trials),
    }


def test_every_figure_is_print_sized_with_units_and_legend(drawn):
    for name, figure in drawn.items():
        assert isinstance(figure, Figure), name
        assert tuple(figure.get_size_inches())[0] == pytest.approx(6.4), name
        text = labels(figure)
        assert "%" in text or "epoch" in text, (name, text)
        assert figure.legends or any(ax.get_legend() for ax in figure.axes), name


def test_axis_units_and_reference_lines(drawn):
    assert "test accuracy (%)" in labels(drawn["accuracy"])
    assert "dense parent" in labels(drawn["accuracy"])
    assert "epoch" in labels(drawn["curves"]) and "validation accuracy (%)" in labels(drawn["curves"])
    forest = labels(drawn["forest"])
    assert "percentage points" in forest and "equivalence margin ±1 pp" in forest
    assert "s = 0.9" in forest and "random-search" in forest
    assert "censored" in labels(drawn["epochs"])


def test_figures_render_to_png(drawn):
    width, height = png_size(figures.png_bytes(drawn["forest"]))
    assert width > 600 and height > 400  # 6.4 in at 150 dpi, trimmed to the drawing


def test_score_figure_needs_probes(results):
    trials, _ = results
    assert figures.score_vs_accuracy(trials[trials["role"] != "probe"]) is None


def test_diverged_trials_do_not_break_the_figures(results):
    trials, curves = results
    assert (trials["status"] == "diverged").any()
    figure = figures.learning_curves(trials, curves)
    for ax in figure.axes:
        for line in ax.get_lines():
            assert all(y == y for y in line.get_ydata())  # no NaN points from a diverged curve


def test_method_colours_are_stable():
    colours = figures.method_colours(["mine", "random", "dense", "random-search", "other"])
    assert colours["dense"] == "#000000" and colours["random"] == "#7f7f7f"
    assert colours == figures.method_colours(["other", "random-search", "dense", "random", "mine"])
    assert len(set(colours.values())) == 5


def test_a_stopped_network_is_held_at_its_last_value_in_the_mean_learning_curve():
    import pandas as pd

    from sparsebench.analysis.convergence import held_after_stop

    trials = pd.DataFrame({"trial_id": [1, 2], "stop_epoch": [2.0, None], "epochs": [4, 4]})
    curves = pd.DataFrame({"trial_id": [1, 1, 2, 2, 2, 2], "epoch": [1, 2, 1, 2, 3, 4],
                           "monitor_acc": [0.2, 0.5, 0.1, 0.2, 0.3, 0.4]})
    held = held_after_stop(curves, trials)
    first = held[held["trial_id"] == 1].sort_values("epoch")
    assert first["epoch"].tolist() == [1, 2, 3, 4] and first["monitor_acc"].tolist() == [0.2, 0.5, 0.5, 0.5]
    # The mean at epochs 3-4 still counts the stopped network, so it does not jump to the other's value.
    assert held.groupby("epoch")["monitor_acc"].mean().loc[4] == pytest.approx(0.45)
