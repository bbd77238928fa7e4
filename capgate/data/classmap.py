"""Selecting and renaming classes across datasets.

A :class:`ClassMap` maps each target class to the source names it collects, e.g.
``{"person": ["person", "pedestrian", "people"]}``. Source names match case-insensitively;
unmapped source classes are dropped and counted. Cross-dataset studies use the preset
``"person"``. ``str(class_map)`` is a short form for the results table and ``meta``.

Source names do not mean the same thing in every dataset: FLIR ADAS v1's ``bicycle`` covers
bicycles *and motorcycles*, FLIR ADAS v2's ``bike`` bicycles only (v2 has ``motor`` for
motorcycles), COCO's ``bicycle`` bicycles only. The ``person_bike_car`` preset therefore mixes two
definitions when it reads FLIR v1; the readers record such notes in ``meta["class_notes"]``
(:data:`capgate.data.flir.CLASS_NOTES`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from capgate.errors import DataError

__all__ = ["ClassMap", "PRESETS", "resolve_class_map"]


@dataclass(frozen=True)
class ClassMap:
    """Target class -> source class names. ``targets`` order is the dataset's category order."""

    mapping: tuple[tuple[str, tuple[str, ...]], ...]
    name: str | None = None

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Sequence[str] | str], name: str | None = None) -> ClassMap:
        """Build from ``{target: [source, ...]}`` (a bare string source is allowed)."""
        if not mapping:
            raise DataError("class map is empty; fix: map at least one target class, e.g. {'person': ['person']}")
        items: list[tuple[str, tuple[str, ...]]] = []
        seen: dict[str, str] = {}
        for target, sources in mapping.items():
            srcs = (sources,) if isinstance(sources, str) else tuple(sources)
            if not srcs:
                raise DataError(f"class map target {target!r} has no source names; fix: list at least one")
            for s in srcs:
                key = s.strip().lower()
                if key in seen and seen[key] != target:
                    raise DataError(
                        f"class map sends source class {s!r} to both {seen[key]!r} and {target!r}; "
                        "fix: map each source name to one target"
                    )
                seen[key] = target
            items.append((str(target), tuple(str(s) for s in srcs)))
        return cls(tuple(items), name)

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(t for t, _ in self.mapping)

    def lookup(self, source_name: str) -> str | None:
        """The target a source class name maps to, or None if it is dropped."""
        key = source_name.strip().lower()
        for target, sources in self.mapping:
            if any(key == s.strip().lower() for s in sources):
                return target
        return None

    def to_dict(self) -> dict[str, list[str]]:
        return {t: list(s) for t, s in self.mapping}

    def __str__(self) -> str:
        if self.name:
            return self.name
        return ";".join(f"{t}={'|'.join(s)}" for t, s in self.mapping)


PRESETS: dict[str, ClassMap] = {
    "person": ClassMap.from_dict({"person": ["person", "pedestrian", "people", "people_group"]}, name="person"),
    # "bicycle" <- FLIR v1 "bicycle" includes motorcycles; FLIR v2 "bike" and COCO "bicycle" do not
    "person_bike_car": ClassMap.from_dict(
        {"person": ["person", "pedestrian", "people"], "bicycle": ["bicycle", "bike"], "car": ["car"]},
        name="person_bike_car",
    ),
}


def resolve_class_map(value: ClassMap | Mapping[str, Any] | str | None) -> ClassMap | None:
    """Accept a ClassMap, a ``{target: [sources]}`` dict, a preset name, an inline string
    ``"person=person|pedestrian;car=car"``, or None (keep every class)."""
    if value is None or isinstance(value, ClassMap):
        return value
    if isinstance(value, Mapping):
        return ClassMap.from_dict(value)
    if isinstance(value, str):
        if value in PRESETS:
            return PRESETS[value]
        if "=" in value:
            mapping: dict[str, list[str]] = {}
            for part in value.split(";"):
                if not part.strip():
                    continue
                target, _, sources = part.partition("=")
                mapping[target.strip()] = [s.strip() for s in sources.split("|") if s.strip()]
            return ClassMap.from_dict(mapping)
        raise DataError(
            f"unknown class map {value!r}; valid presets: {', '.join(sorted(PRESETS))}, "
            "or an inline map like 'person=person|pedestrian;car=car'"
        )
    raise DataError(f"class map must be a preset name, a dict or None, not {type(value).__name__}")
