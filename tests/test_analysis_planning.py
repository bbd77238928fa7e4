"""One seeds-needed rule: gains.csv (and so the report) and next-seeds give the same number on the
same table, and the number looks at the estimate (a clear +10.8 pp gain is not '100 or more')."""

from __future__ import annotations

import numpy as np
import pytest

from capgate.analysis.gains import gains_of_table
from capgate.analysis.load import validate
from capgate.analysis.next_seeds import GROUP_COLUMNS, next_seeds
from capgate.analysis.plan import resolve_plan
from capgate.analysis.planning import p_decided, seeds_needed, seeds_to_decide
from capgate.analysis.simulate import Truth, simulate_results

FAM = {"efficientnet": [("efficientnet_b0@w0.1d0.25 (B-7)", 41_874), ("efficientnet_b0@w0.3d0.5 (B-3)", 277_402),
                        ("efficientnet_b0@w0.5d0.5 (B-1)", 713_574)]}
SETS = {"llvip/rgb": [("llvip/rgb", "in_domain"), ("flir/rgb", "cross_dataset")]}


def test_a_large_noisy_gain_needs_a_few_more_seeds_not_the_cap():
    # the cell: +10.8 pp [+3.4, +18.2] from 8 seed pairs (SD of a difference 9 pp), 60 contrasts
    n = seeds_to_decide(0.108, 0.09, 0.01, 8, alpha=0.05 / 60, d0=10, paired=True)
    assert 9 <= n < 30
    assert seeds_needed(0.09, 0.01, alpha=0.05 / 60, d0=10, paired=True) == (100, 100)  # the design figure
    # n is the first count reaching the power
    assert p_decided(0.108, 0.09, 0.01, n, alpha=0.05 / 60, d0=10, paired=True) >= 0.8
    assert p_decided(0.108, 0.09, 0.01, n - 1, alpha=0.05 / 60, d0=10, paired=True) < 0.8


def test_seeds_to_decide_by_hand():
    # noise far below the margin: one more seed pair decides within_noise for sure
    assert seeds_to_decide(0.0, 0.001, 0.01, 3, alpha=0.05, d0=20, paired=True) == 4
    assert p_decided(0.0, 0.001, 0.01, 4, alpha=0.05, d0=20, paired=True) == pytest.approx(1.0)
    # an estimate on the margin cannot be decided: the cap, meaning that many or more
    assert seeds_to_decide(0.01, 0.02, 0.01, 3, alpha=0.05, d0=20, paired=True, cap=30) == 30
    assert seeds_to_decide(0.05, np.nan, 0.01, 3, alpha=0.05, d0=20, paired=True) is None
    assert seeds_to_decide(0.05, 0.02, 0.01, 40, alpha=0.05, d0=20, paired=True, cap=30) == 30


def test_next_seeds_adds_what_the_report_says_is_needed():
    t = validate(simulate_results(Truth(families=FAM, sets=SETS, inits=("scratch", "imagenet"), seeds=3,
                                        run_sd=0.01, noise_sd=0.004, seed_sd=0.01, rung_sd=0.01,
                                        gains={"imagenet": {"in_domain": 0.0, "cross_dataset": 0.03}}), seed=11))
    plan = resolve_plan({})
    gains, _ = gains_of_table(t, plan)
    open_ = gains[gains["verdict"] == "inconclusive"]
    assert len(open_) >= 3 and open_["seeds_needed"].notna().all()
    assert open_["seeds_needed"].nunique() > 1  # the estimate matters: not one design number for all
    advice = next_seeds(t, plan, max_seeds=plan.max_seeds)
    assert advice.add
    for g in advice.add:
        mask = np.ones(len(open_), dtype=bool)
        for c in ("study", "task", "family", "backbone", "train_set"):
            mask &= (open_[c] == g[c]).to_numpy()
        if g["init"] != plan.baseline:
            mask &= (open_["init"] == g["init"]).to_numpy()
        assert g["target"] == int(open_.loc[mask, "seeds_needed"].max()), {c: g[c] for c in GROUP_COLUMNS}
        assert g["seeds"] == g["target"] - g["have"]
