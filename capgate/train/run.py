"""``train_one_run(spec, storage)``: one trained model, scored on every eval set.

It returns one result record (a results-table row, see ``capgate.schema``) per eval
set, and never raises for a failed run: a non-finite loss gives records with status
``diverged``, any other exception records with status ``failed`` and the error text, so one bad
cell never brings a grid down. The run folder ``<storage>/<study>/runs/<run_id>/`` gets
``spec.json``, the per-epoch ``metrics.csv`` and, while it trains, the per-epoch training state
it resumes from after a kill (:mod:`capgate.train.resume`). With ``remote`` (object storage),
``storage`` is a local scratch folder (world, caches) and those files go to ``remote``.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import logging
import subprocess
import time
import traceback
from importlib import metadata
from pathlib import Path
from typing import Any

from capgate.store.atomic import atomic_write_json
from capgate._hash import short_hash
from capgate.store.location import Location
from capgate.data.roots import resolve_root
from capgate.errors import DivergedError
from capgate.schema import build_records
from capgate.spec.model import PretrainSpec, RunSpec
from capgate.train.task import Task, get_task

__all__ = ["train_one_run", "run_dir", "provenance_versions", "run_base", "state_target"]

log = logging.getLogger(__name__)


def run_dir(storage: Path, spec: RunSpec) -> Path:
    """``<storage>/<study>/runs/<run_id>`` (metrics and spec of one run)."""
    return Path(storage) / spec.study / "runs" / spec.run_id


def state_target(storage: Path, spec: RunSpec, remote: Location | None = None) -> Path | Location:
    """Where a run's per-epoch training state is saved (removed once its records are stored):
    in the run folder of the store (``remote`` when the store is object storage)."""
    from capgate.train.resume import STATE_NAME

    if remote is not None:
        return remote / spec.study / "runs" / spec.run_id / STATE_NAME
    return run_dir(storage, spec) / STATE_NAME


@functools.lru_cache(maxsize=1)
def _git_sha() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def provenance_versions(imported: bool = False) -> dict[str, str | None]:
    """capgate, torch and timm versions and the git sha of the capgate checkout. ``imported``
    reads torch's and timm's own ``__version__`` (with the build suffix, e.g. ``+cu130``) and
    imports them; otherwise the installed metadata is read and torch is not imported."""
    import capgate

    if imported:
        import timm
        import torch

        torch_version, timm_version = torch.__version__, timm.__version__
    else:
        torch_version, timm_version = _version("torch"), _version("timm")
    return {"capgate_version": capgate.__version__, "torch_version": torch_version,
            "timm_version": timm_version, "git_sha": _git_sha()}


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def run_base(spec: RunSpec, imported: bool = False, stages: dict[str, PretrainSpec] | None = None) -> dict[str, Any]:
    """The columns a run's records share before anything is trained (model columns unknown);
    ``imported`` as in :func:`provenance_versions`. ``stage_seed`` is the run's pretraining replicate,
    None without a stage chain or when ``stages`` shows its last stage is a checkpoint file."""
    rung = spec.build_rung()
    return {
        "study": spec.study, "task": spec.task, "run_id": spec.run_id, "family": spec.family,
        "width": float(rung.width), "depth": float(rung.depth), "resolution": spec.recipe.resolution,
        "backbone": rung.backbone_name, "rung": rung.name, "params": None, "macs": None,
        "init": spec.init, "init_source": spec.init_stage or "none", "train_set": spec.train_set.name,
        "seed": spec.seed, "stage_seed": _stage_seed(spec, stages), "spec_hash": spec.spec_hash,
        "data_fingerprint": None,
        "class_map": str(spec.class_map or ""), "epochs": spec.recipe.epochs, **provenance_versions(imported),
    }


def _stage_seed(spec: RunSpec, stages: dict[str, PretrainSpec] | None) -> int | None:
    st = (stages or {}).get(spec.init_stage) if spec.init_stage is not None else None
    return None if st is not None and st.checkpoint else spec.stage_seed


def train_one_run(spec: RunSpec, storage: Path | str, stages: dict[str, PretrainSpec] | None = None,
                  device: Any = None, *, remote: Location | None = None,
                  roots: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Train ``spec``'s model under the study's recipe and score it on every eval set.

    ``stages`` (stage id -> spec) lets the run train its missing pretraining stage itself
    (under the stage's file lock); normally the grid has trained them before. The seed
    controls what :func:`capgate.train.recipe.seed_everything` lists. ``remote``: the store on
    object storage (``storage`` is then a local scratch folder); ``roots``: dataset roots the
    driver resolved (see :func:`capgate.data.roots.resolve_root`).
    """
    storage = Path(storage)
    started, t0 = _now(), time.perf_counter()
    folder = run_dir(storage, spec)
    atomic_write_json(folder / "spec.json", {"run_id": spec.run_id, "spec": spec.to_dict()})
    base = run_base(spec, imported=True, stages=stages)
    base["init_source"] = "none"
    scores: dict[str, dict[str, float]] = {}
    status, error = "ok", ""
    try:
        scores = _train_and_score(spec, storage, stages, device, folder, base, remote, roots)
    except DivergedError as exc:
        status, error = "diverged", str(exc)
        log.warning("run %s diverged: %s", spec.run_id, exc)
    except Exception as exc:  # recorded, never raised: one failed cell must not stop the grid
        status = "failed"
        error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"
        log.error("run %s failed: %s", spec.run_id, exc)
    if remote is not None:  # the run folder's files go to the store every node reads
        for name in ("spec.json", "metrics.csv"):
            if (folder / name).is_file():
                (remote / spec.study / "runs" / spec.run_id / name).upload(folder / name)
    return build_records(base, [(ev.name, ev.shift) for ev in spec.train_set.evals], status=status,
                         scores=scores, error=error, started_at=started, ended_at=_now(),
                         wall_seconds=round(time.perf_counter() - t0, 3))


def _profile(model: Any, spec: RunSpec, cache: Path) -> dict[str, Any]:
    """Params, MACs, FP32 size, latency and peak train-step memory of the fresh model, cached per
    (task, rung, classes, resolution): every seed and init of a cell shares one measurement."""
    from capgate.models import profile_model

    rung = spec.build_rung()
    key = [spec.task, spec.rung, len(spec.classes), spec.recipe.resolution]
    if spec.rung_def is not None:
        key.append(rung.to_dict())
    path = cache / f"profile-{short_hash(key)}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    p = profile_model(model, spec.recipe.resolution)
    out = {"params": int(p.params), "macs": int(p.macs), "backbone_params": int(p.backbone_params),
           "size_bytes": int(p.size_bytes), "latency_ms": None if p.latency_ms is None else float(p.latency_ms),
           "peak_mem_bytes": None if p.peak_mem_bytes is None else int(p.peak_mem_bytes)}
    atomic_write_json(path, out)
    return out


def _device_columns(recipe: Any, device: Any) -> dict[str, Any]:
    """The device a run trains on and its precision (``recipe.amp`` resolved there)."""
    import torch

    from capgate.train.recipe import device_name, precision_name, resolve_amp

    device = torch.device(device)
    return {"device": device_name(device), "precision": precision_name(resolve_amp(recipe.amp, device))}


def _initialize(model: Any, task: Task, spec: RunSpec, storage: Path, stages: dict[str, PretrainSpec] | None,
                device: Any, remote: Location | None = None, roots: dict[str, str] | None = None) -> str:
    """Load the run's initial weights into ``model``; returns the ``init_source`` text."""
    from capgate.models import initialize
    from capgate.models.checkpoint import file_sha256
    from capgate.train.pretrain import CHECKPOINT_NAME, ensure_stage, stage_dir

    if spec.init_stage is not None:
        if not stages or spec.init_stage not in stages:
            ckpt = stage_dir(storage, spec.study, spec.init_stage) / CHECKPOINT_NAME
            if not ckpt.is_file():
                raise FileNotFoundError(f"pretraining stage checkpoint {ckpt} is missing; run the grid "
                                        f"(capgate run-grid trains stages first) instead of this run alone")
            kind = json.loads((ckpt.parent / "stage.json").read_text())["spec"]["kind"]
        else:
            st = stages[spec.init_stage]
            ckpt = ensure_stage(st, storage, spec.study, stages, device, remote=remote, roots=roots).checkpoint
            kind = st.kind
        report = initialize(model, ckpt, part=task.init_part(kind))
        return f"{spec.init_stage} ({report.provenance})"
    if spec.init_checkpoint is not None:
        path = Path((roots or {}).get(spec.init_checkpoint) or spec.init_checkpoint).expanduser()
        report = initialize(model, path, part="backbone")
        return f"{path}#sha256:{file_sha256(path)[:16]} ({report.provenance})"
    return "none"


def _train_and_score(spec: RunSpec, storage: Path, stages: dict[str, PretrainSpec] | None, device: Any,
                     folder: Path, base: dict[str, Any], remote: Location | None = None,
                     roots: dict[str, str] | None = None) -> dict[str, dict[str, float]]:
    """Open, decode, build, initialize, fit, evaluate; fills ``base``'s model columns."""
    from capgate.train.fit import run_peak_memory
    from capgate.train.pretrain import ensure_world_once
    from capgate.train.recipe import pick_device, seed_everything

    device = device or pick_device()
    task = get_task(spec.task)
    r = spec.recipe
    world = ensure_world_once(storage, spec.world) if spec.uses_world else None
    cache = storage / "cache"

    def open_set(ref: Any) -> Any:
        return task.open(ref, resolve_root(ref, world, roots), spec.classes, spec.class_map)

    train_ds = open_set(spec.train_set.data)
    names = task.class_names(train_ds)
    if list(names) != list(spec.classes):
        raise ValueError(f"train set {spec.train_set.name} has classes {list(names)}, the spec "
                         f"declares {list(spec.classes)} for it; fix its 'classes' (or the study's, or "
                         f"'class_map') in the spec")
    gen = seed_everything(spec.seed)  # after data loading, right before the model is created
    model = task.build_model(spec.build_rung(), len(spec.classes), r.resolution)
    base.update(_profile(model, spec, cache))
    base["init_source"] = _initialize(model, task, spec, storage, stages, device, remote, roots)
    train = task.decode(train_ds, r.resolution, cache, r.max_train_images, r, device)
    base.update(_device_columns(r, device))
    history = task.fit(model, train, r, gen, device, folder / "metrics.csv", state=state_target(storage, spec, remote))
    base["epochs"] = len(history)
    base["cuda_peak_mem_bytes"] = run_peak_memory(history)

    fingerprints = {spec.train_set.name: train_ds.fingerprint()}
    dropped = _dropped(train_ds)
    scores: dict[str, dict[str, float]] = {}
    for ev in spec.train_set.evals:
        ds = open_set(ev.data)
        fingerprints[ev.name] = ds.fingerprint()
        dropped = None if dropped is None or _dropped(ds) is None else dropped + _dropped(ds)
        data = task.decode(ds, r.resolution, cache, r.max_eval_images, r, device)
        scores[ev.name] = task.evaluate(model, data, ds, device, len(spec.classes), channels_last=r.channels_last)
    base["data_fingerprint"] = short_hash(fingerprints, 16)
    base["dropped_boxes"] = dropped
    return scores


def _dropped(ds: Any) -> int | None:
    """Invalid boxes a reader dropped (``drop_invalid: true``) from one opened split; None if unknown."""
    n = getattr(ds, "meta", {}).get("dropped_boxes")
    return None if n is None else int(n)
