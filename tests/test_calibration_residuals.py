"""The residuals suite of benchmarks/calibration.py: null studies resampled from a results table."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from capgate.analysis import as_plan, simulate_results
from capgate.analysis.load import validate
from capgate.analysis.simulate import demo_truth

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from calibration_residuals import first_look, null_study, seed_blocks  # noqa: E402


@pytest.fixture(scope="module")
def table():
    tr = dataclasses.replace(demo_truth(), seeds=4, p_failed=0.0, p_diverged=0.0, p_missing=0.0)
    return validate(simulate_results(tr, seed=11))


def test_a_null_study_keeps_the_design_and_sets_every_gain_to_zero(table):
    plan = as_plan("analysis/demo.yaml")
    look = first_look(table, 3)
    assert sorted(look["seed"].unique()) == [0, 1, 2]
    blocks = seed_blocks(look, plan)
    flat = blocks.assign(e=0.0)  # no residual: every value is its rung's scratch mean on that eval set
    t = null_study(look, flat, plan, np.random.default_rng(0))
    assert len(t) == len(look[look["status"] == "ok"])
    assert set(t["run_id"]) == set(look.loc[look["status"] == "ok", "run_id"])
    spread = t.groupby(["backbone", "train_set", "eval_set"])["map"].agg(lambda v: v.max() - v.min())
    assert float(spread.max()) < 1e-12


def test_resampled_residuals_come_from_the_same_pool_with_their_seed_blocks(table):
    plan = as_plan("analysis/demo.yaml")
    look = first_look(table, 3)
    blocks = seed_blocks(look, plan)
    t = null_study(look, blocks, plan, np.random.default_rng(1))
    base = blocks[blocks["init"] == "scratch"].groupby(["backbone", "train_set", "eval_set"])["y"].mean()
    e = t["map"].to_numpy() - base.reindex(list(zip(t["backbone"], t["train_set"], t["eval_set"]))).to_numpy()
    pool = blocks.groupby("train_set")["e"].apply(lambda s: set(np.round(s, 12)))
    assert all(round(v, 12) in pool[ts] for v, ts in zip(e, t["train_set"]))
    # one seed slot of a rung takes one donor block: its residuals on every init and eval set move together
    one = t[(t["backbone"] == t["backbone"].iloc[0]) & (t["seed"] == 0) & (t["train_set"] == t["train_set"].iloc[0])]
    donors = blocks[blocks["e"].round(12).isin(np.round(e[one.index], 12))]["block"].value_counts()
    assert donors.iloc[0] == len(one)


def test_one_rungs_seeds_get_distinct_donor_blocks(table):
    # a block drawn twice into one cell would make two seeds identical (zero variance between them)
    plan = as_plan("analysis/demo.yaml")
    look = first_look(table, 3)
    blocks = seed_blocks(look, plan)
    key = blocks.set_index(["train_set", "init", "eval_set", "block"])["e"].round(12)
    for seed in range(5):
        t = null_study(look, blocks, plan, np.random.default_rng(seed))
        sc = t[(t["init"] == "scratch") & (t["eval_set"] == t["train_set"])]
        base = blocks[blocks["init"] == "scratch"].groupby(["backbone", "train_set", "eval_set"])["y"].mean()
        sc = sc.assign(e=(sc["map"] - base.reindex(list(zip(sc["backbone"], sc["train_set"], sc["eval_set"])))
                          .to_numpy()).round(12))
        for (bb, ts), g in sc.groupby(["backbone", "train_set"]):
            donors = [key[ts, "scratch", ts][key[ts, "scratch", ts] == e].index[0] for e in g["e"]]
            assert len(set(donors)) == len(donors), (bb, ts, donors)


def test_the_residuals_suite_runs_from_the_command_line(table, tmp_path):
    path = tmp_path / "results.parquet"
    table.to_parquet(path)
    out = subprocess.run([sys.executable, "benchmarks/calibration.py", "--suite", "residuals", "--results", str(path),
                          "--plan", "analysis/demo.yaml", "--studies", "2"], capture_output=True, text=True, cwd=REPO,
                         timeout=600)
    assert out.returncode == 0, out.stderr
    assert "[sim/detection: 168 contrasts] false-claim share" in out.stdout
