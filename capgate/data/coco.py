"""COCO instances JSON: the generic reader, also used by both FLIR ADAS layouts.

Category ids are mapped by id -> name from the file's ``categories`` (never by position):
FLIR's ids are non-contiguous (1 person, 2 bike, 3 car, 4 motor, 6 bus, ... 17 dog).
Without a class map the dataset's categories are every category in the file ordered by id;
with one they are the map's targets and unmapped classes are dropped and counted.
Crowd annotations (``iscrowd=1``) are skipped and counted.

COCO root layout: ``annotations/instances_<split>.json`` with images in ``<split>/``, except
COCO 2014's ``minival2014`` and ``valminusminival2014`` (Detectron's ``instances_minival2014.json``,
``instances_valminusminival2014.json``), whose images are the ``val2014/`` files
(``COCO_val2014_000000000042.jpg``): :data:`IMAGE_FOLDER_OF`, :func:`coco_split_paths`.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from capgate.data.classmap import ClassMap, resolve_class_map
from capgate.data.problems import BoxCheck, ProblemLog, check_boxes, log_dropped, safe_join
from capgate.data.types import DetectionDataset, DetectionSample

__all__ = ["read_coco", "parse_coco", "load_json", "image_size", "coco_split_paths", "IMAGE_FOLDER_OF"]

#: Annotation splits whose images live in another split's folder.
IMAGE_FOLDER_OF = {"minival2014": "val2014", "valminusminival2014": "val2014"}


def coco_split_paths(root: Path, split: str) -> tuple[Path, Path]:
    """``(annotations/instances_<split>.json, image folder)`` of a split under a COCO root."""
    return root / "annotations" / f"instances_{split}.json", root / IMAGE_FOLDER_OF.get(split, split)


def load_json(path: Path, problems: ProblemLog) -> Any | None:
    """Parse a JSON file, logging a missing or malformed file as a problem (returns None)."""
    if not path.is_file():
        problems.add(path, "annotation file is missing", "check the dataset root and layout")
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        problems.add(path, f"malformed JSON ({exc})", "restore the file from the original dataset archive")
        return None


def image_size(path: Path, problems: ProblemLog) -> tuple[int, int] | None:
    """(width, height) from the image header only, or None with a problem logged."""
    try:
        with Image.open(path) as im:
            return int(im.width), int(im.height)
    except (OSError, ValueError) as exc:
        problems.add(path, f"unreadable image ({exc})", "replace the file from the original dataset")
        return None


def parse_coco(
    json_path: Path,
    image_dir: Path,
    class_map: ClassMap | None,
    drop_invalid: bool,
    problems: ProblemLog,
) -> tuple[tuple[str, ...], list[DetectionSample], dict[str, Any]]:
    """Parse one COCO instances file; every problem goes to ``problems``.

    Returns ``(categories, samples, meta)``; images without (kept) boxes stay as negatives.
    """
    meta: dict[str, Any] = {"source_files": [str(json_path)]}
    data = load_json(json_path, problems)
    if data is None:
        return (), [], meta
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "annotations", "categories")):
        problems.add(
            json_path,
            "not a COCO instances file (needs lists 'images', 'annotations' and 'categories')",
            "point at the instances JSON (e.g. annotations/instances_train2017.json, FLIR's coco.json)",
        )
        return (), [], meta

    id_to_name, categories, label_of = _categories(data["categories"], class_map, json_path, problems)
    images, order, listed = _images(data["images"], image_dir, json_path, problems)
    unmapped, crowd = _add_boxes(data["annotations"], images, listed, id_to_name, label_of, json_path, problems)

    counts = BoxCheck()
    samples: list[DetectionSample] = []
    for iid in order:
        rec = images[iid]
        boxes = np.asarray(rec["boxes"], dtype=np.float32).reshape(-1, 4)
        labels = np.asarray(rec["labels"], dtype=np.int64)
        keep = check_boxes(boxes, rec["width"], rec["height"], json_path, problems, counts, drop_invalid)
        samples.append(DetectionSample(rec["path"], rec["width"], rec["height"], boxes[keep], labels[keep], iid))
    meta.update(counts.as_meta())
    meta["unmapped_boxes"] = dict(sorted(unmapped.items()))
    meta["crowd_boxes_skipped"] = crowd
    meta["source_categories"] = {str(i): n for i, n in sorted(id_to_name.items())}
    return categories, samples, meta



def _categories(
    entries: list, class_map: ClassMap | None, json_path: Path, problems: ProblemLog,
) -> tuple[dict[int, str], tuple[str, ...], dict[int, int]]:
    """``(category id -> name, the dataset's categories, category id -> label)`` from the file's
    ``categories``; ids the class map does not keep have no label."""
    id_to_name: dict[int, str] = {}
    for cat in entries:
        try:
            cid, cname = int(cat["id"]), str(cat["name"])
        except (KeyError, TypeError, ValueError):
            problems.add(json_path, f"category entry {cat!r} lacks an integer 'id' or a 'name'", "fix the categories list")
            continue
        if cid in id_to_name:
            problems.add(json_path, f"category id {cid} is defined twice", "give each category a unique id")
        id_to_name[cid] = cname
    if class_map is None:
        categories = tuple(id_to_name[i] for i in sorted(id_to_name))
        return id_to_name, categories, {cid: categories.index(name) for cid, name in id_to_name.items()}
    categories = class_map.targets
    label_of: dict[int, int] = {}
    for cid, name in id_to_name.items():
        target = class_map.lookup(name)
        if target is not None:
            label_of[cid] = categories.index(target)
    return id_to_name, categories, label_of


def _images(
    entries: list, image_dir: Path, json_path: Path, problems: ProblemLog,
) -> tuple[dict[int, dict[str, Any]], list[int], set[int]]:
    """``(image id -> record with empty box lists, kept ids in file order, every listed id)``; an
    image whose file is missing or unreadable is logged and left out (its id stays listed)."""
    images: dict[int, dict[str, Any]] = {}
    order: list[int] = []
    listed: set[int] = set()
    for im in entries:
        try:
            iid, fname = int(im["id"]), im["file_name"]
        except (KeyError, TypeError, ValueError):
            problems.add(json_path, f"image entry {str(im)[:80]} lacks an integer 'id' or 'file_name'", "fix the images list")
            continue
        if iid in listed:
            problems.add(json_path, f"image id {iid} is listed twice", "give each image a unique id")
            continue
        listed.add(iid)
        path = safe_join(image_dir, fname, json_path, problems)
        if path is None:
            continue
        if not path.is_file():
            problems.add(path, f"image file is missing (listed in {json_path.name} as {fname!r})", "restore the image or remove its entry")
            continue
        w, h = im.get("width"), im.get("height")
        if not (isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0):
            size = image_size(path, problems)
            if size is None:
                continue
            w, h = size
        images[iid] = {"path": path, "width": w, "height": h, "boxes": [], "labels": []}
        order.append(iid)
    return images, order, listed


def _add_boxes(
    entries: list, images: dict[int, dict[str, Any]], listed: set[int], id_to_name: dict[int, str],
    label_of: dict[int, int], json_path: Path, problems: ProblemLog,
) -> tuple[Counter[str], int]:
    """Append each annotation's xyxy box and label to its image's record; returns ``(boxes per
    unmapped category name, crowd boxes skipped)``."""
    unmapped: Counter[str] = Counter()
    crowd = 0
    for ann in entries:
        try:
            iid, cid = int(ann["image_id"]), int(ann["category_id"])
            x, y, w, h = (float(v) for v in ann["bbox"])
        except (KeyError, TypeError, ValueError):
            problems.add(json_path, f"annotation {str(ann)[:80]} lacks image_id, category_id or a 4-number bbox", "fix the annotation")
            continue
        if cid not in id_to_name:
            known = ", ".join(f"{i} {n}" for i, n in sorted(id_to_name.items())[:20])
            problems.add(
                json_path,
                f"annotation {ann.get('id')} has unknown category id {cid} (known: {known})",
                "add the category to 'categories' or fix the annotation's category_id",
            )
            continue
        if iid not in images:
            if iid not in listed:
                problems.add(json_path, f"annotation {ann.get('id')} refers to unknown image id {iid}", "fix its image_id")
            continue
        if ann.get("iscrowd", 0):
            crowd += 1
            continue
        if cid not in label_of:
            unmapped[id_to_name[cid]] += 1
            continue
        rec = images[iid]
        rec["boxes"].append((x, y, x + w, y + h))
        rec["labels"].append(label_of[cid])
    return unmapped, crowd


def read_coco(
    annotation_json: Path | str,
    image_dir: Path | str,
    class_map: ClassMap | dict | str | None = None,
    drop_invalid: bool = False,
    *,
    name: str | None = None,
    split: str | None = None,
    modality: str = "rgb",
) -> DetectionDataset:
    """Read a COCO instances JSON whose ``file_name`` entries are relative to ``image_dir``.

    ``split`` defaults to the JSON's stem without ``instances_`` (``instances_val2017`` ->
    ``val2017``). Raises DataError listing every problem found.
    """
    json_path, image_dir = Path(annotation_json).absolute(), Path(image_dir).absolute()
    cmap = resolve_class_map(class_map)
    problems = ProblemLog()
    categories, samples, meta = parse_coco(json_path, image_dir, cmap, drop_invalid, problems)
    problems.raise_if_any(f"COCO annotations {json_path}")
    split = split or json_path.stem.removeprefix("instances_")
    meta.update({"variant": "coco", "class_map": str(cmap) if cmap else "all", "image_dir": str(image_dir)})
    log_dropped(meta, json_path)
    return DetectionDataset(
        name=name or f"coco/{modality}", format="coco", root=image_dir, split=split,
        modality=modality, categories=categories, samples=samples, meta=meta,
    )
