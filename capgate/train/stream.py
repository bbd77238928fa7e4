"""Streaming splits for real corpora: decoded on the fly by DataLoader worker processes.

A split whose decoded ``uint8`` tensor (``N x 3 x R x R`` bytes) would exceed the recipe's
memory budget is not decoded up front (ImageNet train at 224 px is ~190 GB); it becomes a
:class:`StreamingClassification` / :class:`StreamingDetection` holding only paths, labels and
boxes. Each epoch a ``torch.utils.data.DataLoader`` with worker processes reads and decodes the
batch's files (``torchvision.io.decode_jpeg``; PIL for other formats and for the JPEGs
libjpeg cannot read, such as ImageNet's few CMYK files) and resizes them exactly as the
in-memory path does (bilinear, antialiased, to ``R x R``). With a ``decode_device`` (a CUDA
device: nvJPEG) the workers only read the files and the main process decodes each batch in one
batched ``decode_jpeg`` call on that device, and resizes it there.

Batches are the same as the in-memory path's: the batch order is drawn from the same generator
in the main process (:func:`capgate.train.tensors.batch_order`), and flips and brightness are
applied there too, so a split gives the same training sequence whichever path holds it (up to
the decoders' rounding). Memory stays bounded by ``workers x prefetch x batch``, independent of
the split's size.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["StreamingClassification", "StreamingDetection", "default_workers", "stream_batches",
           "streaming_split", "decode_file", "read_bytes", "path_array"]

log = logging.getLogger(__name__)
_JPEG = (".jpg", ".jpeg")


def default_workers() -> int:
    """Worker processes for a streaming split: the CPUs this process is meant to use, one left for
    the training loop, at least 1 and at most 8. Those CPUs are ``OMP_NUM_THREADS`` when set (Ray
    sets it to a trial's CPU reservation, so concurrent trials do not oversubscribe a node), else
    the CPUs the process may run on."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        n = int(env)
    else:
        try:
            n = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            n = os.cpu_count() or 1
    return max(1, min(8, n - 1))


def read_bytes(path: Path) -> torch.Tensor:
    """A file's bytes as a 1-D uint8 tensor (what ``decode_jpeg`` takes)."""
    with open(path, "rb") as f:
        return torch.frombuffer(bytearray(f.read()), dtype=torch.uint8)


def _decode_pil(path: Path) -> torch.Tensor:
    from capgate.data import load_image_array

    return torch.from_numpy(np.array(load_image_array(path), dtype=np.uint8, copy=True)).permute(2, 0, 1)


def decode_file(path: Path) -> torch.Tensor:
    """``[3, H, W]`` uint8 RGB of an image file: ``decode_jpeg`` for JPEGs, PIL otherwise or when
    ``decode_jpeg`` refuses the file (CMYK, progressive oddities)."""
    if Path(path).suffix.lower() in _JPEG:
        from torchvision.io import ImageReadMode, decode_jpeg

        try:
            with warnings.catch_warnings():  # torchvision 0.29 deprecates its image io in favour of TorchCodec
                warnings.simplefilter("ignore", DeprecationWarning)
                return decode_jpeg(read_bytes(path), mode=ImageReadMode.RGB)
        except RuntimeError:
            pass
    return _decode_pil(path)


def _fit(img: torch.Tensor, size: int) -> torch.Tensor:
    """Resize ``[3, H, W]`` uint8 to ``[3, size, size]`` uint8 as :func:`capgate.train.tensors._resize` does."""
    import torch.nn.functional as F

    t = img.float().unsqueeze(0)
    t = F.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return t.squeeze(0).round().clamp(0, 255).to(torch.uint8)


def path_array(paths: list[Path] | list[str]) -> np.ndarray:
    """File paths as one fixed-width bytes array: forked DataLoader workers read it without
    touching (and so copying) a Python object per file, which a list of paths would make each
    worker do (PyTorch issue #13246: worker memory growing with the dataset)."""
    return np.array([os.fsencode(p) for p in paths], dtype=np.bytes_)


@dataclass
class StreamingClassification:
    """A classification split read from disk each epoch: ``paths`` (:func:`path_array`) and
    ``labels`` [N] int64; or, for a format that packs its images into batch files (CIFAR), resized
    from the reader's in-memory ``pixels`` ``(N, H, W, 3)`` uint8 each epoch (``paths``: the batch files)."""

    paths: np.ndarray
    labels: torch.Tensor
    size: int
    workers: int = field(default_factory=default_workers)
    decode_device: torch.device | None = None
    prefetch: int = 2
    pixels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.paths)


@dataclass
class StreamingDetection:
    """A detection split read from disk each epoch: ``paths`` (:func:`path_array`); ``boxes``/``labels``
    per image in resized pixels, ``scale`` [N,2] (sx, sy) from the annotated image size to ``size``,
    ``image_ids`` the COCO ids."""

    paths: np.ndarray
    boxes: list[torch.Tensor]
    labels: list[torch.Tensor]
    scale: torch.Tensor
    image_ids: list[int]
    size: int
    workers: int = field(default_factory=default_workers)
    decode_device: torch.device | None = None
    prefetch: int = 2

    def __len__(self) -> int:
        return len(self.paths)


class _Files(torch.utils.data.Dataset):
    """Item i: the decoded, resized ``[3, R, R]`` uint8 image, or its raw bytes for GPU decoding."""

    def __init__(self, paths: np.ndarray, size: int, raw: bool, pixels: np.ndarray | None = None) -> None:
        self.paths, self.size, self.raw, self.pixels = paths, size, raw, pixels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor]:
        if self.pixels is not None:  # already decoded: [3, H, W] passes _gpu_decode untouched
            img = torch.from_numpy(np.array(self.pixels[i], dtype=np.uint8, copy=True)).permute(2, 0, 1)
            return i, img if self.raw else _fit(img, self.size)
        p = Path(os.fsdecode(self.paths[i]))
        if self.raw:
            return i, read_bytes(p) if p.suffix.lower() in _JPEG else _decode_pil(p)
        return i, _fit(decode_file(p), self.size)


def _collate(items: list[tuple[int, torch.Tensor]]) -> tuple[list[int], torch.Tensor | list[torch.Tensor]]:
    """Indices and the batch: one stacked tensor (one shared-memory block back from the worker), or
    the list of raw file bytes for GPU decoding."""
    tensors = [t for _, t in items]
    same = all(t.ndim == 3 and t.shape == tensors[0].shape for t in tensors)
    return [i for i, _ in items], torch.stack(tensors) if same else tensors


def _gpu_decode(blobs: list[torch.Tensor], size: int, device: torch.device) -> torch.Tensor:
    """One batched ``decode_jpeg`` on ``device`` (already-decoded non-JPEG images pass through);
    a JPEG the batched call refuses makes the batch fall back to one PIL decode per image."""
    from torchvision.io import ImageReadMode, decode_jpeg

    jpeg = [k for k, b in enumerate(blobs) if b.ndim == 1]
    out: list[torch.Tensor | None] = [None if b.ndim == 1 else b.to(device) for b in blobs]
    if jpeg:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                decoded = decode_jpeg([blobs[k] for k in jpeg], mode=ImageReadMode.RGB, device=device)
            except RuntimeError:  # e.g. a CMYK JPEG in the batch
                decoded = [_pil_bytes(blobs[k]).to(device) for k in jpeg]
        for k, img in zip(jpeg, decoded):
            out[k] = img
    return torch.stack([_fit(img, size) for img in out])  # type: ignore[arg-type]


def _pil_bytes(blob: torch.Tensor) -> torch.Tensor:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(blob.numpy().tobytes())) as im:
        return torch.from_numpy(np.array(im.convert("RGB"), dtype=np.uint8, copy=True)).permute(2, 0, 1)


def stream_batches(data: StreamingClassification | StreamingDetection,
                   order: list[torch.Tensor]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(indices, uint8 images [B,3,R,R])`` for each index batch of ``order``, decoded by workers, or
    read by them and decoded batched on ``data.decode_device`` when one is set."""
    gpu = data.decode_device is not None
    loader = torch.utils.data.DataLoader(
        _Files(data.paths, data.size, raw=gpu, pixels=getattr(data, "pixels", None)), batch_sampler=[b.tolist() for b in order],
        num_workers=data.workers, collate_fn=_collate, pin_memory=False,
        prefetch_factor=data.prefetch if data.workers > 0 else None, persistent_workers=False,
    )
    for idx, imgs in loader:
        x = _gpu_decode(list(imgs), data.size, torch.device(data.decode_device)) if gpu else imgs
        yield torch.as_tensor(idx, dtype=torch.int64), x


def streaming_split(ds: Any, size: int, limit: int | None, detection: bool, workers: int | None = None,
                    decode_device: Any = None) -> StreamingClassification | StreamingDetection:
    """The streaming form of a reader's dataset (first ``limit`` samples); nothing is decoded."""
    samples = ds.samples[:limit] if limit else ds.samples
    w = default_workers() if workers is None else workers
    dev = None if decode_device is None else torch.device(decode_device)
    if not detection:
        pixels = getattr(ds, "pixels", None)
        return StreamingClassification(path_array([p for p, _ in samples]),
                                       torch.tensor([int(y) for _, y in samples], dtype=torch.int64), size, w, dev,
                                       pixels=None if pixels is None else pixels[:len(samples)])
    boxes, labels, scale = [], [], []
    for s in samples:
        sx, sy = size / s.width, size / s.height
        b = torch.as_tensor(np.asarray(s.boxes, dtype=np.float32).reshape(-1, 4))
        boxes.append(b * torch.tensor([sx, sy, sx, sy]))
        labels.append(torch.as_tensor(np.asarray(s.labels, dtype=np.int64).reshape(-1)))
        scale.append((sx, sy))
    return StreamingDetection(path_array([s.image_path for s in samples]), boxes, labels,
                              torch.tensor(scale, dtype=torch.float64).reshape(-1, 2),
                              [int(s.image_id) for s in samples], size, w, dev)
