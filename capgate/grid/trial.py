"""What runs inside a Ray worker: one Tune trial (a run), one pretraining-stage task, and the
task that generates the synthetic world (so the driver never builds it).

Both are thin: turn the config back into a frozen spec, call the plain training function,
store the result, report. A trial whose run is already stored with a final status (a retry
after a lost node, a rerun after a killed driver) only reports the stored result.

The config carries everything a worker needs, resolved in the driver: the storage (a local path
or an object-store URI, see :mod:`capgate.store.location`) and the dataset roots (``${VAR}``s
expanded). On object storage the worker trains in a local scratch folder and the run's files
go to the store. Each trial's log (capgate's log records at INFO and above) is written to
``<study>/runs/<run_id>/trial.log`` in the store (on object storage its copy there is replaced
after every record, one per epoch among them, so a killed trial's log survives it), and a failed
run's records carry its last lines in ``error``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from capgate._hash import short_hash
from capgate.store.location import Location, location
from capgate.store.study import Store
from capgate.schema import FINAL_STATUSES, PRIMARY_METRIC
from capgate.spec.model import PretrainSpec, RunSpec

__all__ = ["run_trial", "SharedRuns", "train_stage", "build_world", "summary_metrics", "trial_device", "log_tail",
           "LOG_NAME", "LOG_LINES"]

log = logging.getLogger(__name__)

LOG_NAME = "trial.log"
#: How many of a trial's last log lines a failed record's ``error`` carries.
LOG_LINES = 20


def _threads(cpus: float) -> None:
    import torch

    torch.set_num_threads(max(1, int(cpus)))


def trial_device() -> str:
    """The device of this trial or task: CUDA only when Ray reserved GPUs for it. Ray leaves
    ``CUDA_VISIBLE_DEVICES`` alone for a zero-GPU trial, so without this a ``gpu: 0`` trial on a
    GPU node would train on GPU 0 unreserved, beside the trials that hold it."""
    import ray

    return "cuda" if ray.get_gpu_ids() else "cpu"


def _local(storage: Location) -> tuple[Path, Location | None]:
    """``(local folder to train in, the remote store or None)`` for a storage location. On object
    storage the scratch folder is per store and per Ray node: nothing on one node's disk is
    assumed visible to another (true also of nodes that happen to share a machine)."""
    if storage.local is not None:
        return storage.local, None
    import ray

    node = ray.get_runtime_context().get_node_id()[:12]
    return Path(tempfile.gettempdir()) / "capgate-scratch" / short_hash(storage.uri) / node, storage


def log_tail(store: Store, spec: RunSpec, lines: int = LOG_LINES) -> str:
    """The last ``lines`` lines of a run's trial log in the store ('' when there is none)."""
    try:
        text = (store.runs / spec.run_id / LOG_NAME).read_text()
    except (FileNotFoundError, OSError):
        return ""
    return "\n".join(text.splitlines()[-lines:])


class _UploadingLog(logging.FileHandler):
    """A trial's log file that also replaces its copy on object storage after every record, so a
    trial killed mid-run (node lost, driver killed) leaves its log up to its last record in the
    store: the next run's failure message and ``log_tail`` read it there."""

    def __init__(self, path: Path, target: Location) -> None:
        super().__init__(path, mode="a")
        self.target = target

    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)
        try:
            self.flush()
            self.target.upload(Path(self.baseFilename))
        except Exception:  # noqa: BLE001 - a log copy that did not reach the store never fails the trial
            pass


@contextlib.contextmanager
def _trial_log(path: Path, target: Location | None = None) -> Iterator[Path]:
    """capgate's log records (INFO and above) of this trial, appended to ``path`` (and, with
    ``target`` on object storage, copied there after every record)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="a") if target is None else _UploadingLog(path, target)
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("capgate")
    level = root.level
    root.addHandler(handler)
    if root.getEffectiveLevel() > logging.INFO:
        root.setLevel(logging.INFO)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()


def summary_metrics(spec: RunSpec, records: list[dict[str, Any]], busy: float, skipped: bool) -> dict[str, Any]:
    """The small dict a trial reports to Tune (the records themselves live in the store)."""
    first = records[0]
    statuses = {r["status"] for r in records}
    status = "failed" if "failed" in statuses else "diverged" if "diverged" in statuses else "ok"
    out: dict[str, Any] = {"run_id": spec.run_id, "status": status, "busy_seconds": busy, "skipped": skipped,
                           "backbone": first.get("backbone"), "init": spec.init, "seed": spec.seed}
    metric = PRIMARY_METRIC[spec.task]
    for r in records:
        if r.get("shift") == "in_domain":
            out[f"in_domain_{metric}"] = r.get(metric)
    return out


class SharedRuns:
    """The grid's run list (run id -> RunSpec JSON), put once into Ray's object store and fetched
    once per worker process: a reused actor keeps it for all its trials. Tune keeps each trial's
    config about eight times over (config, tag, last result, cached JSON states), so a trial's
    config holds only its run id; a whole RunSpec there cost the driver about 13 KB per trial."""

    _cache: tuple[str, dict[str, str]] | None = None  # (object id, runs) of the last grid seen here

    def __init__(self, runs: dict[str, str]) -> None:
        import ray

        self.ref = [ray.put(runs)]  # in a list: Ray refuses to put an ObjectRef itself (with_parameters does)

    def spec(self, run_id: str) -> RunSpec:
        """The RunSpec of ``run_id`` (inside a worker)."""
        import ray

        key = self.ref[0].hex()
        if SharedRuns._cache is None or SharedRuns._cache[0] != key:
            SharedRuns._cache = (key, ray.get(self.ref[0]))
        return RunSpec.from_json(SharedRuns._cache[1][run_id])


def run_trial(config: dict[str, Any], stages: dict[str, dict[str, Any]] | None = None,
              runs: SharedRuns | None = None) -> None:
    """The Tune function trainable: ``config = {"run": run id, "storage", "cpus", "roots"}``;
    ``runs`` (:class:`SharedRuns`) and ``stages`` (stage id -> PretrainSpec dict) come once
    through Ray's object store (``tune.with_parameters``). Without ``runs``, ``config["run"]`` is
    the RunSpec JSON itself."""
    from ray import tune

    from capgate.train import train_one_run  # before the clock: a fresh worker's imports are overhead
    from capgate.train.run import run_dir, state_target

    t0 = time.perf_counter()
    spec = runs.spec(config["run"]) if runs is not None else RunSpec.from_json(config["run"])
    where = location(config["storage"])
    store = Store(where, spec.study)
    doc = store.read(spec.run_id)
    if doc is not None and store.status(spec.run_id) in FINAL_STATUSES:
        tune.report(summary_metrics(spec, doc["records"], 0.0, skipped=True))
        return
    _threads(config.get("cpus", 1))
    storage, remote = _local(where)
    specs = {k: PretrainSpec.from_dict(v) for k, v in (stages or config.get("stages") or {}).items()}
    log_path = run_dir(storage, spec) / LOG_NAME
    with _trial_log(log_path, store.runs / spec.run_id / LOG_NAME if remote is not None else None):
        log.info("trial of run %s starts on %s", spec.run_id, trial_device())
        records = train_one_run(spec, storage, specs, device=trial_device(), remote=remote,
                                roots=config.get("roots"))
        log.info("run %s finished: %s", spec.run_id, records[0]["status"])
    if remote is not None:
        (store.runs / spec.run_id / LOG_NAME).upload(log_path)
    if records[0]["status"] == "failed":
        tail = log_tail(store, spec)
        for r in records:
            r["error"] = f"{r.get('error') or ''}\n--- last lines of {store.runs / spec.run_id / LOG_NAME} ---\n{tail}"
    store.write(spec.run_id, spec.to_dict(), records)
    target = state_target(storage, spec, remote)
    target.unlink() if isinstance(target, Location) else target.unlink(missing_ok=True)  # stored: resume state done
    tune.report(summary_metrics(spec, records, time.perf_counter() - t0, skipped=False))


def train_stage(stage: dict[str, Any], storage: str, study: str, stages: dict[str, dict[str, Any]],
                cpus: float, roots: dict[str, str] | None = None, *parents: Any) -> dict[str, Any]:
    """A Ray task: make sure one pretraining stage is trained (``parents`` are the parent
    stages' task results, passed only so Ray runs this after them)."""
    from capgate.grid.progress import STAGE_LOG
    from capgate.train.pretrain import ensure_stage, stage_dir

    _threads(cpus)
    local, remote = _local(location(storage))
    all_stages = {k: PretrainSpec.from_dict(v) for k, v in stages.items()}
    spec = PretrainSpec.from_dict(stage)
    shared = remote / study / "pretrain" / spec.stage_id / STAGE_LOG if remote is not None else None
    with _trial_log(stage_dir(local, study, spec.stage_id) / STAGE_LOG, shared):  # the driver reads its epochs
        res = ensure_stage(spec, local, study, all_stages, device=trial_device(), remote=remote, roots=roots)
    return {"stage_id": res.stage_id, "trained": res.trained, "seconds": res.seconds}


def build_world(storage: str, world: dict[str, Any]) -> dict[str, Any]:
    """A Ray task: generate the synthetic world a spec's ``world`` entry describes under a local
    (or NFS) storage folder, under its file lock (a no-op when it is complete). Returns where it
    is, how long it took, and the process and host that built it."""
    from capgate.train.pretrain import ensure_world_once

    t0 = time.perf_counter()
    local = location(storage).local
    assert local is not None, "on object storage each node generates its own copy inside its trials"
    root = ensure_world_once(local, world)
    return {"root": str(root), "seconds": time.perf_counter() - t0, "pid": os.getpid(), "host": socket.gethostname()}
