"""Figures of how backbones compare: Pareto fronts (metric vs cost) and rank changes between inits.

Pure functions: small DataFrames in, accessible SVG strings out. Metrics are drawn in percent.
"""

from __future__ import annotations

import pandas as pd

from capgate.report._svg import Box, Canvas, LinearScale, LogScale, draw_axes, legend
from capgate.report.palette import init_colour, series_colour
from capgate.report.units import fmt_metric, fmt_params, is_missing

__all__ = ["pareto_svg", "ranking_svg", "COST_LABELS"]

COST_LABELS = {"params": "parameters", "macs": "multiply-accumulates (MACs)", "latency_ms": "latency (ms)",
               "size_bytes": "model size (bytes)"}


def _cost_fmt(cost: str):
    if cost == "latency_ms":
        return lambda v: f"{v:.3g} ms"
    if cost == "size_bytes":
        return lambda v: f"{fmt_params(v)}B"
    return fmt_params


def pareto_svg(points: pd.DataFrame, *, title: str, cost: str, metric: str, width: int = 440, height: int = 300) -> str:
    """Metric against one cost axis per initialization, each init's Pareto front as a step line.

    ``points`` columns: init, backbone, cost (the value on this axis), metric (0..1), on_front (bool).
    """
    df = points[[not is_missing(v) and float(v) > 0 for v in points["cost"]]].copy()
    df = df[[not is_missing(v) for v in df["metric"]]]
    inits = list(dict.fromkeys(df["init"]))
    fmt = _cost_fmt(cost)
    front_desc = "; ".join(
        f"{init}: " + ", ".join(f"{r.backbone} ({fmt(float(r.cost))}, {fmt_metric(r.metric)})"
                                for r in df[(df["init"] == init) & df["on_front"].astype(bool)].sort_values("cost").itertuples())
        for init in inits
    )
    c = Canvas(width, height, title, f"{metric} against {COST_LABELS.get(cost, cost)}; Pareto fronts — {front_desc}")
    if df.empty:
        c.text(width / 2, height / 2, f"no {COST_LABELS.get(cost, cost)} recorded", anchor="middle")
        return c.to_svg()
    probe = Canvas(width, height, "")
    items = [(i, init_colour(i, inits), "dot") for i in inits] + [("off the front", "#777", "ring")]
    leg_bottom = legend(probe, 56, 14, items, max_width=width - 70)
    box = Box(56, leg_bottom + 2, width - 14, height - 44)
    costs = df["cost"].astype(float)
    vals = df["metric"].astype(float)
    x = LogScale.padded(float(costs.min()), float(costs.max()), (box.left, box.right), pad=0.1)
    y = LinearScale.padded(float(vals.min()), float(vals.max()), (box.bottom, box.top), pad=0.1)
    draw_axes(c, x, y, box, xlabel=f"{COST_LABELS.get(cost, cost)} (log scale)", ylabel=f"{metric} (%)",
              xfmt=fmt, yfmt=lambda t: f"{100 * t:.0f}" if abs(100 * t - round(100 * t)) < 1e-6 else f"{100 * t:.1f}")
    legend(c, 56, 14, items, max_width=width - 70)
    for init in inits:
        colour = init_colour(init, inits)
        sub = df[df["init"] == init].sort_values("cost")
        front = sub[sub["on_front"].astype(bool)]
        steps: list[tuple[float, float]] = []
        for r in front.itertuples():
            px, py = x(float(r.cost)), y(float(r.metric))
            if steps:
                steps.append((px, steps[-1][1]))
            steps.append((px, py))
        c.polyline(steps, stroke=colour, stroke_width=1.6)
        for r in sub.itertuples():
            on = bool(r.on_front)
            tip = f"{r.backbone}, {init}: {fmt_metric(r.metric)} {metric} at {fmt(float(r.cost))}" + ("" if on else " (off the front)")
            c.circle(x(float(r.cost)), y(float(r.metric)), 4 if on else 3.4, tip=tip,
                     fill=colour if on else "#fff", stroke=colour, stroke_width=1.5)
    return c.to_svg()


def ranking_svg(rankings: list[dict], *, title: str, row_h: int = 22) -> str:
    """Bump chart: backbones ranked by mean metric under each initialization (one column per init,
    best on top), a line joining each backbone's ranks, so order flips show as crossings.

    ``rankings``: entries of ``summary.json`` ``rankings`` for one (task, eval_set), each with
    ``init``, ``order`` (best first) and ``means``.
    """
    inits = [r["init"] for r in rankings]
    names = list(dict.fromkeys(b for r in rankings for b in r["order"]))
    n = max(1, len(names))
    label_w = int(6.1 * max((len(b) for b in names), default=10) + 34)
    width = 2 * label_w + max(160, 120 * (len(rankings) - 1))
    top, bottom = 36, 14
    height = top + bottom + row_h * n
    desc = "; ".join(f"{r['init']}: " + " > ".join(r["order"]) for r in rankings)
    c = Canvas(width, height, title, f"Rank of each backbone by mean metric, best first. {desc}")
    if not inits:
        c.text(width / 2, height / 2, "no rankings", anchor="middle")
        return c.to_svg()
    inner_l, inner_r = label_w, width - label_w
    xs = {i: (inner_l + inner_r) / 2 if len(inits) == 1 else inner_l + k * (inner_r - inner_l) / (len(inits) - 1)
          for k, i in enumerate(inits)}
    for i in inits:
        c.text(xs[i], 20, i, size=11, anchor="middle", font_weight="600")
    ranks = {r["init"]: {b: k for k, b in enumerate(r["order"])} for r in rankings}
    means = {r["init"]: dict(zip(r["order"], r.get("means") or [])) for r in rankings}
    for j, b in enumerate(names):
        colour = series_colour(j)
        pts = [(xs[i], top + row_h * (ranks[i][b] + 0.5)) for i in inits if b in ranks[i]]
        c.polyline(pts, stroke=colour, stroke_width=2, stroke_opacity=0.8)
        for i in inits:
            if b not in ranks[i]:
                continue
            k = ranks[i][b]
            m = means[i].get(b)
            c.circle(xs[i], top + row_h * (k + 0.5), 4.5, tip=f"{b} under {i}: rank {k + 1}, mean {fmt_metric(m)}",
                     fill=colour, stroke="#fff", stroke_width=1)
        first, last = inits[0], inits[-1]
        if b in ranks[first]:
            c.text(xs[first] - 10, top + row_h * (ranks[first][b] + 0.5) + 3.5, f"{ranks[first][b] + 1}. {b}",
                   size=10, anchor="end")
        if b in ranks[last] and len(inits) > 1:
            c.text(xs[last] + 10, top + row_h * (ranks[last][b] + 0.5) + 3.5, f"{ranks[last][b] + 1}. {b}", size=10)
    return c.to_svg()
