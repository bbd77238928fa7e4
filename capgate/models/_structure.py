"""Matching a checkpoint to a model BY STRUCTURE, for files of another implementation of the
same architecture (other parameter names: ``_blocks.0._bn1.weight`` for timm's
``blocks.0.0.bn1.weight``).

The rule. Take the file's tensors in file order and the model's in ``state_dict`` order, both
without BatchNorm's ``num_batches_tracked`` counters. A *fit* at offset ``o`` pairs model tensor
``i`` with file tensor ``o + i`` for every ``i``, and needs every pair to have the same shape and,
where both names say it, the same role (weight, bias, running mean, running variance: so a file
that lists a BatchNorm's statistics before its affine parameters does not fit). Two targets are
tried, in order: the whole model, then the model without its last layer (a standard model whose
head is sized for other classes; the head then keeps its fresh initialization). The first target
with exactly one fitting offset wins; file tensors outside the window are *skipped* (e.g. the
file's own classifier). No fit at all is *incomplete*, more than one fit is *ambiguous*: both raise
:class:`~capgate.errors.StructureMatchError`, naming the first pair that differs or the offsets
that fit. Order-free files (safetensors stores tensors sorted by name) cannot be matched this way.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from capgate.errors import StructureMatchError

__all__ = ["StructureMatch", "match_structure"]

_ROLES = {
    "weight": "weight", "gamma": "weight", "kernel": "weight", "scale": "weight",
    "bias": "bias", "beta": "bias",
    "running_mean": "mean", "moving_mean": "mean",
    "running_var": "var", "moving_variance": "var", "moving_var": "var",
}


def _role(key: str) -> str | None:
    return _ROLES.get(key.rsplit(".", 1)[-1].lower())


def _counted(key: str) -> bool:
    return not key.endswith("num_batches_tracked")


def _fits(src: tuple[str, Tensor], tgt: tuple[str, Tensor]) -> bool:
    if tuple(src[1].shape) != tuple(tgt[1].shape):
        return False
    a, b = _role(src[0]), _role(tgt[0])
    return a is None or b is None or a == b


@dataclass(frozen=True)
class StructureMatch:
    """One accepted fit: ``pairs`` are ``(file key, model key)`` in order; ``skipped`` the file's
    tensors outside the window; ``left_out`` the model's tensors not filled (its last layer)."""

    pairs: tuple[tuple[str, str], ...]
    offset: int
    target: str
    skipped: tuple[str, ...]
    left_out: tuple[str, ...]

    @property
    def detail(self) -> str:
        """The rule that matched, in words (the load report's ``rule_detail``)."""
        return (f"structure: the model's {len(self.pairs)} tensors ({self.target}) taken in order fit the file's "
                f"tensors {self.offset}..{self.offset + len(self.pairs) - 1} by shape and role; "
                f"{len(self.skipped)} file tensors skipped, {len(self.left_out)} model tensors left out")


def _offsets(src: list[tuple[str, Tensor]], tgt: list[tuple[str, Tensor]]) -> list[int]:
    return [o for o in range(len(src) - len(tgt) + 1) if all(_fits(src[o + i], t) for i, t in enumerate(tgt))]


def _first_difference(src: list[tuple[str, Tensor]], tgt: list[tuple[str, Tensor]]) -> str:
    for i, (t, s) in enumerate(zip(tgt, src)):
        if not _fits(s, t):
            return (f"tensor #{i} differs: file {s[0]} {list(s[1].shape)} vs model {t[0]} {list(t[1].shape)}")
    return f"the file ends after {len(src)} tensors, the model has {len(tgt)}"


def match_structure(source: dict[str, Tensor], target: dict[str, Tensor], head: tuple[str, ...] = (),
                    *, where: str = "checkpoint") -> StructureMatch:
    """Fit ``target`` (the model's state dict) onto ``source`` (the file's, in file order) by the
    module rule; ``head`` are the model keys of its last layer (tried without them second)."""
    src = [(k, v) for k, v in source.items() if _counted(k)]
    full = [(k, v) for k, v in target.items() if _counted(k)]
    targets = [("whole model", full)]
    if head:
        targets.append(("without its last layer", [(k, v) for k, v in full if k not in set(head)]))
    for label, tgt in targets:
        offsets = _offsets(src, tgt)
        if len(offsets) > 1:
            raise StructureMatchError(
                f"{where}: the structure match is ambiguous: the model's {len(tgt)} tensors ({label}) fit the "
                f"file's {len(src)} at offsets {offsets[:5]}; give a checkpoint of exactly this architecture, or "
                f"re-key it to the model's parameter names so it loads by name")
        if offsets:
            o = offsets[0]
            window = {k for k, _ in src[o:o + len(tgt)]}
            kept = {k for k, _ in tgt}
            return StructureMatch(
                pairs=tuple((s[0], t[0]) for s, t in zip(src[o:o + len(tgt)], tgt)), offset=o, target=label,
                skipped=tuple(k for k, _ in src if k not in window),
                left_out=tuple(k for k, _ in full if k not in kept))
    sizes = " or ".join(f"{len(t)} ({label})" for label, t in targets)
    raise StructureMatchError(
        f"{where}: the structure match is incomplete: the file's {len(src)} tensors, in order, do not fit the "
        f"model's {sizes}; {_first_difference(src, targets[-1][1])}. Give a checkpoint of the same architecture "
        f"(same layers in the same order), or re-key it to the model's parameter names")
