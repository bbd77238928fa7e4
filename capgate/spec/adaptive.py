"""The spec's ``adaptive`` section: how ``run-grid`` grows seeds (validated here for :mod:`capgate.spec.load`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from capgate.errors import CapgateError, SpecError
from capgate.spec.checks import _keys, _num, _str
from capgate.spec.sections import Adaptive, fields_of

__all__ = ["parse_adaptive", "ADAPTIVE_KEYS"]

ADAPTIVE_KEYS = fields_of(Adaptive)


def _adaptive_plan(value: Any, base_dir: Path) -> str:
    """``adaptive.plan``: a path (relative to the spec file) or the name of a shipped analysis plan."""
    from capgate._resources import shipped

    name = _str(value, "adaptive.plan")
    path = Path(name).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    if path.is_file():
        return str(path)
    try:
        folder = shipped("analysis")
    except CapgateError:
        folder = None
    if folder is not None and not Path(name).is_absolute():
        candidate = folder / (Path(name).name if Path(name).suffix in (".yaml", ".yml") else f"{name}.yaml")
        if candidate.is_file():
            return str(candidate)
    known = sorted(p.stem for p in folder.glob("*.yaml")) if folder is not None else []
    raise SpecError(f"spec key 'adaptive.plan' = {name!r}: no file {path} (a relative path is read from the spec "
                    f"file's folder)" + (f"; or name a shipped plan: {', '.join(known)}" if known else ""))


def parse_adaptive(x: Any, base_dir: Path) -> Adaptive | None:
    """The spec's ``adaptive`` section (None: a fixed grid)."""
    if x is None:
        return None
    x = _keys(x, "adaptive", (), ADAPTIVE_KEYS)
    plan = x.get("plan")
    seeds, rounds, runs = x.get("max_seeds"), x.get("max_rounds"), x.get("max_runs")
    return Adaptive(plan=None if plan is None else _adaptive_plan(plan, base_dir),
                    max_seeds=None if seeds is None else _num(seeds, "adaptive.max_seeds", int, 2),
                    max_rounds=None if rounds is None else _num(rounds, "adaptive.max_rounds", int, 1),
                    max_runs=None if runs is None else _num(runs, "adaptive.max_runs", int, 2))
