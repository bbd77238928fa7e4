"""``verify``: read every split (and modality) of a dataset on disk, collect every problem.

The checks of the detection formats, ImageNet and DomainNet, and the report they fill; the
entry point is :func:`capgate.data.registry.verify_dataset` (each format's record names its
check; CIFAR's and Tiny ImageNet's are in :mod:`capgate.data.verify_classify`).

Unlike the readers, which stop with one error listing the problems of one split, ``verify``
walks all splits it finds, checks LLVIP pairs and the FLIR video map, opens image headers to
compare sizes with the annotations (up to ``max_image_checks`` per split, evenly spaced), and
returns a :class:`VerifyReport` with a summary per split and every problem.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from capgate.data.coco import coco_split_paths, image_size, parse_coco
from capgate.data.flir import (
    FLIR_SPLITS,
    V1_SPLIT_FOLDERS,
    VIDEO_MAP,
    detect_flir_version,
    flir_v2_folder,
    flir_video_pairs,
)
from capgate.data.domainnet import scan_domainnet
from capgate.data.imagenet import imagenet_image_root, scan_imagenet
from capgate.data.llvip import IMAGE_SUFFIXES, LLVIP_FOLDERS, LLVIP_SPLITS, scan_llvip
from capgate.data.problems import Problem, ProblemLog
from capgate.data.types import ClassificationDataset, DetectionSample
from capgate.errors import DataError

__all__ = ["VerifyReport", "verify_llvip", "verify_flir", "verify_coco", "verify_imagenet", "verify_domainnet",
           "classification_part", "size_text", "guard"]


@dataclass
class VerifyReport:
    """Per split: images, boxes (or images) per class, image size statistics; all problems."""

    path: Path
    format: str
    parts: list[dict[str, Any]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    drop_invalid: bool = False

    @property
    def dropped(self) -> dict[str, int]:
        """Invalid boxes dropped under ``drop_invalid``, per annotation file."""
        return dict(sorted(Counter(p.file for p in self.problems if p.kind == "dropped").items()))

    @property
    def ok(self) -> bool:
        return not any(p.kind == "error" for p in self.problems)

    def lines(self) -> list[str]:
        """The human-readable summary followed by every problem."""
        out = [f"{self.format} dataset at {self.path}"]
        for part in self.parts:
            if "note" in part:
                out.append(f"  {part['name']}: {part['note']}")
                continue
            per = ", ".join(f"{k} {v}" for k, v in part["per_class"].items() if v) or "none"
            if "boxes" in part:
                total = f"{part['boxes']} boxes in {len(part['per_class'])} categories (per class: {per})"
            else:
                total = f"{len(part['per_class'])} classes (images per class: {per})"
            out.append(f"  {part['name']}: {part['images']} images, {total}; {part['sizes']}")
        dropped = self.dropped
        if dropped:
            out.append(f"dropped {sum(dropped.values())} invalid box(es) (--drop-invalid) in {len(dropped)} file(s):")
            out.extend(f"  {f}: {n}" for f, n in dropped.items())
        elif self.drop_invalid:
            out.append("dropped 0 invalid boxes (--drop-invalid)")
        errors = [p for p in self.problems if p.kind == "error"]
        out.append(f"problems: {len(errors)}" if errors else "no problems found")
        out.extend(f"  {p}" for p in errors)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "format": self.format, "ok": self.ok, "drop_invalid": self.drop_invalid,
                "dropped": self.dropped, "parts": self.parts, "problems": [vars(p) for p in self.problems]}


def size_text(sizes: list[tuple[int, int]]) -> str:
    if not sizes:
        return "no images"
    ws, hs = [s[0] for s in sizes], [s[1] for s in sizes]
    if len(set(sizes)) == 1:
        return f"size {ws[0]}x{hs[0]} (all)"
    return (f"width {min(ws)}..{max(ws)} (median {statistics.median(ws):g}), "
            f"height {min(hs)}..{max(hs)} (median {statistics.median(hs):g})")


def _spaced(items: list, k: int | None) -> list:
    if k is None or len(items) <= k:
        return items
    step = len(items) / k
    return [items[int(i * step)] for i in range(k)]


def _detection_part(name: str, categories: tuple[str, ...], samples: list[DetectionSample],
                    problems: ProblemLog, max_checks: int | None) -> dict[str, Any]:
    per_class = dict.fromkeys(categories, 0)
    for s in samples:
        for lab in s.labels.tolist():
            per_class[categories[lab]] += 1
    for s in _spaced(samples, max_checks):
        real = image_size(s.image_path, problems)
        if real is not None and real != (s.width, s.height):
            problems.add(s.image_path, f"image is {real[0]}x{real[1]} but its annotation says {s.width}x{s.height}",
                         "fix the annotation's width/height")
    return {"name": name, "images": len(samples), "boxes": sum(per_class.values()), "per_class": per_class,
            "sizes": size_text([(s.width, s.height) for s in samples])}


def classification_part(name: str, ds: ClassificationDataset, problems: ProblemLog,
                         max_checks: int | None) -> dict[str, Any]:
    per_class = dict.fromkeys(ds.classes, 0)
    for _, lab in ds.samples:
        per_class[ds.classes[lab]] += 1
    if ds.pixels is not None:  # images held in batch files: their size is the array's
        return {"name": name, "images": len(ds.samples), "per_class": per_class,
                "sizes": size_text([(ds.pixels.shape[2], ds.pixels.shape[1])] * min(1, len(ds.samples)))}
    checked = _spaced(ds.samples, max_checks)
    sizes = [s for p, _ in checked if (s := image_size(p, problems)) is not None]
    note = "" if len(checked) == len(ds.samples) else f" ({len(checked)} sampled)"
    return {"name": name, "images": len(ds.samples), "per_class": per_class, "sizes": size_text(sizes) + note}


def guard(problems: ProblemLog, where: Path, fn, *args) -> Any:  # noqa: ANN001
    try:
        return fn(*args)
    except DataError as exc:
        problems.add(where, str(exc), "")
        return None


def verify_llvip(root: Path, report: VerifyReport, problems: ProblemLog, k: int | None,
                  drop_invalid: bool) -> None:
    for split in LLVIP_SPLITS:
        names = {}
        for mod, folder in LLVIP_FOLDERS.items():
            d = root / folder / split
            if not d.is_dir():
                continue
            names[mod] = {p.name for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
            res = guard(problems, root, scan_llvip, root, split, mod, None, drop_invalid, problems)
            if res is not None:
                samples, cats, _ = res
                report.parts.append(_detection_part(f"{split}/{mod}", cats, samples, problems, k))
        if len(names) == 2:
            for mod, other in (("rgb", "ir"), ("ir", "rgb")):
                for n in sorted(names[mod] - names[other]):
                    problems.add(root / LLVIP_FOLDERS[mod] / split / n,
                                 f"has no {LLVIP_FOLDERS[other]} counterpart with the same file name",
                                 "restore the paired image or remove this one")
    if not report.parts and not problems:
        problems.add(root, "no visible/{train,test} or infrared/{train,test} folders", "point at the LLVIP root")


def verify_flir(root: Path, report: VerifyReport, problems: ProblemLog, k: int | None,
                 drop_invalid: bool) -> None:
    version = guard(problems, root, detect_flir_version, root)
    if version is None:
        return
    for split in FLIR_SPLITS:
        for mod in ("rgb", "ir"):
            if version == "v2":
                folder = flir_v2_folder(root, split, mod)
                json_path = folder / "coco.json"
            elif mod == "ir":
                folder = root / V1_SPLIT_FOLDERS[split]
                json_path = folder / "thermal_annotations.json"
            else:
                continue
            if not folder.is_dir():
                continue
            cats, samples, _ = parse_coco(json_path, folder, None, drop_invalid, problems)
            report.parts.append(_detection_part(f"{split}/{mod} ({version})", cats, samples, problems, k))
    if version == "v2" and flir_v2_folder(root, "video_test", "rgb").is_dir():
        pairs = flir_video_pairs(root, problems)
        report.parts.append({"name": "video_test pairs", "images": len(pairs),
                             "note": f"{len(pairs)} RGB frames paired with thermal frames by {VIDEO_MAP}"})


def verify_coco(root: Path, report: VerifyReport, problems: ProblemLog, k: int | None,
                 drop_invalid: bool) -> None:
    files = sorted((root / "annotations").glob("instances_*.json")) if root.is_dir() else []
    if root.is_file():
        files = [root]
        root = root.parent.parent
    if not files:
        problems.add(root, "no annotations/instances_*.json found", "point at the COCO root (annotations/, train2017/, ...)")
    for f in files:
        split = f.stem.removeprefix("instances_")
        cats, samples, _ = parse_coco(f, coco_split_paths(root, split)[1], None, drop_invalid, problems)
        report.parts.append(_detection_part(split, cats, samples, problems, k))


def verify_imagenet(root: Path, report: VerifyReport, problems: ProblemLog, k: int | None,
                     drop_invalid: bool) -> None:
    for split in ("train", "val"):
        if (imagenet_image_root(root) / split).is_dir():
            ds = guard(problems, root, scan_imagenet, root, split, problems)
            if ds is not None:
                report.parts.append(classification_part(split, ds, problems, k))
    if not report.parts and not problems:
        problems.add(root, "no train/ or val/ folders (nor ILSVRC/Data/CLS-LOC/)", "point at the ImageNet root")


def verify_domainnet(root: Path, report: VerifyReport, problems: ProblemLog, k: int | None,
                      drop_invalid: bool) -> None:
    files = sorted(root.glob("*_train.txt")) + sorted(root.glob("*_test.txt"))
    if not files:
        problems.add(root, "no <domain>_{train,test}.txt split files", "point at the DomainNet root")
    for f in files:
        domain, _, split = f.stem.rpartition("_")
        ds = guard(problems, f, scan_domainnet, root, domain, split, None, problems)
        if ds is not None:
            report.parts.append(classification_part(f"{domain}/{split}", ds, problems, k))
