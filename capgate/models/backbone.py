"""Backbones: a rung becomes a timm ``features_only`` network via timm's scaling builders.

``timm.create_model("efficientnet_b0", channel_multiplier=...)`` does not accept the
multipliers, so the (private, version-pinned) builders ``_gen_efficientnet`` and
``_gen_mobilenet_v3`` are called directly. ``pretrained`` is only ever true when a local
file is given (``pretrained_cfg_overlay=dict(file=...)``): nothing is downloaded.
"""

from __future__ import annotations

import logging
from pathlib import Path

from torch import nn

from capgate.errors import CheckpointError
from capgate.models.ladder import Rung

__all__ = ["DETECTION_OUT_INDICES", "CLASSIFICATION_OUT_INDICES", "build_backbone"]

_log = logging.getLogger(__name__)

#: Feature levels the detector uses: strides 8, 16 and 32 (timm feature indices 2, 3, 4).
DETECTION_OUT_INDICES: tuple[int, ...] = (2, 3, 4)
#: The classifier pools the last level (stride 32). The backbone holds the same blocks (and
#: the same parameters, under the same names) as the detector's, so weights move freely.
CLASSIFICATION_OUT_INDICES: tuple[int, ...] = (4,)


def _builder(rung: Rung):
    if rung.family == "efficientnet":
        from timm.models.efficientnet import _gen_efficientnet

        return _gen_efficientnet
    if rung.family == "mobilenetv3":
        from timm.models.mobilenetv3 import _gen_mobilenet_v3

        return _gen_mobilenet_v3
    raise AssertionError(f"family {rung.family!r} passed validation but has no builder")


def build_backbone(
    rung: Rung,
    *,
    features_only: bool = True,
    out_indices: tuple[int, ...] = DETECTION_OUT_INDICES,
    checkpoint: str | Path | None = None,
) -> nn.Module:
    """Build the timm network of ``rung``.

    With ``features_only`` (the default) the module returns a list of feature maps at
    ``out_indices`` and exposes ``feature_info``; otherwise it is timm's full classification
    network (with its own head). ``checkpoint`` is a local timm-style weights file loaded by
    timm itself through ``pretrained_cfg_overlay=dict(file=...)`` (refused with
    :class:`CheckpointError` if fewer than half the tensors match by name and shape); prefer
    :func:`capgate.models.init.initialize` when you want a load report.
    """
    kwargs: dict = {}
    if features_only:
        kwargs.update(features_only=True, out_indices=tuple(out_indices))
    pretrained = False
    if checkpoint is not None:
        path = Path(checkpoint)
        if not path.is_file():
            raise CheckpointError(f"{path}: backbone checkpoint not found; give an existing local file")
        pretrained = True
        kwargs["pretrained_cfg_overlay"] = dict(file=str(path))
    try:
        model = _builder(rung)(
            rung.info.timm_variant,
            channel_multiplier=rung.width,
            depth_multiplier=rung.depth,
            pretrained=pretrained,
            **kwargs,
        )
    except (RuntimeError, KeyError, ValueError) as exc:
        if checkpoint is None:
            raise
        raise CheckpointError(
            f"{checkpoint}: timm could not load it into {rung.backbone_name} ({exc}); give a checkpoint "
            f"of the same architecture and multipliers, or use capgate.models.initialize for a partial load"
        ) from exc
    if checkpoint is not None:
        _check_timm_load(model, Path(checkpoint), rung)
    _log.debug("built %s (features_only=%s)", rung.backbone_name, features_only)
    return model


def _check_timm_load(model: nn.Module, path: Path, rung: Rung) -> None:
    """timm loads a features network with ``strict=False``: a file whose keys do not match
    (a detector's ``backbone.body.*``, say) would load nothing, silently. Refuse that."""
    from capgate.models.checkpoint import read_weights

    source = read_weights(path)[0]
    target = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    matched = sum(1 for k, v in target.items() if k in source and source[k].shape == v.shape)
    if matched < len(target) / 2:
        raise CheckpointError(
            f"{path}: timm loaded only {matched}/{len(target)} tensors into {rung.backbone_name} (its keys do "
            f"not match timm's names); use capgate.models.initialize, which maps prefixed keys and reports"
        )
