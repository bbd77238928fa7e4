"""The verdict vocabulary, rule and adjustment in their one home (capgate.analysis.verdicts), and the
capacity gate judging with exactly the verdicts' p-values."""

from __future__ import annotations

import numpy as np
import pytest

from capgate.analysis.analyze import analyze_contrasts
from capgate.analysis.gate import _rule_p
from capgate.analysis.plan import resolve_plan
from capgate.analysis.verdicts import (VERDICT_COLOURS, VERDICT_RULE, VERDICT_WORDS, VERDICTS, adjust_by_family,
                                       adjust_pvalues, adjust_rows, decide, verdict_css, verdict_rule)
from capgate.analysis import simulate_results
from helpers import detection_truth


def test_holm_by_hand_and_nan_is_not_a_test():
    # sorted 0.01, 0.03, 0.04 -> 3 * 0.01, max(2 * 0.03, 0.03), max(1 * 0.04, 0.06)
    assert adjust_pvalues(np.array([0.04, 0.01, 0.03]), "holm").tolist() == pytest.approx([0.06, 0.03, 0.06])
    # a NaN stays NaN and does not count: the same numbers as without it (m = 3, not 4)
    out = adjust_pvalues(np.array([0.04, np.nan, 0.01, 0.03]), "holm")
    assert np.isnan(out[1]) and out[[0, 2, 3]].tolist() == pytest.approx([0.06, 0.03, 0.06])
    assert adjust_pvalues(np.array([0.01, 0.04, 0.03]), "bh").tolist() == pytest.approx([0.03, 0.04, 0.04])
    assert adjust_pvalues(np.array([0.6, 0.5]), "holm").tolist() == [1.0, 1.0]  # capped at 1
    assert np.isnan(adjust_pvalues(np.array([np.nan]), "holm")).all()
    with pytest.raises(ValueError, match="valid: holm, bh, none"):
        adjust_pvalues(np.array([0.1]), "bonferroni")


def test_families_are_adjusted_apart():
    out = adjust_by_family(np.array([0.01, 0.02, 0.01]), np.array(["a", "a", "b"]), "holm")
    assert out.tolist() == pytest.approx([0.02, 0.02, 0.01])


def test_adjust_rows_is_adjust_pvalues_row_by_row():
    """The vectorised replicate adjustment gives exactly the per-row adjustment (NaN rows included)."""
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, size=(50, 7)) ** 3
    p[3, 2] = np.nan
    p[10] = 0.5  # ties
    for method in ("bh", "holm", "none"):
        want = np.vstack([adjust_pvalues(row, method) for row in p])
        np.testing.assert_array_equal(adjust_rows(p, method), want)
    assert adjust_rows(np.array([[0.01, 0.04, 0.03]]), "bh").tolist() == [[0.03, 0.04, 0.04]]


def test_decide_by_hand():
    assert decide(0.03, 0.01, 0.9, 0.01, 0.05) == "helps"
    assert decide(-0.03, 0.01, 0.9, 0.01, 0.05) == "hurts"
    assert decide(0.005, 0.01, 0.9, 0.01, 0.05) == "inconclusive"  # significant but inside the margin
    assert decide(0.002, 0.5, 0.01, 0.01, 0.05) == "within_noise"
    assert decide(0.03, np.nan, np.nan, 0.01, 0.05) == "inconclusive"


def test_one_vocabulary_for_words_colours_and_css():
    assert VERDICTS == ("helps", "within_noise", "hurts", "inconclusive")
    assert set(VERDICT_WORDS) == set(VERDICT_COLOURS) == set(VERDICTS)
    css = verdict_css()
    for v in VERDICTS:
        assert f".v-{v} {{" in css
    assert "--helps: #1b7837; --helps-bg: #d7efd0;" in css


@pytest.mark.parametrize("sequential", [None, {"max_seeds": 8, "schedule": [3, 5, 8]}])
def test_the_gate_uses_the_verdicts_p_values(sequential):
    """A replicate whose gains are the point estimates gets exactly the verdicts' raw p-values: the
    fixed-design t test, or the repeated p-values of the contrast's look under a sequential plan."""
    plan = resolve_plan({"n_boot": 0, "sequential": sequential})
    table = simulate_results(detection_truth(seeds=4), seed=5)
    _, gains, _ = analyze_contrasts(table, plan)
    p = _rule_p(gains["gain"].to_numpy(dtype=float)[None, :], gains, plan)[0]
    np.testing.assert_allclose(p, gains["p_value"].to_numpy(dtype=float), rtol=1e-9, equal_nan=True)
    fixed = _rule_p(gains["gain"].to_numpy(dtype=float)[None, :], gains, resolve_plan({"n_boot": 0}))[0]
    if sequential:  # an early look spends little alpha: the repeated p-values are larger
        assert (p[np.isfinite(p)] >= fixed[np.isfinite(p)] - 1e-12).all() and (p > fixed + 1e-6).any()


@pytest.mark.parametrize("correction, words", [("holm", "Holm-adjusted p"), ("bh", "Benjamini-Hochberg-adjusted p"),
                                               ("none", "unadjusted p")])
def test_the_methods_state_the_rule_with_the_plans_correction(correction, words):
    """The methods' verdict rule names the correction the verdicts used (it said Holm under BH)."""
    from capgate.analysis.analyze import analyze
    from capgate.analysis.summary import build_summary
    from capgate.report.methods import methods_paragraphs

    plan = resolve_plan({"n_boot": 0, "correction": correction})
    a = analyze(simulate_results(detection_truth(seeds=3), seed=5), plan)
    rule = next(p for p in methods_paragraphs(a.methods, a.models, a.plan, build_summary(a)) if p.startswith("Verdicts."))
    assert f"helps: the {words} " in rule
    assert ("Holm" in rule) == (correction == "holm") and ("adjusted TOST" in rule) == (correction != "none")
    assert verdict_rule("holm") == VERDICT_RULE
    with pytest.raises(ValueError, match="unknown correction 'fdr'; valid: holm, bh, none"):
        verdict_rule("fdr")
