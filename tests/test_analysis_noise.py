"""The moderated variance (Smyth 2004): hand-checkable posteriors and recovery of a known prior."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

from capgate.analysis.noise import MIN_STRATUM, location_df, noise_strata, squeeze_var, trigamma_inverse


def test_trigamma_inverse_inverts():
    for y in (0.3, 1.0, 3.0, 25.0):
        assert trigamma_inverse(float(special.polygamma(1, y))) == pytest.approx(y, rel=1e-6)


def test_equal_variances_pool_completely_up_to_the_locations_df():
    # Four cells with s2 = 1 on 2 df: no spread beyond chi-square noise, so limma's prior df is infinite and
    # its location the mean, 1 (too few cells for Winsorizing: limma's robust fit is then the plain one).
    # The prior df is capped at the df of its location, an average of 4 log variances on 2 df:
    # 2 trigamma^-1(trigamma(1) / 4) = 2 trigamma^-1(0.411234) = 5.796766; posterior (5.797 + 2) / 7.797 = 1.
    m = squeeze_var(np.ones(4), np.full(4, 2.0))
    assert m.d0_fit == np.inf and m.d0 == pytest.approx(5.796766, abs=1e-6)
    assert m.s0_sq == pytest.approx(np.ones(4)) and m.s2_post == pytest.approx(np.ones(4))
    assert m.df_post == pytest.approx(np.full(4, 7.796766), abs=1e-6) and not m.outlier.any()
    # a mean of log variances is less precise than the pooled variance: 160 cells on 4 df locate a prior
    # as well as 497 pooled df (of 640): 2 trigamma^-1(trigamma(2) / 160) = 2 trigamma^-1(0.0040307)
    assert location_df(np.full(160, 4.0)) == pytest.approx(497.174, abs=1e-3)


def test_recovers_a_known_prior_and_strata():
    rng = np.random.default_rng(3)
    n, d0, df = 4000, 10.0, 4.0
    strata = np.repeat(["quiet", "noisy"], n // 2)
    s0 = np.where(strata == "quiet", 1.0, 25.0)  # eval sets 5x apart in SD
    sigma2 = s0 * d0 / rng.chisquare(d0, n)
    s2 = sigma2 * rng.chisquare(df, n) / df
    m = squeeze_var(s2, np.full(n, df), strata, robust=False)
    assert m.d0 == pytest.approx(d0, rel=0.2)
    assert m.s0_sq[strata == "quiet"][0] == pytest.approx(1.0, rel=0.1)
    assert m.s0_sq[strata == "noisy"][0] == pytest.approx(25.0, rel=0.1)
    # shrinkage helps: the posterior is closer to the true variance than the raw one (log scale)
    assert np.mean(np.log(m.s2_post / sigma2) ** 2) < 0.5 * np.mean(np.log(s2 / sigma2) ** 2)


def test_an_outlier_cell_keeps_its_own_variance():
    # 40 cells of one noise on 4 df, one at 60x: limma's robust fit gives it a prior df of ~0 (it keeps its
    # own 60) and the others the full prior (infinite, capped at the location's 125 df); the plain fit lets
    # the outlier drag the prior df of every cell down to 9.6 and shrinks the outlier to 18
    rng = np.random.default_rng(1)
    s2 = rng.chisquare(4, 40) / 4
    s2[-1] = 60.0
    m = squeeze_var(s2, np.full(40, 4.0))
    assert m.d0_cell[-1] < 1e-6 and m.s2_post[-1] == pytest.approx(60.0) and m.outlier[-1]
    assert (m.d0_cell[:-1] > 100).sum() >= 38
    plain = squeeze_var(s2, np.full(40, 4.0), robust=False)
    assert plain.d0 == pytest.approx(9.597, abs=1e-3) and plain.s2_post[-1] < 20


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
