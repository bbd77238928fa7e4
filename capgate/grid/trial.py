"""What runs inside a Ray worker: one Tune trial (a run) and one pretraining-stage task.

Both are thin: turn the config back into a frozen spec, call the plain training function,
store the result atomically, report. A trial whose run is already stored with a final status
(a retry after a lost node, a rerun after a killed driver) only reports the stored result.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from capgate.grid.store import Store
from capgate.schema import FINAL_STATUSES, PRIMARY_METRIC
from capgate.spec import PretrainSpec, RunSpec

__all__ = ["run_trial", "train_stage", "summary_metrics", "trial_device"]

log = logging.getLogger(__name__)


def _threads(cpus: float) -> None:
    import torch

    torch.set_num_threads(max(1, int(cpus)))


def trial_device() -> str:
    """The device of this trial or task: CUDA only when Ray reserved GPUs for it. Ray leaves
    ``CUDA_VISIBLE_DEVICES`` alone for a zero-GPU trial, so without this a ``gpu: 0`` trial on a
    GPU node would train on GPU 0 unreserved, beside the trials that hold it."""
    import ray

    return "cuda" if ray.get_gpu_ids() else "cpu"


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


def run_trial(config: dict[str, Any], stages: dict[str, dict[str, Any]] | None = None) -> None:
    """The Tune function trainable: ``config = {"run": RunSpec JSON, "storage", "cpus"}``; ``stages``
    (stage id -> PretrainSpec dict) comes once through Ray's object store (``tune.with_parameters``)."""
    from ray import tune

    from capgate.train import train_one_run  # before the clock: a fresh worker's imports are overhead
    from capgate.train.run import state_target

    t0 = time.perf_counter()
    spec = RunSpec.from_json(config["run"])
    storage = Path(config["storage"])
    store = Store(storage, spec.study)
    doc = store.read(spec.run_id)
    if doc is not None and store.status(spec.run_id) in FINAL_STATUSES:
        tune.report(summary_metrics(spec, doc["records"], 0.0, skipped=True))
        return
    _threads(config.get("cpus", 1))
    specs = {k: PretrainSpec.from_dict(v) for k, v in (stages or config.get("stages") or {}).items()}
    records = train_one_run(spec, storage, specs, device=trial_device())
    store.write(spec.run_id, spec.to_dict(), records)
    state_target(storage, spec).unlink(missing_ok=True)  # stored: the per-epoch resume state is done
    tune.report(summary_metrics(spec, records, time.perf_counter() - t0, skipped=False))


def train_stage(stage: dict[str, Any], storage: str, study: str, stages: dict[str, dict[str, Any]],
                cpus: float, *parents: Any) -> dict[str, Any]:
    """A Ray task: make sure one pretraining stage is trained (``parents`` are the parent
    stages' task results, passed only so Ray runs this after them)."""
    from capgate.train.pretrain import ensure_stage

    _threads(cpus)
    all_stages = {k: PretrainSpec.from_dict(v) for k, v in stages.items()}
    res = ensure_stage(PretrainSpec.from_dict(stage), Path(storage), study, all_stages, device=trial_device())
    return {"stage_id": res.stage_id, "trained": res.trained, "seconds": res.seconds}
