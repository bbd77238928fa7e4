"""End to end: simulate -> analyze -> write_outputs; the files parse and agree with each other."""

from __future__ import annotations

import json
import math
import sys

import pandas as pd
import pytest

from capgate.analysis import GAINS_COLUMNS, analyze, demo_truth, simulate_results, write_outputs


@pytest.fixture(scope="module")
def analysis():
    table = simulate_results(demo_truth(seeds=3, p_failed=0.05, p_diverged=0.03), seed=11)
    return analyze(table, {"n_boot": 50}, rng=3)


def _no_nan(obj):
    if isinstance(obj, dict):
        return all(_no_nan(v) for v in obj.values())
    if isinstance(obj, list):
        return all(_no_nan(v) for v in obj)
    return not (isinstance(obj, float) and not math.isfinite(obj))


def test_outputs_parse_and_agree(analysis, tmp_path):
    paths = write_outputs(analysis, tmp_path)
    summary = json.loads(paths["summary.json"].read_text())
    assert summary["schema"] == "capgate-summary/2"
    assert summary["tasks"] == ["detection"] and summary["metric"] == {"detection": "map"}
    assert _no_nan(summary)
    assert set(summary) >= {"schema", "studies", "tasks", "metric", "plan", "cells", "verdicts", "gates", "rankings",
                            "ranking_stability", "expectations", "warnings"}
    assert set(summary["cells"][0]) >= {"key", "task", "family", "backbone", "params", "train_set", "eval_set",
                                        "shift", "init", "metric", "mean", "se", "sd", "n_ok", "n_failed",
                                        "n_diverged", "n_expected", "complete"}
    assert set(summary["verdicts"][0]) >= {"key", "baseline", "gain", "ci_low", "ci_high", "margin", "p_adj",
                                           "verdict", "seeds_needed"}
    gate = summary["gates"][0]
    assert gate["key"] == f"{gate['study']}|{gate['task']}|{gate['family']}|{gate['shift']}|{gate['init']}"
    assert gate["status"] in ("gate", "helps_everywhere", "no_gate_in_range", "undetermined")
    r = summary["rankings"][0]
    assert r["key"] == f"{r['task']}|{r['eval_set']}|{r['init']}" and len(r["order"]) == len(r["means"]) == 14
    gains = pd.read_csv(paths["gains.csv"])
    assert list(gains.columns) == [*GAINS_COLUMNS, "key"]
    # 2 families x 7 rungs x 2 train sets x 3 eval sets = 84 sites; 2 pretrained inits each
    assert len(gains) == 168 == len(summary["verdicts"])
    assert len(summary["cells"]) == 252
    by_key = {v["key"]: v for v in summary["verdicts"]}
    for row in gains.itertuples():
        v = by_key[row.key]
        assert v["verdict"] == row.verdict
        assert v["gain"] == pytest.approx(row.gain)
    cells = {c["key"]: c for c in summary["cells"]}
    k = summary["verdicts"][0]["key"].split("|vs|")[0]
    assert k in cells
    model = json.loads(paths["model.json"].read_text())
    assert model["models"][0]["formula_lme4"].endswith("(1 | backbone) + (1 | backbone:init) + (1 | backbone:run_id)")
    frame = pd.read_csv(paths["model_frame.csv"])
    assert set(frame["model"]) == {"detection"}
    assert len(frame) == model["models"][0]["n_obs"]
    assert {"map", "init", "shift", "logp_c", "backbone", "run_id"} <= set(frame.columns)


def test_failed_runs_counted_not_dropped(analysis):
    c = analysis.cells
    assert c["n_failed"].sum() > 0 and c["n_diverged"].sum() > 0
    assert ((c["n_ok"] + c["n_failed"] + c["n_diverged"] + c["n_missing"]) == c["n_expected"]).all()
    assert (~c["complete"]).sum() == ((c["n_ok"] < 3)).sum()


def test_analysis_never_imports_torch_or_ray():
    assert "torch" not in sys.modules or "capgate.models" in sys.modules
    import subprocess

    code = ("import sys, capgate.analysis as a; a.analyze(a.simulate_results(a.demo_truth(seeds=2), seed=0), "
            "{'n_boot': 5}); print('torch' in sys.modules, 'ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False False"
