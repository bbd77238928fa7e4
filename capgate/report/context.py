"""Everything the report template shows, assembled from an Analysis and its summary dict.

:func:`build_context` is the one place that decides what goes into ``index.html``: figures (SVG
strings), tables (lists of already formatted strings) and sentences. It never refits: every
number comes from ``Analysis`` or ``summary.json`` as the analysis wrote them.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from markupsafe import Markup

from capgate.analysis.result import Analysis
from capgate.analysis.verdicts import VERDICT_MEANINGS, VERDICT_WORDS, VERDICTS, verdict_css
from capgate.report.compare import pareto_groups, ranking_groups
from capgate.report.fig_gains import forest_svg, gains_vs_capacity_svg
from capgate.report.fig_gates import STATUS_WORDS, gates_svg
from capgate.report.fig_metric import metric_figures
from capgate.report.gates import cross_task_gates, gate_frame
from capgate.report.headline import gate_matrix, headline_sentences, map_legend, verdict_counts, verdict_maps
from capgate.report.labels import pair_label, shift_order
from capgate.report.paper import reporting_sentences, verdict_tally
from capgate.report.pretraining import flag_summary, pretraining_section, study_folder
from capgate.report.methods import methods_facts, methods_paragraphs, model_cards, provenance_rows
from capgate.report.units import fmt_metric, fmt_params, fmt_pp, metric_label

__all__ = ["build_context"]


def _records(df: pd.DataFrame | None) -> list[dict[str, Any]]:
    if df is None or not isinstance(df, pd.DataFrame) or df.empty:
        return []
    return df.astype(object).where(pd.notna(df), None).to_dict("records")


def _gain_figures(gains: pd.DataFrame) -> list[dict[str, Any]]:
    figs = []
    if gains is None or gains.empty:
        return figs
    for (task, family, init), sub in gains.groupby(["task", "family", "init"], sort=True):
        metric = metric_label(str(sub["metric"].iloc[0])) if "metric" in sub else "metric"
        base = str(sub["baseline"].iloc[0]) if "baseline" in sub else "baseline"
        title = f"{task}, {family}: gain of {init} over {base} vs capacity"
        margin = sub["margin"].dropna()
        mtxt = (f"±{fmt_pp(margin.iloc[0], sign=False)}" if len(margin) and margin.nunique() == 1
                else "±margin per cell")
        figs.append({
            "svg": Markup(gains_vs_capacity_svg(sub, title=title)),
            "title": title,
            "heading": f"{task.capitalize()} · {family} — {init} vs {base}",
            "caption": f"Gain in {metric} (percentage points, pp) of {init} over {base} for each {family} backbone "
                       f"by parameter count (log scale), one panel per shift, one line per train → eval pair (one colour "
                       f"per eval set, one marker shape per training set; no line joins two eval sets); bars are "
                       f"confidence intervals, the shaded band is the equivalence margin ({mtxt}) and the dashed "
                       f"lines the pooled run-to-run SD. Filled markers: significant verdict (helps / hurts).",
        })
    return figs


def _forest(gains: pd.DataFrame) -> dict[str, Any] | None:
    if gains is None or gains.empty:
        return None
    df = gains.assign(_s=[shift_order(s) for s in gains["shift"]], _p=-gains["params"].astype(float))
    df = df.sort_values(["study", "task", "family", "init", "_s", "train_set", "eval_set", "_p"]).drop(columns=["_s", "_p"])
    title = "Forest plot of every contrast against the baseline"
    return {"svg": Markup(forest_svg(df, title=title)), "title": title,
            "caption": f"All {len(df)} contrasts: gain (square, coloured by verdict) and its confidence interval in "
                       f"percentage points; the grey box on each row is that row's ±margin. Rows grouped under a heading "
                       f"per task, family and initialization, largest backbone first; each row names its rung, "
                       f"parameter count and train → eval pair."}


def _cross_task(summary: dict[str, Any], gates: pd.DataFrame) -> dict[str, Any] | None:
    """The cross-task comparison plus a figure of both tasks' gates, paired rows adjacent."""
    ct = cross_task_gates(summary)
    if ct is None or not ct["rows"]:
        return ct
    pairs = {(r["family"], r["init"]) for r in ct["rows"]}
    sub = gates[[(f, i) in pairs for f, i in zip(gates["family"], gates["init"])]]
    sub = sub.assign(_c=[s != "in_domain" for s in sub["shift"]], _t=[t != ct["ref"] for t in sub["task"]])
    sub = sub.sort_values(["family", "init", "_c", "_t", "shift"]).drop(columns=["_c", "_t"])
    title = f"Capacity gates of {ct['ref']} and {', '.join(ct['others'])} side by side"
    ct["svg"] = Markup(gates_svg(sub, title=title))
    ct["caption"] = ("Each row's grey bar is that task's tested capacity range (parameters, log scale); markers are "
                     "gates with their intervals, coloured by task; rows of one family and initialization are adjacent, "
                     "in-domain first, then the shifted evaluations.")
    return ct


def _completeness(summary: dict[str, Any]) -> dict[str, Any]:
    rows = []
    for c in summary.get("cells", []):
        n_ok, n_f, n_d = (int(c.get(k) or 0) for k in ("n_ok", "n_failed", "n_diverged"))
        n_exp = int(c.get("n_expected") or 0)
        missing = max(0, n_exp - n_ok - n_f - n_d)
        rows.append({"task": c["task"], "backbone": c["backbone"], "pair": pair_label(c["train_set"], c["eval_set"]),
                     "init": c["init"], "n_expected": n_exp, "n_ok": n_ok, "n_failed": n_f, "n_diverged": n_d,
                     "n_missing": missing, "complete": bool(c.get("complete")),
                     "mean": fmt_metric(c.get("mean")), "sd": fmt_pp(c.get("sd"), sign=False), "key": c["key"]})
    totals = {k: sum(r[k] for r in rows) for k in ("n_expected", "n_ok", "n_failed", "n_diverged", "n_missing")}
    totals["cells"] = len(rows)
    totals["incomplete"] = sum(not r["complete"] for r in rows)
    problems = [r for r in rows if not r["complete"] or r["n_failed"] or r["n_diverged"] or r["n_missing"]]
    outliers = [{"key": o["key"], "run_id": o["run_id"], "seed": o["seed"], "value": fmt_metric(o.get("value")),
                 "siblings": fmt_metric(o.get("siblings_median")), "drop": fmt_pp(o.get("drop"))}
                for o in _largest_drops(summary.get("outlier_runs", []), MAX_LISTED_OUTLIERS)]
    return {"rows": rows, "problems": problems, "totals": totals, "outliers": outliers,
            "outliers_total": len(summary.get("outlier_runs", []))}


#: The HTML lists at most this many outlier runs (the largest drops); summary.json keeps them all.
MAX_LISTED_OUTLIERS = 200


def _largest_drops(runs: list[dict[str, Any]], cap: int) -> list[dict[str, Any]]:
    """``runs`` unchanged when there are at most ``cap``; else the ``cap`` largest drops, in their order."""
    if len(runs) <= cap:
        return list(runs)
    keep = set(sorted(range(len(runs)), key=lambda i: (runs[i].get("drop") or 0.0, i))[:cap])
    return [r for i, r in enumerate(runs) if i in keep]


def build_context(analysis: Analysis, summary: dict[str, Any], *, inputs: list[dict[str, Any]] | None = None,
                  environment: dict[str, str] | None = None, title: str | None = None) -> dict[str, Any]:
    """The template context of ``index.html`` for one analysis (one or several studies/tasks)."""
    gains = analysis.gains
    models = list(analysis.models or [])
    cards = model_cards(models)
    warnings = [str(w) for w in summary.get("warnings", [])]
    model_warnings = sum(len(c["warnings"]) for c in cards)
    gates = gate_frame(summary)
    studies = summary.get("studies", [])
    comp = _completeness(summary)
    expectations = summary.get("expectations", [])
    folder = study_folder(inputs or [])
    flagged = flag_summary(summary, folder)
    return {
        "title": title or f"capgate report — {', '.join(studies) or 'study'}",
        "studies": studies,
        "tasks": summary.get("tasks", []),
        "metrics": [(t, metric_label(m)) for t, m in sorted(summary.get("metric", {}).items())
                    if t in summary.get("tasks", [])],
        "baseline": analysis.plan.baseline,
        "badges": {"warnings": len(warnings) + model_warnings, "incomplete": comp["totals"]["incomplete"],
                   "failed": comp["totals"]["n_failed"], "diverged": comp["totals"]["n_diverged"],
                   "expectations_failed": sum(not e.get("holds") for e in expectations),
                   "not_converged": sum(1 for m in models if m.get("converged") is False)},
        "headline": headline_sentences(summary),
        "tally": verdict_tally(summary),
        "sentences": reporting_sentences(flagged),
        "pretraining": pretraining_section(folder),
        "floor_flags": [{"key": v["key"], "text": v["floor_flag"]} for v in flagged["verdicts"] if v["floor_flag"]],
        "gate_matrix": gate_matrix(summary),
        "counts": verdict_counts(summary.get("verdicts", [])),
        "maps": verdict_maps(flagged),
        "map_legend": map_legend(summary),
        # the first figure of each task: metric vs parameters, seeds and cell intervals (fig_metric)
        "metric_figures": metric_figures(analysis.cells, analysis.model_frames, analysis.plan.metric,
                                         analysis.outlier_runs),
        "gain_figures": _gain_figures(gains),
        "forest": _forest(gains),
        "gates": {"rows": _records(gates), "status_words": STATUS_WORDS,
                  "svg": Markup(gates_svg(gates, title="Capacity gates")) if len(gates) else None},
        "cross_task": _cross_task(summary, gates),
        "models": cards,
        "warnings": warnings,
        "rankings": ranking_groups(summary, analysis.ranking_stability, baseline=analysis.plan.baseline),
        "pareto": pareto_groups(analysis.pareto, summary),
        "completeness": comp,
        "expectations": expectations,
        "methods": methods_paragraphs(analysis.methods or {}, models, analysis.plan, summary),
        "methods_facts": methods_facts(analysis.methods or {}, analysis.plan),
        "provenance": provenance_rows(analysis.provenance or {}, inputs or [], environment or {}),
        "fmt_params": fmt_params,
        "verdict_css": Markup(verdict_css()),
        "verdict_legend": [(v, VERDICT_WORDS[v], VERDICT_MEANINGS[v]) for v in VERDICTS],
    }
