"""The capacity gate: the capacity above which a pretrained init's gain exceeds the margin.

Per (task, family, shift, init), the rung gain ``g_k`` is the mean of the per-cell gains of rung k
(over the train/eval pairs of that shift). With rungs sorted by params, the gate is the first rung
from which every larger rung has ``g > margin``; its position is interpolated linearly in log10
params between that rung and the one below it, where the gain crosses the margin. A rung only
counts as above the margin when its gain is also significantly positive: the one-sided ``alpha``
percentile of its bootstrap gains lies above 0 (so a gate is never claimed from point estimates
that sit inside run-to-run noise). Status:

- ``gate``: a crossing inside the tested range (``gate_params`` set);
- ``helps_everywhere``: the gain exceeds the margin at every rung (the gate lies below the range);
- ``no_gate_in_range``: the gain does not exceed the margin at the largest rung;
- ``undetermined``: fewer than two rungs with both arms, or no margin.

Uncertainty: a percentile cluster bootstrap. Within each arm (backbone, train_set, init) whole runs
are resampled (a run keeps its scores on every eval set together), the rung gains and the gate are
recomputed; a bootstrap gate below/above the range counts as -inf/+inf, so an interval end outside
the tested range is reported as null with a statement in ``text``.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["gate_position", "capacity_gates", "GATE_STATUSES"]

GATE_STATUSES = ("gate", "helps_everywhere", "no_gate_in_range", "undetermined")


def gate_position(logp: np.ndarray, gain: np.ndarray, margin: float,
                  significant: np.ndarray | None = None) -> tuple[str, float | None]:
    """(status, log10 gate params) from rung gains sorted by log10 params; ``significant`` (bool per
    rung, default all True) additionally requires each rung above the margin to be significant."""
    above = np.asarray(gain) > margin
    if significant is not None:
        above &= np.asarray(significant, dtype=bool)
    if above.all():
        return "helps_everywhere", None
    if not above[-1]:
        return "no_gate_in_range", None
    k = int(np.flatnonzero(~above)[-1]) + 1  # first rung of the final run of rungs above the margin
    g0, g1 = float(gain[k - 1]), float(gain[k])
    frac = (margin - g0) / (g1 - g0) if g1 != g0 else 0.5
    return "gate", float(logp[k - 1] + min(max(frac, 0.0), 1.0) * (logp[k] - logp[k - 1]))


def _arm_boot(wide: pd.DataFrame | None, evals: list[str], n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, len(evals)) bootstrap means of one arm (runs x eval sets), resampling whole runs."""
    if wide is None or not len(wide):
        return np.full((n_boot, len(evals)), np.nan)
    vals = wide.reindex(columns=evals).to_numpy(dtype=float)
    idx = rng.integers(0, len(vals), size=(n_boot, len(vals)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an eval set with no ok record in a resample
        return np.nanmean(vals[idx], axis=1)


def _fmt(p: float | None) -> str:
    return f"{p:,.0f}"


def capacity_gates(y: pd.DataFrame, gains: pd.DataFrame, plan: dict[str, Any],
                   rng: np.random.Generator) -> pd.DataFrame:
    """One row per (task, family, shift, init): key, status, gate_params, ci_low, ci_high,
    n_rungs, rung_params, rung_gains, p_status (bootstrap share agreeing with the status), text."""
    n_boot, level = int(plan["n_boot"]), 1 - plan["alpha"]
    arms: dict[tuple, pd.DataFrame] = {}
    if n_boot > 0 and len(y):
        wide = y.groupby(["task", "backbone", "train_set", "init", "run_id", "eval_set"])["y"].mean().unstack("eval_set")
        arms = {k: v.droplevel([0, 1, 2, 3]) for k, v in wide.groupby(level=[0, 1, 2, 3], sort=False)}
    rows = []
    for (task, family, shift, init), g in gains.groupby(["task", "family", "shift", "init"], sort=True):
        baseline = g["baseline"].iloc[0]
        margin = float(g["margin"].iloc[0])
        per = g.dropna(subset=["gain"])
        rung = per.groupby("backbone").agg(params=("params", "median"), gain=("gain", "mean")).sort_values("params")
        key = f"{task}|{family}|{shift}|{init}"
        base = {"key": key, "task": task, "family": family, "shift": shift, "init": init, "baseline": baseline,
                "margin": margin, "n_rungs": int(len(rung)), "rung_params": [int(p) for p in rung["params"]],
                "rung_gains": [float(x) for x in rung["gain"]]}
        what = f"{init} vs {baseline}, {task}/{family}, {shift}"
        if len(rung) < 2 or not np.isfinite(margin):
            rows.append({**base, "status": "undetermined", "gate_params": None, "ci_low": None, "ci_high": None,
                         "p_status": None,
                         "text": f"{what}: undetermined (needs gains at two or more rungs and a margin)"})
            continue
        logp = np.log10(rung["params"].to_numpy(dtype=float))
        boot_pos = np.full(n_boot, np.nan)
        significant = None
        if n_boot > 0:
            cells = per[["backbone", "train_set", "eval_set"]]
            rung_boot = np.zeros((n_boot, len(rung)))
            for j, bb in enumerate(rung.index):
                parts = []
                for train, c in cells[cells["backbone"] == bb].groupby("train_set", sort=True):
                    evals = sorted(c["eval_set"])
                    a = _arm_boot(arms.get((task, bb, train, init)), evals, n_boot, rng)
                    b = _arm_boot(arms.get((task, bb, train, baseline)), evals, n_boot, rng)
                    parts.append(a - b)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    rung_boot[:, j] = np.nanmean(np.concatenate(parts, axis=1), axis=1)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # a rung with no bootstrap value
                significant = np.nanquantile(rung_boot, plan["alpha"], axis=0) > 0
            for i in range(n_boot):
                s, p = gate_position(logp, rung_boot[i], margin)
                boot_pos[i] = -np.inf if s == "helps_everywhere" else np.inf if s == "no_gate_in_range" else p
        status, lg = gate_position(logp, rung["gain"].to_numpy(), margin, significant)
        agree = None
        ci_low = ci_high = None
        if n_boot > 0:
            if status == "gate":
                agree = float(np.mean(np.isfinite(boot_pos)))
            else:
                agree = float(np.mean(boot_pos == (-np.inf if status == "helps_everywhere" else np.inf)))
            lo, hi = np.quantile(boot_pos, [(1 - level) / 2, 1 - (1 - level) / 2], method="inverted_cdf")
            ci_low = float(10**lo) if np.isfinite(lo) else None
            ci_high = float(10**hi) if np.isfinite(hi) else None
        lo_txt = _fmt(ci_low) if ci_low is not None else f"below {_fmt(10**logp[0])}"
        hi_txt = _fmt(ci_high) if ci_high is not None else f"above {_fmt(10**logp[-1])}"
        interval = (f"; {level:.0%} bootstrap interval of the gate: {lo_txt} to {hi_txt} params"
                    if n_boot > 0 else "")
        if status == "gate":
            text = f"{what}: gain exceeds the margin ({margin:.3g}) above ~{_fmt(10**lg)} params{interval}"
        elif status == "helps_everywhere":
            text = (f"{what}: gain exceeds the margin ({margin:.3g}) at every tested rung "
                    f"({_fmt(10**logp[0])} to {_fmt(10**logp[-1])} params){interval}")
        else:
            text = (f"{what}: no gate in the tested range: the gain does not significantly exceed the margin "
                    f"({margin:.3g}) at the largest rung ({_fmt(10**logp[-1])} params){interval}")
        rows.append({**base, "status": status, "gate_params": float(10**lg) if lg is not None else None,
                     "ci_low": ci_low, "ci_high": ci_high, "p_status": agree, "text": text})
    cols = ["key", "task", "family", "shift", "init", "baseline", "status", "gate_params", "ci_low", "ci_high",
            "p_status", "margin", "n_rungs", "rung_params", "rung_gains", "text"]
    return pd.DataFrame(rows, columns=cols)
