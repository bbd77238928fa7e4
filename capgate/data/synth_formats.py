"""Writing synthetic images and annotations in the real datasets' on-disk formats.

Everything written here is byte-deterministic: JPEGs with fixed PIL settings (quality,
4:2:0 subsampling, no optimisation, no EXIF), JSON with sorted keys and fixed separators,
VOC XML from a fixed template.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
from PIL import Image

from capgate.data.llvip import xyxy_to_llvip

__all__ = ["write_jpeg", "write_json", "write_voc", "coco_image", "coco_annotation", "JPEG_SETTINGS"]

JPEG_SETTINGS = {"format": "JPEG", "quality": 90, "subsampling": 2, "optimize": False, "progressive": False}


def write_jpeg(path: Path, array: np.ndarray, quality: int = 90) -> None:
    """Write ``(H, W, 3)`` RGB or ``(H, W)`` single-channel uint8 as a deterministic JPEG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "L" if array.ndim == 2 else "RGB"
    Image.fromarray(array, mode=mode).save(path, **{**JPEG_SETTINGS, "quality": quality})


def write_json(path: Path, obj: Any) -> None:
    """Write JSON with sorted keys and fixed separators (same object, same bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, sort_keys=True, separators=(",", ":")) + "\n", encoding="utf-8")


def write_voc(path: Path, filename: str, width: int, height: int, objects: list[tuple[str, tuple]]) -> None:
    """One LLVIP XML as labelImg writes it: ``objects`` are (name, continuous integer xyxy) written in the
    LLVIP authors' convention (corners as they are, width ``xmax - xmin``; see :mod:`capgate.data.llvip`)."""
    lines = [
        "<annotation>",
        "  <folder>LLVIP</folder>",
        f"  <filename>{escape(filename)}</filename>",
        "  <source><database>capgate synthetic tiny world</database></source>",
        f"  <size><width>{width}</width><height>{height}</height><depth>3</depth></size>",
        "  <segmented>0</segmented>",
    ]
    for name, box in objects:
        xmin, ymin, xmax, ymax = xyxy_to_llvip(*box)
        lines += [
            "  <object>",
            f"    <name>{escape(name)}</name>",
            "    <pose>Unspecified</pose><truncated>0</truncated><difficult>0</difficult>",
            f"    <bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox>",
            "  </object>",
        ]
    lines.append("</annotation>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def coco_image(image_id: int, file_name: str, width: int, height: int) -> dict[str, Any]:
    return {"id": image_id, "file_name": file_name, "width": width, "height": height}


def coco_annotation(ann_id: int, image_id: int, category_id: int, box: tuple) -> dict[str, Any]:
    """A COCO annotation from continuous integer xyxy (bbox written as xywh)."""
    x1, y1, x2, y2 = (int(v) for v in box)
    return {
        "id": ann_id, "image_id": image_id, "category_id": category_id,
        "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0,
    }
