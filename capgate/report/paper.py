"""Paper-ready text of a report: the verdict tally, one quotable sentence per decided verdict, and the
per-cell means and verdict tables as Markdown and LaTeX (booktabs).

Everything is read from ``summary.json`` as the analysis wrote it (effects in percentage points, the
metric's 0..1 scale times 100); nothing is refitted. :mod:`capgate.report.exports` writes the files.
"""

from __future__ import annotations

from typing import Any

from capgate.report.labels import pair_label, rung_label, shift_order
from capgate.report.units import fmt_p, fmt_params, is_missing, metric_label

__all__ = ["verdict_tally", "conclusions_markdown", "reporting_sentences", "cells_table", "verdicts_table", "to_markdown", "to_latex",
           "VERDICT_ORDER"]

VERDICT_ORDER = ("helps", "within_noise", "hurts", "inconclusive")
_CORRECTION = {"holm": "Holm", "bh": "Benjamini-Hochberg", "none": "no"}


def verdict_tally(summary: dict[str, Any]) -> str:
    """The report's verdict counts in one line, e.g. ``39 of 60 contrasts decided: 20 helps,
    15 within_noise, 4 hurts; 21 inconclusive``."""
    verdicts = [v["verdict"] for v in summary.get("verdicts", [])]
    if not verdicts:
        return "no contrasts: the results hold no init to compare with the baseline"
    counts = {k: verdicts.count(k) for k in VERDICT_ORDER}
    decided = len(verdicts) - counts["inconclusive"]
    parts = [f"{counts[k]} {k}" for k in VERDICT_ORDER[:3] if counts[k]]
    text = f"{decided} of {len(verdicts)} contrast{'s' if len(verdicts) != 1 else ''} decided"
    text += (": " + ", ".join(parts)) if parts else ""
    return text + f"; {counts['inconclusive']} inconclusive"


def _pp(v: Any, sign: bool = True) -> str:
    return "n/a" if is_missing(v) else (f"{100 * float(v):+.1f}" if sign else f"{100 * float(v):.1f}")


def _family_sizes(verdicts: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    sizes: dict[tuple[str, str], int] = {}
    for v in verdicts:
        k = (v.get("study", ""), v["task"])
        sizes[k] = sizes.get(k, 0) + 1
    return sizes


def _p_is(v: Any) -> str:
    text = fmt_p(v)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def _seeds(v: dict[str, Any]) -> str:
    if v.get("pairing") == "paired":
        return f"{v.get('n_pairs')} paired seeds per arm"
    return "unpaired seeds" if is_missing(v.get("n_pairs")) else f"{v.get('n_pairs')} seeds per arm (unpaired)"


def reporting_sentences(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One sentence per decided verdict (helps, within_noise, hurts) that a paper can quote: the cell,
    the effect in pp with its interval, the seeds, the margin and the multiplicity correction.
    Dicts ``{"key", "verdict", "text"}`` in the verdict table's order."""
    plan = summary.get("plan") or {}
    metric = summary.get("metric", {})
    level = 100 * (1 - float(plan.get("alpha", 0.05)))
    corr = _CORRECTION.get(str(plan.get("correction", "holm")), str(plan.get("correction")))
    seq = "repeated (group-sequential) " if plan.get("sequential") else ""
    sizes = _family_sizes(summary.get("verdicts", []))
    out = []
    for v in _ordered(summary.get("verdicts", [])):
        if v["verdict"] not in VERDICT_ORDER[:3]:
            continue
        m = metric_label(metric.get(v["task"], "metric"))
        rung = rung_label(v["backbone"])
        model = f"{v['family']} {rung}" if rung != v["backbone"] else rung
        cell = (f"{v['task']}, {model} ({fmt_params(v.get('params'))} params), "
                f"{pair_label(v['train_set'], v['eval_set'])} ({v['shift'].replace('_', ' ')})")
        effect = (f"{v['init']} changed {m} by {_pp(v.get('gain'))} pp over {v.get('baseline')} "
                  f"({level:g} % {seq}CI {_pp(v.get('ci_low'))} to {_pp(v.get('ci_high'))} pp; {_seeds(v)})")
        n_fam = sizes.get((v.get("study", ""), v["task"]), 1)
        if v["verdict"] == "within_noise":
            test = (f"equivalence within ±{_pp(v.get('margin'), sign=False)} pp shown by TOST, {corr}-adjusted "
                    f"{_p_is(v.get('p_tost_adj'))} over {n_fam} contrasts")
        else:
            test = (f"{corr}-adjusted {_p_is(v.get('p_adj'))} over {n_fam} contrasts, beyond the "
                    f"±{_pp(v.get('margin'), sign=False)} pp margin")
        word = {"helps": "pretraining helps", "hurts": "pretraining hurts",
                "within_noise": "the difference is within run-to-run noise"}[v["verdict"]]
        note = f" Note: {v['floor_flag']}." if v.get("floor_flag") else ""
        out.append({"key": v.get("key"), "verdict": v["verdict"],
                    "text": f"In {cell}, {effect}; {test}: {word}.{note}"})
    return out


def _ordered(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda v: (v.get("study", ""), v["task"], v["family"], v.get("init", ""),
                                       shift_order(v["shift"]), v["train_set"], v["eval_set"],
                                       -(float(v.get("params") or 0.0))))


def cells_table(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the per-cell means: metric mean and SD in percent, seeds ok of expected."""
    header = ["task", "family", "rung", "params", "train → eval", "init", "mean (%)", "SD (pp)", "SE (pp)", "seeds"]
    rows = []
    for c in _ordered(summary.get("cells", [])):
        rows.append([c["task"], c["family"], rung_label(c["backbone"]), fmt_params(c.get("params")),
                     pair_label(c["train_set"], c["eval_set"]), c["init"], _pp(c.get("mean"), sign=False),
                     _pp(c.get("sd"), sign=False), _pp(c.get("se"), sign=False),
                     f"{int(c.get('n_ok') or 0)}/{int(c.get('n_expected') or c.get('n_ok') or 0)}"])
    return header, rows


def verdicts_table(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the verdicts: gain and interval in pp, margin, seeds, adjusted p, verdict."""
    header = ["task", "family", "rung", "train → eval", "init vs baseline", "gain (pp)", "CI (pp)", "margin (pp)",
              "n", "p adj.", "verdict", "seeds needed"]
    rows = []
    for v in _ordered(summary.get("verdicts", [])):
        need = v.get("seeds_needed")
        rows.append([v["task"], v["family"], rung_label(v["backbone"]), pair_label(v["train_set"], v["eval_set"]),
                     f"{v['init']} vs {v.get('baseline')}", _pp(v.get("gain")),
                     f"[{_pp(v.get('ci_low'))}, {_pp(v.get('ci_high'))}]", f"±{_pp(v.get('margin'), sign=False)}",
                     str(v.get("n_pairs") if not is_missing(v.get("n_pairs")) else ""),
                     fmt_p(v.get("p_adj")), v["verdict"].replace("_", " "),
                     "" if is_missing(need) else str(int(need))])
    return header, rows


def to_markdown(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured Markdown table (``|`` in a value escaped)."""
    esc = [[str(x).replace("|", "\\|") for x in r] for r in [header, *rows]]
    lines = ["| " + " | ".join(esc[0]) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in esc[1:]]
    return "\n".join(lines) + "\n"


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
        "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "→": r"$\rightarrow$", "±": r"$\pm$",
        "<": r"$<$", ">": r"$>$", "…": r"\dots{}"}


def tex_escape(text: str) -> str:
    """``text`` safe inside a LaTeX table cell (specials escaped, arrows and ± as math)."""
    return "".join(_TEX.get(ch, ch) for ch in str(text))


def to_latex(header: list[str], rows: list[list[str]], *, caption: str, label: str) -> str:
    """A booktabs ``table`` (needs ``\\usepackage{booktabs}``); numbers right-aligned."""
    numeric = [all(_numberlike(r[j]) for r in rows) and bool(rows) for j in range(len(header))]
    spec = "".join("r" if n else "l" for n in numeric)
    body = [" & ".join(tex_escape(x) for x in r) + r" \\" for r in rows]
    return "\n".join([
        r"\begin{table}[ht]", r"\centering", r"\small", f"\\caption{{{tex_escape(caption)}}}",
        f"\\label{{{label}}}", f"\\begin{{tabular}}{{{spec}}}", r"\toprule",
        " & ".join(tex_escape(h) for h in header) + r" \\", r"\midrule", *body, r"\bottomrule", r"\end{tabular}",
        r"\end{table}", ""])


def _numberlike(s: str) -> bool:
    t = str(s).lstrip("±+-<[ ").split(" ")[0].rstrip("],").replace(",", "").replace("/", "")
    try:
        float(t.rstrip("kM"))
        return True
    except ValueError:
        return s == ""


def _rung(backbone: str) -> str:
    """The rung label of a backbone name (``efficientnet_b0@w0.1d0.25 (B-7)`` -> ``B-7``), else the name."""
    return backbone.rsplit("(", 1)[1].rstrip(")") if backbone.endswith(")") and "(" in backbone else backbone


def conclusions_markdown(summary: dict[str, Any]) -> str:
    """What a summary concludes, as Markdown written from its verdicts alone (the README's demo section
    is this text for the committed baseline; a test keeps the two equal): the tally per task, then per
    (task, init, shift) the rungs of each decided verdict, smallest model first."""
    verdicts = summary.get("verdicts", [])
    lines = []
    for task in sorted({v["task"] for v in verdicts}):
        rows = [v for v in verdicts if v["task"] == task]
        lines.append(f"- **{task}**: {verdict_tally({'verdicts': rows})}")
        groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        for v in rows:
            if v["verdict"] != "inconclusive":
                groups.setdefault((v["init"], v["shift"], v["verdict"]), []).append(v)
        for (init, shift, verdict), vs in sorted(groups.items()):
            vs = sorted(vs, key=lambda v: (float(v.get("params") or 0), v["backbone"], v["eval_set"]))
            several = len({v["eval_set"] for v in vs}) > 1  # name the eval set when the shift has several
            cells = ", ".join(f"{_rung(v['backbone'])}{' ' + v['eval_set'] if several else ''} {_pp(v['gain'])} pp"
                              for v in vs)
            lines.append(f"  - `{init}` {verdict} {shift.replace('_', '-')}: {cells}")
    return "\n".join(lines)
