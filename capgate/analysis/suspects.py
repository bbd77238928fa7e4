"""Contrasts at a suspect site judged both ways (plan ``outlier_runs: isolate``).

A suspect site (:func:`capgate.analysis.cells.suspect_sites`) holds a run the isolation kept in but that
lies low among its siblings: a collapse just short of the thresholds, one the high-side mirror kept in, or
noise. With the run in, a collapse would make claims; with it out, trimmed noise would. Each contrast of
the site is judged by both analyses (:func:`capgate.analysis.gains.compute_gains` runs the second on
:func:`capgate.analysis.cells.without_runs`) and states only what both state: an intersection-union
test, whose level holds whichever the run was (README, Calibration).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["at_sites", "both_ways"]


def at_sites(m: pd.DataFrame, sites: pd.DataFrame) -> np.ndarray:
    """The contrasts of ``m`` at one of ``sites`` (rows of :func:`~capgate.analysis.cells.suspect_sites`)."""
    cols = [c for c in sites.columns if c != "run_id"]
    marked = set(map(tuple, sites[cols].drop_duplicates().to_numpy().tolist()))
    return np.array([tuple(r) in marked for r in m[cols].itertuples(index=False)], dtype=bool)


def both_ways(j: dict, out: dict, mark: np.ndarray) -> np.ndarray:
    """In place on ``j``, the estimates and tests (``gains._judged``) of the rows with the suspect runs,
    ``out`` those of the rows without them: the ``mark``-ed contrasts (a suspect site's) judged both ways,
    an intersection-union test. A claim must hold both ways, so it keeps its level if either analysis is
    valid (the suspect run a collapse, or noise). Per contrast: ``p`` and ``p_tost`` the larger of the two
    (``p`` 1 where the two gains differ in sign, both 1 where only one analysis has a test: too few runs
    left); the estimate, SE and df of the analysis with the larger ``p``; the interval the hull of both.
    Returns the other analysis's gain at the marked contrasts (NaN elsewhere):
    :func:`capgate.analysis.gains.compute_gains` keeps a verdict only where that gain gives it too."""
    other = np.full(len(mark), np.nan)
    key_out = pd.Series(np.arange(len(out["m"])), index=out["m"]["key"].to_numpy())
    for i in np.flatnonzero(mark):
        k = j["m"]["key"].iat[i]
        if k not in key_out.index:
            continue
        o = int(key_out[k])
        if not (j["valid"][i] and out["valid"][o]):  # no second analysis (too few runs left): nothing to claim
            j["p"][i], j["p_tost"][i] = (1.0, 1.0) if j["valid"][i] else (j["p"][i], j["p_tost"][i])
            continue
        g_in, g_out = j["est"]["gain"][i], out["est"]["gain"][o]
        p_both = max(j["p"][i], out["p"][o]) if np.sign(g_in) == np.sign(g_out) else 1.0
        if out["p"][o] > j["p"][i]:  # the binding analysis: its estimate stands
            for c in ("gain", "se", "df", "sd_raw", "sd_mod"):
                j["est"][c][i] = out["est"][c][o]
            j["est"]["partial"][i] = out["est"]["partial"][o]
            for c in ("n_a", "n_b", "n_p", "paired"):
                j[c][i] = out[c][o]
        other[i] = g_out if j["est"]["gain"][i] == g_in else g_in
        j["p"][i] = p_both
        j["p_tost"][i] = np.fmax(j["p_tost"][i], out["p_tost"][o])
        j["ci_low"][i] = min(j["ci_low"][i], out["ci_low"][o])
        j["ci_high"][i] = max(j["ci_high"][i], out["ci_high"][o])
    return other
