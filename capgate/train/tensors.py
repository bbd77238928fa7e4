"""Splits as training data: decoded once into memory when small, streamed from disk when not.

Tiny models train fast enough that JPEG decoding would dominate a run, so a split whose decoded
``uint8`` tensor (``N x 3 x R x R`` bytes at the recipe's square input size ``R``) fits the
memory budget (``recipe.memory_budget_mb``, default
:data:`~capgate.train.recipe.DEFAULT_MEMORY_BUDGET_MB`) is decoded once, resized and kept as one
tensor. A bigger split is streamed instead (:mod:`capgate.train.stream`): worker processes decode
each batch on the fly, so a real corpus (ImageNet train at 224 px is ~190 GB decoded) trains in
bounded memory. Both forms go through :func:`detection_batches` / :func:`classification_batches`
and give the same batches for the same generator.

The decoded tensor of an in-memory split is cached on disk (keyed by the dataset fingerprint,
the size and the count) as a raw ``.npy`` array that is **memory-mapped**, never read into
private memory: the trials of a grid that share a split on one node share its pages through the
page cache instead of each holding a copy, and a split is decoded straight into the mapped file
(no second in-memory copy while it is built).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from capgate.store.atomic import atomic_write, file_mode
from capgate.data import load_image_array
from capgate.train.stream import StreamingClassification, StreamingDetection, stream_batches, streaming_split

__all__ = ["DetectionTensors", "ClassificationTensors", "decode_detection", "decode_classification",
           "detection_batches", "classification_batches", "batch_order", "decoded_bytes", "fits_in_memory"]

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


def decoded_bytes(n: int, size: int) -> int:
    """Bytes of ``n`` images decoded to ``uint8 [3, size, size]``."""
    return int(n) * 3 * int(size) * int(size)


def fits_in_memory(n: int, size: int, memory_budget: int | None) -> bool:
    """Whether a split of ``n`` images at ``size`` is held in memory under ``memory_budget`` bytes
    (None: :data:`~capgate.train.recipe.DEFAULT_MEMORY_BUDGET_MB`)."""
    from capgate.train.recipe import DEFAULT_MEMORY_BUDGET_MB

    budget = DEFAULT_MEMORY_BUDGET_MB * 2**20 if memory_budget is None else memory_budget
    return decoded_bytes(n, size) <= budget


def _resize(arr: np.ndarray, size: int) -> torch.Tensor:
    t = torch.from_numpy(np.array(arr, dtype=np.uint8, copy=True)).permute(2, 0, 1).float().unsqueeze(0)
    t = F.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return t.squeeze(0).round().clamp(0, 255).to(torch.uint8)


def _open_images(path: Path, n: int, size: int) -> torch.Tensor | None:
    """The cached image array, memory-mapped copy-on-write (pages shared until written: never)."""
    try:
        arr = np.load(path, mmap_mode="c")
    except (OSError, ValueError) as exc:  # a corrupt cache entry is rebuilt, never trusted
        log.warning("cache file %s is unreadable (%s); decoding again", path, exc)
        return None
    if arr.shape != (n, 3, size, size) or arr.dtype != np.uint8:
        log.warning("cache file %s holds %s %s, not (%d, 3, %d, %d) uint8; decoding again",
                    path, arr.shape, arr.dtype, n, size, size)
        return None
    return torch.from_numpy(arr)


def _cached_images(cache_dir: Path | None, key: str, n: int, image: Callable[[int], np.ndarray],
                   size: int) -> torch.Tensor:
    """``[N,3,size,size]`` uint8 of ``image(0..n-1)`` (``(H, W, 3)`` RGB arrays): decoded into memory,
    or through a memory-mapped cache file."""
    if cache_dir is None:
        images = torch.empty((n, 3, size, size), dtype=torch.uint8)
        for i in range(n):
            images[i] = _resize(image(i), size)
        return images
    path = Path(cache_dir) / f"{key}.npy"
    if path.is_file():
        found = _open_images(path, n, size)
        if found is not None:
            return found
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{key}.", suffix=".npy.tmp")  # unique across writers
    os.close(fd)
    tmp = Path(name)
    try:
        arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n, 3, size, size))
        for i in range(n):
            arr[i] = _resize(image(i), size).numpy()
        arr.flush()
        del arr
        os.chmod(tmp, file_mode())  # mkstemp makes 0600: teammates on a shared store read the cache too
        os.replace(tmp, path)  # a concurrent writer's identical file may win; either is complete
    finally:
        if tmp.exists():
            tmp.unlink()
    found = _open_images(path, n, size)
    assert found is not None, f"cache file {path} unreadable right after writing it"
    return found


def _cached_meta(cache_dir: Path | None, key: str, build):  # noqa: ANN001, ANN202
    if cache_dir is None:
        return build()
    path = Path(cache_dir) / f"{key}.pt"
    if path.is_file():
        try:
            return torch.load(path, weights_only=True)
        except Exception as exc:  # a corrupt cache entry is rebuilt, never trusted
            log.warning("cache file %s is unreadable (%s); rebuilding it", path, exc)
    obj = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda fh: torch.save(obj, fh), fsync=False)  # a cache: rebuilt if lost
    return obj


def _stream_or_none(ds: Any, size: int, n: int, memory_budget: int | None, detection: bool,
                    workers: int | None, decode_device: Any) -> StreamingClassification | StreamingDetection | None:
    if fits_in_memory(n, size, memory_budget):
        return None
    log.info("%s (%s): %d images decode to %.1f GB at %d px, over the memory budget; streaming them",
             getattr(ds, "name", "split"), getattr(ds, "split", ""), n, decoded_bytes(n, size) / 1e9, size)
    return streaming_split(ds, size, n, detection, workers, decode_device)


def decode_detection(ds, size: int, cache_dir: Path | None = None, limit: int | None = None,  # noqa: ANN001
                     memory_budget: int | None = None, workers: int | None = None,
                     decode_device: Any = None) -> DetectionTensors | StreamingDetection:
    """A :class:`~capgate.data.DetectionDataset` (first ``limit`` samples) at ``size``: in memory
    when it fits ``memory_budget`` bytes, else streamed by ``workers`` processes (see the module)."""
    samples = ds.samples[:limit] if limit else ds.samples
    stream = _stream_or_none(ds, size, len(samples), memory_budget, True, workers, decode_device)
    if stream is not None:
        return stream
    key = f"det-mm-{ds.fingerprint()[:20]}-{size}-{len(samples)}"
    images = _cached_images(cache_dir, key, len(samples), lambda i: load_image_array(samples[i].image_path), size)

    def build() -> dict:
        boxes, labels, scale = [], [], []
        for s in samples:
            w, h = _decoded_size(s.image_path, s.width, s.height)
            sx, sy = size / w, size / h
            b = torch.as_tensor(np.asarray(s.boxes, dtype=np.float32).reshape(-1, 4))
            boxes.append(b * torch.tensor([sx, sy, sx, sy]))
            labels.append(torch.as_tensor(np.asarray(s.labels, dtype=np.int64).reshape(-1)))
            scale.append((sx, sy))
        return {"boxes": boxes, "labels": labels, "scale": torch.tensor(scale, dtype=torch.float64).reshape(-1, 2),
                "image_ids": torch.tensor([int(s.image_id) for s in samples], dtype=torch.int64)}

    d = _cached_meta(cache_dir, key, build)
    return DetectionTensors(images, list(d["boxes"]), list(d["labels"]), d["scale"], [int(i) for i in d["image_ids"]])


def _decoded_size(path: Path, width: int, height: int) -> tuple[int, int]:
    """The image's real size from its header (the readers check it against the annotation)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return int(im.width), int(im.height)
    except OSError:
        return width, height


def decode_classification(ds, size: int, cache_dir: Path | None = None,  # noqa: ANN001
                          limit: int | None = None, memory_budget: int | None = None, workers: int | None = None,
                          decode_device: Any = None) -> ClassificationTensors | StreamingClassification:
    """A :class:`~capgate.data.ClassificationDataset` (first ``limit`` samples) at ``size``: in memory
    when it fits ``memory_budget`` bytes, else streamed by ``workers`` processes (see the module)."""
    samples = ds.samples[:limit] if limit else ds.samples
    stream = _stream_or_none(ds, size, len(samples), memory_budget, False, workers, decode_device)
    if stream is not None:
        return stream
    key = f"cls-mm-{ds.fingerprint()[:20]}-{size}-{len(samples)}"
    images = _cached_images(cache_dir, key, len(samples), ds.image, size)  # files, or CIFAR's in-memory pixels
    d = _cached_meta(cache_dir, key, lambda: {"labels": torch.tensor([int(y) for _, y in samples], dtype=torch.int64)})
    return ClassificationTensors(images, d["labels"])


def batch_order(n: int, batch_size: int, gen: torch.Generator | None) -> list[torch.Tensor]:
    """Index batches of one epoch: a permutation drawn from ``gen`` (in order when None)."""
    idx = torch.randperm(n, generator=gen) if gen is not None else torch.arange(n)
    return [idx[i:i + batch_size] for i in range(0, n, batch_size)]


#: ITU-R BT.601 luma weights (what PIL's ``convert("L")`` uses).
_LUMA = (0.299, 0.587, 0.114)


def _photometric(x: torch.Tensor, brightness: float, gen: torch.Generator, grayscale: float = 0.0) -> torch.Tensor:
    """Brightness jitter, then (with probability ``grayscale`` per image) luminance in all three
    channels; no generator draw is made for an augmentation that is off."""
    if grayscale > 0:
        grey = (torch.rand(x.shape[0], generator=gen) < grayscale).to(x.device)
        if bool(grey.any()):
            w = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
            x[grey] = (x[grey] * w).sum(1, keepdim=True).expand(-1, 3, -1, -1)
    if brightness > 0:
        f = 1.0 + (torch.rand((x.shape[0], 1, 1, 1), generator=gen) * 2 - 1) * brightness
        x = (x * f.to(x.device)).clamp(0, 1)
    return x


def _images(data: Any, order: list[torch.Tensor]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(indices, uint8 images)`` per batch of ``order``, from memory or streamed from disk."""
    if isinstance(data, (StreamingClassification, StreamingDetection)):
        yield from stream_batches(data, order)
    else:
        for idx in order:
            yield idx, data.images[idx]


def detection_batches(data: DetectionTensors | StreamingDetection, batch_size: int, gen: torch.Generator | None = None,
                      hflip: float = 0.0, brightness: float = 0.0, drop_last: bool = False,
                      grayscale: float = 0.0,
                      ) -> Iterator[tuple[torch.Tensor, list[dict[str, torch.Tensor]], torch.Tensor]]:
    """Yield ``(images float [B,3,R,R] in [0,1], targets, indices)``; shuffled and augmented
    (horizontal flip with probability ``hflip``, brightness, grayscale) only when ``gen`` is given."""
    size = data.size if isinstance(data, StreamingDetection) else data.images.shape[-1]
    order = [b for b in batch_order(len(data), batch_size, gen) if not (drop_last and len(b) < batch_size)]
    for idx, raw in _images(data, order):
        x = raw.float().div_(255)
        boxes = [data.boxes[i].clone() for i in idx.tolist()]
        if gen is not None:
            flip = torch.rand(len(idx), generator=gen) < hflip
            for k in torch.nonzero(flip).flatten().tolist():
                x[k] = x[k].flip(-1)
                b = boxes[k]
                boxes[k] = torch.stack([size - b[:, 2], b[:, 1], size - b[:, 0], b[:, 3]], dim=1)
            x = _photometric(x, brightness, gen, grayscale)
        targets = [{"boxes": b, "labels": data.labels[i]} for b, i in zip(boxes, idx.tolist())]
        yield x, targets, idx


def classification_batches(data: ClassificationTensors | StreamingClassification, batch_size: int,
                           gen: torch.Generator | None = None, hflip: float = 0.0, brightness: float = 0.0,
                           drop_last: bool = False, grayscale: float = 0.0,
                           ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(images float [B,3,R,R] in [0,1], labels)``; augmented only when ``gen`` is given."""
    order = [b for b in batch_order(len(data), batch_size, gen) if not (drop_last and len(b) < batch_size)]
    for idx, raw in _images(data, order):
        x = raw.float().div_(255)
        if gen is not None:
            flip = (torch.rand(len(idx), generator=gen) < hflip).to(x.device)
            x[flip] = x[flip].flip(-1)
            x = _photometric(x, brightness, gen, grayscale)
        yield x, data.labels[idx]
