"""``train_one_epoch`` and ``evaluate_*`` as plain functions (torchvision references style).

Detection models follow torchvision semantics (train: ``model(images, targets)`` -> loss
dict; eval: one dict per image). Both detectors and classifiers take images in [0, 1] and
normalize inside, so the backbone sees the same input statistics in both tasks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
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
           "evaluate_detection", "evaluate_classification"]


@dataclass(frozen=True)
class EpochStats:
    """Mean training loss, optimizer steps, images seen and wall seconds of one epoch."""

    loss: float
    steps: int
    images: int
    seconds: float


def detection_loss(model: torch.nn.Module, batch: Any, device: torch.device) -> tuple[torch.Tensor, int]:
    """Sum of the detector's losses on one ``(images, targets, idx)`` batch, and its size."""
    x, targets, _ = batch
    x = x.to(device, non_blocking=True)
    targets = [{k: v.to(device, non_blocking=True) for k, v in t.items()} for t in targets]
    losses = model(x, targets)
    return sum(losses.values()), x.shape[0]


def classification_loss(model: torch.nn.Module, batch: Any, device: torch.device) -> tuple[torch.Tensor, int]:
    """Cross-entropy of the classifier on one ``(images, labels)`` batch, and its size."""
    x, y = batch
    x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
    return F.cross_entropy(model(x), y), x.shape[0]


def train_one_epoch(model: torch.nn.Module, batches: Iterable[Any], optimizer: torch.optim.Optimizer,
                    scheduler: torch.optim.lr_scheduler.LRScheduler | None, device: torch.device, *,
                    loss_fn=detection_loss, grad_clip: float | None = None,  # noqa: ANN001
                    max_steps: int | None = None) -> EpochStats:
    """One pass over ``batches`` (at most ``max_steps`` optimizer steps).

    Raises :class:`~capgate.errors.DivergedError` on a non-finite loss. The loss is read back
    to the host only every few steps and at the end, to keep GPU pipelines full.
    """
    model.train()
    t0 = time.perf_counter()
    total, steps, images = torch.zeros((), device=device), 0, 0
    pending: list[torch.Tensor] = []
    for batch in batches:
        if max_steps is not None and steps >= max_steps:
            break
        loss, n = loss_fn(model, batch, device)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        pending.append(loss.detach())
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
                       device: torch.device, batch_size: int = 32) -> dict[str, float]:
    """COCO mAP@[.5:.95], AP50, AP75 of ``model`` on ``data`` against COCO ground truth ``gt``
    (the dataset's ``to_coco()``, restricted to the images in ``data``)."""
    model.eval()
    dets: list[dict[str, Any]] = []
    for x, _, idx in detection_batches(data, batch_size):
        out = model(x.to(device))
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
                            num_classes: int, batch_size: int = 128) -> dict[str, float]:
    """top-1, top-5 and macro-F1 of ``model`` on ``data``."""
    model.eval()
    logits = []
    for x, _ in classification_batches(data, batch_size):
        logits.append(model(x.to(device)).float().cpu())
    if not logits:
        return {"top1": math.nan, "top5": math.nan, "macro_f1": math.nan}
    return classification_scores(torch.cat(logits).numpy(), data.labels.numpy(), num_classes)
