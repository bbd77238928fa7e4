"""Regression checks of a study's conclusions against a committed baseline ``summary.json``.

``capgate check`` answers "did these results drift from the baseline beyond run-to-run noise?". The
rules are in :mod:`capgate.check.rules` (each cell's tolerance comes from its own stabilised standard
error), the readable diff and JUnit XML in :mod:`capgate.check.output`, the summary contract in
:mod:`capgate.analysis.summary`. This module loads the inputs and runs the comparison.

Exit codes of the command: 0 pass (warnings allowed), 1 regression, 2 unusable input (a baseline of
another study or of an older summary schema, a plan that names nothing in the results). Never imports
torch or ray and never refits anything beyond what :func:`capgate.analysis.analyze` does.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from capgate.store.atomic import atomic_write_json
from capgate.check.output import format_table, write_junit
from capgate.check.rules import (FAMILY_ALPHA, SE_MODES, CheckResult, CheckRow, auto_z, check_studies, compare,
                                  pooled_sd)
from capgate.analysis.summary import (SUMMARY_SCHEMA, gate_interval, param_ranges, read_summary,
                                      validate_summary)
from capgate.errors import InputError

__all__ = ["CheckRow", "CheckResult", "compare", "write_junit", "run_check", "read_summary", "format_table",
           "validate_summary", "current_summary", "pooled_sd", "auto_z", "gate_interval", "param_ranges",
           "check_studies", "FAMILY_ALPHA", "SE_MODES", "SUMMARY_SCHEMA"]


def _paths(results: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    paths = [Path(results)] if isinstance(results, (str, os.PathLike)) else [Path(p) for p in results]
    if not paths:
        raise InputError("no results given; pass results tables (parquet/CSV), study folders or one summary.json")
    return paths


def current_summary(results: str | os.PathLike | Sequence[str | os.PathLike] | Any,
                    plan: str | os.PathLike | dict | None = None) -> dict[str, Any]:
    """The summary to check: read directly when given one ``*.json`` summary (expectations of
    ``plan`` re-evaluated on its verdicts), else load the results tables (or take the DataFrame
    given) and analyze them."""
    import pandas as pd

    from capgate.analysis import analyze, as_plan, build_summary, evaluate_expectations, load_results

    resolved = None if plan is None else as_plan(plan)
    if isinstance(results, pd.DataFrame):  # a table the caller loaded (the CLI's one results loader)
        return build_summary(analyze(results, resolved))
    paths = _paths(results)
    if len(paths) == 1 and paths[0].suffix == ".json":
        summary = read_summary(paths[0])
        if resolved is not None and resolved.expectations:
            exp = evaluate_expectations(pd.DataFrame(summary["verdicts"]), resolved)
            summary = {**summary, "expectations": [
                {"text": r.text, "status": r.status, "holds": bool(r.holds), "detail": r.detail}
                for r in exp.itertuples()]}
        return summary
    tables = []
    for p in paths:
        if p.suffix == ".json":
            raise InputError(f"{p}: a summary.json can only be checked on its own; pass it alone, or pass results tables")
        if not p.exists():
            raise InputError(f"{p}: results not found; pass a results table (parquet or CSV), a study folder or a summary.json")
        tables.append(load_results(p))
    table = tables[0] if len(tables) == 1 else pd.concat(tables, ignore_index=True, sort=False)
    return build_summary(analyze(table, resolved))


def _read_baseline(bpath: Path, results: list[Any], plan: Any) -> dict[str, Any]:
    """The baseline; its errors name the exact command that regenerates it."""
    cmd = " ".join(["capgate", "check", *(shlex.quote(str(p)) for p in results), "--baseline",
                    shlex.quote(str(bpath))] + (["--plan", shlex.quote(str(plan))] if isinstance(plan, (str, os.PathLike)) else [])
                   + ["--update-baseline"])
    return read_summary(bpath, what="baseline", command=cmd)


def run_check(results: str | os.PathLike | Sequence[str | os.PathLike], baseline_path: str | os.PathLike,
              plan: str | os.PathLike | dict | None = None, *, abs_tol: float = 0.0, z: float | None = None,
              se_mode: str = "cell", junit: str | os.PathLike | None = None, update_baseline: bool = False,
              strict: bool = False, expectations: str = "hold", command_args: Sequence[str] | None = None) -> CheckResult:
    """Check ``results`` against the baseline at ``baseline_path``; optionally write JUnit XML.

    ``update_baseline``: write the current summary as the new baseline (after comparing with the
    old one when it exists; the returned result then always passes, its notes say what was done).
    ``strict``: expectations left untested by inconclusive cells fail. ``expectations``: ``hold``
    (each plan expectation must hold) or ``baseline`` (each keeps the status the baseline recorded).
    ``results`` may be a DataFrame the caller loaded; ``command_args`` then name its inputs (and
    mapping flags) in the command that regenerates a missing baseline.
    """
    import pandas as pd

    loaded = isinstance(results, pd.DataFrame)
    paths: list[Any] = list(command_args or ["RESULTS"]) if loaded else _paths(results)
    current = current_summary(results if loaded else paths, plan)
    bpath = Path(baseline_path)
    notes: list[str] = []
    if update_baseline:
        if bpath.exists():
            try:
                old = compare(read_summary(bpath, what="baseline"), current, abs_tol=abs_tol, z=z, se_mode=se_mode)
                notes.append(f"previous baseline differed by {len(old.failures)} failures and {len(old.warnings)} warnings")
            except InputError as exc:
                notes.append(f"previous baseline unusable, replaced ({exc})")
        atomic_write_json(bpath, current, indent=2, allow_nan=False)
        notes.append(f"baseline written to {bpath}")
        result = compare(current, current, abs_tol=abs_tol, z=z, se_mode=se_mode, strict=strict,
                         expectations=expectations)
        result = CheckResult(rows=result.rows, rule=result.rule, notes=tuple(notes))
    else:
        baseline = _read_baseline(bpath, paths, plan)
        check_studies(baseline, current, baseline_name=str(bpath))
        result = compare(baseline, current, abs_tol=abs_tol, z=z, se_mode=se_mode, strict=strict,
                         expectations=expectations)
    if junit is not None:
        write_junit(result, junit)
    return result
