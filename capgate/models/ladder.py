"""The capacity ladder: named width/depth multipliers of two backbone families.

This module imports neither torch nor timm, so a grid spec can validate its rungs without
loading a model.

Families
--------
``efficientnet``
    EfficientNet-B0 (timm ``efficientnet_b0`` architecture) scaled down with timm's own
    compound-scaling builder (``_gen_efficientnet``): ``width`` is its ``channel_multiplier``
    and ``depth`` its ``depth_multiplier`` (block repeats per stage, ``ceil``-rounded, at
    least one block per stage).
``mobilenetv3``
    MobileNetV3-Large (timm ``mobilenetv3_large_100`` architecture) scaled with
    ``_gen_mobilenet_v3``. Large rather than Small because Large is the standard detection
    backbone (SSDLite, FCOS-lite) with a full stride-8/16/32 pyramid, and because Small's
    narrow stages hit timm's 8-channel floor already at width 0.35, which would collapse
    neighbouring rungs to the same parameter count.

Channel counts floor at 8 and MobileNetV3 fixes its 16-channel stem below width 0.75, so
parameter counts flatten at the bottom of the ladder; capacity is therefore always the
*measured* parameter count (see :mod:`capgate.models.profile`), never the multiplier.

Neck and head scale with the rung, so capacity is the whole detector's:

* neck (FPN) channels ``= max(16, 8 * round(96 * width / 8))``
* head tower depth (convs per FCOS tower) ``= clamp(round(4 * depth), 1, 4)``

Default rungs (exact whole-detector parameters for one class; they do not depend on the
resolution; the test suite checks the order, the >=10x span and the 1M ceiling). Note that
MobileNetV3 depth 0.75 builds the same blocks as 1.0 (``ceil`` rounding), hence S-0's 1.0:

=====  ============  =====  =====  ====  =====  ===========
rung   family        width  depth  neck  convs  detector
=====  ============  =====  =====  ====  =====  ===========
B-1    efficientnet  0.50   0.50   48    2      713,574
B-2    efficientnet  0.40   0.50   40    2      502,820
B-3    efficientnet  0.30   0.50   32    2      277,402
B-4    efficientnet  0.25   0.25   24    1      127,954
B-5    efficientnet  0.20   0.25   16    1       76,826
B-6    efficientnet  0.15   0.25   16    1       56,598
B-7    efficientnet  0.10   0.25   16    1       41,874
S-0    mobilenetv3   0.45   1.00   40    4      838,222
S-1    mobilenetv3   0.50   0.50   48    2      642,214
S-2    mobilenetv3   0.35   0.50   32    2      328,582
S-3    mobilenetv3   0.25   0.50   24    2      193,398
S-4    mobilenetv3   0.25   0.25   24    1      121,062
S-5    mobilenetv3   0.15   0.25   16    1       48,918
S-6    mobilenetv3   0.10   0.25   16    1       37,038
=====  ============  =====  =====  ====  =====  ===========

Names in the results table (``backbone`` column): a default rung reads
``efficientnet_b0@w0.3d0.5 (B-3)``; a custom rung ``mobilenetv3_large@w0.35d0.5``.
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
    "get_rung",
    "ladder",
    "register_rung",
    "rung_names",
]


@dataclass(frozen=True)
class FamilyInfo:
    """How a family maps onto timm: readable arch name, timm variant and builder name."""

    name: str
    arch: str
    timm_variant: str
    builder: str
    prefix: str


#: The two backbone families, keyed by the ``family`` column's value.
FAMILIES: dict[str, FamilyInfo] = {
    "efficientnet": FamilyInfo(
        name="efficientnet",
        arch="efficientnet_b0",
        timm_variant="efficientnet_b0",
        builder="timm.models.efficientnet._gen_efficientnet",
        prefix="B",
    ),
    "mobilenetv3": FamilyInfo(
        name="mobilenetv3",
        arch="mobilenetv3_large",
        timm_variant="mobilenetv3_large_100",
        builder="timm.models.mobilenetv3._gen_mobilenet_v3",
        prefix="S",
    ),
}

_MAX_MULTIPLIER = 2.0


def _check_family(family: str) -> FamilyInfo:
    try:
        return FAMILIES[family]
    except KeyError:
        raise SpecError(
            f"unknown backbone family {family!r}; valid families: {', '.join(sorted(FAMILIES))}"
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
        _check_family(self.family)
        object.__setattr__(self, "width", _check_multiplier("width", self.width))
        object.__setattr__(self, "depth", _check_multiplier("depth", self.depth))
        if not self.name:
            raise SpecError("a rung needs a non-empty name; use Rung.custom(family, width, depth)")

    @classmethod
    def custom(cls, family: str, width: float, depth: float, note: str = "") -> Rung:
        """A rung outside the default ladder, named e.g. ``mobilenetv3_large@w0.35d0.5``."""
        info = _check_family(family)
        width = _check_multiplier("width", width)
        depth = _check_multiplier("depth", depth)
        return cls(name=f"{info.arch}@w{width:g}d{depth:g}", family=family, width=width,
                   depth=depth, note=note or "custom")

    @property
    def info(self) -> FamilyInfo:
        """The family's timm mapping."""
        return FAMILIES[self.family]

    @property
    def is_default(self) -> bool:
        """True when this is exactly one of the registered default rungs."""
        return _REGISTRY.get(self.name) == self

    @property
    def backbone_name(self) -> str:
        """The results table's ``backbone`` value (readable, stable)."""
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


_REGISTRY: dict[str, Rung] = {}


def register_rung(rung: Rung) -> Rung:
    """Add a rung to the registry of named rungs; a duplicate name raises."""
    if rung.name in _REGISTRY:
        raise SpecError(f"rung name {rung.name!r} is already registered; pick another name")
    _REGISTRY[rung.name] = rung
    return rung


for _name, _family, _w, _d, _note in [
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
]:
    register_rung(Rung(_name, _family, _w, _d, _note))


def rung_names() -> list[str]:
    """Names of all registered rungs, in ladder order (families in order, largest first)."""
    return list(_REGISTRY)


_CUSTOM_NAME = re.compile(r"^(?P<arch>[a-z0-9_]+)@w(?P<width>[0-9.]+(?:e-?[0-9]+)?)d(?P<depth>[0-9.]+(?:e-?[0-9]+)?)$")


def get_rung(name: str) -> Rung:
    """A rung by name: a registered one (``B-3``, or its backbone name
    ``efficientnet_b0@w0.3d0.5 (B-3)``) or a custom one spelled ``<arch>@w<width>d<depth>``
    (``mobilenetv3_large@w0.35d0.5``; the multipliers of a default rung give that rung, so
    the results table names each network one way). Anything else raises :class:`SpecError` listing the
    valid names."""
    if not isinstance(name, str):
        raise SpecError(f"rung {name!r} is not a string; give a rung name ({', '.join(rung_names())})")
    if name in _REGISTRY:
        return _REGISTRY[name]
    for rung in _REGISTRY.values():
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
        for rung in _REGISTRY.values():  # a default rung's multipliers mean that rung
            if (rung.family, rung.width, rung.depth) == (custom.family, custom.width, custom.depth):
                return rung
        return custom
    raise SpecError(f"unknown rung {name!r}; valid rungs: {', '.join(rung_names())}, or a custom "
                    f"'<arch>@w<width>d<depth>' with arch {' or '.join(i.arch for i in FAMILIES.values())}")


def ladder(family: str | None = None) -> list[Rung]:
    """The default rungs of one family (or of all families), largest first."""
    if family is not None:
        _check_family(family)
    return [r for r in _REGISTRY.values() if family is None or r.family == family]
