"""Render the HTML report: find the templates, fill them, write ``index.html`` beside the analysis files.

:func:`render_report` is the library side of ``capgate report``: load one or several results
tables, analyze them under a plan, write the analysis outputs (``summary.json``, ``gains.csv``,
``model.json``, ``model_frame.csv``) and the self-contained ``index.html``.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import platform
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

import capgate
from capgate._hash import file_sha256
from capgate.store.atomic import atomic_write_text
from capgate.analysis.result import Analysis
from capgate.analysis.summary import build_summary
from capgate.errors import CapgateError, InputError
from capgate.report.context import build_context
from capgate.report.exports import write_exports
from capgate.report.paper import verdict_tally
from capgate.report.pretraining import flag_summary, read_class_counts, study_folder

__all__ = ["render_report", "render_html", "templates_dir", "load_tables", "ResultsInput",
           "report_tally"]

log = logging.getLogger(__name__)

TEMPLATE = "report.html.j2"
ResultsInput = str | os.PathLike | pd.DataFrame | Sequence[str | os.PathLike]


def templates_dir() -> Path:
    """The folder holding ``report.html.j2`` and ``report.css``: the repository's ``templates/``,
    shipped in the wheel as ``capgate._templates`` (see :func:`capgate._resources.shipped`)."""
    from capgate._resources import shipped

    folder = shipped("templates")
    if not (folder / TEMPLATE).is_file():
        raise CapgateError(f"report template {TEMPLATE} is missing from {folder}; reinstall capgate "
                           "(pip install -e . in the checkout, or its wheel)")
    return folder


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "j2", "html.j2"), default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def _versions() -> dict[str, str]:
    out = {"capgate": capgate.__version__, "python": platform.python_version()}
    for pkg in ("pandas", "numpy", "statsmodels", "scipy", "jinja2"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def render_html(analysis: Analysis, summary: dict[str, Any] | None = None, *,
                inputs: list[dict[str, Any]] | None = None, title: str | None = None,
                generated_at: str | None = None, benchmark: dict[str, Any] | None = None) -> str:
    """The report page as one HTML string (inline CSS and SVG, no scripts, no external fetches).

    ``summary`` defaults to ``build_summary(analysis)``; ``inputs`` lists the results files read
    (dicts with ``path``, ``rows``, ``sha256``) for the provenance section; ``benchmark`` the
    lightweight-CNN benchmark section (:func:`capgate.report.benchmark.benchmark_section`) or None.
    """
    summary = build_summary(analysis) if summary is None else summary
    ctx = build_context(analysis, summary, inputs=inputs, environment=_versions(), title=title)
    ctx["benchmark"] = benchmark
    ctx["version"] = capgate.__version__
    ctx["generated_at"] = generated_at or _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return _environment().get_template(TEMPLATE).render(**ctx)


def _as_paths(results: ResultsInput) -> list[Path] | None:
    if isinstance(results, pd.DataFrame):
        return None
    if isinstance(results, (str, os.PathLike)):
        return [Path(results)]
    paths = [Path(p) for p in results]
    if not paths:
        raise InputError("no results given; pass one or more results tables (parquet or CSV) or study folders")
    return paths


def load_tables(results: ResultsInput) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Load and concatenate one or several results tables; returns the table and input records."""
    from capgate.analysis import load_results

    paths = _as_paths(results)
    if paths is None:
        return results, [{"path": "(in-memory table)", "rows": len(results)}]  # type: ignore[return-value]
    tables, inputs = [], []
    for p in paths:
        if not p.exists():
            raise InputError(f"{p}: results not found; pass a results table (parquet or CSV) or a study folder")
        t = load_results(p)
        tables.append(t)
        inputs.append({"path": str(p), "rows": len(t), "sha256": file_sha256(p) if p.is_file() else "(folder)"})
    table = tables[0] if len(tables) == 1 else pd.concat(tables, ignore_index=True, sort=False)
    return table, inputs


def report_tally(outdir: str | os.PathLike) -> str:
    """The verdict counts of the report written to ``outdir`` in one line (``capgate report`` prints it),
    e.g. ``39 of 60 contrasts decided: 20 helps, 15 within_noise, 4 hurts; 21 inconclusive``."""
    import json

    return verdict_tally(json.loads((Path(outdir) / "summary.json").read_text()))


def render_report(results: ResultsInput, outdir: str | os.PathLike, plan: str | os.PathLike | dict[str, Any] | None = None,
                  *, title: str | None = None, inputs: list[dict[str, Any]] | None = None) -> Path:
    """Load ``results`` (a path, several paths or a DataFrame), analyze under ``plan``, write
    ``summary.json``, ``gains.csv``, ``model.json``, ``model_frame.csv``, ``index.html`` and its
    paper-ready exports (:func:`capgate.report.exports.write_exports`) into ``outdir``; return the path
    of ``index.html``. Several tables give one combined report.

    ``inputs``: the provenance records of a table loaded by the caller (``path``, ``rows``, ``sha256``).
    A table without any successful run still renders (its headline says so), then raises
    :class:`~capgate.errors.CapgateError` (exit 1): there is nothing to conclude."""
    from capgate.analysis import analyze, as_plan, write_outputs

    table, loaded = load_tables(results)
    inputs = loaded if inputs is None else inputs
    analysis = analyze(table, as_plan(plan))
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    summary = build_summary(analysis)
    write_outputs(analysis, out, summary)
    index = out / "index.html"
    from capgate.report.benchmark import benchmark_section

    counts = {t: n for (task, t), n in read_class_counts(study_folder(inputs)).items() if task == "classification"}
    page = render_html(analysis, summary, inputs=inputs, title=title,
                       benchmark=benchmark_section(table, analysis, counts))
    atomic_write_text(index, page)
    # figures/*.svg, tables/*.md|.tex, sentences.md (with the page's floor/chance notes)
    write_exports(out, page, flag_summary(summary, study_folder(inputs)))
    log.debug("report written to %s", index)  # the CLI prints the one user-facing line
    if summary.get("n_ok_runs", 0) == 0:
        raise CapgateError(f"{index}: the results hold no successful run (every run failed or diverged); the report "
                           "says so, but nothing can be concluded: fix the failing runs and rerun the grid"
                           + _run_errors(table))
    return index


def _run_errors(table: Any, most: int = 5) -> str:
    """The distinct first lines of the runs' ``error`` column, most frequent first, with their counts."""
    if "error" not in getattr(table, "columns", ()):
        return ""
    runs = table.drop_duplicates("run_id") if "run_id" in table.columns else table
    first = runs["error"].dropna().astype(str).str.strip().str.split("\n").str[0]
    counts = first[first != ""].value_counts()
    if counts.empty:
        return ""
    lines = [f"  {n} run{'s' if n > 1 else ''}: {err[:300]}" for err, n in counts.head(most).items()]
    more = f"\n  ... and {len(counts) - most} other errors" if len(counts) > most else ""
    return "; the runs' errors:\n" + "\n".join(lines) + more
