"""Mixed-effects models of the metric on initialization, shift and capacity (capgate.analysis.lmm).

Design and random effects. Each trained model (``run_id``) is scored on several eval sets, so its
records share a run effect; all runs of one rung (``backbone``) share a rung effect; the init effect
may vary by rung. The model, in lme4 syntax (and fitted the way lme4 fits it, by
:func:`capgate.analysis.lmm.lmer`: profiled REML over the relative covariance parameters)

    y ~ init * shift + init * logp_c [+ family] [+ train_set] [+ eval_set]
        + (1 | backbone) + (1 | backbone:init) [+ (1 | backbone:init:stage)] + (1 | backbone:run_id)

(runs are nested in rung x init). With pretraining replicates (``stage_seed``; two or more per rung x
pretrained init) the replicate is nested in rung x init as its own variance component
``(1 | backbone:init:stage)``: the runs fine-tuned from one pretraining run share its effect. ``(1 | backbone:init)`` lets the init effect vary by rung, which is
exactly what a capacity gate is; without it the init effect's interval is too narrow. ``train_set``
is a fixed effect where there are several. The fixed part is also written in statsmodels syntax
(``formula_statsmodels``; the same patsy names).

Small samples: fixed effects are tested with t on Satterthwaite degrees of freedom (as lmerTest
computes them). Boundary: each variance component is tested by a likelihood-ratio test against the
model without it (same criterion and fixed effects; p from the 50:50 mixture of chi2(0) and
chi2(1)); a component the test cannot tell from 0 is listed in ``boundary`` with its statistic in
``boundary_tests``. A component whose variance collapses below :data:`BOUNDARY_TOL` x the residual
is dropped and the model refitted (the reduced model is the same model at that boundary);
``status`` then says ``reduced``. ``family`` and ``eval_set`` are nuisance fixed effects: families
differ in overall level, and eval sets differ in difficulty (FLIR vs LLVIP mAP), which would
otherwise inflate the residual and hide the run effect. ``logp_c`` is log10(params) centred on the
mean over rungs, so the init main effects are gains at a typical rung. REML by default. The
between-rung (capacity) effects are cross-checked against OLS on cell means with cluster-robust
(by rung) standard errors.
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf

from capgate.analysis._mixed_fit import COMPONENTS, OPTIMIZER, Fit, comps_of, fit_once, lme4_re, ols_fit, structure_of

__all__ = ["fit_mixed", "model_frame", "lme4_term", "r_snippet", "OPTIMIZER", "BOUNDARY_TOL", "DF_METHOD"]

log = logging.getLogger(__name__)

#: A variance component below this fraction of the residual variance is treated as collapsed.
BOUNDARY_TOL = 1e-6
_CROSSCHECK_SE = 3.0
DF_METHOD = ("Satterthwaite (as lmerTest computes it, from the Hessian of the deviance in the variance parameters); "
             "t-based p and intervals; residual df n - p for an OLS fit")


def model_frame(y: pd.DataFrame, *, metric: str, baseline: str) -> tuple[pd.DataFrame, float]:
    """The exact frame a model is fitted to, from the ok rows ``y`` of one task.

    Columns: the metric (response), init, shift, family, backbone, run_id, train_set, eval_set, seed,
    stage (the pretraining replicate, ``none`` without one), params, logp (log10 params), logp_c (centred on
    the mean over rungs). Returns (frame, centre).
    """
    f = y[["y", "init", "shift", "family", "backbone", "run_id", "train_set", "eval_set", "seed", "params"]].copy()
    stage = y["stage_seed"] if "stage_seed" in y.columns else pd.Series(np.nan, index=y.index)
    # the pretraining replicate; "none" for scratch and external checkpoints (one level per rung x init there)
    f["stage"] = [str(int(s)) if pd.notna(s) else "none" for s in stage]
    f = f.rename(columns={"y": metric})
    f["logp"] = np.log10(f["params"].astype(float))
    centre = float(f.groupby("backbone")["logp"].mean().mean())
    f["logp_c"] = f["logp"] - centre
    f["baseline"] = baseline
    f["rung_init"] = f["backbone"].astype(str) + ":" + f["init"].astype(str)
    return f.reset_index(drop=True), centre


def safe_name(level: str) -> str:
    """A level as a name both patsy and R accept in a formula: itself when it is already a plain
    identifier part (letters, digits, ``_``), else every other character replaced by ``_`` and a short
    hash of the original appended, so that ``in1k+coco`` and ``in1k-coco`` stay distinct columns."""
    text = str(level)
    if re.fullmatch(r"[A-Za-z0-9_]+", text):
        return text
    return re.sub(r"[^A-Za-z0-9_]", "_", text) + "_" + hashlib.sha1(text.encode()).hexdigest()[:6]


def py_str(text: str) -> str:
    """``text`` as a Python string literal inside a patsy formula (any init name, quotes included)."""
    return repr(str(text))


def _interaction_columns(frame: pd.DataFrame, baseline: str) -> tuple[list[str], list[str]]:
    """Add explicit init x shift indicator columns ``ix__<init>__<shift>`` (non-baseline init,
    non-reference shift) to ``frame``; returns their names and, for names that had to be encoded
    (:func:`safe_name`), notes mapping each column to its init and shift. Used when eval_set spans
    shift, so that statsmodels and lme4 fit the same parameterization from the CSV alone."""
    shifts = sorted(frame["shift"].unique())[1:]
    inits = sorted(i for i in frame["init"].unique() if i != baseline)
    names, mapping = [], []
    for a in inits:
        for sh in shifts:
            col = f"ix__{safe_name(a)}__{safe_name(sh)}"
            frame[col] = ((frame["init"] == a) & (frame["shift"] == sh)).astype(int)
            names.append(col)
            if safe_name(a) != a or safe_name(sh) != sh:
                mapping.append(f"column {col} = init {a!r} under shift {sh!r}")
    return names, mapping


def _full_rank(frame: pd.DataFrame, formula: str) -> bool:
    # The rank of the design is the rank of its distinct covariate rows: patsy then reads hundreds of rows, not 10^5.
    cols = ["init", "shift", "family", "train_set", "eval_set", "logp_c"] + [c for c in frame.columns
                                                                           if c.startswith("ix__")]
    exog = smf.ols(formula, frame.drop_duplicates(cols)).exog
    return bool(np.linalg.matrix_rank(exog) == exog.shape[1])


def _terms(frame: pd.DataFrame, metric: str, baseline: str) -> tuple[str, str, list[str]]:
    """(statsmodels formula, lme4 fixed part, notes) for the levels present in the frame.

    Terms absent from the data (one init, one shift, one capacity, one family, one eval set) are left
    out. The eval-set difficulty term is kept when it is estimable; when eval sets span the shifts
    (an eval set seen under one shift only, e.g. IR test sets), the shift main effect is replaced by
    eval_set and init x shift is written as explicit indicator columns (added to the frame). If the
    design is still rank deficient, eval_set, then init:shift, then init:logp_c are dropped; the
    notes say what happened.
    """
    init = f"C(init, Treatment({py_str(baseline)}))"
    n_init, n_shift = frame["init"].nunique(), frame["shift"].nunique()
    n_cap, n_fam = frame["logp_c"].round(9).nunique(), frame["family"].nunique()
    n_eval = frame["eval_set"].nunique()
    n_train = frame["train_set"].nunique()
    notes: list[str] = []

    def build(ts: list[tuple[str, str]]) -> tuple[str, str]:
        return (f"{metric} ~ " + (" + ".join(t[0] for t in ts) or "1"),
                f"{metric} ~ " + (" + ".join(t[1] for t in ts) or "1"))

    def assemble(shift_terms: list[tuple[str, str]], with_eval: bool, drop: set[str]) -> list[tuple[str, str]]:
        ts: list[tuple[str, str]] = []
        if n_init > 1:
            ts.append((init, "init"))
        ts += [t for t in shift_terms if t[1] not in drop and not (t[1].startswith("ix__") and "init:shift" in drop)]
        if n_cap > 1:
            ts.append(("logp_c", "logp_c"))
            if n_init > 1 and "init:logp_c" not in drop:
                ts.append((f"{init}:logp_c", "init:logp_c"))
        if n_fam > 1:
            ts.append(("C(family)", "family"))
        if n_train > 1 and "train_set" not in drop:
            ts.append(("C(train_set)", "train_set"))
        if with_eval and n_eval > 1:
            ts.append(("C(eval_set)", "eval_set"))
        return ts

    factor_shift: list[tuple[str, str]] = []
    if n_shift > 1:
        factor_shift.append(("C(shift)", "shift"))
        if n_init > 1:
            factor_shift.append((f"{init}:C(shift)", "init:shift"))
    if n_cap <= 1:
        notes.append("one capacity only: no capacity terms")
    sm, r = build(assemble(factor_shift, True, set()))
    if _full_rank(frame, sm):
        return sm, r, notes
    if n_shift > 1 and n_eval > 1:
        ix, mapping = _interaction_columns(frame, baseline) if n_init > 1 else ([], [])
        explicit = [(c, c) for c in ix]
        sm, r = build(assemble(explicit, True, set()))
        if _full_rank(frame, sm):
            notes.append("eval sets span the shifts: shift main effect absorbed by eval_set; init x shift "
                         "as explicit indicator columns ix__<init>__<shift>")
            notes.extend(mapping)
            return sm, r, notes
    for drop in ({"train_set"}, {"eval_set"}, {"eval_set", "train_set"}, {"eval_set", "init:shift"},
                 {"eval_set", "train_set", "init:shift"}, {"eval_set", "train_set", "init:shift", "init:logp_c"}):
        sm, r = build(assemble(factor_shift, False, drop))
        if _full_rank(frame, sm):
            notes.append(f"fixed design rank deficient: dropped {sorted(drop)}")
            return sm, r, notes
    notes.append("fixed design still rank deficient after dropping nuisance and interaction terms")
    return sm, r, notes


def lme4_term(name: str) -> str:
    """statsmodels term name -> lme4's coefficient name (``C(shift)[T.in_domain]`` -> ``shiftin_domain``)."""
    if name == "Intercept":
        return "(Intercept)"
    name = re.sub(r"C\(init, Treatment\(('[^']*'|\"[^\"]*\")\)\)\[T\.([^\]]*)\]", r"init\2", name)
    return re.sub(r"C\((\w+)\)\[T\.([^\]]*)\]", r"\1\2", name)


def _crosscheck(frame: pd.DataFrame, metric: str, formula: str, fixed: list[dict[str, Any]]) -> dict[str, Any]:
    """OLS of the same fixed formula on cell means (seeds averaged), SEs clustered by rung."""
    # The explicit init x shift indicator columns (ix__*) are constant within a cell: keep them.
    keys = ["init", "shift", "family", "backbone", "train_set", "eval_set", "logp_c"]
    keys += [c for c in frame.columns if c.startswith("ix__")]
    means = frame.groupby(keys, as_index=False)[metric].mean()
    try:
        ols = ols_fit(means, formula)
    except Exception as exc:  # singular design on the means: report, do not hide
        return {"method": "OLS on cell means, cluster-robust by backbone", "error": str(exc), "disagree": []}
    disagree, rows = [], []
    for fe in fixed:
        name = fe["term"]
        o = next((r for r in ols.fixed if r["term"] == name), None)
        if "logp_c" not in name or o is None or o["se"] is None:
            continue
        b_o, s_o = o["estimate"], o["se"]
        s_m = fe["se"] or 0.0
        tol = _CROSSCHECK_SE * max(s_o, s_m)
        bad = abs(fe["estimate"] - b_o) > tol or (fe["estimate"] == 0.0 and b_o != 0.0)
        rows.append({"term": name, "mixed": fe["estimate"], "ols": b_o, "ols_se": s_o, "agree": not bad})
        if bad:
            disagree.append(name)
    return {"method": "OLS on cell means, cluster-robust by backbone", "terms": rows, "disagree": disagree,
            "warnings": ols.warnings}


def fit_mixed(y: pd.DataFrame, *, name: str, task: str, metric: str, baseline: str,
              alpha: float = 0.05, reml: bool = True) -> tuple[dict[str, Any], pd.DataFrame]:
    """Fit the primary mixed model of one task; returns (model.json entry, model frame).

    Never raises on a numerical failure: the entry then has ``status='failed'`` and the error.
    ``status`` is ``ok``, ``reduced`` (a collapsed random effect was dropped and the model refitted),
    or ``failed``. Every warning of every fit attempt is in ``warnings``; each attempt's structure,
    convergence and collapsed components are in ``attempts``.
    """
    frame, centre = model_frame(y, metric=metric, baseline=baseline)
    formula, fixed_r, notes = _terms(frame, metric, baseline)
    entry: dict[str, Any] = {
        "name": name, "task": task, "metric": metric, "response": metric, "baseline": baseline,
        "formula_statsmodels": formula, "groups": "backbone",
        "vc_formula": {"init": "0 + C(init)", "run_id": "0 + C(run_id)"},  # the lme4 formula is the reference
        "re_formula": "1", "method": "REML" if reml else "ML", "fitter": "capgate.analysis.lmm",
        "optimizer": OPTIMIZER, "df_method": DF_METHOD,
        "logp_centre": centre, "n_obs": int(len(frame)),
        "n_groups": {"backbone": int(frame["backbone"].nunique()), "run_id": int(frame["run_id"].nunique())},
        "notes": notes, "warnings": [], "zeroed_effects": [], "boundary": [], "attempts": [],
    }
    comps = _components(frame, entry, notes)
    structure = initial_structure = structure_of(comps)
    res, err, structure = _fit_until_stable(frame, formula, structure, reml, alpha, entry, notes)
    entry["formula_lme4"] = f"{fixed_r} + {lme4_re(structure)}" if res is not None and structure != "none" else fixed_r
    entry["random_effects"] = structure if res is not None else None
    if res is None:
        entry.update({"status": "failed", "converged": False, "fixed_effects": [], "variance_components": {},
                      "error": err})
        entry["warnings"].append(f"model {name}: fit failed ({err})")
        return entry, frame
    _record_fit(entry, res, frame, formula, structure, initial_structure, reml=reml)
    return entry, frame


def _components(frame: pd.DataFrame, entry: dict[str, Any], notes: list[str]) -> set[str]:
    """The random-effect components the design supports (a note in ``notes`` for each one left out or added)."""
    one_record = bool(frame.groupby("run_id").size().max() == 1)
    comps = {"rung", "init", "run"}
    if frame[frame["stage"] != "none"].groupby("rung_init")["stage"].nunique().max() >= 2:
        comps.add("stage")
        notes.append("pretraining replicates: (1 | backbone:init:stage), the between-stage variance of each rung x "
                     "pretrained init (scratch rows are one level per rung x init)")
    if frame["init"].nunique() < 2 or frame.groupby("rung_init")["run_id"].nunique().max() < 2:
        comps.discard("init")
    if entry["n_groups"]["backbone"] < 2:
        comps.discard("rung")
        notes.append("one rung only: no rung random effect")
    if one_record:
        comps.discard("run")
        notes.append("one record per run: the run effect is confounded with the residual and left out")
    return comps


def _fit_until_stable(frame: pd.DataFrame, formula: str, structure: str, reml: bool, alpha: float,
                      entry: dict[str, Any], notes: list[str]) -> tuple[Fit | None, str | None, str]:
    """Fit ``structure``, dropping collapsed components and refitting until none collapses;
    returns (fit or None, error, the final structure)."""
    res: Fit | None = None
    while True:
        res, err = _attempt(frame, formula, structure, reml, alpha, entry)
        if res is None:
            break
        scale = max(res.variances["residual"], 1e-300)
        collapsed = [k for k, v in res.variances.items() if k != "residual" and v < BOUNDARY_TOL * scale]
        entry["attempts"][-1]["collapsed"] = collapsed
        if collapsed:
            entry["boundary"] = sorted(set(entry["boundary"]) | set(collapsed))
            inverse = {v: k for k, v in COMPONENTS.items()}
            structure = structure_of(set(comps_of(structure)) - {inverse[c] for c in collapsed})
            notes.append(f"variance of {collapsed} collapsed to ~0 (boundary fit); refitted without it")
            continue
        break
    return res, err, structure


def _record_fit(entry: dict[str, Any], res: Fit, frame: pd.DataFrame, formula: str, structure: str,
                initial_structure: str, *, reml: bool) -> None:
    """Write a successful fit into ``entry``: fixed effects, variances, boundary tests, the R recipe,
    the OLS cross-check and a warning for each diagnostic that failed."""
    name, metric, baseline = entry["name"], entry["metric"], entry["baseline"]
    fixed = [{"term": f["term"], "term_lme4": lme4_term(f["term"]), **{k: v for k, v in f.items() if k != "term"}}
             for f in res.fixed]
    entry["fixed_effects"] = fixed
    entry["variance_components"] = res.variances
    entry["converged"] = res.converged
    entry["loglik"] = res.loglik
    entry["singular_hessian"] = any(f["se"] is None for f in fixed)
    entry["status"] = "ok" if structure == initial_structure else "reduced"
    if structure == "none":
        entry["method"] = "OLS (all random effects collapsed), cluster-robust SE by backbone"
        entry["df_method"] = "residual df n - p (OLS); t-based p and intervals"
    entry["boundary_tests"] = [
        {"component": COMPONENTS[c], "reduced": lme4_re(structure_of(set(comps_of(structure)) - {c}))
         or "(fixed effects only)", "lrt": res.lrt[COMPONENTS[c]][0], "p": res.lrt[COMPONENTS[c]][1],
         "at_boundary": bool(res.lrt[COMPONENTS[c]][1] >= 0.05)}
        for c in comps_of(structure) if res.lrt.get(COMPONENTS[c], (None, None))[1] is not None]
    entry["boundary"] = sorted(set(entry["boundary"]) | {t["component"] for t in entry["boundary_tests"]
                                                        if t["at_boundary"]})
    entry["r_snippet"] = r_snippet(name, entry["formula_lme4"], baseline, reml, structure != "none")
    entry["r_call"] = entry["r_snippet"]
    entry["crosscheck"] = _crosscheck(frame, metric, formula, fixed)
    if not entry["converged"]:
        entry["warnings"].append(f"model {name}: optimizer did not converge; estimates are unreliable")
    if entry["singular_hessian"]:
        entry["warnings"].append(f"model {name}: non-finite standard errors (singular Hessian)")
    if entry["crosscheck"].get("disagree"):
        entry["warnings"].append(
            f"model {name}: capacity effects {entry['crosscheck']['disagree']} disagree with the OLS cross-check "
            f"by more than {_CROSSCHECK_SE} SE")


def _attempt(frame: pd.DataFrame, formula: str, structure: str, reml: bool, alpha: float,
             entry: dict[str, Any]) -> tuple[Fit | None, str | None]:
    """One recorded fit: its warnings go to ``entry['warnings']``, its diagnostics to ``entry['attempts']``."""
    try:
        res, err = fit_once(frame, formula, structure, reml, alpha), None
    except Exception as exc:  # noqa: BLE001 - InputError, LinAlgError from a singular design: recorded
        res, err = None, f"{type(exc).__name__}: {exc}"
    attempt: dict[str, Any] = {"random_effects": structure, "error": err, "collapsed": []}
    if res is not None:
        attempt.update({"converged": res.converged, "loglik": res.loglik, "optimizer": res.optimizer,
                        "variance_components": res.variances})
        for w in res.warnings:
            msg = f"[{structure}] {w}"
            if msg not in entry["warnings"]:
                entry["warnings"].append(msg)
    entry["attempts"].append(attempt)
    return res, err


def _r_str(text: str) -> str:
    """``text`` as an R string literal: single-quoted, backslashes and quotes escaped."""
    return "'" + str(text).replace("\\", "\\\\").replace("'", "\\'") + "'"


def r_snippet(name: str, formula_lme4: str, baseline: str, reml: bool, mixed: bool = True) -> str:
    """A runnable R script that refits one model from ``model_frame.csv`` with lme4 and prints its
    estimates named as capgate names them: treatment contrasts, ``init`` releveled to the baseline (R
    would otherwise take the alphabetically first init), every other factor's reference its first
    level in sorted order (as statsmodels takes it), the same REML setting."""
    fit = (f"fit <- lme4::lmer({formula_lme4}, data = d, REML = {'TRUE' if reml else 'FALSE'})" if mixed
           else f"fit <- lm({formula_lme4}, data = d)")
    out = ("print(lme4::fixef(fit), digits = 10)\nprint(as.data.frame(lme4::VarCorr(fit))[, c('grp', 'vcov')], "
           "digits = 10)" if mixed else "print(coef(fit), digits = 10)")
    return "\n".join([
        "options(contrasts = c('contr.treatment', 'contr.poly'))",
        "d <- read.csv('model_frame.csv', stringsAsFactors = FALSE)",
        f"d <- d[d$model == {_r_str(name)}, ]",
        "for (v in c('shift', 'family', 'train_set', 'eval_set', 'backbone', 'run_id', 'stage')) "
        "if (v %in% names(d)) d[[v]] <- factor(d[[v]], levels = sort(unique(d[[v]])))",
        f"d$init <- relevel(factor(d$init, levels = sort(unique(d$init))), ref = {_r_str(baseline)})",
        fit, out,
    ])
