"""Helpers of the command line that are more than parsing: the grid's dry-run listing and the
texts every command module shares (kept out of :mod:`capgate.cli.app` so each command stays a thin
wrapper). The results loader of report, check and next-seeds is :mod:`capgate.cli.results`."""

from __future__ import annotations

import logging

import click

__all__ = ["_dry_run", "_say_models_start", "EXIT_CODES_HELP", "INTERRUPT_HELP", "CONTEXT_SETTINGS"]

EXIT_CODES_HELP = "Exit codes: 0 success, 1 failure, 2 unusable input."
INTERRUPT_HELP = " Ctrl-C exits 130; the same command resumes."
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


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


def _say_models_start(family: str | None, task: str, resolution: int, latency: bool) -> None:
    """One line (stderr, via the log: -q quiets it) before ``models`` builds and measures every rung."""
    from capgate.models.ladder import ladder

    logging.getLogger("capgate.cli").info(
        "measuring %d rungs (%s, %d px): building each %s, counting parameters and MACs%s; this takes a while",
        len(ladder(family)), family or "every family", resolution,
        "FCOS detector" if task == "detection" else "classifier",
        ", timing CPU latency (median of 10 after 3 warm-ups)" if latency else "")
