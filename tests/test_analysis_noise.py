"""The moderated variance (Smyth 2004): hand-checkable posteriors and recovery of a known prior."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

from capgate.analysis.noise import squeeze_var, trigamma_inverse


def test_trigamma_inverse_inverts():
    for y in (0.3, 1.0, 3.0, 25.0):
        assert trigamma_inverse(float(special.polygamma(1, y))) == pytest.approx(y, rel=1e-6)


def test_equal_variances_pool_completely_up_to_the_data_df():
    # Four cells with s2 = 1 on 2 df: no spread beyond chi-square noise, so d0 is capped at the data's
    # 8 df; e = log 1 - digamma(1) + log 1 = 0.577216, s0^2 = exp(e + digamma(4) - log 4) = exp(0.447039)
    # = 1.563675; posterior = (8 x 1.563675 + 2 x 1) / 10 = 1.450940 on 10 df.
    m = squeeze_var(np.ones(4), np.full(4, 2.0))
    assert m.d0 == 8
    assert m.s0_sq[0] == pytest.approx(1.563675, abs=1e-6)
    assert m.s2_post == pytest.approx(np.full(4, 1.450940), abs=1e-6)
    assert (m.df_post == 10).all() and not m.outlier.any()


def test_recovers_a_known_prior_and_strata():
    rng = np.random.default_rng(3)
    n, d0, df = 4000, 10.0, 4.0
    strata = np.repeat(["quiet", "noisy"], n // 2)
    s0 = np.where(strata == "quiet", 1.0, 25.0)  # eval sets 5x apart in SD
    sigma2 = s0 * d0 / rng.chisquare(d0, n)
    s2 = sigma2 * rng.chisquare(df, n) / df
    m = squeeze_var(s2, np.full(n, df), strata, outlier_p=0.0)
    assert m.d0 == pytest.approx(d0, rel=0.2)
    assert m.s0_sq[strata == "quiet"][0] == pytest.approx(1.0, rel=0.1)
    assert m.s0_sq[strata == "noisy"][0] == pytest.approx(25.0, rel=0.1)
    # shrinkage helps: the posterior is closer to the true variance than the raw one (log scale)
    assert np.mean(np.log(m.s2_post / sigma2) ** 2) < 0.5 * np.mean(np.log(s2 / sigma2) ** 2)


def test_an_outlier_cell_keeps_its_own_variance():
    s2 = np.array([1.0, 1.2, 0.8, 0.9, 1.1, 1.05, 0.95, 60.0])
    m = squeeze_var(s2, np.full(8, 4.0))
    assert m.outlier.tolist() == [False] * 7 + [True]
    assert m.s2_post[-1] == 60.0 and m.df_post[-1] == 4.0
    assert (m.df_post[:-1] > 4).all()


def test_cells_without_replication_take_the_prior():
    m = squeeze_var(np.array([1.0, 2.0, 1.5, np.nan]), np.array([2.0, 2.0, 2.0, 0.0]))
    assert m.s2_post[-1] == pytest.approx(m.s0_sq[-1]) and m.df_post[-1] == m.d0
