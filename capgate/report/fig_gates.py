"""Figure of capacity gates: where each (task, family, shift, init) starts to benefit from pretraining.

Pure function: gate rows (the ``gates`` of ``summary.json`` plus the tested parameter range of
each row) in, an accessible SVG string out. Parameters are drawn on a log axis.
"""

from __future__ import annotations

import math

import pandas as pd

from capgate.report._svg import Box, Canvas, LogScale, draw_axes, legend
from capgate.analysis.verdicts import VERDICT_COLOURS
from capgate.report.palette import TASK_COLOURS, series_colour
from capgate.report.units import fmt_params, is_missing

__all__ = ["gates_svg", "STATUS_WORDS"]

STATUS_WORDS = {
    "gate": "gate",
    "helps_everywhere": "helps at every tested capacity",
    "no_gate_in_range": "no gate in the tested range",
    "undetermined": "undetermined",
}


def _f(v: object) -> float:
    return float("nan") if is_missing(v) else float(v)  # type: ignore[arg-type]


def gates_svg(gates: pd.DataFrame, *, title: str, width: int = 920, row_h: int = 24) -> str:
    """One row per gate: the tested capacity range as a grey bar, the gate as a marker with its
    interval, ``helps_everywhere`` as a green bar over the whole range, other statuses as words.

    ``gates`` columns: task, family, shift, init, status, gate_params, ci_low, ci_high,
    range_lo, range_hi (the smallest and largest tested parameter count of that task and family).
    Rows are coloured by task when there are several tasks.
    """
    df = gates.reset_index(drop=True)
    tasks = list(dict.fromkeys(df["task"])) if len(df) else []
    label_w, top, bottom = 370, 44, 40
    height = top + bottom + row_h * max(1, len(df))
    desc = "; ".join(
        f"{r.task} {r.family} {r.shift} {r.init}: {STATUS_WORDS.get(str(r.status), str(r.status))}"
        + (f" at {fmt_params(r.gate_params)} parameters" if not is_missing(r.gate_params) else "")
        for r in df.itertuples()
    )
    c = Canvas(width, height, title, desc)
    vals = [_f(v) for col in ("gate_params", "ci_low", "ci_high", "range_lo", "range_hi") if col in df for v in df[col]]
    vals = [v for v in vals if math.isfinite(v) and v > 0]
    if not vals:
        c.text(width / 2, height / 2, "no capacity gates to draw", anchor="middle")
        return c.to_svg()
    box = Box(label_w, top, width - 16, height - bottom)
    x = LogScale.padded(min(vals), max(vals), (box.left, box.right), pad=0.08)
    colours = {t: TASK_COLOURS.get(t, series_colour(i)) for i, t in enumerate(tasks)}
    items = [("tested range", "#d5d9df", "band")]
    if len(tasks) > 1:
        items += [(t, colours[t], "dot") for t in tasks]
    else:
        items += [("gate and interval", colours.get(tasks[0], "#0072B2"), "dot")]
    items.append(("helps everywhere", VERDICT_COLOURS["helps"][0], "line"))
    legend(c, label_w, 16, items, max_width=width - label_w - 10)
    draw_axes(c, x, None, box, xlabel="parameters (log scale)", xfmt=fmt_params, nx=8)
    for i, r in enumerate(df.itertuples()):
        cy = box.top + row_h * (i + 0.5)
        colour = colours.get(r.task, "#0072B2")
        label = (f"{r.task} · " if len(tasks) > 1 else "") + f"{r.family} · {r.shift} · {r.init}"
        fit = int((label_w - 12) / (_CHAR_EM * 10))  # characters of a 10 px label that fit left of the plot
        c.text(label_w - 8, cy + 3.5, label if len(label) <= fit else label[:fit - 1] + "…", size=10, anchor="end")
        lo_r, hi_r = _f(getattr(r, "range_lo", None)), _f(getattr(r, "range_hi", None))
        if math.isfinite(lo_r) and math.isfinite(hi_r):
            c.rect(x(lo_r), cy - 4, x(hi_r) - x(lo_r), 8, fill="#d5d9df", stroke="none")
        status = str(r.status)
        g, lo, hi = _f(r.gate_params), _f(r.ci_low), _f(r.ci_high)
        if status == "gate" and math.isfinite(g):
            tip = f"{label}: gate at {fmt_params(g)} parameters"
            if math.isfinite(lo) or math.isfinite(hi):
                a = min(max(x(lo), box.left), box.right) if math.isfinite(lo) else box.left  # never past the frame
                b = min(max(x(hi), box.left), box.right) if math.isfinite(hi) else box.right
                c.line(a, cy, b, cy, stroke=colour, stroke_width=2.2)
                for end, finite in ((a, math.isfinite(lo)), (b, math.isfinite(hi))):
                    if finite:  # an open end (interval beyond the tested range) has no cap
                        c.line(end, cy - 5, end, cy + 5, stroke=colour, stroke_width=1.5)
                tip += (f", interval {fmt_params(lo) if math.isfinite(lo) else 'below the range'} to "
                        f"{fmt_params(hi) if math.isfinite(hi) else 'above the range'} parameters")
            c.circle(x(g), cy, 5, tip=tip, fill=colour, stroke="#fff", stroke_width=1)
        elif status == "helps_everywhere" and math.isfinite(lo_r) and math.isfinite(hi_r):
            c.line(x(lo_r), cy, x(hi_r), cy, stroke=VERDICT_COLOURS["helps"][0], stroke_width=4)
            _pill(c, box, (x(lo_r) + x(hi_r)) / 2, cy, STATUS_WORDS[status], VERDICT_COLOURS["helps"][0])
        else:
            word = STATUS_WORDS.get(status, status)
            fill = VERDICT_COLOURS["inconclusive"][0] if status == "undetermined" else VERDICT_COLOURS["within_noise"][0]
            mid = (x(lo_r) + x(hi_r)) / 2 if math.isfinite(lo_r) and math.isfinite(hi_r) else (box.left + box.right) / 2
            _pill(c, box, mid, cy, word, fill)
    return c.to_svg()


#: Width of one character as a fraction of the font size, generous for a sans-serif (no clipping).
_CHAR_EM = 0.6


def _pill(c: Canvas, box: Box, mid: float, cy: float, word: str, fill: str) -> None:
    """A status word on a white pill centred at ``mid``, moved inside the plot when it would cross its frame."""
    half = _CHAR_EM * 10 * len(word) / 2 + 6
    mid = min(max(mid, box.left + half), box.right - half)
    c.rect(mid - half, cy - 8, 2 * half, 16, fill="#fff", stroke="#d5d9df", rx=8)
    c.text(mid, cy + 3.5, word, size=10, anchor="middle", fill=fill)
