"""``train_one_run(spec, storage)``: one trained model, scored on every eval set.

It returns one result record (a results-table row, see ``capgate.schema``) per eval
set, and never raises for a failed run: a non-finite loss gives records with status
``diverged``, any other exception records with status ``failed`` and the error text, so one bad
cell never brings a grid down. The run folder ``<storage>/<study>/runs/<run_id>/`` gets
``spec.json`` and the per-epoch ``metrics.csv``.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import logging
import subprocess
import time
import traceback
from pathlib import Path
from typing import Any

from capgate.errors import DivergedError
from capgate.schema import build_records
from capgate.spec import PretrainSpec, RunSpec, resolve_root

__all__ = ["train_one_run", "run_dir", "provenance_versions"]

log = logging.getLogger(__name__)


def run_dir(storage: Path, spec: RunSpec) -> Path:
    """``<storage>/<study>/runs/<run_id>`` (metrics and spec of one run)."""
    return Path(storage) / spec.study / "runs" / spec.run_id


@functools.lru_cache(maxsize=1)
def _git_sha() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance_versions() -> dict[str, str]:
    """capgate, torch and timm versions and the git sha of the capgate checkout."""
    import timm
    import torch

    import capgate

    return {"capgate_version": capgate.__version__, "torch_version": torch.__version__,
            "timm_version": timm.__version__, "git_sha": _git_sha()}


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def train_one_run(spec: RunSpec, storage: Path | str, stages: dict[str, PretrainSpec] | None = None,
                  device: Any = None) -> list[dict[str, Any]]:
    """Train ``spec``'s model under the study's recipe and score it on every eval set.

    ``stages`` (stage id -> spec) lets the run train its missing pretraining stage itself
    (under the stage's file lock); normally the grid has trained them before. The seed
    controls what :func:`capgate.train.recipe.seed_everything` lists.
    """
    from capgate.models import get_rung

    storage = Path(storage)
    started, t0 = _now(), time.perf_counter()
    folder = run_dir(storage, spec)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spec.json").write_text(json.dumps({"run_id": spec.run_id, "spec": spec.to_dict()}, indent=1))
    rung = get_rung(spec.rung)
    base: dict[str, Any] = {
        "study": spec.study, "task": spec.task, "run_id": spec.run_id, "family": spec.family,
        "width": float(rung.width), "depth": float(rung.depth), "resolution": spec.recipe.resolution,
        "backbone": rung.backbone_name, "rung": rung.name, "params": None, "macs": None,
        "init": spec.init, "init_source": "none", "train_set": spec.train_set.name, "seed": spec.seed,
        "spec_hash": spec.spec_hash, "data_fingerprint": "", "class_map": str(spec.class_map or ""),
        "epochs": spec.recipe.epochs, **provenance_versions(),
    }
    scores: dict[str, dict[str, float]] = {}
    status, error = "ok", ""
    try:
        scores = _train_and_score(spec, storage, stages, device, folder, base)
    except DivergedError as exc:
        status, error = "diverged", str(exc)
        log.warning("run %s diverged: %s", spec.run_id, exc)
    except Exception as exc:  # recorded, never raised: one failed cell must not stop the grid
        status = "failed"
        error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"
        log.error("run %s failed: %s", spec.run_id, exc)
    return build_records(base, [(ev.name, ev.shift) for ev in spec.train_set.evals], status=status,
                         scores=scores, error=error, started_at=started, ended_at=_now(),
                         wall_seconds=round(time.perf_counter() - t0, 3))


def _profile(model: Any, spec: RunSpec, cache: Path, profile_model: Any) -> dict[str, Any]:
    """Params, MACs, FP32 size, latency and peak train-step memory of the fresh model, cached per
    (task, rung, classes, resolution): every seed and init of a cell shares one measurement."""
    from capgate.spec import short_hash

    path = cache / f"profile-{short_hash([spec.task, spec.rung, len(spec.classes), spec.recipe.resolution])}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    p = profile_model(model, spec.recipe.resolution)
    out = {"params": int(p.params), "macs": int(p.macs), "backbone_params": int(p.backbone_params),
           "size_bytes": int(p.size_bytes), "latency_ms": None if p.latency_ms is None else float(p.latency_ms),
           "peak_mem_bytes": None if p.peak_mem_bytes is None else int(p.peak_mem_bytes)}
    from capgate.train.pretrain import _write_json

    path.parent.mkdir(parents=True, exist_ok=True)
    _write_json(path, out)
    return out


def _device_columns(recipe: Any, device: Any) -> dict[str, Any]:
    """The device a run trains on and its precision (``recipe.amp`` resolved there)."""
    import torch

    from capgate.train.recipe import device_name, precision_name, resolve_amp

    device = torch.device(device)
    return {"device": device_name(device), "precision": precision_name(resolve_amp(recipe.amp, device))}


def _train_and_score(spec: RunSpec, storage: Path, stages: dict[str, PretrainSpec] | None, device: Any,
                     folder: Path, base: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Build data and model, initialize, train, evaluate; fills ``base``'s model columns."""
    from capgate.data import open_classification, open_detection
    from capgate.models import build_classifier, build_detector, get_rung, initialize, profile_model
    from capgate.models.checkpoint import file_sha256
    from capgate.train.fit import fit, run_peak_memory
    from capgate.train.loop import (classification_loss, detection_loss, evaluate_classification,
                                    evaluate_detection)
    from capgate.train.pretrain import ensure_stage, ensure_world_once
    from capgate.train.recipe import pick_device, seed_everything
    from capgate.train.tensors import (classification_batches, decode_classification, decode_detection,
                                       detection_batches)

    device = device or pick_device()
    r = spec.recipe
    detection = spec.task == "detection"
    uses_world = any(d.root == "synthetic" for d in [spec.train_set.data, *(e.data for e in spec.train_set.evals)])
    wr = ensure_world_once(storage, spec.world) if uses_world else None
    cache = storage / "cache"

    def open_set(ref):  # noqa: ANN001, ANN202
        root = resolve_root(ref, wr)
        if detection:
            return open_detection(ref.format, root, ref.split, ref.modality or "rgb", class_map=spec.class_map)
        return open_classification(ref.format, root, ref.split, ref.domain, list(spec.classes))

    train_ds = open_set(spec.train_set.data)
    names = tuple(train_ds.categories if detection else train_ds.classes)
    if list(names) != list(spec.classes):
        raise ValueError(f"train set {spec.train_set.name} has classes {list(names)}, the study "
                         f"declares {list(spec.classes)}; fix 'classes'/'class_map' in the spec")
    gen = seed_everything(spec.seed)  # after data loading, right before the model is created
    rung = get_rung(spec.rung)
    if detection:
        model = build_detector(rung, len(spec.classes), r.resolution)
    else:
        model = build_classifier(rung, len(spec.classes))
    base.update(_profile(model, spec, cache, profile_model))
    if spec.init_stage is not None:
        if not stages or spec.init_stage not in stages:
            from capgate.train.pretrain import CHECKPOINT_NAME, stage_dir

            ckpt = stage_dir(storage, spec.study, spec.init_stage) / CHECKPOINT_NAME
            if not ckpt.is_file():
                raise FileNotFoundError(f"pretraining stage checkpoint {ckpt} is missing; run the grid "
                                        f"(it trains stages first) instead of this run alone")
            kind = json.loads((ckpt.parent / "stage.json").read_text())["spec"]["kind"]
        else:
            st = stages[spec.init_stage]
            ckpt, kind = ensure_stage(st, storage, spec.study, stages, device).checkpoint, st.kind
        part = "detector" if (detection and kind == "detection") else "backbone"
        report = initialize(model, ckpt, part=part)
        base["init_source"] = f"{spec.init_stage} ({report.provenance})"
    elif spec.init_checkpoint is not None:
        path = Path(spec.init_checkpoint).expanduser()
        report = initialize(model, path, part="backbone")
        base["init_source"] = f"{path}#sha256:{file_sha256(path)[:16]} ({report.provenance})"

    train = (decode_detection if detection else decode_classification)(train_ds, r.resolution, cache,
                                                                       r.max_train_images)
    if detection:
        batches = lambda: detection_batches(train, r.batch_size, gen, r.hflip, r.brightness, drop_last=True)  # noqa: E731
    else:
        batches = lambda: classification_batches(train, r.batch_size, gen, r.hflip, r.brightness, drop_last=True)  # noqa: E731
    base.update(_device_columns(r, device))
    history = fit(model, batches, max(1, len(train) // r.batch_size), r, device,
                  detection_loss if detection else classification_loss, folder / "metrics.csv")
    base["epochs"] = len(history)
    base["cuda_peak_mem_bytes"] = run_peak_memory(history)

    fingerprints = {spec.train_set.name: train_ds.fingerprint()}
    scores: dict[str, dict[str, float]] = {}
    for ev in spec.train_set.evals:
        ds = open_set(ev.data)
        fingerprints[ev.name] = ds.fingerprint()
        if detection:
            data = decode_detection(ds, r.resolution, cache, r.max_eval_images)
            scores[ev.name] = evaluate_detection(model, data, ds.to_coco(), device, channels_last=r.channels_last)
        else:
            data = decode_classification(ds, r.resolution, cache, r.max_eval_images)
            scores[ev.name] = evaluate_classification(model, data, device, len(spec.classes),
                                                      channels_last=r.channels_last)
    from capgate.spec import short_hash

    base["data_fingerprint"] = short_hash(fingerprints, 16)
    return scores
