"""The report's benchmark section on the simulated benchmark of test_analysis_benchmark."""

from __future__ import annotations

from capgate.report import render_report
from test_analysis_benchmark import _table


def test_benchmark_section_states_tables_and_ranking_answers(tmp_path):
    html = render_report(_table(), tmp_path, {"n_boot": 200}).read_text(encoding="utf-8")
    assert '<section id="benchmark">' in html and '<a href="#benchmark">Benchmark</a>' in html
    sec = html[html.index('<section id="benchmark">'):html.index('<section id="rankings">')]
    # flip, imagenet, model c: rank 1, top-1 60.0 % with the interval 60.0 +/- 0.39, 3M params, 12 MB, 30 M MACs
    assert "<td>c</td><td>imagenet</td><td>1</td><td>60.0 [59.6, 60.4]</td><td>80.0 [79.6, 80.4]</td>" in sec
    assert "<td>12.00 MB</td><td>30.00 M</td><td>3.00</td><td>helps (+20.0 pp)</td>" in sec
    assert "<td>a</td><td>scratch</td><td>1</td>" in sec and "<td>baseline</td>" in sec
    assert "τ = -1.00 (same-init noise reference: median 1.00" in sec and "the ranking changes beyond seed noise" in sec
    assert "3 of 3 model pairs reverse, 3 of them with both orders held beyond seed noise" in sec
    assert "τ = 1.00 (same-init" in sec and "the ranking does not change beyond seed noise" in sec
    assert "0 of 3 model pairs reverse, 0 of them" in sec
    assert "MACs: multiply-accumulates" in sec and "flip: 5 seeds per model and initialization" in sec


def test_no_benchmark_section_without_standard_models(tmp_path):
    t = _table()
    t["family"] = "mobilenetv3"
    html = render_report(t, tmp_path, {"n_boot": 200}).read_text(encoding="utf-8")
    assert '<section id="benchmark">' not in html and '#benchmark' not in html
