"""``analyze``: one validated results table + one plan -> one :class:`Analysis` (pure, seeded)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from capgate.analysis.cells import cell_table, metric_frame
from capgate.analysis.gains import VERDICT_RULE, compute_gains
from capgate.analysis.gate import capacity_gates
from capgate.analysis.load import validate
from capgate.analysis.mixed import OPTIMIZERS, fit_mixed
from capgate.analysis.pareto import pareto_table
from capgate.analysis.plan import load_plan, margin_rule, resolve_plan
from capgate.analysis.ranking import ranking_stability, rankings
from capgate.analysis.result import Analysis
from capgate.errors import SpecError

__all__ = ["analyze", "evaluate_expectations"]

log = logging.getLogger(__name__)

_MIN_MODEL_ROWS = 8


def _rng(rng: None | int | np.random.Generator) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(0 if rng is None else int(rng))


def _plan(plan: None | dict[str, Any] | str | Path) -> dict[str, Any]:
    if plan is None or isinstance(plan, dict):
        return resolve_plan(plan)
    return load_plan(plan)


def analyze(table: pd.DataFrame, plan: None | dict[str, Any] | str | Path = None, *,
            rng: None | int | np.random.Generator = None) -> Analysis:
    """Validate ``table`` once and compute everything the report and ``check`` need.

    ``plan``: a resolved/raw plan dict, a plan YAML path, or None for the defaults. ``rng``: the
    bootstraps' randomness (a Generator, or an int seed; None means seed 0). Same inputs, same output.
    """
    plan = _plan(plan)
    gen = _rng(rng)
    table = table if table.attrs.get("capgate_validated") else validate(table)
    warnings: list[str] = []
    inits = sorted(table["init"].unique())
    if plan["baseline"] not in inits:
        raise SpecError(
            f"plan baseline {plan['baseline']!r} is not an init of the results table (inits: {inits}); "
            "set the plan's 'baseline' to one of them")
    if plan["contrasts"] != "all":
        absent = [c for c in plan["contrasts"] if c not in inits]
        if absent:
            warnings.append(f"plan contrasts {absent} have no rows in the table (inits: {inits})")

    cells = cell_table(table, plan)
    y = metric_frame(table, plan)
    gains, noise = compute_gains(y, cells, plan)

    incomplete = cells[~cells["complete"]]
    if len(incomplete):
        warnings.append(
            f"{len(incomplete)} of {len(cells)} cells are incomplete (fewer ok seeds than expected), e.g. "
            + ", ".join(incomplete["key"].head(3)))
    for s in ("failed", "diverged"):
        n = int(cells[f"n_{s}"].sum())
        if n:
            warnings.append(f"{n} {s} run records kept out of the statistics (counted per cell)")
    for col, who in (("n_baseline", "baseline"), ("n_init", "pretrained-init")):
        missing = gains[gains[col] == 0]
        if len(missing):
            warnings.append(f"{len(missing)} contrasts have no ok {who} seeds: verdict inconclusive, e.g. "
                            + ", ".join(missing["key"].head(2)))
    for r in noise.itertuples(index=False):
        if not np.isfinite(r.sd_pooled) or r.df < 1:
            warnings.append(f"{r.task}: no replicated seeds, run-to-run SD unknown: every verdict is inconclusive")

    models, frames = [], {}
    for task in sorted(y["task"].unique()):
        sub = y[y["task"] == task]
        if len(sub) < _MIN_MODEL_ROWS:
            warnings.append(f"{task}: only {len(sub)} ok records; mixed model not fitted")
            continue
        entry, frame = fit_mixed(sub, name=task, task=task, metric=plan["metric"][task],
                                 baseline=plan["baseline"], alpha=plan["alpha"])
        models.append(entry)
        frames[task] = frame
        warnings.extend(w for w in entry["warnings"] if w.startswith("model "))

    gates = capacity_gates(y, gains, plan, gen)
    ranks = rankings(cells)
    stability = ranking_stability(y, ranks, plan, gen)
    pareto = pareto_table(y, ranks)
    completeness = cells[["key", "task", "family", "backbone", "train_set", "eval_set", "shift", "init",
                          "n_ok", "n_failed", "n_diverged", "n_missing", "n_expected", "complete"]].copy()
    expectations = evaluate_expectations(gains, plan)
    methods = _methods(plan, noise, models)
    return Analysis(
        gains=gains, cells=cells, models=models, model_frames=frames, gates=gates, rankings=ranks,
        ranking_stability=stability, pareto=pareto, completeness=completeness, plan=plan, methods=methods,
        provenance=_provenance(table), expectations=expectations, warnings=warnings,
    )


def evaluate_expectations(gains: pd.DataFrame, plan: dict[str, Any]) -> pd.DataFrame:
    """One row per plan expectation: text, holds (every matching contrast has an expected verdict,
    and at least one matches), n_match, n_hold, detail."""
    rows = []
    for e in plan["expectations"]:
        m = gains[gains["init"] == e["init"]]
        for col in ("task", "family", "shift"):
            if e.get(col):
                m = m[m[col] == e[col]]
        if e.get("min_params") is not None:
            m = m[m["params"] >= e["min_params"]]
        if e.get("max_params") is not None:
            m = m[m["params"] <= e["max_params"]]
        ok = m["verdict"].isin(e["verdict"])
        holds = bool(len(m) > 0 and ok.all())
        if not len(m):
            detail = "no matching contrasts in the results"
        else:
            detail = f"{int(ok.sum())}/{len(m)} matching contrasts are {' or '.join(e['verdict'])}"
            bad = m[~ok]
            if len(bad):
                detail += "; not: " + ", ".join(
                    f"{r.backbone} {r.train_set}->{r.eval_set} ({r.verdict})" for r in bad.head(5).itertuples())
                if len(bad) > 5:
                    detail += f" and {len(bad) - 5} more"
        rows.append({"text": e["text"], "holds": holds, "n_match": int(len(m)), "n_hold": int(ok.sum()),
                     "detail": detail})
    return pd.DataFrame(rows, columns=["text", "holds", "n_match", "n_hold", "detail"])


def _methods(plan: dict[str, Any], noise: pd.DataFrame, models: list[dict[str, Any]]) -> dict[str, Any]:
    margin_text = {}
    for r in noise.itertuples(index=False):
        rule = margin_rule(plan, r.task)
        margin_text[r.task] = {
            "rule": rule, "margin": float(r.margin) if np.isfinite(r.margin) else None,
            "sd_pooled": float(r.sd_pooled) if np.isfinite(r.sd_pooled) else None, "df": int(r.df),
        }
    return {
        "metric": plan["metric"],
        "baseline": plan["baseline"],
        "alpha": plan["alpha"],
        "correction": {"holm": "Holm (family-wise error rate) over all contrasts",
                       "bh": "Benjamini-Hochberg (false discovery rate) over all contrasts",
                       "none": "none"}[plan["correction"]],
        "interval": ("two-sided t interval with the pooled run-to-run SD and its degrees of freedom "
                     "(df counted once per run group, records of one run on several eval sets are not independent); "
                     "not z-based, so honest with a handful of seeds"),
        "gain": "difference of seed means per cell (no smoothing across capacity, unbiased for any gain curve)",
        "noise": "run-to-run SD pooled over all cells of a task",
        "margin": margin_text,
        "equivalence": "TOST at alpha with the pooled-SD t distribution (unadjusted)",
        "verdict_rule": VERDICT_RULE,
        "seeds_needed": (f"smallest seeds per arm giving probability {plan['power']} that an inconclusive "
                         f"contrast resolves if its true gain equals the estimate (capped at {plan['max_seeds']}, "
                         "meaning that many or more)"),
        "gate": ("rung gains (mean over a shift's train/eval pairs) against the margin; a rung is above the "
                 "margin when its gain exceeds the margin and its bootstrap gain is significantly positive "
                 f"(one-sided {plan['alpha']} percentile above 0); gate = interpolated log10-params crossing "
                 "below the top run of rungs above the margin; percentile cluster bootstrap over runs, "
                 f"{plan['n_boot']} replicates"),
        "ranking": "mean metric per backbone (cell means averaged over train sets); Kendall tau-b between inits; "
                   "bootstrap over seeds for adjacent pairs",
        "models": [{"name": m["name"], "formula_statsmodels": m["formula_statsmodels"],
                    "formula_lme4": m.get("formula_lme4"), "method": m["method"], "status": m["status"],
                    "random_effects": m.get("random_effects")} for m in models],
        "random_effects": ("random intercept per rung (backbone) and per run (run_id, nested in rung): each run is "
                           "scored on several eval sets and runs of one rung share the rung"),
        "optimizers": list(OPTIMIZERS),
    }


def _provenance(table: pd.DataFrame) -> dict[str, Any]:
    def uniq(col: str) -> list[str]:
        if col not in table.columns:
            return []
        return sorted({str(v) for v in table[col].dropna().unique()})

    return {
        "studies": uniq("study"),
        "n_rows": int(len(table)),
        "n_runs": int(table["run_id"].nunique()),
        "capgate_version": uniq("capgate_version"),
        "torch_version": uniq("torch_version"),
        "timm_version": uniq("timm_version"),
        "git_sha": uniq("git_sha"),
        "spec_hash": uniq("spec_hash")[:50],
        "n_spec_hashes": len(uniq("spec_hash")),
        "data_fingerprint": uniq("data_fingerprint"),
        "started_at": min(uniq("started_at"), default=None),
        "ended_at": max(uniq("ended_at"), default=None),
        "wall_seconds": float(table.drop_duplicates("run_id")["wall_seconds"].sum(min_count=1))
        if table["wall_seconds"].notna().any() else None,
    }
