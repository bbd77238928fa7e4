"""The capacity ladder: named width/depth multipliers of the registered backbone families.

This module imports neither torch nor timm, so a grid spec can validate its rungs without
loading a model. The registries (:mod:`capgate.models._registry`) fail loudly: a duplicate
family or rung name raises, an unknown one raises listing the valid ones. The families and
their default rungs are declared in :mod:`capgate.models._families`.

Families
--------
``efficientnet``
    EfficientNet-B0 (timm ``efficientnet_b0``) scaled with timm's compound-scaling builder
    ``_gen_efficientnet``: ``width`` is its ``channel_multiplier``, ``depth`` its
    ``depth_multiplier`` (block repeats per stage, ``ceil``-rounded, at least one per stage).
``mobilenetv3``
    MobileNetV3-Large (timm ``mobilenetv3_large_100``) scaled with ``_gen_mobilenet_v3``. Large
    rather than Small because Large is the standard detection backbone (SSDLite, FCOS-lite) with
    a full stride-8/16/32 pyramid, and because Small's narrow stages hit timm's 8-channel floor
    already at width 0.35, which would collapse neighbouring rungs to the same parameter count.
``efficientnet_lite``
    EfficientNet-Lite0 (timm ``efficientnet_lite0``: ReLU6, no squeeze-excite) scaled with
    ``_gen_efficientnet_lite``; its 32-channel stem and the repeats of its first and last stage
    are fixed by the builder.
``mobilenetv2``
    MobileNetV2 (timm ``mobilenetv2_100``) scaled with ``_gen_mobilenet_v2`` (stem scaled too).
``ghostnet``
    GhostNet (timm ``ghostnet_100``) scaled with ``_create_ghostnet(width=...)``; the builder
    has no depth argument, so its rungs have depth 1 (and 4-conv FCOS head towers).
``lcnet``
    PP-LCNet (timm ``lcnet_100``) scaled with ``_gen_lcnet(channel_multiplier=...)``; no depth
    argument, depth 1.
``shufflenetv2``
    torchvision's ShuffleNetV2 built with the constructor arguments ``stages_repeats`` =
    ``max(1, ceil(r * depth))`` of (4, 8, 4) and ``stages_out_channels`` =
    ``max(8, 4 * floor(c * width / 4 + 1/2))`` of (24, 116, 232, 464) (conv5 unused); the multi-scale
    features come from ``torchvision.models.feature_extraction.create_feature_extractor``.

Channel counts floor at 8 (4 in GhostNet) and some stems are fixed, so parameter counts
flatten at the bottom of a ladder; capacity is therefore always the *measured* parameter count
(see :mod:`capgate.models.profile`), never the multiplier.

Neck and head scale with the rung, so capacity is the whole detector's:

* neck (FPN) channels ``= max(16, 8 * round(96 * width / 8))``
* head tower depth (convs per FCOS tower) ``= clamp(round(4 * depth), 1, 4)``

Default rungs (exact whole-detector parameters for one class and the classifier's for ten;
they do not depend on the resolution; the test suite pins them, checks the order, the span
and the 1M ceiling). Note that MobileNetV3 depth 0.75 builds the same blocks as 1.0 (``ceil``
rounding), hence S-0's 1.0:

TABLE

Each new family's rung note names the builder call (``capgate models --json`` gives it for
every rung as ``builder``). Names in the results table (``backbone`` column): a default rung
reads ``efficientnet_b0@w0.3d0.5 (B-3)``; a custom rung ``mobilenetv3_large@w0.35d0.5``.
"""

from __future__ import annotations

from capgate.models import _families  # noqa: F401  (registers the families and default rungs)
from capgate.models._families import builder_call
from capgate.models._registry import (FAMILIES, FamilyInfo, Rung, family_names, get_family, get_rung, ladder,
                                      register_family, register_rung, rung_names)

__all__ = [
    "FAMILIES",
    "FamilyInfo",
    "Rung",
    "builder_call",
    "family_names",
    "get_family",
    "get_rung",
    "ladder",
    "register_family",
    "register_rung",
    "rung_names",
]
