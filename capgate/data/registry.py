"""THE dataset formats: one record per on-disk format, and the entry points that use them.

Each :class:`DataFormat` says everything capgate does with one format: its task, its splits,
how a split is opened (``open``), whether and how ``capgate data verify`` checks it (``verify``)
and ``capgate data export`` writes it as COCO (``export``), and the fixed reader options of a
variant record (``cifar100_coarse`` is ``cifar100`` read with ``labels="coarse"``). The CLI's
``--format`` choices, a spec's valid formats and the open/verify/export entry points are all
computed from :data:`FORMATS`; a format added here is everywhere at once.

This module imports no reader at import time (the CLI builds its ``--format`` choices from it
and stays light): each record's operations import their reader on first call. An unknown
format raises a DataError listing the valid ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from capgate.errors import DataError

__all__ = ["DataFormat", "FORMATS", "get_format", "format_names", "open_detection", "open_classification",
           "verify_dataset", "export_coco", "dataset_classes", "DETECTION_FORMATS", "CLASSIFICATION_FORMATS", "VERIFY_FORMATS",
           "EXPORT_FORMATS"]


@dataclass(frozen=True)
class DataFormat:
    """One on-disk format. ``open(root, split, **kw)`` returns the reader's dataset;
    ``verify(root, report, problems, max_checks, drop_invalid)`` adds parts and problems to a
    :class:`~capgate.data.verify.VerifyReport`; ``export(root, class_map, drop_invalid)`` lists the
    detection datasets to write as COCO. ``splits`` None: named by the files (COCO's
    ``instances_<split>.json``)."""

    name: str
    task: str
    splits: tuple[str, ...] | None
    open: Callable[..., Any]
    verify: Callable[..., None] | None = None
    export: Callable[..., list] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    about: str = ""
    classes: Callable[[Path], tuple[str, ...]] | None = None  # the class list from the class index file alone


# --- detection --------------------------------------------------------------------------------

def _open_llvip(root: Path, split: str, modality: str, class_map: Any, **kw: Any) -> Any:
    from capgate.data.llvip import read_llvip

    return read_llvip(root, split, modality, class_map, **kw)


def _flir_opener(version: str | None) -> Callable[..., Any]:
    def _open_flir(root: Path, split: str, modality: str, class_map: Any, **kw: Any) -> Any:
        from capgate.data.flir import read_flir

        return read_flir(root, split, modality, kw.pop("version", None) if version is None else version,
                         class_map, **kw)
    return _open_flir


def _open_coco(root: Path, split: str, modality: str, class_map: Any, **kw: Any) -> Any:
    """COCO root layout: ``annotations/instances_<split>.json`` and images in ``<split>/`` (``val2014/``
    for COCO 2014's minival files; :func:`~capgate.data.coco.coco_split_paths`)."""
    from capgate.data.coco import coco_split_paths, read_coco

    json_path, image_dir = coco_split_paths(root, split)
    return read_coco(json_path, image_dir, class_map, split=split, modality=modality, **kw)


def _verifier(name: str) -> Callable[..., None]:
    def _verify(root: Path, report: Any, problems: Any, k: int | None, drop_invalid: bool) -> None:
        from capgate.data import verify

        getattr(verify, name)(root, report, problems, k, drop_invalid)
    return _verify


def _exporter(name: str) -> Callable[..., list]:
    def _export(root: Path, class_map: Any, drop_invalid: bool) -> list:
        from capgate.data import export

        return getattr(export, name)(root, class_map, drop_invalid)
    return _export


# --- classification ---------------------------------------------------------------------------

def _open_imagenet(root: Path, split: str, domain: str | None, classes: Any) -> Any:
    from capgate.data.imagenet import read_imagenet

    return read_imagenet(root, split)


def _open_domainnet(root: Path, split: str, domain: str | None, classes: Any) -> Any:
    from capgate.data.domainnet import read_domainnet

    if not domain:
        raise DataError("format 'domainnet' needs a domain (e.g. 'real', 'sketch'); fix: pass domain=...")
    return read_domainnet(root, domain, split, classes)


def _cifar_opener(variant: str) -> Callable[..., Any]:
    def _open_cifar(root: Path, split: str, domain: str | None, classes: Any, labels: str = "fine",
                    version: str | None = None) -> Any:
        from capgate.data.cifar import read_cifar
        from capgate.data.types import select_classes

        return select_classes(read_cifar(root, variant, split, labels, version), classes)
    return _open_cifar


def _open_tinyimagenet(root: Path, split: str, domain: str | None, classes: Any) -> Any:
    from capgate.data.tinyimagenet import read_tinyimagenet
    from capgate.data.types import select_classes

    return select_classes(read_tinyimagenet(root, split), classes)


def _tinyimagenet_classes(root: Path) -> tuple[str, ...]:
    from capgate.data.tinyimagenet import tinyimagenet_classes

    return tinyimagenet_classes(root)


def _verify_benchmark(name: str) -> Callable[..., None]:
    def _verify(root: Path, report: Any, problems: Any, k: int | None, drop_invalid: bool) -> None:
        from capgate.data import verify_classify

        getattr(verify_classify, name)(root, report, problems, k)
    return _verify


FORMATS: dict[str, DataFormat] = {f.name: f for f in (
    DataFormat("llvip", "detection", ("train", "test"), _open_llvip, _verifier("verify_llvip"),
               _exporter("llvip_sets"), about="LLVIP: paired visible/infrared, VOC XML"),
    DataFormat("flir", "detection", ("train", "val", "video_test"), _flir_opener(None), _verifier("verify_flir"),
               _exporter("flir_sets"), about="FLIR ADAS v1 or v2 (found from the layout)"),
    DataFormat("flir_v2", "detection", ("train", "val", "video_test"), _flir_opener("v2"), about="FLIR ADAS v2"),
    DataFormat("flir_v1", "detection", ("train", "val", "video_test"), _flir_opener("v1"), about="FLIR ADAS v1"),
    DataFormat("coco", "detection", None, _open_coco, _verifier("verify_coco"), _exporter("coco_sets"),
               about="COCO: annotations/instances_<split>.json"),
    DataFormat("imagenet", "classification", ("train", "val"), _open_imagenet, _verifier("verify_imagenet"),
               about="ImageNet (ILSVRC2012) class folders"),
    DataFormat("domainnet", "classification", ("train", "test"), _open_domainnet, _verifier("verify_domainnet"),
               about="DomainNet: one domain per split file"),
    DataFormat("cifar10", "classification", ("train", "test"), _cifar_opener("cifar10"),
               _verify_benchmark("verify_cifar10"), about="CIFAR-10, Python or binary version"),
    DataFormat("cifar100", "classification", ("train", "test"), _cifar_opener("cifar100"),
               _verify_benchmark("verify_cifar100"), about="CIFAR-100 (100 fine labels), Python or binary version"),
    DataFormat("cifar100_coarse", "classification", ("train", "test"), _cifar_opener("cifar100"),
               options={"labels": "coarse"}, about="CIFAR-100 read with its 20 coarse superclasses"),
    DataFormat("tinyimagenet", "classification", ("train", "val"), _open_tinyimagenet,
               _verify_benchmark("verify_tinyimagenet"), about="Tiny ImageNet (tiny-imagenet-200)",
               classes=_tinyimagenet_classes),
)}


def format_names(task: str | None = None, can: str | None = None) -> tuple[str, ...]:
    """Format names in registry order: of ``task`` (``detection``/``classification``) and/or
    those that ``can`` be checked (``verify``) or exported (``export``)."""
    return tuple(n for n, f in FORMATS.items()
                 if (task is None or f.task == task) and (can is None or getattr(f, can) is not None))


DETECTION_FORMATS = format_names("detection")
CLASSIFICATION_FORMATS = format_names("classification")
VERIFY_FORMATS = format_names(can="verify")
EXPORT_FORMATS = format_names(can="export")


def get_format(name: str, task: str | None = None) -> DataFormat:
    """The record of ``name`` (of ``task`` when given); unknown names raise listing the valid ones."""
    f = FORMATS.get(name)
    if f is None or (task is not None and f.task != task):
        valid = format_names(task)
        raise DataError(f"unknown {task + ' ' if task else ''}format {name!r}; valid: {', '.join(valid)}")
    return f


def open_detection(format: str, root: Path | str, split: str, modality: str = "rgb",
                   class_map: Any = None, **kw: Any) -> Any:
    """Open a detection split by format name (``llvip``, ``flir`` (v1/v2 from the layout), ``flir_v2``,
    ``flir_v1``, ``coco``). ``kw`` goes to the reader (e.g. ``drop_invalid=True``)."""
    f = get_format(format, "detection")
    return f.open(Path(root), split, modality, class_map, **{**f.options, **kw})


def open_classification(format: str, root: Path | str, split: str, domain: str | None = None,
                        classes: int | Sequence[str] | None = None, **options: Any) -> Any:
    """Open a classification split by format name (``imagenet``, ``domainnet``, ``cifar10``,
    ``cifar100``, ``cifar100_coarse``, ``tinyimagenet``): a
    :class:`~capgate.data.ClassificationDataset` with ``classes``, ``len()``, ``label(i)`` and
    ``image(i)`` (RGB). ``root`` may be the extracted folder or the folder holding it;
    ``options`` go to the reader (CIFAR: ``labels="coarse"``, ``version="binary"``)."""
    f = get_format(format, "classification")
    return f.open(Path(root), split, domain, classes, **{**f.options, **options})


def dataset_classes(format: str, root: Path | str) -> tuple[str, ...]:
    """A dataset's class list in label order, read from its class index file alone (Tiny ImageNet:
    ``wnids.txt``), without scanning its images: what a spec's ``classes: from_data`` resolves to."""
    f = FORMATS.get(format)
    if f is None or f.classes is None:
        able = ", ".join(n for n, g in FORMATS.items() if g.classes is not None)
        raise DataError(f"format {format!r} has no class index to read the classes from; formats that have one: "
                        f"{able}; fix: list the class names under 'classes'")
    return f.classes(Path(root))


def verify_dataset(path: Path | str, format: str, max_image_checks: int | None = 2000,
                   drop_invalid: bool = False) -> Any:
    """Check a dataset on disk and collect every problem: a
    :class:`~capgate.data.verify.VerifyReport` (never raises for bad data; raises DataError only for
    a format without checks or a missing path). ``drop_invalid`` treats invalid boxes as the
    readers do with ``drop_invalid=True``: dropped and counted per file instead of errors."""
    from capgate.data.problems import ProblemLog
    from capgate.data.verify import VerifyReport

    f = FORMATS.get(format)
    if f is None or f.verify is None:
        raise DataError(f"unknown dataset format {format!r} for verify; valid: {', '.join(VERIFY_FORMATS)}")
    path = Path(path).absolute()
    if not path.exists():
        raise DataError(f"{path}: does not exist; fix: give the dataset's root folder")
    report, problems = VerifyReport(path, format, drop_invalid=drop_invalid), ProblemLog()
    f.verify(path, report, problems, max_image_checks, drop_invalid)
    # a broken annotation shared by both modalities is found twice: report it once
    report.problems = list(dict.fromkeys(problems.problems))
    return report


def export_coco(path: Path | str, format: str, out: Path | str, class_map: Any = None,
                drop_invalid: bool = False) -> list:
    """Write ``<out>/<split>_<modality>.json`` for every split and modality of a detection dataset
    found under ``path`` (:mod:`capgate.data.export`); the list of
    :class:`~capgate.data.export.ExportedFile`. Raises DataError for a format without export, a
    dataset with nothing to export, or the readers' problems (those a training run stops on)."""
    from capgate.data.export import write_coco_files

    f = FORMATS.get(format)
    if f is None or f.export is None:
        raise DataError(f"export supports the detection formats {', '.join(EXPORT_FORMATS)}, not {format!r}")
    root = Path(path).absolute()
    if not root.is_dir():
        raise DataError(f"{root}: is not a folder; fix: give the dataset's root folder")
    datasets = f.export(root, class_map, drop_invalid)
    if not datasets:
        raise DataError(f"{root}: no {format} splits found to export; fix: check with "
                        f"`capgate data verify {root} --format {format}`")
    return write_coco_files(datasets, out)
