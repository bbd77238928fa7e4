"""Pretraining stages: trained once per content hash, reused by every trial and every restart.

``imagenet`` is a ``classification`` stage: the rung's classifier trained on an
ImageNet-layout corpus. ``imagenet_coco`` chains a ``detection`` stage after it: the rung's
detector, backbone initialized from the parent stage, trained on a COCO-layout corpus. A stage
lives in ``<storage>/<study>/pretrain/<stage_id>/`` (``checkpoint.pt``, ``stage.json``,
``metrics.csv``); an exclusive file lock makes sure two workers never train the same stage.
While it trains, its per-epoch training state (``train_state.pt``) lets a killed stage resume.

With ``remote`` (a store on object storage) ``storage`` is the node's local scratch folder: a
stage already in the store is downloaded, a trained one is uploaded (the checkpoint created only
if absent) and its training state lives in the store, so another node resumes it. The file lock
then only guards one node; two nodes may train the same stage at once (content-hashed, same
spec and seed), and the first checkpoint stored wins.

Each stage scores itself on its corpus's held-out split (:data:`QUALITY_SPLIT`, ``val``): a
classification stage records its top-1 (with chance, ``1 / classes``), a detection stage its COCO
mAP, under ``quality`` in ``stage.json``. :func:`write_stage_table` gathers the stages of a study
into ``<storage>/<study>/stages.json`` beside the results table, so a report can show whether a
stage learned anything. A corpus without that split records ``quality.value = None`` and why.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from capgate.store.atomic import atomic_write, atomic_write_json
from capgate._hash import canonical_json, short_hash
from capgate.store.locks import file_lock
from capgate.store.location import Location
from capgate.data.roots import SYNTHETIC, resolve_root
from capgate.errors import CheckpointError, SpecError
from capgate.spec.model import PretrainSpec
from capgate.train.resume import STATE_NAME
from capgate.train.task import get_task

__all__ = ["StageResult", "ensure_stage", "stage_dir", "file_lock", "world_root", "ensure_world_once",
           "CHECKPOINT_NAME", "QUALITY_SPLIT", "STAGE_TABLE", "stage_quality", "write_stage_table"]

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
#: The held-out split of a stage's corpus it is scored on (ImageNet and COCO layouts call it ``val``).
QUALITY_SPLIT = "val"
#: The study-level table of stage qualities, ``<storage>/<study>/stages.json``.
STAGE_TABLE = "stages.json"


@dataclass(frozen=True)
class StageResult:
    """Where a stage's checkpoint is, and whether this call trained it."""

    stage_id: str
    checkpoint: Path
    trained: bool
    seconds: float


def stage_dir(storage: Path, study: str, stage_id: str) -> Path:
    """``<storage>/<study>/pretrain/<stage_id>``."""
    return Path(storage) / study / "pretrain" / stage_id


def world_root(storage: Path, world: dict) -> Path:
    """Folder of the synthetic world a spec's ``world`` entry describes (shared by studies)."""
    return Path(storage) / "worlds" / short_hash(world)


def ensure_world_once(storage: Path, world: dict) -> Path:
    """Generate the synthetic world under a file lock (no-op when it is complete)."""
    from capgate.data import WorldConfig, ensure_world

    root = world_root(storage, world)  # ensure_world locks and publishes atomically itself
    ensure_world(root, config=WorldConfig.from_dict(world.get("config") or {}), seed=world.get("seed", 0))
    return root


def ensure_stage(stage: PretrainSpec, storage: Path, study: str,
                 stages: dict[str, PretrainSpec] | None = None, device=None, *,  # noqa: ANN001
                 remote: Location | None = None, roots: dict[str, str] | None = None) -> StageResult:
    """The stage's checkpoint, training it (and its parents, first) if it is not stored yet.

    ``stages`` maps stage ids to specs so that a missing parent can be trained; a stage whose
    spec names a local ``checkpoint`` file is never trained, only checked to exist. ``remote``
    and ``roots``: see the module doc and :func:`capgate.train.run.train_one_run`.
    """
    if stage.checkpoint:
        path = Path((roots or {}).get(stage.checkpoint) or os.path.expandvars(stage.checkpoint)).expanduser()
        if not path.is_file():
            raise CheckpointError(f"pretraining stage {stage.name!r} names checkpoint {path} which does "
                                  f"not exist; fix the path under pretraining.{stage.name}.checkpoint")
        return StageResult(stage.stage_id, path, False, 0.0)
    folder = stage_dir(storage, study, stage.stage_id)
    ckpt = folder / CHECKPOINT_NAME
    if ckpt.is_file():
        return StageResult(stage.stage_id, ckpt, False, 0.0)
    shared = remote / study / "pretrain" / stage.stage_id if remote is not None else None
    if shared is not None and _download(shared, folder):
        return StageResult(stage.stage_id, ckpt, False, 0.0)
    parent_ckpt = None
    if stage.parent is not None:
        if not stages or stage.parent not in stages:
            raise SpecError(f"stage {stage.stage_id} needs parent stage {stage.parent}, which is not known")
        parent_ckpt = ensure_stage(stages[stage.parent], storage, study, stages, device, remote=remote,
                                   roots=roots).checkpoint
    with file_lock(folder.parent / f".{stage.stage_id}.lock"):
        if ckpt.is_file():  # another worker trained it while we waited
            return StageResult(stage.stage_id, ckpt, False, 0.0)
        if _copy_from_other_study(stage.stage_id, storage, folder):
            return StageResult(stage.stage_id, ckpt, False, 0.0)
        t0 = time.perf_counter()
        log.info("training pretraining stage %s", stage.stage_id)
        folder.mkdir(parents=True, exist_ok=True)
        state = shared / STATE_NAME if shared is not None else folder / STATE_NAME
        info = _train_stage(stage, storage, folder, parent_ckpt, device, state, roots)
        seconds = time.perf_counter() - t0
        atomic_write_json(folder / "stage.json", {"stage_id": stage.stage_id, "spec": stage.to_dict(),
                                                  "seconds": seconds, **info})
        if shared is not None:
            _upload(folder, shared)
        log.info("pretraining stage %s done in %.1fs", stage.stage_id, seconds)
        return StageResult(stage.stage_id, ckpt, True, seconds)


def _download(shared: Location, folder: Path) -> bool:
    """Copy a stage stored on object storage into the local ``folder``; False when not stored."""
    if not (shared / "stage.json").is_file() or not (shared / CHECKPOINT_NAME).is_file():
        return False
    (shared / CHECKPOINT_NAME).download(folder / ".download.pt")
    (shared / "stage.json").download(folder / "stage.json")
    os.replace(folder / ".download.pt", folder / CHECKPOINT_NAME)  # the checkpoint last: it marks done
    log.info("pretraining stage %s downloaded from %s", folder.name, shared)
    return True


def _upload(folder: Path, shared: Location) -> None:
    """Store a trained stage: the checkpoint created only if absent (the first node's wins), then
    its ``stage.json`` and ``metrics.csv``; the training state is removed."""
    try:
        (shared / CHECKPOINT_NAME).upload(folder / CHECKPOINT_NAME, exclusive=True)
    except FileExistsError:
        log.warning("pretraining stage %s was stored meanwhile by another node; keeping the stored one "
                    "(this node's checkpoint is dropped)", folder.name)
        (shared / CHECKPOINT_NAME).download(folder / CHECKPOINT_NAME)
        return
    for name in ("metrics.csv", "stage.json"):
        if (folder / name).is_file():
            (shared / name).upload(folder / name)
    (shared / STATE_NAME).unlink()


def _copy_from_other_study(stage_id: str, storage: Path, folder: Path) -> bool:
    """Stage ids are content hashes, so the same stage trained by another study under the same
    storage is the same checkpoint: copy it in (recorded in ``stage.json``) instead of training."""
    for other in sorted(Path(storage).glob(f"*/pretrain/{stage_id}/{CHECKPOINT_NAME}")):
        src = other.parent
        if src == folder or not (src / "stage.json").is_file():
            continue
        folder.mkdir(parents=True, exist_ok=True)
        info = json.loads((src / "stage.json").read_text())
        info["copied_from"] = str(src)
        for name in ("metrics.csv",):
            if (src / name).is_file():
                shutil.copy2(src / name, folder / name)
        with other.open("rb") as src_fh:
            atomic_write(folder / CHECKPOINT_NAME, lambda fh: shutil.copyfileobj(src_fh, fh))
        atomic_write_json(folder / "stage.json", info)
        log.info("pretraining stage %s reused from %s", stage_id, src)
        return True
    return False


def _train_stage(stage: PretrainSpec, storage: Path, folder: Path, parent_ckpt: Path | None,
                 device, state: Path | Location, roots: dict[str, str] | None) -> dict:  # noqa: ANN001
    """Open -> decode -> build -> initialize from the parent -> fit -> save, for one stage."""
    from capgate.models import initialize, save_checkpoint
    from capgate.train.recipe import pick_device, seed_everything

    device = device or pick_device()
    task = get_task(stage.kind)  # a stage's kind is the task it trains
    gen = seed_everything(stage.seed)
    world = ensure_world_once(storage, stage.world) if stage.data.root == SYNTHETIC else None
    r = stage.recipe
    rung = stage.build_rung()
    ds = task.open(stage.data, resolve_root(stage.data, world, roots))
    classes = task.class_names(ds)
    data = task.decode(ds, r.resolution, Path(storage) / "cache", r.max_train_images, r, device)
    model = task.build_model(rung, len(classes), r.resolution)
    init = None
    if parent_ckpt is not None:
        init = initialize(model, parent_ckpt, part="backbone").provenance
    history = task.fit(model, data, r, gen, device, folder / "metrics.csv", state=state)
    quality = stage_quality(task, model, stage, world, classes, Path(storage) / "cache", device)
    log.info("stage %s (%s %s): %s on %s = %s", stage.stage_id, stage.name, stage.rung, quality["metric"],
             quality["split"], quality["value"])
    model.to("cpu")
    save_checkpoint(folder / CHECKPOINT_NAME, model, model.capgate_kind, rung,
                    config=json.loads(canonical_json(stage.to_dict())), stage_id=stage.stage_id,
                    data_fingerprint=ds.fingerprint(), init=init)
    if isinstance(state, Path):
        state.unlink(missing_ok=True)  # the checkpoint is final: the resume state is done
    return {"data_fingerprint": ds.fingerprint(), "classes": list(classes), "init": init,
            "final_loss": history[-1].loss if history else None, "images": len(data), "quality": quality}


def stage_quality(task, model, stage: PretrainSpec, world: Path | None, classes, cache: Path,  # noqa: ANN001
                  device) -> dict:  # noqa: ANN001
    """The trained stage model scored on its corpus's :data:`QUALITY_SPLIT`: ``{split, metric,
    value, chance, images}`` (``value`` None, with ``error``, when the split cannot be opened)."""
    import dataclasses

    r = stage.recipe
    out = {"split": QUALITY_SPLIT, "metric": task.primary_metric, "value": None,
           "chance": None if task.detection else 1.0 / max(1, len(classes)), "images": 0}
    ref = dataclasses.replace(stage.data, split=QUALITY_SPLIT)
    try:
        ds = task.open(ref, resolve_root(ref, world), None if task.detection else classes)
        if tuple(task.class_names(ds)) != tuple(classes):
            raise ValueError(f"{QUALITY_SPLIT} classes {list(task.class_names(ds))[:5]}... differ from train's")
        data = task.decode(ds, r.resolution, cache, r.max_eval_images, r, device)
    except Exception as exc:  # a corpus without a held-out split still pretrains; say why it is unscored
        out["error"] = f"{type(exc).__name__}: {exc}"[:500]
        return out
    scores = task.evaluate(model, data, ds, device, len(classes), channels_last=r.channels_last)
    out.update(value=scores.get(task.primary_metric), images=len(data), scores=scores)
    return out


def write_stage_table(storage: Path | Location, study: str, stages: list[PretrainSpec]) -> Location | None:
    """Gather the ``stage.json`` of ``stages`` into ``<storage>/<study>/stages.json`` (local folder or
    object store): one entry per stored stage with its name, kind, rung, parent, quality and seconds
    (a stage given as a ``checkpoint`` file, or not trained yet, is left out). Returns the location,
    or None when empty."""
    from capgate.store.location import location

    root = location(storage)
    rows = []
    for st in stages:
        path = root / study / "pretrain" / st.stage_id / "stage.json"
        if st.checkpoint or not path.is_file():
            continue
        info = json.loads(path.read_text())
        q = info.get("quality") or {}
        rows.append({"stage_id": st.stage_id, "name": st.name, "kind": st.kind, "family": st.family,
                     "rung": st.rung, "parent": st.parent, "images": info.get("images"),
                     "final_loss": info.get("final_loss"), "seconds": info.get("seconds"),
                     "split": q.get("split"), "metric": q.get("metric"), "value": q.get("value"),
                     "chance": q.get("chance"), "quality_error": q.get("error")})
    if not rows:
        return None
    out = root / study / STAGE_TABLE
    out.write_text(json.dumps({"study": study, "stages": rows}, indent=1) + "\n")
    return out
