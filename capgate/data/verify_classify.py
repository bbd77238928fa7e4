"""``verify`` of the benchmark formats: CIFAR-10, CIFAR-100 (both versions) and Tiny ImageNet.

CIFAR: every split of every version present (Python pickles and binary records side by side
are both read), each CIFAR-100 split under both label sets, and, where both versions are
present, whether they hold the same images and labels. Tiny ImageNet: train and val (every
image header of up to ``max_checks`` per split opened), the ``<wnid>_boxes.txt`` files, and the
unlabeled ``test/images`` counted. A pickle naming a foreign global is a problem naming the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from capgate.data.cifar import CIFAR_LAYOUTS, CIFAR_SPLITS, find_cifar, scan_cifar
from capgate.data.problems import ProblemLog
from capgate.data.tinyimagenet import TINYIMAGENET_SPLITS, check_boxes_files, find_tinyimagenet, scan_tinyimagenet
from capgate.data.verify import VerifyReport, classification_part, guard
from capgate.errors import DataError

__all__ = ["verify_cifar10", "verify_cifar100", "verify_tinyimagenet"]


def _versions(root: Path, variant: str) -> list[str]:
    out = []
    for version in ("python", "binary"):
        try:
            find_cifar(root, CIFAR_LAYOUTS[variant], version)
            out.append(version)
        except DataError:
            pass
    return out


def _verify_cifar(variant: str, root: Path, report: VerifyReport, problems: ProblemLog, k: int | None) -> None:
    versions = _versions(root, variant)
    if not versions:
        guard(problems, root, find_cifar, root, CIFAR_LAYOUTS[variant])
        return
    for split in CIFAR_SPLITS:
        read: dict[str, Any] = {}
        for version in versions:
            for labels in CIFAR_LAYOUTS[variant].label_sets:
                ds = guard(problems, root, scan_cifar, root, variant, split, problems, labels, version)
                if ds is None:
                    continue
                tag = split if labels == "fine" else f"{split}, {labels} labels"
                report.parts.append(classification_part(f"{tag} ({version})", ds, problems, k))
                read[f"{version}/{labels}"] = ds
        _compare_versions(read, root, split, problems)


def _compare_versions(read: dict[str, Any], root: Path, split: str, problems: ProblemLog) -> None:
    """Python and binary versions of one split must hold the same images and labels."""
    for labels in ("fine", "coarse"):
        py, bn = read.get(f"python/{labels}"), read.get(f"binary/{labels}")
        if py is None or bn is None:
            continue
        same = (py.pixels.shape == bn.pixels.shape and np.array_equal(py.pixels, bn.pixels)
                and [y for _, y in py.samples] == [y for _, y in bn.samples] and py.classes == bn.classes)
        if not same:
            problems.add(root, f"the Python and binary versions of {split} ({labels} labels) differ "
                         f"({len(py)} vs {len(bn)} images)", "keep one version, or restore both from the archives")


def verify_cifar10(root: Path, report: VerifyReport, problems: ProblemLog, k: int | None) -> None:
    """CIFAR-10 (``cifar-10-batches-py`` and/or ``cifar-10-batches-bin``)."""
    _verify_cifar("cifar10", root, report, problems, k)


def verify_cifar100(root: Path, report: VerifyReport, problems: ProblemLog, k: int | None) -> None:
    """CIFAR-100 (``cifar-100-python`` and/or ``cifar-100-binary``), fine and coarse labels."""
    _verify_cifar("cifar100", root, report, problems, k)


def verify_tinyimagenet(root: Path, report: VerifyReport, problems: ProblemLog, k: int | None) -> None:
    """Tiny ImageNet: train and val, the train boxes files, the unlabeled test images counted."""
    found = guard(problems, root, find_tinyimagenet, root)
    if found is None:
        return
    for split in TINYIMAGENET_SPLITS:
        ds = guard(problems, found, scan_tinyimagenet, found, split, problems)
        if ds is not None:
            report.parts.append(classification_part(split, ds, problems, k))
            if split == "train":
                n = check_boxes_files(found, ds.classes, problems)
                report.parts.append({"name": "train boxes", "images": n,
                                     "note": f"{n} boxes in {len(ds.classes)} <wnid>_boxes.txt files"})
    test = found / "test" / "images"
    if test.is_dir():
        n = sum(1 for p in test.iterdir() if p.suffix.lower() in (".jpeg", ".jpg"))
        report.parts.append({"name": "test", "images": n, "note": f"{n} unlabeled images (not a split capgate scores)"})
