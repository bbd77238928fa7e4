"""The first figure of each task: the metric against parameters, one line per initialization.

What a vision engineer looks for first: how good each backbone is, by size, under each init. One
facet per train → eval pair (so no line ever joins two eval sets), parameters on a log axis, one
line per (family, init) joining the cell means along the capacity ladder, every seed's value as a
small jittered dot, and each cell's interval: ``mean ± t(0.975, df_mod) · se`` with the stabilised
per-cell standard error ``se = sd_mod / sqrt(n_ok)`` of :mod:`capgate.analysis.cells`.

Pure functions over the analysis' own outputs: ``Analysis.cells`` for means and intervals and the
model frames (every ok record the models were fitted to) for the seeds. Nothing is refitted.
"""

from __future__ import annotations

import math
from collections import namedtuple
from typing import Any

import pandas as pd
from markupsafe import Markup
from scipy import stats

from capgate.report._svg import Box, Canvas, LinearScale, LogScale, draw_axes, legend, shape_mark
from capgate.report.labels import pair_label, shift_order
from capgate.report.palette import init_colour
from capgate.report.units import fmt_metric, fmt_params, is_missing, metric_label

__all__ = ["metric_vs_params_svg", "metric_figures", "cell_interval", "seed_frame", "LEVEL"]

#: Coverage of the interval drawn around each cell mean.
LEVEL = 0.95
_SITE = ["family", "backbone", "train_set", "eval_set", "init"]


def _tuples(df: pd.DataFrame) -> list[Any]:
    """Rows of ``df`` as named tuples with ``Index`` (like ``itertuples``, without its per-call cost)."""
    row = namedtuple("row", ["Index", *df.columns])  # type: ignore[misc]
    return [row(*v) for v in zip(df.index.tolist(), *(df[c].tolist() for c in df.columns))]


def _f(v: object) -> float:
    return float("nan") if is_missing(v) else float(v)  # type: ignore[arg-type]


def cell_interval(mean: float, se: float, df: float, level: float = LEVEL) -> tuple[float, float]:
    """``mean ± q · se`` with ``q`` the t quantile on the cell's stabilised ``df`` (normal when ``df``
    is infinite or unknown); NaNs when ``se`` is unknown (a single seed)."""
    mean, se, df = _f(mean), _f(se), _f(df)
    if not (math.isfinite(mean) and math.isfinite(se)):
        return float("nan"), float("nan")
    q = float(stats.t.ppf(0.5 + level / 2, df)) if math.isfinite(df) and df > 0 else float(stats.norm.ppf(0.5 + level / 2))
    return mean - q * se, mean + q * se


def seed_frame(model_frames: dict[str, pd.DataFrame], metrics: dict[str, str]) -> pd.DataFrame:
    """Every ok record of every fitted model as ``task, family, backbone, train_set, eval_set, init,
    seed, run_id, params, y`` (the metric value); empty where no model was fitted."""
    parts = []
    for task, frame in (model_frames or {}).items():
        metric = metrics.get(task)
        if frame is None or metric not in getattr(frame, "columns", ()):
            continue
        f = frame[[*_SITE, "seed", "run_id", "params", metric]].rename(columns={metric: "y"})
        parts.append(f.assign(task=task))
    if not parts:
        return pd.DataFrame(columns=["task", *_SITE, "seed", "run_id", "params", "y"])
    return pd.concat(parts, ignore_index=True)


def _pairs(cells: pd.DataFrame) -> list[tuple[str, str, str]]:
    keys = {(r.train_set, r.eval_set, r.shift) for r in cells.itertuples()}
    return sorted(keys, key=lambda k: (k[0], shift_order(k[2]), k[2], k[1]))


def _y_tick(t: float) -> str:
    v = 100 * t
    return f"{v:.0f}" if abs(v - round(v)) < 1e-6 else f"{v:.1f}" if abs(10 * v - round(10 * v)) < 1e-6 else f"{v:.2f}"


def metric_vs_params_svg(cells: pd.DataFrame, seeds: pd.DataFrame | None, *, title: str, metric: str = "metric",
                         facet_w: int = 290, facet_h: int = 210, level: float = LEVEL,
                         outliers: frozenset[tuple[str, str]] = frozenset()) -> str:
    """Metric (in %) against parameters for one task: one facet per train → eval pair.

    ``cells``: rows of ``Analysis.cells`` (family, backbone, params, train_set, eval_set, shift, init,
    mean, se, df_mod, n_ok). ``seeds``: the ok records of those cells (family, backbone, train_set,
    eval_set, init, seed, run_id, y), or None; ``outliers``: (run_id, eval_set) of runs the analysis
    flagged far below their siblings, ringed in red (still counted as seeds). Facets are laid out one row per train set; inits are dodged
    sideways so their intervals do not overlap, and seeds are spread evenly around their cell.
    Elements carry ``class`` (``seed``, ``cell-mean``, ``cell-ci``, ``init-line``) and the line's
    ``data-eval`` so a test can count them.
    """
    keep = ["family", "backbone", "params", "train_set", "eval_set", "shift", "init", "mean", "se", "df_mod", "n_ok"]
    df = cells.loc[[not is_missing(p) and float(p) > 0 for p in cells["params"]], keep].reset_index(drop=True)
    if seeds is not None:
        seeds = seeds[["family", "backbone", "train_set", "eval_set", "init", "seed", "run_id", "y"]]
    inits = list(dict.fromkeys(sorted(df["init"], key=lambda i: (i != "scratch", i))))
    families = sorted(dict.fromkeys(df["family"]))
    pairs = _pairs(df)
    rows = [(f, t) for f in families for t in dict.fromkeys(p[0] for p in pairs)
            if ((df["family"] == f) & (df["train_set"] == t)).any()]
    ncols = max([sum(p[0] == t for p in pairs) for _, t in rows] or [1])
    left, gap_x, gap_y = 52, 34, 84
    width = left + ncols * facet_w + (ncols - 1) * gap_x + 14
    items: list[tuple[str, str, str]] = [(i, init_colour(i, inits), "dot+line") for i in inits]
    items += [("one seed (ok run)", "#777", "seed"), (f"cell mean with {level:.0%} interval", "#555", "errorbar")]
    if seeds is not None and any((r, e) in outliers for r, e in zip(seeds["run_id"], seeds["eval_set"])):
        items.append(("outlier run (listed under Data completeness)", "#b2182b", "ring"))
    probe = Canvas(width, 10, "")
    leg_bottom = legend(probe, left, 14, items, max_width=width - left - 10)
    top0 = leg_bottom + 34
    height = int(top0 + len(rows) * (facet_h + gap_y) - gap_y + 40)
    n_seeds = 0 if seeds is None else len(seeds)
    desc = (f"{metric} against parameter count (log scale) for {len(df)} cells in {len(rows) * ncols} panels, one per "
            f"family and train → eval pair; one line per initialization joins cell means, {n_seeds} seed values as "
            f"dots, bars are {level:.0%} intervals from the stabilised per-cell standard error. " + "; ".join(
                f"{r.backbone} {r.init} {pair_label(r.train_set, r.eval_set)}: {fmt_metric(r.mean)}"
                for r in df.sort_values(["train_set", "eval_set", "init", "params"]).itertuples()))
    c = Canvas(width, height, title, desc)
    legend(c, left, 14, items, max_width=width - left - 10)
    if df.empty:
        c.text(width / 2, height / 2, "no cells with a parameter count to draw", anchor="middle")
        return c.to_svg()
    plo, phi = float(df["params"].astype(float).min()), float(df["params"].astype(float).max())
    for row, (family, train) in enumerate(rows):
        for col, (tr, ev, shift) in enumerate(p for p in pairs if p[0] == train):
            x0 = left + col * (facet_w + gap_x)
            y0 = top0 + row * (facet_h + gap_y)
            box = Box(x0, y0, x0 + facet_w, y0 + facet_h)
            sub = df[(df["train_set"] == tr) & (df["eval_set"] == ev) & (df["family"] == family)]
            sd = None if seeds is None else seeds[(seeds["train_set"] == tr) & (seeds["eval_set"] == ev)
                                                  & (seeds["family"] == family)]
            if len(sub):
                _facet(c, sub, sd, box, (plo, phi), inits, level, metric, (family, tr, ev, shift), outliers)
    return c.to_svg()


def _facet(c: Canvas, cells: pd.DataFrame, seeds: pd.DataFrame | None, box: Box, prange: tuple[float, float],
           inits: list[str], level: float, metric: str, where: tuple[str, str, str, str],
           outliers: frozenset[tuple[str, str]] = frozenset()) -> None:
    family, tr, ev, shift = where
    ivals = {r.Index: cell_interval(r.mean, r.se, r.df_mod, level) for r in _tuples(cells)}
    vals = [_f(v) for v in cells["mean"]] + [v for iv in ivals.values() for v in iv]
    if seeds is not None:
        vals += [_f(v) for v in seeds["y"]]
    finite = [v for v in vals if math.isfinite(v)]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
    y = LinearScale.padded(max(0.0, lo) if lo >= 0 else lo, hi, (box.bottom, box.top), pad=0.08)
    x = LogScale.padded(prange[0], prange[1], (box.left, box.right), pad=0.1)
    draw_axes(c, x, y, box, xlabel="parameters (log scale)", ylabel="", xfmt=fmt_params, yfmt=_y_tick, nx=4, ny=4)
    c.text(box.left - 40, box.top - 6, f"{metric} (%)", size=10, fill="#555")
    c.text((box.left + box.right) / 2, box.top - 20, pair_label(tr, ev), size=11, anchor="middle", font_weight="600")
    c.text((box.left + box.right) / 2, box.top - 7, f"{family} · {shift.replace('_', ' ')}", size=10,
           anchor="middle", fill="#555")
    c.raw_group({"class": "facet", "data-family": family, "data-train": tr, "data-eval": ev})
    span = math.log10(x.domain[1] / x.domain[0])
    n = len(inits)
    by_cell = {} if seeds is None else {k: g.sort_values("seed") for k, g in seeds.groupby(["backbone", "init"])}
    for i, init in enumerate(inits):
        colour = init_colour(init, inits)
        dodge = 10 ** (0.022 * (i - (n - 1) / 2) * span)
        sub = cells[cells["init"] == init].sort_values("params")
        pts = [(x(float(r.params) * dodge), y(float(r.mean))) for r in _tuples(sub) if math.isfinite(_f(r.mean))]
        c.polyline(pts, stroke=colour, stroke_width=1.6, stroke_opacity=0.85, class_="init-line",
                   data_eval=ev, data_train=tr, data_init=init, data_family=family)
        for r in _tuples(sub):
            px = x(float(r.params) * dodge)
            mine = by_cell.get((r.backbone, init))
            if mine is not None:
                m = len(mine)
                for j, s in enumerate(_tuples(mine)):
                    jit = 10 ** (0.009 * span * ((j - (m - 1) / 2) / max(1, m - 1) * 2 if m > 1 else 0))
                    odd = (str(s.run_id), ev) in outliers
                    c.circle(x(float(r.params) * dodge * jit), y(float(s.y)), 3.2 if odd else 1.9,
                             tip=f"{r.backbone}, {init}, seed {s.seed} (run {s.run_id}): {fmt_metric(s.y)}"
                                 + (" — outlier: far below its siblings" if odd else ""),
                             fill=colour, fill_opacity=0.45, stroke="#b2182b" if odd else "none",
                             stroke_width=1.4 if odd else None, class_="seed", data_outlier="1" if odd else None)
            a, b = ivals[r.Index]
            if math.isfinite(a) and math.isfinite(b):
                c.line(px, y(a), px, y(b), stroke=colour, stroke_width=1.4, class_="cell-ci")
                c.line(px - 2.5, y(a), px + 2.5, y(a), stroke=colour, stroke_width=1.1)
                c.line(px - 2.5, y(b), px + 2.5, y(b), stroke=colour, stroke_width=1.1)
            mean = _f(r.mean)
            if not math.isfinite(mean):
                continue
            tip = (f"{r.backbone} ({fmt_params(r.params)} params), {init}, {pair_label(tr, ev)}: mean "
                   f"{fmt_metric(mean)}, {level:.0%} interval {fmt_metric(a)} to {fmt_metric(b)}, {int(r.n_ok)} ok seeds")
            shape_mark(c, "dot", px, y(mean), 4, tip=tip, fill=colour, stroke="#fff", stroke_width=0.9,
                       class_="cell-mean")
    c.end_group()


def metric_figures(cells: pd.DataFrame, model_frames: dict[str, pd.DataFrame], metrics: dict[str, str],
                   outlier_runs: pd.DataFrame | None = None) -> list[dict[str, Any]]:
    """One figure dict (``svg``, ``title``, ``heading``, ``caption``, ``task``) per (study, task).

    Seeds come from the model frames, matched to cells on (task, family, backbone, train_set,
    eval_set, init). A frame has no study column: where several studies share a task and a cell,
    the matched seeds outnumber the cell's ``n_ok`` and that cell's seeds are left out (said in the
    caption) rather than drawn under the wrong study. ``outlier_runs`` (``Analysis.outlier_runs``) are
    ringed in red.
    """
    if cells is None or cells.empty:
        return []
    seeds_all = seed_frame(model_frames, metrics)
    odd = outlier_runs if isinstance(outlier_runs, pd.DataFrame) and len(outlier_runs) else None
    outliers = frozenset() if odd is None else frozenset(
        (str(r), str(k).split("|")[4]) for r, k in zip(odd["run_id"], odd["key"]))
    out = []
    for (study, task), sub in cells.groupby(["study", "task"], sort=True):
        sub = sub[sub["n_ok"] > 0]
        if sub.empty:
            continue
        sd = seeds_all[seeds_all["task"] == task].merge(sub[_SITE + ["n_ok"]], on=_SITE, how="inner")
        counts = sd.groupby(_SITE)["y"].transform("size")
        bad = sd[counts != sd["n_ok"]]
        sd = sd[counts == sd["n_ok"]]
        m = metric_label(metrics.get(task, "metric"))
        title = f"{study}: {task} {m} against parameters, one line per initialization"
        svg = Markup(metric_vs_params_svg(sub, sd if len(sd) else None, title=title, metric=m,
                                          outliers=outliers))
        caption = (f"{m} of every {task} cell (percent) against whole-model parameters (log scale), one panel per "
                   f"family and train → eval pair so no line joins two eval sets. Each line joins the cell means of one "
                   f"initialization along that family's capacity ladder; small dots are the {len(sd)} individual seeds "
                   f"(ok runs, jittered sideways); bars are {LEVEL:.0%} intervals of each cell mean from its stabilised "
                   f"standard error (sd_mod / √n on df_mod degrees of freedom). Initializations are offset sideways.")
        n_odd = sum((str(r), e) in outliers for r, e in zip(sd["run_id"], sd["eval_set"]))
        if n_odd:
            what = "the one seed" if n_odd == 1 else f"each of the {n_odd} seeds"
            caption += (f" A red ring marks {what} the analysis flagged far below its siblings "
                        f"(listed with its run_id under Data completeness).")
        if len(bad):
            caption += (f" Seeds of {bad.groupby(_SITE).ngroups} cells shared with another study are not drawn.")
        if not len(sd):
            caption += " No individual seeds are drawn: no mixed model was fitted to this task's records."
        out.append({"svg": svg, "title": title, "task": task, "study": study,
                    "heading": f"{task.capitalize()} ({study}) — {m} vs parameters", "caption": caption})
    return out
