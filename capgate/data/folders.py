"""Classification readers: ImageNet-style class folders and DomainNet split files.

ImageNet layout: ``{train,val}/<class>/*.jpg``; classes are the sorted folder names.

DomainNet layout: ``<domain>/<class>/<file>.jpg`` plus split files ``<domain>_{train,test}.txt``
(at the root) with ``<relative/path> <label>`` lines; labels are 0..344 in class order, class
order being the sorted class folder names (as in DomainNet). A class subset keeps the
original order and re-indexes labels 0..k-1.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from capgate.data.llvip import IMAGE_SUFFIXES
from capgate.data.problems import ProblemLog, safe_join
from capgate.data.types import ClassificationDataset
from capgate.errors import DataError

__all__ = ["read_imagenet", "read_domainnet", "DOMAINNET_DOMAINS", "DOMAINNET_SPLITS", "IMAGENET_SPLITS", "scan_imagenet",
           "scan_domainnet", "domainnet_classes"]

IMAGENET_SPLITS = ("train", "val")
DOMAINNET_SPLITS = ("train", "test")
#: The six real DomainNet domains (the tiny world writes a subset of these names).
DOMAINNET_DOMAINS = ("clipart", "infograph", "painting", "quickdraw", "real", "sketch")


def read_imagenet(root: Path | str, split: str = "train") -> ClassificationDataset:
    """Read ``root/<split>/<class>/*`` (jpg, jpeg, png; any case). Labels follow sorted class names."""
    root = Path(root).absolute()
    problems = ProblemLog()
    ds = scan_imagenet(root, split, problems)
    problems.raise_if_any(f"ImageNet folders {root} ({split})")
    return ds


def scan_imagenet(root: Path, split: str, problems: ProblemLog) -> ClassificationDataset:
    if split not in IMAGENET_SPLITS:
        raise DataError(f"ImageNet split {split!r} is unknown; valid splits: {', '.join(IMAGENET_SPLITS)}")
    split_dir = root / split
    if not split_dir.is_dir():
        raise DataError(f"{split_dir}: folder is missing; fix: point at the root holding train/<class>/ and val/<class>/")
    classes = tuple(sorted(d.name for d in split_dir.iterdir() if d.is_dir()))
    if not classes:
        problems.add(split_dir, "has no class folders", "put images in <split>/<class>/ folders")
    samples: list[tuple[Path, int]] = []
    for label, cls in enumerate(classes):
        files = sorted(p for p in (split_dir / cls).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            problems.add(split_dir / cls, "class folder has no images", "add images or remove the folder")
        samples.extend((p, label) for p in files)
    return ClassificationDataset(
        name="imagenet", format="imagenet", root=root, split=split, domain=None, classes=classes,
        samples=samples, meta={"variant": "imagenet", "n_classes": len(classes)},
    )


def read_domainnet(
    root: Path | str,
    domain: str,
    split: str = "train",
    classes: int | Sequence[str] | None = None,
) -> ClassificationDataset:
    """Read one DomainNet domain and split.

    ``classes``: None for all, an int k for the first k classes in class order, or class
    names; labels are re-indexed 0..k-1 in class order and the subset is recorded in meta.
    Bad lines, labels out of range or disagreeing with the class folder, missing files and
    paths escaping the root raise a DataError naming the file and line.
    """
    root = Path(root).absolute()
    problems = ProblemLog()
    ds = scan_domainnet(root, domain, split, classes, problems)
    problems.raise_if_any(f"DomainNet {root} ({domain}, {split})")
    return ds


def domainnet_classes(root: Path, domain: str) -> tuple[str, ...]:
    """All class names of a domain in DomainNet class order (sorted folder names)."""
    ddir = root / domain
    if not ddir.is_dir():
        found = sorted(p.stem.rsplit("_", 1)[0] for p in root.glob("*_train.txt"))
        raise DataError(
            f"{ddir}: DomainNet domain folder is missing; fix: choose one of the domains present "
            f"({', '.join(found) or 'none found'}) or point at the DomainNet root"
        )
    return tuple(sorted(d.name for d in ddir.iterdir() if d.is_dir()))


def _select(all_classes: tuple[str, ...], classes: int | Sequence[str] | None) -> tuple[str, ...]:
    if classes is None:
        return all_classes
    if isinstance(classes, int):
        if not 1 <= classes <= len(all_classes):
            raise DataError(f"class subset size {classes} is out of range; fix: choose 1..{len(all_classes)}")
        return all_classes[:classes]
    unknown = [c for c in classes if c not in all_classes]
    if unknown:
        raise DataError(
            f"unknown DomainNet class(es) {unknown}; valid classes include: {', '.join(all_classes[:30])}"
            + (" ..." if len(all_classes) > 30 else "")
        )
    wanted = set(classes)
    return tuple(c for c in all_classes if c in wanted)


def scan_domainnet(
    root: Path, domain: str, split: str, classes: int | Sequence[str] | None, problems: ProblemLog
) -> ClassificationDataset:
    if split not in DOMAINNET_SPLITS:
        raise DataError(f"DomainNet split {split!r} is unknown; valid splits: {', '.join(DOMAINNET_SPLITS)}")
    all_classes = domainnet_classes(root, domain)
    subset = _select(all_classes, classes)
    new_label = {all_classes.index(c): i for i, c in enumerate(subset)}
    split_file = root / f"{domain}_{split}.txt"
    if not split_file.is_file():
        raise DataError(f"{split_file}: DomainNet split file is missing; fix: restore {split_file.name} at the DomainNet root")
    samples: list[tuple[Path, int]] = []
    with open(split_file, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{split_file}:{lineno}"
            parts = line.split()
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                problems.add(where, f"bad line {line.strip()!r}", "write '<domain>/<class>/<file>.jpg <label>'")
                continue
            rel, label = parts[0], int(parts[1])
            if not 0 <= label < len(all_classes):
                problems.add(where, f"label {label} is out of range 0..{len(all_classes) - 1}", "fix the label")
                continue
            path = safe_join(root, rel, where, problems)
            if path is None:
                continue
            folder_class = path.parent.name
            if folder_class != all_classes[label]:
                problems.add(
                    where,
                    f"label {label} means class {all_classes[label]!r} but the file lies in class folder {folder_class!r}",
                    "fix the label or the path",
                )
                continue
            if label not in new_label:
                continue
            if not path.is_file():
                problems.add(where, f"image file {rel} is missing", "restore the image or remove the line")
                continue
            samples.append((path, new_label[label]))
    meta: dict[str, Any] = {
        "variant": "domainnet",
        "n_classes_total": len(all_classes),
        "class_subset": "all" if classes is None else (f"first{len(subset)}" if isinstance(classes, int) else list(subset)),
        "split_file": str(split_file),
    }
    return ClassificationDataset(
        name=f"domainnet/{domain}", format="domainnet", root=root, split=split, domain=domain,
        classes=subset, samples=samples, meta=meta,
    )
