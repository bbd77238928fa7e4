"""Efficiency: Pareto fronts of the metric against cost (params, MACs, latency) per init."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["pareto_front", "pareto_table", "COST_AXES"]

COST_AXES = ("params", "macs", "latency_ms")


def pareto_front(cost: np.ndarray, metric: np.ndarray) -> np.ndarray:
    """Boolean mask of points no other point dominates (cost <= and metric >=, one strictly)."""
    cost, metric = np.asarray(cost, float), np.asarray(metric, float)
    le = cost[None, :] <= cost[:, None]
    ge = metric[None, :] >= metric[:, None]
    strict = (cost[None, :] < cost[:, None]) | (metric[None, :] > metric[:, None])
    dominated = (le & ge & strict).any(axis=1)
    return ~dominated


def pareto_table(y: pd.DataFrame, ranks: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, eval_set, init, axis, backbone): cost (median over the backbone's records),
    metric (the ranking mean), on_front. Axes absent from the table (e.g. no latency) are skipped."""
    axes = [a for a in COST_AXES if a in y.columns and y[a].notna().any()]
    if not axes or ranks.empty:
        return pd.DataFrame(columns=["task", "eval_set", "init", "axis", "backbone", "cost", "metric", "on_front"])
    cost = y.groupby(["task", "backbone"])[axes].median()
    rows = []
    for (task, ev, init), r in ranks.groupby(["task", "eval_set", "init"], sort=True):
        for axis in axes:
            c = cost.loc[task].reindex(r["backbone"])[axis].to_numpy(dtype=float)
            ok = np.isfinite(c)
            front = np.zeros(len(r), bool)
            front[ok] = pareto_front(c[ok], r["mean"].to_numpy()[ok])
            for bb, cv, mv, f in zip(r["backbone"], c, r["mean"], front):
                rows.append({"task": task, "eval_set": ev, "init": init, "axis": axis, "backbone": bb,
                             "cost": float(cv), "metric": float(mv), "on_front": bool(f)})
    return pd.DataFrame(rows)
