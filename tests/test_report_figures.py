"""Pure figure and formatting functions: ticks, units, SVG content, escaping, headline arrangement."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pandas as pd
import pytest

from capgate.report._svg import Canvas, LinearScale, LogScale, nice_ticks
from capgate.report.fig_gains import forest_svg, gains_vs_capacity_svg
from capgate.report.fig_gates import gates_svg
from capgate.report.fig_tradeoffs import pareto_svg, ranking_svg
from capgate.report.gates import cross_task_gates
from capgate.report.headline import gate_matrix, verdict_counts, verdict_maps
from capgate.report.units import fmt_count, fmt_interval_pp, fmt_metric, fmt_p, fmt_params, fmt_pp
from helpers import hand_summary


def gains_rows(verdicts: list[str], name: str = "mbv3") -> pd.DataFrame:
    rows = []
    for i, v in enumerate(verdicts):
        for ev, shift in (("llvip/rgb", "in_domain"), ("flir/rgb", "cross_dataset")):
            rows.append({"task": "detection", "family": "mbv3", "backbone": f"{name}@w{i}", "params": 100_000 * 2**i,
                         "train_set": "llvip/rgb", "eval_set": ev, "shift": shift, "init": "imagenet",
                         "baseline": "scratch", "metric": "map", "gain": 0.01 * i, "ci_low": 0.01 * i - 0.015,
                         "ci_high": 0.01 * i + 0.015, "margin": 0.01, "sd_pooled": 0.012, "verdict": v})
    return pd.DataFrame(rows)


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # well-formed XML, or this raises


def test_ticks_and_scales() -> None:
    assert nice_ticks(0, 1, 5) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(-0.013, 0.052, 5) == [0.0, 0.02, 0.04]  # step 0.02 >= span / 5
    assert nice_ticks(-0.05, 0.05, 4) == [-0.05, 0.0, 0.05]
    assert LogScale((1e5, 1e6), (0, 100))(10**5.5) == pytest.approx(50)
    assert LogScale((9e4, 1.1e6), (0, 1)).ticks() == [1e5, 2e5, 5e5, 1e6]
    assert LinearScale((0, 2), (100, 0))(0.5) == 75


def test_units() -> None:
    assert fmt_metric(0.3124) == "31.2 %" and fmt_pp(0.05) == "+5.0 pp" and fmt_pp(-0.00001) == "+0.0 pp"
    assert fmt_pp(0.05, sign=False) == "5.0 pp" and fmt_interval_pp(0.01, 0.09) == "[+1.0, +9.0] pp"
    assert fmt_params(812_345) == "812k" and fmt_params(1_250_000) == "1.25M" and fmt_params(None) == "—"
    assert fmt_p(0.0004) == "< 0.001" and fmt_p(0.0123) == "0.012" and fmt_p(float("nan")) == "—"
    assert fmt_count(1, "seed") == "1 seed" and fmt_count(3, "seed") == "3 seeds"


def test_gains_figure_draws_every_contrast_and_the_noise_band() -> None:
    df = gains_rows(["inconclusive", "helps", "helps"])
    svg = gains_vs_capacity_svg(df, title="gains")
    root = parse(svg)
    assert root.get("role") == "img" and root.get("aria-label") == "gains" and root.find("title").text == "gains"
    markers = [c for c in root.iter("circle") if c.find("title") is not None]
    assert len(markers) == 6
    filled = [c for c in markers if c.get("fill") != "#fff"]
    assert len(filled) == 4  # helps x 2 rungs x 2 eval sets
    assert len(root.findall("polygon")) == 2  # one ±margin band per shift panel
    assert {t.text for t in root.iter("text")} >= {"in_domain", "cross_dataset", "trained on llvip/rgb"}


def test_forest_has_one_marker_per_contrast_coloured_by_verdict() -> None:
    df = gains_rows(["hurts", "within_noise", "helps"])
    root = parse(forest_svg(df, title="forest"))
    marks = [r for r in root.iter("rect") if r.find("title") is not None]
    assert len(marks) == 6
    assert sorted(r.get("fill") for r in marks) == sorted(["#b2182b"] * 2 + ["#5a6270"] * 2 + ["#1b7837"] * 2)


def test_svg_text_is_escaped() -> None:
    df = gains_rows(["helps"], name="<script>x</script>")
    for svg in (gains_vs_capacity_svg(df, title="<b>t</b>"), forest_svg(df, title="<b>t</b>")):
        assert "<script>" not in svg and "<b>" not in svg and "&lt;script&gt;" in svg
        parse(svg)
    root = parse(Canvas(10, 10, 'a "quoted" <title>').to_svg())
    assert root.get("aria-label") == 'a "quoted" <title>' and root.find("title").text == 'a "quoted" <title>'


def test_gates_pareto_and_ranking_figures() -> None:
    gates = pd.DataFrame([{**g, "range_lo": 100_000, "range_hi": 900_000} for g in hand_summary()["gates"]])
    root = parse(gates_svg(gates, title="gates"))
    assert len([c for c in root.iter("circle") if c.find("title") is not None]) == 1  # one status 'gate'
    assert "no gate in the tested range" in {t.text for t in root.iter("text")}
    pts = pd.DataFrame({"init": ["scratch"] * 3, "backbone": ["a", "b", "c"], "cost": [1e5, 2e5, 4e5],
                        "metric": [0.2, 0.3, 0.25], "on_front": [True, True, False]})
    root = parse(pareto_svg(pts, title="p", cost="params", metric="mAP"))
    assert len([c for c in root.iter("circle") if c.find("title") is not None]) == 3
    ranks = [{"init": "scratch", "order": ["a", "b"], "means": [0.3, 0.2]},
             {"init": "imagenet", "order": ["b", "a"], "means": [0.35, 0.32]}]
    root = parse(ranking_svg(ranks, title="r"))
    assert len(root.findall("polyline")) == 2
    assert {"1. a", "2. b", "1. b", "2. a"} <= {t.text for t in root.iter("text")}


def test_headline_arrangement_from_the_summary() -> None:
    s = hand_summary()
    assert verdict_counts(s["verdicts"]) == [{"task": "detection", "init": "imagenet", "baseline": "scratch",
                                             "total": 2, "helps": 1, "within_noise": 1, "hurts": 0, "inconclusive": 0}]
    (m,) = verdict_maps(s)
    (table,) = m["tables"]
    assert [r["backbone"] for r in table["rows"]] == ["mbv3@w1.0", "mbv3@w0.5"]  # largest first
    assert [c["word"] for r in table["rows"] for c in r["cells"]] == ["within noise", "helps"]
    (gm,) = gate_matrix(s)
    assert [(r["shift"], r["cells"][0]["main"]) for r in gm["rows"]] == [
        ("in_domain", "no rung range where every cell helps"), ("cross_dataset", "helps from R-1 (250k params) upward")]
    assert cross_task_gates(s) is None


def test_cross_task_pairs_shifts_and_reads_intervals() -> None:
    s = hand_summary()
    cls = [{**g, "task": "classification", "key": g["key"].replace("detection", "classification")}
           for g in s["gates"]]
    cls[0] = {**cls[0], "shift": "cross_domain", "ci_low": 500_000.0, "ci_high": 600_000.0, "gate_params": 550_000.0,
              "below_params": 520_000.0}
    s["gates"] += cls
    ct = cross_task_gates(s)
    assert [(r["a_shift"], r["b_shift"], r["answer"]) for r in ct["rows"]] == [
        ("in_domain", "in_domain", "mirrors"), ("cross_dataset", "cross_domain", "differs")]
    assert ct["counts"] == {"mirrors": 1, "differs": 1, "undetermined": 0}
    assert re.match(r"Of 2 comparable .* classification mirrors detection's gating in 1, differs in 1", ct["sentence"])
