"""The capacity gate: the smallest rung from which every larger rung helps, decided by the verdicts.

Per (study, task, family, shift, init), rungs are sorted by params. A rung *helps* when every cell of
that rung and shift (its train -> eval pairs) has the verdict ``helps`` (:mod:`capgate.analysis.gains`).
With ``k`` the first rung of the final run of helping rungs, the status is:

- ``gate``: ``0 < k < n``: the gate lies between rung ``k - 1`` (``rung_below``) and rung ``k``
  (``rung_from``): "helps from rung k upward";
- ``helps_everywhere``: every rung helps (the gate lies below the tested range);
- ``no_gate_in_range``: the largest rung does not help;
- ``undetermined``: fewer than two rungs with a testable contrast.

Error rate. A gate (or ``helps_everywhere``) is claimed only with ``helps`` cells at and above it, and
those verdicts are Holm-adjusted over every contrast of the (study, task); so the probability that a
null study claims any gate is at most the family-wise alpha of its verdicts, for all its gates together.
The headline and the verdict map read the same verdicts and cannot disagree.

Stability: a bootstrap with the same rule. Runs are resampled within each run group (study, task,
backbone, train_set), the same seeds for every init and eval set (so pairs stay pairs and a run keeps
its scores on every eval set together); each replicate recomputes the gains, their p-values with the
stabilised standard error held fixed (exactly the verdicts' p-values: the fixed-design t test, or under a
sequential plan the repeated p-value at the contrast's look), the plan's adjustment within the family
(:func:`capgate.analysis.verdicts.adjust_rows`: a replicate without a value is not a test) and the
verdicts, then the gate. ``p_status`` is the share of replicates with the same gate rung; ``ci_low``/``ci_high`` the
params bounding the central ``1 - alpha`` range of the replicates' gate (null: outside the tested range).
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from capgate.analysis.gains import sequential_tests
from capgate.analysis.plan import Plan
from capgate.analysis.verdicts import adjust_rows
from capgate.schema import format_params as _fmt

__all__ = ["capacity_gates", "gate_index", "rung_name", "GATE_STATUSES"]

GATE_STATUSES = ("gate", "helps_everywhere", "no_gate_in_range", "undetermined")
_GROUP = ["study", "task", "family", "shift", "init"]


def rung_name(backbone: str) -> str:
    """Short rung name: ``B-2`` from ``efficientnet_b0@w0.4d0.5 (B-2)``, else the backbone."""
    m = re.search(r"\(([^()]+)\)\s*$", str(backbone))
    return m.group(1) if m else str(backbone)


def gate_index(helps: np.ndarray) -> np.ndarray:
    """First rung of the final run of helping rungs, per row of a (reps, rungs) bool array: 0 when
    every rung helps, ``n_rungs`` when the largest does not."""
    helps = np.atleast_2d(np.asarray(helps, dtype=bool))
    n = helps.shape[1]
    not_help = ~helps
    last_bad = np.where(not_help.any(axis=1), n - 1 - np.argmax(not_help[:, ::-1], axis=1), -1)
    return last_bad + 1


def _boot_helps(y: pd.DataFrame, gains: pd.DataFrame, plan: Plan,
                rng: np.random.Generator) -> np.ndarray | None:
    """(n_boot, n_contrasts) bool: helps in each bootstrap replicate under the verdict rule."""
    n_boot = int(plan.n_boot)
    if n_boot <= 0 or not len(gains):
        return None
    alpha, baseline = plan.alpha, plan.baseline
    per_seed = y.groupby(["study", "task", "backbone", "train_set", "eval_set", "init", "seed"])["y"].mean()
    gains_b = np.full((n_boot, len(gains)), np.nan)
    for (study, task, bb, train), idx in gains.groupby(["study", "task", "backbone", "train_set"]).groups.items():
        try:
            sub = per_seed.loc[(study, task, bb, train)]
        except KeyError:
            continue
        seeds = np.array(sorted(sub.index.get_level_values("seed").unique()))
        draw = rng.integers(0, len(seeds), size=(n_boot, len(seeds)))
        for i in idx:
            r = gains.loc[i]
            try:
                a = sub.loc[(r["eval_set"], r["init"])].reindex(seeds).to_numpy(dtype=float)
                b = sub.loc[(r["eval_set"], baseline)].reindex(seeds).to_numpy(dtype=float)
            except KeyError:
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # a replicate with no value
                if r["pairing"] == "paired":
                    gains_b[:, gains.index.get_loc(i)] = np.nanmean((a - b)[draw], axis=1)
                else:
                    gains_b[:, gains.index.get_loc(i)] = np.nanmean(a[draw], axis=1) - np.nanmean(b[draw], axis=1)
    p = _rule_p(gains_b, gains, plan)
    p_adj = np.full_like(p, np.nan)
    fam = (gains["study"] + "|" + gains["task"]).to_numpy()
    for lab in pd.unique(fam):
        cols = np.flatnonzero((fam == lab) & np.isfinite(gains["se"].to_numpy(dtype=float)))
        if len(cols):
            p_adj[:, cols] = adjust_rows(p[:, cols], plan.correction)
    return (p_adj < alpha) & (gains_b > gains["margin"].to_numpy(dtype=float))


def _rule_p(gains_b: np.ndarray, gains: pd.DataFrame, plan: Plan) -> np.ndarray:
    """The two-sided p-values the verdicts use (:func:`capgate.analysis.gains.compute_gains`), of each
    replicate's gains (n_boot, n_contrasts) with each contrast's standard error and df held fixed: the
    fixed-design t test, or under a sequential plan the repeated p-value at the contrast's look."""
    n_boot = gains_b.shape[0]
    se = np.broadcast_to(gains["se"].to_numpy(dtype=float), gains_b.shape)
    df = np.broadcast_to(gains["df"].to_numpy(dtype=float), gains_b.shape)
    valid = np.isfinite(gains_b) & np.isfinite(se) & (se > 0) & np.isfinite(df) & (df > 0)
    dfv = np.where(valid, np.minimum(df, 1e6), 1.0)
    sev = np.where(valid, se, 1.0)
    seq = plan.sequential
    if not seq:
        with np.errstate(invalid="ignore"):
            return np.where(valid, 2 * stats.t.sf(np.abs(gains_b) / sev, dfv), np.nan)
    paired = (gains["pairing"] == "paired").to_numpy()
    n_arm = np.where(paired, gains["n_pairs"], np.minimum(gains["n_init"], gains["n_baseline"])).astype(float)
    margin = np.broadcast_to(gains["margin"].to_numpy(dtype=float), gains_b.shape)
    p = sequential_tests(gains_b.ravel(), sev.ravel(), dfv.ravel(), margin.ravel(), np.tile(n_arm, n_boot),
                         valid.ravel(), seq, plan.alpha)[0]
    return p.reshape(gains_b.shape)


def _rung_word(verdicts: list[str]) -> str:
    vs = set(verdicts)
    return verdicts[0] if len(vs) == 1 else "mixed"


def capacity_gates(y: pd.DataFrame, gains: pd.DataFrame, plan: Plan,
                   rng: np.random.Generator) -> pd.DataFrame:
    """One row per (study, task, family, shift, init): key, status, rung_from, gate_params, rung_below,
    below_params, ci_low, ci_high, p_status, margin, n_rungs, rung_params, rung_names, rung_verdicts, text."""
    gains = gains.reset_index(drop=True)
    boot = _boot_helps(y, gains, plan, rng)
    level = 1 - plan.alpha
    rows = []
    for (study, task, family, shift, init), g in gains.groupby(_GROUP, sort=True):
        baseline = g["baseline"].iloc[0]
        g = g[np.isfinite(g["se"].to_numpy(dtype=float))]
        rung = g.groupby("backbone").agg(params=("params", "median")).sort_values("params")
        bbs = list(rung.index)
        params = [float(p) for p in rung["params"]]
        names = [rung_name(b) for b in bbs]
        verdicts = [_rung_word(list(g.loc[g["backbone"] == b, "verdict"])) for b in bbs]
        key = f"{study}|{task}|{family}|{shift}|{init}"
        what = f"{init} vs {baseline}, {task}/{family}, {shift}"
        base = {"key": key, "study": study, "task": task, "family": family, "shift": shift, "init": init,
                "baseline": baseline, "margin": float(g["margin"].iloc[0]) if len(g) else None,
                "n_rungs": len(bbs), "rung_params": params, "rung_names": names, "rung_verdicts": verdicts,
                "rung_from": None, "gate_params": None, "rung_below": None, "below_params": None,
                "ci_low": None, "ci_high": None, "p_status": None}
        if len(bbs) < 2:
            rows.append({**base, "status": "undetermined",
                         "text": f"{what}: undetermined (needs testable contrasts at two or more rungs)"})
            continue
        helps = np.array([v == "helps" for v in verdicts])
        k = int(gate_index(helps)[0])
        n = len(bbs)
        status = "helps_everywhere" if k == 0 else "no_gate_in_range" if k == n else "gate"
        interval = ""
        if boot is not None:
            cols = [[gains.index.get_loc(i) for i in g.index[g["backbone"] == b]] for b in bbs]
            rung_b = np.column_stack([boot[:, c].all(axis=1) for c in cols])
            kb = gate_index(rung_b)
            base["p_status"] = float(np.mean(kb == k))
            lo_k, hi_k = np.quantile(kb, [(1 - level) / 2, 1 - (1 - level) / 2], method="inverted_cdf")
            lo_k, hi_k = int(lo_k), int(hi_k)
            base["ci_low"] = params[lo_k - 1] if lo_k >= 1 else None
            base["ci_high"] = params[hi_k] if hi_k < n else None
            lo_t = _fmt(base["ci_low"]) if base["ci_low"] is not None else f"below {_fmt(params[0])}"
            hi_t = _fmt(base["ci_high"]) if base["ci_high"] is not None else f"above {_fmt(params[-1])}"
            interval = (f"; bootstrap with the same rule: this outcome in {base['p_status']:.0%} of replicates, "
                        f"{level:.0%} range of the gate {lo_t} to {hi_t} params")
        if status == "gate":
            base.update(rung_from=names[k], gate_params=params[k], rung_below=names[k - 1], below_params=params[k - 1])
            text = (f"{what}: helps from {names[k]} ({_fmt(params[k])} params) upward — the gate lies between "
                    f"{names[k - 1]} ({_fmt(params[k - 1])}) and {names[k]}; every cell at and above it helps{interval}")
        elif status == "helps_everywhere":
            text = (f"{what}: helps at every tested rung ({names[0]} to {names[-1]}, {_fmt(params[0])} to "
                    f"{_fmt(params[-1])} params){interval}")
        else:
            text = (f"{what}: no gate in the tested range — the largest rung ({names[-1]}, {_fmt(params[-1])} params) "
                    f"is {verdicts[-1]}, not helps{interval}")
        rows.append({**base, "status": status, "text": text})
    cols = ["key", "study", "task", "family", "shift", "init", "baseline", "status", "rung_from", "gate_params",
            "rung_below", "below_params", "ci_low", "ci_high", "p_status", "margin", "n_rungs", "rung_params",
            "rung_names", "rung_verdicts", "text"]
    return pd.DataFrame(rows, columns=cols)
