"""Formatting, sentences, and the two renderers' escaping."""

import math

from sparsebench.report.blocks import FigureBlock, Paragraph, Report, Section, Table
from sparsebench.report.formatting import ci_pp, percent, pp, pvalue
from sparsebench.report.html import CONTENT_SECURITY_POLICY, render_html
from sparsebench.report.markdown import md_escape, render_markdown
from sparsebench.report.sentences import verdict_sentence

ROW = dict(sparsity=0.9, method="random-search", baseline="random", n=5, n_excluded=0,
           verdict="equivalent", reason="90% CI within ±0.01", mean_diff=0.003, ci_low=-0.004,
           ci_high=0.010, p_t_holm=0.6, p_wilcoxon_holm=0.8, p_tost_holm=0.012, margin=0.01)


def test_numbers():
    assert pp(0.0123) == "+1.2 pp" and pp(-0.0123) == "−1.2 pp" and pp(math.nan) == "n/a"
    assert ci_pp(-0.004, 0.01) == "[−0.4, +1.0]" and percent(0.5) == "50.0"
    assert pvalue(0.0123) == "0.012" and pvalue(1.0) == "1" and pvalue(2e-5) == "2.0e-05"


def test_sentences_for_each_verdict():
    assert verdict_sentence(ROW) == (
        "At sparsity 0.9, random-search is equivalent to random within ±1 pp (TOST p=0.012), "
        "n=5 seeds; mean difference +0.3 pp [95% CI −0.4, +1.0].")
    worse = verdict_sentence({**ROW, "verdict": "worse", "mean_diff": -0.02, "p_t_holm": 0.003,
                              "n_excluded": 1})
    assert "is worse than random (paired t p=0.003; Wilcoxon p=0.8)" in worse
    assert "1 more left out" in worse
    inconclusive = verdict_sentence({**ROW, "verdict": "inconclusive",
                                     "reason": "more seeds needed for the margin"})
    assert "random-search vs random is inconclusive (more seeds needed for the margin;" in inconclusive
    assert "no seed where both" in verdict_sentence({**ROW, "n": 0})


def test_html_escapes_every_user_string_and_forbids_requests():
    hostile = '"><img src=https://x.example/a.png onerror=alert(1)>'
    report = Report(hostile, [Section(hostile, [
        Paragraph(hostile), Table([hostile], [[hostile]], hostile), FigureBlock("f", hostile, b"\x89PNG")])])
    page = render_html(report)
    assert "<img src=https" not in page and "onerror=alert(1)>" not in page
    assert page.count("&quot;&gt;&lt;img src=https://x.example/a.png onerror=alert(1)&gt;") >= 5
    assert CONTENT_SECURITY_POLICY in page and "default-src 'none'" in CONTENT_SECURITY_POLICY


def test_verdict_cells_get_a_class_only_from_a_fixed_set():
    page = render_html(Report("t", [Section("s", [Table(["verdict"], [["better"], ['x" onclick="y']])])]))
    assert 'class="verdict-better"' in page and "onclick=\"y" not in page


def test_markdown_escaping_keeps_tables_intact():
    assert md_escape("a|b") == "a\\|b" and md_escape("<b>") == "&lt;b&gt;" and md_escape("x\ny") == "x y"
    text = render_markdown(Report("t", [Section("s", [Table(["m"], [["a|b_c*"]]),
                                                      FigureBlock("acc", "cap", b"")])]))
    assert "| a\\|b\\_c\\* |" in text and "![cap](figures/acc.png)" in text


def test_sentences_say_the_p_values_are_holm_adjusted_and_the_ci_is_not():
    row = {**ROW, "verdict": "inconclusive", "reason": "no significant difference, and the CI spans the margin",
           "mean_diff": 0.125, "ci_low": 0.019, "ci_high": 0.232, "p_t": 0.028, "p_t_holm": 0.085,
           "p_tost_holm": 0.9, "alpha": 0.05}
    sentence = verdict_sentence(row, family=3)
    assert "(no significant difference, and the CI spans the margin; paired t p=0.085, TOST p=0.9; " \
           "both Holm-adjusted across 3 sparsities)" in sentence
    assert sentence.endswith("mean difference +12.5 pp [95% CI +1.9, +23.2]; the unadjusted 95% CI "
                             "excludes 0, but not after correcting for 3 sparsities.")
    spanning = verdict_sentence({**row, "ci_low": -0.01, "p_t": 0.2, "p_t_holm": 0.6}, family=3)
    assert "Holm-adjusted across 3 sparsities" in spanning and "excludes 0" not in spanning
    significant = verdict_sentence({**row, "verdict": "better", "p_t_holm": 0.01}, family=3)
    assert "(paired t p=0.01; Wilcoxon p=0.8; both Holm-adjusted across 3 sparsities)" in significant
    assert "excludes 0" not in significant
    # One sparsity: Holm changes nothing, so the sentence does not mention it.
    single = verdict_sentence({**row, "p_t": 0.2, "p_t_holm": 0.2, "ci_low": -0.01})
    assert "Holm" not in single and "excludes 0" not in single


CLAIM_WORDS = ("better", "worse", "equivalent")


def test_too_few_seeds_sentence_shows_the_estimate_but_no_claim():
    row = {**ROW, "n": 3, "verdict": "too few seeds", "mean_diff": -0.037, "ci_low": -0.05,
           "ci_high": -0.02, "p_t": 0.001, "p_t_holm": 0.003, "alpha": 0.05,
           "reason": "n=3; a verdict needs at least 10 paired seeds (the paired t test's power for a shift "
                     "of one SD of the differences is 18% at n=3, 80% at 10)"}
    sentence = verdict_sentence(row, family=3)
    assert sentence.startswith("At sparsity 0.9, random-search vs random: too few seeds for a verdict (n=3;")
    assert "mean difference −3.7 pp [95% CI −5.0, −2.0]" in sentence
    assert not any(word in sentence for word in CLAIM_WORDS), sentence
    assert "p=" not in sentence and "excludes 0" not in sentence


def test_identical_sentence_is_not_a_claim_of_equivalence():
    row = {**ROW, "n": 2, "verdict": "identical (not tested)", "mean_diff": 0.0, "ci_low": 0.0,
           "ci_high": 0.0, "p_tost_holm": float("nan"), "p_t_holm": float("nan"),
           "reason": "every one of the 2 paired differences is exactly 0: nothing to test"}
    sentence = verdict_sentence(row)
    assert "identical results in every seed (not tested" in sentence
    assert not any(word in sentence for word in CLAIM_WORDS), sentence


def test_predictive_headline_is_the_within_seed_analysis():
    import pandas as pd

    from sparsebench.report.sentences import pooled_predictive_sentence, predictive_sentence

    within = pd.DataFrame([dict(scope="overall", sparsity=math.nan, score_name="loss", n_groups=60,
                                n_seeds=20, n_candidates=540, mean_rho=-0.04, ci_low=-0.12, ci_high=0.05,
                                p=0.40, mean_rho_useful=0.04)])
    winner = pd.DataFrame([dict(scope="overall", sparsity=math.nan, n_groups=60, n_seeds=20,
                                mean_winner=0.5, mean_probes=0.4986, mean_diff=0.0014, ci_low=-0.005,
                                ci_high=0.008, p=0.68)])
    headline = predictive_sentence(within, winner)
    assert headline.startswith("Within seeds")
    assert "averages −0.04 [95% CI −0.12, 0.05] over 60 (seed, sparsity) groups of 540 candidates" in headline
    assert "(t interval over 20 seeds, p=0.4)" in headline
    assert "winner's test accuracy minus the mean of its probes" in headline and "+0.14 pp" in headline
    pooled = pd.DataFrame([dict(scope="pooled", sparsity=math.nan, score_name="loss", n=540, rho=0.11,
                                ci_low=0.02, ci_high=0.19, p=0.019, rho_useful=-0.11)])
    secondary = pooled_predictive_sentence(pooled)
    assert secondary.startswith("Secondary, for comparison only") and "parent effect" in secondary
    empty = within.iloc[0:0]
    assert "No probe candidates were trained" in predictive_sentence(empty, winner.iloc[0:0])
