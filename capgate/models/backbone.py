"""Backbones: a rung becomes a ``features_only`` network through its family's factory.

Each family (:mod:`capgate.models._families`) names capgate's build function (``factory``):
:func:`capgate.models._timm.build_timm` calls the family's private, version-pinned timm builder
(``_gen_efficientnet``, ``_gen_mobilenet_v3``, ...) with the rung's multipliers;
:func:`capgate.models._torchvision.build_shufflenet_v2` sets torchvision's ShuffleNetV2 stage
widths and repeats and takes its multi-scale features through
``torchvision.models.feature_extraction``. Either way the result returns a list of feature maps
and has ``feature_info.channels()`` and ``feature_info.reduction()``. Nothing is downloaded.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

from torch import nn

from capgate.errors import CheckpointError, SpecError
from capgate.models.ladder import Rung

__all__ = ["DETECTION_OUT_INDICES", "CLASSIFICATION_OUT_INDICES", "build_backbone"]

_log = logging.getLogger(__name__)

#: Feature levels the detector uses: strides 8, 16 and 32 (feature indices 2, 3, 4; index i is
#: stride 2**(i+1) in every family).
DETECTION_OUT_INDICES: tuple[int, ...] = (2, 3, 4)
#: The classifier pools the last level (stride 32). The backbone holds the same blocks (and
#: the same parameters, under the same names) as the detector's, so weights move freely.
CLASSIFICATION_OUT_INDICES: tuple[int, ...] = (4,)


def _factory(rung: Rung):
    module, _, name = rung.info.factory.partition(":")
    return getattr(importlib.import_module(module), name)


def build_backbone(
    rung: Rung,
    *,
    features_only: bool = True,
    out_indices: tuple[int, ...] = DETECTION_OUT_INDICES,
    checkpoint: str | Path | None = None,
) -> nn.Module:
    """Build the network of ``rung``.

    With ``features_only`` (the default) the module returns a list of feature maps at
    ``out_indices`` and exposes ``feature_info``; otherwise it is the family's full
    classification network (timm's or torchvision's, with its own head). ``checkpoint`` is a
    local weights file: timm families load it through timm itself
    (``pretrained_cfg_overlay=dict(file=...)``), torchvision ones by name; either way a file of
    which fewer than half the tensors match by name and shape is refused with
    :class:`CheckpointError`. Prefer :func:`capgate.models.init.initialize` for a load report.
    """
    if rung.standard is not None:
        raise SpecError(f"{rung.name!r} is a standard classifier with its own head; build it with build_classifier "
                        f"(detectors and backbones use the ladder's rungs)")
    path = None
    if checkpoint is not None:
        path = Path(checkpoint)
        if not path.is_file():
            raise CheckpointError(f"{path}: backbone checkpoint not found; give an existing local file")
    timm_load = path if rung.info.source == "timm" else None
    try:
        model = _factory(rung)(rung, features_only=features_only, out_indices=tuple(out_indices),
                               checkpoint=timm_load)
    except (RuntimeError, KeyError, ValueError) as exc:
        if path is None:
            raise
        raise CheckpointError(
            f"{path}: timm could not load it into {rung.backbone_name} ({exc}); give a checkpoint "
            f"of the same architecture and multipliers, or use capgate.models.initialize for a partial load"
        ) from exc
    if path is not None:
        if timm_load is None:
            _load_by_name(model, path)
        _check_load(model, path, rung)
    _log.debug("built %s (features_only=%s)", rung.backbone_name, features_only)
    return model


def _load_by_name(model: nn.Module, path: Path) -> None:
    import torch

    from capgate.models.checkpoint import feature_key, read_weights

    target = model.state_dict()
    source = {feature_key(k, target): v for k, v in read_weights(path)[0].items()}
    matched = {k: v for k, v in source.items() if k in target and target[k].shape == v.shape}
    with torch.no_grad():
        model.load_state_dict(matched, strict=False)


def _check_load(model: nn.Module, path: Path, rung: Rung) -> None:
    """timm loads a features network with ``strict=False``: a file whose keys do not match
    (a detector's ``backbone.body.*``, say) would load nothing, silently. Refuse that."""
    from capgate.models.checkpoint import feature_key, read_weights

    target = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    source = {feature_key(k, target): v for k, v in read_weights(path)[0].items()}
    matched = sum(1 for k, v in target.items() if k in source and source[k].shape == v.shape)
    if matched < len(target) / 2:
        loader = "timm" if rung.info.source == "timm" else "capgate"
        raise CheckpointError(
            f"{path}: {loader} loaded only {matched}/{len(target)} tensors into {rung.backbone_name} (its keys do "
            f"not match the network's names); use capgate.models.initialize, which maps prefixed keys and reports"
        )
