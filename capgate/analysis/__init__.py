"""capgate's analysis layer: pure pandas/statsmodels functions from a results table to verdicts.

Never imports torch or ray. Entry points: :func:`load_results` (read + validate), :func:`analyze`
(everything, under a plan), :func:`write_outputs` (model.json, model_frame.csv, gains.csv,
summary.json), :func:`load_plan`, and :func:`simulate_results` for tables with a known truth.
"""

from __future__ import annotations

from capgate.analysis.analyze import analyze, evaluate_expectations
from capgate.analysis.load import load_results, validate
from capgate.analysis.outputs import write_outputs
from capgate.analysis.summary import SUMMARY_SCHEMA, build_summary, read_summary, validate_summary
from capgate.analysis.plan import DEFAULT_PLAN, Plan, as_plan, load_plan, resolve_plan
from capgate.analysis.result import GAINS_COLUMNS, VERDICTS, Analysis
from capgate.analysis.simulate import Truth, demo_truth, simulate_results, true_gains

__all__ = [
    "Analysis", "GAINS_COLUMNS", "VERDICTS", "DEFAULT_PLAN", "Plan", "as_plan",
    "analyze", "evaluate_expectations", "load_results", "validate", "load_plan", "resolve_plan",
    "build_summary", "read_summary", "validate_summary", "SUMMARY_SCHEMA", "write_outputs", "simulate_results", "Truth", "demo_truth", "true_gains",
]
