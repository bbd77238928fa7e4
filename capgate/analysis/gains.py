"""Gains of each pretrained initialization over the baseline, per cell, with honest small-sample
inference, multiplicity correction, equivalence tests, verdicts and a seeds-needed power analysis.

Per cell (task, family, backbone, train_set, eval_set, shift) and init ``a`` vs baseline ``b``:

- ``gain = mean_a - mean_b`` (difference of seed means; unbiased whatever the shape of the true gain
  over capacity, because nothing is smoothed across cells);
- ``se = sd_pooled * sqrt(1/n_a + 1/n_b)`` with ``sd_pooled`` the run-to-run SD pooled over all cells
  of the task and ``df`` its degrees of freedom (see :func:`capgate.analysis.cells.pooled_noise`);
- a two-sided t interval ``gain ± t(1 - alpha/2, df) * se`` and p-value, adjusted over every contrast
  of the analysis (Holm by default, Benjamini-Hochberg optional);
- TOST equivalence ``p_tost = max(P(T >= (gain + m)/se), P(T <= (gain - m)/se))`` for margin ``m``:
  ``p_tost < alpha`` exactly when the (1 - 2 alpha) t interval lies inside (-m, m).

Verdict rule (in this order):
``helps`` if ``p_adj < alpha`` and ``gain > m``; ``hurts`` if ``p_adj < alpha`` and ``gain < -m``;
``within_noise`` if ``p_tost < alpha``; ``inconclusive`` otherwise.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from capgate.analysis.cells import CELL_COLUMNS, pooled_noise
from capgate.analysis.plan import margin_rule
from capgate.analysis.result import GAINS_COLUMNS

__all__ = ["compute_gains", "adjust_pvalues", "decide", "seeds_needed", "VERDICT_RULE"]

VERDICT_RULE = (
    "helps: adjusted p < alpha and gain > margin; hurts: adjusted p < alpha and gain < -margin; "
    "within_noise: TOST p < alpha, i.e. the (1 - 2 alpha) t interval lies inside (-margin, +margin); "
    "inconclusive: anything else"
)


def adjust_pvalues(p: np.ndarray, method: str) -> np.ndarray:
    """Holm (step-down FWER) or Benjamini-Hochberg (FDR) adjusted p-values; NaN entries stay NaN
    and do not count as tests. ``method='none'`` returns ``p`` unchanged."""
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    m = int(ok.sum())
    if m == 0:
        return out
    pv = p[ok]
    order = np.argsort(pv, kind="mergesort")
    ranked = pv[order]
    if method == "holm":
        adj = np.maximum.accumulate((m - np.arange(m)) * ranked)
    elif method == "bh":
        adj = np.minimum.accumulate((m / np.arange(m, 0, -1) * ranked[::-1]))[::-1]
    elif method == "none":
        adj = ranked
    else:
        raise ValueError(f"unknown correction {method!r}; valid: holm, bh, none")
    res = np.empty(m)
    res[order] = np.minimum(adj, 1.0)
    out[ok] = res
    return out


def decide(gain: float, p_adj: float, p_tost: float, margin: float, alpha: float) -> str:
    """The verdict of one contrast (see :data:`VERDICT_RULE`)."""
    if np.isfinite(p_adj) and p_adj < alpha and gain > margin:
        return "helps"
    if np.isfinite(p_adj) and p_adj < alpha and gain < -margin:
        return "hurts"
    if np.isfinite(p_tost) and p_tost < alpha:
        return "within_noise"
    return "inconclusive"


def _resolve_probability(delta: float, sigma: float, margin: float, n: np.ndarray, alpha: float,
                         df: float) -> np.ndarray:
    """P(the contrast resolves with n seeds per arm) if the true gain is ``delta`` and noise ``sigma``
    (vectorized over ``n``)."""
    se = sigma * np.sqrt(2.0 / np.asarray(n, dtype=float))
    if abs(delta) > margin:
        thr = np.maximum(margin, stats.t.ppf(1 - alpha / 2, df) * se)
        return stats.norm.sf((thr - abs(delta)) / se)
    half = margin - stats.t.ppf(1 - alpha, df) * se
    p = stats.norm.cdf((half - delta) / se) - stats.norm.cdf((-half - delta) / se)
    return np.where(half > 0, p, 0.0)


def seeds_needed(delta: float, sigma: float, margin: float, *, alpha: float, df: float,
                 power: float = 0.8, cap: int = 100) -> int | None:
    """Seeds per arm likely (probability ``power``) to resolve a contrast whose true gain is ``delta``.

    If ``|delta| > margin`` the target is ``helps``/``hurts`` (unadjusted two-sided t test at alpha
    and the estimate beyond the margin); otherwise ``within_noise`` (TOST at alpha). The estimate is
    taken as the truth (a planning guide, not a guarantee); ``cap`` means "cap or more". None when
    the noise is unknown.
    """
    if not (np.isfinite(delta) and np.isfinite(sigma) and sigma > 0 and np.isfinite(df) and df > 0):
        return None
    n = np.arange(2, cap + 1)
    ok = np.flatnonzero(_resolve_probability(delta, sigma, margin, n, alpha, df) >= power)
    return int(n[ok[0]]) if len(ok) else cap


def compute_gains(y: pd.DataFrame, cells: pd.DataFrame, plan: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All contrasts of the plan. ``y``: ok rows from :func:`metric_frame`; ``cells``: :func:`cell_table`.

    Returns (gains with :data:`GAINS_COLUMNS` plus ``key``, noise table of :func:`pooled_noise` plus
    the resolved ``margin`` per task).
    """
    alpha, baseline = plan["alpha"], plan["baseline"]
    noise = pooled_noise(y)
    margins = []
    for r in noise.itertuples(index=False):
        rule = margin_rule(plan, r.task)
        margins.append(r.sd_pooled if rule == "pooled_sd" else float(rule))
    noise["margin"] = margins
    site = [c for c in CELL_COLUMNS if c != "init"]
    arm = cells[cells["init"] != baseline]
    if plan["contrasts"] != "all":
        arm = arm[arm["init"].isin(plan["contrasts"])]
    base = cells[cells["init"] == baseline][site + ["mean", "sd", "n_ok"]]
    m = arm.merge(base, on=site, how="left", suffixes=("", "_b")).merge(
        noise[["task", "sd_pooled", "df", "margin"]], on="task", how="left")
    n_a = m["n_ok"].to_numpy(dtype=float)
    n_b = m["n_ok_b"].fillna(0).to_numpy(dtype=float)
    both = (n_a > 0) & (n_b > 0)
    sd_p, df, margin = (m[c].to_numpy(dtype=float) for c in ("sd_pooled", "df", "margin"))
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = np.where(both, m["mean"].to_numpy(dtype=float) - m["mean_b"].to_numpy(dtype=float), np.nan)
        se = np.where(both, sd_p * np.sqrt(1 / n_a + 1 / n_b), np.nan)
        valid = np.isfinite(gain) & np.isfinite(se) & (se > 0) & (df > 0)
        dfv = np.where(valid, df, 1.0)
        tc = stats.t.ppf(1 - alpha / 2, dfv)
        ci_low = np.where(valid, gain - tc * se, np.nan)
        ci_high = np.where(valid, gain + tc * se, np.nan)
        p = np.where(valid, 2 * stats.t.sf(np.abs(gain) / se, dfv), np.nan)
        p_tost = np.where(valid, np.maximum(stats.t.sf((gain + margin) / se, dfv),
                                            stats.t.cdf((gain - margin) / se, dfv)), np.nan)
        var_num = (np.where(n_a >= 2, (n_a - 1) * m["sd"].to_numpy(dtype=float) ** 2, 0.0)
                   + np.where(n_b >= 2, (n_b - 1) * m["sd_b"].to_numpy(dtype=float) ** 2, 0.0))
        var_den = np.where(n_a >= 2, n_a - 1, 0) + np.where(n_b >= 2, n_b - 1, 0)
        sd_cell = np.where(var_den > 0, np.sqrt(var_num / np.maximum(var_den, 1)), np.nan)
    gains = pd.DataFrame({
        "key": m["key"] + f"|vs|{baseline}", "study": m["study"], "task": m["task"], "family": m["family"],
        "backbone": m["backbone"], "params": m["params"].astype("int64"), "train_set": m["train_set"],
        "eval_set": m["eval_set"], "shift": m["shift"], "init": m["init"], "baseline": baseline,
        "metric": m["metric"], "mean_init": np.where(n_a > 0, m["mean"], np.nan),
        "mean_baseline": m["mean_b"].astype(float), "gain": gain, "se": se, "df": df, "ci_low": ci_low,
        "ci_high": ci_high, "sd_cell": sd_cell, "sd_pooled": sd_p, "margin": margin,
        "n_init": n_a.astype(int), "n_baseline": n_b.astype(int), "p_value": p, "p_tost": p_tost,
    })
    gains["p_adj"] = adjust_pvalues(gains["p_value"].to_numpy(), plan["correction"])
    gains["verdict"] = [
        decide(r.gain, r.p_adj, r.p_tost, r.margin, alpha) for r in gains.itertuples(index=False)
    ]
    needed = []
    for r in gains.itertuples(index=False):
        if r.verdict != "inconclusive":
            needed.append(None)
            continue
        n = seeds_needed(r.gain, r.sd_pooled, r.margin, alpha=alpha, df=r.df,
                         power=plan["power"], cap=plan["max_seeds"])
        needed.append(None if n is None else max(n, min(max(r.n_init, r.n_baseline) + 1, plan["max_seeds"])))
    gains["seeds_needed"] = pd.array(needed, dtype="Int64")
    gains = gains.sort_values(["task", "family", "params", "backbone", "train_set", "eval_set", "init"],
                              kind="mergesort").reset_index(drop=True)
    return gains[["key", *GAINS_COLUMNS]], noise
