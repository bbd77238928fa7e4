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

====  =================  =====  =====  ====  =====  ========  ==========
rung  family             width  depth  neck  convs  detector  classifier
====  =================  =====  =====  ====  =====  ========  ==========
B-1   efficientnet        0.50   0.50    48      2   713,574     555,050
B-2   efficientnet        0.40   0.50    40      2   502,820     392,744
B-3   efficientnet        0.30   0.50    32      2   277,402     206,942
B-4   efficientnet        0.25   0.25    24      1   127,954      98,182
B-5   efficientnet        0.20   0.25    16      1    76,826      63,358
B-6   efficientnet        0.15   0.25    16      1    56,598      43,354
B-7   efficientnet        0.10   0.25    16      1    41,874      28,726
S-0   mobilenetv3         0.45   1.00    40      4   838,222     660,626
S-1   mobilenetv3         0.50   0.50    48      2   642,214     471,530
S-2   mobilenetv3         0.35   0.50    32      2   328,582     252,586
S-3   mobilenetv3         0.25   0.50    24      2   193,398     150,874
S-4   mobilenetv3         0.25   0.25    24      1   121,062      89,050
S-5   mobilenetv3         0.15   0.25    16      1    48,918      35,098
S-6   mobilenetv3         0.10   0.25    16      1    37,038      23,506
L-1   efficientnet_lite   0.50   0.50    48      2   625,094     466,570
L-2   efficientnet_lite   0.35   0.50    32      2   309,478     238,410
L-3   efficientnet_lite   0.25   0.25    24      1   115,350      85,578
L-4   efficientnet_lite   0.10   0.25    16      1    39,270      26,122
M-1   mobilenetv2         0.50   0.50    48      2   486,598     328,842
M-2   mobilenetv2         0.35   0.50    32      2   241,766     170,954
M-3   mobilenetv2         0.25   0.25    24      1    83,606      54,218
M-4   mobilenetv2         0.10   0.25    16      1    30,182      17,034
G-1   ghostnet            0.50   1.00    48      4   490,346     252,302
G-2   ghostnet            0.35   1.00    32      4   239,582     132,882
G-3   ghostnet            0.25   1.00    24      4   133,480      73,116
G-4   ghostnet            0.10   1.00    16      4    42,262      15,290
LC-1  lcnet               0.50   1.00    48      4   524,534     273,466
LC-2  lcnet               0.35   1.00    32      4   250,864     138,580
LC-3  lcnet               0.25   1.00    24      4   140,766      77,634
LC-4  lcnet               0.10   1.00    16      4    43,640      16,028
SH-1  shufflenetv2        0.75   0.50    72      2   621,322     248,966
SH-2  shufflenetv2        0.50   0.50    48      2   280,090     114,222
SH-3  shufflenetv2        0.35   0.25    32      1    90,504      34,868
SH-4  shufflenetv2        0.15   0.25    16      1    22,028       8,216
====  =================  =====  =====  ====  =====  ========  ==========

Standard models
---------------
Beside the ladder, the registry holds standard full-size classifiers with their own heads
(:mod:`capgate.models._standard`: SqueezeNet 1.1, ShuffleNetV2 x1.0, ResNet-18, EfficientNetV2-S,
MobileNetV3-Small/-Large, PP-LCNet, MobileNetV2, EfficientNet-Lite0 (and its TF port), GhostNet,
EfficientNet-B0), each exactly the published network at 1000 classes. A spec names one as a rung
of the pseudo-family ``standard`` (``rungs: {standard: [resnet18]}``); ``get_rung("resnet18")``
gives that rung (width and depth 1, backbone name = model name). They are not in ``FAMILIES`` and
not in the ladder, so the ladder's rungs and run ids do not change.

Each new family's rung note names the builder call (``capgate models --json`` gives it for
every rung as ``builder``). Names in the results table (``backbone`` column): a default rung
reads ``efficientnet_b0@w0.3d0.5 (B-3)``; a custom rung ``mobilenetv3_large@w0.35d0.5``.
"""

from __future__ import annotations

from capgate.models import _families, _standard  # noqa: F401  (register families, rungs, standard models)
from capgate.models._families import builder_call
from capgate.models._registry import (FAMILIES, STANDARD_FAMILY, FamilyInfo, Rung, StandardInfo, family_names,
                                      get_family, get_rung, get_standard, ladder, register_family, register_rung,
                                      register_standard, rung_names, standard_names)

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
    "STANDARD_FAMILY",
    "StandardInfo",
    "get_standard",
    "register_standard",
    "standard_names",
]
