"""The synthetic benchmark world: tiny stand-ins for CIFAR-10, CIFAR-100 and Tiny ImageNet.

``ensure_benchmark_world(root)`` writes, under ``root``, in the real datasets' layouts::

    cifar10/       cifar-10-batches-py/ (Python 2 pickles) and cifar-10-batches-bin/ (binary records)
    cifar100/      cifar-100-python/ and cifar-100-binary/ (fine and coarse labels)
    tinyimagenet/  tiny-imagenet-200/ (wnids.txt, words.txt, train/<wnid>/images + boxes, val, test)
    manifest.json  version, seed, config and a fingerprint per dataset

Images come from the synthetic world's shape generator (:func:`~capgate.data.synth_classify.imagenet_image_box`,
textured shapes over clutter): CIFAR-10-like classes are 10 (shape, texture) pairs at 32x32;
CIFAR-100-like ones 5 shapes x 4 textures = 20 fine classes grouped into 5 coarse ones (the
shape), at 32x32; Tiny-ImageNet-like ones 20 classes at 64x64, every 7th image a greyscale
JPEG (the real set has some), wnids ``n9xxxxxxx`` (no real WordNet id) listed unsorted.

This world is separate from the tiny world of :mod:`capgate.data.synth_world` and versioned on
its own (:data:`BENCHMARK_VERSION`), so the tiny world's bytes and its run ids never change
because of it. Same config and seed give byte-identical files; generation takes seconds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from capgate.store.locks import file_lock
from capgate.data.synth_classify import imagenet_classes, imagenet_image_box
from capgate.data.synth_cifar import write_cifar
from capgate.data.synth_datasets import image_rng
from capgate.data.synth_formats import write_jpeg
from capgate.errors import DataError

__all__ = ["BenchmarkConfig", "BenchmarkWorld", "ensure_benchmark_world", "BENCHMARK_VERSION", "BENCHMARK_DATASETS"]

#: Bumped whenever the benchmark world's bytes change. 1: first version. 2: 2x the train images per class
#: (1,000 per dataset: CIFAR-10 100 per class, not 50) and 500 test images each (a top-1 to about 2 pp, not 3).
BENCHMARK_VERSION = 2
BENCHMARK_DATASETS = ("cifar10", "cifar100", "tinyimagenet")
_MANIFEST = "manifest.json"
_CIFAR100_SHAPES = ("person", "car_side", "dog", "house", "tree")
_TEXTURES = ("plain", "stripes", "dots", "checker")


@dataclass(frozen=True)
class BenchmarkConfig:
    """Images per class of each split."""

    cifar10_train: int = 100
    cifar10_test: int = 50
    cifar100_train: int = 50
    cifar100_test: int = 25
    tiny_classes: int = 20
    tiny_train: int = 50
    tiny_val: int = 25
    tiny_test: int = 40  # in all, unlabeled
    jpeg_quality: int = 90


@dataclass(frozen=True)
class BenchmarkWorld:
    """A generated benchmark world: its root and, per dataset, the folder to give as a spec's ``root``."""

    root: Path
    seed: int
    fingerprint: str
    datasets: dict[str, dict[str, Any]]

    def dataset_root(self, name: str) -> Path:
        """The root of ``cifar10``, ``cifar100`` or ``tinyimagenet`` (the folder holding the extracted one)."""
        if name not in self.datasets:
            raise DataError(f"benchmark world {self.root} has no dataset {name!r}; it has: {', '.join(self.datasets)}")
        return self.root / name


def _draw(seed: int, dataset: str, split: str, classes: list[tuple[str, str]], per_class: int,
          size: int) -> tuple[np.ndarray, np.ndarray, list[tuple]]:
    """Images (N, size, size, 3), labels and boxes, classes interleaved in a seeded order."""
    labels = np.repeat(np.arange(len(classes)), per_class)
    labels = labels[np.random.default_rng([seed, len(labels)]).permutation(len(labels))]
    images = np.zeros((len(labels), size, size, 3), dtype=np.uint8)
    boxes = []
    for i, y in enumerate(labels.tolist()):
        shape, texture = classes[y]
        images[i], box = imagenet_image_box(image_rng(seed, dataset, split, i), shape, texture, size)
        boxes.append(box)
    return images, labels, boxes


def _gen_cifar10(folder: Path, cfg: BenchmarkConfig, seed: int) -> dict[str, Any]:
    classes = [(shape, tex) for _, shape, tex in imagenet_classes(10)]
    names = [f"{s}_{t}" for s, t in classes]
    splits = {}
    for split, n in (("train", cfg.cifar10_train), ("test", cfg.cifar10_test)):
        images, labels, _ = _draw(seed, "cifar10", split, classes, n, 32)
        splits[split] = (images, {"fine": labels})
    write_cifar(folder, "cifar10", splits, {"fine": names})
    return {"classes": names}


def _gen_cifar100(folder: Path, cfg: BenchmarkConfig, seed: int) -> dict[str, Any]:
    # label order as in the real meta: names sorted; coarse = the shape, fine = shape and texture
    fine = sorted((f"{s}_{t}", s, t) for s in _CIFAR100_SHAPES for t in _TEXTURES)
    coarse = sorted(_CIFAR100_SHAPES)
    splits = {}
    for split, n in (("train", cfg.cifar100_train), ("test", cfg.cifar100_test)):
        images, labels, _ = _draw(seed, "cifar100", split, [(s, t) for _, s, t in fine], n, 32)
        coarse_labels = np.array([coarse.index(fine[y][1]) for y in labels.tolist()], dtype=np.int64)
        splits[split] = (images, {"fine": labels, "coarse": coarse_labels})
    write_cifar(folder, "cifar100", splits, {"fine": [f for f, _, _ in fine], "coarse": coarse})
    return {"classes": [f for f, _, _ in fine], "coarse_classes": coarse}


def _jpeg(path: Path, img: np.ndarray, grey: bool, quality: int) -> None:
    if grey:  # BT.601 luma, as PIL's convert("L")
        img = (img.astype(np.float64) @ np.array([0.299, 0.587, 0.114]) + 0.5).astype(np.uint8)
    write_jpeg(path, img, quality)


def _tiny_box(box: tuple) -> str:
    x0, y0, x1, y1 = box
    return "\t".join(str(v) for v in (int(x0), int(y0), min(63, int(np.ceil(x1)) - 1), min(63, int(np.ceil(y1)) - 1)))


def _gen_tiny(folder: Path, cfg: BenchmarkConfig, seed: int) -> dict[str, Any]:
    root = folder / "tiny-imagenet-200"
    classes = imagenet_classes(cfg.tiny_classes)
    wnids = [f"n9{i:07d}" for i in range(len(classes))]
    order = list(range(len(classes)))[::-1]  # the real wnids.txt is not sorted either
    root.mkdir(parents=True, exist_ok=True)
    (root / "wnids.txt").write_text("".join(f"{wnids[i]}\n" for i in order), encoding="utf-8")
    words = [f"{wnids[i]}\t{classes[i][0].replace('_', ' ')}" for i in range(len(classes))]
    words += [f"n8{i:07d}\tnot a class of this set {i}" for i in range(3)]  # words.txt covers all of WordNet
    (root / "words.txt").write_text("\n".join(sorted(words)) + "\n", encoding="utf-8")
    pairs = [(classes[i][1], classes[i][2]) for i in order]
    k = 0
    for split, n in (("train", cfg.tiny_train), ("val", cfg.tiny_val)):
        images, labels, boxes = _draw(seed, "tinyimagenet", split, pairs, n, 64)
        lines: dict[str, list[str]] = {}
        for i, (img, y, box) in enumerate(zip(images, labels.tolist(), boxes)):
            wnid = wnids[order[y]]
            name = f"{wnid}_{len(lines.get(wnid, []))}.JPEG" if split == "train" else f"val_{i}.JPEG"
            path = root / "train" / wnid / "images" / name if split == "train" else root / "val" / "images" / name
            _jpeg(path, img, k % 7 == 3, cfg.jpeg_quality)
            k += 1
            lines.setdefault(wnid if split == "train" else "val", []).append(
                f"{name}\t{_tiny_box(box)}" if split == "train" else f"{name}\t{wnid}\t{_tiny_box(box)}")
        for key, rows in lines.items():
            target = root / "train" / key / f"{key}_boxes.txt" if split == "train" else root / "val" / "val_annotations.txt"
            target.write_text("\n".join(rows) + "\n", encoding="utf-8")
    test, _, _ = _draw(seed, "tinyimagenet", "test", pairs, 1, 64)
    extra, _, _ = _draw(seed + 1, "tinyimagenet", "test", pairs, 1, 64)
    for i, img in enumerate(np.concatenate([test, extra])[:cfg.tiny_test]):
        _jpeg(root / "test" / "images" / f"test_{i}.JPEG", img, i % 7 == 3, cfg.jpeg_quality)
    return {"classes": [wnids[i] for i in order], "class_names": [classes[i][0] for i in order]}


_GENERATORS = {"cifar10": _gen_cifar10, "cifar100": _gen_cifar100, "tinyimagenet": _gen_tiny}


def _fingerprint(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(q for q in folder.rglob("*") if q.is_file()):
        h.update(p.relative_to(folder).as_posix().encode() + b"\0" + hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def _load(root: Path, config: BenchmarkConfig, seed: int) -> BenchmarkWorld | None:
    try:
        d = json.loads((root / _MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if d.get("version") != BENCHMARK_VERSION or d.get("seed") != seed or d.get("config") != dataclasses.asdict(config):
        return None
    return BenchmarkWorld(root, seed, d["fingerprint"], d["datasets"])


def ensure_benchmark_world(root: Path | str, config: BenchmarkConfig | None = None, seed: int = 0) -> BenchmarkWorld:
    """Reuse the benchmark world under ``root`` if its manifest matches version, config and seed;
    otherwise generate it into a temporary sibling and rename it into place (under a file lock, so
    concurrent callers generate once)."""
    config, root, seed = config or BenchmarkConfig(), Path(root).absolute(), int(seed)
    if (found := _load(root, config, seed)) is not None:
        return found
    with file_lock(root.parent / f".{root.name}.benchmark-lock"):
        if (found := _load(root, config, seed)) is not None:
            return found
        if root.exists() and any(root.iterdir()) and not (root / _MANIFEST).is_file():
            raise DataError(f"{root}: folder exists, is not empty and holds no benchmark world ({_MANIFEST}); "
                            "refusing to overwrite it; fix: choose another folder or empty this one")
        tmp = root.parent / f".{root.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            datasets = {}
            for name in BENCHMARK_DATASETS:
                info = _GENERATORS[name](tmp / name, config, seed)
                datasets[name] = {"path": name, "fingerprint": _fingerprint(tmp / name), **info}
            fp = hashlib.sha256(json.dumps([BENCHMARK_VERSION, seed, {k: v["fingerprint"] for k, v in datasets.items()}],
                                           sort_keys=True).encode()).hexdigest()
            doc = {"capgate_benchmark_world": True, "version": BENCHMARK_VERSION, "seed": seed,
                   "config": dataclasses.asdict(config), "fingerprint": fp, "datasets": datasets}
            (tmp / _MANIFEST).write_text(json.dumps(doc, sort_keys=True, indent=1) + "\n", encoding="utf-8")
            if root.exists():
                shutil.rmtree(root)
            os.rename(tmp, root)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return BenchmarkWorld(root, seed, fp, datasets)
