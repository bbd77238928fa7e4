"""A capacity gate says what it rests on (one rung, a bootstrap range over the whole ladder), and the
gates figures keep every label, whisker and marker inside their frame."""

from __future__ import annotations

import pandas as pd

from capgate.report.fig_gates import gates_svg
from capgate.report.headline import gate_caveat, gate_matrix, headline_sentences
from svgcheck import out_of_frame

LADDER = [37_038.0, 48_918.0, 121_062.0, 193_398.0, 328_582.0]


def _gate(**kw) -> dict:
    g = {"key": "k", "study": "demo", "task": "detection", "family": "mobilenetv3", "shift": "cross_dataset",
         "init": "imagenet_coco", "baseline": "scratch", "status": "gate", "rung_from": "S-2",
         "gate_params": 328_582.0, "rung_below": "S-3", "below_params": 193_398.0, "ci_low": None, "ci_high": None,
         "n_rungs": 5, "rung_params": LADDER,
         "rung_verdicts": ["inconclusive", "inconclusive", "inconclusive", "inconclusive", "helps"]}
    g.update(kw)
    return g


def test_a_gate_on_the_largest_rung_alone_says_so_in_the_headline():
    g = _gate()
    assert gate_caveat(g) == "only the largest rung decided; its bootstrap range spans the whole tested range"
    summary = {"metric": {"detection": "map"}, "gates": [g], "plan": {"max_seeds": 100},
               "verdicts": [{"task": "detection", "init": "imagenet_coco", "baseline": "scratch", "verdict": "helps"}]}
    (line,) = headline_sentences(summary)
    assert ("helps from S-2 (329k params) upward (only the largest rung decided; its bootstrap range spans the "
            "whole tested range)") in line["text"]
    (matrix,) = gate_matrix(summary)
    assert "only the largest rung decided" in matrix["rows"][0]["cells"][0]["main"]


def test_a_gate_resting_on_several_rungs_with_a_tight_range_has_no_caveat():
    g = _gate(rung_from="S-4", gate_params=121_062.0, ci_low=48_918.0, ci_high=193_398.0,
              rung_verdicts=["inconclusive", "inconclusive", "helps", "helps", "helps"])
    assert gate_caveat(g) == ""
    # a range from the bottom rung to 'above the range' spans the ladder even with three rungs helping
    assert gate_caveat({**g, "ci_low": 37_038.0, "ci_high": None}) == "its bootstrap range spans the whole tested range"
    assert gate_caveat(_gate(status="no_gate_in_range")) == ""


def test_gates_figure_keeps_labels_and_whiskers_inside_the_frame():
    rows = [
        {"task": "detection", "family": "mobilenetv3", "shift": "cross_dataset", "init": "imagenet_coco",
         "status": "gate", "gate_params": 328_582, "ci_low": None, "ci_high": None, "range_lo": 37_038, "range_hi": 838_222},
        {"task": "detection", "family": "mobilenetv3", "shift": "in_domain", "init": "imagenet",
         "status": "helps_everywhere", "gate_params": None, "ci_low": None, "ci_high": None,
         "range_lo": 37_038, "range_hi": 838_222},
        {"task": "classification", "family": "mobilenetv3", "shift": "cross_domain", "init": "imagenet",
         "status": "gate", "gate_params": 838_222, "ci_low": 0.0, "ci_high": 2e6, "range_lo": 37_038, "range_hi": 838_222},
        {"task": "classification", "family": "efficientnet_b0_with_a_very_long_family_name", "shift": "cross_domain",
         "init": "imagenet_coco_then_more", "status": "no_gate_in_range", "gate_params": None, "ci_low": 838_222,
         "ci_high": None, "range_lo": 37_038, "range_hi": 838_222},
    ]
    svg = gates_svg(pd.DataFrame(rows), title="Capacity gates")
    assert out_of_frame(svg) == []
    assert "helps at every tested capacity" in svg and "…" in svg  # the long label is cut to fit, not clipped


def test_frame_check_catches_a_clipped_label():
    svg = ('<svg viewBox="0 0 100 50"><text x="90" y="20" font-size="10" text-anchor="start">clipped</text>'
           '<line x1="0" y1="5" x2="120" y2="5"/></svg>')
    bad = out_of_frame(svg)
    assert len(bad) == 2 and "clipped" in bad[0] and "x 90.0..132.0" in bad[0]
