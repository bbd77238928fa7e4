"""Group-sequential boundaries (Lan-DeMets spending): hand-checkable values and simulated error rates."""

import numpy as np
import pytest
from scipy import stats

from capgate.analysis import Truth, resolve_plan, simulate_results
from capgate.analysis.cells import cell_table
from capgate.analysis.sequential import boundaries, nominal_levels, spent


def test_single_look_is_the_fixed_sample_test():
    assert boundaries([1.0], 0.05)[0] == pytest.approx(1.959964, abs=1e-5)
    assert nominal_levels([1.0], 0.05)[0] == pytest.approx(0.05, abs=1e-6)


def test_first_boundary_is_analytic_and_all_alpha_is_spent_by_t1():
    # obrien_fleming spends 2 - 2 Phi(1.96 / sqrt(0.25)) = 2 - 2 Phi(3.92) by t = 1/4
    a = spent(0.25, 0.05)
    assert a == pytest.approx(2 * stats.norm.sf(stats.norm.ppf(0.975) / 0.5))
    c = boundaries([0.25, 0.5, 0.75, 1.0], 0.05)
    assert c[0] == pytest.approx(stats.norm.ppf(1 - a / 2), abs=1e-6)
    assert np.all(np.diff(c) < 0) and c[-1] > 1.96
    assert spent(1.0, 0.05) == pytest.approx(0.05) and spent(1.0, 0.05, "pocock") == pytest.approx(0.05)


@pytest.mark.parametrize("kind", ["obrien_fleming", "pocock"])
def test_simulated_type_one_error_equals_alpha(kind):
    t = np.array([0.3, 0.5, 0.7, 1.0])
    c = boundaries(t, 0.05, kind)
    rng = np.random.default_rng(7)
    inc = rng.normal(size=(200_000, len(t))) * np.sqrt(np.diff(np.r_[0.0, t]))
    z = np.cumsum(inc, axis=1) / np.sqrt(t)
    rate = (np.abs(z) >= c).any(axis=1).mean()
    assert abs(rate - 0.05) < 0.002  # MC SE ~ 0.0005


def test_fractions_beyond_one_spend_nothing_more_and_bad_input_is_named():
    c = boundaries([0.5, 1.0, 1.5], 0.05)
    assert np.isinf(c[2])
    with pytest.raises(ValueError, match="non-decreasing"):
        boundaries([0.6, 0.3])
    with pytest.raises(ValueError, match="valid: obrien_fleming, pocock"):
        boundaries([1.0], 0.05, "haybittle")


def test_repeated_p_value_matches_the_design_and_keeps_its_level():
    from capgate.analysis.sequential import repeated_p_value, z_from_t

    assert repeated_p_value(1.96, [1.0]) == pytest.approx(0.05, abs=1e-4)
    t = [0.3, 0.6, 1.0]
    c = boundaries(t, 0.05)
    # rejecting at level 0.05 at look 3 <=> |z| >= c_3
    assert repeated_p_value(c[-1] + 1e-3, t) <= 0.0501 and repeated_p_value(c[-1] - 0.05, t) > 0.05
    # simulated: P(any look has p* <= 0.05) stays at 0.05 (MC SE ~ 0.0015)
    rng = np.random.default_rng(3)
    inc = rng.normal(size=(100_000, 3)) * np.sqrt(np.diff(np.r_[0.0, t]))
    z = np.cumsum(inc, axis=1) / np.sqrt(t)
    hit = np.zeros(len(z), bool)
    for k in range(3):
        hit |= repeated_p_value(z[:, k], t[:k + 1]) <= 0.05
    assert abs(hit.mean() - 0.05) < 0.003
    assert z_from_t(2.0, 1e6) == pytest.approx(2.0, abs=1e-4) and abs(z_from_t(2.0, 3)) < 2.0


def test_under_a_sequential_design_each_run_group_is_complete_at_its_own_look():
    t = simulate_results(Truth(seeds=5, p_failed=0.0, p_missing=0.0), seed=1)
    groups = t.groupby(["backbone", "init"]).ngroup()
    grown = groups == 0                          # one run group grown to the second look (5 seeds)
    cut = groups == 1                            # one stopped between looks: 4 seeds, a round cut short
    lost = groups == 2                           # one that lost an initial run: 2 seeds
    keep = ((t["seed"] < 3) | grown | (cut & (t["seed"] < 4))) & ~(lost & (t["seed"] == 0))
    t = t[keep]
    seq = resolve_plan({"sequential": {"max_seeds": 5, "schedule": [3, 5]}, "n_boot": 0})
    cells = cell_table(t, seq)
    g = cells.merge(t[["backbone", "init"]].assign(group=groups[keep]).drop_duplicates(), on=["backbone", "init"])
    assert g.loc[g["group"] == 0, "n_expected"].eq(5).all() and g.loc[g["group"] == 0, "complete"].all()
    assert g.loc[g["group"] == 1, "n_expected"].eq(5).all() and not g.loc[g["group"] == 1, "complete"].any()
    assert g.loc[g["group"] == 2, "n_expected"].eq(3).all() and not g.loc[g["group"] == 2, "complete"].any()
    assert g.loc[g["group"] > 2, "complete"].all()  # stopped at the first look: complete there
    # a fixed design expects every seed the study has seen, so the groups left at 3 are incomplete
    fixed = cell_table(t, resolve_plan({"n_boot": 0}))
    assert (fixed["n_expected"] == 5).all() and (~fixed["complete"]).sum() > len(fixed) / 2
