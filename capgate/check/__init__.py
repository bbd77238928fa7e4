"""Regression checks of a study's conclusions against a committed baseline: the rules
(:mod:`capgate.check.rules`), the readable diff and JUnit XML (:mod:`capgate.check.output`) and the
entry that loads inputs and runs them (:mod:`capgate.check.run`). Never imports torch or ray, and
``report`` never imports this package.
"""

from __future__ import annotations

from capgate.check.run import (FAMILY_ALPHA, SE_MODES, SUMMARY_SCHEMA, CheckResult, CheckRow, auto_z, check_studies,
                               compare, current_summary, format_table, gate_interval, param_ranges, pooled_sd,
                               read_summary, run_check, validate_summary, write_junit)

__all__ = ["CheckRow", "CheckResult", "compare", "write_junit", "run_check", "read_summary", "format_table",
           "validate_summary", "current_summary", "pooled_sd", "auto_z", "gate_interval", "param_ranges",
           "check_studies", "FAMILY_ALPHA", "SE_MODES", "SUMMARY_SCHEMA"]
