"""The fitting half of :mod:`capgate.analysis.mixed`: random-effect structures, one MixedLM fit,
variance components and containment degrees of freedom (a structure is ``+``-joined components:
``rung`` = (1 | backbone), ``init`` = (1 | backbone:init), ``run`` = (1 | backbone:run_id); ``none`` = OLS).
"""

from __future__ import annotations

from typing import Any

import warnings

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from scipy import stats
from threadpoolctl import threadpool_limits

__all__ = ["OPTIMIZERS", "fit_once", "comps_of", "structure_of", "lme4_re", "variances", "containment_df", "boundary_tests",
           "COMPONENTS"]

#: Optimizer chain handed to MixedLM.fit: each is tried only if the previous did not converge.
OPTIMIZERS = ["powell", "lbfgs", "bfgs", "nm"]

def fit_once(frame: pd.DataFrame, formula: str, structure: str, reml: bool, methods: list[str] | None = None):
    """One fit. structure: 'rung+run' | 'rung' | 'run' | 'none' (OLS, cluster-robust by rung).

    BLAS is limited to one thread: MixedLM does thousands of small dense solves (one per rung and
    likelihood evaluation), which multi-threaded BLAS makes up to 10x slower on a shared CPU.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        return _fit_unlimited(frame, formula, structure, reml, methods)


COMPONENTS = {"rung": "backbone", "init": "backbone:init", "run": "backbone:run_id"}
_ORDER = ("rung", "init", "run")
_UNIT = {"rung": "backbone", "init": "rung_init", "run": "run_id"}


def comps_of(structure: str) -> list[str]:
    return [] if structure == "none" else [c for c in _ORDER if c in structure.split("+")]


def structure_of(comps: set[str] | list[str]) -> str:
    return "+".join(c for c in _ORDER if c in comps) or "none"


def _fit_unlimited(frame: pd.DataFrame, formula: str, structure: str, reml: bool, methods: list[str] | None):
    comps = comps_of(structure)
    if not comps:
        return smf.ols(formula, frame).fit(cov_type="cluster", cov_kwds={"groups": pd.factorize(frame["backbone"])[0]})
    top = comps[0]
    vc = {}
    if top == "rung" and "init" in comps:
        vc["init"] = "0 + C(init)"
    if top != "run" and "run" in comps:
        vc["run_id"] = "0 + C(run_id)"
    m = smf.mixedlm(formula, frame, groups=_UNIT[top], re_formula="1", vc_formula=vc or None)
    return m.fit(reml=reml, method=list(methods or OPTIMIZERS))


def lme4_re(structure: str) -> str:
    return " + ".join(f"(1 | {COMPONENTS[c]})" for c in comps_of(structure))


def variances(res: Any, structure: str) -> dict[str, float]:
    comps = comps_of(structure)
    if not comps:
        return {"residual": float(res.scale)}
    out: dict[str, float] = {COMPONENTS[comps[0]]: float(np.asarray(res.cov_re)[0, 0])}
    exog_vc = getattr(res.model, "exog_vc", None)
    names = list(exog_vc.names) if exog_vc is not None else []
    for name, v in zip(names, np.asarray(res.vcomp)):
        out[{"init": "backbone:init", "run_id": "backbone:run_id"}[name]] = float(v)
    out["residual"] = float(res.scale)
    return out


def containment_df(frame: pd.DataFrame, exog: np.ndarray, structure: str) -> np.ndarray:
    """Containment degrees of freedom per fixed-effect column (see the module docstring)."""
    comps = comps_of(structure)
    level_of = np.full(exog.shape[1], len(comps))  # default: the residual level
    for j in range(exog.shape[1]):
        col = pd.Series(exog[:, j])
        for k in range(len(comps)):  # the coarsest random effect within whose groups the term is constant
            if (col.groupby(frame[_UNIT[comps[k]]].to_numpy()).nunique() <= 1).all():
                level_of[j] = k
                break
    units = [frame[_UNIT[c]].nunique() for c in comps] + [len(frame)]
    df = np.empty(exog.shape[1])
    for j, lv in enumerate(level_of):
        above = units[lv - 1] if lv > 0 else 0
        df[j] = max(units[lv] - above - int((level_of == lv).sum()), 1)
    return df


def boundary_tests(frame: pd.DataFrame, formula: str, structure: str, reml: bool, res: Any,
                    entry: dict[str, Any]) -> list[dict[str, Any]]:
    """Likelihood-ratio test of each variance component against the model without it."""
    out: list[dict[str, Any]] = []
    comps = comps_of(structure)
    if not comps or res.llf is None or not np.isfinite(res.llf):
        return out
    for c in comps:
        reduced = structure_of(set(comps) - {c})
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                r2 = fit_once(frame, formula, reduced, reml, ["powell", "lbfgs"])
                llf = float(r2.llf) if reduced != "none" else _ols_reml_llf(r2, reml)
            except Exception as exc:  # noqa: BLE001 - recorded, never hidden
                entry["warnings"].append(f"[boundary test {c}] {type(exc).__name__}: {exc}")
                continue
        for w in caught:
            msg = f"[boundary test {c}] {w.category.__name__}: {w.message}"
            if msg not in entry["warnings"]:
                entry["warnings"].append(msg)
        stat = max(2 * (float(res.llf) - llf), 0.0)
        p = 1.0 if stat <= 0 else 0.5 * float(stats.chi2.sf(stat, 1))
        out.append({"component": COMPONENTS[c], "reduced": lme4_re(reduced) or "(fixed effects only)", "lrt": stat,
                    "p": p, "at_boundary": bool(p >= 0.05)})
    return out


def _ols_reml_llf(res: Any, reml: bool) -> float:
    """The (REML) log-likelihood of an OLS fit, on MixedLM's scale."""
    if not reml:
        return float(res.llf)
    n, p = res.model.exog.shape
    sigma2 = float(res.ssr) / (n - p)
    _, logdet = np.linalg.slogdet(res.model.exog.T @ res.model.exog)
    return float(-0.5 * ((n - p) * np.log(2 * np.pi * sigma2) + logdet + (n - p)))
