"""Datasets: the synthetic tiny world and readers for the real datasets' layouts.

Readers return :class:`DetectionDataset` / :class:`ClassificationDataset` (see
:mod:`capgate.data.types` for the box convention); each reader's module docstring states the
real dataset's layout and conventions it follows. Every format has one record in
:mod:`capgate.data.registry` (open, verify, export, splits), from which the CLI and spec
validation take their format lists. Bad input raises :class:`capgate.errors.DataError` naming
the file, the problem and the fix; ``drop_invalid=True`` drops invalid boxes instead and counts
them per annotation file (``meta["dropped_by_file"]``). :func:`export_coco` writes what the
readers return as COCO JSON. This package imports neither torch nor ray; names are imported
lazily, so ``capgate.data.registry`` (the CLI's format lists) stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> the module that defines it
_EXPORTS = {
    "DetectionSample": "capgate.data.types",
    "DetectionDataset": "capgate.data.types",
    "ClassificationDataset": "capgate.data.types",
    "load_image": "capgate.data.types",
    "load_image_array": "capgate.data.types",
    "select_classes": "capgate.data.types",
    "ClassMap": "capgate.data.classmap",
    "PRESETS": "capgate.data.classmap",
    "resolve_class_map": "capgate.data.classmap",
    "read_llvip": "capgate.data.llvip",
    "read_flir": "capgate.data.flir",
    "flir_video_pairs": "capgate.data.flir",
    "read_coco": "capgate.data.coco",
    "read_imagenet": "capgate.data.imagenet",
    "read_domainnet": "capgate.data.domainnet",
    "read_cifar": "capgate.data.cifar",
    "read_tinyimagenet": "capgate.data.tinyimagenet",
    "DataFormat": "capgate.data.registry",
    "FORMATS": "capgate.data.registry",
    "get_format": "capgate.data.registry",
    "format_names": "capgate.data.registry",
    "export_coco": "capgate.data.registry",
    "verify_dataset": "capgate.data.registry",
    "open_detection": "capgate.data.registry",
    "open_classification": "capgate.data.registry",
    "DETECTION_FORMATS": "capgate.data.registry",
    "CLASSIFICATION_FORMATS": "capgate.data.registry",
    "WorldConfig": "capgate.data.synth_world",
    "WorldManifest": "capgate.data.synth_world",
    "generate_world": "capgate.data.synth_world",
    "ensure_world": "capgate.data.synth_world",
    "ensure_benchmark_world": "capgate.data.synth_benchmark",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'capgate.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
