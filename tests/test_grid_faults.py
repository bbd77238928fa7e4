"""Crash safety: a node removed mid-grid, and the driver killed with SIGKILL mid-grid. Either way
every run ends up recorded exactly once, and runs finished before the crash are not retrained."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest
from helpers import records, tiny_spec, wait_for

REPO = Path(__file__).resolve().parents[1]


def _n_records(storage: Path, study: str) -> int:
    folder = storage / study / "runs"
    return len(list(folder.glob("*.json"))) if folder.is_dir() else 0


def _check_complete(storage: Path, study: str, run_ids: set[str], evals: int) -> pd.DataFrame:
    docs = records(storage, study)
    assert set(docs) == run_ids  # no run lost, no stray run
    table = pd.read_parquet(storage / study / "results.parquet")
    assert len(table) == len(run_ids) * evals
    assert not table.duplicated(["run_id", "eval_set"]).any()
    assert set(table["status"]) == {"ok"}
    return table


@pytest.mark.slow
def test_node_removed_mid_grid_every_run_recorded_once(tmp_path: Path) -> None:
    import ray
    from ray.cluster_utils import Cluster

    from capgate.grid import plan_grid, run_grid
    from capgate.train.pretrain import ensure_world_once

    spec = tiny_spec(tmp_path, name="nodes", rungs={"efficientnet": ["B-7"], "mobilenetv3": ["S-6"]},
                     seeds=[0, 1, 2], inits=("scratch",), steps=12)
    storage = tmp_path / "store"
    plan = plan_grid(spec)
    ensure_world_once(storage, plan.study.world)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    worker = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    removed: list[int] = []

    def in_flight() -> int:  # runs whose folder exists (trial started) but with no record yet
        runs = storage / "nodes" / "runs"
        return sum(1 for d in runs.glob("*/spec.json") if not (runs / f"{d.parent.name}.json").exists()) \
            if runs.is_dir() else 0

    def remove_worker_after_first_record() -> None:
        try:  # both nodes busy (one trial each) after a first record: the worker's trial is lost
            wait_for(lambda: _n_records(storage, "nodes") >= 1 and in_flight() == 2, 300,
                      "a first record with two trials in flight")
            removed.append(_n_records(storage, "nodes"))
            cluster.remove_node(worker, allow_graceful=False)
        except AssertionError:
            pass

    killer = threading.Thread(target=remove_worker_after_first_record, daemon=True)
    killer.start()
    try:
        res = run_grid(spec, storage=storage, address=cluster.address, retries=3)
    finally:
        killer.join(timeout=5)
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
    assert removed and removed[0] < len(plan.runs), "the node was not removed mid-grid"
    lost = list((storage / "nodes" / "tune").glob("*/trial_*/error.txt"))
    assert lost, "no trial was running on the removed node (nothing was retried)"
    assert res.counts == {"ok": len(plan.runs)}
    _check_complete(storage, "nodes", {r.run_id for r in plan.runs}, 3)


@pytest.mark.slow
def test_driver_sigkill_then_rerun_no_duplicates_no_losses(tmp_path: Path) -> None:
    from capgate.grid import plan_grid

    spec = tiny_spec(tmp_path, name="kill", rungs={"efficientnet": ["B-7"], "mobilenetv3": ["S-6"]},
                     seeds=[0, 1, 2], inits=("scratch",), steps=12)
    storage = tmp_path / "store"
    plan = plan_grid(spec)
    cmd = [sys.executable, "-m", "capgate", "run-grid", str(spec), "--storage", str(storage)]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        wait_for(lambda: _n_records(storage, "kill") >= 2 or proc.poll() is not None, 300, "two records")
        assert proc.poll() is None, f"the grid ended before it could be killed: {proc.stderr.read()[-2000:]}"
        os.kill(proc.pid, signal.SIGKILL)  # the driver only; its Ray processes are orphaned
        proc.wait(timeout=30)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # then whatever the killed driver had started
        except ProcessLookupError:
            pass
    before = {rid: doc["records"][0]["started_at"] for rid, doc in records(storage, "kill").items()}
    assert 2 <= len(before) < len(plan.runs)
    assert not (storage / "kill" / "results.parquet").exists()

    out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    stored, trained = map(int, re.search(r"(\d+) already stored, (\d+) trained now", out.stdout).groups())
    assert stored >= len(before) and stored + trained == len(plan.runs) and trained >= 1
    table = _check_complete(storage, "kill", {r.run_id for r in plan.runs}, 3)
    after = {rid: doc["records"][0]["started_at"] for rid, doc in records(storage, "kill").items()}
    assert {rid: after[rid] for rid in before} == before  # finished runs were not retrained
    assert not list((storage / "kill" / "runs").glob(".*.tmp"))  # no half-written record left behind
    assert json.loads((storage / "kill" / "runs" / f"{plan.runs[0].run_id}.json").read_text())["run_id"]
    assert len(table) == 3 * len(plan.runs)
