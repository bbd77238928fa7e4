"""Models: the family registry and capacity ladder, detector and classifier assembly,
initialization, profiling.

``models`` knows nothing of training or data loading. The ladder (:mod:`.ladder`) imports
neither torch nor timm; everything else is imported lazily on first use, so
``from capgate.models import get_rung`` stays cheap.

Public API::

    FAMILIES, FamilyInfo, family_names, get_family           family registry (name -> FamilyInfo)
    register_family, register_rung                          add a family / a named rung (duplicates raise)
    Rung, get_rung, rung_names(family), ladder(family)      capacity ladder
    builder_call(rung)                                      the upstream call that builds a rung
    STANDARD_FAMILY, StandardInfo, standard_names, get_standard, register_standard
                                                            standard full-size models (rungs of family "standard")
    build_standard(name, num_classes)                       a standard model with its own head
    build_backbone(rung, *, features_only, out_indices, checkpoint)
    build_detector(rung, num_classes, resolution)           FCOS, labels 0..num_classes-1
    build_classifier(rung, num_classes)                     logits
    profile_model(model, resolution, *, latency) -> ModelProfile; MACS_CONVENTION (what MACs count)
    save_checkpoint(path, model, kind, rung, config, **meta), read_checkpoint(path)
    initialize(model, init_from, *, part, min_fraction, match) -> LoadReport (by name or by structure)
    check_weights(model, file, images)                      load report + top-5 ImageNet classes per photo
    ladder_table(...), standard_table(...)                  rows of ``capgate models`` (``--standard``)
"""

from __future__ import annotations

import importlib
from typing import Any

from capgate.models.ladder import (FAMILIES, STANDARD_FAMILY, FamilyInfo, Rung, StandardInfo, builder_call,
                                   family_names, get_family, get_rung, get_standard, ladder, register_family,
                                   register_rung, register_standard, rung_names, standard_names)

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
    "build_standard",
    "MACS_CONVENTION",
    "MATCH_RULES",
    "check_weights",
    "standard_table",
    "build_backbone",
    "build_detector",
    "build_classifier",
    "CLASS_SPECIFIC_KEYS",
    "ModelProfile",
    "profile_model",
    "count_params",
    "CHECKPOINT_FORMAT",
    "Checkpoint",
    "save_checkpoint",
    "read_checkpoint",
    "read_weights",
    "LoadReport",
    "initialize",
    "ladder_table",
    "format_ladder_table",
]

_LAZY = {
    "build_standard": "standard",
    "MACS_CONVENTION": "profile",
    "MATCH_RULES": "init",
    "check_weights": "weights_check",
    "standard_table": "table",
    "build_backbone": "backbone",
    "build_detector": "detector",
    "CLASS_SPECIFIC_KEYS": "detector",
    "build_classifier": "classifier",
    "ModelProfile": "profile",
    "profile_model": "profile",
    "count_params": "profile",
    "CHECKPOINT_FORMAT": "checkpoint",
    "Checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint",
    "read_checkpoint": "checkpoint",
    "read_weights": "checkpoint",
    "LoadReport": "init",
    "initialize": "init",
    "ladder_table": "table",
    "format_ladder_table": "table",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"capgate.models.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'capgate.models' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
