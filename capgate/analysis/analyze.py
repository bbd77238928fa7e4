"""``analyze``: one validated results table + one plan -> one :class:`Analysis` (pure, seeded)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from capgate.analysis.cells import (ISOLATE_MIN_RUNS, ISOLATE_RUN_MEAN_SDS, ISOLATE_RUN_SDS, OUTLIER_RUN_SDS,
                                   SUSPECT_RUN_MEAN_SDS, SUSPECT_RUN_SDS, analysis_frame, suspect_sites)
from capgate.analysis.gains import gains_of_table
from capgate.analysis.gate import capacity_gates
from capgate.analysis.load import validate
from capgate.analysis.mixed import DF_METHOD, OPTIMIZER, fit_mixed
from capgate.analysis.pareto import pareto_table
from capgate.analysis.plan import Plan, as_plan, margin_rule
from capgate.analysis.planning import SEEDS_RULE
from capgate.analysis.ranking import ranking_stability, rankings
from capgate.analysis.result import Analysis
from capgate.analysis.verdicts import verdict_rule
from capgate.analysis.stages import rerun_se, stages_text
from capgate.errors import SpecError

__all__ = ["analyze", "analyze_contrasts", "evaluate_expectations"]

log = logging.getLogger(__name__)

_MIN_MODEL_ROWS = 8


def _rng(rng: None | int | np.random.Generator) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(0 if rng is None else int(rng))


def analyze_contrasts(table: pd.DataFrame, plan: Plan | dict[str, Any] | None = None, *,
                      rng: None | int | np.random.Generator = None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(cells, gains, gates) of a results table without models, rankings or checks of the plan's
    names: the part of :func:`analyze` that decides verdicts (simulation studies call it in loops)."""
    plan = as_plan(plan)
    table = table if table.attrs.get("capgate_validated") else validate(table)
    y, cells, _ = analysis_frame(table, plan)
    gains, _ = gains_of_table(table, plan, y, cells)
    return cells, gains, capacity_gates(y, gains, plan, _rng(rng))


def analyze(table: pd.DataFrame, plan: Plan | dict[str, Any] | str | Path | None = None, *,
            rng: None | int | np.random.Generator = None) -> Analysis:
    """Validate ``table`` once and compute everything the report and ``check`` need.

    ``plan``: a resolved/raw plan dict, a plan YAML path, or None for the defaults. ``rng``: the
    bootstraps' randomness (a Generator, or an int seed; None means seed 0). Same inputs, same output.
    """
    plan = as_plan(plan)
    gen = _rng(rng)
    table = table if table.attrs.get("capgate_validated") else validate(table)
    warnings: list[str] = []
    inits = sorted(table["init"].unique())
    if plan.baseline not in inits:
        raise SpecError(
            f"plan baseline {plan.baseline!r} is not an init of the results table (inits: {inits}); "
            "set the plan's 'baseline' to one of them")
    _check_plan_names(table, plan)

    y, cells, odd = analysis_frame(table, plan)
    gains, noise = gains_of_table(table, plan, y, cells)
    cells = rerun_se(cells, y, plan.baseline)

    warnings.extend(_data_warnings(table, plan, cells, gains, noise, odd))
    warnings.extend(_suspect_warning(y, cells, plan))
    models, frames = _fit_models(y, plan, warnings)

    gates = capacity_gates(y, gains, plan, gen)
    ranks = rankings(cells)
    stability = ranking_stability(y, ranks, plan, gen)
    pareto = pareto_table(y, ranks)
    completeness = cells[["key", "task", "family", "backbone", "train_set", "eval_set", "shift", "init",
                          "n_ok", "n_failed", "n_diverged", "n_missing", "n_expected", "complete"]].copy()
    expectations = evaluate_expectations(gains, plan)
    methods = _methods(plan, noise, models)
    methods["stages"] = stages_text(gains)
    methods["conditional_on"] = sorted({str(c) for c in gains["conditional_on"].dropna()})
    return Analysis(
        gains=gains, cells=cells, models=models, model_frames=frames, gates=gates, rankings=ranks,
        ranking_stability=stability, pareto=pareto, completeness=completeness, plan=plan, methods=methods,
        provenance=_provenance(table), expectations=expectations, warnings=warnings, outlier_runs=odd,
    )


def _suspect_warning(y: pd.DataFrame, cells: pd.DataFrame, plan: Plan) -> list[str]:
    """Under ``outlier_runs: isolate``: the sites whose contrasts are judged both with and without a run the
    isolation kept in but that lies low among its siblings (``cells.suspect_sites``)."""
    if plan.outlier_runs != "isolate":
        return []
    sites = suspect_sites(y, cells)
    if not len(sites):
        return []
    where = sites.drop_duplicates(["study", "task", "backbone", "train_set"])
    return [f"{sites['run_id'].nunique()} runs kept in lie more than {SUSPECT_RUN_SDS:g} eval-set SDs below their "
            f"siblings on an eval set (or {SUSPECT_RUN_MEAN_SDS:g} on average): every contrast of their {len(where)} "
            "backbone/train-set sites is judged both with those runs and without them, and states only what both "
            "analyses state (a collapse just short of the isolation threshold, or one kept in because as many runs "
            "lie as far above their siblings, must not make a claim, nor noise trimmed from a run make one), e.g. "
            + ", ".join(f"{r.backbone} on {r.train_set}" for r in where.head(3).itertuples())]


def _data_warnings(table: pd.DataFrame, plan: Plan, cells: pd.DataFrame, gains: pd.DataFrame,
                   noise: pd.DataFrame, odd: pd.DataFrame) -> list[str]:
    """The data warnings of an analysis, in report order: incomplete cells, failed runs, missing arms,
    unknown noise, data-estimated margins, dropped pairs, outlier runs and cells, no ok run."""
    warnings: list[str] = []
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
            warnings.append(f"{r.study}/{r.task}: no replicated seeds, run-to-run SD unknown: every verdict is "
                            "inconclusive")
        if margin_rule(plan, r.task) == "pooled_sd":
            warnings.append(f"{r.study}/{r.task}: the margin is estimated from the same data (pooled_sd = "
                            f"{r.margin:.4g}); such a margin cannot show equivalence with a handful of seeds: "
                            "pre-register a fixed margin (plan key 'margin', e.g. 0.01)")
    dropped = gains[gains["n_dropped"] > 0]
    if len(dropped):
        warnings.append(f"{len(dropped)} paired contrasts dropped {int(dropped['n_dropped'].sum())} runs without "
                        "a partner seed in the other arm, e.g. " + ", ".join(dropped["key"].head(2)))
    if len(odd):
        what = (f"{len(odd)} runs lie more than {OUTLIER_RUN_SDS:g} eval-set SDs below their siblings (kept in the "
                "statistics" if plan.outlier_runs == "keep" else
                f"{odd['run_id'].nunique()} runs were kept out of the verdicts on every eval set (more than "
                f"{ISOLATE_RUN_SDS:g} eval-set SDs below their siblings on one eval set, or "
                f"{ISOLATE_RUN_MEAN_SDS:g} on average, beyond as many runs as far above: {len(odd)} records; "
                "plan outlier_runs: isolate")
        warnings.append(what + "; listed under Data completeness), e.g. "
                        + ", ".join(f"{r.run_id} ({r.key})" for r in odd.head(3).itertuples()))
    n_out = int(cells["outlier"].sum())
    if n_out:
        warnings.append(f"{n_out} of {len(cells)} cells are more likely outliers of the noise prior of their eval set "
                        "and init than not (limma's robust fit: their prior df is shrunk, so they keep most of their "
                        "own variance), e.g. " + ", ".join(cells.loc[cells["outlier"], "key"].head(3)))
    if not (table["status"] == "ok").any():
        warnings.append("no successful run in the results table: every cell is empty and every verdict inconclusive")
    return warnings


def _fit_models(y: pd.DataFrame, plan: Plan, warnings: list[str]
                ) -> tuple[list[dict[str, Any]], dict[str, pd.DataFrame]]:
    """The mixed model of each task with enough ok records; every warning of a fit is appended to
    ``warnings`` (never filtered)."""
    models: list[dict[str, Any]] = []
    frames: dict[str, pd.DataFrame] = {}
    for task in sorted(y["task"].unique()):
        sub = y[y["task"] == task]
        if len(sub) < _MIN_MODEL_ROWS:
            warnings.append(f"{task}: only {len(sub)} ok records; mixed model not fitted")
            continue
        entry, frame = fit_mixed(sub, name=task, task=task, metric=plan.metric[task],
                                 baseline=plan.baseline, alpha=plan.alpha)
        models.append(entry)
        frames[task] = frame
        # every warning of the fit, optimizer and Hessian ones included, is recorded (never filtered)
        warnings.extend(w if w.startswith("model ") else f"model {task}: {w}" for w in entry["warnings"])
    return models, frames


def _check_plan_names(table: pd.DataFrame, plan: Plan) -> None:
    """A plan contrast or expectation that names nothing in the results is an error naming it."""
    inits = sorted(table["init"].unique())
    if plan.contrasts != "all":
        absent = [c for c in plan.contrasts if c not in inits]
        if absent:
            raise SpecError(f"{plan.source or 'plan'}: contrasts {absent} name no init of the results "
                            f"(inits: {inits}); fix the plan's 'contrasts'")
    for i, e in enumerate(plan.expectations):
        # task and shift come from a fixed vocabulary (checked with the plan): one these results lack makes
        # the expectation not applicable here (a paper plan shared by studies), not a typo
        for col in ("init", "family"):
            v = e.get(col)
            if v and v not in set(table[col]):
                raise SpecError(
                    f"{plan.source or 'plan'}: expectations[{i}] ({e['text']!r}) names {col} {v!r}, which is not in "
                    f"the results ({col}s: {sorted(set(table[col]))}); fix the plan's expectation")


def evaluate_expectations(gains: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    """One row per plan expectation: text, status, holds, n_match, n_hold, n_untested, detail.

    Only decided verdicts meet an expectation: ``fails`` when a matching contrast has a decided verdict
    outside the expected ones (or nothing matches); ``untested`` when none fails but some are
    inconclusive, or when the results have no contrast of its task or shift (a plan shared by studies:
    not applicable here); ``holds`` when every matching contrast has an expected verdict.
    """
    rows = []
    for e in plan.expectations:
        m = gains[gains["init"] == e["init"]]
        for col in ("task", "family", "shift"):
            if e.get(col):
                m = m[m[col] == e[col]]
        if e.get("min_params") is not None:
            m = m[m["params"] >= e["min_params"]]
        if e.get("max_params") is not None:
            m = m[m["params"] <= e["max_params"]]
        ok = m["verdict"].isin(e["verdict"])
        open_ = m["verdict"] == "inconclusive"
        bad = m[~ok & ~open_]
        absent = [f"{col} {e[col]!r}" for col in ("task", "shift") if e.get(col) and e[col] not in set(gains[col])]
        if absent:
            status, detail = "untested", f"not applicable: these results have no {' and no '.join(absent)} contrast"
        elif not len(m):
            status, detail = "fails", "no matching contrasts in the results"
        else:
            status = "fails" if len(bad) else "untested" if open_.any() else "holds"
            detail = (f"{int(ok.sum())}/{len(m)} matching contrasts are {' or '.join(e['verdict'])}, "
                      f"{int(open_.sum())} inconclusive (untested)")
            if len(bad):
                detail += "; contradicted by: " + ", ".join(
                    f"{r.backbone} {r.train_set}->{r.eval_set} ({r.verdict})" for r in bad.head(5).itertuples())
                if len(bad) > 5:
                    detail += f" and {len(bad) - 5} more"
        rows.append({"text": e["text"], "status": status, "holds": status == "holds", "n_match": int(len(m)),
                     "n_hold": int(ok.sum()), "n_untested": int(open_.sum()), "detail": detail})
    return pd.DataFrame(rows, columns=["text", "status", "holds", "n_match", "n_hold", "n_untested", "detail"])


def _methods(plan: Plan, noise: pd.DataFrame, models: list[dict[str, Any]]) -> dict[str, Any]:
    families = []
    for r in noise.itertuples(index=False):
        rule = margin_rule(plan, r.task)
        families.append({
            "study": r.study, "task": r.task, "margin_rule": rule,
            "margin": float(r.margin) if np.isfinite(r.margin) else None,
            "sd_pooled": float(r.sd_pooled) if np.isfinite(r.sd_pooled) else None,
            "n_contrasts": int(r.n_contrasts), "prior_df_paired": r.d0_paired,
        })
    corr = {"holm": "Holm (family-wise error rate)", "bh": "Benjamini-Hochberg (false discovery rate)",
            "none": "none"}[plan.correction]
    return {
        "metric": plan.metric,
        "baseline": plan.baseline,
        "alpha": plan.alpha,
        "families": families,
        "correction": (f"{corr} within each (study, task): all its contrasts (every pretrained init against the "
                       "baseline, in every cell), applied to the test p-values and to the TOST p-values alike; a "
                       "study's verdicts never change because another study or task is in the same report"),
        "noise": ("each cell's run-to-run variance from its own runs (one value per trained model), stabilised by "
                  "empirical-Bayes shrinkage toward a prior fitted across the cells of its (study, task): the "
                  "moderated variance of Smyth (2004, limma), prior location per eval set and init (per eval set "
                  "where an init has fewer than three cells there), prior df fitted robustly per cell as limma's "
                  "squeezeVar(robust = TRUE) fits it (Winsorized moments; a hypervariable cell's prior df shrinks "
                  "toward 0, so it keeps most of its own variance, without biasing the other cells), capped at the "
                  "df of the prior's location; degrees of freedom d0 + n - 1"),
        "pairing": (f"plan pairing '{plan.pairing}': seeds shared by both arms are analysed as pairs (the same "
                    "seed fixes data order and augmentation for every init); the variance of the paired "
                    "differences is moderated as above; a run without its partner drops only that pair "
                    "(n_dropped), unless keeping it as a partially overlapping sample (Derrick et al. 2017: both "
                    "arms' means; the arms' and the differences' moderated variances; Satterthwaite df) gives the "
                    "smaller variance; unpaired contrasts use both arms' moderated variances with "
                    "Welch-Satterthwaite df"),
        "outliers": _outlier_text(plan),
        "interval": ("two-sided t interval, gain +- t(1 - alpha/2, df) x se, with the moderated df (marginal, per "
                     "cell; the verdicts use the adjusted p-values)"),
        "gain": "mean of the paired seed differences (or difference of seed means when unpaired); no smoothing across capacity",
        "margin": ("a fixed, pre-registered gain in metric units per task (default 0.01 = 1 pp); 'pooled_sd' "
                   "(estimated from the same data) is allowed but cannot show equivalence with few seeds"),
        "equivalence": "TOST at alpha, adjusted in the same correction family",
        "verdict_rule": verdict_rule(plan.correction),
        "seeds_needed": (f"{SEEDS_RULE}; power {plan.power}, searched up to {plan.max_seeds} "
                         "seeds per arm (that number means that many or more)"),
        "gate": ("a rung helps when every cell of that rung and shift helps (the verdict rule above); the gate is "
                 "the smallest rung from which every larger rung helps, reported as the rung interval it lies "
                 "in; gates inherit the family-wise error control of the verdicts; stability by a bootstrap "
                 "applying the same rule (runs resampled within run groups, the same seeds for every init and "
                 f"eval set, standard errors held at their stabilised values), {plan.n_boot} replicates"),
        "ranking": ("mean metric per backbone (cell means averaged over train sets); Kendall's tau between inits "
                    "against a noise reference (tau between two parametric-bootstrap replicates of the same init): "
                    "'rankings flip with init' only when tau falls below the reference's alpha quantile; "
                    "P(order holds) of adjacent pairs = T_df(gap / se_gap) from the stabilised SEs"),
        "models": [{"name": m["name"], "formula_statsmodels": m["formula_statsmodels"],
                    "formula_lme4": m.get("formula_lme4"), "method": m["method"], "status": m["status"],
                    "random_effects": m.get("random_effects")} for m in models],
        "random_effects": ("random intercepts per rung (backbone), per rung x init (the init effect varies by rung: "
                           "what a capacity gate is) and per run (nested in rung x init: each run is scored on several "
                           "eval sets), fitted as lme4 fits it (profiled REML, capgate.analysis.lmm); Satterthwaite df for the fixed "
                           "effects; each variance tested against "
                           "zero by a likelihood-ratio test; the lme4 refit recipe is in model.json (r_snippet)"),
        "optimizer": OPTIMIZER,
        "df_method": DF_METHOD,
    }


def _outlier_text(plan: Plan) -> str:
    """The methods' words for the plan's ``outlier_runs`` policy (:func:`capgate.analysis.cells.analysis_frame`)."""
    listed = (f"runs more than {OUTLIER_RUN_SDS:g} eval-set SDs below the median of their siblings are listed "
              "(Data completeness)")
    if plan.outlier_runs != "isolate":
        return f"plan outlier_runs 'keep': every ok run counts; {listed}, not removed"
    return (f"plan outlier_runs 'isolate': a run more than {ISOLATE_RUN_SDS:g} eval-set SDs below the median of its "
            f"siblings on an eval set, or {ISOLATE_RUN_MEAN_SDS:g} on average over its eval sets (cells of "
            f"{ISOLATE_MIN_RUNS}+ ok runs), is kept out of the verdicts like a diverged run, but per (study, task) only "
            "as many such runs as outnumber, at some depth, the runs as far above their siblings (the deepest "
            f"first); a backbone and train set still holding a run more than {SUSPECT_RUN_SDS:g} SDs below its "
            f"siblings on an eval set ({SUSPECT_RUN_MEAN_SDS:g} on average) has each of its contrasts judged with "
            "and without those runs (an intersection-union test: the larger p, the hull of the two intervals, a "
            f"verdict only where both analyses give it); {listed}")


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
