"""Linear mixed models with scalar random intercepts, fitted the way lme4 fits them.

Model: ``y = X beta + Z b + e``, ``b_j ~ N(0, sigma_j^2 I)`` for each grouping factor j (crossed or
nested, e.g. ``(1|backbone) + (1|backbone:init) + (1|run_id)``), ``e ~ N(0, sigma^2 I)``.

Formulation (Bates, Maechler, Bolker, Walker 2015, "Fitting Linear Mixed-Effects Models Using
lme4", J. Stat. Softw. 67(1), section 3). With relative covariance parameters ``theta_j =
sigma_j / sigma`` and ``Lambda = diag(theta_j repeated over factor j's levels)``, the sparse
Cholesky ``L L' = Lambda'Z'Z Lambda + I`` and the fixed-effects factor ``R_X`` give the profiled
deviance in closed form (their eqs. 34 and 41)

    -2 log L(theta)    = log|L|^2 + n (1 + log(2 pi r^2 / n))                    (ML)
    REML criterion     = log|L|^2 + log|R_X|^2 + (n - p)(1 + log(2 pi r^2 / (n - p)))

with ``r^2`` the penalised residual sum of squares. It is minimised over ``theta >= 0`` by
L-BFGS-B (bounded, central-difference gradients; lme4 uses BOBYQA on the same bounds) from
lme4's start ``theta = 1``; a component that ends on the bound is probed along its axis and the
fit restarted when the deviance goes down. beta-hat, sigma^2 = r^2/(n - p) (REML) or r^2/n (ML) and
``vcov(beta) = sigma^2 (R_X'R_X)^-1`` then follow from the same factorisation.

Linear algebra. CHOLMOD (scikit-sparse) is not a dependency; scipy has no sparse Cholesky. The
structure makes one unnecessary: every observation belongs to exactly one level of each factor,
so the block of ``Lambda'Z'Z Lambda + I`` of any single factor is *diagonal*. The factor with the
most levels (``run_id``: tens of thousands) is eliminated first, exactly and without fill (a
diagonal block pivots onto nothing but the complement); the Schur complement over the remaining
levels (``backbone``, ``backbone:init``: tens), the fixed effects and the response is small and
dense (m = q2 + p + 1) and factored by LAPACK. Its weights ``1/(theta^2 n_i + 1)`` depend on a level
of the big factor only through its count n_i, so the data are read once, into one m x m Gram
matrix per distinct count: an evaluation costs O(K m^2 + m^3), independent of n. This is exact,
not an approximation. Limit: the levels of all factors but the largest must fit a dense m x m
matrix (:data:`MAX_DENSE`, an :class:`~capgate.errors.InputError` otherwise; an evaluation costs
about (m / 1000)^3 s, so keep m in the hundreds). Two *large* factors (e.g. run_id and a per-seed
factor with 10^4 levels) would need a general sparse Cholesky and are not supported.

Inference. Fixed-effect tests and CIs use t with Satterthwaite df, computed as lmerTest does
(Kuznetsova, Brockhoff, Christensen 2017): the Hessian of the deviance in ``(theta, sigma)`` and
the Jacobian of ``vcov(beta)`` by Richardson-extrapolated central differences; components on the
boundary (theta = 0) contribute nothing and are left out exactly. A variance component's
boundary is decided by a likelihood-ratio test against the model without it (same criterion,
that component's theta fixed at 0), p from the 50:50 mixture of chi^2_0 and chi^2_1
(Self and Liang 1987). ``singular`` marks theta < 1e-4, lme4's ``isSingular`` tolerance.

API::

    res = lmer("map ~ init * shift + logp_c + (1|backbone) + (1|backbone:init) + (1|run_id)", frame)
    res = fit_lmm(X, y, {"backbone": labels, ...}, names=[...])   # a given design matrix

``res`` is a frozen :class:`LmmResult`: ``fixed`` (tuple of :class:`FixedEffect`: name, estimate,
se, df, t, p, ci_low, ci_high), ``variance_components`` (tuple of :class:`VarianceComponent`:
group, variance, sd, theta, n_levels, singular, lrt_stat, lrt_p), ``residual_variance``, ``method``
('REML' | 'ML'), ``criterion`` (REML criterion or -2 log L, as lme4 prints), ``loglik`` (-criterion/2,
the REML log-likelihood of a REML fit, as lme4's and statsmodels'), ``n_obs``,
``n_groups``, ``theta``, ``converged``, ``warnings`` (every optimizer, convergence, boundary, rank
and missing-value message), ``optimizer`` (scipy's message, iterations, evaluations),
``dropped_columns``, ``vcov``; ``res.contrast(L)`` gives (estimate, se, df) of ``L @ beta`` with its
own Satterthwaite df; ``res.to_dict()`` is JSON-ready. Fixed-effect names are patsy's (the
statsmodels names, e.g. ``C(init, Treatment('scratch'))[T.imagenet]``); conditional modes (BLUPs)
are not computed. Input problems (unknown column, unsupported random term, n <= p, a factor
with one level or one level per row, too many small-factor levels) raise
:class:`~capgate.errors.InputError`; numerical trouble never raises, it lands in ``converged`` and
``warnings``.

Validated (tests/test_analysis_lmm.py) against lme4 1.1-31 + lmerTest 3.1-3 goldens and live R
(fixed effects, SEs and df within 0.1 %, variances within 1 %; in practice 1e-7 to 1e-4), statsmodels
MixedLM and the balanced one-way ANOVA closed form. Speed: benchmarks/analysis_speed_lmm.py.
Private helpers: ``_lmm_core`` (the PLS system), ``_lmm_optim`` (optimiser, checks, Satterthwaite).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import linalg, stats
from threadpoolctl import threadpool_limits

from capgate.analysis._lmm_core import PLSSystem
from capgate.analysis._lmm_optim import (GRAD_TOL, SINGULAR_TOL, check_convergence, optimise, sat_df,
                                          satterthwaite)
from capgate.errors import InputError

__all__ = ["lmer", "fit_lmm", "parse_formula", "LmmResult", "FixedEffect", "VarianceComponent",
           "MAX_DENSE", "SINGULAR_TOL", "GRAD_TOL"]

#: Largest dense Schur complement (levels of all factors but the largest, plus p + 1).
MAX_DENSE = 4000
_RANK_TOL = 1e-7  # R's qr() tolerance, used by lme4 to drop rank-deficient fixed-effect columns
_STATEFUL = {"center", "standardize", "scale", "bs", "cr", "cc", "te"}  # patsy: need all rows
_RE_TERM = re.compile(r"\(\s*([^()|]*?)\s*\|\s*([^()|]+?)\s*\)")


@dataclass(frozen=True)
class FixedEffect:
    name: str
    estimate: float
    se: float
    df: float
    t: float
    p: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class VarianceComponent:
    group: str
    variance: float
    sd: float
    theta: float
    n_levels: int
    singular: bool
    lrt_stat: float | None
    lrt_p: float | None


@dataclass(frozen=True)
class LmmResult:
    formula: str | None
    method: str
    n_obs: int
    n_groups: dict[str, int]
    fixed: tuple[FixedEffect, ...]
    variance_components: tuple[VarianceComponent, ...]
    residual_variance: float
    criterion: float
    loglik: float
    theta: tuple[float, ...]
    converged: bool
    warnings: tuple[str, ...]
    optimizer: dict[str, Any]
    dropped_columns: tuple[str, ...]
    alpha: float
    df_method: str = "Satterthwaite"
    vcov: np.ndarray = field(repr=False, default=None)
    _sat: tuple[np.ndarray, np.ndarray] | None = field(repr=False, default=None)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fixed]

    def contrast(self, L: Sequence[float]) -> tuple[float, float, float]:
        """(estimate, SE, Satterthwaite df) of ``L @ beta`` (``L`` has one weight per fixed effect)."""
        L = np.asarray(L, dtype=float)
        beta = np.array([f.estimate for f in self.fixed])
        var = float(L @ self.vcov @ L)
        return float(L @ beta), float(np.sqrt(var)), sat_df(self._sat, L, var, self.n_obs - len(beta))

    def fixed_frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(f) for f in self.fixed])

    def to_dict(self) -> dict[str, Any]:
        """Everything but the arrays, JSON-ready (NaN kept as float('nan'))."""
        out = {k: v for k, v in asdict(self).items() if k not in ("vcov", "_sat")}
        for k in ("fixed", "variance_components", "theta", "warnings", "dropped_columns"):
            out[k] = list(out[k])
        return out


def parse_formula(formula: str) -> tuple[str, list[str]]:
    """Split an lme4 formula into (fixed-effects formula, grouping factors).

    Only scalar intercepts ``(1 | g)`` are supported; ``(1 | a/b)`` expands to ``a`` and ``a:b``
    as in lme4. ``a:b`` is the interaction of columns a and b.
    """
    if "~" not in formula:
        raise InputError(f"formula {formula!r} has no '~': write it as 'y ~ x + (1 | group)'")
    groups: list[str] = []
    for expr, grp in _RE_TERM.findall(formula):
        if expr.replace(" ", "") not in ("1",):
            raise InputError(f"random term ({expr} | {grp}) in {formula!r}: only scalar random intercepts "
                             "(1 | group) are supported by capgate.analysis.lmm; write the slope as a fixed "
                             "interaction or a (1 | group:factor) intercept")
        parts = [g.strip() for g in grp.split("/")]
        for i in range(len(parts)):
            name = ":".join(parts[: i + 1])
            if name not in groups:
                groups.append(name)
    fixed = _RE_TERM.sub("", formula)
    lhs, rhs = fixed.split("~", 1)
    rhs = re.sub(r"\+\s*(?=\+)", "", rhs).strip()
    rhs = re.sub(r"^\+|\+$", "", rhs).strip() or "1"
    if "|" in rhs:
        raise InputError(f"formula {formula!r}: could not parse a random term; write it as (1 | group)")
    return f"{lhs.strip()} ~ {rhs}", groups


def lmer(formula: str, data: pd.DataFrame, *, reml: bool = True, alpha: float = 0.05,
         test_components: bool = True) -> LmmResult:
    """Fit an lme4 formula (``y ~ fixed + (1|g) + ...``) to ``data`` (one row per observation).

    The fixed part is built by patsy (statsmodels' formula engine and names). Rows with a missing
    value in the response, the fixed part or a grouping column are dropped, and a warning says how
    many.
    """
    import patsy
    from patsy.eval import ast_names

    fixed, groups = parse_formula(formula)
    gcols = sorted({c for g in groups for c in g.split(":")})
    missing = [c for c in gcols if c not in data.columns]
    if missing:
        raise InputError(f"grouping column(s) {missing} of formula {formula!r} are not in the frame; "
                         f"columns: {sorted(map(str, data.columns))}")
    try:
        desc = patsy.ModelDesc.from_formula(fixed)
    except patsy.PatsyError as exc:
        raise InputError(f"formula {formula!r}: {exc}") from None

    def used(terms: list) -> set[str]:
        return {nm for t in terms for f in t.factors for nm in ast_names(f.code)}

    rhs_names = used(desc.rhs_termlist)
    rhs_cols = [c for c in data.columns if c in rhs_names]
    cols = list(dict.fromkeys([c for c in data.columns if c in used(desc.lhs_termlist)] + rhs_cols + gcols))
    keep = data[cols].notna().all(axis=1).to_numpy()
    frame = data.loc[keep] if not keep.all() else data
    notes = [f"dropped {len(data) - len(frame)} of {len(data)} rows with missing values"] if not keep.all() else []
    lhs, rhs = fixed.split("~", 1)
    try:
        ym = np.asarray(patsy.dmatrix(f"0 + {lhs}", frame, NA_action="raise"), dtype=float)
        if ym.shape[1] != 1:
            raise InputError(f"formula {formula!r}: the response {lhs.strip()!r} must be one numeric column")
        y = ym[:, 0]
        if rhs_cols and not rhs_names & _STATEFUL:
            # The design of n rows is the design of its distinct covariate rows, repeated: patsy (which reads
            # text columns value by value) then sees hundreds of rows, not 10^5.
            key = frame.groupby(rhs_cols, sort=False, observed=True, dropna=False).ngroup().to_numpy()
            first = np.unique(key, return_index=True)[1]
            xu = patsy.dmatrix(rhs, frame.iloc[first], NA_action="raise", return_type="dataframe")
            X, names = xu.to_numpy(float)[key], list(xu.columns)
        else:
            xm = patsy.dmatrix(rhs, frame, NA_action="raise", return_type="dataframe")
            X, names = xm.to_numpy(float), list(xm.columns)
    except patsy.PatsyError as exc:
        raise InputError(f"formula {formula!r} on this frame: {exc}") from None
    labels = {g: _combined(frame, g.split(":")) for g in groups}
    return fit_lmm(X, y, labels, names=names, reml=reml, alpha=alpha, test_components=test_components,
                   formula=formula, notes=notes)


def _combined(frame: pd.DataFrame, cols: list[str]) -> np.ndarray:
    if len(cols) == 1:
        return pd.factorize(frame[cols[0]])[0]
    return frame.groupby(cols, sort=False, observed=True).ngroup().to_numpy()


def fit_lmm(X: np.ndarray, y: np.ndarray, groups: Mapping[str, Sequence[Any]], *, names: Sequence[str],
            reml: bool = True, alpha: float = 0.05, test_components: bool = True, formula: str | None = None,
            notes: Sequence[str] = ()) -> LmmResult:
    """Fit ``y ~ X + (1|g) for g in groups``; ``X`` is n x p, ``groups[g]`` has one label per row.

    Rank-deficient columns of ``X`` are dropped in order, as lme4 does, and named in ``warnings``.
    Never raises on a numerical failure of the optimizer: ``converged`` is then False and the
    warnings say why. BLAS runs single-threaded: the per-evaluation matrices are m x m with m in the
    tens, where threads only add synchronisation (and, on a busy machine, spinning).
    """
    with threadpool_limits(limits=1, user_api="blas"):
        return _fit(X, y, groups, names=names, reml=reml, alpha=alpha, test_components=test_components,
                    formula=formula, notes=notes)


def _fit(X: np.ndarray, y: np.ndarray, groups: Mapping[str, Sequence[Any]], *, names: Sequence[str],
         reml: bool, alpha: float, test_components: bool, formula: str | None, notes: Sequence[str]) -> LmmResult:
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
    if X.ndim != 2 or X.shape[0] != len(y) or len(names) != X.shape[1]:
        raise InputError(f"design X is {X.shape}, y has {len(y)} values and {len(names)} names: they must agree")
    msgs = list(notes)
    keep = _independent_columns(X)
    dropped = tuple(n for n, k in zip(names, keep) if not k)
    if dropped:
        msgs.append(f"fixed-effect model matrix is rank deficient so dropping {len(dropped)} "
                    f"column(s): {list(dropped)}")
        X, names = X[:, keep], [n for n, k in zip(names, keep) if k]
    gnames = list(groups)
    codes = [pd.factorize(np.asarray(groups[g]))[0] for g in gnames]
    nlev = [int(c.max()) + 1 if len(c) else 0 for c in codes]
    for g, c in zip(gnames, codes):
        if len(c) != len(y) or (c < 0).any():
            raise InputError(f"grouping factor {g!r} has {len(c)} labels for {len(y)} rows, {int((c < 0).sum())} "
                             "missing: give one label per row (lmer() drops rows with missing values itself)")
    if not (np.isfinite(X).all() and np.isfinite(y).all()):
        raise InputError("design X or response y has non-finite values: drop those rows first "
                         "(lmer() drops rows with missing values itself)")
    n, p = X.shape
    if n <= p:
        raise InputError(f"{n} observations for {p} fixed effects: the model cannot be fitted")
    for g, nl in zip(gnames, nlev):  # lme4 stops on both (check.nobs.vs.nlev, "> 1 sampled level")
        if nl < 2 or nl >= n:
            raise InputError(f"grouping factor {g!r} has {nl} level(s) for {n} observations: its variance is not "
                             f"identifiable ({'from the intercept' if nl < 2 else 'from the residual'}); "
                             "leave (1 | " + g + ") out of the formula")
    if gnames and sum(nlev) - max(nlev) + p + 1 > MAX_DENSE:
        raise InputError(f"grouping factors {dict(zip(gnames, nlev))}: the levels of all but the largest "
                         f"exceed {MAX_DENSE}; capgate.analysis.lmm handles one large factor (e.g. run_id)")
    system = PLSSystem(X, y, codes, nlev)
    theta, opt = optimise(system, reml, np.ones(len(gnames)), np.zeros(len(gnames), bool), msgs)
    crit = system.deviance(theta, reml)
    lrt: list[tuple[float | None, float | None]] = [(None, None)] * len(gnames)
    if test_components:
        lrt, better = _component_lrts(system, reml, theta, crit, gnames, msgs)
        if better is not None:  # the full fit missed a better point on a boundary: refit from there, retest
            theta, opt = optimise(system, reml, better, np.zeros(len(gnames), bool), msgs)
            crit = system.deviance(theta, reml)
            lrt, _ = _component_lrts(system, reml, theta, crit, gnames, msgs)
    beta, unscaled, r2 = system.estimates(theta)
    sigma2 = r2 / (n - p if reml else n)
    vcov = sigma2 * unscaled
    vcov.flags.writeable = False
    converged = bool(opt["success"]) & check_convergence(system, theta, reml, msgs)
    sat = satterthwaite(system, theta, np.sqrt(sigma2), reml, msgs)
    se = np.sqrt(np.diag(vcov))
    fixed = []
    for i, nm in enumerate(names):
        e = np.zeros(p)
        e[i] = 1.0
        df = sat_df(sat, e, vcov[i, i], n - p)
        t = beta[i] / se[i]
        q = stats.t.ppf(1 - alpha / 2, df)
        fixed.append(FixedEffect(nm, float(beta[i]), float(se[i]), df, float(t), float(2 * stats.t.sf(abs(t), df)),
                                 float(beta[i] - q * se[i]), float(beta[i] + q * se[i])))
    comps = []
    for j, g in enumerate(gnames):
        sing = bool(theta[j] < SINGULAR_TOL)
        if sing:
            msgs.append(f"boundary (singular) fit: variance of {g!r} estimated at {sigma2 * theta[j] ** 2:.3g} "
                        f"(theta = {theta[j]:.2g} < {SINGULAR_TOL:g})")
        comps.append(VarianceComponent(g, float(sigma2 * theta[j] ** 2), float(np.sqrt(sigma2) * theta[j]),
                                       float(theta[j]), nlev[j], sing, lrt[j][0], lrt[j][1]))
    return LmmResult(formula=formula, method="REML" if reml else "ML", n_obs=n, n_groups=dict(zip(gnames, nlev)),
                     fixed=tuple(fixed), variance_components=tuple(comps), residual_variance=float(sigma2),
                     criterion=float(crit), loglik=float(-crit / 2), theta=tuple(map(float, theta)),
                     converged=converged, warnings=tuple(dict.fromkeys(msgs)), optimizer=opt,
                     dropped_columns=dropped, alpha=alpha, vcov=vcov, _sat=sat)


def _component_lrts(system: PLSSystem, reml: bool, theta: np.ndarray, crit: float, gnames: list[str],
                    msgs: list[str]) -> tuple[list[tuple[float, float]], np.ndarray | None]:
    """Per factor: (LR statistic against the model without it, p from the 50:50 chi2_0:chi2_1 mixture);
    and a theta with a lower criterion than ``crit`` if a reduced fit found one (else None)."""
    out, better = [], None
    for j, g in enumerate(gnames):
        fixed0 = np.arange(len(gnames)) == j
        th0, _ = optimise(system, reml, np.where(fixed0, 0.0, theta), fixed0, [])
        crit0 = system.deviance(th0, reml)
        if crit0 < crit - 1e-6 and better is None:
            msgs.append(f"optimizer restarted from the fit without {g!r}, which had a lower criterion")
            better = th0
        stat = float(max(crit0 - crit, 0.0))
        out.append((stat, float(0.5 * stats.chi2.sf(stat, 1)) if stat > 0 else 1.0))
    return out, better


def _independent_columns(X: np.ndarray) -> np.ndarray:
    """Columns not in the span of the ones before them (R's qr, tolerance 1e-7 on the column norm)."""
    norms = np.linalg.norm(X, axis=0)
    r = linalg.qr(X / np.where(norms > 0, norms, 1.0), mode="r")[0]
    return (np.abs(np.diag(r)) > _RANK_TOL) & (norms > 0)
