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
from typing import Any

import numpy as np
from PIL import Image

__all__ = [
    "DetectionSample",
    "DetectionDataset",
    "ClassificationDataset",
    "load_image",
    "load_image_array",
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
    """An image classification split: ``samples`` are ``(image path, 0-based label)``."""

    name: str
    format: str
    root: Path
    split: str
    domain: str | None
    classes: tuple[str, ...]
    samples: list[tuple[Path, int]]
    meta: dict[str, Any] = field(default_factory=dict)
    _fingerprint: str | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.samples)

    def fingerprint(self) -> str:
        """sha256 over classes, labels, relative paths and each image's size and leading bytes."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            h.update(json.dumps([self.format, self.split, self.domain, list(self.classes)]).encode())
            for path, label in self.samples:
                _hash_file(h, path, self.root)
                h.update(int(label).to_bytes(8, "little", signed=True))
            self._fingerprint = h.hexdigest()
        return self._fingerprint


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
