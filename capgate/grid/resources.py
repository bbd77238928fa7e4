"""Per-trial and per-stage resources (fractional GPUs): one function turns a spec's
``resources`` / ``stage_resources`` into Ray's dict, and the driver refuses, before anything
trains, a request that fits on no node. Runs in the driver; imports neither torch nor timm.
"""

from __future__ import annotations

from typing import Any

from capgate.errors import SpecError
from capgate.grid.plan import GridPlan

__all__ = ["check_resources", "trial_resources"]


def trial_resources(res: Any, where: str = "resources", cluster: dict[str, float] | None = None,
                    ) -> dict[str, float]:
    """Ray's resource dict for one trial (``tune.with_resources``) or one stage task from a spec's
    ``resources`` / ``stage_resources`` (``{gpu: 0.25, cpu: 2}``: four trials share one GPU).

    Ray schedules a fraction of a GPU only below 1 (above 1 it must be whole), so ``gpu: 1.5`` is
    refused here rather than by Ray mid-grid. With ``cluster`` (``ray.cluster_resources()`` of a
    local Ray this process started; an autoscaling cluster may add GPU nodes later), a GPU request
    on a cluster without GPUs is refused: its trials would wait forever.
    """
    cpu, gpu = float(res.cpu), float(res.gpu)
    if gpu > 1 and not gpu.is_integer():
        raise SpecError(f"spec key '{where}.gpu' = {gpu:g}: Ray gives a trial a fraction of a GPU only below 1; "
                        f"use a whole number of GPUs or a fraction such as 0.5 or 0.25 (--set {where}.gpu=1)")
    if cluster is not None and gpu > 0 and not cluster.get("GPU", 0):
        raise SpecError(f"spec key '{where}.gpu' = {gpu:g} but the Ray cluster has no GPU; run on a GPU node "
                        f"(--address) or train on CPU with --set {where}.gpu=0")
    return {"cpu": cpu, "gpu": gpu}


def check_resources(plan: GridPlan, local: bool) -> None:
    """Refuse trial or stage resources that fit on no node of the cluster (see
    :func:`trial_resources` and :func:`capgate.grid.cluster.check_fits`). ``local``: a Ray this
    call started (nothing will add GPU nodes later)."""
    import ray

    from capgate.grid.cluster import check_fits

    cluster = ray.cluster_resources() if local else None
    checks = [(plan.study.resources, "resources")]
    if plan.stages:
        checks.append((plan.study.stage_resources, "stage_resources"))
    for res, where in checks:
        check_fits(trial_resources(res, where, cluster), where)
