"""The penalized least-squares system of a linear mixed model with scalar random intercepts.

Private to :mod:`capgate.analysis.lmm`; see its docstring for the model, the formulation
(Bates et al. 2015) and why the random-effects system is solved by eliminating the largest
grouping factor first. Everything here is a function of the relative covariance parameters
``theta`` (one per grouping factor) after a single pass over the data.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

__all__ = ["PLSSystem", "indicator"]

#: Above this many float64 entries, the per-count Gram blocks are not cached (recomputed per evaluation).
_CACHE_ENTRIES = 20_000_000


def indicator(codes: np.ndarray, n_levels: int) -> sparse.csr_matrix:
    """The n x n_levels 0/1 matrix of one grouping factor (``codes`` in 0..n_levels-1)."""
    n = len(codes)
    return sparse.csr_matrix((np.ones(n), (np.arange(n), codes)), shape=(n, n_levels))


class PLSSystem:
    """Cross-products of ``[Z X y]`` arranged so that one deviance evaluation costs O(K m^2 + m^3).

    ``X`` is n x p (full column rank), ``y`` has length n, ``codes[j]`` are the level codes of
    grouping factor j (``n_levels[j]`` levels). The factor with the most levels ("big", q1
    levels) is eliminated exactly: its block of Lambda'Z'Z Lambda + I is diagonal,
    ``theta_b^2 n_i + 1``. What remains is the dense Schur complement over the other factors'
    levels, the fixed effects and the response, of size m = q2 + p + 1. Its weights depend on a
    level only through its count n_i, so the q1-row Gram matrix is cached once per distinct
    count (K of them): an evaluation never touches the n rows again.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, codes: list[np.ndarray], n_levels: list[int]):
        n, p = X.shape
        self.n, self.p, self.k = n, p, len(codes)
        # Residualise on (about) the OLS fit first: the response row of the Schur complement is then a
        # difference of small numbers, not of y'y-sized ones. Any beta0 gives the same fit (the model is
        # linear in beta), so the normal equations are good enough here.
        self.beta0 = np.linalg.lstsq(X.T @ X, X.T @ y, rcond=None)[0]
        d = np.column_stack([X, y - X @ self.beta0])
        self.big = int(np.argmax(n_levels)) if codes else None
        self.others = [j for j in range(self.k) if j != self.big]
        self.level_counts = [int(n_levels[j]) for j in self.others]
        q2 = int(sum(n_levels[j] for j in self.others))
        self.q2, self.m = q2, q2 + p + 1
        zr = sparse.hstack([indicator(codes[j], n_levels[j]) for j in self.others] or
                           [sparse.csr_matrix((n, 0))], format="csr")
        c0 = np.empty((self.m, self.m))
        c0[:q2, :q2] = (zr.T @ zr).toarray()
        c0[:q2, q2:] = zr.T @ d
        c0[q2:, :q2] = c0[:q2, q2:].T
        c0[q2:, q2:] = d.T @ d
        self.c0 = c0
        if self.big is None:
            self.vals = self.mult = np.zeros(0)
            return
        z1 = indicator(codes[self.big], n_levels[self.big]).tocsc()
        self._gs = (z1.T @ zr).tocsr()  # q1 x q2, sparse
        self._gd = np.asarray(z1.T @ d)  # q1 x (p + 1), dense
        counts = np.bincount(codes[self.big], minlength=n_levels[self.big])
        self.vals, self._inv, self.mult = np.unique(counts, return_inverse=True, return_counts=True)
        self.vals = self.vals.astype(float)
        self._h = None
        if len(self.vals) * self.m * self.m <= _CACHE_ENTRIES:
            self._h = np.stack([self._gram(np.flatnonzero(self._inv == i)) for i in range(len(self.vals))])

    def _gram(self, rows: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
        """G[rows]' diag(w) G[rows] for G = Z1'[Zr X y] (m x m)."""
        gs, gd = self._gs[rows], self._gd[rows]
        ws = gs if w is None else sparse.diags(w) @ gs
        wd = gd if w is None else w[:, None] * gd
        out = np.empty((self.m, self.m))
        q2 = self.q2
        out[:q2, :q2] = (gs.T @ ws).toarray()
        out[:q2, q2:] = gs.T @ wd
        out[q2:, :q2] = out[:q2, q2:].T
        out[q2:, q2:] = gd.T @ wd
        return out

    def factor(self, theta: np.ndarray) -> tuple[float, np.ndarray] | None:
        """(log det of the big factor's diagonal block, lower Cholesky of the Schur complement), or
        None when the complement is not numerically positive definite."""
        theta = np.asarray(theta, dtype=float)
        s = np.ones(self.m)
        at = 0
        for j, nl in zip(self.others, self.level_counts):
            s[at:at + nl] = theta[j]
            at += nl
        if self.big is None:
            schur, ld_big = self.c0.copy(), 0.0
        else:
            t2 = theta[self.big] ** 2
            w = 1.0 / (t2 * self.vals + 1.0)
            if self._h is not None:
                schur = self.c0 - t2 * np.tensordot(w, self._h, axes=1)
            else:
                schur = self.c0 - t2 * self._gram(np.arange(len(self._inv)), w[self._inv])
            ld_big = float(self.mult @ np.log1p(t2 * self.vals))
        schur *= np.outer(s, s)
        schur[np.arange(self.q2), np.arange(self.q2)] += 1.0
        try:
            return ld_big, np.linalg.cholesky(schur)
        except np.linalg.LinAlgError:
            return None

    def pieces(self, theta: np.ndarray) -> tuple[float, float, float, np.ndarray] | None:
        """(log|L|^2, log|R_X|^2, r^2 = penalized residual sum of squares, Cholesky) at ``theta``."""
        f = self.factor(theta)
        if f is None:
            return None
        ld_big, chol = f
        diag = np.diag(chol)
        q2, p = self.q2, self.p
        if np.any(diag <= 0):
            return None
        ldl2 = ld_big + 2.0 * float(np.log(diag[:q2]).sum())
        ldrx2 = 2.0 * float(np.log(diag[q2:q2 + p]).sum())
        return ldl2, ldrx2, float(diag[-1] ** 2), chol

    def deviance(self, theta: np.ndarray, reml: bool) -> float:
        """The profiled deviance (REML criterion or -2 log-likelihood) at ``theta`` (eq. 34/41)."""
        pc = self.pieces(theta)
        if pc is None or pc[2] <= 0:
            return np.inf
        ldl2, ldrx2, r2, _ = pc
        if reml:
            nmp = self.n - self.p
            return ldl2 + ldrx2 + nmp * (1.0 + np.log(2.0 * np.pi * r2 / nmp))
        return ldl2 + self.n * (1.0 + np.log(2.0 * np.pi * r2 / self.n))

    def varpar_deviance(self, theta: np.ndarray, sigma: float, reml: bool) -> float:
        """The deviance at (theta, sigma) with sigma not profiled out (lmerTest's ``devfun_vp``)."""
        pc = self.pieces(theta)
        if pc is None:
            return np.inf
        ldl2, ldrx2, r2, _ = pc
        s2 = sigma * sigma
        dev = ldl2 + r2 / s2 + self.n * np.log(2.0 * np.pi * s2)
        return dev + ldrx2 - self.p * np.log(2.0 * np.pi * s2) if reml else dev

    def estimates(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """(beta-hat, (R_X'R_X)^-1 so that vcov(beta) = sigma^2 times it, r^2) at ``theta``."""
        pc = self.pieces(theta)
        if pc is None:
            raise np.linalg.LinAlgError("random-effects system is not positive definite at theta")
        chol = pc[3]
        q2, p = self.q2, self.p
        lx = chol[q2:q2 + p, q2:q2 + p]
        lxinv = np.linalg.solve(lx, np.eye(p)) if p else np.zeros((0, 0))
        beta = self.beta0 + lxinv.T @ chol[-1, q2:q2 + p]
        return beta, lxinv.T @ lxinv, pc[2]
