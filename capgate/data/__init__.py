"""Datasets: the synthetic tiny world and readers for the real datasets' layouts.

Readers return :class:`DetectionDataset` / :class:`ClassificationDataset` (see
:mod:`capgate.data.types` for the box convention); each reader's module docstring states the
real dataset's layout and conventions it follows. Bad input raises
:class:`capgate.errors.DataError` naming the file, the problem and the fix; ``drop_invalid=True``
drops invalid boxes instead and counts them per annotation file (``meta["dropped_by_file"]``).
:func:`export_coco` writes what the readers return as COCO JSON.
This package imports neither torch nor ray.
"""

from __future__ import annotations

from capgate.data.classmap import PRESETS, ClassMap, resolve_class_map
from capgate.data.coco import read_coco
from capgate.data.domainnet import read_domainnet
from capgate.data.export import export_coco
from capgate.data.flir import flir_video_pairs, read_flir
from capgate.data.imagenet import read_imagenet
from capgate.data.llvip import read_llvip
from capgate.data.registry import CLASSIFICATION_FORMATS, DETECTION_FORMATS, open_classification, open_detection
from capgate.data.synth_world import WorldConfig, WorldManifest, ensure_world, generate_world
from capgate.data.types import (
    ClassificationDataset,
    DetectionDataset,
    DetectionSample,
    load_image,
    load_image_array,
)

__all__ = [
    "DetectionSample",
    "DetectionDataset",
    "ClassificationDataset",
    "load_image",
    "load_image_array",
    "ClassMap",
    "PRESETS",
    "resolve_class_map",
    "read_llvip",
    "read_flir",
    "flir_video_pairs",
    "read_coco",
    "read_imagenet",
    "read_domainnet",
    "export_coco",
    "open_detection",
    "open_classification",
    "DETECTION_FORMATS",
    "CLASSIFICATION_FORMATS",
    "WorldConfig",
    "WorldManifest",
    "generate_world",
    "ensure_world",
]
