"""``export``: what capgate trains and evaluates on, written as COCO JSON for any COCO tool.

Every split and modality of a detection dataset on disk is read with the same reader, class map
and ``drop_invalid`` that training uses, and its in-memory representation
(:meth:`~capgate.data.DetectionDataset.to_coco`) is written to ``<out>/<split>_<modality>.json``:
category id = label index + 1 in capgate's category order, boxes ``xywh`` in the continuous
pixel convention of :mod:`capgate.data.types` (so LLVIP boxes come out as the LLVIP authors'
converter writes them), image ``file_name`` relative to the dataset root named in
``info.image_root``. ``info`` also records the format, variant, class map, box convention and
the boxes dropped, unmapped, clipped or skipped as crowd. The entry point is
:func:`capgate.data.registry.export_coco`; each format's record names its ``*_sets`` function.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from capgate.store.atomic import atomic_write_text
from capgate.data.coco import coco_split_paths, read_coco
from capgate.data.flir import FLIR_SPLITS, V1_SPLIT_FOLDERS, detect_flir_version, flir_v2_folder, read_flir
from capgate.data.llvip import LLVIP_FOLDERS, LLVIP_SPLITS, read_llvip
from capgate.data.types import DetectionDataset

__all__ = ["ExportedFile", "write_coco_files", "llvip_sets", "flir_sets", "coco_sets"]

_META_KEYS = ("variant", "class_map", "box_convention", "invalid_boxes", "dropped_boxes", "dropped_by_file",
              "clipped_boxes", "unmapped_boxes", "crowd_boxes_skipped", "class_notes")


@dataclass(frozen=True)
class ExportedFile:
    """One written COCO file and what it holds."""

    path: Path
    split: str
    modality: str
    images: int
    boxes: int


def llvip_sets(root: Path, class_map: Any, drop_invalid: bool) -> list[DetectionDataset]:
    """Every LLVIP split and modality present under ``root``."""
    return [read_llvip(root, split, mod, class_map, drop_invalid)
            for split in LLVIP_SPLITS for mod, folder in LLVIP_FOLDERS.items() if (root / folder / split).is_dir()]


def flir_sets(root: Path, class_map: Any, drop_invalid: bool) -> list[DetectionDataset]:
    """Every FLIR split and modality present under ``root`` (v1 has thermal annotations only)."""
    version = detect_flir_version(root)
    out = []
    for split in FLIR_SPLITS:
        for mod in ("rgb", "ir"):
            if version == "v2" and (flir_v2_folder(root, split, mod) / "coco.json").is_file():
                out.append(read_flir(root, split, mod, "v2", class_map, drop_invalid))
            elif version == "v1" and mod == "ir" and (root / V1_SPLIT_FOLDERS[split] / "thermal_annotations.json").is_file():
                out.append(read_flir(root, split, mod, "v1", class_map, drop_invalid))
    return out


def coco_sets(root: Path, class_map: Any, drop_invalid: bool) -> list[DetectionDataset]:
    """Every ``annotations/instances_<split>.json`` under ``root``."""
    files = sorted((root / "annotations").glob("instances_*.json"))
    return [read_coco(f, coco_split_paths(root, f.stem.removeprefix("instances_"))[1], class_map, drop_invalid)
            for f in files]


def write_coco_files(datasets: list[DetectionDataset], out: Path | str) -> list[ExportedFile]:
    """Write each dataset as ``<out>/<split>_<modality>.json`` (see the module docstring)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for ds in datasets:
        doc = ds.to_coco()
        doc["info"] = {"description": f"capgate export of {ds.name} ({ds.split})", "format": ds.format,
                       "split": ds.split, "modality": ds.modality, "image_root": str(ds.root),
                       "fingerprint": ds.fingerprint(), **{k: ds.meta[k] for k in _META_KEYS if k in ds.meta}}
        target = out / f"{ds.split}_{ds.modality}.json"
        atomic_write_text(target, json.dumps(doc, indent=1, sort_keys=True) + "\n")
        written.append(ExportedFile(target, ds.split, ds.modality, len(doc["images"]), len(doc["annotations"])))
    return written
