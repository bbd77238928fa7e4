"""FLIR ADAS (v2 and v1): vehicle-mounted RGB and thermal frames, COCO annotations.

v2 layout (one folder per modality and split, each with ``coco.json`` and ``data/``)::

    images_rgb_train/coco.json      images_rgb_train/data/*.jpg
    images_thermal_train/coco.json  images_thermal_train/data/*.jpg
    images_rgb_val/  images_thermal_val/
    video_rgb_test/  video_thermal_test/
    ../rgb_to_thermal_vid_map.json  pairs video RGB frames with thermal frames

The v2 archive (``FLIR_ADAS_v2.zip``) unpacks to ``FLIR_ADAS_v2/`` holding the folders above,
and ``rgb_to_thermal_vid_map.json`` *beside* it, at the archive's top level (FLIR's README: "time-
synced frames mapped between the thermal and RGB spectrums in the rgb_to_thermal_vid_map.json
file"). The root given is ``FLIR_ADAS_v2/``; the map is looked up in the root, then its parent.
Each folder also ships an ``index.json`` (FLIR's own frame index); ``coco.json`` is what is read.

v1 layout (thermal annotated only; RGB frames are unannotated)::

    {train,val,video}/thermal_annotations.json
    {train,val,video}/thermal_8_bit/*.jpeg
    {train,val,video}/RGB/*.jpg

Category ids are FLIR's own, mapped by id -> name from the JSON (see :mod:`capgate.data.coco`).

**Class meanings differ between versions** (:data:`CLASS_NOTES`, recorded in ``meta``): v1's
``bicycle`` (id 2) covers bicycles *and motorcycles* (v1 README: "Bicycles - bicycles and
motorcycles (not consistent with coco)"); v2's ``bike`` is bicycles only, motorcycles being
``motor``. A class map that sends both to one target mixes two definitions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from capgate.data.classmap import ClassMap, resolve_class_map
from capgate.data.coco import load_json, parse_coco
from capgate.data.problems import ProblemLog, log_dropped, safe_join
from capgate.data.types import DetectionDataset
from capgate.errors import DataError

__all__ = ["read_flir", "flir_video_pairs", "detect_flir_version", "FLIR_SPLITS", "FLIR_VERSIONS", "flir_v2_folder",
           "FLIR_MODALITIES",
           "V1_SPLIT_FOLDERS", "VIDEO_MAP", "CLASS_NOTES", "find_video_map"]

FLIR_SPLITS = ("train", "val", "video_test")
FLIR_VERSIONS = ("v2", "v1")
_V2_MODALITY = {"rgb": "rgb", "ir": "thermal"}
FLIR_MODALITIES = tuple(_V2_MODALITY)
V1_SPLIT_FOLDERS = {"train": "train", "val": "val", "video_test": "video"}
VIDEO_MAP = "rgb_to_thermal_vid_map.json"
#: What a source class means, per version, where it differs from its name's COCO meaning.
CLASS_NOTES = {
    "v1": {"bicycle": "bicycles and motorcycles (FLIR ADAS v1 README; not consistent with COCO)"},
    "v2": {"bike": "bicycles only (motorcycles are 'motor')"},
}


def find_video_map(root: Path) -> Path | None:
    """``rgb_to_thermal_vid_map.json`` in the v2 root or its parent (where the archive puts it)."""
    return next((d / VIDEO_MAP for d in (root, root.parent) if (d / VIDEO_MAP).is_file()), None)


def flir_v2_folder(root: Path, split: str, modality: str) -> Path:
    """The v2 folder holding ``coco.json`` and ``data/`` for a split and modality."""
    mod = _V2_MODALITY[modality]
    return root / (f"video_{mod}_test" if split == "video_test" else f"images_{mod}_{split}")


def detect_flir_version(root: Path) -> str:
    """``v2`` if v2 folders exist, ``v1`` if ``train/thermal_annotations.json`` does, else DataError."""
    root = Path(root)
    if any((root / f).is_dir() for f in ("images_rgb_train", "images_thermal_train", "images_thermal_val", "video_rgb_test")):
        return "v2"
    if any((root / s / "thermal_annotations.json").is_file() for s in V1_SPLIT_FOLDERS.values()):
        return "v1"
    raise DataError(
        f"{root}: not a FLIR ADAS root (no images_*_train/ folders of v2, no train/thermal_annotations.json "
        "of v1); fix: point at the folder that holds them"
    )


def read_flir(
    root: Path | str,
    split: str = "train",
    modality: str = "rgb",
    version: str | None = "v2",
    class_map: ClassMap | dict | str | None = None,
    drop_invalid: bool = False,
) -> DetectionDataset:
    """Read one FLIR ADAS split (``train``, ``val``, ``video_test``) in one modality.

    ``version=None`` detects v2/v1 from the layout. v1 RGB is unannotated: asking for it
    raises a DataError. For ``video_test`` in v2, ``meta["video_pairs"]`` counts the RGB
    frames paired with thermal frames by ``rgb_to_thermal_vid_map.json``.
    """
    root = Path(root).absolute()
    version = detect_flir_version(root) if version is None else version
    if version not in FLIR_VERSIONS:
        raise DataError(f"FLIR version {version!r} is unknown; valid: {', '.join(FLIR_VERSIONS)}")
    if split not in FLIR_SPLITS:
        raise DataError(f"FLIR split {split!r} is unknown; valid splits: {', '.join(FLIR_SPLITS)}")
    if modality not in _V2_MODALITY:
        raise DataError(f"FLIR modality {modality!r} is unknown; valid: {', '.join(_V2_MODALITY)}")
    cmap = resolve_class_map(class_map)
    problems = ProblemLog()
    folder, json_path = _locate(root, split, modality, version)
    categories, samples, meta = parse_coco(json_path, folder, cmap, drop_invalid, problems)
    if version == "v2" and split == "video_test":
        meta["video_pairs"] = len(flir_video_pairs(root, problems))
        meta["video_map"] = str(find_video_map(root))
    problems.raise_if_any(f"FLIR ADAS {version} {root} ({split}, {modality})")
    log_dropped(meta, json_path)
    notes = {n: CLASS_NOTES[version][n] for n in meta.get("source_categories", {}).values() if n in CLASS_NOTES[version]}
    meta.update({"variant": f"flir_{version}", "class_map": str(cmap) if cmap else "all", "image_dir": str(folder),
                 "class_notes": notes})
    return DetectionDataset(
        name=f"flir/{modality}", format=f"flir_{version}", root=root, split=split, modality=modality,
        categories=categories, samples=samples, meta=meta,
    )


def _locate(root: Path, split: str, modality: str, version: str) -> tuple[Path, Path]:
    if version == "v2":
        folder = flir_v2_folder(root, split, modality)
        json_path = folder / "coco.json"
    else:
        if modality == "rgb":
            raise DataError(
                f"{root}: FLIR ADAS v1 RGB frames are unannotated (only thermal_annotations.json exists); "
                "fix: use FLIR ADAS v2 (version='v2') for annotated RGB, or modality='ir' for v1 thermal"
            )
        folder = root / V1_SPLIT_FOLDERS[split]
        json_path = folder / "thermal_annotations.json"
    if not json_path.is_file():
        raise DataError(
            f"{json_path}: annotation file is missing; fix: point at the FLIR ADAS {version} root "
            f"(expected {json_path.relative_to(root)})"
        )
    return folder, json_path


def flir_video_pairs(root: Path | str, problems: ProblemLog | None = None) -> list[tuple[Path, Path]]:
    """(RGB frame, thermal frame) pairs from ``rgb_to_thermal_vid_map.json`` (v2 video test),
    found in ``root`` or its parent (:func:`find_video_map`).

    The map is a JSON object ``{rgb file name: thermal file name}`` (a list of pairs is also
    accepted); names are relative to ``video_{rgb,thermal}_test/data/``. Problems (missing
    frames, paths escaping the root) are logged, or raised when ``problems`` is None.
    """
    root = Path(root).absolute()
    own = problems is None
    problems = ProblemLog() if problems is None else problems
    map_path = find_video_map(root)
    data: Any = None
    if map_path is None:
        map_path = root.parent / VIDEO_MAP
        problems.add(root, f"{VIDEO_MAP} is in neither {root} nor its parent {root.parent}",
                     f"restore it from the FLIR_ADAS_v2 archive (it lies beside FLIR_ADAS_v2/) into {root.parent}")
    else:
        data = load_json(map_path, problems)
    pairs: list[tuple[Path, Path]] = []
    if data is not None:
        items = list(data.items()) if isinstance(data, dict) else data
        rgb_dir = flir_v2_folder(root, "video_test", "rgb") / "data"
        ir_dir = flir_v2_folder(root, "video_test", "ir") / "data"
        for item in items:
            if not (isinstance(item, (list, tuple)) and len(item) == 2):
                problems.add(map_path, f"entry {item!r} is not an (rgb, thermal) name pair", "fix the map")
                continue
            # names may carry the ``data/`` prefix of coco.json's file_name; accept both forms
            rgb, ir = (
                safe_join(d, str(n).removeprefix("data/"), map_path, problems) for d, n in zip((rgb_dir, ir_dir), item)
            )
            if rgb is None or ir is None:
                continue
            missing = [p for p in (rgb, ir) if not p.is_file()]
            for p in missing:
                problems.add(p, f"video frame listed in {VIDEO_MAP} is missing", "restore the frame or remove the pair")
            if not missing:
                pairs.append((rgb, ir))
    if own:
        problems.raise_if_any(f"FLIR ADAS video map {map_path}")
    return pairs
