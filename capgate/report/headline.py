"""The report's headline: verdict counts, gate sentences and the verdict map (capacity x shift).

Pure functions over the ``summary.json`` dict: nothing here refits or recomputes a statistic,
it only arranges what the analysis decided.
"""

from __future__ import annotations

from typing import Any

from capgate.report.labels import pair_label, rung_label, shift_order
from capgate.analysis.verdicts import VERDICT_WORDS, VERDICTS
from capgate.report.units import fmt_interval_pp, fmt_params, fmt_pp, metric_label

__all__ = ["verdict_counts", "verdict_maps", "headline_sentences", "gate_matrix", "seeds_words", "map_legend", "gate_caveat"]


def verdict_counts(verdicts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (task, init): number of contrasts of each verdict, in a fixed verdict order."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for v in verdicts:
        k = (v["task"], v["init"])
        row = out.setdefault(k, {"task": k[0], "init": k[1], "baseline": v.get("baseline"), "total": 0,
                                 **{name: 0 for name in VERDICTS}})
        row[v["verdict"]] = row.get(v["verdict"], 0) + 1
        row["total"] += 1
    return [out[k] for k in sorted(out)]


def seeds_words(n: int | None, plan: dict[str, Any], prose: bool = False) -> str:
    """How a contrast's seeds-needed estimate reads: ``~7 seeds``, or ``≥100 seeds`` at the plan's
    cap (the power analysis stops there: that many or more); in a sentence (``prose``) ``about 7
    seeds`` and ``100 or more seeds``; '' when there is none."""
    if not n:
        return ""
    cap = plan.get("max_seeds")
    at_cap = bool(cap) and int(n) >= int(cap)
    if prose:
        return f"{int(n)} or more seeds" if at_cap else f"about {int(n)} seeds"
    return f"≥{int(n)} seeds" if at_cap else f"~{int(n)} seeds"


def _beyond_design(n: int | None, plan: dict[str, Any]) -> str:
    """The tooltip's warning when the seeds a contrast needs exceed the sequential design's last look."""
    seq_max = (plan.get("sequential") or {}).get("max_seeds")
    if n and seq_max and int(n) > int(seq_max):
        return (f" — more than this plan's sequential design allows ({int(seq_max)} per arm): deciding it needs "
                "a new, pre-registered plan")
    return ""


def map_legend(summary: dict[str, Any]) -> str:
    """What a verdict-map cell's numbers are, in words (printed under the colour legend)."""
    plan = summary.get("plan") or {}
    level = 100 * (1 - float(plan.get("alpha", 0.05)))
    n = len(summary.get("verdicts", []))
    seq = "repeated (group-sequential) " if plan.get("sequential") else ""
    cap = plan.get("max_seeds")
    text = (f"Each cell: the verdict, the gain, its {level:g} % {seq}interval for that cell alone, and for an "
            f"inconclusive cell about how many seeds per arm would decide it")
    text += f" (≥{int(cap)}: the plan's cap, that many or more)." if cap else "."
    correction = plan.get("correction", "holm")
    if correction == "none":
        return text + " Verdicts use the same unadjusted tests."
    name = {"holm": "Holm", "bh": "Benjamini-Hochberg"}.get(correction, correction)
    return text + (f" The interval is not adjusted for the {n} contrasts: verdicts use {name}-adjusted p-values, "
                   "so a cell's interval can exclude 0 while its verdict stays inconclusive.")


def gate_caveat(g: dict[str, Any]) -> str:
    """Why a gate claims less than it reads, in words ('' when nothing to say): a gate or a 'helps at
    every size' that rests on a single rung that helps (``only the largest rung decided``), or whose
    bootstrap range spans the whole tested capacity range."""
    if g.get("status") not in ("gate", "helps_everywhere"):
        return ""
    params = [float(p) for p in (g.get("rung_params") or [])]
    verdicts = list(g.get("rung_verdicts") or [])
    if not params or len(params) != len(verdicts):
        return ""
    start = float(g.get("gate_params") or min(params)) if g.get("status") == "gate" else min(params)
    helping = [p for p, v in zip(params, verdicts) if p >= start and v == "helps"]
    notes = []
    if len(helping) == 1 and len(params) > 1:
        notes.append("only the largest rung decided" if helping[0] == max(params) else "only one rung decided")
    lo, hi = g.get("ci_low"), g.get("ci_high")
    if g.get("status") == "gate" and len(params) > 1 and (lo is None or float(lo) <= min(params)) and (
            hi is None or float(hi) >= max(params)):
        notes.append("its bootstrap range spans the whole tested range")
    return "; ".join(notes)


def _gate_words(g: dict[str, Any], words: str) -> str:
    caveat = gate_caveat(g)
    return f"{words} ({caveat})" if caveat else words


def _gate_clause(gates: list[dict[str, Any]]) -> str:
    """What the capacity gates of one (task, init) say, in the analysis' own statuses: a gate names
    its rung, ``helps_everywhere`` says so, anything else is never worded as a benefit."""
    if not gates:
        return "no capacity gate estimated"
    gated = [g for g in gates if g.get("status") == "gate"]
    every = [g for g in gates if g.get("status") == "helps_everywhere"]
    parts = [_gate_words(g, f"{g['family']} {g['shift']}: helps from {g.get('rung_from')} "
                            f"({fmt_params(g.get('gate_params'))} params) upward")
             for g in sorted(gated, key=lambda g: (g["family"], shift_order(g["shift"])))]
    parts += [_gate_words(g, f"{g['family']} {g['shift']}: helps at every tested size")
              for g in sorted(every, key=lambda g: (g["family"], shift_order(g["shift"])))]
    none = sum(g.get("status") == "no_gate_in_range" for g in gates)
    undetermined = len(gates) - len(gated) - len(every) - none
    rest = ([f"no gate in {none}"] if none else []) + ([f"undetermined in {undetermined}"] if undetermined else [])
    if not parts:
        if not none:
            return f"capacity gate undetermined in {_rows(undetermined)}"
        if undetermined:
            return f"no capacity gate in {none} of the {_rows(len(gates))}, undetermined in {undetermined}"
        return f"no capacity gate in {'the' if len(gates) == 1 else 'any of the'} {_rows(len(gates))}"
    text = "capacity gate — " + "; ".join(parts)
    return text + (f" (of the other {_rows(none + undetermined)}: {', '.join(rest)})" if rest else "")


def _rows(n: int) -> str:
    return f"{n} family × shift row" + ("" if n == 1 else "s")


def _conditional_clause(verdicts: list[dict[str, Any]], task: str, init: str) -> str:
    """' Conditional on the checkpoint ...' when verdicts of (task, init) rest on one pretraining run."""
    names = sorted({str(v["conditional_on"]) for v in verdicts
                    if v["task"] == task and v["init"] == init and v.get("conditional_on")})
    if not names:
        return ""
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return (f" Conditional on the checkpoint{'s' if len(names) > 1 else ''} {shown} (one pretraining run each): "
            "what this checkpoint does, not what pretraining does.")


def _stage_tip(v: dict[str, Any]) -> str:
    """The verdict map tooltip's words on pretraining replicates or on the one checkpoint."""
    if v.get("conditional_on"):
        return f"; conditional on the checkpoint {v['conditional_on']}"
    if (v.get("n_stages") or 0) >= 2:
        share = v.get("stage_share")
        tip = f"; {int(v['n_stages'])} pretraining replicates"
        if share is not None:
            tip += (f": {100 * float(share):.0f}% of a seed's variance is between pretraining runs, "
                    f"{100 - 100 * float(share):.0f}% between fine-tuning seeds")
        else:  # one fine-tuning seed per replicate: nothing measures the noise within a replicate
            tip += (" of one fine-tuning seed each: how their variance splits between pretraining runs and "
                    "fine-tuning seeds is not identifiable (a second seed on a replicate would measure it)")
        if v.get("more_of") and v.get("verdict") == "inconclusive":
            tip += f"; more {str(v['more_of']).replace('_', ' ')} would decide it"
        return tip
    return ""


def headline_sentences(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One sentence per (task, init), written only from the analysis' verdicts and gates.

    Dicts ``{"text", "counts", "decided", "gates"}``. When no contrast is decided the sentence says
    so first (and how many seeds per arm would resolve the median contrast); otherwise it gives the
    decided counts, then the inconclusive ones; then the capacity-gate clause of that (task, init).
    A benefit is worded only where a verdict is ``helps`` or a gate says so.
    """
    metric = summary.get("metric", {})
    out = []
    if summary.get("n_ok_runs", 1) == 0:
        out.append({"text": "No successful run in the results: every cell is empty, nothing can be concluded "
                            "(see Data completeness for the failed and diverged runs).", "counts": {}, "decided": 0,
                    "gates": []})
    gates = summary.get("gates", [])
    verdicts = summary.get("verdicts", [])
    for row in verdict_counts(verdicts):
        m = metric_label(metric.get(row["task"], "metric"))
        head = f"{row['task'].capitalize()} ({m}): {row['init']} vs {row['baseline']}"
        decided = row["helps"] + row["within_noise"] + row["hurts"]
        n = row["total"]
        if decided == 0:
            need = sorted(int(v["seeds_needed"]) for v in verdicts if v["task"] == row["task"]
                          and v["init"] == row["init"] and v.get("seeds_needed"))
            text = f"{head} — no contrast decided: all {n} inconclusive"
            if need:
                median = seeds_words(need[len(need) // 2], summary.get("plan") or {}, prose=True)
                text += f" ({median} per arm would resolve the median one)"
        else:
            said = [f"helps in {row['helps']}" if row["helps"] else "",
                    f"is within noise in {row['within_noise']}" if row["within_noise"] else "",
                    f"hurts in {row['hurts']}" if row["hurts"] else ""]
            text = f"{head} — of {n} contrast{'s' if n != 1 else ''}, {decided} decided: " + ", ".join(p for p in said if p)
            if row["inconclusive"]:
                text += f"; {row['inconclusive']} inconclusive"
        mine = [g for g in gates if g["task"] == row["task"] and g["init"] == row["init"]]
        text += "; " + _gate_clause(mine) + "." + _conditional_clause(verdicts, row["task"], row["init"])
        out.append({"text": text, "counts": row, "decided": decided,
                    "gates": [g.get("status") for g in mine]})
    return out


def _gate_short(g: dict[str, Any]) -> tuple[str, str]:
    """(main words, interval words) of one gate for the compact headline matrix."""
    status = g.get("status")
    if status == "gate":
        lo, hi = g.get("ci_low"), g.get("ci_high")
        ci = (f"gate between {g.get('rung_below')} ({fmt_params(g.get('below_params'))}) and {g.get('rung_from')}; "
              f"bootstrap range {fmt_params(lo) if lo is not None else 'below range'} – "
              f"{fmt_params(hi) if hi is not None else 'above range'}")
        return _gate_words(g, f"helps from {g.get('rung_from')} ({fmt_params(g.get('gate_params'))} params) upward"), ci
    if status == "helps_everywhere":
        return _gate_words(g, "helps at every tested size"), ""
    if status == "no_gate_in_range":
        return "no rung range where every cell helps", ""
    return "undetermined", ""


def gate_matrix(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Compact capacity-gate matrix per task: rows (family, shift), columns inits, cells with the
    gate's status, short words and the analysis' full sentence as a tooltip."""
    gates = summary.get("gates", [])
    out = []
    for task in sorted({g["task"] for g in gates}):
        mine = [g for g in gates if g["task"] == task]
        inits = sorted({g["init"] for g in mine})
        keys = sorted({(g["family"], g["shift"]) for g in mine}, key=lambda k: (k[0], shift_order(k[1]), k[1]))
        by = {(g["family"], g["shift"], g["init"]): g for g in mine}
        rows = []
        for family, shift in keys:
            cells = []
            for init in inits:
                g = by.get((family, shift, init))
                if g is None:
                    cells.append(None)
                    continue
                main, ci = _gate_short(g)
                cells.append({"status": g.get("status"), "main": main, "ci": ci, "tip": g.get("text") or main})
            rows.append({"family": family, "shift": shift, "cells": cells})
        out.append({"task": task, "inits": inits, "rows": rows})
    return out


def verdict_maps(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Verdict maps for the headline: one per (task, init), each holding one table per family.

    A table's rows are backbones (largest first), its columns the train→eval pairs grouped by
    shift; each cell carries the verdict, its words, the gain and CI in pp, and a tooltip.
    """
    verdicts = summary.get("verdicts", [])
    metric = summary.get("metric", {})
    plan = summary.get("plan") or {}
    maps = []
    for task, init in sorted({(v["task"], v["init"]) for v in verdicts}):
        rows_ti = [v for v in verdicts if v["task"] == task and v["init"] == init]
        tables = []
        for family in sorted({v["family"] for v in rows_ti}):
            fam = [v for v in rows_ti if v["family"] == family]
            cols = sorted({(v["shift"], v["train_set"], v["eval_set"]) for v in fam},
                          key=lambda c: (shift_order(c[0]), c[0], c[1], c[2]))
            shifts: list[dict[str, Any]] = []
            for s, _, _ in cols:
                if shifts and shifts[-1]["shift"] == s:
                    shifts[-1]["span"] += 1
                else:
                    shifts.append({"shift": s, "span": 1})
            backbones = sorted({(v.get("params") or 0, v["backbone"]) for v in fam}, reverse=True)
            by_key = {(v["backbone"], v["shift"], v["train_set"], v["eval_set"]): v for v in fam}
            body = []
            for params, backbone in backbones:
                cells = []
                for s, tr, ev in cols:
                    v = by_key.get((backbone, s, tr, ev))
                    if v is None:
                        cells.append(None)
                        continue
                    word = VERDICT_WORDS.get(v["verdict"], v["verdict"])
                    tip = (f"{backbone}, {pair_label(tr, ev)}: {init} vs {v.get('baseline')} "
                           f"{fmt_pp(v.get('gain'))} {fmt_interval_pp(v.get('ci_low'), v.get('ci_high'))}, "
                           f"margin ±{fmt_pp(v.get('margin'), sign=False)}, {v.get('pairing', '')} "
                           f"(n={v.get('n_pairs') or ''}); {word}")
                    need = v.get("seeds_needed")
                    if need:
                        tip += f"; {seeds_words(need, plan, prose=True)} per arm would resolve it{_beyond_design(need, plan)}"
                    if v.get("floor_flag"):
                        tip += f"; note: {v['floor_flag']}"
                    tip += _stage_tip(v)
                    cells.append({"verdict": v["verdict"], "word": word, "gain": fmt_pp(v.get("gain")),
                                  "ci": fmt_interval_pp(v.get("ci_low"), v.get("ci_high")), "tip": tip,
                                  "seeds_needed": need, "seeds": seeds_words(need, plan), "flag": v.get("floor_flag")})
                rung = rung_label(backbone)
                body.append({"backbone": backbone, "rung": rung if rung != backbone else "", "params": fmt_params(params),
                             "cells": cells})
            tables.append({
                "family": family,
                "shifts": shifts,
                "pairs": [pair_label(tr, ev) for _, tr, ev in cols],
                "rows": body,
            })
        maps.append({"task": task, "init": init, "metric": metric_label(metric.get(task, "metric")),
                     "baseline": rows_ti[0].get("baseline", "baseline"), "tables": tables})
    return maps
