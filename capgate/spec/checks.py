"""The spec loader's checks: each names the key path, the bad value and the valid choices."""

from __future__ import annotations

from typing import Any

from capgate.errors import SpecError

__all__ = ["_keys", "_choice", "_num", "_str", "_seed_list"]


def _keys(d: Any, where: str, required: tuple[str, ...], optional: tuple[str, ...]) -> dict:
    if not isinstance(d, dict):
        raise SpecError(f"spec key '{where}' must be a mapping, got {d!r}")
    valid = required + optional
    for k in d:
        if k not in valid:
            raise SpecError(f"spec key '{where}.{k}' is unknown; valid keys under '{where}': {', '.join(valid)}")
    for k in required:
        if k not in d:
            raise SpecError(f"spec key '{where}.{k}' is missing; it is required")
    return d


def _choice(value: Any, where: str, choices: tuple[str, ...] | list[str]) -> str:
    if value not in choices:
        raise SpecError(f"spec key '{where}' has invalid value {value!r}; valid choices: {', '.join(choices)}")
    return value


def _num(value: Any, where: str, kind: type, lo: float | None = None, hi: float | None = None) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        raise SpecError(f"spec key '{where}' must be a {kind.__name__}, got {value!r}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise SpecError(f"spec key '{where}' = {value!r} is out of range [{lo}, {hi}]")
    return kind(value)


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise SpecError(f"spec key '{where}' must be a non-empty string, got {value!r}")
    return value



def _seed_list(seeds: Any, key: str) -> tuple[int, ...]:
    """``seeds`` / ``stage_seeds``: a count n (meaning 0..n-1) or a list of distinct integers >= 0."""
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise SpecError(f"spec key '{key}' = {seeds!r}: a count of seeds must be >= 1 "
                            f"(e.g. {key}: 3 or {key}: [0, 1, 2])")
        seeds = list(range(seeds))
    if not isinstance(seeds, list) or not seeds or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise SpecError(f"spec key '{key}' must be a count >= 1 or a non-empty list of integers >= 0, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise SpecError(f"spec key '{key}' repeats a seed: {seeds!r}; list each seed once")
    return tuple(seeds)
