"""Calibration over many simulated studies, using the per-cell machinery (no mixed fits).

200 small studies per property; each is 2 rungs x (scratch, imagenet) x 4 seeds, scored on 1 or 3
eval sets with a run effect shared across them. Tolerances are ~3 Monte-Carlo SEs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from capgate.analysis import Truth, resolve_plan, simulate_results, true_gains
from capgate.analysis.cells import cell_table, metric_frame
from capgate.analysis.gains import adjust_pvalues, compute_gains, decide

N_SIMS = 200
FAMILIES = {"efficientnet": [("efficientnet_b0@w0.2d0.25 (B-5)", 76_826), ("efficientnet_b0@w0.5d0.5 (B-1)", 713_574)]}
ONE_EVAL = {"llvip/rgb": [("flir/rgb", "cross_dataset")]}
THREE_EVALS = {"llvip/rgb": [("llvip/rgb", "in_domain"), ("flir/rgb", "cross_dataset"), ("llvip/ir", "cross_modality")]}


def _truth(gains, sets, seeds=4) -> Truth:
    return Truth(study="cal", families=FAMILIES, inits=("scratch", "imagenet"), sets=sets, seeds=seeds,
                 gains={"imagenet": gains}, run_sd=0.01, noise_sd=0.006, rung_sd=0.01, latency=False)


def _run(truth: Truth, plan: dict, seed0: int) -> pd.DataFrame:
    plan = resolve_plan(plan)
    truth_g = true_gains(truth).set_index(["backbone", "eval_set"])["true_gain"]
    out = []
    for i in range(N_SIMS):
        t = simulate_results(truth, seed=seed0 + i)
        t.attrs["capgate_validated"] = True
        g, _ = compute_gains(metric_frame(t, plan), cell_table(t, plan), plan)
        g["true_gain"] = [truth_g[(b, e)] for b, e in zip(g["backbone"], g["eval_set"])]
        out.append(g)
    return pd.concat(out, ignore_index=True)


@pytest.mark.parametrize("sets", [ONE_EVAL, THREE_EVALS], ids=["one_eval", "three_evals"])
def test_ci_coverage_near_nominal(sets):
    bend = {"low": 0.0, "high": 0.03, "gate": 300_000, "width": 0.1}  # gain is not linear in capacity
    g = _run(_truth({s: bend for _, evs in sets.items() for _, s in evs}, sets), {"n_boot": 0}, 1000)
    covered = ((g["ci_low"] <= g["true_gain"]) & (g["true_gain"] <= g["ci_high"])).mean()
    # per-cell estimates stay unbiased under the bend
    bias = (g["gain"] - g["true_gain"]).mean()
    assert abs(bias) < 0.0015
    if sets is ONE_EVAL:  # exact t: coverage 0.95 +- 3 MC SE (n = 400)
        assert 0.92 <= covered <= 0.975
    else:  # df counted once per run group: conservative, never below nominal by more than MC noise
        assert 0.93 <= covered <= 0.99


def test_false_helps_rate_under_null_at_most_alpha():
    g = _run(_truth(0.0, THREE_EVALS), {"n_boot": 0, "correction": "none"}, 5000)
    # unadjusted, per contrast: helps needs p < alpha AND gain > margin, so at most alpha/2 one-sided
    assert (g["verdict"] == "helps").mean() <= 0.05
    # per study with Holm (re-adjusting the same p-values within each study): the family-wise rate
    # of any false helps is at most alpha
    g["sim"] = np.repeat(np.arange(N_SIMS), len(g) // N_SIMS)
    g["p_holm"] = g.groupby("sim")["p_value"].transform(lambda p: adjust_pvalues(p.to_numpy(), "holm"))
    helps = [decide(r.gain, r.p_holm, r.p_tost, r.margin, 0.05) == "helps" for r in g.itertuples()]
    fwer = pd.Series(helps).groupby(g["sim"]).any().mean()
    assert fwer <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / N_SIMS)


def test_power_to_call_a_large_gain_helps():
    # true gain 0.05 = 4.3 seed SDs (sqrt(0.01^2 + 0.006^2) = 0.0117) with 4 seeds per arm
    g = _run(_truth(0.05, ONE_EVAL), {"n_boot": 0}, 9000)
    assert (g["verdict"] == "helps").mean() >= 0.9
    assert (g["verdict"] == "hurts").mean() == 0.0
