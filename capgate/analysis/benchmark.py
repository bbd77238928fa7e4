"""The lightweight-CNN benchmark's answer: one table per dataset, rankings per init, and whether
the ranking changes with the initialization beyond seed noise.

A benchmark study trains standard models (``family`` ``standard``) on one dataset per train set
and evaluates them on that dataset's test split, so a "dataset" is an ``eval_set``. Nothing here is
fitted again: the table is built from the results table and the :class:`~capgate.analysis.result.Analysis`
the rest of capgate computes, so a model is a rung and gets the same calibrated verdicts.

- **Metrics** (``top1``, ``top5``, ``macro_f1`` where the table has them): per (eval_set, backbone,
  init) the mean over the ``ok`` seeds and a Student-t interval ``mean +/- t_{(1+level)/2, n-1} * sd / sqrt(n)``
  (no interval from one seed).
- **Cost**: ``params``, FP32 storage ``size_bytes`` (every parameter and buffer at 4 bytes), ``macs`` (one
  forward of one image at the run's resolution, conv + linear multiply-accumulates: ``capgate.models.MACS_CONVENTION``)
  and ``latency_ms``: medians over the model's records; absent columns stay NaN.
- **Rank** within (eval_set, init), 1 = best primary-metric mean (:func:`capgate.analysis.ranking.rankings`).
- **Ranking change**: Kendall's tau between the two inits' orders against the same-init noise reference
  (:func:`capgate.analysis.ranking.ranking_stability`: ``flips`` only when tau falls below the reference's
  ``alpha`` quantile); :func:`rank_flips` lists the pairs whose order reverses and whether each reversal
  is beyond noise (both orders held with ``p_keep >= 1 - alpha``).
- **Verdict**: the gain of each non-baseline init over the baseline and its verdict, from the gains table.
- **Pareto**: whether the model is on the accuracy-cost front of its init, per cost axis.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from capgate.schema import CLASSIFICATION_METRICS

__all__ = ["benchmark_table", "rank_flips", "ranking_changes", "seed_interval", "BENCHMARK_COST"]

#: Cost columns of the benchmark table, in the order shown.
BENCHMARK_COST = ("params", "size_bytes", "macs", "latency_ms")
_KEYS = ["task", "eval_set", "backbone", "init"]


def seed_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """``(mean, low, high)`` of per-seed values: the Student-t interval at ``level``; NaN bounds
    with fewer than two finite values."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return math.nan, math.nan, math.nan
    m = float(v.mean())
    if len(v) < 2:
        return m, math.nan, math.nan
    h = float(stats.t.ppf((1 + level) / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    return m, m - h, m + h


def benchmark_table(y: pd.DataFrame, analysis: Any, level: float = 0.95) -> pd.DataFrame:
    """One row per (task, eval_set, backbone, init) of a classification results table ``y`` and its
    ``analysis``: ``n_seeds``; for each metric ``<m>``, ``<m>_low``, ``<m>_high``; the cost columns;
    ``rank``; ``gain``, ``verdict`` (NaN/None for the baseline init); ``front_<axis>`` per Pareto axis.
    Sorted by eval_set, init, rank."""
    ok = y[(y["status"] == "ok") & (y["task"] == "classification")]
    metrics = [m for m in CLASSIFICATION_METRICS if m in ok.columns]
    rows = []
    for key, g in ok.groupby(_KEYS, sort=True):
        row: dict[str, Any] = dict(zip(_KEYS, key), family=g["family"].iloc[0], n_seeds=int(g["seed"].nunique()))
        for m in metrics:
            per_seed = g.groupby("seed")[m].mean().to_numpy(dtype=float)
            row[m], row[f"{m}_low"], row[f"{m}_high"] = seed_interval(per_seed, level)
        for c in BENCHMARK_COST:
            row[c] = float(g[c].median()) if c in g.columns and g[c].notna().any() else math.nan
        rows.append(row)
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    ranks = analysis.rankings[["task", "eval_set", "init", "backbone", "rank"]]
    out = out.merge(ranks, on=_KEYS, how="left")
    gains = analysis.gains
    if len(gains):
        g = gains.groupby(_KEYS, sort=False).agg(gain=("gain", "mean"), verdict=("verdict", "first")).reset_index()
        out = out.merge(g, on=_KEYS, how="left")
    else:
        out["gain"], out["verdict"] = math.nan, None
    pareto = analysis.pareto
    for axis in (pareto["axis"].unique() if len(pareto) else []):
        p = pareto[pareto["axis"] == axis][_KEYS + ["on_front"]].rename(columns={"on_front": f"front_{axis}"})
        out = out.merge(p, on=_KEYS, how="left")
    return out.sort_values(["task", "eval_set", "init", "rank"]).reset_index(drop=True)


def rank_flips(analysis: Any, alpha: float | None = None) -> pd.DataFrame:
    """Every pair of backbones whose order differs between two inits of one eval set: task, eval_set,
    init_a, init_b, better_a (the one ranked higher under init_a), better_b, p_keep_a, p_keep_b (the
    probability that each init's order holds, from the adjacent-or-not pair gap), beyond_noise (both
    at least ``1 - alpha``; ``alpha`` defaults to the plan's)."""
    alpha = analysis.plan.alpha if alpha is None else alpha
    r = analysis.rankings
    rows = []
    for (task, ev), grp in r.groupby(["task", "eval_set"], sort=True):
        inits = sorted(grp["init"].unique())
        by = {i: grp[grp["init"] == i].set_index("backbone") for i in inits}
        for i, a in enumerate(inits):
            for b in inits[i + 1:]:
                common = sorted(set(by[a].index) & set(by[b].index))
                for j, u in enumerate(common):
                    for v in common[j + 1:]:
                        da = by[a].at[u, "mean"] - by[a].at[v, "mean"]
                        db = by[b].at[u, "mean"] - by[b].at[v, "mean"]
                        if da * db >= 0:
                            continue
                        hi_a, lo_a = (u, v) if da > 0 else (v, u)
                        pa, pb = _p_order(by[a], hi_a, lo_a), _p_order(by[b], lo_a, hi_a)
                        rows.append({"task": task, "eval_set": ev, "init_a": a, "init_b": b, "better_a": hi_a,
                                     "better_b": lo_a, "p_keep_a": pa, "p_keep_b": pb,
                                     "beyond_noise": bool(min(pa, pb) >= 1 - alpha)})
    return pd.DataFrame(rows, columns=["task", "eval_set", "init_a", "init_b", "better_a", "better_b", "p_keep_a",
                                       "p_keep_b", "beyond_noise"])


def _p_order(r: pd.DataFrame, upper: str, lower: str) -> float:
    """P(upper's true mean > lower's) under the ranking's t model (as ``ranking_stability``'s p_keep)."""
    gap = float(r.at[upper, "mean"] - r.at[lower, "mean"])
    s = float(np.hypot(r.at[upper, "se"], r.at[lower, "se"]))
    d = np.nanmin([r.at[upper, "df"], r.at[lower, "df"]])
    if not (s > 0 and np.isfinite(s) and np.isfinite(d)):
        return 1.0 if gap > 0 else 0.0
    return float(stats.t.cdf(gap / s, min(d, 1e6)))


def ranking_changes(analysis: Any) -> pd.DataFrame:
    """Per (task, eval_set, init pair): Kendall's tau, the noise reference, ``flips`` (the order changes
    beyond seed noise), and the number of pairs that reverse (``n_reversed``) and of those beyond noise."""
    tau = analysis.ranking_stability["tau"].copy()
    flips = rank_flips(analysis)
    keys = ["task", "eval_set", "init_a", "init_b"]
    if len(flips):
        n = flips.groupby(keys).agg(n_reversed=("better_a", "size"), n_reversed_beyond_noise=("beyond_noise", "sum"))
        tau = tau.merge(n.reset_index(), on=keys, how="left")
    else:
        tau["n_reversed"], tau["n_reversed_beyond_noise"] = 0, 0
    tau[["n_reversed", "n_reversed_beyond_noise"]] = tau[["n_reversed", "n_reversed_beyond_noise"]].fillna(0).astype(int)
    return tau
