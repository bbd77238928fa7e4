"""THE verdict vocabulary and decision rule: names and their order, the words and colours the report
shows them in, the rule (:func:`decide`, :data:`VERDICT_RULE`) and the multiplicity adjustment.

Every other module reads the verdicts from here: gains and the capacity gate decide with
:func:`decide` on p-values adjusted by :func:`adjust_by_family` / :func:`adjust_rows`; ``check``
compares them; the report colours them (figures from :data:`VERDICT_COLOURS`, the page's CSS from
:func:`verdict_css`) and words them (:data:`VERDICT_WORDS`, :data:`VERDICT_MEANINGS`).

Adjustment (Holm's step-down by default, Benjamini-Hochberg, or none), with ONE rule for missing
p-values: a NaN p is not a test. It stays NaN and does not count in the family's number of tests
``m`` (a contrast without a standard error tests nothing, and counting it would make every other
contrast of its family more conservative). The same rule holds for one vector and for every row of a
replicates x tests array.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["VERDICTS", "DECIDED", "VERDICT_WORDS", "VERDICT_MEANINGS", "VERDICT_COLOURS", "VERDICT_RULE", "verdict_rule",
           "CORRECTIONS", "decide", "adjust_pvalues", "adjust_by_family", "adjust_rows", "verdict_css"]

#: The verdicts, in the order the report lists them.
VERDICTS = ("helps", "within_noise", "hurts", "inconclusive")
#: The verdicts that decide a contrast (a plan expectation is met or contradicted only by these).
DECIDED = ("helps", "within_noise", "hurts")
#: verdict -> the words the report prints
VERDICT_WORDS = {"helps": "helps", "within_noise": "within noise", "hurts": "hurts", "inconclusive": "inconclusive"}
#: verdict -> what it means, in the legend's words
VERDICT_MEANINGS = {
    "helps": "gain significant and larger than the margin",
    "within_noise": "equivalent to the baseline within ±margin",
    "hurts": "significantly worse by more than the margin",
    "inconclusive": "more seeds needed",
}
#: verdict -> (strong colour for marks and text, light background for table cells); colour-blind safe
VERDICT_COLOURS = {
    "helps": ("#1b7837", "#d7efd0"),
    "within_noise": ("#5a6270", "#e6e9ee"),
    "hurts": ("#b2182b", "#fbd9d3"),
    "inconclusive": ("#a36b00", "#fdf0c8"),
}
#: The CSS custom-property stem of each verdict (``--helps``, ``--helps-bg``) that other report rules use.
_CSS_VAR = {"helps": "helps", "within_noise": "noise", "hurts": "hurts", "inconclusive": "inc"}
CORRECTIONS = ("holm", "bh", "none")

#: The p each correction gives, in the rule's words.
_ADJUSTED = {"holm": "Holm-adjusted p (family: every contrast of the study and task)",
             "bh": "Benjamini-Hochberg-adjusted p (family: every contrast of the study and task)",
             "none": "unadjusted p"}


def verdict_rule(correction: str = "holm") -> str:
    """:data:`VERDICT_RULE` in the words of the plan's ``correction`` (the methods state the one used)."""
    if correction not in _ADJUSTED:
        raise ValueError(f"unknown correction {correction!r}; valid: {', '.join(CORRECTIONS)}")
    adj = "" if correction == "none" else "adjusted "
    return (f"helps: the {_ADJUSTED[correction]} is below alpha and the estimated gain exceeds +margin; hurts: "
            f"{adj}p below alpha and the estimate below -margin; within_noise: the {adj}TOST p is below alpha, i.e. "
            "the gain is shown to lie inside (-margin, +margin); inconclusive: anything else")


#: The verdict rule under the default correction (Holm); :func:`verdict_rule` for another.
VERDICT_RULE = verdict_rule("holm")


def decide(gain: float, p_adj: float, p_tost_adj: float, margin: float, alpha: float) -> str:
    """The verdict of one contrast (see :data:`VERDICT_RULE`); a NaN p decides nothing."""
    if np.isfinite(p_adj) and p_adj < alpha and gain > margin:
        return "helps"
    if np.isfinite(p_adj) and p_adj < alpha and gain < -margin:
        return "hurts"
    if np.isfinite(p_tost_adj) and p_tost_adj < alpha:
        return "within_noise"
    return "inconclusive"


def _adjust_sorted(ranked: np.ndarray, method: str) -> np.ndarray:
    """Adjusted p-values of ascending p-values along the last axis (every entry a test)."""
    m = ranked.shape[-1]
    if method == "holm":
        adj = np.maximum.accumulate((m - np.arange(m)) * ranked, axis=-1)
    elif method == "bh":
        adj = np.flip(np.minimum.accumulate(np.flip(m / np.arange(1, m + 1) * ranked, -1), axis=-1), -1)
    elif method == "none":
        adj = ranked
    else:
        raise ValueError(f"unknown correction {method!r}; valid: {', '.join(CORRECTIONS)}")
    return np.minimum(adj, 1.0)


def adjust_pvalues(p: np.ndarray, method: str) -> np.ndarray:
    """Holm (step-down FWER), Benjamini-Hochberg (FDR) or no adjustment of one family's p-values;
    NaN entries stay NaN and do not count as tests."""
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    if not ok.any():
        if method not in CORRECTIONS:
            raise ValueError(f"unknown correction {method!r}; valid: {', '.join(CORRECTIONS)}")
        return out
    pv = p[ok]
    order = np.argsort(pv, kind="mergesort")
    res = np.empty(len(pv))
    res[order] = _adjust_sorted(pv[order], method)
    out[ok] = res
    return out


def adjust_by_family(p: np.ndarray, family: np.ndarray, method: str) -> np.ndarray:
    """:func:`adjust_pvalues` within each family label (one label per p-value)."""
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    family = np.asarray(family)
    for lab in pd.unique(family):
        m = family == lab
        out[m] = adjust_pvalues(p[m], method)
    return out


def adjust_rows(p: np.ndarray, method: str) -> np.ndarray:
    """:func:`adjust_pvalues` of every row of ``p`` (replicates x tests): rows without a NaN all at once,
    the others (whose number of tests differs) row by row."""
    p = np.asarray(p, dtype=float)
    if method not in CORRECTIONS:
        raise ValueError(f"unknown correction {method!r}; valid: {', '.join(CORRECTIONS)}")
    out = np.full_like(p, np.nan)
    full = np.isfinite(p).all(axis=1)
    if full.any():
        q = p[full]
        order = np.argsort(q, axis=1, kind="mergesort")
        res = np.empty_like(q)
        np.put_along_axis(res, order, _adjust_sorted(np.take_along_axis(q, order, axis=1), method), axis=1)
        out[full] = res
    for r in np.flatnonzero(~full):
        out[r] = adjust_pvalues(p[r], method)
    return out


def verdict_css() -> str:
    """The report's CSS for the verdicts: the colour variables (``--helps``, ``--helps-bg``, ...) that
    other rules reuse, and one class per verdict (``.v-helps``) for chips and table cells."""
    root = " ".join(f"--{_CSS_VAR[v]}: {strong}; --{_CSS_VAR[v]}-bg: {light};"
                    for v, (strong, light) in VERDICT_COLOURS.items())
    rules = "\n".join(f".v-{v} {{ background: var(--{_CSS_VAR[v]}-bg); color: var(--{_CSS_VAR[v]}); }}"
                      for v in VERDICTS)
    return f":root {{ {root} }}\n{rules}\n"
