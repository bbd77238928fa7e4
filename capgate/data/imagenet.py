"""ImageNet (ILSVRC2012) and ImageNet-style class folders.

Layouts read::

    train/<wnid>/<wnid>_<n>.JPEG                   class folders (ILSVRC2012_img_train.tar, untarred)
    val/<wnid>/ILSVRC2012_val_<8 digits>.JPEG      val in class folders (e.g. after torchvision's sorting), or
    val/ILSVRC2012_val_<8 digits>.JPEG             val flat, as distributed (ILSVRC2012_img_val.tar),
        with its labels in one of
        LOC_val_solution.csv + LOC_synset_mapping.txt   the localization release (Kaggle "imagenet-object-
                                                         localization-challenge"): ``ImageId,PredictionString``
                                                         rows, the first token of PredictionString is the wnid
        ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt + .../meta.mat
                                                         the devkit: line n is the ILSVRC2012_ID (1..1000) of
                                                         ILSVRC2012_val_<n>; meta.mat's ``synsets`` maps
                                                         ILSVRC2012_ID -> WNID (leaves: num_children == 0)

The Kaggle tree ``ILSVRC/Data/CLS-LOC/{train,val}`` under the root (with the ``LOC_*`` files at
the root) is read too, and so is a root pointing at ``CLS-LOC`` itself.

**One class index for both splits**: the wnids of ``LOC_synset_mapping.txt`` in file order,
else the devkit's 1000 leaf wnids sorted, else the union of the class folders of ``train/`` and
``val/`` sorted. The ILSVRC2012 wnid orders agree (``LOC_synset_mapping.txt`` lists the wnids
sorted, as torchvision's ``ImageFolder`` and ``ImageNet`` index them), so a model trained on
``train`` is scored on ``val`` with the same labels even when the two splits hold different
class sets.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from capgate.data.problems import ProblemLog
from capgate.data.types import ClassificationDataset
from capgate.errors import DataError

__all__ = ["read_imagenet", "scan_imagenet", "imagenet_classes", "imagenet_image_root", "IMAGENET_SPLITS",
           "IMAGE_SUFFIXES", "SYNSET_MAPPING", "VAL_SOLUTION", "DEVKIT_GROUND_TRUTH", "DEVKIT_META"]

IMAGENET_SPLITS = ("train", "val")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
SYNSET_MAPPING = "LOC_synset_mapping.txt"
VAL_SOLUTION = "LOC_val_solution.csv"
DEVKIT_GROUND_TRUTH = "ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt"
DEVKIT_META = "ILSVRC2012_devkit_t12/data/meta.mat"
_KAGGLE_TREE = ("ILSVRC", "Data", "CLS-LOC")
_VAL_NUMBER = re.compile(r"ILSVRC2012_val_(\d{8})$")


def imagenet_image_root(root: Path) -> Path:
    """The folder holding ``train/`` and ``val/``: ``root``, or the Kaggle ``ILSVRC/Data/CLS-LOC`` under it."""
    kaggle = root.joinpath(*_KAGGLE_TREE)
    return kaggle if not (root / "train").is_dir() and not (root / "val").is_dir() and kaggle.is_dir() else root


def _label_dirs(root: Path) -> list[Path]:
    """Folders searched for the label files: the root, and the Kaggle top when root is ``CLS-LOC``."""
    dirs = [root]
    if root.parts[-3:] == _KAGGLE_TREE:
        dirs.append(root.parents[2])
    return dirs


def _find(root: Path, rel: str) -> Path | None:
    return next((d / rel for d in _label_dirs(root) if (d / rel).is_file()), None)


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _read_synset_mapping(path: Path, problems: ProblemLog) -> tuple[str, ...]:
    wnids = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            wnid = line.split()[0]
            if not re.fullmatch(r"n\d{8}", wnid):
                problems.add(f"{path}:{lineno}", f"line {line.strip()[:60]!r} does not start with a wnid (n########)",
                             "restore LOC_synset_mapping.txt from the ILSVRC2012 localization release")
            wnids.append(wnid)
    return tuple(wnids)


def _read_devkit_meta(path: Path, problems: ProblemLog) -> dict[int, str] | None:
    """ILSVRC2012_ID -> WNID of the leaf synsets of the devkit's ``meta.mat``."""
    try:
        from scipy.io import loadmat

        synsets = loadmat(path, squeeze_me=True)["synsets"]
        ids, wnids, children = synsets["ILSVRC2012_ID"], synsets["WNID"], synsets["num_children"]
    except Exception as exc:  # scipy raises many types for damaged .mat files
        problems.add(path, f"unreadable devkit meta.mat ({exc})", "restore ILSVRC2012_devkit_t12 from the devkit archive")
        return None
    return {int(i): str(w) for i, w, c in zip(ids, wnids, children) if int(c) == 0}


def imagenet_classes(root: Path, problems: ProblemLog) -> tuple[tuple[str, ...], str]:
    """The class index shared by train and val, and where it came from (see the module docstring)."""
    mapping = _find(root, SYNSET_MAPPING)
    if mapping is not None:
        return _read_synset_mapping(mapping, problems), SYNSET_MAPPING
    meta = _find(root, DEVKIT_META)
    if meta is not None:
        leaves = _read_devkit_meta(meta, problems)
        if leaves:
            return tuple(sorted(leaves.values())), DEVKIT_META
    names: set[str] = set()
    for split in IMAGENET_SPLITS:
        d = root / split
        if d.is_dir():
            names.update(p.name for p in d.iterdir() if p.is_dir())
    return tuple(sorted(names)), "class folders of train/ and val/"


def _flat_val_labels(root: Path, images: list[Path], problems: ProblemLog) -> tuple[dict[str, str], str] | None:
    """Image stem -> wnid for a flat val folder, from LOC_val_solution.csv or the devkit ground truth."""
    solution = _find(root, VAL_SOLUTION)
    if solution is not None:
        labels: dict[str, str] = {}
        with open(solution, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None or not {"ImageId", "PredictionString"} <= set(reader.fieldnames):
                problems.add(solution, f"header is {reader.fieldnames}, not ImageId,PredictionString",
                             "restore LOC_val_solution.csv from the ILSVRC2012 localization release")
                return None
            for lineno, row in enumerate(reader, start=2):
                tokens = (row["PredictionString"] or "").split()
                if not tokens:
                    problems.add(f"{solution}:{lineno}", f"image {row['ImageId']} has an empty PredictionString",
                                 "give the wnid first, e.g. 'n01751748 28 37 452 372'")
                    continue
                labels[row["ImageId"]] = tokens[0]
        return labels, VAL_SOLUTION
    truth, meta = _find(root, DEVKIT_GROUND_TRUTH), _find(root, DEVKIT_META)
    if truth is not None and meta is not None:
        id_to_wnid = _read_devkit_meta(meta, problems)
        if id_to_wnid is None:
            return None
        ids = [line.strip() for line in truth.read_text(encoding="utf-8").splitlines() if line.strip()]
        labels = {}
        for img in images:
            m = _VAL_NUMBER.match(img.stem)
            if m is None:
                continue
            n = int(m.group(1))
            if n > len(ids) or not ids[n - 1].isdigit() or int(ids[n - 1]) not in id_to_wnid:
                problems.add(truth, f"no valid ILSVRC2012_ID on line {n} for {img.name}",
                             "restore the devkit's ILSVRC2012_validation_ground_truth.txt")
                continue
            labels[img.stem] = id_to_wnid[int(ids[n - 1])]
        return labels, DEVKIT_GROUND_TRUTH
    return None


def read_imagenet(root: Path | str, split: str = "train") -> ClassificationDataset:
    """Read one ImageNet split (class folders, or the flat val with its label files).

    Labels index the class list shared by both splits (:func:`imagenet_classes`).
    Raises DataError listing every problem found.
    """
    root = Path(root).absolute()
    problems = ProblemLog()
    ds = scan_imagenet(root, split, problems)
    problems.raise_if_any(f"ImageNet {root} ({split})")
    return ds


def scan_imagenet(root: Path, split: str, problems: ProblemLog) -> ClassificationDataset:
    if split not in IMAGENET_SPLITS:
        raise DataError(f"ImageNet split {split!r} is unknown; valid splits: {', '.join(IMAGENET_SPLITS)}")
    root = imagenet_image_root(root)
    split_dir = root / split
    if not split_dir.is_dir():
        raise DataError(f"{split_dir}: folder is missing; fix: point at the root holding train/<class>/ and val/ "
                        "(class folders, or flat with LOC_val_solution.csv)")
    classes, class_source = imagenet_classes(root, problems)
    index = {c: i for i, c in enumerate(classes)}
    folders = sorted(d.name for d in split_dir.iterdir() if d.is_dir())
    flat = _images(split_dir)
    samples: list[tuple[Path, int]] = []
    meta = {"variant": "imagenet", "n_classes": len(classes), "class_index": class_source, "layout": "class folders"}
    if folders:
        for cls in folders:
            files = _images(split_dir / cls)
            if cls not in index:
                problems.add(split_dir / cls, f"class folder is not in the class index ({class_source})",
                             f"remove the folder or add {cls} to {class_source}")
                continue
            if not files:
                problems.add(split_dir / cls, "class folder has no images", "add images or remove the folder")
            samples.extend((p, index[cls]) for p in files)
    elif flat:
        found = _flat_val_labels(root, flat, problems)
        if found is None:
            problems.add(split_dir, f"{split}/ is flat ({flat[0].name}, ...) but no labels were found",
                         f"put {VAL_SOLUTION} and {SYNSET_MAPPING} at {root}, or the devkit "
                         f"({DEVKIT_GROUND_TRUTH.split('/')[0]}/) there")
        else:
            labels, label_source = found
            meta.update({"layout": "flat", "label_file": label_source})
            for img in flat:
                wnid = labels.get(img.stem)
                if wnid is None:
                    problems.add(img, f"has no label in {label_source}", "restore the label file or remove the image")
                elif wnid not in index:
                    problems.add(img, f"label {wnid} ({label_source}) is not in the class index ({class_source})",
                                 "use label files from the same ILSVRC2012 release")
                else:
                    samples.append((img, index[wnid]))
    else:
        problems.add(split_dir, "has no class folders and no images", "put images in <split>/<class>/ folders")
    return ClassificationDataset(
        name="imagenet", format="imagenet", root=root, split=split, domain=None, classes=classes,
        samples=samples, meta=meta,
    )
