"""``export``: what capgate trains and evaluates on, written as COCO JSON for any COCO tool.

Every split and modality of a detection dataset on disk is read with the same reader, class map
and ``drop_invalid`` that training uses, and its in-memory representation
(:meth:`~capgate.data.DetectionDataset.to_coco`) is written to ``<out>/<split>_<modality>.json``:
category id = label index + 1 in capgate's category order, boxes ``xywh`` in the continuous
pixel convention of :mod:`capgate.data.types` (so LLVIP boxes come out as the LLVIP authors'
converter writes them), image ``file_name`` relative to the dataset root named in
``info.image_root``. ``info`` also records the format, variant, class map, box convention and
the boxes dropped, unmapped, clipped or skipped as crowd.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from capgate.store.atomic import atomic_write_text
from capgate.data.classmap import ClassMap
from capgate.data.coco import read_coco
from capgate.data.flir import FLIR_SPLITS, V1_SPLIT_FOLDERS, detect_flir_version, flir_v2_folder, read_flir
from capgate.data.llvip import LLVIP_FOLDERS, LLVIP_SPLITS, read_llvip
from capgate.data.types import DetectionDataset
from capgate.errors import DataError

__all__ = ["export_coco", "EXPORT_FORMATS", "ExportedFile"]

EXPORT_FORMATS = ("llvip", "flir", "coco")
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


def _datasets(root: Path, format: str, class_map: Any, drop_invalid: bool) -> list[DetectionDataset]:
    if format == "llvip":
        return [read_llvip(root, split, mod, class_map, drop_invalid)
                for split in LLVIP_SPLITS for mod, folder in LLVIP_FOLDERS.items() if (root / folder / split).is_dir()]
    if format == "flir":
        version = detect_flir_version(root)
        out = []
        for split in FLIR_SPLITS:
            for mod in ("rgb", "ir"):
                if version == "v2" and (flir_v2_folder(root, split, mod) / "coco.json").is_file():
                    out.append(read_flir(root, split, mod, "v2", class_map, drop_invalid))
                elif version == "v1" and mod == "ir" and (root / V1_SPLIT_FOLDERS[split] / "thermal_annotations.json").is_file():
                    out.append(read_flir(root, split, mod, "v1", class_map, drop_invalid))
        return out
    if format == "coco":
        from capgate.data.coco import coco_split_paths

        files = sorted((root / "annotations").glob("instances_*.json"))
        return [read_coco(f, coco_split_paths(root, f.stem.removeprefix("instances_"))[1], class_map, drop_invalid)
                for f in files]
    raise DataError(f"export supports the detection formats {', '.join(EXPORT_FORMATS)}, not {format!r}")


def export_coco(path: Path | str, format: str, out: Path | str, class_map: ClassMap | dict | str | None = None,
                drop_invalid: bool = False) -> list[ExportedFile]:
    """Write ``<out>/<split>_<modality>.json`` for every split and modality found under ``path``.

    Raises :class:`~capgate.errors.DataError` for an unknown format, a dataset with nothing to
    export, or the readers' problems (the same a training run would stop on).
    """
    if format not in EXPORT_FORMATS:
        raise DataError(f"export supports the detection formats {', '.join(EXPORT_FORMATS)}, not {format!r}")
    root = Path(path).absolute()
    if not root.is_dir():
        raise DataError(f"{root}: is not a folder; fix: give the dataset's root folder")
    datasets = _datasets(root, format, class_map, drop_invalid)
    if not datasets:
        raise DataError(f"{root}: no {format} splits found to export; fix: check with "
                        f"`capgate data verify {root} --format {format}`")
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
