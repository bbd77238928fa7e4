"""Capacity gates for the report: the gate table with tested ranges, and the cross-task comparison
("does classification mirror detection's gating?"). Pure functions over ``summary.json``.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from capgate.analysis.summary import gate_interval, param_ranges
from capgate.report.fig_gates import STATUS_WORDS
from capgate.report.labels import shift_order
from capgate.report.units import fmt_params, is_missing

__all__ = ["gate_frame", "cross_task_gates"]


def gate_frame(summary: dict[str, Any]) -> pd.DataFrame:
    """The summary's gates plus each row's tested parameter range and readable interval, sorted."""
    ranges = param_ranges(summary)
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


def _mirror(a: dict[str, Any], b: dict[str, Any], ranges: dict[tuple[str, str], tuple[float, float]]) -> tuple[str, str]:
    """Does gate ``b`` mirror gate ``a``? -> (answer, why). Compared by where each gate may lie
    (the same intervals ``capgate check`` uses): overlapping means consistent with one gate."""
    sa, sb = a.get("status"), b.get("status")
    if "undetermined" in (sa, sb):
        return "undetermined", "at least one gate is undetermined"
    ia, ib = gate_interval(a, ranges), gate_interval(b, ranges)
    words = f"{STATUS_WORDS.get(sa, sa)} vs {STATUS_WORDS.get(sb, sb)}"
    if ia is None or ib is None:
        same = sa == sb
        return ("mirrors" if same else "differs"), (f"both: {STATUS_WORDS.get(sa, sa)}" if same else words)
    if ia[0] <= ib[1] and ib[0] <= ia[1]:
        if sa == sb:
            return "mirrors", f"both: {STATUS_WORDS.get(sa, sa)}" + (", gate intervals overlap" if sa == "gate" else "")
        return "mirrors", f"{words}, but the gate intervals overlap (consistent within noise)"
    return "differs", f"{words}; gate intervals disjoint" if sa != sb else "both gated, at clearly different capacities"


def _shift_class(shift: str) -> str:
    """Pairs compared across tasks: in-domain with in-domain, any distribution shift with any other."""
    return "in_domain" if shift == "in_domain" else "shifted"


def cross_task_gates(summary: dict[str, Any]) -> dict[str, Any] | None:
    """Side-by-side capacity gates of detection and classification per (family, init), pairing
    in-domain with in-domain and each shift (cross-dataset, cross-modality) with each shift
    (cross-domain), answering "does classification mirror detection's gating?"; None for one task."""
    gates = summary.get("gates", [])
    tasks = sorted({g["task"] for g in gates}, key=lambda t: (t != "detection", t))
    if len(tasks) < 2:
        return None
    ref, others = tasks[0], tasks[1:]
    ranges = param_ranges(summary)
    rows = []
    for family, init in sorted({(g["family"], g["init"]) for g in gates}):
        mine = sorted((g for g in gates if g["family"] == family and g["init"] == init),
                      key=lambda g: (shift_order(g["shift"]), g["shift"]))
        for a in [g for g in mine if g["task"] == ref]:
            for b in [g for g in mine if g["task"] in others and _shift_class(g["shift"]) == _shift_class(a["shift"])]:
                answer, why = _mirror(a, b, ranges)
                rows.append({"family": family, "init": init,
                             "a_task": a["task"], "a_shift": a["shift"], "a_text": _gate_cell(a),
                             "b_task": b["task"], "b_shift": b["shift"], "b_text": _gate_cell(b),
                             "answer": answer, "why": why})
    counts = {k: sum(r["answer"] == k for r in rows) for k in ("mirrors", "differs", "undetermined")}
    other = others[0] if len(others) == 1 else " / ".join(others)
    sentence = (f"Of {len(rows)} comparable (family, initialization, shift) pairs, {other} mirrors {ref}'s gating "
                f"in {counts['mirrors']}, differs in {counts['differs']}, and {counts['undetermined']} cannot be "
                "decided yet.") if rows else f"No (family, initialization) has gates in both {ref} and {other}."
    return {"ref": ref, "others": others, "rows": rows, "counts": counts, "sentence": sentence}


def _interval_words(g: dict[str, Any]) -> str:
    lo, hi = g.get("ci_low"), g.get("ci_high")
    if is_missing(lo) and is_missing(hi):
        return "—"
    return (f"{'below range' if is_missing(lo) else fmt_params(lo)} – "
            f"{'above range' if is_missing(hi) else fmt_params(hi)}")


def _gate_cell(g: dict[str, Any]) -> str:
    if g.get("status") == "gate":
        return (f"helps from {g.get('rung_from')} ({fmt_params(g.get('gate_params'))} params) upward; gate between "
                f"{g.get('rung_below')} and {g.get('rung_from')} (bootstrap range {_interval_words(g)})")
    return STATUS_WORDS.get(g.get("status"), str(g.get("status")))
