"""Finite differences next to the edge of the positive-definite region: the deviance is ``inf`` there
(capgate.analysis._lmm_core), and no difference quotient may compute ``inf - inf`` (a NaN and a
RuntimeWarning); the Hessian says so by a named error that the fit records as a diagnostic."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from capgate.analysis._lmm_optim import _central_grad, _hessian, _NotFinite


def _edge(x: np.ndarray) -> float:
    """x^2 on [1, inf), not finite below 1 (like the deviance outside the positive-definite region)."""
    return float(x[0] ** 2) if x[0] >= 1 else np.inf


def test_hessian_next_to_a_non_finite_deviance_raises_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(_NotFinite):
            _hessian(_edge, np.array([1.0]))
        assert _hessian(_edge, np.array([2.0]))[0, 0] == pytest.approx(2.0, rel=1e-6)  # d2/dx2 x^2 = 2


def test_gradient_uses_the_finite_side():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # one-sided at the edge: (f(1 + h) - f(1)) / h = 2 + h, h = 1e-5
        assert _central_grad(_edge, np.array([1.0]))[0] == pytest.approx(2.0, abs=1e-4)
        with pytest.raises(_NotFinite):
            _central_grad(_edge, np.array([1.0]), strict=True)
        assert np.isnan(_central_grad(lambda x: np.inf, np.array([1.0]))[0])


def test_a_fit_at_the_edge_records_its_diagnostics_and_leaks_no_warning():
    """The 16 records of the tiny classification e2e study (tests/data/tinycls_results.csv, 2 rungs x 2
    inits x 2 seeds x 2 domains, top-1 on 3 test images): the mixed model's variance components sit at
    the edge of the positive-definite region. The fit is recorded, not converged, with why; no warning
    reaches the caller (before: NaN RuntimeWarnings from the Hessian and a failed fit)."""
    from pathlib import Path

    from capgate.analysis import analyze, load_results

    table = load_results(Path(__file__).parent / "data" / "tinycls_results.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = analyze(table, {"n_boot": 0})
    (model,) = a.models
    assert model["status"] != "failed" and model["converged"] is False
    assert any("convergence not checked: the deviance is not finite" in w for w in model["warnings"])
    # every run scored exactly 1/3 (one class of 3 predicted): zero variance in every arm, so the robust
    # prior (limma's squeezeVar(robust=TRUE)) leaves a tiny SD and TOST shows the gain of exactly 0 inside the margin
    assert list(a.gains["verdict"]) == ["within_noise"] * 4 and list(a.gains["gain"]) == [0.0] * 4
