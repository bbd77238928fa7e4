"""The registered backbone families and their default rungs (torch-free declarations).

Every family maps a rung's ``width`` and ``depth`` onto its upstream builder's arguments (the
rule is each family's ``scaling``); the builders are private timm functions or a torchvision
constructor argument, so the versions are pinned (``pinned``) and the tests pin parameter
counts. The table of default rungs with their exact parameter counts is in
:mod:`capgate.models.ladder`.
"""

from __future__ import annotations

import math

from capgate.models._registry import FamilyInfo, Rung, register_family, register_rung

__all__ = ["builder_call", "shufflenet_v2_config"]

_TIMM = "timm==1.0.31"
_TORCHVISION = "torchvision==0.29.1"
_BUILD_TIMM = "capgate.models._timm:build_timm"

register_family(FamilyInfo(
    name="efficientnet", arch="efficientnet_b0", prefix="B", source="timm",
    builder="timm.models.efficientnet._gen_efficientnet", timm_variant="efficientnet_b0",
    width_arg="channel_multiplier", depth_arg="depth_multiplier", factory=_BUILD_TIMM, pinned=_TIMM,
    scaling="width = channel_multiplier (channels rounded to multiples of 8, at least 8); depth = "
            "depth_multiplier (block repeats per stage, ceil-rounded, at least 1)",
))
register_family(FamilyInfo(
    name="mobilenetv3", arch="mobilenetv3_large", prefix="S", source="timm",
    builder="timm.models.mobilenetv3._gen_mobilenet_v3", timm_variant="mobilenetv3_large_100",
    width_arg="channel_multiplier", depth_arg="depth_multiplier", factory=_BUILD_TIMM, pinned=_TIMM,
    scaling="width = channel_multiplier (multiples of 8, at least 8; the 16-channel stem is fixed below "
            "width 0.75); depth = depth_multiplier (repeats per stage, ceil-rounded)",
))
register_family(FamilyInfo(
    name="efficientnet_lite", arch="efficientnet_lite0", prefix="L", source="timm",
    builder="timm.models.efficientnet._gen_efficientnet_lite", timm_variant="efficientnet_lite0",
    width_arg="channel_multiplier", depth_arg="depth_multiplier", factory=_BUILD_TIMM, pinned=_TIMM,
    scaling="width = channel_multiplier (multiples of 8, at least 8; the 32-channel stem is fixed); depth = "
            "depth_multiplier (repeats of the middle stages, ceil-rounded; first and last stage fixed)",
))
register_family(FamilyInfo(
    name="mobilenetv2", arch="mobilenetv2", prefix="M", source="timm",
    builder="timm.models.efficientnet._gen_mobilenet_v2", timm_variant="mobilenetv2_100",
    width_arg="channel_multiplier", depth_arg="depth_multiplier", factory=_BUILD_TIMM, pinned=_TIMM,
    scaling="width = channel_multiplier (stem included; multiples of 8, at least 8); depth = "
            "depth_multiplier (repeats per stage, ceil-rounded)",
))
register_family(FamilyInfo(
    name="ghostnet", arch="ghostnet", prefix="G", source="timm",
    builder="timm.models.ghostnet._create_ghostnet", timm_variant="ghostnet_100",
    width_arg="width", depth_arg=None, factory=_BUILD_TIMM, pinned=_TIMM,
    scaling="width = width (channels rounded to multiples of 4 by GhostNet itself); no depth argument: "
            "depth is 1, so the FCOS head keeps 4 convs per tower",
))
register_family(FamilyInfo(
    name="lcnet", arch="lcnet", prefix="LC", source="timm",
    builder="timm.models.mobilenetv3._gen_lcnet", timm_variant="lcnet_100",
    width_arg="channel_multiplier", depth_arg=None, factory=_BUILD_TIMM, pinned=_TIMM,
    scaling="width = channel_multiplier (multiples of 8, at least 8); no depth argument: depth is 1, so "
            "the FCOS head keeps 4 convs per tower",
))
register_family(FamilyInfo(
    name="shufflenetv2", arch="shufflenet_v2", prefix="SH", source="torchvision",
    builder="torchvision.models.ShuffleNetV2", timm_variant=None,
    width_arg="stages_out_channels", depth_arg="stages_repeats",
    factory="capgate.models._torchvision:build_shufflenet_v2", pinned=_TORCHVISION,
    scaling="width sets stages_out_channels = max(8, 4*floor(c*width/4 + 1/2)) of (24, 116, 232, 464) for conv1 "
            "and stages 2-4 (conv5 unused); depth sets stages_repeats = max(1, ceil(r*depth)) of (4, 8, 4); "
            "features via torchvision.models.feature_extraction",
))

#: torchvision's ShuffleNetV2 x1.0: block repeats of stages 2-4 and output channels of conv1,
#: stages 2-4 and conv5.
SHUFFLENET_REPEATS = (4, 8, 4)
SHUFFLENET_CHANNELS = (24, 116, 232, 464, 1024)


def shufflenet_v2_config(width: float, depth: float) -> tuple[list[int], list[int]]:
    """``(stages_repeats, stages_out_channels)`` of a ShuffleNetV2 rung (the family's rule)."""
    repeats = [max(1, math.ceil(r * depth - 1e-9)) for r in SHUFFLENET_REPEATS]
    channels = [max(8, 4 * math.floor(c * width / 4.0 + 0.5)) for c in SHUFFLENET_CHANNELS[:4]]
    return repeats, channels + [SHUFFLENET_CHANNELS[4]]


def builder_call(rung: Rung) -> str:
    """The upstream call that builds ``rung``'s network, as text (docs, notes, the CLI)."""
    info = rung.info
    if info.name == "shufflenetv2":
        repeats, channels = shufflenet_v2_config(rung.width, rung.depth)
        return f"{info.builder}(stages_repeats={repeats}, stages_out_channels={channels})"
    args = [repr(info.timm_variant), f"{info.width_arg}={rung.width:g}"]
    if info.depth_arg is not None:
        args.append(f"{info.depth_arg}={rung.depth:g}")
    return f"{info.builder}({', '.join(args)})"


# Default rungs: (name, family, width, depth, label), largest first within each family.
# EfficientNet and MobileNetV3 are the source study's ladders and stay exactly as they are.
_DEFAULTS = [
    ("B-1", "efficientnet", 0.50, 0.50, "small"),
    ("B-2", "efficientnet", 0.40, 0.50, ""),
    ("B-3", "efficientnet", 0.30, 0.50, ""),
    ("B-4", "efficientnet", 0.25, 0.25, ""),
    ("B-5", "efficientnet", 0.20, 0.25, ""),
    ("B-6", "efficientnet", 0.15, 0.25, ""),
    ("B-7", "efficientnet", 0.10, 0.25, "ultra-small"),
    ("S-0", "mobilenetv3", 0.45, 1.00, "small (full depth)"),
    ("S-1", "mobilenetv3", 0.50, 0.50, ""),
    ("S-2", "mobilenetv3", 0.35, 0.50, ""),
    ("S-3", "mobilenetv3", 0.25, 0.50, ""),
    ("S-4", "mobilenetv3", 0.25, 0.25, ""),
    ("S-5", "mobilenetv3", 0.15, 0.25, ""),
    ("S-6", "mobilenetv3", 0.10, 0.25, "ultra-small"),
    ("L-1", "efficientnet_lite", 0.50, 0.50, "small"),
    ("L-2", "efficientnet_lite", 0.35, 0.50, ""),
    ("L-3", "efficientnet_lite", 0.25, 0.25, ""),
    ("L-4", "efficientnet_lite", 0.10, 0.25, "ultra-small"),
    ("M-1", "mobilenetv2", 0.50, 0.50, "small"),
    ("M-2", "mobilenetv2", 0.35, 0.50, ""),
    ("M-3", "mobilenetv2", 0.25, 0.25, ""),
    ("M-4", "mobilenetv2", 0.10, 0.25, "ultra-small"),
    ("G-1", "ghostnet", 0.50, 1.00, "small"),
    ("G-2", "ghostnet", 0.35, 1.00, ""),
    ("G-3", "ghostnet", 0.25, 1.00, ""),
    ("G-4", "ghostnet", 0.10, 1.00, "ultra-small"),
    ("LC-1", "lcnet", 0.50, 1.00, "small"),
    ("LC-2", "lcnet", 0.35, 1.00, ""),
    ("LC-3", "lcnet", 0.25, 1.00, ""),
    ("LC-4", "lcnet", 0.10, 1.00, "ultra-small"),
    ("SH-1", "shufflenetv2", 0.75, 0.50, "small"),
    ("SH-2", "shufflenetv2", 0.50, 0.50, ""),
    ("SH-3", "shufflenetv2", 0.35, 0.25, ""),
    ("SH-4", "shufflenetv2", 0.15, 0.25, "ultra-small"),
]
#: The source study's rungs keep their notes; every other rung's note names its builder call.
_SOURCE_STUDY = ("efficientnet", "mobilenetv3")

for _name, _family, _width, _depth, _label in _DEFAULTS:
    _rung = Rung(_name, _family, _width, _depth)
    _call = builder_call(_rung)
    _note = _label if _family in _SOURCE_STUDY else "; ".join(x for x in (_label, _call) if x)
    register_rung(Rung(_name, _family, _width, _depth, _note))
