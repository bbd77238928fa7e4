"""``run_grid``: a whole study on Ray Tune, idempotent and crash-safe.

1. The spec is loaded, validated and expanded before Ray starts (:mod:`capgate.grid.plan`; a dry
   run stops there), and :mod:`capgate.grid.preflight` refuses a grid whose dataset roots or
   weights files are missing or unusable.
2. The store is read: runs already stored as ``ok``/``diverged`` are never trained again
   (``failed`` ones are retried), so rerunning after a crash, a killed driver or a lost node
   trains only what is missing.
3. The synthetic world (when used) is generated; missing pretraining stages run as Ray tasks,
   in parallel with each other, each after its parent.
4. The missing runs go on an explicit ``tune.grid_search`` axis (seeds included), with
   ``reuse_actors=True``, per-trial resources and ``FailureConfig(max_failures=retries)``; the
   stage list reaches the trials once, through Ray's object store. Each trial writes its records
   once into the store (a second write of a final record is dropped).
5. The results table is collected (parquet + CSV); a trial Ray lost after all retries gets a
   ``failed`` record; failed runs raise :class:`GridError` listing their errors.

Ctrl-C raises :class:`GridInterrupted` (a ``KeyboardInterrupt``): runs in flight are not
recorded, Tune's own interrupt handler (and its ``Tuner.restore`` hint) is not installed, and the
same command resumes. The driver imports neither torch nor timm.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from capgate._storage import Location, location
from capgate.errors import GridError, SpecError
from capgate.grid.plan import GridPlan, plan_grid
from capgate.grid.store import Store
from capgate.schema import build_records
from capgate.spec import SYNTHETIC, RunSpec

__all__ = ["GridInterrupted", "GridPlan", "GridResult", "plan_grid", "run_grid", "resolve_storage",
           "trial_resources", "DEFAULT_STORAGE"]

log = logging.getLogger("capgate.grid")


class GridInterrupted(KeyboardInterrupt):
    """Ctrl-C during a grid: what is stored stays stored; the message says how to resume."""

DEFAULT_STORAGE = ".capgate"


@dataclass
class GridResult:
    """What a grid invocation did and where its results table is."""

    study: str
    table: Path | Location
    n_runs: int
    n_trained: int
    n_skipped: int
    counts: dict[str, int]
    failed: list[tuple[str, str]] = field(default_factory=list)
    wall_seconds: float = 0.0
    busy_seconds: float = 0.0
    stage_seconds: float = 0.0
    trials_wall_seconds: float = 0.0
    slots: int = 0
    n_older: int = 0

    @property
    def efficiency(self) -> float | None:
        """Grid efficiency of the trial phase: summed trial busy seconds over (wall seconds x
        concurrent slots); None when no trial ran."""
        if not self.trials_wall_seconds or not self.slots:
            return None
        return self.busy_seconds / (self.trials_wall_seconds * self.slots)

    def summary(self) -> str:
        c = self.counts
        lines = [f"study {self.study}: {self.n_runs} runs ({self.n_skipped} already stored, "
                 f"{self.n_trained} trained now) -> ok {c.get('ok', 0)}, diverged {c.get('diverged', 0)}, "
                 f"failed {c.get('failed', 0)}; wall {self.wall_seconds:.1f}s "
                 f"(pretraining {self.stage_seconds:.1f}s, trial busy {self.busy_seconds:.1f}s"
                 + (f", grid efficiency {self.efficiency:.2f} on {self.slots} slots" if self.efficiency else "")
                 + ")",
                 f"results table: {self.table} (+ results.csv): the current spec's {self.n_runs} runs"
                 + (f"; {self.n_older} older runs stored in the study folder are left out (`capgate report "
                    f"--all-runs STUDY_FOLDER` reads them)" if self.n_older else "")]
        for rid, err in self.failed:
            lines.append(f"  failed run {rid}: {err.strip().splitlines()[0][:300] if err else '(no error text)'}")
        return "\n".join(lines)


def resolve_storage(storage: str | Path | None) -> Location:
    """``--storage`` -> its :class:`~capgate._storage.Location` (default ``./.capgate``): a local
    path or ``file://`` URI (absolute; on a cluster, a filesystem every node mounts at the same
    path, e.g. NFS), or an object-store URI (``s3://bucket/prefix``, ``gs://...``, any pyarrow or
    fsspec filesystem) that every node reaches."""
    text = str(storage) if storage is not None else DEFAULT_STORAGE
    try:
        return location(text)
    except Exception as exc:  # pyarrow / fsspec refuse an unknown scheme or a malformed URI
        raise SpecError(f"storage {text!r} cannot be opened ({type(exc).__name__}: {exc}); give a local path, "
                        f"a file:// URI, or an object-store URI such as s3://bucket/prefix") from None


def _ray_init(address: str | None, num_cpus: int | None) -> bool:
    from capgate.grid.cluster import runtime_env

    """Start (or join) Ray quietly; returns True when this call started it."""
    for k, v in (("RAY_USAGE_STATS_ENABLED", "0"), ("RAY_AIR_NEW_OUTPUT", "0"), ("RAY_AUTH_MODE", "disabled"),
                 ("RAY_DEDUP_LOGS", "0")):
        os.environ.setdefault(k, v)
    import ray

    if ray.is_initialized():
        return False
    kw: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING, "include_dashboard": False}
    if runtime_env():  # object-storage endpoint and credentials reach every worker on every node
        kw["runtime_env"] = runtime_env()
    if address:
        ray.init(address=address, **kw)
    else:
        # AF_UNIX socket paths are limited to 107 bytes: keep Ray's temp dir short.
        tmp = tempfile.mkdtemp(prefix="cg-", dir="/tmp")
        ray.init(num_cpus=num_cpus, _temp_dir=tmp, **kw)
    return True


def _lost_records(spec: RunSpec, error: str, store: Store | None = None) -> list[dict[str, Any]]:
    """``failed`` records for a run Ray lost after all retries (no model was trained)."""
    from capgate.train.run import run_base  # light: torch is imported only when a run trains

    from capgate.grid.trial import log_tail

    tail = log_tail(store, spec) if store is not None else ""
    if tail:
        error += "\n--- last lines of the trial's log ---\n" + tail
    now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    return build_records(run_base(spec), [(e.name, e.shift) for e in spec.train_set.evals], status="failed",
                         error=error, started_at=now, ended_at=now, wall_seconds=0.0)


def run_grid(spec_path: str | Path, overrides: list[str] | tuple[str, ...] = (), storage: str | Path | None = None,
             address: str | None = None, max_concurrent: int | None = None, retries: int = 2,
             num_cpus: int | None = None, raise_on_failure: bool = True,
             extra_runs: tuple[RunSpec, ...] | list[RunSpec] = ()) -> GridResult:
    """Run every missing run of a study and write its results table (see the module doc).

    ``extra_runs``: runs beyond the spec's grid (the adaptive loop's added seeds), trained and
    collected like the others. Raises :class:`GridError` (after writing the table) when runs
    failed, unless ``raise_on_failure`` is False.
    """
    from capgate.grid.preflight import preflight

    t_start = time.monotonic()
    plan = plan_grid(spec_path, overrides)
    if extra_runs:
        known = {r.run_id for r in plan.runs}
        plan = dataclasses.replace(plan, runs=[*plan.runs, *(r for r in extra_runs if r.run_id not in known)])
    study = plan.study
    problems, _ = preflight(plan)
    if problems:
        raise SpecError(f"{spec_path}: the grid cannot start:\n" + "\n".join(f"  {p}" for p in problems))
    root = resolve_storage(storage)
    store = Store(root, study.study)
    ids = [r.run_id for r in plan.runs]
    done = store.done(ids)
    todo = [r for r in plan.runs if r.run_id not in done]
    log.info("[grid] study %s: %d runs, %d already stored, %d to train; storage %s",
             study.study, len(plan.runs), len(done), len(todo), root)
    busy = stage_seconds = trials_wall = 0.0
    slots = 0
    if todo:
        uses_world = any(r.uses_world for r in todo) or any(s.data is not None and s.data.root == SYNTHETIC
                                                            for s in plan.stages)
        if uses_world and root.local is not None:  # on object storage each node generates its own copy
            from capgate.train.pretrain import ensure_world_once

            t0 = time.monotonic()
            wr = ensure_world_once(root.local, study.world)
            log.info("[grid] synthetic world ready at %s (%.1fs)", wr, time.monotonic() - t0)
        from capgate.grid.cluster import check_nodes, resolved_roots

        roots = resolved_roots(plan)  # ${VAR}s expanded here, never in a worker's environment
        started = _ray_init(address, num_cpus)
        try:
            _check_resources(plan, started)
            n_nodes = check_nodes(root)
            log.info("[grid] storage %s is readable and writable from all %d nodes", root, n_nodes)
            stage_seconds = _run_stages(plan, todo, root, retries, roots)
            busy, trials_wall, slots = _run_trials(plan, todo, root, max_concurrent, retries, roots)
        except KeyboardInterrupt:
            # Ctrl-C: runs in flight are not recorded (the same command trains them again).
            n = len(store.done(ids))
            raise GridInterrupted(f"interrupted: {n} of {len(ids)} runs of study {study.study} are stored; "
                                  f"rerun the same command to train the rest") from None
        finally:
            if started:
                import ray

                ray.shutdown()
    # Trials Ray lost after all retries get failed records, so they show in the table.
    for r in todo:
        if store.read(r.run_id) is None:
            store.write(r.run_id, r.to_dict(), _lost_records(
                r, "the trial was lost by Ray after all retries (worker or node died); rerun the grid", store))
    table, path = store.collect(ids, study.task)
    from capgate.train.pretrain import write_stage_table  # no torch: stage.json files only

    write_stage_table(root, study.study, list(plan.stages))
    counts: dict[str, int] = {}
    failed: list[tuple[str, str]] = []
    for rid in ids:
        s = store.status(rid) or "failed"
        counts[s] = counts.get(s, 0) + 1
        if s == "failed":
            doc = store.read(rid)
            failed.append((rid, (doc["records"][0].get("error") if doc else "") or ""))
    result = GridResult(study.study, path, len(ids), len(todo), len(done), counts, failed,
                        time.monotonic() - t_start, busy, stage_seconds, trials_wall, slots,
                        len(set(store.stored_ids()) - set(ids)))
    log.info("[grid] %s finished in %.1fs: %s", study.study, result.wall_seconds,
             ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if failed and raise_on_failure:
        raise GridError(f"{len(failed)} of {len(ids)} runs failed (recorded in {path}; rerun the same "
                        f"command to retry them):\n" + "\n".join(
                            f"  {rid}: {err.strip().splitlines()[0][:300] if err else '?'}" for rid, err in failed))
    return result


def _run_stages(plan: GridPlan, todo: list[RunSpec], root: Location, retries: int, roots: dict[str, str]) -> float:
    """Train the missing pretraining stages the ``todo`` runs need, as Ray tasks."""
    import ray

    from capgate.grid.trial import train_stage
    from capgate.train.pretrain import CHECKPOINT_NAME

    by_id = {s.stage_id: s for s in plan.stages}
    needed: set[str] = set()
    for r in todo:
        sid = r.init_stage
        while sid is not None:
            needed.add(sid)
            sid = by_id[sid].parent
    missing = [s for s in plan.stages if s.stage_id in needed and not s.checkpoint
               and not (root / plan.study.study / "pretrain" / s.stage_id / CHECKPOINT_NAME).is_file()]
    if not missing:
        return 0.0
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
    errors = []
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        sid = pending.pop(ready[0])
        try:
            out = ray.get(ready[0])
            log.info("[grid] stage %s ready (%s, %.1fs) | %d stages left", sid,
                     "trained" if out["trained"] else "found", out["seconds"], len(pending))
        except Exception as exc:  # the runs needing it will fail and be recorded as failed
            errors.append(sid)
            log.error("[grid] pretraining stage %s failed: %s", sid, str(exc).splitlines()[-1][:300])
    return time.monotonic() - t0


# ---------------------------------------------------------------------------------------------
# Per-trial resources (fractional GPUs): one function turns a spec's Resources into Ray's dict.


def trial_resources(res: Any, where: str = "resources", cluster: dict[str, float] | None = None,
                    ) -> dict[str, float]:
    """Ray's resource dict for one trial (``tune.with_resources``) or one stage task from a spec's
    ``resources`` / ``stage_resources`` (``{gpu: 0.25, cpu: 2}``: four trials share one GPU).

    Ray schedules a fraction of a GPU only below 1 (above 1 it must be whole), so ``gpu: 1.5`` is
    refused here rather than by Ray mid-grid. With ``cluster`` (``ray.cluster_resources()`` of a
    local Ray this process started; an autoscaling cluster may add GPU nodes later), a GPU request
    on a cluster without GPUs is refused: its trials would wait forever.
    """
    from capgate.errors import SpecError

    cpu, gpu = float(res.cpu), float(res.gpu)
    if gpu > 1 and not gpu.is_integer():
        raise SpecError(f"spec key '{where}.gpu' = {gpu:g}: Ray gives a trial a fraction of a GPU only below 1; "
                        f"use a whole number of GPUs or a fraction such as 0.5 or 0.25 (--set {where}.gpu=1)")
    if cluster is not None and gpu > 0 and not cluster.get("GPU", 0):
        raise SpecError(f"spec key '{where}.gpu' = {gpu:g} but the Ray cluster has no GPU; run on a GPU node "
                        f"(--address) or train on CPU with --set {where}.gpu=0")
    return {"cpu": cpu, "gpu": gpu}


def _check_resources(plan: GridPlan, local: bool) -> None:
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


def _trial_name(trial: Any) -> str:
    """Short trial names (Tune's default puts the whole run spec into the folder name)."""
    return f"trial_{trial.trial_id}"


def _run_trials(plan: GridPlan, todo: list[RunSpec], root: Location, max_concurrent: int | None,
                retries: int, roots: dict[str, str]) -> tuple[float, float, int]:
    """Put the ``todo`` runs on a Tune grid axis and run them; returns summed trial busy seconds,
    the wall seconds of the trial phase and the number of concurrent slots."""
    import ray
    from ray import tune

    from capgate.grid.progress import GridProgress
    from capgate.grid.trial import run_trial

    res = plan.study.resources
    cpus_total = ray.cluster_resources().get("CPU", 1)
    gpus_total = ray.cluster_resources().get("GPU", 0)
    slots = int(cpus_total // res.cpu) if res.cpu else len(todo)
    if res.gpu:
        slots = min(slots, int(gpus_total // res.gpu)) if gpus_total else slots
    if max_concurrent:
        slots = min(slots, max_concurrent)
    slots = max(1, min(slots, len(todo)))
    progress = GridProgress(len(todo), slots, skipped=len(plan.runs) - len(todo))
    # The stage list goes once into Ray's object store, not into every trial's config.
    stages = {s.stage_id: s.to_dict() for s in plan.stages}
    trainable = tune.with_resources(tune.with_parameters(run_trial, stages=stages), trial_resources(res, "resources"))
    space = {"run": tune.grid_search([r.to_json() for r in todo]), "storage": root.portable(), "cpus": res.cpu,
             "roots": roots}
    tune_dir = root / plan.study.study / "tune"
    if root.local is not None:
        tune_storage: dict[str, Any] = {"storage_path": str(tune_dir)}
    else:  # Tune's own experiment state goes to the same object store, through the same filesystem
        tune_storage = {"storage_path": tune_dir.path, "storage_filesystem": tune_dir.fs}
    tuner = tune.Tuner(
        trainable, param_space=space,
        tune_config=tune.TuneConfig(num_samples=1, reuse_actors=True, max_concurrent_trials=max_concurrent,
                                    trial_name_creator=_trial_name, trial_dirname_creator=_trial_name),
        run_config=tune.RunConfig(
            name=f"tune-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}",
            **tune_storage, verbose=0, callbacks=[progress],
            failure_config=tune.FailureConfig(max_failures=retries, fail_fast=False)))
    log.info("[grid] starting %d trials, %d at a time", len(todo), slots)
    t0 = time.monotonic()
    # Tune's own SIGINT handler would stop quietly and print a Tuner.restore(...) hint; without it
    # Ctrl-C raises KeyboardInterrupt here and run_grid turns it into GridInterrupted.
    previous = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    try:
        results = tuner.fit()
    finally:
        if previous is None:
            os.environ.pop("TUNE_DISABLE_SIGINT_HANDLER", None)
        else:
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = previous
    wall = time.monotonic() - t0
    busy = 0.0
    for r in results:
        if r.metrics and r.metrics.get("busy_seconds") is not None:
            busy += float(r.metrics["busy_seconds"])
    return busy, wall, slots
