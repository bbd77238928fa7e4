"""One entry point per task that the grid calls from a spec: format name -> reader.

Unknown formats raise a DataError listing the valid ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from capgate.data.classmap import ClassMap
from capgate.data.coco import coco_split_paths, read_coco
from capgate.data.domainnet import read_domainnet
from capgate.data.flir import read_flir
from capgate.data.imagenet import read_imagenet
from capgate.data.llvip import read_llvip
from capgate.data.types import ClassificationDataset, DetectionDataset
from capgate.errors import DataError

__all__ = ["open_detection", "open_classification", "DETECTION_FORMATS", "CLASSIFICATION_FORMATS"]


def _open_coco(root: Path, split: str, modality: str, class_map: Any, **kw: Any) -> DetectionDataset:
    """COCO root layout: ``annotations/instances_<split>.json`` and images in ``<split>/`` (``val2014/``
    for COCO 2014's minival files; :func:`~capgate.data.coco.coco_split_paths`)."""
    json_path, image_dir = coco_split_paths(root, split)
    return read_coco(json_path, image_dir, class_map, split=split, modality=modality, **kw)


DETECTION_FORMATS: dict[str, Callable[..., DetectionDataset]] = {
    "llvip": lambda root, split, modality, class_map, **kw: read_llvip(root, split, modality, class_map, **kw),
    "flir": lambda root, split, modality, class_map, **kw: read_flir(
        root, split, modality, kw.pop("version", None), class_map, **kw
    ),
    "flir_v2": lambda root, split, modality, class_map, **kw: read_flir(root, split, modality, "v2", class_map, **kw),
    "flir_v1": lambda root, split, modality, class_map, **kw: read_flir(root, split, modality, "v1", class_map, **kw),
    "coco": _open_coco,
}

CLASSIFICATION_FORMATS: dict[str, Callable[..., ClassificationDataset]] = {
    "imagenet": lambda root, split, domain, classes: read_imagenet(root, split),
    "domainnet": lambda root, split, domain, classes: read_domainnet(root, _need_domain(domain), split, classes),
}


def _need_domain(domain: str | None) -> str:
    if not domain:
        raise DataError("format 'domainnet' needs a domain (e.g. 'real', 'sketch'); fix: pass domain=...")
    return domain


def open_detection(
    format: str,
    root: Path | str,
    split: str,
    modality: str = "rgb",
    class_map: ClassMap | dict | str | None = None,
    **kw: Any,
) -> DetectionDataset:
    """Open a detection dataset by format name (``llvip``, ``flir`` (auto v1/v2), ``flir_v2``,
    ``flir_v1``, ``coco``). ``kw`` goes to the reader (e.g. ``drop_invalid=True``)."""
    try:
        reader = DETECTION_FORMATS[format]
    except KeyError:
        raise DataError(f"unknown detection format {format!r}; valid: {', '.join(DETECTION_FORMATS)}") from None
    return reader(Path(root), split, modality, class_map, **kw)


def open_classification(
    format: str,
    root: Path | str,
    split: str,
    domain: str | None = None,
    classes: int | Sequence[str] | None = None,
) -> ClassificationDataset:
    """Open a classification dataset by format name (``imagenet``, ``domainnet``)."""
    try:
        reader = CLASSIFICATION_FORMATS[format]
    except KeyError:
        raise DataError(
            f"unknown classification format {format!r}; valid: {', '.join(CLASSIFICATION_FORMATS)}"
        ) from None
    return reader(Path(root), split, domain, classes)
