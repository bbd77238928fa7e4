"""The synthetic tiny world: config, generation of every dataset, manifest and safe reuse.

``generate_world(root)`` writes, under ``root``::

    llvip/      LLVIP layout (paired visible/infrared, VOC XML)
    flir/       FLIR ADAS v2 layout (rgb + thermal, train/val/video test, video pairing map)
    imagenet/   ImageNet folder layout (train/val class folders)
    coco/       COCO layout (annotations/instances_{train,val}.json, train/, val/)
    domainnet/  DomainNet layout (domain/class folders, {domain}_{train,test}.txt)
    manifest.json   config, seed, generator version, fingerprint and file count per dataset

Same config and seed give byte-identical files: each image draws from its own generator
seeded by ``(seed, dataset, split, index)``. Generation goes to a temporary sibling folder
that is renamed into place, so a killed run never leaves a half world that looks complete;
``ensure_world`` holds a file lock so concurrent workers on one machine generate once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from capgate.data import synth_datasets
from capgate.store.locks import file_lock
from capgate.data.world_version import GENERATOR_VERSION  # bumped when the output changes; history there
from capgate.errors import DataError

__all__ = ["WorldConfig", "WorldManifest", "generate_world", "ensure_world", "GENERATOR_VERSION", "WORLD_DATASETS"]

log = logging.getLogger(__name__)

WORLD_DATASETS = ("llvip", "flir", "imagenet", "coco", "domainnet")
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class WorldConfig:
    """Sizes of the synthetic world. Image sizes are ``(width, height)``; counts are images
    per split (per class for ImageNet, per class and domain for DomainNet)."""

    datasets: tuple[str, ...] = WORLD_DATASETS
    llvip_size: tuple[int, int] = (160, 128)
    llvip_train: int = 300
    llvip_test: int = 100
    llvip_cameras: int = 8
    llvip_max_people: int = 4
    flir_size: tuple[int, int] = (160, 128)
    flir_train: int = 300
    flir_val: int = 100
    flir_video: int = 40
    flir_max_objects: int = 6
    imagenet_classes: int = 30
    imagenet_train: int = 40
    imagenet_val: int = 10
    imagenet_size: int = 64
    coco_size: tuple[int, int] = (128, 128)
    coco_train: int = 300
    coco_val: int = 60
    coco_max_objects: int = 6
    domainnet_domains: tuple[str, ...] = ("real", "sketch", "clipart", "painting", "quickdraw")
    domainnet_classes: int = 10
    domainnet_train: int = 30
    domainnet_test: int = 10
    domainnet_size: int = 64
    jpeg_quality: int = 90

    def __post_init__(self) -> None:
        unknown = [d for d in self.datasets if d not in WORLD_DATASETS]
        if unknown:
            raise DataError(f"WorldConfig.datasets has unknown {unknown}; valid: {', '.join(WORLD_DATASETS)}")
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, int) and v < 0:
                raise DataError(f"WorldConfig.{f.name}={v} is negative; fix: use a count >= 0")

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> WorldConfig:
        _check_keys(d)
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    def with_overrides(self, overrides: Mapping[str, str]) -> WorldConfig:
        """Apply ``key=value`` strings (``--set``): ints, and comma lists for tuple fields."""
        _check_keys(overrides)
        changes: dict[str, Any] = {}
        for key, text in overrides.items():
            cur = getattr(self, key)
            try:
                if isinstance(cur, tuple):
                    items = [s.strip() for s in str(text).split(",") if s.strip()]
                    changes[key] = tuple(int(s) for s in items) if cur and isinstance(cur[0], int) else tuple(items)
                else:
                    changes[key] = int(text)
            except ValueError:
                raise DataError(f"--set {key}={text!r}: not a valid {type(cur).__name__} (default {cur!r})") from None
        return dataclasses.replace(self, **changes)


def _check_keys(d: Mapping[str, Any]) -> None:
    valid = [f.name for f in dataclasses.fields(WorldConfig)]
    unknown = [k for k in d if k not in valid]
    if unknown:
        raise DataError(f"unknown world setting(s) {unknown}; valid: {', '.join(valid)}")


@dataclass(frozen=True)
class WorldManifest:
    """What a world holds: its config and seed, and per dataset its folder, fingerprint and
    file count (plus what the generator recorded, e.g. categories and splits)."""

    root: Path
    seed: int
    config: WorldConfig
    fingerprint: str
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)
    generator_version: int = GENERATOR_VERSION

    def dataset_root(self, name: str) -> Path:
        """The folder of one dataset (``llvip``, ``flir``, ...)."""
        if name not in self.datasets:
            raise DataError(f"world {self.root} has no dataset {name!r}; it has: {', '.join(self.datasets)}")
        return self.root / self.datasets[name]["path"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "capgate_world": True, "generator_version": self.generator_version, "seed": self.seed,
            "config": self.config.to_dict(), "fingerprint": self.fingerprint, "datasets": self.datasets,
        }

    @classmethod
    def load(cls, root: Path | str) -> WorldManifest:
        root = Path(root).absolute()
        try:
            d = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
            return cls(root, int(d["seed"]), WorldConfig.from_dict(d["config"]), d["fingerprint"], d["datasets"],
                       int(d["generator_version"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{root / MANIFEST}: not a readable capgate world manifest ({exc}); "
                            "fix: delete the folder and run `capgate data synth` again") from None

    def matches(self, config: WorldConfig, seed: int) -> bool:
        return self.generator_version == GENERATOR_VERSION and self.seed == seed and self.config == config


def _tree_fingerprint(folder: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    n = 0
    for p in sorted(q for q in folder.rglob("*") if q.is_file()):
        h.update(p.relative_to(folder).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(p.read_bytes()).digest())
        n += 1
    return h.hexdigest(), n


def _generate_into(tmp: Path, final_root: Path, config: WorldConfig, seed: int) -> WorldManifest:
    datasets: dict[str, dict[str, Any]] = {}
    for name in config.datasets:
        t0 = time.perf_counter()
        info = synth_datasets.GENERATORS[name](tmp / name, config, seed)
        fp, n = _tree_fingerprint(tmp / name)
        datasets[name] = {"path": name, "fingerprint": fp, "files": n, **info}
        log.info("synth %s: %d files in %.1fs", name, n, time.perf_counter() - t0)
    world_fp = hashlib.sha256(
        json.dumps([GENERATOR_VERSION, seed, config.to_dict(), {k: v["fingerprint"] for k, v in datasets.items()}],
                   sort_keys=True).encode()
    ).hexdigest()
    manifest = WorldManifest(final_root, seed, config, world_fp, datasets)
    # the manifest is written last: a folder without it was never completed
    (tmp / MANIFEST).write_text(json.dumps(manifest.to_dict(), sort_keys=True, indent=1) + "\n", encoding="utf-8")
    return manifest


def _lock(root: Path):  # noqa: ANN202 - a context manager
    """The world's own lock file (not ``.<name>.lock``, which callers may hold themselves)."""
    return file_lock(root.parent / f".{root.name}.world-lock")


def _existing(root: Path, config: WorldConfig, seed: int) -> WorldManifest | None:
    if not (root / MANIFEST).is_file():
        return None
    try:
        m = WorldManifest.load(root)
    except DataError:
        return None
    return m if m.matches(config, seed) else None


def _build(root: Path, config: WorldConfig, seed: int, reuse: bool) -> WorldManifest:
    root = Path(root).absolute()
    with _lock(root):
        if reuse and (m := _existing(root, config, seed)) is not None:
            return m
        if root.exists() and any(root.iterdir()) and not (root / MANIFEST).is_file():
            raise DataError(
                f"{root}: folder exists, is not empty and holds no capgate world ({MANIFEST}); refusing to "
                "overwrite it; fix: choose another --out folder or empty this one"
            )
        tmp = root.parent / f".{root.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir(parents=True)
        try:
            t0 = time.perf_counter()
            manifest = _generate_into(tmp, root, config, seed)
            old = None
            if root.exists():
                old = root.parent / f".{root.name}.old-{uuid.uuid4().hex[:8]}"
                os.rename(root, old)
            try:
                os.rename(tmp, root)
            except OSError:  # another machine won the race on a shared file system
                if (m := _existing(root, config, seed)) is not None:
                    return m
                raise
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
            log.info("synthetic world written to %s in %.1fs (fingerprint %s)", root, time.perf_counter() - t0,
                     manifest.fingerprint[:12])
            return manifest
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def generate_world(root: Path | str, config: WorldConfig | None = None, seed: int = 0) -> WorldManifest:
    """Generate (or regenerate) the synthetic world under ``root``, atomically."""
    return _build(Path(root), config or WorldConfig(), int(seed), reuse=False)


def ensure_world(root: Path | str, config: WorldConfig | None = None, seed: int = 0) -> WorldManifest:
    """Reuse the world under ``root`` if its manifest matches config, seed and generator
    version; otherwise generate it atomically. Safe to call from several processes at once."""
    config = config or WorldConfig()
    root = Path(root).absolute()
    m = _existing(root, config, int(seed))  # fast path without the lock
    return m if m is not None else _build(root, config, int(seed), reuse=True)

