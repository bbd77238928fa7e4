"""Build a timm family's network from its private scaling builder (imports timm).

``timm.create_model("efficientnet_b0", channel_multiplier=...)`` does not accept the
multipliers, so the family's builder (``_gen_efficientnet``, ``_gen_efficientnet_lite``,
``_gen_mobilenet_v2``, ``_gen_mobilenet_v3``, ``_gen_lcnet``, ``_create_ghostnet``) is called
directly with the family's ``width_arg``/``depth_arg``. ``pretrained`` is only ever true when a
local file is given (``pretrained_cfg_overlay=dict(file=...)``): nothing is downloaded.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Callable

from torch import nn

from capgate.models._registry import Rung

__all__ = ["build_timm", "resolve_builder"]


def resolve_builder(dotted: str) -> Callable[..., Any]:
    """The function or class named ``package.module.name``."""
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def build_timm(rung: Rung, *, features_only: bool, out_indices: tuple[int, ...],
               checkpoint: Path | None) -> nn.Module:
    """timm's network of ``rung``: ``features_only`` at ``out_indices``, or the full classifier."""
    info = rung.info
    kwargs: dict[str, Any] = {info.width_arg: rung.width}
    if info.depth_arg is not None:
        kwargs[info.depth_arg] = rung.depth
    if features_only:
        kwargs.update(features_only=True, out_indices=tuple(out_indices))
    if checkpoint is not None:
        kwargs["pretrained_cfg_overlay"] = dict(file=str(checkpoint))
    return resolve_builder(info.builder)(info.timm_variant, pretrained=checkpoint is not None, **kwargs)
