"""LLVIP: paired visible/infrared surveillance images with one VOC-style XML per pair.

Layout (https://github.com/bupt-ai-cz/LLVIP)::

    Annotations/<name>.xml          one per pair, shared by both modalities
    visible/{train,test}/<name>.jpg
    infrared/{train,test}/<name>.jpg

The split is given by the image folder. **Box convention: the LLVIP authors'.** The XMLs were
written by labelImg (integer pixel corners, the top-left clamped to 1), and the authors' own
converters (``toolbox/voc2coco.py``: ``w = xmax - xmin``; ``toolbox/xml2txt_yolov5.py``: width
``(xmax - xmin) / 1280``) read ``<xmin>..<xmax>`` as continuous corners. capgate does the same:
an XML box ``(xmin, ymin, xmax, ymax)`` is the xyxy box ``(xmin, ymin, xmax, ymax)``, width
``xmax - xmin``; :func:`llvip_box` and :func:`xyxy_to_llvip` are exact inverses on integer
boxes. (Reading them as 1-based inclusive VOC corners would grow every box by one pixel and
move its centre, and turn a zero-area box, ``xmin == xmax``, into a one-pixel box.) Zero-area
boxes occur in the real archive: they are problems naming the XML, or dropped and counted with
``drop_invalid=True``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

from capgate.data.classmap import ClassMap, resolve_class_map
from capgate.data.coco import image_size
from capgate.data.problems import BoxCheck, ProblemLog, check_boxes, log_dropped
from capgate.data.types import DetectionDataset, DetectionSample
from capgate.errors import DataError

__all__ = ["read_llvip", "parse_voc_xml", "llvip_box", "xyxy_to_llvip", "LLVIP_SPLITS", "LLVIP_FOLDERS", "IMAGE_SUFFIXES", "scan_llvip"]

LLVIP_SPLITS = ("train", "test")
LLVIP_FOLDERS = {"rgb": "visible", "ir": "infrared"}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def llvip_box(xmin: float, ymin: float, xmax: float, ymax: float) -> tuple[float, float, float, float]:
    """An LLVIP XML box -> continuous xyxy (the authors' convention: the corners as they are)."""
    return float(xmin), float(ymin), float(xmax), float(ymax)


def xyxy_to_llvip(x1: float, y1: float, x2: float, y2: float) -> tuple[int, int, int, int]:
    """Continuous integer xyxy -> LLVIP XML corners (inverse of :func:`llvip_box`)."""
    return int(round(x1)), int(round(y1)), int(round(x2)), int(round(y2))


def parse_voc_xml(path: Path, problems: ProblemLog) -> dict[str, Any] | None:
    """Parse one VOC XML into ``{"width", "height", "objects": [(name, xyxy), ...]}``.

    Width/height are None when ``<size>`` is absent. Problems are logged; None if unusable.
    """
    try:
        tree = ET.parse(path)
    except ET.ParseError as exc:
        problems.add(path, f"malformed XML ({exc})", "restore the file from the original dataset archive")
        return None
    except OSError as exc:
        problems.add(path, f"unreadable annotation ({exc})", "check file permissions")
        return None
    root = tree.getroot()
    width = height = None
    size = root.find("size")
    if size is not None:
        try:
            width, height = int(float(size.findtext("width", ""))), int(float(size.findtext("height", "")))
        except ValueError:
            problems.add(path, "<size> has a non-numeric width/height", "fix <size> or remove it (then the image header is used)")
            return None
    objects = []
    for i, obj in enumerate(root.iter("object")):
        name = (obj.findtext("name") or "").strip()
        bnd = obj.find("bndbox")
        try:
            if not name or bnd is None:
                raise ValueError
            vals = [float(bnd.findtext(k, "")) for k in ("xmin", "ymin", "xmax", "ymax")]
        except ValueError:
            problems.add(path, f"object {i} lacks a <name> or a numeric <bndbox> xmin/ymin/xmax/ymax", "fix the object")
            continue
        objects.append((name, llvip_box(*vals)))
    return {"width": width, "height": height, "objects": objects}


def read_llvip(
    root: Path | str,
    split: str = "train",
    modality: str = "rgb",
    class_map: ClassMap | dict | str | None = None,
    drop_invalid: bool = False,
) -> DetectionDataset:
    """Read one LLVIP split in one modality (``rgb`` = ``visible/``, ``ir`` = ``infrared/``).

    Without a class map the categories are the sorted object names found in the split.
    Image ids are positions in the sorted file list, so both modalities share them.
    Raises DataError listing every problem found.
    """
    root = Path(root).absolute()
    problems = ProblemLog()
    samples, categories, meta = scan_llvip(root, split, modality, resolve_class_map(class_map), drop_invalid, problems)
    problems.raise_if_any(f"LLVIP {root} ({split}, {modality})")
    log_dropped(meta, root)
    return DetectionDataset(
        name=f"llvip/{modality}", format="llvip", root=root, split=split, modality=modality,
        categories=categories, samples=samples, meta=meta,
    )


def scan_llvip(
    root: Path, split: str, modality: str, cmap: ClassMap | None, drop_invalid: bool, problems: ProblemLog
) -> tuple[list[DetectionSample], tuple[str, ...], dict[str, Any]]:
    if split not in LLVIP_SPLITS:
        raise DataError(f"LLVIP split {split!r} is unknown; valid splits: {', '.join(LLVIP_SPLITS)}")
    if modality not in LLVIP_FOLDERS:
        raise DataError(f"LLVIP modality {modality!r} is unknown; valid: {', '.join(LLVIP_FOLDERS)}")
    image_dir = root / LLVIP_FOLDERS[modality] / split
    ann_dir = root / "Annotations"
    for d in (image_dir, ann_dir):
        if not d.is_dir():
            raise DataError(
                f"{d}: folder is missing; fix: point at the LLVIP root holding Annotations/, "
                "visible/{train,test}/ and infrared/{train,test}/"
            )
    images = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    parsed: list[tuple[Path, int, int, list[tuple[str, tuple[float, ...]]]]] = []
    for img in images:
        xml = ann_dir / f"{img.stem}.xml"
        if not xml.is_file():
            problems.add(xml, f"annotation is missing for image {img.name}", "restore the XML or remove the image")
            continue
        rec = parse_voc_xml(xml, problems)
        if rec is None:
            continue
        w, h = rec["width"], rec["height"]
        if not w or not h:
            size = image_size(img, problems)
            if size is None:
                continue
            w, h = size
        parsed.append((img, w, h, rec["objects"]))
    if cmap is None:
        categories = tuple(sorted({name for *_, objs in parsed for name, _ in objs}))
    else:
        categories = cmap.targets
    counts, unmapped = BoxCheck(), {}
    samples = []
    for image_id, (img, w, h, objs) in enumerate(parsed, start=1):
        boxes, labels = [], []
        for name, box in objs:
            target = name if cmap is None else cmap.lookup(name)
            if target is None:
                unmapped[name] = unmapped.get(name, 0) + 1
                continue
            boxes.append(box)
            labels.append(categories.index(target))
        b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        lab = np.asarray(labels, dtype=np.int64)
        keep = check_boxes(b, w, h, ann_dir / f"{img.stem}.xml", problems, counts, drop_invalid)
        samples.append(DetectionSample(img, w, h, b[keep], lab[keep], image_id))
    meta = {
        "variant": "llvip",
        "class_map": str(cmap) if cmap else "all",
        "image_dir": str(image_dir),
        "annotation_dir": str(ann_dir),
        "unmapped_boxes": dict(sorted(unmapped.items())),
        "box_convention": "llvip authors (w = xmax - xmin)",
        **counts.as_meta(),
    }
    return samples, categories, meta
