"""Cluster hygiene without a cluster: dataset roots resolved in the driver and carried to
workers, resources that fit no node refused by name, a trial's log tail, files that honour
the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from helpers import tiny_spec

from capgate.data.roots import resolve_root
from capgate.errors import SpecError
from capgate.grid.cluster import check_fits, resolved_roots, runtime_env
from capgate.store.study import Store
from capgate.grid.trial import LOG_NAME, log_tail
from capgate.spec.model import DatasetRef

NODES = [{"NodeManagerAddress": "10.0.0.1", "Resources": {"CPU": 4.0}},
         {"NodeManagerAddress": "10.0.0.2", "Resources": {"CPU": 2.0, "GPU": 1.0}}]


def test_roots_are_resolved_in_the_driver_and_win_over_the_worker_environment(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    from capgate.grid import plan_grid

    spec = tiny_spec(tmp_path, llvip_root="${LLVIP_TEST_ROOT}/llvip")
    monkeypatch.setenv("LLVIP_TEST_ROOT", str(tmp_path / "data"))
    roots = resolved_roots(plan_grid(spec))
    assert roots == {"${LLVIP_TEST_ROOT}/llvip": str(tmp_path / "data" / "llvip")}
    monkeypatch.delenv("LLVIP_TEST_ROOT")  # a worker on another node: the variable is not set there
    ref = DatasetRef(format="llvip", root="${LLVIP_TEST_ROOT}/llvip", split="train")
    assert resolve_root(ref, None, roots) == tmp_path / "data" / "llvip"
    with pytest.raises(SpecError, match="needs environment variable"):
        resolve_root(ref, None)


def test_resources_that_fit_no_node_are_refused_naming_the_resource() -> None:
    check_fits({"cpu": 4, "gpu": 0}, "resources", NODES)
    check_fits({"cpu": 2, "gpu": 1}, "stage_resources", NODES)
    with pytest.raises(SpecError, match=r"'resources.cpu' = 6 but no node of the Ray cluster has 6 CPUs "
                                        r"\(largest: 4 on node 10.0.0.1, 2 nodes\).*--set resources.cpu=4"):
        check_fits({"cpu": 6, "gpu": 0}, "resources", NODES)
    with pytest.raises(SpecError, match=r"'stage_resources.gpu' = 2 .* has 2 GPUs \(largest: 1 on node 10.0.0.2"):
        check_fits({"cpu": 1, "gpu": 2}, "stage_resources", NODES)
    cpu_only = [{"NodeManagerAddress": "10.0.0.3", "Resources": {"CPU": 8.0}}]
    with pytest.raises(SpecError, match=r"--set resources.gpu=0"):
        check_fits({"cpu": 1, "gpu": 0.25}, "resources", cpu_only)


def test_runtime_env_forwards_the_storage_variables_only(monkeypatch) -> None:  # noqa: ANN001
    for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION",
              "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(k, raising=False)
    assert runtime_env() == {}
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    monkeypatch.setenv("HOME_SECRET", "x")
    assert runtime_env() == {"env_vars": {"AWS_ENDPOINT_URL": "http://127.0.0.1:9000"}}


def test_log_tail_is_the_last_lines_of_the_trial_log(tmp_path: Path) -> None:
    class Spec:  # a stand-in: log_tail needs only the run id
        run_id = "r1"

    store = Store(tmp_path, "s")
    assert log_tail(store, Spec()) == ""
    (tmp_path / "s" / "runs" / "r1").mkdir(parents=True)
    (tmp_path / "s" / "runs" / "r1" / LOG_NAME).write_text("\n".join(f"line {i}" for i in range(30)) + "\n")
    assert log_tail(store, Spec(), 3) == "line 27\nline 28\nline 29"


def test_store_files_honour_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o002)
    try:
        store = Store(tmp_path, "s")
        store.write("r1", {}, [{"run_id": "r1", "status": "ok", "eval_set": "a"}])
    finally:
        os.umask(old)
    assert stat.S_IMODE(store.path("r1").local.stat().st_mode) == 0o664
