"""In-memory datasets: what every reader returns and what training and COCO evaluation use.

Boxes are absolute pixel ``xyxy`` in continuous coordinates: a box covering pixel columns
``0..9`` (ten pixels) is ``x1=0, x2=10``. Readers convert each on-disk convention into this
one (VOC's 1-based inclusive ``xmax``, COCO's ``xywh``), so ``x2 - x1`` is always the width.

Images are returned as 3-channel RGB by :func:`load_image`: single-channel infrared files are
replicated to three channels so one model takes both modalities.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from capgate.errors import DataError

__all__ = [
    "DetectionSample",
    "DetectionDataset",
    "ClassificationDataset",
    "load_image",
    "load_image_array",
    "select_classes",
    "MODALITIES",
]

MODALITIES = ("rgb", "ir")

# Bytes of each image file hashed into a fingerprint: the whole of small files, the head of
# big ones (together with the exact size this catches replaced or truncated files cheaply).
_FINGERPRINT_HEAD_BYTES = 16 * 1024


@dataclass(frozen=True)
class DetectionSample:
    """One annotated image.

    ``boxes`` is ``(N, 4)`` float32 absolute pixel xyxy inside the image with positive area;
    ``labels`` is ``(N,)`` int64, 0-based indices into the dataset's ``categories``.
    """

    image_path: Path
    width: int
    height: int
    boxes: np.ndarray
    labels: np.ndarray
    image_id: int

    def __post_init__(self) -> None:
        assert self.boxes.dtype == np.float32 and self.boxes.ndim == 2 and self.boxes.shape[1] == 4
        assert self.labels.dtype == np.int64 and self.labels.shape == (self.boxes.shape[0],)


@dataclass
class DetectionDataset:
    """A detection split of one dataset in one modality, after the class map.

    ``name`` reads like ``llvip/rgb`` or ``flir/ir`` (the results table's ``train_set`` /
    ``eval_set``); ``meta`` records the variant, the class map, dropped-box counts and the
    source files.
    """

    name: str
    format: str
    root: Path
    split: str
    modality: str
    categories: tuple[str, ...]
    samples: list[DetectionSample]
    meta: dict[str, Any] = field(default_factory=dict)
    _fingerprint: str | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def tag(self) -> str:
        """Short form of variant and class map for the results table, e.g. ``flir_v2[person]``."""
        return f"{self.meta.get('variant', self.format)}[{self.meta.get('class_map', 'all')}]"

    def to_coco(self) -> dict[str, Any]:
        """COCO ground truth for pycocotools: category id = label index + 1, boxes ``xywh``,
        ``file_name`` relative to ``root`` (so ``read_coco(json, root)`` reads it back)."""
        images, annotations = [], []
        ann_id = 1
        for s in self.samples:
            images.append(
                {"id": int(s.image_id), "file_name": _relative(s.image_path, self.root), "width": s.width,
                 "height": s.height}
            )
            for box, label in zip(s.boxes.tolist(), s.labels.tolist()):
                x1, y1, x2, y2 = box
                w, h = x2 - x1, y2 - y1
                annotations.append(
                    {
                        "id": ann_id,
                        "image_id": int(s.image_id),
                        "category_id": int(label) + 1,
                        "bbox": [x1, y1, w, h],
                        "area": w * h,
                        "iscrowd": 0,
                    }
                )
                ann_id += 1
        categories = [{"id": i + 1, "name": n, "supercategory": ""} for i, n in enumerate(self.categories)]
        return {"images": images, "annotations": annotations, "categories": categories}

    def fingerprint(self) -> str:
        """sha256 over the annotations (boxes, labels, categories, relative paths) and each
        image file's size and leading bytes; cached on the object."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            h.update(json.dumps([self.format, self.split, self.modality, list(self.categories)]).encode())
            for s in self.samples:
                _hash_file(h, s.image_path, self.root)
                h.update(np.asarray([s.width, s.height, s.image_id], dtype=np.int64).tobytes())
                h.update(s.boxes.tobytes())
                h.update(s.labels.tobytes())
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    def class_counts(self) -> dict[str, int]:
        """Number of boxes per category name."""
        counts = np.zeros(len(self.categories), dtype=np.int64)
        for s in self.samples:
            counts += np.bincount(s.labels, minlength=len(self.categories))
        return {c: int(n) for c, n in zip(self.categories, counts)}


@dataclass
class ClassificationDataset:
    """An image classification split: ``samples`` are ``(source file, 0-based label)``.

    Images live in their own files (ImageNet, DomainNet, Tiny ImageNet: the source file is the
    image) or in memory when the format packs them into batch files (CIFAR): then ``pixels``
    holds them as ``(N, H, W, 3)`` uint8 RGB and each sample's source file is the batch file it
    came from. :meth:`image` reads either the same way, so training never asks which.
    """

    name: str
    format: str
    root: Path
    split: str
    domain: str | None
    classes: tuple[str, ...]
    samples: list[tuple[Path, int]]
    meta: dict[str, Any] = field(default_factory=dict)
    pixels: np.ndarray | None = field(default=None, repr=False, compare=False)
    _fingerprint: str | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.pixels is not None:
            assert self.pixels.dtype == np.uint8 and self.pixels.ndim == 4 and self.pixels.shape[3] == 3
            assert len(self.pixels) == len(self.samples)

    def __len__(self) -> int:
        return len(self.samples)

    def label(self, i: int) -> int:
        """The 0-based label of sample ``i`` (an index into ``classes``)."""
        return int(self.samples[i][1])

    def image(self, i: int) -> np.ndarray:
        """Sample ``i`` as ``(H, W, 3)`` uint8 RGB (grey files replicated to three channels)."""
        if self.pixels is not None:
            return self.pixels[i]
        return load_image_array(self.samples[i][0])

    @property
    def class_names(self) -> tuple[str, ...]:
        """Readable class names in label order (``meta["class_names"]``, e.g. Tiny ImageNet's
        ``words.txt`` entries for its wnids), else ``classes`` themselves."""
        return tuple(self.meta.get("class_names") or self.classes)

    def fingerprint(self) -> str:
        """sha256 over classes, labels, relative paths and each image's size and leading bytes
        (for in-memory ``pixels``: the pixels themselves)."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            h.update(json.dumps([self.format, self.split, self.domain, list(self.classes)]).encode())
            if self.pixels is not None:
                h.update(np.ascontiguousarray(self.pixels).tobytes())
                h.update(np.asarray([y for _, y in self.samples], dtype=np.int64).tobytes())
            else:
                for path, label in self.samples:
                    _hash_file(h, path, self.root)
                    h.update(int(label).to_bytes(8, "little", signed=True))
            self._fingerprint = h.hexdigest()
        return self._fingerprint


def select_classes(ds: ClassificationDataset, classes: int | Sequence[str] | None) -> ClassificationDataset:
    """``ds`` restricted to ``classes`` (None: all; an int k: the first k; names: those, in the
    dataset's class order), labels re-indexed 0..k-1; the subset is recorded in ``meta``."""
    if classes is None:
        return ds
    if isinstance(classes, int):
        if not 1 <= classes <= len(ds.classes):
            raise DataError(f"class subset size {classes} is out of range; fix: choose 1..{len(ds.classes)}")
        keep = ds.classes[:classes]
    else:
        unknown = [c for c in classes if c not in ds.classes]
        if unknown:
            raise DataError(f"unknown {ds.format} class(es) {unknown[:10]}; valid classes include: "
                            f"{', '.join(ds.classes[:30])}" + (" ..." if len(ds.classes) > 30 else ""))
        wanted = set(classes)
        keep = tuple(c for c in ds.classes if c in wanted)
    if keep == ds.classes:
        return ds
    new = {ds.classes.index(c): i for i, c in enumerate(keep)}
    rows = [i for i, (_, y) in enumerate(ds.samples) if y in new]
    names = ds.class_names
    meta = {**ds.meta, "class_subset": list(keep), "class_names": [names[ds.classes.index(c)] for c in keep]}
    return ClassificationDataset(
        name=ds.name, format=ds.format, root=ds.root, split=ds.split, domain=ds.domain, classes=keep,
        samples=[(ds.samples[i][0], new[ds.samples[i][1]]) for i in rows], meta=meta,
        pixels=None if ds.pixels is None else ds.pixels[rows],
    )


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _hash_file(h: Any, path: Path, root: Path) -> None:
    h.update(_relative(path, root).encode())
    size = path.stat().st_size
    h.update(size.to_bytes(8, "little"))
    with open(path, "rb") as f:
        h.update(f.read(_FINGERPRINT_HEAD_BYTES))


def load_image(path: Path | str) -> Image.Image:
    """Open an image as a 3-channel RGB PIL image (grey/infrared replicated to 3 channels)."""
    with Image.open(path) as im:
        return im.convert("RGB")


def load_image_array(path: Path | str) -> np.ndarray:
    """Open an image as an ``(H, W, 3)`` uint8 RGB array (grey/infrared replicated)."""
    return np.asarray(load_image(path), dtype=np.uint8)
