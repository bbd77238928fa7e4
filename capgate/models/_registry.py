"""The two registries of the ladder: backbone families and named rungs (torch-free).

In the style of timm's ``_registry``: a family or a rung is registered once, under one name; a
second registration of a name raises, and an unknown name raises listing the valid ones. The
families themselves and their default rungs are declared in :mod:`capgate.models._families`;
the public face of both registries is :mod:`capgate.models.ladder`.

A third registry holds the standard full-size classifiers (:class:`StandardInfo`, declared in
:mod:`capgate.models._standard`). They are rungs of the pseudo-family ``standard`` (name = model
name, width = depth = 1), so a spec names them like any rung (``rungs: {standard: [resnet18]}``)
and a run id needs no new field; they are not in :data:`FAMILIES` and not in the ladder.

This module imports neither torch nor timm: a spec validates its rung names without a model.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any

from capgate.errors import SpecError

__all__ = [
    "FAMILIES",
    "FamilyInfo",
    "Rung",
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

#: Where a family's upstream builder lives.
SOURCES = ("timm", "torchvision")


@dataclass(frozen=True)
class FamilyInfo:
    """One backbone family: how a rung's ``width`` and ``depth`` become a network.

    ``builder`` is the upstream (often private, hence version-pinned by ``pinned``) function or
    class that builds the network, called with ``timm_variant`` (timm families) and the rung's
    width as ``width_arg`` and depth as ``depth_arg``; ``depth_arg=None`` means the builder has
    no depth argument and every rung has depth 1. ``factory`` (``module:function``, imported on
    first use) is capgate's build function, ``(rung, *, features_only, out_indices, checkpoint)
    -> nn.Module``; a ``features_only`` network returns a list of maps and has ``feature_info``
    with ``channels()`` and ``reduction()``. ``scaling`` says the rule in words (docs, CLI).
    """

    name: str
    arch: str
    prefix: str
    source: str
    builder: str
    timm_variant: str | None
    width_arg: str
    depth_arg: str | None
    factory: str
    pinned: str
    scaling: str

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise SpecError(f"family {self.name!r}: source {self.source!r} is invalid; valid: {', '.join(SOURCES)}")
        if not re.fullmatch(r"[a-z][a-z0-9_]*", self.arch):
            raise SpecError(f"family {self.name!r}: arch {self.arch!r} must be lowercase letters, digits and _")
        if ":" not in self.factory:
            raise SpecError(f"family {self.name!r}: factory {self.factory!r} must read 'module:function'")

    @property
    def depth_scaled(self) -> bool:
        """False when the builder has no depth argument (every rung then has depth 1)."""
        return self.depth_arg is not None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-able), with ``depth_scaled`` added."""
        return {**asdict(self), "depth_scaled": self.depth_scaled}


#: The pseudo-family of the standard full-size classifiers (not in FAMILIES, not in the ladder).
STANDARD_FAMILY = "standard"


@dataclass(frozen=True)
class StandardInfo:
    """One standard full-size classifier, built by its upstream constructor with its own head.

    ``name`` is the upstream model name (``timm.create_model(name)`` or
    ``torchvision.models.<name>``); ``params`` the parameter count published for it at 1000
    ImageNet classes (the tests check the built network against it); ``head`` the module path of
    its last layer, the one replaced for a dataset's classes. ``mean``/``std``/``input_size``/
    ``crop_pct``/``interpolation`` are the preprocessing of its published ImageNet weights
    (resize the short side to ``input_size / crop_pct``, centre-crop ``input_size``).
    """

    name: str
    title: str
    source: str
    params: int
    head: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    input_size: int
    crop_pct: float
    interpolation: str
    pinned: str
    note: str = ""

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise SpecError(f"standard model {self.name!r}: source {self.source!r} is invalid; "
                            f"valid: {', '.join(SOURCES)}")
        if self.interpolation not in ("bilinear", "bicubic"):
            raise SpecError(f"standard model {self.name!r}: interpolation {self.interpolation!r} is invalid; "
                            f"valid: bilinear, bicubic")

    @property
    def constructor(self) -> str:
        """The upstream call that builds it (docs, the CLI)."""
        if self.source == "timm":
            return f"timm.create_model({self.name!r}, pretrained=False, num_classes=N)"
        return f"torchvision.models.{self.name}(weights=None, num_classes=N)"

    @property
    def rung(self) -> Rung:
        """The model as a rung of the ``standard`` pseudo-family."""
        return Rung(self.name, STANDARD_FAMILY, 1.0, 1.0, self.title)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-able), with ``constructor`` added."""
        return {**asdict(self), "constructor": self.constructor}


_STANDARD: dict[str, StandardInfo] = {}


def register_standard(info: StandardInfo) -> StandardInfo:
    """Add a standard model; a name already used by a standard model or a rung raises."""
    if info.name in _STANDARD or info.name in _RUNGS:
        raise SpecError(f"standard model name {info.name!r} is already registered; pick another name")
    _STANDARD[info.name] = info
    return info


def standard_names() -> list[str]:
    """Names of the registered standard models, in registration order."""
    return list(_STANDARD)


def get_standard(name: str) -> StandardInfo:
    """A standard model by name; an unknown name raises :class:`SpecError` listing the valid ones."""
    try:
        return _STANDARD[name]
    except (KeyError, TypeError):
        raise SpecError(f"unknown standard model {name!r}; valid: {', '.join(_STANDARD)}") from None


#: Registered families, keyed by the results table's ``family`` value, in registration order.
FAMILIES: dict[str, FamilyInfo] = {}

_MAX_MULTIPLIER = 2.0


def register_family(info: FamilyInfo) -> FamilyInfo:
    """Add a family; a duplicate name, rung prefix or arch raises."""
    for other in FAMILIES.values():
        for field in ("name", "prefix", "arch"):
            if getattr(other, field) == getattr(info, field):
                raise SpecError(f"family {field} {getattr(info, field)!r} is already registered (family "
                                f"{other.name!r}); pick another {field}")
    FAMILIES[info.name] = info
    return info


def family_names() -> list[str]:
    """Names of all registered families, in registration order."""
    return list(FAMILIES)


def get_family(family: str) -> FamilyInfo:
    """A family by name; an unknown name raises :class:`SpecError` listing the valid ones."""
    try:
        return FAMILIES[family]
    except (KeyError, TypeError):
        raise SpecError(
            f"unknown backbone family {family!r}; valid families: {', '.join(FAMILIES)}"
        ) from None


def _check_multiplier(what: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(f"rung {what} {value!r} is not a number; give a float in (0, {_MAX_MULTIPLIER}]")
    value = float(value)
    if not (math.isfinite(value) and 0.0 < value <= _MAX_MULTIPLIER):
        raise SpecError(f"rung {what} {value!r} is out of range; give a float in (0, {_MAX_MULTIPLIER}]")
    return value


@dataclass(frozen=True)
class Rung:
    """One point of the capacity ladder: a backbone family scaled by width and depth.

    ``name`` is ``B-3``-style for default rungs and the readable backbone name for custom
    ones (see :meth:`custom`). ``note`` is free text for the docs and the CLI table.
    """

    name: str
    family: str
    width: float
    depth: float
    note: str = ""

    def __post_init__(self) -> None:
        if self.family == STANDARD_FAMILY:
            get_standard(self.name)
            if (self.width, self.depth) != (1.0, 1.0):
                raise SpecError(f"standard model {self.name!r} has width and depth 1, got {self.width!r} and "
                                f"{self.depth!r}; name it without multipliers")
            return
        info = get_family(self.family)
        object.__setattr__(self, "width", _check_multiplier("width", self.width))
        object.__setattr__(self, "depth", _check_multiplier("depth", self.depth))
        if not info.depth_scaled and self.depth != 1.0:
            raise SpecError(f"rung depth {self.depth:g} is invalid for family {self.family!r}: its builder "
                            f"({info.builder}) has no depth argument; give depth 1")
        if not self.name:
            raise SpecError("a rung needs a non-empty name; use Rung.custom(family, width, depth)")

    @classmethod
    def custom(cls, family: str, width: float, depth: float = 1.0, note: str = "") -> Rung:
        """A rung outside the default ladder, named e.g. ``mobilenetv3_large@w0.35d0.5``."""
        info = get_family(family)
        width = _check_multiplier("width", width)
        depth = _check_multiplier("depth", depth)
        return cls(name=f"{info.arch}@w{width:g}d{depth:g}", family=family, width=width,
                   depth=depth, note=note or "custom")

    @property
    def info(self) -> FamilyInfo:
        """The family's build recipe (a standard model has none: see :attr:`standard`)."""
        if self.family == STANDARD_FAMILY:
            raise SpecError(f"{self.name!r} is a standard model, not a ladder rung; it has no family "
                            f"builder (capgate.models.get_standard({self.name!r}) describes it)")
        return FAMILIES[self.family]

    @property
    def standard(self) -> StandardInfo | None:
        """The standard model this rung names, or None for a ladder rung."""
        return _STANDARD[self.name] if self.family == STANDARD_FAMILY else None

    @property
    def is_default(self) -> bool:
        """True when this is exactly one of the registered default rungs."""
        return _RUNGS.get(self.name) == self

    @property
    def backbone_name(self) -> str:
        """The results table's ``backbone`` value (readable, stable; a standard model's name)."""
        if self.family == STANDARD_FAMILY:
            return self.name
        base = f"{self.info.arch}@w{self.width:g}d{self.depth:g}"
        return f"{base} ({self.name})" if self.name != base else base

    @property
    def neck_channels(self) -> int:
        """FPN (and FCOS head) channels: ``max(16, 8 * round(96 * width / 8))``."""
        return max(16, 8 * int(round(96.0 * self.width / 8.0)))

    @property
    def head_convs(self) -> int:
        """Convs per FCOS head tower: ``clamp(round(4 * depth), 1, 4)``."""
        return max(1, min(4, int(round(4.0 * self.depth))))

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON- and ``weights_only``-safe) for specs, records and checkpoints."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rung:
        """Inverse of :meth:`to_dict`; also accepts ``{"name": "B-3"}`` for a default rung."""
        if not isinstance(data, dict):
            raise SpecError(f"a rung must be a mapping with family, width, depth; got {data!r}")
        if set(data) <= {"name"} and "name" in data:
            return get_rung(data["name"])
        missing = [k for k in ("family", "width", "depth") if k not in data]
        if missing:
            raise SpecError(f"rung {data!r} lacks {', '.join(missing)}; give family, width and depth "
                            f"or the name of a default rung ({', '.join(rung_names())})")
        name = data.get("name")
        if name is None:
            return cls.custom(data["family"], data["width"], data["depth"], data.get("note", ""))
        return cls(name=name, family=data["family"], width=data["width"], depth=data["depth"],
                   note=data.get("note", ""))


_RUNGS: dict[str, Rung] = {}


def register_rung(rung: Rung) -> Rung:
    """Add a rung to the registry of named rungs; a duplicate name raises."""
    if rung.name in _RUNGS:
        raise SpecError(f"rung name {rung.name!r} is already registered; pick another name")
    _RUNGS[rung.name] = rung
    return rung


def rung_names(family: str | None = None) -> list[str]:
    """Names of the registered rungs of ``family`` (or of all families), in ladder order
    (families in registration order, each largest first). An unknown family raises."""
    if family is not None:
        get_family(family)
    return [name for name, r in _RUNGS.items() if family is None or r.family == family]


_CUSTOM_NAME = re.compile(r"^(?P<arch>[a-z0-9_]+)@w(?P<width>[0-9.]+(?:e-?[0-9]+)?)d(?P<depth>[0-9.]+(?:e-?[0-9]+)?)$")


def get_rung(name: str) -> Rung:
    """A rung by name: a registered one (``B-3``, or its backbone name
    ``efficientnet_b0@w0.3d0.5 (B-3)``) or a custom one spelled ``<arch>@w<width>d<depth>``
    (``mobilenetv3_large@w0.35d0.5``; the multipliers of a default rung give that rung, so
    the results table names each network one way). Anything else raises :class:`SpecError` listing the
    valid names."""
    if not isinstance(name, str):
        raise SpecError(f"rung {name!r} is not a string; give a rung name ({', '.join(rung_names())})")
    if name in _RUNGS:
        return _RUNGS[name]
    if name in _STANDARD:
        return _STANDARD[name].rung
    for rung in _RUNGS.values():
        if rung.backbone_name == name:
            return rung
    match = _CUSTOM_NAME.match(name.strip())
    if match:
        archs = {info.arch: fam for fam, info in FAMILIES.items()}
        if match["arch"] not in archs:
            raise SpecError(f"rung {name!r} names architecture {match['arch']!r}; valid: "
                            f"{', '.join(sorted(archs))} (e.g. mobilenetv3_large@w0.35d0.5)")
        try:
            width, depth = float(match["width"]), float(match["depth"])
        except ValueError:
            raise SpecError(f"rung {name!r} has unreadable multipliers; write e.g. "
                            f"mobilenetv3_large@w0.35d0.5") from None
        custom = Rung.custom(archs[match["arch"]], width, depth)
        for rung in _RUNGS.values():  # a default rung's multipliers mean that rung
            if (rung.family, rung.width, rung.depth) == (custom.family, custom.width, custom.depth):
                return rung
        return custom
    raise SpecError(f"unknown rung {name!r}; valid rungs: {', '.join(rung_names())}, or a custom "
                    f"'<arch>@w<width>d<depth>' with arch {' or '.join(i.arch for i in FAMILIES.values())}, "
                    f"or a standard model ({', '.join(_STANDARD)})")


def ladder(family: str | None = None) -> list[Rung]:
    """The default rungs of one family (or of all families), largest first."""
    return [_RUNGS[name] for name in rung_names(family)]
