"""Standard full-size classifiers: the upstream network with its own head (imports torch).

Module names (part of the checkpoint format)::

    StandardClassifier
      .backbone  the whole upstream network (timm's or torchvision's, its own parameter names),
                 its last layer (``info.head``) sized for the dataset's classes
      .mean/.std non-persistent normalization constants of the model's published weights

It is a ``capgate_kind == "classifier"`` like the ladder's :class:`~capgate.models.classifier.
Classifier`: images in ``[0, 1]`` in, logits out, so training, evaluation, profiling and
:func:`capgate.models.initialize` treat both alike. Here ``backbone`` includes the head: an
ImageNet file loads whole at 1000 classes; for other class counts the head keeps its fresh
initialization and the load report lists it under ``reinitialized``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from capgate.errors import SpecError
from capgate.models.ladder import Rung, StandardInfo, get_rung

__all__ = ["IMAGENET_CLASSES", "StandardClassifier", "build_standard"]

#: Classes of the ImageNet-1k head every standard model is published with.
IMAGENET_CLASSES = 1000


def _upstream(info: StandardInfo, num_classes: int, drop_rate: float) -> nn.Module:
    if info.source == "timm":
        import timm

        return timm.create_model(info.name, pretrained=False, num_classes=num_classes, drop_rate=drop_rate)
    import torchvision

    if drop_rate:
        raise SpecError(f"drop_rate {drop_rate!r} is invalid for {info.name}: torchvision's standard models keep "
                        f"their published dropout; give drop_rate 0")
    return getattr(torchvision.models, info.name)(weights=None, num_classes=num_classes)


class StandardClassifier(nn.Module):
    """``[B, 3, H, W]`` images in ``[0, 1]`` -> ``[B, num_classes]`` logits of a standard model."""

    def __init__(self, rung: Rung, num_classes: int, drop_rate: float = 0.0) -> None:
        super().__init__()
        info = rung.standard
        if info is None:
            raise SpecError(f"rung {rung.name!r} is a ladder rung; build it with build_classifier")
        self.rung = rung
        self.info = info
        self.num_classes = num_classes
        self.capgate_kind = "classifier"
        self.backbone = _upstream(info, num_classes, drop_rate)
        self.register_buffer("mean", torch.tensor(info.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(info.std).view(1, 3, 1, 1), persistent=False)

    @property
    def head_keys(self) -> tuple[str, ...]:
        """State-dict keys of the last layer, as ``backbone`` names them (``fc.weight``, ...)."""
        head = self.backbone.get_submodule(self.info.head)
        return tuple(f"{self.info.head}.{k}" for k in head.state_dict())

    def forward(self, images: Tensor) -> Tensor:
        return self.backbone((images - self.mean) / self.std)


def build_standard(name: str | Rung, num_classes: int = IMAGENET_CLASSES, *, drop_rate: float = 0.0) -> nn.Module:
    """The standard model ``name`` (or its rung) with a head of ``num_classes`` classes."""
    rung = name if isinstance(name, Rung) else get_rung(name)
    if rung.standard is None:
        raise SpecError(f"{rung.name!r} is a ladder rung, not a standard model; build it with build_classifier")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise SpecError(f"num_classes {num_classes!r} is invalid; a classifier needs an integer >= 2")
    return StandardClassifier(rung, num_classes, drop_rate)
