"""Figures of gains: gain vs capacity with the noise band, and the forest plot of all contrasts.

Pure functions: rows of ``gains.csv`` (a DataFrame with :data:`capgate.analysis.result.GAINS_COLUMNS`)
in, an accessible SVG string out. Gains are drawn in percentage points.
"""

from __future__ import annotations

import math

import pandas as pd

from capgate.report._svg import Box, Canvas, LinearScale, LogScale, draw_axes, legend, shape_mark
from capgate.report.labels import distinct_labels, pair_label, rung_label, shift_order
from capgate.analysis.verdicts import VERDICT_COLOURS, VERDICT_WORDS, VERDICTS
from capgate.report.palette import SHAPES, series_colour
from capgate.report.units import fmt_interval_pp, fmt_params, fmt_pp, is_missing, metric_label

__all__ = ["gains_vs_capacity_svg", "forest_svg", "forest_labels"]

_SIGNIFICANT = ("helps", "hurts")


def _f(v: object) -> float:
    return float("nan") if is_missing(v) else float(v)  # type: ignore[arg-type]


def _pp_tick(t: float) -> str:
    v = 100 * t
    if abs(v) < 1e-9:
        return "0"
    return f"{v:+.0f}" if abs(v - round(v)) < 1e-6 else f"{v:+.1f}"


def gains_vs_capacity_svg(gains: pd.DataFrame, *, title: str, facet_w: int = 300, height: int = 300) -> str:
    """Gain of one init over the baseline against parameters, for one (task, family, init).

    ``gains``: rows of one task, family and init. One facet per shift (shared axes); one line per
    train → eval pair (never one joining two eval sets), one colour per eval set and one marker
    shape per train set, both in the legend; each gain with its CI, the ±margin band shaded and
    ±pooled run-to-run SD dashed, markers filled where the verdict is significant (helps/hurts).
    Lines carry ``data-eval`` / ``data-train`` so a test can check what they join.
    """
    df = gains.copy()
    shifts = sorted(dict.fromkeys(df["shift"]), key=lambda s: (shift_order(s), s))
    trains = sorted(dict.fromkeys(df["train_set"]))
    evals = sorted(dict.fromkeys(df["eval_set"]), key=lambda e: (e not in trains, e))
    metric = metric_label(str(df["metric"].iloc[0])) if "metric" in df and len(df) else "metric"
    base = str(df["baseline"].iloc[0]) if "baseline" in df and len(df) else "baseline"
    init = str(df["init"].iloc[0]) if len(df) else "init"
    desc = (
        f"Gain in {metric} of {init} over {base}, in percentage points, for each backbone by parameter count; "
        f"{len(df)} contrasts in {len(shifts)} shift panels. "
        + "; ".join(
            f"{r.backbone} {pair_label(r.train_set, r.eval_set)}: {fmt_pp(r.gain)} "
            f"{fmt_interval_pp(r.ci_low, r.ci_high)} ({r.verdict})"
            for r in df.itertuples()
        )
    )
    left, gap = 56, 14
    width = left + len(shifts) * facet_w + (len(shifts) - 1) * gap + 12
    c = Canvas(width, height, title, desc)
    items = [(f"eval on {e}", series_colour(i), "dot") for i, e in enumerate(evals)]
    if len(trains) > 1:
        items += [(f"trained on {t}", "#555", SHAPES[i % len(SHAPES)]) for i, t in enumerate(trains)]
    else:
        items += [(f"trained on {trains[0]}", "#555", "dot")] if trains else []
    items += [("±margin (noise band)", "#e3e6ea", "band"), ("±pooled run-to-run SD", "#8a929e", "dash"),
              ("hollow: not significant", "#555", "ring")]
    leg_bottom = legend(c, left, 14, items, max_width=width - left - 10)
    top, bottom = leg_bottom + 18, height - 44
    params = df["params"].astype(float)
    if params.empty or not (params > 0).any():
        c.text(width / 2, height / 2, "no contrasts to draw", anchor="middle")
        return c.to_svg()
    vals = [_f(v) for col in ("ci_low", "ci_high", "gain") for v in df[col]]
    vals += [s * _f(v) for col in ("margin", "sd_pooled") if col in df for v in df[col] for s in (1, -1)]
    finite = [v for v in vals if math.isfinite(v)] + [0.0]
    y = LinearScale.padded(min(finite), max(finite), (bottom, top))
    plo, phi = float(params[params > 0].min()), float(params.max())
    for k, shift in enumerate(shifts):
        x0 = left + k * (facet_w + gap)
        box = Box(x0, top, x0 + facet_w, bottom)
        x = LogScale.padded(plo, phi, (box.left, box.right), pad=0.12)
        draw_axes(c, x, y if k == 0 else None, box, xlabel="parameters (log scale)",
                  ylabel=f"gain ({metric}, pp)" if k == 0 else "", xfmt=fmt_params, yfmt=_pp_tick, nx=4)
        if k:
            for t in y.ticks(5):
                c.line(box.left, y(t), box.right, y(t), stroke="#e6e8eb")
        c.text((box.left + box.right) / 2, top - 5, shift, size=11, anchor="middle", font_weight="600")
        _facet(c, df[df["shift"] == shift], x, y, box, trains, evals)
    return c.to_svg()


def _band(c: Canvas, df: pd.DataFrame, col: str, x: LogScale, y: LinearScale, box: Box, dashed: bool) -> None:
    """±``col`` around zero following the rungs (flat beyond the outermost ones)."""
    if col not in df:
        return
    band = df.assign(_p=df["params"].astype(float))[["_p", col]].dropna().groupby("_p")[col].mean().sort_index()
    if band.empty:
        return
    xs = [box.left] + [x(p) for p in band.index] + [box.right]
    ms = [float(band.iloc[0])] + [float(v) for v in band.values] + [float(band.iloc[-1])]
    if dashed:
        for sign in (1, -1):
            c.polyline([(a, y(sign * m)) for a, m in zip(xs, ms)], stroke="#8a929e", stroke_width=1,
                       stroke_dasharray="4 3")
    else:
        c.polygon([(a, y(m)) for a, m in zip(xs, ms)] + [(a, y(-m)) for a, m in reversed(list(zip(xs, ms)))],
                  fill="#e3e6ea", fill_opacity=0.85, stroke="none")


def _facet(c: Canvas, df: pd.DataFrame, x: LogScale, y: LinearScale, box: Box, trains: list[str],
           evals: list[str]) -> None:
    _band(c, df, "margin", x, y, box, dashed=False)
    _band(c, df, "sd_pooled", x, y, box, dashed=True)
    c.line(box.left, y(0), box.right, y(0), stroke="#333", stroke_width=1)
    span = math.log10(x.domain[1] / x.domain[0])
    series = sorted(dict.fromkeys(zip(df["train_set"], df["eval_set"])), key=lambda s: (trains.index(s[0]), evals.index(s[1])))
    n = len(series)
    for i, (train, ev) in enumerate(series):
        colour = series_colour(evals.index(ev))
        shape = SHAPES[trains.index(train) % len(SHAPES)] if len(trains) > 1 else "dot"
        sub = df[(df["train_set"] == train) & (df["eval_set"] == ev)].sort_values("params")
        dodge = 10 ** (0.015 * (i - (n - 1) / 2) * span)
        pts = []
        for r in sub.itertuples():
            px, g = x(float(r.params) * dodge), _f(r.gain)
            if not math.isfinite(g):
                continue
            lo, hi = _f(r.ci_low), _f(r.ci_high)
            if math.isfinite(lo) and math.isfinite(hi):
                c.line(px, y(lo), px, y(hi), stroke=colour, stroke_width=1.6)
                c.line(px - 3, y(lo), px + 3, y(lo), stroke=colour, stroke_width=1.2)
                c.line(px - 3, y(hi), px + 3, y(hi), stroke=colour, stroke_width=1.2)
            pts.append((px, y(g)))
        c.polyline(pts, stroke=colour, stroke_width=1.2, stroke_opacity=0.55, class_="gain-line", data_train=train,
                   data_eval=ev)
        for r in sub.itertuples():
            g = _f(r.gain)
            if not math.isfinite(g):
                continue
            filled = str(r.verdict) in _SIGNIFICANT
            tip = (f"{r.backbone} ({fmt_params(r.params)} params), {pair_label(r.train_set, r.eval_set)}: "
                   f"gain {fmt_pp(g)}, CI {fmt_interval_pp(r.ci_low, r.ci_high)}, "
                   f"margin ±{fmt_pp(r.margin, sign=False)}, verdict {VERDICT_WORDS.get(str(r.verdict), str(r.verdict))}")
            shape_mark(c, shape, x(float(r.params) * dodge), y(g), 4.2, tip=tip, fill=colour if filled else "#fff",
                       stroke=colour, stroke_width=1.8, class_="gain")


def forest_labels(df: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(group heading, row label) of each forest row. A group is (study when several, task, family,
    init vs baseline); a row label is the rung with its parameter count and the train → eval pair,
    lengthened only where two rows of a group would otherwise read the same (full backbone,
    shift, study, metric)."""
    multi_study = "study" in df and df["study"].nunique() > 1
    groups, labels, extras = [], [], []
    for r in df.itertuples():
        base = getattr(r, "baseline", "baseline")
        groups.append((f"{r.study} · " if multi_study else "") + f"{r.task} · {r.family} · {r.init} vs {base}")
        labels.append(f"{rung_label(r.backbone)} ({fmt_params(r.params)}) · {pair_label(r.train_set, r.eval_set)}")
        extras.append([("backbone", r.backbone), ("shift", r.shift), ("study", getattr(r, "study", "")),
                       ("metric", getattr(r, "metric", ""))])
    keyed = distinct_labels([f"{g}\x00{lab}" for g, lab in zip(groups, labels)], extras)
    return groups, [k.split("\x00", 1)[1] for k in keyed]


def forest_svg(gains: pd.DataFrame, *, title: str, width: int = 920, row_h: int = 18) -> str:
    """Forest plot: every contrast as one row (gain and CI in pp, coloured by verdict), each row's
    ±margin shaded. Rows keep the order of ``gains`` (sort it before calling); each new (task,
    family, init) group gets a heading row, and row labels are unique (:func:`forest_labels`).
    Row labels are ``<text class="row-label">``, headings ``<text class="group-label">``."""
    df = gains.reset_index(drop=True)
    groups, labels = forest_labels(df) if len(df) else ([], [])
    layout: list[tuple[str, int]] = []  # ("head", i) or ("row", i) in drawing order
    for i, g in enumerate(groups):
        if i == 0 or g != groups[i - 1]:
            layout.append(("head", i))
        layout.append(("row", i))
    longest = max([len(s) for s in labels] + [0])
    label_w = int(min(560, max(220, 5.9 * longest + 24)))
    top, bottom = 52, 40
    height = top + bottom + row_h * max(1, len(layout))
    desc = (f"{len(df)} contrasts of each initialization against the baseline, gain with confidence interval in "
            f"percentage points. " + "; ".join(
                f"{groups[i]}, {labels[i]}: {fmt_pp(r.gain)} {fmt_interval_pp(r.ci_low, r.ci_high)} "
                f"({VERDICT_WORDS.get(str(r.verdict), str(r.verdict))})" for i, r in enumerate(df.itertuples())))
    c = Canvas(width, height, title, desc)
    leg = [(VERDICT_WORDS[v], VERDICT_COLOURS[v][0], "dot") for v in VERDICTS]
    leg.append(("±margin", "#e3e6ea", "band"))
    legend(c, label_w, 16, leg, max_width=width - label_w - 10)
    box = Box(label_w, top, width - 16, height - bottom)
    vals = [_f(v) for col in ("ci_low", "ci_high", "gain") for v in df[col]]
    vals += [s * _f(m) for m in df["margin"] for s in (1, -1)]
    finite = [v for v in vals if math.isfinite(v)] + [0.0]
    x = LinearScale.padded(min(finite), max(finite), (box.left, box.right), pad=0.04)
    metric = metric_label(str(df["metric"].iloc[0])) if "metric" in df and len(df) and df["metric"].nunique() == 1 else "metric"
    draw_axes(c, x, None, box, xlabel=f"gain over baseline ({metric}, percentage points)", xfmt=_pp_tick, nx=8)
    for t in x.ticks(8):  # repeat the tick labels on top: the plot is tall
        c.text(x(t), box.top - 5, _pp_tick(t), size=10, anchor="middle", fill="#555")
    c.line(x(0), box.top, x(0), box.bottom, stroke="#333", stroke_width=1)
    rows = df.to_dict("records")
    for k, (kind, i) in enumerate(layout):
        cy = box.top + row_h * (k + 0.5)
        if kind == "head":
            if k:
                c.line(8, box.top + row_h * k, box.right, box.top + row_h * k, stroke="#c3c8cf")
            c.text(10, cy + 4, groups[i], size=10.5, font_weight="600", fill="#222", class_="group-label")
            continue
        r = rows[i]
        m = _f(r["margin"])
        if math.isfinite(m):
            c.rect(x(-m), cy - row_h / 2 + 2, x(m) - x(-m), row_h - 4, fill="#e3e6ea", stroke="none")
        c.text(label_w - 8, cy + 3.5, labels[i], size=10, anchor="end", fill="#333", class_="row-label")
        verdict = str(r["verdict"])
        colour = VERDICT_COLOURS.get(verdict, ("#333", "#eee"))[0]
        lo, hi, g = _f(r["ci_low"]), _f(r["ci_high"]), _f(r["gain"])
        if math.isfinite(lo) and math.isfinite(hi):
            c.line(x(lo), cy, x(hi), cy, stroke=colour, stroke_width=1.8)
        if math.isfinite(g):
            tip = (f"{groups[i]}, {labels[i]}: {fmt_pp(g)} {fmt_interval_pp(lo, hi)}, "
                   f"{VERDICT_WORDS.get(verdict, verdict)}")
            c.rect(x(g) - 3.5, cy - 3.5, 7, 7, tip=tip, fill=colour, stroke="#fff", stroke_width=0.8)
    return c.to_svg()
