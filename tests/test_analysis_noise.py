"""The moderated variance (Smyth 2004): hand-checkable posteriors and recovery of a known prior."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

from capgate.analysis.noise import MIN_STRATUM, noise_strata, squeeze_var, trigamma_inverse


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


def test_strata_are_eval_set_and_init_where_each_has_enough_cells():
    ev = np.array(["a"] * 4 + ["a"] * 2 + ["b"] * 3)
    init = np.array(["scratch"] * 4 + ["imagenet"] * 2 + ["scratch"] * 3)
    s2 = np.array([1.0, 1, 1, 1, 1, 1, 1, 1, np.nan])  # the last cell has no variance: b|scratch has 2
    st = noise_strata(ev, init, s2, np.full(9, 2.0))
    assert MIN_STRATUM == 3
    assert st.tolist() == ["a|scratch"] * 4 + ["a"] * 2 + ["b"] * 3


def test_a_prior_per_init_recovers_each_inits_noise():
    # one eval set, 60 rungs x 2 inits on 2 df; every scratch cell 4x the SD of the pretrained one (the
    # demo's in-domain detection). One prior for the eval set pulls the scratch cells' variance down and
    # the pretrained cells' up (each towards a noise it does not have); a prior per (eval set, init) not.
    rng = np.random.default_rng(0)
    init = np.repeat(["scratch", "imagenet"], 60)
    sigma2 = np.where(init == "scratch", 16.0, 1.0)
    s2 = sigma2 * rng.chisquare(2, 120) / 2
    df = np.full(120, 2.0)
    ev = np.full(120, "llvip/rgb")
    one = squeeze_var(s2, df, ev)
    two = squeeze_var(s2, df, noise_strata(ev, init, s2, df))
    err = lambda m: np.mean(np.log(m.s2_post / sigma2) ** 2)  # noqa: E731
    assert err(two) < 0.8 * err(one)
    quiet = init == "imagenet"
    assert np.mean(two.s2_post[quiet]) == pytest.approx(1.0, rel=0.25)
    assert np.mean(two.s2_post[~quiet]) == pytest.approx(16.0, rel=0.25)
    assert np.mean(one.s2_post[~quiet]) < 0.8 * 16.0 and np.mean(one.s2_post[quiet]) > 1.25
