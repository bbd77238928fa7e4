"""Datasets decoded once into memory tensors, batched and augmented with a passed-in generator.

Tiny models train fast enough that JPEG decoding would dominate a run, so every split is
decoded once, resized to the recipe's square input size and kept as one ``uint8`` tensor.
A decoded split is cached on disk (keyed by the dataset fingerprint and the size), so the
trials of a grid that share a split decode it once between them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from capgate._atomic import atomic_write
from capgate.data import load_image_array

__all__ = ["DetectionTensors", "ClassificationTensors", "decode_detection", "decode_classification",
           "detection_batches", "classification_batches"]

log = logging.getLogger(__name__)


@dataclass
class DetectionTensors:
    """``images`` [N,3,R,R] uint8; ``boxes``/``labels`` per image in resized pixels; ``scale``
    [N,2] (sx, sy) from original to resized pixels; ``image_ids`` the dataset's COCO image ids."""

    images: torch.Tensor
    boxes: list[torch.Tensor]
    labels: list[torch.Tensor]
    scale: torch.Tensor
    image_ids: list[int]

    def __len__(self) -> int:
        return int(self.images.shape[0])


@dataclass
class ClassificationTensors:
    """``images`` [N,3,R,R] uint8 and ``labels`` [N] int64."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.images.shape[0])


def _resize(arr: np.ndarray, size: int) -> torch.Tensor:
    t = torch.from_numpy(np.array(arr, dtype=np.uint8, copy=True)).permute(2, 0, 1).float().unsqueeze(0)
    t = F.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return t.squeeze(0).round().clamp(0, 255).to(torch.uint8)


def _cached(cache_dir: Path | None, key: str, build):  # noqa: ANN001, ANN202
    if cache_dir is None:
        return build()
    path = Path(cache_dir) / f"{key}.pt"
    if path.is_file():
        try:
            return torch.load(path, weights_only=True)
        except Exception as exc:  # a corrupt cache entry is rebuilt, never trusted
            log.warning("cache file %s is unreadable (%s); decoding again", path, exc)
    obj = build()
    atomic_write(path, lambda fh: torch.save(obj, fh), fsync=False)  # a cache: rebuilt if lost
    return obj


def decode_detection(ds, size: int, cache_dir: Path | None = None, limit: int | None = None) -> DetectionTensors:  # noqa: ANN001
    """Decode a :class:`~capgate.data.DetectionDataset` (first ``limit`` samples) at ``size``."""
    samples = ds.samples[:limit] if limit else ds.samples

    def build() -> dict:
        images = torch.empty((len(samples), 3, size, size), dtype=torch.uint8)
        boxes, labels, scale = [], [], []
        for i, s in enumerate(samples):
            arr = load_image_array(s.image_path)
            images[i] = _resize(arr, size)
            sx, sy = size / arr.shape[1], size / arr.shape[0]
            b = torch.as_tensor(np.asarray(s.boxes, dtype=np.float32).reshape(-1, 4))
            boxes.append(b * torch.tensor([sx, sy, sx, sy]))
            labels.append(torch.as_tensor(np.asarray(s.labels, dtype=np.int64).reshape(-1)))
            scale.append((sx, sy))
        return {"images": images, "boxes": boxes, "labels": labels,
                "scale": torch.tensor(scale, dtype=torch.float64).reshape(-1, 2),
                "image_ids": torch.tensor([int(s.image_id) for s in samples], dtype=torch.int64)}

    d = _cached(cache_dir, f"det-{ds.fingerprint()[:20]}-{size}-{len(samples)}", build)
    return DetectionTensors(d["images"], list(d["boxes"]), list(d["labels"]), d["scale"],
                            [int(i) for i in d["image_ids"]])


def decode_classification(ds, size: int, cache_dir: Path | None = None,  # noqa: ANN001
                          limit: int | None = None) -> ClassificationTensors:
    """Decode a :class:`~capgate.data.ClassificationDataset` (first ``limit`` samples) at ``size``."""
    samples = ds.samples[:limit] if limit else ds.samples

    def build() -> dict:
        images = torch.empty((len(samples), 3, size, size), dtype=torch.uint8)
        for i, (path, _) in enumerate(samples):
            images[i] = _resize(load_image_array(path), size)
        return {"images": images, "labels": torch.tensor([int(y) for _, y in samples], dtype=torch.int64)}

    d = _cached(cache_dir, f"cls-{ds.fingerprint()[:20]}-{size}-{len(samples)}", build)
    return ClassificationTensors(d["images"], d["labels"])


def _order(n: int, batch_size: int, gen: torch.Generator | None) -> list[torch.Tensor]:
    idx = torch.randperm(n, generator=gen) if gen is not None else torch.arange(n)
    return [idx[i:i + batch_size] for i in range(0, n, batch_size)]


def _photometric(x: torch.Tensor, brightness: float, gen: torch.Generator) -> torch.Tensor:
    if brightness > 0:
        f = 1.0 + (torch.rand((x.shape[0], 1, 1, 1), generator=gen) * 2 - 1) * brightness
        x = (x * f).clamp(0, 1)
    return x


def detection_batches(data: DetectionTensors, batch_size: int, gen: torch.Generator | None = None,
                      hflip: float = 0.0, brightness: float = 0.0, drop_last: bool = False,
                      ) -> Iterator[tuple[torch.Tensor, list[dict[str, torch.Tensor]], torch.Tensor]]:
    """Yield ``(images float [B,3,R,R] in [0,1], targets, indices)``; shuffled and augmented
    (horizontal flip with probability ``hflip``, brightness) only when ``gen`` is given."""
    size = data.images.shape[-1]
    for idx in _order(len(data), batch_size, gen):
        if drop_last and len(idx) < batch_size:
            continue
        x = data.images[idx].float().div_(255)
        boxes = [data.boxes[i].clone() for i in idx.tolist()]
        if gen is not None:
            flip = torch.rand(len(idx), generator=gen) < hflip
            for k in torch.nonzero(flip).flatten().tolist():
                x[k] = x[k].flip(-1)
                b = boxes[k]
                boxes[k] = torch.stack([size - b[:, 2], b[:, 1], size - b[:, 0], b[:, 3]], dim=1)
            x = _photometric(x, brightness, gen)
        targets = [{"boxes": b, "labels": data.labels[i]} for b, i in zip(boxes, idx.tolist())]
        yield x, targets, idx


def classification_batches(data: ClassificationTensors, batch_size: int, gen: torch.Generator | None = None,
                           hflip: float = 0.0, brightness: float = 0.0, drop_last: bool = False,
                           ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(images float [B,3,R,R] in [0,1], labels)``; augmented only when ``gen`` is given."""
    for idx in _order(len(data), batch_size, gen):
        if drop_last and len(idx) < batch_size:
            continue
        x = data.images[idx].float().div_(255)
        if gen is not None:
            flip = torch.rand(len(idx), generator=gen) < hflip
            x[flip] = x[flip].flip(-1)
            x = _photometric(x, brightness, gen)
        yield x, data.labels[idx]
