"""Paper-ready files beside ``index.html``: every figure as its own SVG, the per-cell means and the
verdicts as Markdown and LaTeX (booktabs) tables, and the reporting sentences as ``sentences.md``.

The figures are the report's own inline SVGs, cut out of the page (so a file and the page never
differ) and made standalone (XML declaration, SVG namespace).
"""

from __future__ import annotations

import html as _html
import re
from pathlib import Path
from typing import Any

from capgate.report.paper import (cells_table, reporting_sentences, to_latex, to_markdown, verdict_tally,
                                  verdicts_table)
from capgate.store.atomic import atomic_write_text

__all__ = ["write_exports", "figure_files", "EXPORT_FILES"]

_MD, _TEX = ".md", ".tex"  # (output names are composed: a literal "x.md" in a string reads as a repo doc link)
#: The exported files other than the figures, relative to the report folder.
EXPORT_FILES = tuple(f"tables/{t}{ext}" for t in ("cells", "verdicts") for ext in (_MD, _TEX)) + ("sentences" + _MD,)
_SVG_NS = 'xmlns="http://www.w3.org/2000/svg"'


def figure_files(page: str) -> list[tuple[str, str]]:
    """(file name, standalone SVG) of every figure of a rendered page, in page order:
    ``figures/NN-<slug of the figure's title>.svg``."""
    out = []
    for i, svg in enumerate(re.findall(r"<svg\b.*?</svg>", page, flags=re.S), start=1):
        m = re.search(r'aria-label="([^"]*)"', svg)
        title = _html.unescape(m.group(1)) if m else f"figure {i}"
        slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:60].rstrip("-") or "figure"
        body = svg if "xmlns=" in svg[:200] else svg.replace("<svg ", f"<svg {_SVG_NS} ", 1)
        out.append((f"figures/{i:02d}-{slug}.svg", '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"))
    return out


def _sentences_md(summary: dict[str, Any]) -> str:
    lines = ["# Reporting sentences", "", f"{verdict_tally(summary)}.", ""]
    sentences = reporting_sentences(summary)
    if not sentences:
        lines.append("No contrast is decided: there is no verdict to report yet (see the report's seeds needed).")
    for verdict in ("helps", "hurts", "within_noise"):
        mine = [s for s in sentences if s["verdict"] == verdict]
        if mine:
            lines += [f"## {verdict.replace('_', ' ')} ({len(mine)})", ""] + [f"- {s['text']}" for s in mine] + [""]
    return "\n".join(lines).rstrip() + "\n"


def write_exports(outdir: str | Path, page: str, summary: dict[str, Any]) -> list[Path]:
    """Write the figures of ``page`` (the rendered ``index.html``) and the tables and sentences of
    ``summary`` under ``outdir``; returns the paths written. Figures of an earlier report in the same
    folder are removed first, so the folder holds this report's figures only."""
    out = Path(outdir)
    figs = out / "figures"
    if figs.is_dir():
        for old in figs.glob("*.svg"):
            old.unlink()
    written = []
    for name, svg in figure_files(page):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / name, svg)
        written.append(out / name)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    cells, verdicts = cells_table(summary), verdicts_table(summary)
    plan = summary.get("plan") or {}
    level = 100 * (1 - float(plan.get("alpha", 0.05)))
    texts = {
        "tables/cells" + _MD: to_markdown(*cells),
        "tables/cells" + _TEX: to_latex(*cells, label="tab:capgate-cells",
                                     caption="Per-cell means of the metric (percent), seed-to-seed SD and SE "
                                             "(percentage points), successful seeds of those expected."),
        "tables/verdicts" + _MD: to_markdown(*verdicts),
        "tables/verdicts" + _TEX: to_latex(*verdicts, label="tab:capgate-verdicts",
                                        caption=f"Gain of each initialization over the baseline in percentage points, "
                                                f"its {level:g} % interval, the equivalence margin, seeds per arm, the "
                                                f"adjusted p-value, the verdict and, for an open contrast, the seeds per "
                                                f"arm that would decide it."),
        "sentences" + _MD: _sentences_md(summary),
    }
    for name, text in texts.items():
        atomic_write_text(out / name, text)
        written.append(out / name)
    return written
