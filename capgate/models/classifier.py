"""The classifier: the detector's backbone, global average pooling and one linear layer.

Module names (part of the checkpoint format)::

    Classifier
      .backbone  the family's features_only backbone, same blocks and parameter names as a
                 detector's ``backbone.body`` (so backbone weights move between the two)
      .head      nn.Linear(last-level channels, num_classes)

timm's own classification head is deliberately not used: MobileNetV3's 1280-wide
``conv_head`` does not scale with width and would dominate a tiny model's parameters. A rung of
the ``standard`` pseudo-family is the opposite: the full-size upstream network with its own head
(:mod:`capgate.models.standard`), which :func:`build_classifier` builds for such a rung.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from capgate.errors import SpecError
from capgate.models.backbone import CLASSIFICATION_OUT_INDICES, build_backbone
from capgate.models.detector import IMAGENET_MEAN, IMAGENET_STD
from capgate.models.ladder import Rung

__all__ = ["Classifier", "build_classifier"]


class Classifier(nn.Module):
    """``[B, 3, H, W]`` images in ``[0, 1]`` -> ``[B, num_classes]`` logits (normalization inside)."""

    def __init__(self, rung: Rung, num_classes: int, drop_rate: float = 0.0) -> None:
        super().__init__()
        self.rung = rung
        self.num_classes = num_classes
        self.capgate_kind = "classifier"
        self.backbone = build_backbone(rung, features_only=True, out_indices=CLASSIFICATION_OUT_INDICES)
        channels = self.backbone.feature_info.channels()[-1]
        self.dropout = nn.Dropout(drop_rate)
        self.head = nn.Linear(channels, num_classes)
        # Non-persistent: constants, not weights, so they stay out of checkpoints.
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: Tensor) -> Tensor:
        x = (images - self.mean) / self.std
        feat = self.backbone(x)[-1]
        return self.head(self.dropout(feat.mean(dim=(2, 3))))


def build_classifier(rung: Rung, num_classes: int, *, drop_rate: float = 0.0) -> nn.Module:
    """A classifier on ``rung``'s backbone for ``num_classes`` classes (labels 0..num_classes-1); for a
    standard model (``rung.family == "standard"``) the upstream network with its last layer sized
    for ``num_classes`` (:func:`capgate.models.standard.build_standard`)."""
    if rung.standard is not None:
        from capgate.models.standard import build_standard

        return build_standard(rung, num_classes, drop_rate=drop_rate)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise SpecError(f"num_classes {num_classes!r} is invalid; a classifier needs an integer >= 2")
    if not 0.0 <= drop_rate < 1.0:
        raise SpecError(f"drop_rate {drop_rate!r} is invalid; give a float in [0, 1)")
    return Classifier(rung, num_classes, drop_rate)
