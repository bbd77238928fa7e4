"""Tiny ImageNet (the CS231n release, ``tiny-imagenet-200.zip``): 200 classes of 64x64 JPEGs.

Layout read::

    tiny-imagenet-200/
      wnids.txt                          the 200 wnids, one per line: the class index, train and val alike
      words.txt                          ``<wnid>\\t<names>`` for all of WordNet (82115 lines): class names
      train/<wnid>/images/<wnid>_<i>.JPEG    500 per class
      train/<wnid>/<wnid>_boxes.txt      ``<file>\\t<x0>\\t<y0>\\t<x1>\\t<y1>`` (checked by verify, not used)
      val/images/val_<i>.JPEG            10,000 images, flat
      val/val_annotations.txt            ``<file>\\t<wnid>\\t<x0>\\t<y0>\\t<x1>\\t<y1>``
      test/images/test_<i>.JPEG          unlabeled: refused as a split

Labels index ``wnids.txt`` in file order (it is not sorted), so train and val share one index.
Some JPEGs are greyscale; :meth:`~capgate.data.ClassificationDataset.image` returns every image
as 3-channel RGB. ``classes`` are the wnids; ``class_names`` (``meta["class_names"]``) their
``words.txt`` entries. ``root`` may be ``tiny-imagenet-200`` or the folder holding it.
"""

from __future__ import annotations

import re
from pathlib import Path

from capgate.data.problems import ProblemLog
from capgate.data.types import ClassificationDataset
from capgate.errors import DataError

__all__ = ["read_tinyimagenet", "scan_tinyimagenet", "tinyimagenet_classes", "find_tinyimagenet", "check_boxes_files",
           "TINYIMAGENET_SPLITS", "TINYIMAGENET_FOLDER"]

TINYIMAGENET_SPLITS = ("train", "val")
TINYIMAGENET_FOLDER = "tiny-imagenet-200"
_WNID = re.compile(r"n\d{8}")
_SUFFIXES = (".jpeg", ".jpg")


def find_tinyimagenet(root: Path) -> Path:
    """The folder holding ``wnids.txt``: ``root`` or its ``tiny-imagenet-200`` child."""
    for d in (root, root / TINYIMAGENET_FOLDER):
        if (d / "wnids.txt").is_file():
            return d
    raise DataError(f"{root}: no wnids.txt here nor in {TINYIMAGENET_FOLDER}/; fix: point at the extracted "
                    f"{TINYIMAGENET_FOLDER} folder or the folder holding it")


def _wnids(path: Path, problems: ProblemLog) -> tuple[str, ...]:
    out: list[str] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        wnid = line.strip()
        if not wnid:
            continue
        if not _WNID.fullmatch(wnid):
            problems.add(f"{path}:{lineno}", f"{wnid[:40]!r} is not a wnid (n########)", "restore wnids.txt")
        elif wnid in out:
            problems.add(f"{path}:{lineno}", f"wnid {wnid} is listed twice", "restore wnids.txt")
        else:
            out.append(wnid)
    if not out:
        problems.add(path, "lists no wnids", "restore wnids.txt")
    return tuple(out)


def _words(root: Path, wnids: tuple[str, ...], problems: ProblemLog) -> list[str]:
    path, wanted, names = root / "words.txt", set(wnids), {}
    if not path.is_file():
        problems.add(path, "is missing (the class names)", "restore words.txt from the archive")
        return list(wnids)
    with open(path, encoding="utf-8") as f:
        for line in f:
            wnid, _, text = line.rstrip("\n").partition("\t")
            if wnid in wanted:
                names[wnid] = text.strip()
    for w in wnids:
        if w not in names:
            problems.add(path, f"has no line for wnid {w}", "restore words.txt from the archive")
    return [names.get(w, w) for w in wnids]


def _image_number(p: Path) -> tuple[int, str]:
    tail = p.stem.rpartition("_")[2]
    return (int(tail), p.name) if tail.isdigit() else (-1, p.name)


def _jpegs(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in _SUFFIXES), key=_image_number)


def _train(root: Path, wnids: tuple[str, ...], problems: ProblemLog) -> list[tuple[Path, int]]:
    train, samples = root / "train", []
    if not train.is_dir():
        problems.add(train, "folder is missing", "restore train/<wnid>/images/ from the archive")
        return samples
    for extra in sorted({d.name for d in train.iterdir() if d.is_dir()} - set(wnids)):
        problems.add(train / extra, "class folder is not listed in wnids.txt", "remove it or restore wnids.txt")
    for label, wnid in enumerate(wnids):
        images = train / wnid / "images"
        files = _jpegs(images) if images.is_dir() else []
        if not files:
            problems.add(images, f"class {wnid} has no images", f"restore train/{wnid}/images/")
        samples.extend((p, label) for p in files)
    return samples


def _val(root: Path, wnids: tuple[str, ...], problems: ProblemLog) -> list[tuple[Path, int]]:
    ann, images = root / "val" / "val_annotations.txt", root / "val" / "images"
    if not ann.is_file():
        problems.add(ann, "is missing (val's labels)", "restore val/val_annotations.txt from the archive")
        return []
    index, samples, seen = {w: i for i, w in enumerate(wnids)}, [], set()
    for lineno, line in enumerate(ann.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where, parts = f"{ann}:{lineno}", line.split("\t")
        if len(parts) != 6 or "/" in parts[0] or "\\" in parts[0]:
            problems.add(where, f"bad line {line.strip()[:80]!r}", "write '<file>\\t<wnid>\\t<x0>\\t<y0>\\t<x1>\\t<y1>'")
            continue
        name, wnid = parts[0], parts[1]
        if wnid not in index:
            problems.add(where, f"wnid {wnid} of {name} is not in wnids.txt", "restore val_annotations.txt")
        elif not (images / name).is_file():
            problems.add(where, f"image val/images/{name} is missing", "restore the image or remove the line")
        else:
            samples.append((images / name, index[wnid]))
        seen.add(name)
    if images.is_dir():
        for p in _jpegs(images):
            if p.name not in seen:
                problems.add(p, "has no line in val/val_annotations.txt", "restore val_annotations.txt")
    return samples


def scan_tinyimagenet(root: Path, split: str, problems: ProblemLog) -> ClassificationDataset:
    """One split, every problem collected in ``problems`` (see :func:`read_tinyimagenet`)."""
    if split == "test":
        raise DataError("Tiny ImageNet's test/ images carry no labels (they were never released), so they cannot "
                        "be scored; fix: evaluate on split 'val'")
    if split not in TINYIMAGENET_SPLITS:
        raise DataError(f"Tiny ImageNet split {split!r} is unknown; valid splits: {', '.join(TINYIMAGENET_SPLITS)}")
    root = find_tinyimagenet(Path(root).absolute())
    wnids = _wnids(root / "wnids.txt", problems)
    names = _words(root, wnids, problems)
    samples = (_train if split == "train" else _val)(root, wnids, problems)
    return ClassificationDataset(
        name="tinyimagenet", format="tinyimagenet", root=root, split=split, domain=None, classes=wnids,
        samples=samples, meta={"variant": "tinyimagenet", "class_index": "wnids.txt", "class_names": names},
    )


def tinyimagenet_classes(root: Path | str) -> tuple[str, ...]:
    """The wnids of ``wnids.txt`` in file order (the label index), without reading any image."""
    problems = ProblemLog()
    root = find_tinyimagenet(Path(root).absolute())
    wnids = _wnids(root / "wnids.txt", problems)
    problems.raise_if_any(f"Tiny ImageNet {root} (wnids.txt)")
    return wnids


def read_tinyimagenet(root: Path | str, split: str = "train") -> ClassificationDataset:
    """Read the ``train`` or ``val`` split. The unlabeled ``test`` split raises DataError, and so
    does any problem found (listing every one)."""
    problems = ProblemLog()
    ds = scan_tinyimagenet(Path(root), split, problems)
    problems.raise_if_any(f"Tiny ImageNet {ds.root} ({split})")
    return ds


def check_boxes_files(root: Path, wnids: tuple[str, ...], problems: ProblemLog, size: int = 64) -> int:
    """Check every ``train/<wnid>/<wnid>_boxes.txt``: five tab-separated fields, an existing image,
    ``0 <= x0 <= x1 < size``; returns the boxes read."""
    n = 0
    for wnid in wnids:
        path = root / "train" / wnid / f"{wnid}_boxes.txt"
        if not path.is_file():
            problems.add(path, "boxes file is missing", "restore it from the archive")
            continue
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            parts = line.split("\t")
            ok = len(parts) == 5 and all(v.strip().lstrip("-").isdigit() for v in parts[1:])
            x0, y0, x1, y1 = (int(v) for v in parts[1:]) if ok else (0, 0, -1, -1)
            if not ok or not (0 <= x0 <= x1 < size and 0 <= y0 <= y1 < size):
                problems.add(f"{path}:{lineno}", f"bad box line {line.strip()[:80]!r}",
                             f"write '<file>\\t<x0>\\t<y0>\\t<x1>\\t<y1>' inside the {size}x{size} image")
            elif not (root / "train" / wnid / "images" / parts[0]).is_file():
                problems.add(f"{path}:{lineno}", f"image {parts[0]} is missing", "restore it or remove the line")
            n += 1
    return n
