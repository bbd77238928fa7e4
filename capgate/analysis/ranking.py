"""Ranking stability: does the initialization change which backbone looks best?

Backbones are ranked per (study, task, eval_set, init) by their mean metric (the mean of their cell
means over train sets), with standard error ``sqrt(sum se_i^2) / k`` from the cells' stabilised SEs.

- **Noise reference for Kendall's tau.** Two noisy measurements of the *same* ranking do not give
  tau = 1. The reference distribution is tau between two parametric-bootstrap replicates of the same
  init (each backbone mean drawn from N(mean, se^2), independently twice), pooled over the two inits
  compared. "Rankings flip with init" (``flips``) is claimed only when the observed tau between the inits
  lies below the reference's ``alpha`` quantile; ``p_flip`` is the share of reference taus at or below
  the observed one.
- **P(order holds)** for each adjacent pair of an order: ``T_df(gap / se_gap)`` with the moderated df
  (the posterior probability of the order under a flat prior), which is calibrated by simulation in
  ``tests/test_analysis_ranking.py`` (a naive bootstrap over 3 seeds is overconfident).
"""

from __future__ import annotations


import numpy as np
import pandas as pd

from capgate.analysis.plan import Plan
from scipy import stats

__all__ = ["rankings", "ranking_stability", "kendall_tau_rows"]


def rankings(cells: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, eval_set, init, backbone): key, family, params, mean, se, df, rank (1 = best)."""
    c = cells.dropna(subset=["mean"]).copy()
    c["se2"] = c["se"] ** 2
    m = c.groupby(["task", "eval_set", "init", "backbone"], sort=True).agg(
        family=("family", "first"), params=("params", "median"), mean=("mean", "mean"), se2=("se2", "sum"),
        k=("mean", "count"), df=("df_mod", "min")).reset_index()
    m["se"] = np.sqrt(m["se2"]) / m["k"]
    m["rank"] = m.groupby(["task", "eval_set", "init"])["mean"].rank(ascending=False, method="first").astype(int)
    m["key"] = m["task"] + "|" + m["eval_set"] + "|" + m["init"]
    return m.sort_values(["task", "eval_set", "init", "rank"]).reset_index(drop=True)[
        ["key", "task", "eval_set", "init", "backbone", "family", "params", "mean", "se", "df", "rank"]]


def kendall_tau_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Kendall's tau-a between matching rows of two (reps, n) arrays (ties count 0)."""
    i, j = np.triu_indices(a.shape[1], 1)
    s = np.sign(a[:, i] - a[:, j]) * np.sign(b[:, i] - b[:, j])
    return s.mean(axis=1)


def ranking_stability(y: pd.DataFrame, ranks: pd.DataFrame, plan: Plan,
                      rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    """{"tau": task, eval_set, init_a, init_b, kendall_tau, tau_ref_median, tau_ref_low, p_flip, flips,
    n_backbones; "pairs": task, eval_set, init, upper, lower, gap, p_keep}."""
    taus, pairs = [], []
    n_boot = max(int(plan.n_boot), 200)
    alpha = plan.alpha
    for (task, ev), r in ranks.groupby(["task", "eval_set"], sort=True):
        inits = sorted(r["init"].unique())
        by = {i: r[r["init"] == i].set_index("backbone") for i in inits}
        for i, a in enumerate(inits):
            for b in inits[i + 1:]:
                common = sorted(set(by[a].index) & set(by[b].index))
                row = {"task": task, "eval_set": ev, "init_a": a, "init_b": b, "kendall_tau": None,
                       "tau_ref_median": None, "tau_ref_low": None, "p_flip": None, "flips": False,
                       "n_backbones": len(common)}
                if len(common) >= 3:
                    tau = float(stats.kendalltau(by[a].loc[common, "mean"], by[b].loc[common, "mean"]).statistic)
                    ref = []
                    for init in (a, b):
                        mu = by[init].loc[common, "mean"].to_numpy(dtype=float)
                        se = np.nan_to_num(by[init].loc[common, "se"].to_numpy(dtype=float), nan=0.0)
                        d1 = mu + se * rng.standard_normal((n_boot, len(common)))
                        d2 = mu + se * rng.standard_normal((n_boot, len(common)))
                        ref.append(kendall_tau_rows(d1, d2))
                    ref = np.concatenate(ref)
                    low = float(np.quantile(ref, alpha))
                    row.update(kendall_tau=tau if np.isfinite(tau) else None, tau_ref_median=float(np.median(ref)),
                               tau_ref_low=low, p_flip=float(np.mean(ref <= tau)), flips=bool(tau < low))
                taus.append(row)
        for init, order in r.groupby("init", sort=True):
            order = order.sort_values("rank")
            mu, se, df = (order[c].to_numpy(dtype=float) for c in ("mean", "se", "df"))
            bbs = list(order["backbone"])
            for k in range(len(bbs) - 1):
                gap = mu[k] - mu[k + 1]
                s = np.hypot(se[k], se[k + 1])
                d = np.nanmin([df[k], df[k + 1]]) if np.isfinite([df[k], df[k + 1]]).any() else np.nan
                p = float(stats.t.cdf(gap / s, min(d, 1e6))) if s > 0 and np.isfinite(s) and np.isfinite(d) else None
                pairs.append({"task": task, "eval_set": ev, "init": init, "upper": bbs[k], "lower": bbs[k + 1],
                              "gap": float(gap), "p_keep": p})
    return {
        "tau": pd.DataFrame(taus, columns=["task", "eval_set", "init_a", "init_b", "kendall_tau", "tau_ref_median",
                                           "tau_ref_low", "p_flip", "flips", "n_backbones"]),
        "pairs": pd.DataFrame(pairs, columns=["task", "eval_set", "init", "upper", "lower", "gap", "p_keep"]),
    }
