"""The report's lightweight-CNN benchmark section: one table per dataset and its ranking answer.

Shown when the results hold classification runs of standard models (family ``standard``): per
dataset (eval set; with a study folder, its class count and chance level), model x init with top-1,
top-5, macro-F1 (seed mean and t interval), parameters, FP32 storage, MACs, latency, rank under its
init, the gain and verdict against the baseline and the Pareto fronts; then, per pair of inits, whether the ranking changes beyond seed noise. The numbers
come from :mod:`capgate.analysis.benchmark`; this module only formats them.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from capgate.analysis.benchmark import benchmark_table, ranking_changes
from capgate.report.units import MISSING, fmt_params, is_missing, metric_label

__all__ = ["benchmark_section", "MACS_NOTE"]

#: What the MACs column counts, in the words of ``capgate.models.MACS_CONVENTION`` (kept torch-free here).
MACS_NOTE = ("MACs: multiply-accumulates of one forward pass of one image at the run's resolution; counted: "
             "convolutions and linear layers; not counted: BatchNorm, activations, pooling, elementwise ops.")
_METRICS = ("top1", "top5", "macro_f1")


def _si(v: Any, unit: str) -> str:
    if is_missing(v):
        return MISSING
    v = float(v)
    for div, p in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:.2f} {p}{unit}"
    return f"{v:.0f} {unit}"


def _metric(row: pd.Series, m: str) -> str:
    if is_missing(row.get(m)):
        return MISSING
    lo, hi = row.get(f"{m}_low"), row.get(f"{m}_high")
    ci = "" if is_missing(lo) else f" [{100 * lo:.1f}, {100 * hi:.1f}]"
    return f"{100 * row[m]:.1f}{ci}"


def _verdict(row: pd.Series) -> str:
    if not isinstance(row.get("verdict"), str):  # None/NaN: the baseline init itself
        return "baseline"
    return f"{row['verdict']} ({100 * row['gain']:+.1f} pp)"


def _front(row: pd.Series) -> str:
    axes = [a.removeprefix("front_") for a in row.index if a.startswith("front_") and pd.notna(row[a]) and bool(row[a])]
    return ", ".join(axes) or "no"


def _span(lo: int, hi: int) -> str:
    return str(lo) if lo == hi else f"{lo}–{hi}"


def _sentence(r: pd.Series) -> str:
    if is_missing(r["kendall_tau"]):
        return f"{r['init_a']} vs {r['init_b']}: fewer than three models in common, no ranking comparison."
    change = "changes beyond seed noise" if r["flips"] else "does not change beyond seed noise"
    n_pairs = int(r["n_backbones"]) * (int(r["n_backbones"]) - 1) // 2
    return (f"{r['init_a']} vs {r['init_b']}: Kendall's τ = {r['kendall_tau']:.2f} (same-init noise reference: median "
            f"{r['tau_ref_median']:.2f}, lower quantile {r['tau_ref_low']:.2f}): the ranking {change}. Pairwise, "
            f"{int(r['n_reversed'])} of {n_pairs} model pairs reverse, {int(r['n_reversed_beyond_noise'])} of them with "
            "both orders held beyond seed noise.")


def _classes(train_sets: Any, counts: dict[str, int]) -> str:
    """``"100 classes, chance 1.0 % top-1"`` when the dataset's train sets have one known class count, else ``""``."""
    known = {counts.get(str(t)) for t in train_sets}
    if len(known) != 1 or None in known:
        return ""
    (n,) = known
    return f"{n} classes, chance {100 / n:.1f} % top-1"


def benchmark_section(table: pd.DataFrame, analysis: Any,
                      class_counts: dict[str, int] | None = None) -> dict[str, Any] | None:
    """The template context of the benchmark section, or None when ``table`` has no standard models.
    ``class_counts`` (train set -> number of classes, from the study folder's run specs) puts each dataset's
    class count and chance level in its table's caption; a bare table has none."""
    std = table[(table["family"] == "standard") & (table["task"] == "classification")]
    if std.empty:
        return None
    t = benchmark_table(std, analysis)
    if t.empty:
        return None
    changes = ranking_changes(analysis)
    cols = ["model", "init", "rank", *(f"{metric_label(m)} % [95% CI]" for m in _METRICS if m in t.columns),
            "params", "FP32 storage", "MACs", "latency (ms)", f"vs {analysis.plan.baseline}",
            "on Pareto front"]
    datasets = []
    for ev, g in t.groupby("eval_set", sort=True):
        rows = [[r["backbone"], r["init"], "" if is_missing(r["rank"]) else int(r["rank"]),
                 *(_metric(r, m) for m in _METRICS if m in t.columns), fmt_params(r["params"]),
                 _si(r["size_bytes"], "B"), _si(r["macs"], ""),
                 MISSING if is_missing(r["latency_ms"]) else f"{r['latency_ms']:.2f}", _verdict(r), _front(r)]
                for _, r in g.iterrows()]
        sentences = [_sentence(r) for _, r in changes[changes["eval_set"] == ev].iterrows()]
        datasets.append({"heading": str(ev), "rows": rows, "sentences": sentences,
                         "classes": _classes(std.loc[std["eval_set"] == ev, "train_set"].unique(), class_counts or {}),
                         "n_seeds": _span(int(g["n_seeds"].min()), int(g["n_seeds"].max()))})
    return {"cols": cols, "datasets": datasets, "macs_note": MACS_NOTE}
