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


def _resolve_probability(delta: float, sigma: float, margin: float, n: int, alpha: float, df: float) -> float:
    """P(the contrast resolves with n seeds per arm) if the true gain is ``delta`` and noise ``sigma``."""
    se = sigma * math.sqrt(2.0 / n)
    if abs(delta) > margin:
        thr = max(margin, stats.t.ppf(1 - alpha / 2, df) * se)
        return float(stats.norm.sf((thr - abs(delta)) / se))
    half = margin - stats.t.ppf(1 - alpha, df) * se
    if half <= 0:
        return 0.0
    return float(stats.norm.cdf((half - delta) / se) - stats.norm.cdf((-half - delta) / se))


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
    for n in range(2, cap + 1):
        if _resolve_probability(delta, sigma, margin, n, alpha, df) >= power:
            return n
    return cap


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
    nz = noise.set_index("task")
    site = [c for c in CELL_COLUMNS if c != "init"]
    base = cells[cells["init"] == baseline].set_index(site)
    rows = []
    for c in cells[cells["init"] != baseline].itertuples(index=False):
        if plan["contrasts"] != "all" and c.init not in plan["contrasts"]:
            continue
        k = tuple(getattr(c, s) for s in site)
        b = base.loc[k] if k in base.index else None
        sd_p = float(nz.loc[c.task, "sd_pooled"]) if c.task in nz.index else float("nan")
        df = float(nz.loc[c.task, "df"]) if c.task in nz.index else float("nan")
        margin = float(nz.loc[c.task, "margin"]) if c.task in nz.index else float("nan")
        n_a, n_b = int(c.n_ok), int(b["n_ok"]) if b is not None else 0
        mean_b = float(b["mean"]) if b is not None else float("nan")
        gain = float(c.mean) - mean_b if n_a and n_b else float("nan")
        se = sd_p * math.sqrt(1 / n_a + 1 / n_b) if n_a and n_b and np.isfinite(sd_p) else float("nan")
        valid = np.isfinite(gain) and np.isfinite(se) and se > 0 and df > 0
        if valid:
            tc = stats.t.ppf(1 - alpha / 2, df)
            ci_low, ci_high = gain - tc * se, gain + tc * se
            p = float(2 * stats.t.sf(abs(gain) / se, df))
            p_tost = float(max(stats.t.sf((gain + margin) / se, df), stats.t.cdf((gain - margin) / se, df)))
        else:
            ci_low = ci_high = p = p_tost = float("nan")
        sd_cell = _pooled_pair_sd(c.sd, n_a, b["sd"] if b is not None else float("nan"), n_b)
        rows.append({
            "key": f"{c.key}|vs|{baseline}", "study": c.study, "task": c.task, "family": c.family,
            "backbone": c.backbone, "params": int(c.params), "train_set": c.train_set,
            "eval_set": c.eval_set, "shift": c.shift, "init": c.init, "baseline": baseline,
            "metric": c.metric, "mean_init": float(c.mean) if n_a else float("nan"), "mean_baseline": mean_b,
            "gain": gain, "se": se, "df": df, "ci_low": ci_low, "ci_high": ci_high,
            "sd_cell": sd_cell, "sd_pooled": sd_p, "margin": margin, "n_init": n_a, "n_baseline": n_b,
            "p_value": p, "p_tost": p_tost,
        })
    gains = pd.DataFrame(rows, columns=["key", *[c for c in GAINS_COLUMNS if c not in ("p_adj", "verdict", "seeds_needed")]])
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


def _pooled_pair_sd(sd_a: float, n_a: int, sd_b: float, n_b: int) -> float:
    """Seed-to-seed SD of one cell: the two arms' variances pooled (NaN if neither arm has 2 seeds)."""
    num = den = 0.0
    for sd, n in ((sd_a, n_a), (sd_b, n_b)):
        if n >= 2 and np.isfinite(sd):
            num += (n - 1) * sd**2
            den += n - 1
    return float(math.sqrt(num / den)) if den > 0 else float("nan")
