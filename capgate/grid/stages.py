"""What the driver runs on Ray before the trials: the synthetic world and the missing
pretraining stages, each as a Ray task (the workers' side is :mod:`capgate.grid.trial`).

A stage is missing when a run still to train starts from it (or from a stage below it) and
neither its spec names a checkpoint nor ``<study>/pretrain/<stage_id>/`` holds one. Missing
stages run in parallel, each after its parent; a stage that fails is logged, and the runs that
need it fail and are recorded as failed. Runs in the driver; imports neither torch nor timm.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from capgate.errors import GridError
from capgate.grid.plan import GridPlan
from capgate.grid.resources import trial_resources
from capgate.spec.model import RunSpec, stages_needed_by
from capgate.store.location import Location

__all__ = ["build_world", "missing_stages", "run_stages"]

log = logging.getLogger("capgate.grid")


def build_world(plan: GridPlan, root: Location, retries: int) -> None:
    """Generate the synthetic world under the (local or NFS) storage in a Ray task, so the driver
    stays light; it is built once, before the stages and trials that read it."""
    import ray

    from capgate.grid.trial import build_world as build_in_worker

    t0 = time.monotonic()
    cpus = min(1.0, float(plan.study.resources.cpu))  # fits a node: check_resources said so
    task = ray.remote(build_in_worker).options(num_cpus=cpus, max_retries=retries)
    try:
        out = ray.get(task.remote(root.portable(), plan.study.world))
    except ray.exceptions.RayError as exc:
        raise GridError(f"the synthetic world of study {plan.study.study} could not be generated under {root}: "
                        f"{str(exc).strip().splitlines()[-1][:300]}") from None
    log.info("[grid] synthetic world ready at %s (%.1fs; built by a Ray task, pid %d on %s)", out["root"],
             time.monotonic() - t0, out["pid"], out["host"])


def missing_stages(plan: GridPlan, todo: list[RunSpec], root: Location) -> list:
    """The stages (in ``plan.stages`` order: parents first) that the ``todo`` runs need and that
    have no checkpoint yet."""
    from capgate.train.pretrain import CHECKPOINT_NAME  # no torch: a file name

    return [s for s in stages_needed_by(list(plan.stages), todo) if not s.checkpoint
            and not (root / plan.study.study / "pretrain" / s.stage_id / CHECKPOINT_NAME).is_file()]


def run_stages(plan: GridPlan, todo: list[RunSpec], root: Location, retries: int, roots: dict[str, str]) -> float:
    """Train the missing pretraining stages the ``todo`` runs need, as Ray tasks (each parent
    before its children, siblings in parallel); returns their wall seconds (0 when none is missing)."""
    import ray

    from capgate.grid.progress import stage_watch
    from capgate.grid.stage_scores import log_stage_ready
    from capgate.grid.trial import train_stage

    missing = missing_stages(plan, todo, root)
    if not missing:
        return 0.0
    by_id = {s.stage_id: s for s in plan.stages}
    t0 = time.monotonic()
    log.info("[grid] training %d pretraining stages (in parallel where their parents allow)", len(missing))
    res = plan.study.stage_resources
    want = trial_resources(res, "stage_resources")
    task = ray.remote(train_stage).options(num_cpus=want["cpu"], num_gpus=want["gpu"], max_retries=retries)
    stages_json = ray.put({s.stage_id: s.to_dict() for s in plan.stages})  # shared once, not per task
    refs: dict[str, Any] = {}
    for s in missing:  # parents come first in plan.stages
        parents = [refs[s.parent]] if s.parent in refs else []
        refs[s.stage_id] = task.remote(s.to_dict(), root.portable(), plan.study.study, stages_json, res.cpu, roots,
                                       *parents)
    pending = dict((ref, sid) for sid, ref in refs.items())
    watch = stage_watch(missing, root / plan.study.study / "pretrain")  # a line per epoch of each stage
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=max(watch.interval, 0.1))
        if not ready:
            watch.poll()
            continue
        sid = pending.pop(ready[0])
        watch.final(sid)
        try:
            out = ray.get(ready[0])
            log_stage_ready(root, plan.study.study, by_id[sid], out, len(pending))  # the score vs chance
        except Exception as exc:  # the runs needing it will fail and be recorded as failed
            log.error("[grid] pretraining stage %s failed: %s", sid, str(exc).splitlines()[-1][:300])
    return time.monotonic() - t0
