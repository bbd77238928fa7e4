"""The detector: the family's backbone + FPN neck + torchvision FCOS head, all scaled with the rung.

Assembly (module names are part of the checkpoint format)::

    FCOS                                    torchvision.models.detection.FCOS
      .backbone  BackboneFPN
        .body    the family's features_only backbone (timm, or torchvision via feature_extraction;
                 strides 8, 16, 32)
        .fpn     torchvision.ops.FeaturePyramidNetwork(out_channels = rung.neck_channels)
      .head      torchvision FCOSHead(num_convs = rung.head_convs, GroupNorm, 8 channels/group), its
                 box regression through softplus instead of ReLU (see below)
      .transform normalization only; images are never resized

Box coding, the focal/GIoU/centerness losses, NMS and post-processing are torchvision's.

Why softplus: torchvision's ``FCOSRegressionHead`` returns ``relu(bbox_reg(x))`` with
``bbox_reg`` initialized at zero bias and 0.01-SD weights, so at the start half of the box
distances are exactly 0. At the bottom of the ladder ``bbox_reg`` sees 16 channels and its
output is dominated by its bias: one large early AdamW step that makes the biases negative
switches all four distances off for every location, their gradient is zero from then on, GIoU
stays at its maximum and the run "collapses" (a loss plateau near 2.0 and mAP 0.00 while its
sibling seeds reach 0.4; observed in the demo's S-6 COCO stage, whose ``bbox_reg`` biases ended
at -0.01..-0.02 with weights 5x smaller than every other rung's). ``softplus`` equals ReLU for
large inputs but never has a zero gradient, so a head pushed negative recovers. Same modules
and parameters (checkpoints load unchanged).

Label convention
----------------
``labels`` are **0-based indices into the dataset's category list**: with categories
``["person", "car"]``, ``0`` is person and ``1`` is car, in targets and in predictions alike.
FCOS classifies with one sigmoid per class and has **no background class**: an anchor point
matched to no box is background (all-zero one-hot target), so ``num_classes`` is exactly the
number of dataset categories (torchvision's COCO models instead use 91 sparse COCO ids).
Readers mapping category ids (e.g. FLIR's 1, 2, 3) must map them to these indices.

Inputs: a float tensor ``[B, 3, H, W]`` in ``[0, 1]`` or a list of ``[3, H, W]`` tensors;
targets ``{"boxes": float [N, 4] xyxy pixels, "labels": int64 [N]}``. Train mode returns the
loss dict (``classification``, ``bbox_regression``, ``bbox_ctrness``); eval mode returns one
dict per image with ``boxes`` (xyxy, input pixels), ``scores`` and ``labels``.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial

import torch
from torch import Tensor, nn
from torchvision.models.detection import FCOS
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.fcos import FCOSClassificationHead, FCOSHead, FCOSRegressionHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import FeaturePyramidNetwork

from capgate.errors import SpecError
from capgate.models.backbone import DETECTION_OUT_INDICES, build_backbone
from capgate.models.ladder import Rung

__all__ = [
    "CLASS_SPECIFIC_KEYS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "BackboneFPN",
    "ScaledFCOSHead",
    "SoftplusFCOSRegressionHead",
    "build_detector",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: State-dict keys whose shape depends on the number of classes; a detector loaded from
#: another task's detector keeps these at their fresh initialization.
CLASS_SPECIFIC_KEYS = (
    "head.classification_head.cls_logits.weight",
    "head.classification_head.cls_logits.bias",
)

#: Channels per GroupNorm group in the head (torchvision: 256 channels / 32 groups).
_CHANNELS_PER_GROUP = 8


class BackboneFPN(nn.Module):
    """A features_only ``body`` (list of maps, ``feature_info``) followed by an FPN ``fpn``;
    outputs one map per level."""

    def __init__(self, body: nn.Module, out_channels: int) -> None:
        super().__init__()
        self.body = body
        self.fpn = FeaturePyramidNetwork(list(body.feature_info.channels()), out_channels)
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> "OrderedDict[str, Tensor]":
        feats = self.body(x)
        return self.fpn(OrderedDict((str(i), f) for i, f in enumerate(feats)))


class _NoResizeTransform(GeneralizedRCNNTransform):
    """torchvision's detection transform minus resizing: normalize and batch (pad) only, so
    boxes stay in input pixels and tiny images are not blown up to 800 px."""

    def resize(self, image: Tensor, target: dict[str, Tensor] | None = None):
        return image, target


class SoftplusFCOSRegressionHead(FCOSRegressionHead):
    """torchvision's :class:`FCOSRegressionHead` with ``softplus`` on the box distances instead of
    ``relu`` (the module docstring says why); same submodules and initialization."""

    def forward(self, x: list[Tensor]) -> tuple[Tensor, Tensor]:
        regs, ctrs = [], []
        for features in x:
            feat = self.conv(features)
            reg = nn.functional.softplus(self.bbox_reg(feat))
            ctr = self.bbox_ctrness(feat)
            n, _, h, w = reg.shape  # (N, 4A, H, W) -> (N, HWA, 4) and (N, A, H, W) -> (N, HWA, 1)
            regs.append(reg.view(n, -1, 4, h, w).permute(0, 3, 4, 1, 2).reshape(n, -1, 4))
            ctrs.append(ctr.view(n, -1, 1, h, w).permute(0, 3, 4, 1, 2).reshape(n, -1, 1))
        return torch.cat(regs, dim=1), torch.cat(ctrs, dim=1)


class ScaledFCOSHead(FCOSHead):
    """torchvision's :class:`FCOSHead` with a chosen norm layer: FCOSHead hard-codes
    GroupNorm(32), which needs channels divisible by 32. Same submodules, same losses; box
    regression through :class:`SoftplusFCOSRegressionHead`."""

    def __init__(self, in_channels: int, num_classes: int, num_convs: int, norm_layer) -> None:
        nn.Module.__init__(self)
        self.box_coder = det_utils.BoxLinearCoder(normalize_by_size=True)
        self.classification_head = FCOSClassificationHead(
            in_channels, 1, num_classes, num_convs, norm_layer=norm_layer
        )
        self.regression_head = SoftplusFCOSRegressionHead(in_channels, 1, num_convs, norm_layer=norm_layer)


def build_detector(
    rung: Rung,
    num_classes: int,
    resolution: int,
    *,
    score_thresh: float = 0.05,
    nms_thresh: float = 0.6,
    detections_per_img: int = 100,
    topk_candidates: int = 1000,
    feature_levels: tuple[int, ...] = DETECTION_OUT_INDICES,
) -> nn.Module:
    """An FCOS detector on ``rung``'s backbone for ``num_classes`` categories (no background).

    ``resolution`` is the training/evaluation input size; it is recorded on the model
    (``model.resolution``) and used as the transform's nominal size, but images are never
    resized. Defaults suit small-data mAP evaluation: a low score threshold (0.05) and at most
    100 detections per image. ``feature_levels`` are timm feature indices (0..4 = strides
    2..32); the default (2, 3, 4) is P3-P5 as in FCOS. Adding level 1 (stride 4) helps objects
    under ~8 px at the price of a head run on 4x more locations (and one more FPN lateral conv).
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise SpecError(f"num_classes {num_classes!r} is invalid; give the number of dataset categories (>= 1)")
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 32:
        raise SpecError(f"resolution {resolution!r} is invalid; give an integer >= 32 pixels")
    levels = tuple(feature_levels)
    if not levels or list(levels) != sorted(set(levels)) or not set(levels) <= {0, 1, 2, 3, 4}:
        raise SpecError(f"feature_levels {feature_levels!r} is invalid; give increasing timm feature "
                        f"indices from 0..4, e.g. (2, 3, 4)")
    body = build_backbone(rung, features_only=True, out_indices=levels)
    channels = rung.neck_channels
    backbone = BackboneFPN(body, channels)
    strides = body.feature_info.reduction()
    # FCOS anchors are points: one "anchor" per location whose size equals the level's stride.
    anchor_generator = AnchorGenerator(tuple((s,) for s in strides), ((1.0,),) * len(strides))
    norm = partial(nn.GroupNorm, max(1, channels // _CHANNELS_PER_GROUP))
    head = ScaledFCOSHead(channels, num_classes, num_convs=rung.head_convs, norm_layer=norm)
    model = FCOS(
        backbone,
        num_classes,
        min_size=resolution,
        max_size=resolution,
        image_mean=list(IMAGENET_MEAN),
        image_std=list(IMAGENET_STD),
        anchor_generator=anchor_generator,
        head=head,
        score_thresh=score_thresh,
        nms_thresh=nms_thresh,
        detections_per_img=detections_per_img,
        topk_candidates=topk_candidates,
    )
    model.transform = _NoResizeTransform(
        resolution, resolution, list(IMAGENET_MEAN), list(IMAGENET_STD), size_divisible=max(strides)
    )
    model.rung = rung
    model.num_classes = num_classes
    model.resolution = resolution
    model.feature_levels = levels
    model.capgate_kind = "detector"
    return model
