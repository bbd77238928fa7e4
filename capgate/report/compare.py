"""How backbones compare, for the report: ranking stability and Pareto fronts, grouped per
(task, eval set). Arranges what the analysis computed; never recomputes it.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from markupsafe import Markup

from capgate.errors import CapgateError
from capgate.report.fig_tradeoffs import COST_LABELS, pareto_svg, ranking_svg
from capgate.report.methods import plain
from capgate.report.units import fmt_float, fmt_p, metric_label

__all__ = ["ranking_groups", "pareto_groups"]

_COST_ORDER = ("params", "macs", "latency_ms", "size_bytes")
#: The columns :func:`capgate.analysis.pareto.pareto_table` writes, and the pair table's of
#: :func:`capgate.analysis.ranking.ranking_stability` (shown in this order).
PARETO_COLUMNS = ("task", "eval_set", "init", "axis", "backbone", "cost", "metric", "on_front")
PAIR_COLUMNS = ("init", "upper", "lower", "gap", "p_keep")
_PAIR_HEADERS = {"upper": "ranked higher", "lower": "ranked lower", "gap": "gap (pp)",
                 "p_keep": "P(order holds)"}


def _require(df: pd.DataFrame, columns: tuple[str, ...], producer: str) -> None:
    """A table the analysis wrote lacks none of ``columns``: a mismatch is a bug, never a silently
    missing section."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise CapgateError(f"the {producer} table has no column(s) {missing} (it has {list(df.columns)}); the report "
                           f"reads what {producer} writes: report this as a capgate bug")


def _records(df: Any) -> list[dict[str, Any]]:
    if not isinstance(df, pd.DataFrame) or df.empty:
        return []
    return df.astype(object).where(pd.notna(df), None).to_dict("records")


def _pair_cell(col: str, v: Any) -> str:
    if col == "gap" and isinstance(v, (int, float)):
        return f"{100 * float(v):.2f} pp"
    if col.startswith("p") and isinstance(v, (int, float)) and not isinstance(v, bool):
        return fmt_p(v) if col != "p_keep" else f"{float(v):.2f}"
    return fmt_float(v, 3) if isinstance(v, float) else plain(v)


def ranking_groups(summary: dict[str, Any], stability: dict[str, pd.DataFrame] | None, *,
                   baseline: str = "scratch") -> list[dict[str, Any]]:
    """One entry per (task, eval_set): the bump chart (baseline init first), Kendall's tau between
    each pair of inits, and the adjacent-pair bootstrap table when the analysis computed one."""
    out = []
    ranks = summary.get("rankings", [])
    taus = summary.get("ranking_stability", [])
    pairs = (stability or {}).get("pairs")
    if isinstance(pairs, pd.DataFrame) and not pairs.empty:
        _require(pairs, ("task", "eval_set", *PAIR_COLUMNS), "capgate.analysis.ranking.ranking_stability")
    pair_rows = _records(pairs)
    metric = summary.get("metric", {})
    for task, ev in sorted({(r["task"], r["eval_set"]) for r in ranks}):
        sub = sorted((r for r in ranks if r["task"] == task and r["eval_set"] == ev),
                     key=lambda r: (r["init"] != baseline, r["init"]))
        title = f"{task}, evaluated on {ev}: backbone ranking under each initialization"
        prs = [p for p in pair_rows if p.get("task") == task and p.get("eval_set") == ev]
        pcols = list(PAIR_COLUMNS) if prs else []
        out.append({
            "task": task, "eval_set": ev, "title": title, "heading": f"{task.capitalize()} · evaluated on {ev}",
            "svg": Markup(ranking_svg(sub, title=title)),
            "caption": f"Backbones ranked by mean {metric_label(metric.get(task, 'metric'))} (best on top) under each "
                       f"initialization; crossing lines are order flips between initializations.",
            "taus": [{"a": t["init_a"], "b": t["init_b"],
                      "tau": fmt_float(t.get("kendall_tau"), 3) + (
                          f" (same-init noise reference: median {fmt_float(t.get('tau_ref_median'), 2)}, "
                          f"{'below' if t.get('flips') else 'not below'} its low quantile "
                          f"{fmt_float(t.get('tau_ref_low'), 2)}: "
                          f"{'rankings flip with init' if t.get('flips') else 'no flip beyond noise'})"
                          if t.get("tau_ref_median") is not None else "")}
                     for t in taus if t.get("task") == task and t.get("eval_set") == ev],
            "pair_cols": [_PAIR_HEADERS.get(c, c) for c in pcols],
            "pair_rows": [[_pair_cell(c, p[c]) for c in pcols] for p in prs],
        })
    return out


def pareto_groups(pareto: pd.DataFrame | None, summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per (task, eval_set) holding one Pareto figure per cost axis (params, MACs, latency)."""
    if not isinstance(pareto, pd.DataFrame) or pareto.empty:
        return []
    df = pareto
    _require(df, PARETO_COLUMNS, "capgate.analysis.pareto.pareto_table")
    axis, mcol = "axis", "metric"
    keys = ["task", "eval_set"]
    metric_names = summary.get("metric", {})
    groups: dict[tuple, dict[str, Any]] = {}
    for key, sub in df.groupby(keys, sort=True):
        named = dict(zip(keys, key))
        task = named["task"]
        metric = metric_label(metric_names.get(task, "metric"))
        where = " · ".join(f"{'evaluated on ' if k == 'eval_set' else ''}{named[k]}" for k in keys)
        figs = []
        costs = sorted(sub[axis].unique(), key=lambda a: (_COST_ORDER.index(a) if a in _COST_ORDER else 99, a))
        for cost in costs:
            part = sub[sub[axis] == cost]
            pts = pd.DataFrame({"init": part["init"], "backbone": part["backbone"], "cost": part["cost"],
                                "metric": part[mcol], "on_front": part["on_front"]})
            label = COST_LABELS.get(cost, cost)
            title = f"Pareto front: {metric} vs {label}" + (f" ({where})" if where else "")
            figs.append({"title": title, "svg": Markup(pareto_svg(pts, title=title, cost=cost, metric=metric, width=370)),
                         "caption": f"{metric} (%) against {label}, log scale."})
        groups[key] = {"heading": where[:1].upper() + where[1:], "figures": figs,
                       "metric": metric}
    return list(groups.values())
