"""The fitting half of :mod:`capgate.analysis.mixed`: random-effect structures and one fit
(a structure is ``+``-joined components: ``rung`` = (1 | backbone), ``init`` = (1 | backbone:init),
``stage`` = (1 | backbone:init:stage), the pretraining replicate, ``run`` = (1 | backbone:run_id); ``none`` =
OLS, cluster-robust by rung).

A mixed structure is fitted by :func:`capgate.analysis.lmm.lmer` (lme4's profiled REML, Satterthwaite
df, a likelihood-ratio test per variance component); ``none`` by statsmodels OLS. Both come back
as a :class:`Fit`, so :mod:`mixed` never looks at which fitter ran.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from scipy import stats

from capgate.analysis.lmm import lmer

__all__ = ["Fit", "fit_once", "ols_fit", "comps_of", "structure_of", "lme4_re", "COMPONENTS", "OPTIMIZER"]

COMPONENTS = {"rung": "backbone", "init": "backbone:init", "stage": "backbone:init:stage", "run": "backbone:run_id"}
_ORDER = ("rung", "init", "stage", "run")
#: What fits a mixed structure (recorded in model.json).
OPTIMIZER = ("capgate.analysis.lmm: profiled REML/ML over the relative covariance parameters (Bates et al. 2015), "
             "L-BFGS-B on theta >= 0 from theta = 1")


@dataclass
class Fit:
    """One fit, fitter-neutral. ``fixed``: rows of term, estimate, se, df (None = normal), t, p, ci_low,
    ci_high; ``variances``: component -> variance plus ``residual``; ``lrt``: component -> (statistic, p)."""
    structure: str
    fixed: list[dict[str, Any]]
    variances: dict[str, float]
    converged: bool
    loglik: float | None
    warnings: list[str]
    lrt: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    optimizer: dict[str, Any] = field(default_factory=dict)


def comps_of(structure: str) -> list[str]:
    return [] if structure == "none" else [c for c in _ORDER if c in structure.split("+")]


def structure_of(comps: set[str] | list[str]) -> str:
    return "+".join(c for c in _ORDER if c in comps) or "none"


def lme4_re(structure: str) -> str:
    return " + ".join(f"(1 | {COMPONENTS[c]})" for c in comps_of(structure))


def fit_once(frame: pd.DataFrame, formula: str, structure: str, reml: bool, alpha: float = 0.05) -> Fit:
    """One fit of the statsmodels fixed ``formula`` with the random effects of ``structure``."""
    if structure == "none":
        return ols_fit(frame, formula, alpha)
    res = lmer(f"{formula} + {lme4_re(structure)}", frame, reml=reml, alpha=alpha, test_components=True)
    fixed = [{"term": f.name, "estimate": f.estimate, "se": _num(f.se), "df": _num(f.df), "t": _num(f.t),
              "p": _num(f.p), "ci_low": _num(f.ci_low), "ci_high": _num(f.ci_high)} for f in res.fixed]
    var = {v.group: v.variance for v in res.variance_components}
    var["residual"] = res.residual_variance
    lrt = {v.group: (v.lrt_stat, v.lrt_p) for v in res.variance_components}
    opt = {k: v for k, v in res.optimizer.items() if isinstance(v, (str, int, float, bool))}
    return Fit(structure, fixed, var, bool(res.converged), _num(res.loglik), list(res.warnings), lrt, opt)


def ols_fit(frame: pd.DataFrame, formula: str, alpha: float = 0.05) -> Fit:
    """OLS with standard errors clustered by rung (backbone) and t on the residual df; statsmodels'
    warnings (e.g. a rank-deficient design) are recorded in the fit, not raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = smf.ols(formula, frame).fit(cov_type="cluster", cov_kwds={"groups": pd.factorize(frame["backbone"])[0]})
    d = float(res.df_resid)
    q = stats.t.ppf(1 - alpha / 2, d)
    fixed = []
    for name, b, s in zip(res.model.exog_names, np.asarray(res.params), np.asarray(res.bse)):
        ok = bool(np.isfinite(s) and s > 0)
        fixed.append({"term": name, "estimate": float(b), "se": float(s) if ok else None, "df": d,
                      "t": float(b / s) if ok else None, "p": float(2 * stats.t.sf(abs(b / s), d)) if ok else None,
                      "ci_low": float(b - q * s) if ok else None, "ci_high": float(b + q * s) if ok else None})
    notes = list(dict.fromkeys(f"OLS: {w.message}" for w in caught))
    return Fit("none", fixed, {"residual": float(res.scale)}, True, float(res.llf), notes)


def _num(x: Any) -> float | None:
    return float(x) if x is not None and np.isfinite(x) else None
