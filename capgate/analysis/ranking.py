"""Ranking stability: does the initialization change which backbone looks best?

Backbones are ranked per (task, eval_set, init) by their mean metric (the mean of their cell means
over train sets). Between two inits, Kendall's tau-b of the two orders over the backbones both
have; per adjacent pair of an order, the bootstrap probability (seeds resampled within each cell)
that the better-ranked backbone stays ahead.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["rankings", "ranking_stability"]


def rankings(cells: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, eval_set, init, backbone): key, family, params, mean, rank (1 = best)."""
    c = cells.dropna(subset=["mean"])
    m = c.groupby(["task", "eval_set", "init", "backbone"], sort=True).agg(
        family=("family", "first"), params=("params", "median"), mean=("mean", "mean")).reset_index()
    m["rank"] = m.groupby(["task", "eval_set", "init"])["mean"].rank(ascending=False, method="first").astype(int)
    m["key"] = m["task"] + "|" + m["eval_set"] + "|" + m["init"]
    return m.sort_values(["task", "eval_set", "init", "rank"]).reset_index(drop=True)[
        ["key", "task", "eval_set", "init", "backbone", "family", "params", "mean", "rank"]]


def _boot_backbone_means(y: pd.DataFrame, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot,) bootstrap means of one backbone: seeds resampled within each train-set cell."""
    parts = []
    for _, cell in y.groupby("train_set", sort=True):
        v = cell["y"].to_numpy(dtype=float)
        parts.append(v[rng.integers(0, len(v), size=(n_boot, len(v)))].mean(axis=1))
    return np.mean(parts, axis=0)


def ranking_stability(y: pd.DataFrame, ranks: pd.DataFrame, plan: dict[str, Any],
                      rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    """{"tau": task, eval_set, init_a, init_b, kendall_tau, p_value, n_backbones;
    "pairs": task, eval_set, init, upper, lower, gap, p_keep}."""
    taus, pairs = [], []
    n_boot = int(plan["n_boot"])
    by_arm = {k: v for k, v in y.groupby(["task", "eval_set", "init", "backbone"], sort=False)} if n_boot > 0 else {}
    for (task, ev), r in ranks.groupby(["task", "eval_set"], sort=True):
        inits = sorted(r["init"].unique())
        for i, a in enumerate(inits):
            for b in inits[i + 1:]:
                ma = r[r["init"] == a].set_index("backbone")["mean"]
                mb = r[r["init"] == b].set_index("backbone")["mean"]
                common = sorted(set(ma.index) & set(mb.index))
                tau = p = None
                if len(common) >= 2:
                    res = stats.kendalltau(ma[common].to_numpy(), mb[common].to_numpy())
                    tau = float(res.statistic) if np.isfinite(res.statistic) else None
                    p = float(res.pvalue) if np.isfinite(res.pvalue) else None
                taus.append({"task": task, "eval_set": ev, "init_a": a, "init_b": b,
                             "kendall_tau": tau, "p_value": p, "n_backbones": len(common)})
        if n_boot <= 0:
            continue
        for init, order in r.groupby("init", sort=True):
            order = order.sort_values("rank")
            boots = {bb: _boot_backbone_means(by_arm[(task, ev, init, bb)], n_boot, rng) for bb in order["backbone"]}
            bbs, means = list(order["backbone"]), list(order["mean"])
            for k in range(len(bbs) - 1):
                pairs.append({"task": task, "eval_set": ev, "init": init, "upper": bbs[k], "lower": bbs[k + 1],
                              "gap": float(means[k] - means[k + 1]),
                              "p_keep": float(np.mean(boots[bbs[k]] > boots[bbs[k + 1]]))})
    return {
        "tau": pd.DataFrame(taus, columns=["task", "eval_set", "init_a", "init_b", "kendall_tau", "p_value",
                                           "n_backbones"]),
        "pairs": pd.DataFrame(pairs, columns=["task", "eval_set", "init", "upper", "lower", "gap", "p_keep"]),
    }
