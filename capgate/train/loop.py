"""``train_one_epoch`` and ``evaluate_*`` as plain functions (torchvision references style).

Detection models follow torchvision semantics (train: ``model(images, targets)`` -> loss
dict; eval: one dict per image). Both detectors and classifiers take images in [0, 1] and
normalize inside, so the backbone sees the same input statistics in both tasks.

Every tensor of a batch (images, labels, and the detector's boxes and labels) is moved to the
run's device by the loss function, ``non_blocking`` so that pinned batches copy asynchronously
(:func:`pinned_batches`, which ``fit`` applies on CUDA).
Training may run under autocast (``amp_dtype``) with a GradScaler (fp16); evaluation always runs
in fp32, so a score never depends on how the model was trained to compute.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from capgate.errors import DivergedError
from capgate.train.metrics import classification_scores, coco_map
from capgate.train.tensors import (ClassificationTensors, DetectionTensors, classification_batches,
                                   detection_batches)

__all__ = ["EpochStats", "train_one_epoch", "detection_loss", "classification_loss",
           "evaluate_detection", "evaluate_classification", "to_device", "detection_targets", "map_tensors",
           "pinned_batches"]


@dataclass(frozen=True)
class EpochStats:
    """Mean training loss, optimizer steps, images seen and wall seconds of one epoch."""

    loss: float
    steps: int
    images: int
    seconds: float
    peak_mem_bytes: int | None = None  # CUDA peak since the start of training; None off CUDA


def to_device(x: torch.Tensor, device: torch.device, channels_last: bool = False) -> torch.Tensor:
    """An image batch on ``device`` (asynchronously when pinned), channels_last when asked."""
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if channels_last and x.ndim == 4 else x


def map_tensors(obj: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """``obj`` (a batch: tensors in tuples, lists and dicts) with ``fn`` applied to every tensor."""
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, dict):
        return {k: map_tensors(v, fn) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(map_tensors(v, fn) for v in obj)
    return obj


def pinned_batches(batches: Iterable[Any]) -> Iterator[Any]:
    """``batches`` with every CPU tensor in page-locked memory (those already pinned, e.g. by a
    ``DataLoader(pin_memory=True)``, are kept), so the ``non_blocking`` copies to a CUDA device
    run asynchronously instead of stalling the host until the GPU's queue has drained."""
    pin = lambda t: t if t.device.type != "cpu" or t.is_pinned() else t.pin_memory()  # noqa: E731
    for batch in batches:
        yield map_tensors(batch, pin)


def detection_targets(targets: list[dict[str, torch.Tensor]], device: torch.device) -> list[dict[str, torch.Tensor]]:
    """Every tensor of every target (boxes, labels) on ``device``."""
    return [{k: v.to(device, non_blocking=True) for k, v in t.items()} for t in targets]


def detection_loss(model: torch.nn.Module, batch: Any, device: torch.device, channels_last: bool = False,
                   ) -> tuple[torch.Tensor, int]:
    """Sum of the detector's losses on one ``(images, targets, idx)`` batch, and its size."""
    x, targets, _ = batch
    x = to_device(x, device, channels_last)
    losses = model(x, detection_targets(targets, device))
    return sum(losses.values()), x.shape[0]


def classification_loss(model: torch.nn.Module, batch: Any, device: torch.device, channels_last: bool = False,
                        ) -> tuple[torch.Tensor, int]:
    """Cross-entropy of the classifier on one ``(images, labels)`` batch, and its size (the loss is
    taken in fp32 even under autocast)."""
    x, y = batch
    x, y = to_device(x, device, channels_last), y.to(device, non_blocking=True)
    return F.cross_entropy(model(x).float(), y), x.shape[0]


def train_one_epoch(model: torch.nn.Module, batches: Iterable[Any], optimizer: torch.optim.Optimizer,
                    scheduler: torch.optim.lr_scheduler.LRScheduler | None, device: torch.device, *,
                    loss_fn=detection_loss, grad_clip: float | None = None,  # noqa: ANN001
                    max_steps: int | None = None, amp_dtype: torch.dtype | None = None,
                    scaler: torch.amp.GradScaler | None = None) -> EpochStats:
    """One pass over ``batches`` (at most ``max_steps`` optimizer steps).

    ``amp_dtype`` runs the forward pass and loss under ``torch.autocast`` (None: fp32);
    ``scaler`` scales the loss for fp16 (gradients are unscaled before clipping, and a step
    with overflowing gradients is skipped by the scaler). Raises
    :class:`~capgate.errors.DivergedError` on a non-finite loss. The loss is read back to the
    host only every few steps and at the end, to keep GPU pipelines full.
    """
    device = torch.device(device)
    model.train()
    t0 = time.perf_counter()
    total, steps, images = torch.zeros((), device=device), 0, 0
    pending: list[torch.Tensor] = []
    for batch in batches:
        if max_steps is not None and steps >= max_steps:
            break
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            loss, n = loss_fn(model, batch, device)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            if grad_clip:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            if grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
        if scheduler is not None:
            scheduler.step()
        pending.append(loss.detach().float())
        steps += 1
        images += n
        if len(pending) >= 8:
            total += _check_finite(pending, steps)
            pending = []
    if pending:
        total += _check_finite(pending, steps)
    mean = float(total) / max(1, steps)
    return EpochStats(loss=mean, steps=steps, images=images, seconds=time.perf_counter() - t0)


def _check_finite(losses: list[torch.Tensor], step: int) -> torch.Tensor:
    s = torch.stack(losses)
    if not bool(torch.isfinite(s).all()):
        bad = float(s[~torch.isfinite(s)][0])
        raise DivergedError(f"training loss became {bad} by step {step}; lower the learning rate "
                            f"(recipe.lr) or enable gradient clipping (recipe.grad_clip)")
    return s.sum()


@torch.no_grad()
def evaluate_detection(model: torch.nn.Module, data: DetectionTensors, gt: dict[str, Any],
                       device: torch.device, batch_size: int = 32, channels_last: bool = False,
                       ) -> dict[str, float]:
    """COCO mAP@[.5:.95], AP50, AP75 of ``model`` on ``data`` against COCO ground truth ``gt``
    (the dataset's ``to_coco()``, restricted to the images in ``data``)."""
    model.eval()
    dets: list[dict[str, Any]] = []
    for x, _, idx in detection_batches(data, batch_size):
        out = model(to_device(x, device, channels_last))
        for o, i in zip(out, idx.tolist()):
            if len(o["boxes"]) == 0:
                continue
            sx, sy = data.scale[i].tolist()
            b = o["boxes"].double().cpu().numpy() / np.array([sx, sy, sx, sy])
            for box, score, label in zip(b, o["scores"].tolist(), o["labels"].tolist()):
                dets.append({"image_id": data.image_ids[i], "category_id": int(label) + 1,
                             "bbox": [float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])],
                             "score": float(score)})
    keep = set(data.image_ids)
    gt = {**gt, "images": [im for im in gt["images"] if im["id"] in keep],
          "annotations": [a for a in gt["annotations"] if a["image_id"] in keep]}
    return coco_map(gt, dets)


@torch.no_grad()
def evaluate_classification(model: torch.nn.Module, data: ClassificationTensors, device: torch.device,
                            num_classes: int, batch_size: int = 128, channels_last: bool = False,
                            ) -> dict[str, float]:
    """top-1, top-5 and macro-F1 of ``model`` on ``data``."""
    model.eval()
    logits = []
    for x, _ in classification_batches(data, batch_size):
        logits.append(model(to_device(x, device, channels_last)).float().cpu())
    if not logits:
        return {"top1": math.nan, "top5": math.nan, "macro_f1": math.nan}
    return classification_scores(torch.cat(logits).numpy(), data.labels.numpy(), num_classes)
