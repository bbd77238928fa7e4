"""Initialization: load a backbone, or a whole detector minus its class layers, from a file.

``init_from=None`` is ``scratch`` (timm's own initialization, nothing loaded). Otherwise the
file may be a capgate checkpoint of any kind, a timm checkpoint (full classification model or
features-only), a torchvision
or plain state dict (``.pt``/``.pth``, possibly wrapped in ``{"state_dict" | "model": ...}``)
or safetensors. Keys are matched after stripping the one prefix (``""``, ``backbone.body.``,
``backbone.``, ``body.``, ``model.``, ...) that matches most of the target's keys, so a
detector's, a classifier's and a bare backbone's weights all map onto each other; a full
network's ``blocks.0.*`` also matches a flattened timm features network's ``blocks_0.*``
(GhostNet; :func:`capgate.models.checkpoint.feature_key`). torchvision's ShuffleNetV2 features
keep torchvision's names, so its weights load as they are.

A file of ANOTHER implementation of the same architecture (other names) loads BY STRUCTURE:
the rule of :mod:`capgate.models._structure` (tensors in file order matched to the model's by
shape and role; refused with :class:`~capgate.errors.StructureMatchError` when the match is
incomplete or ambiguous). ``match="auto"`` (the default) tries names first and structure only when
names matched less than ``min_fraction`` of a plain (non-capgate) file; ``"name"`` and
``"structure"`` force one rule. A standard model's last layer (``head_keys``) loads when its
shape fits and is otherwise left fresh and listed as ``reinitialized``.

Every load is reported (:class:`LoadReport`): the rule used (``rule``, ``rule_detail``), tensors
loaded, skipped (in the file, not used), missing (in the target, not in the file) and
shape-mismatched. A load that matched less than ``min_fraction`` of the target's tensors is
refused. BatchNorm's ``num_batches_tracked`` counters are loaded by name when present but never
counted (many published weights omit them).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from capgate.errors import CheckpointError, SpecError, StructureMatchError
from capgate.models._structure import match_structure
from capgate.models.checkpoint import Checkpoint, backbone_module, feature_key, file_sha256, read_weights
from capgate.models.detector import CLASS_SPECIFIC_KEYS

__all__ = ["MATCH_RULES", "PARTS", "LoadReport", "initialize"]

_log = logging.getLogger(__name__)

PARTS = ("backbone", "detector")
#: How file tensors find the model's: by name (after prefix stripping) or by structure (order + shape).
MATCH_RULES = ("auto", "name", "structure")
_PREFIXES = {
    "backbone": ("", "backbone.body.", "backbone.", "body.", "model.", "encoder.", "features."),
    "detector": ("", "model.", "detector."),
}


@dataclass(frozen=True)
class LoadReport:
    """What :func:`initialize` did. ``mismatched`` holds ``(key, file shape, model shape)``;
    ``reinitialized`` the class-specific tensors deliberately left at their fresh values."""

    source: str
    sha256: str
    description: str
    part: str
    prefix: str
    total: int
    loaded: tuple[str, ...]
    skipped: tuple[str, ...]
    missing: tuple[str, ...]
    mismatched: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...]
    reinitialized: tuple[str, ...] = ()
    rule: str = "name"
    rule_detail: str = ""

    @property
    def fraction(self) -> float:
        """Loaded tensors over the target's tensors (0 for scratch)."""
        return len(self.loaded) / self.total if self.total else 0.0

    @property
    def provenance(self) -> str:
        """The results table's ``init_source``: ``none`` for scratch, else
        ``file=<name> sha256=<hex16> loaded=<n>/<total> skipped=<k> mismatched=<m>``."""
        if not self.source:
            return "none"
        rule = " rule=structure" if self.rule == "structure" else ""
        return (f"file={Path(self.source).name} sha256={self.sha256[:16]} loaded={len(self.loaded)}/"
                f"{self.total} skipped={len(self.skipped)} mismatched={len(self.mismatched)}{rule}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict, with ``fraction`` and ``provenance`` added."""
        out = asdict(self)
        out["mismatched"] = [[k, list(a), list(b)] for k, a, b in self.mismatched]
        out.update(fraction=self.fraction, provenance=self.provenance)
        return out


def _counted(key: str) -> bool:
    return not key.endswith("num_batches_tracked")


def _best_prefix(source: dict[str, Tensor], target: set[str], prefixes: tuple[str, ...]) -> str:
    def hits(prefix: str) -> int:
        n = len(prefix)
        return sum(1 for k in source if k.startswith(prefix) and feature_key(k[n:], target) in target)

    return max(prefixes, key=hits)  # max keeps the first of equals: "" wins ties


def initialize(
    model: nn.Module,
    init_from: str | Path | None,
    *,
    part: str = "backbone",
    min_fraction: float = 0.5,
    match: str = "auto",
) -> LoadReport:
    """Load weights from ``init_from`` into ``model`` (a capgate detector or classifier, standard
    or ladder, or a features backbone) and report what happened.

    ``part="backbone"`` loads only the backbone (a standard model's whole network); ``part="detector"``
    loads a whole detector except its class-specific logits conv (box regression and centerness
    are class-agnostic and load), so a detector pretrained on other categories fine-tunes here.
    ``match`` picks the rule (:data:`MATCH_RULES`; see the module docstring). Raises
    :class:`CheckpointError` when the file is unreadable or the load matched less than
    ``min_fraction`` of the target's tensors (:class:`StructureMatchError` when structure was tried).
    """
    if part not in PARTS:
        raise SpecError(f"init part {part!r} is invalid; valid parts: {', '.join(PARTS)}")
    if match not in MATCH_RULES:
        raise SpecError(f"match rule {match!r} is invalid; valid rules: {', '.join(MATCH_RULES)}")
    if not 0.0 <= min_fraction <= 1.0:
        raise SpecError(f"min_fraction {min_fraction!r} is invalid; give a float in [0, 1]")
    if init_from is None:
        return LoadReport("", "", "scratch", part, "", 0, (), (), (), (), rule="")
    path = Path(init_from)
    if part == "detector":
        if getattr(model, "capgate_kind", None) != "detector":
            raise SpecError(f"part='detector' needs a detector built by build_detector, got "
                            f"{type(model).__name__}; use part='backbone'")
        target_module, excluded, head = model, set(CLASS_SPECIFIC_KEYS), ()
    else:
        target_module, excluded, head = backbone_module(model), set(), tuple(getattr(model, "head_keys", ()))
    source, description, ckpt = read_weights(path)
    _check_kind(path, model, part, ckpt)
    target_sd = target_module.state_dict()
    if match == "structure":
        report, to_load = _by_structure(path, description, part, source, target_sd, head, ckpt)
    else:
        report, to_load = _by_name(path, description, part, source, target_sd, excluded, head)
        if report.fraction < min_fraction:
            if match == "name" or ckpt is not None:
                raise CheckpointError(_too_little(report, path, min_fraction, ckpt, model))
            try:
                report, to_load = _by_structure(path, description, part, source, target_sd, head, ckpt)
            except StructureMatchError as exc:
                raise StructureMatchError(f"{_too_little(report, path, min_fraction, ckpt, model)}. By structure: "
                                          f"{str(exc).split(': ', 1)[1]}") from None
    if report.fraction < min_fraction:
        raise CheckpointError(_too_little(report, path, min_fraction, ckpt, model))
    with torch.no_grad():
        target_module.load_state_dict(to_load, strict=False)
    _log.info("initialized %s from %s by %s: %s", part, description, report.rule, report.provenance)
    return report


def _check_kind(path: Path, model: nn.Module, part: str, ckpt: Checkpoint | None) -> None:
    if part == "detector" and ckpt is not None and ckpt.kind != "detector":
        raise CheckpointError(f"{path}: holds a {ckpt.kind}, not a detector; load it with part='backbone'")
    model_rung = getattr(model, "rung", None)
    if ckpt is not None and model_rung is not None and ckpt.rung.family != model_rung.family:
        # timm names different families' blocks alike and small rungs share shapes: refuse outright
        raise CheckpointError(f"{path}: holds a {ckpt.rung.family} network ({ckpt.rung.backbone_name}), the "
                              f"model is {model_rung.family} ({model_rung.backbone_name}); give a checkpoint of "
                              f"the model's family")


def _by_name(path: Path, description: str, part: str, source: dict[str, Tensor], target_sd: dict[str, Tensor],
             excluded: set[str], head: tuple[str, ...]) -> tuple[LoadReport, dict[str, Tensor]]:
    """The name rule: strip the best prefix, map flattened feature names, compare shapes."""
    prefix = _best_prefix(source, set(target_sd), _PREFIXES[part])
    n = len(prefix)
    to_load: dict[str, Tensor] = {}
    loaded, skipped, mismatched, reinit = [], [], [], set(excluded)
    for key, tensor in source.items():
        name = feature_key(key[n:], target_sd) if key.startswith(prefix) else None
        if name in excluded:
            continue
        if name is None or name not in target_sd:
            skipped.append(key)
        elif tuple(tensor.shape) != tuple(target_sd[name].shape):
            if name in head:  # a standard model's head sized for other classes: left fresh
                reinit.add(name)
            else:
                mismatched.append((name, tuple(tensor.shape), tuple(target_sd[name].shape)))
        else:
            to_load[name] = tensor
            if _counted(name):
                loaded.append(name)
    counted = {k for k in target_sd if _counted(k) and k not in reinit}
    done = set(loaded) | {m[0] for m in mismatched}
    report = LoadReport(
        source=str(path), sha256=file_sha256(path), description=description, part=part, prefix=prefix,
        total=len(counted), loaded=tuple(loaded), skipped=tuple(skipped), missing=tuple(sorted(counted - done)),
        mismatched=tuple(mismatched), reinitialized=tuple(sorted(reinit)), rule="name",
        rule_detail=f"name: keys equal after stripping the prefix {prefix!r}",
    )
    return report, to_load


def _by_structure(path: Path, description: str, part: str, source: dict[str, Tensor], target_sd: dict[str, Tensor],
                  head: tuple[str, ...], ckpt: Checkpoint | None) -> tuple[LoadReport, dict[str, Tensor]]:
    if part == "detector":
        raise SpecError("match='structure' loads a backbone or classifier; a detector loads by name (part='backbone' "
                        "for its backbone)")
    if path.suffix == ".safetensors":
        raise StructureMatchError(f"{path}: safetensors stores tensors sorted by name, not in the network's order, "
                                  f"so it cannot be matched by structure; save the state dict with torch.save")
    found = match_structure(source, target_sd, head, where=str(path))
    to_load = {tgt: source[src] for src, tgt in found.pairs}
    report = LoadReport(
        source=str(path), sha256=file_sha256(path), description=description, part=part, prefix="",
        total=len(found.pairs), loaded=tuple(tgt for _, tgt in found.pairs), skipped=found.skipped,
        missing=(), mismatched=(), reinitialized=found.left_out, rule="structure", rule_detail=found.detail,
    )
    return report, to_load


def _too_little(report: LoadReport, path: Path, min_fraction: float, ckpt: Checkpoint | None,
                model: nn.Module) -> str:
    model_rung = getattr(model, "rung", None)
    hint = ""
    if ckpt is not None and model_rung is not None and ckpt.rung != model_rung:
        hint = f" (the file is {ckpt.rung.backbone_name}, the model {model_rung.backbone_name})"
    example = ", ".join(f"{k} {list(a)} vs {list(b)}" for k, a, b in report.mismatched[:3])
    return (f"{path}: matched only {len(report.loaded)}/{report.total} tensors of the {report.part} "
            f"({report.fraction:.0%} < min_fraction {min_fraction:.0%}){hint}; "
            f"{len(report.mismatched)} mismatched{': ' + example if example else ''}, {len(report.missing)} missing, "
            f"{len(report.skipped)} skipped. Use a checkpoint of the same family and rung, or lower min_fraction")
