"""Optimisation, convergence checks and Satterthwaite df for :mod:`capgate.analysis.lmm` (private).

Derivatives are central differences (Richardson-extrapolated where they feed inference); the
profiled deviance is even in every theta, so differences across theta = 0 are valid and the
gradient there is exactly 0.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy import optimize

from capgate.analysis._lmm_core import PLSSystem

__all__ = ["optimise", "check_convergence", "satterthwaite", "sat_df", "SINGULAR_TOL", "GRAD_TOL"]

#: theta below this is a singular (boundary) fit, as lme4's ``isSingular(tol = 1e-4)``.
SINGULAR_TOL = 1e-4
#: lme4's ``check.conv.grad`` tolerance on the Hessian-scaled gradient of the deviance.
GRAD_TOL = 2e-3


class _NotFinite(np.linalg.LinAlgError):
    """The deviance is not finite at a finite-difference step: the step left the region where the
    random-effects system is positive definite (:meth:`PLSSystem.deviance` is ``inf`` there)."""


def _finite(f):
    """``f`` that raises :class:`_NotFinite` instead of returning a non-finite deviance, so that a
    difference quotient never computes ``inf - inf``."""
    def g(x: np.ndarray) -> float:
        v = f(x)
        if not np.isfinite(v):
            raise _NotFinite("the deviance is not finite at a finite-difference step next to theta")
        return v
    return g


def _central_grad(f, x: np.ndarray, h: float = 1e-5, *, strict: bool = False) -> np.ndarray:
    """Central-difference gradient. Where one side's deviance is not finite, the one-sided difference
    on the finite side (the optimizer's gradient); ``strict``: raise :class:`_NotFinite` instead."""
    g = np.zeros_like(x)
    f0 = None
    for i in range(len(x)):
        step = h * max(1.0, abs(x[i]))
        e = np.zeros_like(x)
        e[i] = step
        up, down = f(x + e), f(x - e)
        if np.isfinite(up) and np.isfinite(down):
            g[i] = (up - down) / (2 * step)
            continue
        if strict:
            raise _NotFinite("the deviance is not finite at a finite-difference step next to theta")
        f0 = f(x) if f0 is None else f0
        g[i] = (up - f0) / step if np.isfinite(up) else (f0 - down) / step if np.isfinite(down) else np.nan
    return g


def optimise(system: PLSSystem, reml: bool, start: np.ndarray, fixed_zero: np.ndarray,
             msgs: list[str]) -> tuple[np.ndarray, dict[str, Any]]:
    """Minimise the profiled deviance over the free thetas (>= 0); thetas in ``fixed_zero`` stay 0."""
    free = ~fixed_zero
    full = np.where(fixed_zero, 0.0, start).astype(float)
    if not free.any():
        return full, {"message": "no free parameters", "success": True, "nit": 0, "nfev": 1}

    def f(t: np.ndarray) -> float:
        x = full.copy()
        x[free] = t  # the deviance is even in theta, so the central differences below 0 are valid
        return system.deviance(x, reml)

    x0, nit, nfev = full[free], 0, 0
    for attempt in range(4):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = optimize.minimize(f, x0, jac=lambda t: _central_grad(f, t), method="L-BFGS-B",
                                    bounds=[(0.0, None)] * int(free.sum()),
                                    options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 1000})
        msgs.extend(f"optimizer: {w.category.__name__}: {w.message}" for w in caught)
        nit, nfev = nit + int(res.nit), nfev + int(res.nfev)
        x, fx = np.maximum(res.x, 0.0), float(res.fun)
        # A theta on the bound is a stationary point of the even deviance: probe along its axis.
        better = None
        for i in np.flatnonzero(x < SINGULAR_TOL):
            for t in (1e-3, 1e-2, 0.1, 1.0, 10.0):
                xt = x.copy()
                xt[i] = t
                if f(xt) < fx - 1e-8 * max(1.0, abs(fx)) and (better is None or f(xt) < f(better)):
                    better = xt
        if better is None:
            break
        msgs.append(f"optimizer: a theta on the bound was not a minimum; restarted (attempt {attempt + 2})")
        x0 = better
    full[free] = _newton_polish(f, x)
    ok = bool(res.success) or _ftol_only(res)
    msg = res.message if isinstance(res.message, str) else str(res.message)
    if not ok:
        msgs.append(f"optimizer L-BFGS-B: {msg}")
    return full, {"method": "L-BFGS-B", "message": msg, "success": ok, "nit": nit, "nfev": nfev}


def _newton_polish(f, x: np.ndarray, steps: int = 3) -> np.ndarray:
    """Newton steps on the interior thetas (Richardson Hessian), each kept only if the deviance drops: the
    last digits that L-BFGS-B's finite-difference gradients leave on a flat optimum at 10^5 rows."""
    fx = f(x)
    for _ in range(steps):
        inner = np.flatnonzero(x >= SINGULAR_TOL)
        if not len(inner):
            break

        def g(t: np.ndarray) -> float:
            xx = x.copy()
            xx[inner] = t
            return f(xx)

        try:
            H = _hessian(g, x[inner])
            np.linalg.cholesky(H)
            step = np.linalg.solve(H, _central_grad(g, x[inner], strict=True))
        except np.linalg.LinAlgError:  # not positive definite, or a step left the region (_NotFinite)
            break
        xt = x.copy()
        xt[inner] = np.maximum(x[inner] - step, 0.0)
        ft = f(xt)
        if not ft < fx:
            break
        x, fx = xt, ft
    return x


def _ftol_only(res: optimize.OptimizeResult) -> bool:
    """An 'abnormal' line-search stop is the floating-point floor of the deviance, not a failure, when the
    projected gradient is already negligible (the convergence check below judges that)."""
    return "ABNORMAL" in str(res.message).upper() and np.all(np.isfinite(res.x))


def _hessian(f, x: np.ndarray, rel: float = 1e-3) -> np.ndarray:
    """Richardson-extrapolated central-difference Hessian (two step sizes); raises :class:`_NotFinite`
    when the deviance is not finite at one of its steps."""
    f = _finite(f)
    d = len(x)
    steps = rel * np.maximum(np.abs(x), 1e-2)

    def once(h: np.ndarray) -> np.ndarray:
        H = np.empty((d, d))
        f0 = f(x)
        for i in range(d):
            ei = np.zeros(d)
            ei[i] = h[i]
            H[i, i] = (f(x + ei) - 2 * f0 + f(x - ei)) / h[i] ** 2
            for j in range(i):
                ej = np.zeros(d)
                ej[j] = h[j]
                cross = f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)
                H[i, j] = H[j, i] = cross / (4 * h[i] * h[j])
        return H

    return (4 * once(steps / 2) - once(steps)) / 3


def _jacobian(g, x: np.ndarray, rel: float = 1e-3) -> np.ndarray:
    """d g(x) / d x_i for a matrix-valued g, shape (len(x), *g.shape), Richardson-extrapolated."""
    out = []
    for i in range(len(x)):
        h = rel * max(abs(x[i]), 1e-2)
        e = np.zeros(len(x))

        def cd(s: float) -> np.ndarray:
            e[i] = s
            return (g(x + e) - g(x - e)) / (2 * s)

        out.append((4 * cd(h / 2) - cd(h)) / 3)
    return np.stack(out)


def check_convergence(system: PLSSystem, theta: np.ndarray, reml: bool, msgs: list[str]) -> bool:
    """lme4's checks on the interior thetas: Hessian positive definite, scaled gradient < GRAD_TOL."""
    inner = np.flatnonzero(theta >= SINGULAR_TOL)
    if not len(inner):
        return True

    def f(t: np.ndarray) -> float:
        x = theta.copy()
        x[inner] = t
        return system.deviance(x, reml)

    try:
        H = _hessian(f, theta[inner])
        g = _central_grad(f, theta[inner], strict=True)
    except _NotFinite:
        msgs.append("convergence not checked: the deviance is not finite a finite-difference step away from the "
                    "optimum (a variance component sits at the edge of the positive-definite region); treat the "
                    "fit as not converged")
        return False
    try:
        scaled = np.linalg.solve(np.linalg.cholesky(H), g)
    except np.linalg.LinAlgError:
        msgs.append("Hessian of the profiled deviance is not positive definite: the model is nearly "
                    "unidentifiable (a variance component may be confounded with another)")
        return False
    if np.max(np.abs(scaled)) > GRAD_TOL:
        msgs.append(f"model failed to converge with max|grad| = {np.max(np.abs(scaled)):.3g} (tol = {GRAD_TOL:g})")
        return False
    return True


def satterthwaite(system: PLSSystem, theta: np.ndarray, sigma: float, reml: bool,
                  msgs: list[str]) -> tuple[np.ndarray, np.ndarray] | None:
    """(A = 2 H^-1 over (interior thetas, sigma), Jacobian of vcov(beta) over the same), or None."""
    inner = np.flatnonzero(theta >= SINGULAR_TOL)
    vp = np.r_[theta[inner], sigma]

    def at(v: np.ndarray) -> np.ndarray:
        x = theta.copy()
        x[inner] = v[:-1]
        return x

    try:
        H = _hessian(lambda v: system.varpar_deviance(at(v), v[-1], reml), vp)
        np.linalg.cholesky(H)
        A = 2 * np.linalg.inv(H)
    except _NotFinite:
        msgs.append("Satterthwaite df unavailable: the deviance is not finite a finite-difference step away from "
                    "(theta, sigma); residual df n - p used")
        return None
    except np.linalg.LinAlgError:
        msgs.append("Satterthwaite df unavailable: the deviance Hessian in (theta, sigma) is not positive "
                    "definite; residual df n - p used")
        return None
    try:
        J = _jacobian(lambda v: v[-1] ** 2 * system.estimates(at(v))[1], vp)
    except np.linalg.LinAlgError:  # estimates: the random-effects system is not positive definite at a step
        msgs.append("Satterthwaite df unavailable: vcov(beta) cannot be evaluated a finite-difference step away "
                    "from theta; residual df n - p used")
        return None
    return A, J


def sat_df(sat: tuple[np.ndarray, np.ndarray] | None, L: np.ndarray, var: float, resid_df: int) -> float:
    if sat is None:
        return float(resid_df)
    A, J = sat
    grad = np.einsum("i,kij,j->k", L, J, L)
    denom = float(grad @ A @ grad)
    return float(2 * var * var / denom) if denom > 0 else float(resid_df)
