"""Mixed-effects models of the metric on initialization, shift and capacity (statsmodels MixedLM).

Design and random effects. Each trained model (``run_id``) is scored on several eval sets, so its
records share a run effect; all runs of one rung (``backbone``) share a rung effect. statsmodels
has one grouping factor plus variance components nested in it, so the model is

    y ~ init * shift + init * logp_c [+ family] [+ train_set] [+ eval_set],
        groups = backbone,  vc: init within backbone, run_id within backbone

which is exactly lme4's ``y ~ init * shift + init * logp_c + family + train_set + eval_set + (1 | backbone)
+ (1 | backbone:init) + (1 | backbone:run_id)`` (runs are nested in rung x init). ``(1 | backbone:init)``
lets the init effect vary by rung, which is exactly what a capacity gate is; without it the init
effect's interval is too narrow. ``train_set`` is a fixed effect where there are several.

Small samples: fixed effects are tested with t on containment degrees of freedom (SAS DDFM=CONTAIN):
a term that is constant within the groups of a random effect gets that level's df (groups minus the
groups of the level above minus the terms at that level), others the residual df. Boundary: each
variance component is tested by a likelihood-ratio test against the model without it (REML, same fixed
effects; p from the 50:50 mixture of chi2(0) and chi2(1)); a component the test cannot tell from 0 is
listed in ``boundary`` with its statistic in ``boundary_tests``. ``family`` and ``eval_set`` are nuisance fixed
effects: families differ in overall level, and eval sets differ in difficulty (FLIR vs LLVIP mAP),
which would otherwise inflate the residual and hide the run effect. ``logp_c`` is log10(params) centred on the mean over rungs, so the init
main effects are gains at a typical rung. REML by default.

Known failure guarded here (statsmodels issue 10239): when a variance component collapses below
statsmodels' internal tolerance, fixed effects that are constant within a group (capacity!) come
back as exactly 0 while ``converged=True``. We fit with a derivative-free optimizer first
(``powell``, robust at the zero-variance boundary, then ``lbfgs``/``bfgs``/``nm`` only if it did not
converge), record every warning, and check for boundary variances, zeroed effects and a non-PD
covariance. A boundary fit is refitted without the collapsed random effect (the reduced model is
the same model at that boundary, minus the numerical trap); the between-rung effects are
cross-checked against OLS on cell means with cluster-robust (by rung) standard errors.
"""

from __future__ import annotations

import logging
import re
import warnings
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from scipy import stats

from capgate.analysis._mixed_fit import (COMPONENTS, OPTIMIZERS, boundary_tests, comps_of, containment_df, fit_once,
                                         lme4_re, structure_of, variances)

__all__ = ["fit_mixed", "model_frame", "diagnose", "lme4_term", "r_snippet", "OPTIMIZERS", "BOUNDARY_TOL"]

log = logging.getLogger(__name__)

#: A variance component below this fraction of the residual variance is treated as collapsed.
BOUNDARY_TOL = 1e-6
_CROSSCHECK_SE = 3.0


def model_frame(y: pd.DataFrame, *, metric: str, baseline: str) -> tuple[pd.DataFrame, float]:
    """The exact frame a model is fitted to, from the ok rows ``y`` of one task.

    Columns: the metric (response), init, shift, family, backbone, run_id, train_set, eval_set, seed,
    params, logp (log10 params), logp_c (centred on the mean over rungs). Returns (frame, centre).
    """
    f = y[["y", "init", "shift", "family", "backbone", "run_id", "train_set", "eval_set", "seed", "params"]].copy()
    f = f.rename(columns={"y": metric})
    f["logp"] = np.log10(f["params"].astype(float))
    centre = float(f.groupby("backbone")["logp"].mean().mean())
    f["logp_c"] = f["logp"] - centre
    f["baseline"] = baseline
    f["rung_init"] = f["backbone"].astype(str) + ":" + f["init"].astype(str)
    return f.reset_index(drop=True), centre


def _interaction_columns(frame: pd.DataFrame, baseline: str) -> list[str]:
    """Add explicit init x shift indicator columns ``ix__<init>__<shift>`` (non-baseline init,
    non-reference shift) to ``frame``; returns their names. Used when eval_set spans shift, so that
    statsmodels and lme4 fit the same parameterization from the CSV alone."""
    shifts = sorted(frame["shift"].unique())[1:]
    inits = sorted(i for i in frame["init"].unique() if i != baseline)
    names = []
    for a in inits:
        for sh in shifts:
            col = f"ix__{a}__{sh}"
            frame[col] = ((frame["init"] == a) & (frame["shift"] == sh)).astype(int)
            names.append(col)
    return names


def _full_rank(frame: pd.DataFrame, formula: str) -> bool:
    exog = smf.ols(formula, frame).exog
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
    init = f"C(init, Treatment('{baseline}'))"
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
        ix = _interaction_columns(frame, baseline) if n_init > 1 else []
        explicit = [(c, c) for c in ix]
        sm, r = build(assemble(explicit, True, set()))
        if _full_rank(frame, sm):
            notes.append("eval sets span the shifts: shift main effect absorbed by eval_set; init x shift "
                         "as explicit indicator columns ix__<init>__<shift>")
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
    name = re.sub(r"C\(init, Treatment\('[^']*'\)\)\[T\.([^\]]*)\]", r"init\1", name)
    return re.sub(r"C\((\w+)\)\[T\.([^\]]*)\]", r"\1\2", name)


def _fixed_effects(res: Any, names: list[str], alpha: float, df: np.ndarray | None = None) -> list[dict[str, Any]]:
    fe = np.asarray(res.params)[: len(names)]
    se = np.asarray(res.bse)[: len(names)]
    df = np.full(len(names), np.inf) if df is None else df
    rows = []
    for n, b, s, d in zip(names, fe, se, df):
        ok = np.isfinite(s) and s > 0
        q = stats.t.ppf(1 - alpha / 2, d) if np.isfinite(d) else stats.norm.ppf(1 - alpha / 2)
        p = (2 * stats.t.sf(abs(b / s), d) if np.isfinite(d) else 2 * stats.norm.sf(abs(b / s))) if ok else None
        rows.append({
            "term": n, "term_lme4": lme4_term(n), "estimate": float(b), "se": float(s) if ok else None,
            "df": float(d) if np.isfinite(d) else None, "t": float(b / s) if ok else None,
            "p": float(p) if p is not None else None,
            "ci_low": float(b - q * s) if ok else None, "ci_high": float(b + q * s) if ok else None,
        })
    return rows


def _crosscheck(frame: pd.DataFrame, metric: str, formula: str, fixed: list[dict[str, Any]]) -> dict[str, Any]:
    """OLS of the same fixed formula on cell means (seeds averaged), SEs clustered by rung."""
    # The explicit init x shift indicator columns (ix__*) are constant within a cell: keep them.
    keys = ["init", "shift", "family", "backbone", "train_set", "eval_set", "logp_c"]
    keys += [c for c in frame.columns if c.startswith("ix__")]
    means = frame.groupby(keys, as_index=False)[metric].mean()
    try:
        ols = fit_once(means, formula, "none", reml=True)
    except Exception as exc:  # singular design on the means: report, do not hide
        return {"method": "OLS on cell means, cluster-robust by backbone", "error": str(exc), "disagree": []}
    disagree, rows = [], []
    for fe in fixed:
        name = fe["term"]
        if "logp_c" not in name or name not in ols.params.index:
            continue
        b_o, s_o = float(ols.params[name]), float(ols.bse[name])
        s_m = fe["se"] or 0.0
        tol = _CROSSCHECK_SE * max(s_o, s_m)
        bad = abs(fe["estimate"] - b_o) > tol or (fe["estimate"] == 0.0 and b_o != 0.0)
        rows.append({"term": name, "mixed": fe["estimate"], "ols": b_o, "ols_se": s_o, "agree": not bad})
        if bad:
            disagree.append(name)
    return {"method": "OLS on cell means, cluster-robust by backbone", "terms": rows, "disagree": disagree}


def diagnose(res: Any, structure: str = "rung") -> dict[str, Any]:
    """Diagnostics of one statsmodels fit: variance components, converged, loglik, ``collapsed``
    (random effects whose variance is below BOUNDARY_TOL x residual) and ``zeroed`` (fixed effects
    exactly 0.0: the signature of statsmodels issue 10239). ``structure`` names the random effects
    ('+'-joined of rung, init (backbone:init), run (backbone:run_id); 'none' = OLS)."""
    var = variances(res, structure)
    scale = max(var["residual"], 1e-300)
    names = list(res.model.exog_names)
    return {
        "variance_components": var,
        "converged": bool(getattr(res, "converged", True)),
        "loglik": float(res.llf) if np.isfinite(res.llf) else None,
        "collapsed": [k for k, v in var.items() if k != "residual" and v < BOUNDARY_TOL * scale],
        "zeroed": [n for n, b in zip(names, np.asarray(res.params)[: len(names)]) if b == 0.0],
    }


def _attempt(frame: pd.DataFrame, formula: str, structure: str, reml: bool, methods: list[str],
             entry: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """One recorded fit: its warnings go to ``entry['warnings']``, its diagnostics to ``entry['attempts']``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res, err = fit_once(frame, formula, structure, reml, methods), None
        except Exception as exc:  # LinAlgError, ValueError from a singular design...
            res, err = None, f"{type(exc).__name__}: {exc}"
    tag = f"{structure}/{'+'.join(methods)}" if structure != "none" else "none"
    for msg in sorted({f"[{tag}] {w.category.__name__}: {w.message}" for w in caught}):
        if msg not in entry["warnings"]:
            entry["warnings"].append(msg)
    attempt: dict[str, Any] = {"random_effects": structure, "optimizers": list(methods), "error": err,
                               "collapsed": [], "zeroed": []}
    entry["attempts"].append(attempt)
    if res is None:
        return None, attempt
    attempt.update(diagnose(res, structure))
    if attempt["zeroed"]:
        entry["zeroed_effects"] = sorted(set(entry["zeroed_effects"]) | set(attempt["zeroed"]))
    return res, attempt


def fit_mixed(y: pd.DataFrame, *, name: str, task: str, metric: str, baseline: str,
              alpha: float = 0.05, reml: bool = True,
              optimizers: list[str] | None = None) -> tuple[dict[str, Any], pd.DataFrame]:
    """Fit the primary mixed model of one task; returns (model.json entry, model frame).

    ``optimizers``: the chain for the first fit (default :data:`OPTIMIZERS`); a zeroed or boundary
    fit is always retried with every optimizer of :data:`OPTIMIZERS` on its own.

    Never raises on a numerical failure: the entry then has ``status='failed'`` and the error.
    ``status`` is ``ok``, ``reduced`` (a collapsed random effect was dropped and the model refitted),
    or ``failed``. Every warning of every fit attempt is in ``warnings``.
    """
    frame, centre = model_frame(y, metric=metric, baseline=baseline)
    formula, fixed_r, notes = _terms(frame, metric, baseline)
    entry: dict[str, Any] = {
        "name": name, "task": task, "metric": metric, "response": metric, "baseline": baseline,
        "formula_statsmodels": formula, "groups": "backbone",
        "vc_formula": {"init": "0 + C(init)", "run_id": "0 + C(run_id)"},
        "re_formula": "1", "method": "REML" if reml else "ML", "optimizers": list(OPTIMIZERS),
        "logp_centre": centre, "n_obs": int(len(frame)),
        "n_groups": {"backbone": int(frame["backbone"].nunique()), "run_id": int(frame["run_id"].nunique())},
        "notes": notes, "warnings": [], "zeroed_effects": [], "boundary": [], "attempts": [],
    }
    one_record = bool(frame.groupby("run_id").size().max() == 1)
    comps = {"rung", "init", "run"}
    if frame["init"].nunique() < 2 or frame.groupby("rung_init")["run_id"].nunique().max() < 2:
        comps.discard("init")
    if entry["n_groups"]["backbone"] < 2:
        comps.discard("rung")
        notes.append("one rung only: no rung random effect")
    if one_record:
        comps.discard("run")
        notes.append("one record per run: the run effect is confounded with the residual and left out")
    structure = structure_of(comps)
    res, fitted_structure = None, None
    chain = list(optimizers or OPTIMIZERS)
    initial_structure = structure
    while True:
        res, attempt = _attempt(frame, formula, structure, reml, chain, entry)
        if structure != "none" and (res is None or attempt["zeroed"] or attempt["collapsed"]
                                    or not attempt["converged"]):
            # A failed, boundary or zeroed fit may be an optimizer artefact (issue 10239): each optimizer
            # on its own, from the default start; keep the best converged likelihood without zeroed effects.
            best = (res, attempt)
            for alt in OPTIMIZERS:
                r2, a2 = _attempt(frame, formula, structure, reml, [alt], entry)
                if r2 is None or a2["zeroed"]:
                    continue
                if best[0] is None or best[1]["zeroed"] or not best[1]["converged"] or (
                        np.isfinite(r2.llf) and a2["converged"] and r2.llf > best[0].llf + 1e-8):
                    best = (r2, a2)
            res, attempt = best
            attempt["chosen"] = True
        if res is None:
            break
        collapsed = attempt["collapsed"]
        if collapsed and structure != "none":
            entry["boundary"] = sorted(set(entry["boundary"]) | set(collapsed))
            inverse = {v: k for k, v in COMPONENTS.items()}
            structure = structure_of(set(comps_of(structure)) - {inverse[c] for c in collapsed})
            notes.append(f"variance of {collapsed} collapsed to ~0 (boundary fit); refitted without it")
            continue
        fitted_structure = structure
        break
    entry["formula_lme4"] = (f"{fixed_r} + {lme4_re(fitted_structure)}" if fitted_structure not in (None, "none")
                             else fixed_r)
    entry["random_effects"] = fitted_structure
    if res is None:
        entry.update({"status": "failed", "converged": False, "fixed_effects": [], "variance_components": {},
                      "error": entry["attempts"][-1]["error"]})
        entry["warnings"].append(f"model {name}: fit failed ({entry['error']})")
        return entry, frame
    names = list(res.model.exog_names)
    ddf = containment_df(frame, np.asarray(res.model.exog), fitted_structure)
    fixed = _fixed_effects(res, names, alpha, ddf)
    entry["df_method"] = ("containment (SAS DDFM=CONTAIN): terms constant within a random effect's groups get "
                          "that level's df, others the residual df; t-based p and intervals")
    entry["fixed_effects"] = fixed
    entry["variance_components"] = variances(res, fitted_structure)
    entry["converged"] = bool(getattr(res, "converged", True))
    entry["loglik"] = float(res.llf) if np.isfinite(res.llf) else None
    ses = np.array([np.nan if f["se"] is None else f["se"] for f in fixed])
    entry["singular_hessian"] = bool(~np.isfinite(ses).all())
    entry["status"] = "ok" if fitted_structure == initial_structure else "reduced"
    if fitted_structure == "none":
        entry["method"] = "OLS (all random effects collapsed), cluster-robust SE by backbone"
    entry["boundary_tests"] = boundary_tests(frame, formula, fitted_structure, reml, res, entry)
    entry["boundary"] = sorted(set(entry["boundary"]) | {t["component"] for t in entry["boundary_tests"]
                                                        if t["at_boundary"]})
    entry["r_snippet"] = r_snippet(name, entry["formula_lme4"], baseline, reml, fitted_structure != "none")
    entry["r_call"] = entry["r_snippet"]
    entry["crosscheck"] = _crosscheck(frame, metric, formula, fixed)
    if any("MLE may be on the boundary" in w for w in entry["warnings"]) and not entry["boundary"]:
        notes.append("statsmodels warns 'MLE may be on the boundary' whenever a variance is below 0.01 in "
                     "absolute terms, which every variance of a 0..1 metric is; the likelihood-ratio tests "
                     "(boundary_tests) reject a zero variance for every component")
    if not entry["converged"]:
        entry["warnings"].append(f"model {name}: optimizer did not converge; estimates are unreliable")
    if entry["singular_hessian"]:
        entry["warnings"].append(f"model {name}: non-finite standard errors (singular Hessian)")
    if [z for z in entry["zeroed_effects"] if z in {f['term'] for f in fixed} and
            next(f for f in fixed if f["term"] == z)["estimate"] == 0.0]:
        entry["warnings"].append(f"model {name}: fixed effects exactly 0 in the final fit: {entry['zeroed_effects']}")
    elif entry["zeroed_effects"]:
        entry["warnings"].append(
            f"model {name}: statsmodels zeroed {entry['zeroed_effects']} at a boundary fit (issue 10239); "
            "the reported fit is the refit without the collapsed variance")
    if entry["crosscheck"].get("disagree"):
        entry["warnings"].append(
            f"model {name}: capacity effects {entry['crosscheck']['disagree']} disagree with the OLS cross-check "
            f"by more than {_CROSSCHECK_SE} SE")
    return entry, frame


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
        f"d <- d[d$model == '{name}', ]",
        "for (v in c('shift', 'family', 'train_set', 'eval_set', 'backbone', 'run_id')) "
        "if (v %in% names(d)) d[[v]] <- factor(d[[v]], levels = sort(unique(d[[v]])))",
        f"d$init <- relevel(factor(d$init, levels = sort(unique(d$init))), ref = '{baseline}')",
        fit, out,
    ])
