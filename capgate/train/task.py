"""One task object per task: the operations a run or a pretraining stage needs.

Detection and classification differ in how a split is opened and decoded, which model is
built, which loss trains it and how it is scored. :class:`Task` gathers those operations, so
:mod:`capgate.train.run` and :mod:`capgate.train.pretrain` follow one path (open -> decode ->
build -> fit -> evaluate) instead of forking on the task's name at each step. A pretraining
stage's ``kind`` is a task name too. Heavy modules (torch, timm, pycocotools) are imported on
first use, so importing this module stays light.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from capgate.schema import PRIMARY_METRIC, TASK_METRICS, TASKS

__all__ = ["Task", "get_task", "DETECTION", "CLASSIFICATION"]


@dataclass(frozen=True)
class Task:
    """The operations of one task (``detection`` or ``classification``)."""

    name: str

    @property
    def metrics(self) -> tuple[str, ...]:
        """The task's metric columns in the results table."""
        return TASK_METRICS[self.name]

    @property
    def primary_metric(self) -> str:
        return PRIMARY_METRIC[self.name]

    @property
    def detection(self) -> bool:
        return self.name == "detection"

    def open(self, ref: Any, root: Path, classes: Sequence[str] | None = None, class_map: Any = None) -> Any:
        """Open one split (``ref`` a spec ``DatasetRef``) found at ``root``. ``classes`` restricts a
        classification split to those classes; ``class_map`` maps detection categories."""
        from capgate.data import open_classification, open_detection

        if self.detection:
            return open_detection(ref.format, root, ref.split, ref.modality or "rgb", class_map=class_map,
                                  drop_invalid=bool(getattr(ref, "drop_invalid", False)))
        return open_classification(ref.format, root, ref.split, ref.domain,
                                   list(classes) if classes is not None else None)

    def class_names(self, ds: Any) -> tuple[str, ...]:
        """The class names an opened split carries, in label order."""
        return tuple(ds.categories if self.detection else ds.classes)

    def decode(self, ds: Any, size: int, cache: Path | None, limit: int | None = None,
               recipe: Any = None, device: Any = None) -> Any:
        """The split at ``size``: decoded into memory tensors (cached on disk under ``cache``) when
        it fits the recipe's memory budget, else streamed from disk (decoded on ``device`` when CUDA)."""
        import torch

        from capgate.train.recipe import memory_budget_bytes
        from capgate.train.tensors import decode_classification, decode_detection

        budget = memory_budget_bytes(recipe) if recipe is not None else None
        dev = torch.device(device) if device is not None else None
        decode_device = dev if dev is not None and dev.type == "cuda" else None
        return (decode_detection if self.detection else decode_classification)(
            ds, size, cache, limit, memory_budget=budget, decode_device=decode_device)

    def build_model(self, rung: Any, num_classes: int, resolution: int) -> Any:
        """A freshly initialized model of ``rung``: an FCOS detector or a classifier."""
        from capgate.models import build_classifier, build_detector

        if self.detection:
            return build_detector(rung, num_classes, resolution)
        return build_classifier(rung, num_classes)

    def loss(self) -> Any:
        """The loss function ``fit`` calls on each batch."""
        from capgate.train.loop import classification_loss, detection_loss

        return detection_loss if self.detection else classification_loss

    def batches(self, data: Any, recipe: Any, gen: Any) -> Any:
        """A callable giving one epoch of shuffled, augmented training batches."""
        from capgate.train.tensors import classification_batches, detection_batches

        make = detection_batches if self.detection else classification_batches
        return lambda: make(data, recipe.batch_size, gen, recipe.hflip, recipe.brightness, drop_last=True,
                            grayscale=recipe.grayscale)

    def fit(self, model: Any, data: Any, recipe: Any, gen: Any, device: Any, metrics_csv: Path | None,
            state: Any = None) -> list:
        """Train ``model`` in place on decoded ``data`` under ``recipe``; the per-epoch history.
        ``state`` (a path or store location) is saved every epoch and resumed from when present."""
        from capgate.train.fit import fit

        steps_per_epoch = max(1, len(data) // recipe.batch_size)
        return fit(model, self.batches(data, recipe, gen), steps_per_epoch, recipe, device, self.loss(),
                   metrics_csv, state=state, generator=gen)

    def evaluate(self, model: Any, data: Any, ds: Any, device: Any, num_classes: int,
                 channels_last: bool = False) -> dict[str, float]:
        """The task's metrics of ``model`` on decoded ``data`` of the opened split ``ds``."""
        from capgate.train.loop import evaluate_classification, evaluate_detection

        if self.detection:
            return evaluate_detection(model, data, ds.to_coco(), device, channels_last=channels_last)
        return evaluate_classification(model, data, device, num_classes, channels_last=channels_last)

    def init_part(self, stage_kind: str) -> str:
        """Which part of this task's model a checkpoint of a ``stage_kind`` stage initializes: a
        detection stage gives a detector the whole detector, anything else only the backbone."""
        return "detector" if self.detection and stage_kind == "detection" else "backbone"


DETECTION = Task("detection")
CLASSIFICATION = Task("classification")
_TASKS = {t.name: t for t in (DETECTION, CLASSIFICATION)}
assert tuple(_TASKS) == TASKS, "capgate.schema.TASKS and the task objects disagree"


def get_task(name: str) -> Task:
    """The task object of ``name``; an unknown name raises ``ValueError`` listing the valid ones."""
    try:
        return _TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; valid tasks: {', '.join(_TASKS)}") from None
