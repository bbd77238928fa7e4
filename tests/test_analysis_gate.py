"""Capacity gates decided by the verdict rule: by hand, on a simulated study, and under the null."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from capgate.analysis import analyze, build_summary, simulate_results
from capgate.analysis.analyze import analyze_contrasts
from capgate.analysis.gate import gate_index, rung_name
from helpers import detection_truth


def test_gate_index_by_hand():
    # rungs sorted by params; the gate is the first rung of the final run of helping rungs
    assert gate_index(np.array([[False, False, True, True]])).tolist() == [2]
    assert gate_index(np.array([[True, False, True, True]])).tolist() == [2]  # a helping rung below a gap
    assert gate_index(np.array([[True, True]])).tolist() == [0]  # helps everywhere
    assert gate_index(np.array([[True, False]])).tolist() == [2]  # the largest rung does not help: no gate


def test_rung_names():
    assert rung_name("efficientnet_b0@w0.4d0.5 (B-2)") == "B-2"
    assert rung_name("efficientnet_b0@w0.5") == "efficientnet_b0@w0.5"


def _study(**kw):
    return simulate_results(detection_truth(seeds=4, run_sd=0.006, noise_sd=0.003, seed_sd=0.006, **kw), seed=3)


def test_sharp_gate_is_found_between_the_right_rungs():
    t = _study()
    a = analyze(t, {"n_boot": 60}, rng=1)
    g = a.gates.set_index("shift").loc["cross_dataset"]
    assert g["status"] == "gate"
    assert (g["rung_below"], g["rung_from"]) == ("efficientnet_b0@w0.35", "efficientnet_b0@w0.5")
    assert (g["below_params"], g["gate_params"]) == (200_000, 400_000)
    assert g["rung_verdicts"][2:] == ["helps", "helps"]
    assert 0 <= g["p_status"] <= 1 and "helps from efficientnet_b0@w0.5 (400k params) upward" in g["text"]
    # the gate never contradicts the verdict map: every cell at and above the gate helps
    cells = a.gains[(a.gains["shift"] == "cross_dataset") & (a.gains["params"] >= g["gate_params"])]
    assert (cells["verdict"] == "helps").all()
    assert a.gates.set_index("shift").loc["in_domain", "status"] == "no_gate_in_range"


def test_same_seed_same_gates():
    t = _study()
    s1 = json.dumps(build_summary(analyze(t, {"n_boot": 30}, rng=4))["gates"], sort_keys=True)
    s2 = json.dumps(build_summary(analyze(t, {"n_boot": 30}, rng=4))["gates"], sort_keys=True)
    assert s1 == s2


def test_null_studies_rarely_claim_a_gate():
    # 40 true-null studies: every claimed gate needs Holm-significant helps cells, so the share of
    # studies with any gate is at most alpha (0.05) up to Monte-Carlo noise (3 SE of 40 draws: 0.10)
    truth = detection_truth(seeds=3, gains={}, seed_sd=0.01)
    claims = []
    for i in range(40):
        _, _, gates = analyze_contrasts(simulate_results(truth, seed=100 + i), {"n_boot": 0})
        claims.append(gates["status"].isin(["gate", "helps_everywhere"]).any())
    assert np.mean(claims) <= 0.10


def test_one_rung_is_undetermined():
    t = _study()
    t = t[t["backbone"] == "efficientnet_b0@w1.0"]
    a = analyze(t, {"n_boot": 0})
    assert set(a.gates["status"]) == {"undetermined"}
    assert pd.isna(a.gates["p_status"]).all()
