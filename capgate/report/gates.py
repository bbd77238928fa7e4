"""Capacity gates for the report: the gate table with tested ranges, and the cross-task comparison
("does classification mirror detection's gating?"). Pure functions over ``summary.json``.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from capgate.report.fig_gates import STATUS_WORDS
from capgate.report.labels import shift_order
from capgate.report.units import fmt_params, is_missing

__all__ = ["gate_ranges", "gate_frame", "cross_task_gates"]


def gate_ranges(cells: list[dict[str, Any]]) -> dict[tuple[str, str], tuple[float, float]]:
    """Tested parameter range (min, max) per (task, family), from the summary's cells."""
    out: dict[tuple[str, str], tuple[float, float]] = {}
    for c in cells:
        p = c.get("params")
        if is_missing(p):
            continue
        k = (c["task"], c["family"])
        lo, hi = out.get(k, (math.inf, -math.inf))
        out[k] = (min(lo, float(p)), max(hi, float(p)))
    return out


def gate_frame(summary: dict[str, Any]) -> pd.DataFrame:
    """The summary's gates plus each row's tested parameter range and readable interval, sorted."""
    ranges = gate_ranges(summary.get("cells", []))
    rows = []
    for g in summary.get("gates", []):
        lo, hi = ranges.get((g["task"], g["family"]), (None, None))
        rows.append({**g, "range_lo": lo, "range_hi": hi, "text": g.get("text") or _gate_cell(g),
                     "interval": _interval_words(g)})
    cols = ["task", "family", "shift", "init", "status", "gate_params", "ci_low", "ci_high", "range_lo", "range_hi"]
    df = pd.DataFrame(rows, columns=list(dict.fromkeys(cols + [k for r in rows for k in r])))
    if len(df):
        df = df.assign(_s=[shift_order(s) for s in df["shift"]]).sort_values(["family", "init", "task", "_s"])
        df = df.drop(columns="_s")
    return df


def _mirror(a: dict[str, Any], b: dict[str, Any]) -> tuple[str, str]:
    """Does gate ``b`` mirror gate ``a``? -> (answer, why)."""
    sa, sb = a.get("status"), b.get("status")
    if "undetermined" in (sa, sb):
        return "undetermined", "at least one gate is undetermined"
    if sa != sb:
        return "differs", f"{STATUS_WORDS.get(sa, sa)} vs {STATUS_WORDS.get(sb, sb)}"
    if sa != "gate":
        return "mirrors", f"both: {STATUS_WORDS.get(sa, sa)}"
    lo_a, hi_a, lo_b, hi_b = (a.get("ci_low"), a.get("ci_high"), b.get("ci_low"), b.get("ci_high"))
    if any(is_missing(v) for v in (lo_a, hi_a, lo_b, hi_b)):
        return "mirrors", "both gated (intervals not available to compare locations)"
    if float(lo_a) <= float(hi_b) and float(lo_b) <= float(hi_a):
        return "mirrors", "both gated, gate intervals overlap"
    return "differs", "both gated, at clearly different capacities (intervals disjoint)"


def cross_task_gates(summary: dict[str, Any]) -> dict[str, Any] | None:
    """Side-by-side capacity gates of detection and classification per (family, init), with a
    per-pair answer to "does classification mirror detection's gating?"; None for one task."""
    gates = summary.get("gates", [])
    tasks = sorted({g["task"] for g in gates}, key=lambda t: (t != "detection", t))
    if len(tasks) < 2:
        return None
    ref, others = tasks[0], tasks[1:]
    rows = []
    for family, init in sorted({(g["family"], g["init"]) for g in gates}):
        mine = [g for g in gates if g["family"] == family and g["init"] == init]
        for a in [g for g in mine if g["task"] == ref]:
            for b in [g for g in mine if g["task"] in others]:
                answer, why = _mirror(a, b)
                rows.append({"family": family, "init": init,
                             "a_task": a["task"], "a_shift": a["shift"], "a_text": _gate_cell(a),
                             "b_task": b["task"], "b_shift": b["shift"], "b_text": _gate_cell(b),
                             "answer": answer, "why": why})
    counts = {k: sum(r["answer"] == k for r in rows) for k in ("mirrors", "differs", "undetermined")}
    sentence = (f"Of {len(rows)} comparable (family, initialization, shift) pairs, {others[0] if len(others) == 1 else ' / '.join(others)} "
                f"mirrors {ref}'s gating in {counts['mirrors']}, differs in {counts['differs']}, and "
                f"{counts['undetermined']} cannot be decided yet.") if rows else (
                f"No (family, initialization) has a gate in both {ref} and {', '.join(others)}.")
    return {"ref": ref, "others": others, "rows": rows, "counts": counts, "sentence": sentence}


def _interval_words(g: dict[str, Any]) -> str:
    lo, hi = g.get("ci_low"), g.get("ci_high")
    if is_missing(lo) and is_missing(hi):
        return "—"
    return (f"{'below range' if is_missing(lo) else fmt_params(lo)} – "
            f"{'above range' if is_missing(hi) else fmt_params(hi)}")


def _gate_cell(g: dict[str, Any]) -> str:
    if g.get("status") == "gate":
        return f"gate at {fmt_params(g.get('gate_params'))} params (interval {_interval_words(g)})"
    return STATUS_WORDS.get(g.get("status"), str(g.get("status")))
