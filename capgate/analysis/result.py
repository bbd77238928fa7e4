"""What :func:`capgate.analysis.analyze` returns: the contract between analysis, report and check.

Every field is plain data (DataFrames, dicts of JSON-able values) so that the report renders it
and ``check`` compares it without refitting anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from capgate.analysis.plan import Plan
from capgate.analysis.verdicts import VERDICTS

__all__ = ["Analysis", "GAINS_COLUMNS", "VERDICTS", "EXPECTATION_STATUSES"]

#: Columns of ``gains.csv``: one row per cell x pretrained init vs the baseline.
#: ``sd_raw``/``sd_mod``: the contrast's own run-to-run SD (of the paired differences when paired, else
#: the root mean square of the two arms' SDs) and its stabilised (moderated) value on ``df`` degrees of freedom.
#: ``n_stages``: the init arm's pretraining replicates (``stage_seed``); with two or more the replicate is the
#: unit (``sd_raw``/``sd_mod``: of a replicate mean, ``df``: from the replicates), ``stage_share`` the share of a
#: seed's variance between pretraining runs and ``more_of`` what would decide it (``fine_tuning_seeds`` or
#: ``pretraining_replicates``); with fewer, ``conditional_on`` names the checkpoint the verdict is about
#: (its ``init_source``: stage id, or checkpoint file and sha256). :mod:`capgate.analysis.stages`.
GAINS_COLUMNS = (
    "study", "task", "family", "backbone", "params", "train_set", "eval_set", "shift",
    "init", "baseline", "metric",
    "mean_init", "mean_baseline", "gain", "se", "df", "ci_low", "ci_high",
    "pairing", "n_pairs", "n_dropped", "sd_raw", "sd_mod", "sd_pooled", "margin", "n_init", "n_baseline",
    "p_value", "p_adj", "p_tost", "p_tost_adj", "verdict", "seeds_needed", "seeds_needed_within",
    "seeds_needed_helps", "n_stages", "stage_share", "more_of", "conditional_on",
)
#: Statuses of a plan expectation: met by decided verdicts, contradicted, or left untested by
#: inconclusive cells (a warning in ``check``; ``--strict`` fails it).
EXPECTATION_STATUSES = ("holds", "fails", "untested")


@dataclass(frozen=True)
class Analysis:
    """The full result of analysing one results table under one plan.

    ``gains``: GAINS_COLUMNS, one row per contrast cell.
    ``cells``: per (task, family, backbone, train_set, eval_set, shift, init) cell: mean, se, sd,
        n_ok, n_failed, n_diverged, n_expected, complete (bool).
    ``models``: one dict per fitted mixed model, exactly as written to ``model.json``.
    ``model_frames``: model name -> the frame it was fitted to (``model_frame.csv``).
    ``gates``: one row per (task, family, shift, init): gate_params, ci_low, ci_high, status, text.
    ``rankings``: one row per (task, eval_set, init, backbone): mean, rank; plus tau/pair tables
        in ``ranking_stability`` (dict of DataFrames keyed "tau" and "pairs").
    ``pareto``: per init and cost axis (params, macs, latency_ms): backbone, cost, metric, on_front.
    ``completeness``: per cell, counts of ok/failed/diverged/missing seeds.
    ``plan``: the resolved analysis plan.
    ``methods``: facts for the methods text: formula, interval method, correction, margin rule...
    ``provenance``: versions, git shas, spec hashes, data fingerprints seen in the table.
    ``expectations``: one row per plan expectation: text, status, holds (bool), detail.
    ``outlier_runs``: runs far below their siblings (key, run_id, seed, value, siblings_median, drop).
    """

    gains: pd.DataFrame
    cells: pd.DataFrame
    models: list[dict[str, Any]]
    model_frames: dict[str, pd.DataFrame]
    gates: pd.DataFrame
    rankings: pd.DataFrame
    ranking_stability: dict[str, pd.DataFrame]
    pareto: pd.DataFrame
    completeness: pd.DataFrame
    plan: Plan
    methods: dict[str, Any]
    provenance: dict[str, Any]
    expectations: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    outlier_runs: pd.DataFrame = field(default_factory=pd.DataFrame)
