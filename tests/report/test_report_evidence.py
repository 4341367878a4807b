"""What the report claims, and on what evidence (issue 12, issue 11 item 5): no verdict from too few
seeds, the within-seed predictiveness as the headline, the convergence split and the Holm family
said in words."""

import numpy as np
import pandas as pd

from sparsebench.analysis import synthetic_results
from sparsebench.report import build_report
from sparsebench.report.blocks import Paragraph, Table

CLAIM_WORDS = ("better", "worse", "equivalent")


def section(report, heading):
    return next(s for s in report.sections if s.heading.startswith(heading))


def paragraphs(sec):
    return [b.text for b in sec.blocks if isinstance(b, Paragraph)]


def test_three_seeds_with_a_huge_effect_claim_nothing_in_summary_or_tables():
    trials, curves = synthetic_results(seeds=3, sparsities=(0.5, 0.9), epochs=4,
                                       methods=("dense", "random", "random-search", "mine"),
                                       effects={"mine": -0.3, "random-search": 0.2})
    report = build_report(trials, curves, {"dataset": "synthetic"})
    summary = section(report, "Summary")
    for text in paragraphs(summary):
        assert "too few seeds for a verdict" in text
        assert not any(word in text for word in CLAIM_WORDS), text
    for sec in (summary, section(report, "Test accuracy: each"), section(report, "Test loss"),
                section(report, "Convergence")):
        for table in (b for b in sec.blocks if isinstance(b, Table)):
            for row in table.rows:
                if "mine" in row or "random-search" in row:
                    assert not any(word in cell for cell in row for word in CLAIM_WORDS), row
    accuracy = next(b for b in section(report, "Test accuracy: each").blocks if isinstance(b, Table))
    assert all(row[3] not in ("n/a", "") for row in accuracy.rows)  # the estimate is still shown


def test_identical_results_are_labelled_not_tested():
    trials, curves = synthetic_results(seeds=3, sparsities=(0.9,), epochs=3)
    same = trials["method"] == "random-search"
    for column in ("final_test_acc", "final_test_loss"):  # random search picked random's network
        by_seed = trials[trials["method"] == "random"].set_index("seed")[column]
        trials.loc[same, column] = trials.loc[same, "seed"].map(by_seed).to_numpy()
    report = build_report(trials, curves, {})
    text = " ".join(paragraphs(section(report, "Summary")))
    assert "random-search and random gave identical results in every seed (not tested" in text
    assert "equivalent" not in text


def confounded_trials(seeds=8, per_group=6):
    """Within seeds a lower loss trains better; across seeds the opposite (parent effects)."""
    rng = np.random.default_rng(0)
    trials, _ = synthetic_results(seeds=seeds, sparsities=(0.5, 0.9), epochs=3, probes=per_group - 1)
    search = (trials["method"] == "random-search").to_numpy()
    for (seed, sparsity), group in trials[search].groupby(["seed", "sparsity"]):
        scores = 2.0 + 0.2 * seed + np.sort(rng.uniform(0, 0.05, len(group)))
        accs = 0.6 + 0.05 * seed - 0.2 * (scores - scores.mean()) + rng.normal(0, 0.002, len(group))
        order = group.sort_values("init_score").index  # keep the winner the lowest score
        trials.loc[order, "init_score"] = scores
        trials.loc[order, "final_test_acc"] = accs
    return trials


def test_predictive_section_leads_with_the_within_seed_result_when_pooled_disagrees():
    from sparsebench.analysis import score_predictiveness, within_seed_predictiveness

    trials = confounded_trials()
    pooled = score_predictiveness(trials).query("scope == 'pooled'").iloc[0]
    within = within_seed_predictiveness(trials).query("scope == 'overall'").iloc[0]
    assert pooled["rho"] > 0 > within["mean_rho"]  # opposite signs
    sec = section(build_report(trials, pd.DataFrame(), {}), "Is the search score predictive?")
    texts = paragraphs(sec)
    assert texts[0].startswith("Within seeds") and "averages −" in texts[0]
    assert texts[1].startswith("Secondary, for comparison only") and "parent effect" in texts[1]
    tables = [b for b in sec.blocks if isinstance(b, Table)]
    assert tables[0].caption.startswith("Primary") and tables[-1].caption.startswith("Secondary")


def test_convergence_section_names_its_split():
    trials, curves = synthetic_results(seeds=3, sparsities=(0.9,), epochs=4)
    validation = " ".join(paragraphs(section(build_report(trials, curves, {}), "Convergence")))
    assert "use the validation split (the split that search methods such as random search select on)" \
        in validation
    monitored = curves.assign(monitor_acc=curves["val_acc"] - 0.01)
    report = build_report(trials, monitored, {})
    text = " ".join(paragraphs(section(report, "Convergence")))
    assert "use the monitoring split (rows held out of the validation split, which no method selects on)" \
        in text and "selection data" not in text
    notes = " ".join(paragraphs(section(report, "How the verdicts are made")))
    assert "monitoring-split accuracy curve" in notes


def test_stopped_trials_are_explained_in_the_convergence_section():
    trials, curves = synthetic_results(seeds=3, sparsities=(0.9,), epochs=4)
    trials = trials.assign(stop_epoch=np.where(trials["method"] == "random", 3.0, np.nan))
    curves = curves[~(curves["trial_id"].isin(trials.loc[trials["method"] == "random", "trial_id"])
                      & (curves["epoch"] > 3))]
    text = " ".join(paragraphs(section(build_report(trials, curves, {}), "Convergence")))
    assert "3 of the 9 finished trials were stopped early" in text and "frozen" in text


def test_notes_state_the_primary_metric_and_the_holm_family():
    trials, curves = synthetic_results(seeds=3, sparsities=(0.5, 0.9), epochs=3)
    notes = " ".join(paragraphs(section(build_report(trials, curves, {}), "How the verdicts are made")))
    assert "The primary metric is final test accuracy and the primary test is the paired t test" in notes
    assert "on the primary metric the p-values are Holm-adjusted over one family, every method × sparsity " \
           "compared with random, so adding a method to an experiment changes the adjustment of the others" in notes
    assert "each secondary metric (test loss, convergence) has one family per method" in notes
    assert "fewer than 10 paired seeds the verdict is 'too few seeds'" in notes
    assert "'identical (not tested)' if every paired difference is exactly 0" in notes
