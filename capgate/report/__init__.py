"""The HTML report: figures (inline SVG), the template context and rendering.

Consumes :class:`capgate.analysis.result.Analysis` and its ``summary.json`` dict; never imports
torch or ray and never refits a model.
"""

from __future__ import annotations

from capgate.report.render import load_tables, render_html, render_report, report_tally, templates_dir

__all__ = ["render_report", "render_html", "load_tables", "templates_dir", "report_tally"]
