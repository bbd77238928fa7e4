"""Pretraining replicates (``stage_seed``): the replicate is the unit of a pretrained arm's noise; one
replicate (or an external checkpoint) makes every verdict conditional on that checkpoint.

Hand-checkable contrasts on one cell, a few simulated studies by property (seconds), the mixed model's
stage term, and the report's conditional wording.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from capgate.analysis import Truth, analyze, resolve_plan, simulate_results
from capgate.analysis.analyze import analyze_contrasts
from capgate.analysis.simulate import conditional_gains
from capgate.report.headline import headline_sentences, verdict_maps

PLAN = {"n_boot": 0}


def one_cell(scratch: list[float], pretrained: list[float], stage: list[float | None],
             source: str = "stage-4f2a") -> pd.DataFrame:
    """One site (one rung, one train and eval set), 4 seeds per arm, top1 values as given."""
    rows = []
    for init, vals in (("scratch", scratch), ("imagenet", pretrained)):
        for s, v in enumerate(vals):
            rows.append({"study": "st", "task": "classification", "run_id": f"{init}{s}", "family": "net",
                         "backbone": "net@w0.5", "params": 100_000, "init": init, "train_set": "a", "eval_set": "a",
                         "shift": "in_domain", "seed": s, "status": "ok", "top1": v,
                         "init_source": "none" if init == "scratch" else source,
                         "stage_seed": None if init == "scratch" else stage[s]})
    return pd.DataFrame(rows)


def test_two_replicates_make_the_replicate_the_unit():
    # d = pretrained - scratch per seed = [0.02, 0.10, 0.04, 0.12]; replicate 0 (seeds 0, 2): mean 0.03,
    # replicate 1 (seeds 1, 3): mean 0.11. gain 0.07; variance of the replicate means 0.0032 on 1 df (one
    # contrast: nothing to moderate with), se = sqrt(0.0032 / 2) = 0.04. Within replicates: deviations
    # +-0.01 -> 0.0004 / 2 = 0.0002; between-stage component 0.0032 - 0.0002 / 2 = 0.0031, share
    # 0.0031 / 0.0033 = 0.939: more pretraining replicates, not more seeds, would decide it.
    t = one_cell([0.50, 0.50, 0.50, 0.50], [0.52, 0.60, 0.54, 0.62], [0, 1, 0, 1])
    _, g, _ = analyze_contrasts(t, PLAN)
    (r,) = g.itertuples()
    assert r.n_stages == 2 and r.conditional_on is None
    assert r.gain == pytest.approx(0.07) and r.se == pytest.approx(0.04) and r.df == pytest.approx(1.0)
    assert r.sd_raw == pytest.approx(np.sqrt(0.0032))
    assert r.stage_share == pytest.approx(0.0031 / 0.0033) and r.more_of == "pretraining_replicates"
    # per seed, the same differences would claim se = sd([.02, .10, .04, .12]) / 2 = 0.0183 on 3 df
    t1 = one_cell([0.50, 0.50, 0.50, 0.50], [0.52, 0.60, 0.54, 0.62], [0, 0, 0, 0])
    _, g1, _ = analyze_contrasts(t1, PLAN)
    assert g1["se"].iloc[0] == pytest.approx(np.std([0.02, 0.10, 0.04, 0.12], ddof=1) / 2)
    assert g1["df"].iloc[0] == pytest.approx(3.0)


def test_fine_tuning_noise_dominates_when_replicates_agree():
    # d = [0.06, 0.08, 0.10, 0.12]: replicate means 0.08 and 0.10 (var 0.0002); within 0.0016 / 2 = 0.0008,
    # of which a replicate mean of 2 seeds carries 0.0004 > 0.0002: no between-stage variance left (share 0)
    t = one_cell([0.50, 0.52, 0.48, 0.50], [0.56, 0.60, 0.58, 0.62], [0, 1, 0, 1])
    _, g, _ = analyze_contrasts(t, PLAN)
    r = g.iloc[0]
    assert r["gain"] == pytest.approx(0.09) and r["se"] == pytest.approx(0.01)
    assert r["stage_share"] == 0.0 and r["more_of"] == "fine_tuning_seeds"


def test_one_replicate_or_an_external_checkpoint_is_conditional_and_named():
    t = one_cell([0.50, 0.50, 0.50, 0.50], [0.52, 0.60, 0.54, 0.62], [0, 0, 0, 0], source="stage-4f2a")
    assert analyze_contrasts(t, PLAN)[1]["conditional_on"].tolist() == ["stage-4f2a"]
    ext = one_cell([0.50] * 4, [0.52, 0.60, 0.54, 0.62], [None] * 4, source="weights.pt sha256:9c1e")
    _, g, _ = analyze_contrasts(ext, PLAN)
    assert g["conditional_on"].tolist() == ["weights.pt sha256:9c1e"] and g["n_stages"].tolist() == [0]
    bare = ext.drop(columns=["stage_seed", "init_source"])
    assert analyze_contrasts(bare, PLAN)[1]["conditional_on"].tolist() == [
        "the imagenet checkpoint (source not recorded)"]


def small_truth(**kw) -> Truth:
    return Truth(study="stg", task="detection", families={"net": [("net@w0.5", 700_000), ("net@w0.3", 280_000),
                                                                  ("net@w0.2", 120_000), ("net@w0.1", 50_000)]},
                 inits=("scratch", "imagenet"), sets={"a/rgb": [("a/rgb", "in_domain"), ("b/rgb", "cross_dataset")]},
                 gains={}, run_sd=0.008, noise_sd=0.004, rung_sd=0.01, latency=False, **kw)


def test_replicates_cover_what_one_checkpoint_cannot():
    # a pretraining run's effect 4x the fine-tuning SD, shared by all its fine-tuning runs: with 3 replicates
    # the intervals cover pretraining's true gain (0); with one, they cover that checkpoint's own gain and
    # not pretraining's (the verdicts say "conditional on the checkpoint")
    rep, one, base = [], [], []
    for i in range(10):
        tr = small_truth(seeds=6, stage_seeds=3, stage_sd=0.036)
        g = analyze_contrasts(simulate_results(tr, seed=100 + i), PLAN)[1]
        rep.append(((g["ci_low"] <= 0) & (0 <= g["ci_high"])).to_numpy())
        tr1 = dataclasses.replace(tr, seeds=3, stage_seeds=1)
        t1 = simulate_results(tr1, seed=200 + i)
        g1 = analyze_contrasts(t1, PLAN)[1]
        assert g1["conditional_on"].notna().all() and (g1["n_stages"] == 1).all()
        cg = conditional_gains(tr1, t1).set_index(["backbone", "eval_set"]).loc[
            list(zip(g1["backbone"], g1["eval_set"])), "conditional_gain"].to_numpy()
        one.append(((g1["ci_low"] <= cg) & (cg <= g1["ci_high"])).to_numpy())
        base.append(((g1["ci_low"] <= 0) & (0 <= g1["ci_high"])).to_numpy())
        assert (g["n_stages"] == 3).all() and g["conditional_on"].isna().all() and (g["df"] < 60).all()
    assert np.mean(np.concatenate(rep)) >= 0.85
    assert np.mean(np.concatenate(one)) >= 0.85
    assert np.mean(np.concatenate(base)) <= 0.6


def test_mixed_model_gets_the_stage_term_only_with_replicates():
    tr = small_truth(seeds=4, stage_seeds=2, stage_sd=0.03)
    a = analyze(simulate_results(tr, seed=5), PLAN)
    (m,) = a.models
    assert "(1 | backbone:init:stage)" in m["formula_lme4"] and "backbone:init:stage" in m["variance_components"]
    assert "'stage'" in m["r_snippet"] and set(a.model_frames["detection"]["stage"]) == {"none", "0", "1"}
    b = analyze(simulate_results(dataclasses.replace(tr, stage_seeds=1), seed=5), PLAN)
    assert "stage" not in b.models[0]["formula_lme4"]
    assert "conditional on that checkpoint" in b.methods["stages"] and "sim:imagenet:stage0" in b.methods["stages"]


def test_report_states_the_checkpoint_a_verdict_is_conditional_on():
    v = {"task": "detection", "init": "imagenet", "baseline": "scratch", "family": "net", "backbone": "net@w0.5",
         "params": 700_000, "shift": "in_domain", "train_set": "a", "eval_set": "a", "verdict": "helps",
         "gain": 0.03, "ci_low": 0.01, "ci_high": 0.05, "margin": 0.01, "pairing": "paired", "n_pairs": 3,
         "conditional_on": "stage-4f2a"}
    summary = {"verdicts": [v], "gates": [], "metric": {"detection": "map"}, "plan": resolve_plan(PLAN)}
    (s,) = headline_sentences(summary)
    assert s["text"].endswith("Conditional on the checkpoint stage-4f2a (one pretraining run each): what this "
                              "checkpoint does, not what pretraining does.")
    tip = verdict_maps(summary)[0]["tables"][0]["rows"][0]["cells"][0]["tip"]
    assert tip.endswith("; conditional on the checkpoint stage-4f2a")
    rep = {**v, "conditional_on": None, "n_stages": 3, "stage_share": 0.75, "verdict": "inconclusive",
           "more_of": "pretraining_replicates"}
    tip = verdict_maps({**summary, "verdicts": [rep]})[0]["tables"][0]["rows"][0]["cells"][0]["tip"]
    assert ("3 pretraining replicates: 75% of a seed's variance is between pretraining runs, 25% between "
            "fine-tuning seeds; more pretraining replicates would decide it") in tip
    one_each = {**rep, "stage_share": None}  # one fine-tuning seed per replicate: no within-replicate noise
    tip = verdict_maps({**summary, "verdicts": [one_each]})[0]["tables"][0]["rows"][0]["cells"][0]["tip"]
    assert ("3 pretraining replicates of one fine-tuning seed each: how their variance splits between pretraining "
            "runs and fine-tuning seeds is not identifiable") in tip


def test_stage_term_refits_in_lme4(tmp_path):
    # the lme4 recipe shipped in model.json, run on model_frame.csv alone, gives the same stage variance
    # (R 4.2.2, lme4 1.1-31: 1.386921e-04 against capgate's 1.386901e-04 here)
    import json
    import os
    import shutil
    import subprocess

    from capgate.analysis import write_outputs
    have = shutil.which("Rscript") is not None and subprocess.run(
        ["Rscript", "-e", "library(lme4)"], capture_output=True).returncode == 0
    if not have:
        if os.environ.get("CAPGATE_REQUIRE_R"):
            pytest.fail("Rscript with lme4 is required (CAPGATE_REQUIRE_R=1): apt-get install r-base-core r-cran-lme4")
        pytest.skip("Rscript with lme4 not installed (apt-get install r-base-core r-cran-lme4)")
    a = analyze(simulate_results(small_truth(seeds=4, stage_seeds=2, stage_sd=0.03), seed=5), PLAN)
    write_outputs(a, tmp_path)
    script = json.loads((tmp_path / "model.json").read_text())["models"][0]["r_snippet"] + (
        "\nvc <- as.data.frame(lme4::VarCorr(fit)); write.csv(vc[, c('grp', 'vcov')], 'r_vc.csv', row.names = FALSE)\n")
    (tmp_path / "refit.R").write_text(script)
    r = subprocess.run(["Rscript", "refit.R"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    vc = pd.read_csv(tmp_path / "r_vc.csv").set_index("grp")["vcov"]
    ours = a.models[0]["variance_components"]
    assert vc["backbone:init:stage"] == pytest.approx(ours["backbone:init:stage"], rel=1e-2)
    assert vc["backbone:run_id"] == pytest.approx(ours["backbone:run_id"], rel=1e-2)


def test_se_rerun_is_the_se_of_the_replicate_means():
    # replicate means 0.53 and 0.61 (seeds 0, 2 / 1, 3): variance 0.0032 on 1 df (one cell: nothing to
    # moderate with), se_rerun = sqrt(0.0032 / 2) = 0.04, above the cell's per-seed se
    t = one_cell([0.50, 0.50, 0.50, 0.50], [0.52, 0.60, 0.54, 0.62], [0, 1, 0, 1])
    a = analyze(t, PLAN)
    cells = a.cells.set_index("init")
    assert cells.loc["imagenet", "n_stages"] == 2 and cells.loc["imagenet", "se_rerun"] == pytest.approx(0.04)
    assert cells.loc["imagenet", "se_rerun"] > cells.loc["imagenet", "se"]
    assert np.isnan(cells.loc["scratch", "se_rerun"]) and np.isnan(cells.loc["scratch", "n_stages"])
    # one replicate: no rerun SE (the check assumes a redraw), n_stages 1
    one = analyze(one_cell([0.50, 0.50, 0.50, 0.50], [0.52, 0.60, 0.54, 0.62], [0, 0, 0, 0]), PLAN).cells
    one = one.set_index("init")
    assert one.loc["imagenet", "n_stages"] == 1 and np.isnan(one.loc["imagenet", "se_rerun"])
    # replicate means 0.57 and 0.61: sqrt(0.0008 / 2) = 0.02; and never below the cell's own se
    other = analyze(one_cell([0.50, 0.52, 0.48, 0.50], [0.56, 0.60, 0.58, 0.62], [0, 1, 0, 1]), PLAN).cells
    assert other.set_index("init").loc["imagenet", "se_rerun"] == pytest.approx(0.02)
    same = analyze(one_cell([0.50, 0.52, 0.48, 0.50], [0.56, 0.62, 0.62, 0.56], [0, 1, 0, 1]), PLAN).cells
    same = same.set_index("init")  # replicate means 0.59 and 0.59: the cell's se
    assert same.loc["imagenet", "se_rerun"] == pytest.approx(same.loc["imagenet", "se"])
