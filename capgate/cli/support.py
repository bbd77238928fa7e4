"""Helpers of the command line that are more than parsing: the grid's dry-run listing and the
inputs ``report`` renders (kept out of :mod:`capgate.cli` so each command stays a thin wrapper)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click

__all__ = ["_dry_run", "_selection", "_results_inputs", "_say_models_start"]


def _dry_run(spec: str, overrides: tuple[str, ...], storage: str | None, as_json: bool,
             adaptive: dict | None = None) -> None:
    """Print the plan (resolved spec as YAML, stages, runs, runs already stored) and the problems
    a start would hit; problems raise after the listing (exit 2)."""
    import json

    from capgate.errors import SpecError
    from capgate.grid import Store, plan_grid, resolve_storage
    from capgate.grid.adaptive import describe_settings
    from capgate.grid.preflight import preflight

    plan = plan_grid(spec, overrides)
    store = Store(resolve_storage(storage), plan.study.study)
    stored = sorted(store.done([r.run_id for r in plan.runs]))
    problems, unchecked = preflight(plan, strict=False)
    if as_json:
        click.echo(json.dumps({**plan.to_dict(stored), "adaptive": adaptive, "problems": problems,
                                "unchecked": unchecked}, indent=1))
    else:
        click.echo(plan.describe(len(stored)))
        if adaptive is not None:
            click.echo(describe_settings(adaptive))
        for line in unchecked:
            click.echo(f"not checked: {line}")
    if problems:
        raise SpecError(f"{spec}: the grid cannot start:\n" + "\n".join(f"  {p}" for p in problems))


def _selection(path: str, all_runs: bool) -> str | None:
    from capgate.analysis.load import study_selection

    line = study_selection(path, all_runs)
    return f"reading {line}" if line else None


def _results_inputs(results: tuple[str, ...], all_runs: bool) -> Any:
    """What ``report`` renders: the paths as given, or one in-memory table when an input is an
    object-store URI or ``--all-runs`` widens a study folder (the report reads those here).
    Says on stderr which runs each study folder contributes."""
    import pandas as pd

    from capgate.store.location import is_remote
    from capgate.analysis import load_results

    for r in results:
        line = _selection(r, all_runs)
        if line:
            click.echo(line, err=True)
    if not any(is_remote(r) or (all_runs and Path(r).is_dir()) for r in results):
        return list(results)
    tables = [load_results(r, all_runs=all_runs) for r in results]
    return tables[0] if len(tables) == 1 else pd.concat(tables, ignore_index=True, sort=False)


def _say_models_start(family: str | None, task: str, resolution: int, latency: bool) -> None:
    """One line (stderr, via the log: -q quiets it) before ``models`` builds and measures every rung."""
    from capgate.models.ladder import ladder

    logging.getLogger("capgate.cli").info(
        "measuring %d rungs (%s, %d px): building each %s, counting parameters and MACs%s; this takes a while",
        len(ladder(family)), family or "every family", resolution,
        "FCOS detector" if task == "detection" else "classifier",
        ", timing CPU latency (median of 10 after 3 warm-ups)" if latency else "")
