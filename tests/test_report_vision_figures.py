"""The figures a vision engineer looks for first, checked by their structure on simulated studies:
metric vs parameters (log x, one line per init, every seed, each cell's interval, no line across eval
sets), gains lines per eval set, forest labels that differ where rows differ, the verdict map's
printed intervals and seeds, and a headline that never contradicts the verdicts and gates."""

from __future__ import annotations

import copy
import html
import math
import re
import xml.etree.ElementTree as ET
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from capgate.analysis import analyze, simulate_results
from capgate.cli import cli
from capgate.report.fig_gains import forest_labels, forest_svg, gains_vs_capacity_svg
from capgate.report.fig_metric import cell_interval, metric_figures
from capgate.report.headline import headline_sentences, map_legend, seeds_words, verdict_maps
from capgate.report.render import render_html
from helpers import FAST_PLAN, classification_truth, detection_truth, hand_summary, write_table

SVG = ""  # the inline SVG carries no namespace


def _two_family_truth() -> dict:
    """Two families of three rungs, three inits, in-domain + cross-dataset, 3 seeds, some failures."""
    return detection_truth(
        families={"efficientnet": [("effnet@w0.25 (B-3)", 100_000), ("effnet@w0.5 (B-2)", 200_000),
                                   ("effnet@w1.0 (B-1)", 400_000)],
                  "mobilenetv3": [("mbv3@w0.25 (S-3)", 120_000), ("mbv3@w0.5 (S-2)", 240_000),
                                  ("mbv3@w1.0 (S-1)", 480_000)]},
        inits=("scratch", "imagenet", "imagenet_coco"), p_failed=0.08)


@pytest.fixture(scope="module")
def sim() -> tuple[pd.DataFrame, object]:
    table = simulate_results(_two_family_truth(), seed=3)
    return table, analyze(table, FAST_PLAN)


def _svg(fig: dict) -> ET.Element:
    return ET.fromstring(str(fig["svg"]))


def _cls(root: ET.Element, name: str) -> list[ET.Element]:
    return [e for e in root.iter() if e.get("class") == name]


def test_cell_interval_is_t_on_the_stabilised_df() -> None:
    lo, hi = cell_interval(0.5, 0.01, 4)
    assert (lo, hi) == pytest.approx((0.5 - 2.7764451 * 0.01, 0.5 + 2.7764451 * 0.01))
    assert cell_interval(0.5, 0.01, float("inf")) == pytest.approx((0.5 - 0.0195996, 0.5 + 0.0195996))
    assert all(math.isnan(v) for v in cell_interval(0.5, float("nan"), 4))  # one seed: no interval


def test_metric_figure_shows_every_seed_every_cell_and_its_interval(sim) -> None:
    table, a = sim
    (fig,) = metric_figures(a.cells, a.model_frames, a.plan.metric)
    root = _svg(fig)
    assert root.get("role") == "img" and root.get("aria-label") == fig["title"] and root.find(f"{SVG}desc") is not None
    ok = table[(table["status"] == "ok") & np.isfinite(table["map"].astype(float))]
    assert (table["status"] != "ok").any()  # the failed runs are not drawn as seeds
    assert len(_cls(root, "seed")) == len(ok)  # every ok run x eval set, one dot each
    cells = a.cells[a.cells["n_ok"] > 0]
    assert len(_cls(root, "cell-mean")) == len(cells)
    assert len(_cls(root, "cell-ci")) == int((cells["n_ok"] >= 2).sum())
    facets = _cls(root, "facet")
    assert len(facets) == 2 * 2  # (family x train set) rows x eval sets
    for g in facets:
        lines = [e for e in g.iter() if e.get("class") == "init-line"]
        assert sorted(e.get("data-init") for e in lines) == ["imagenet", "imagenet_coco", "scratch"]
        for e in lines:  # a line stays inside its eval set's panel and joins that family's three rungs
            assert (e.get("data-eval"), e.get("data-family")) == (g.get("data-eval"), g.get("data-family"))
            assert len(e.get("points").split()) == 3
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "parameters (log scale)" in texts and "100k" in texts


def test_metric_figure_x_axis_is_logarithmic(sim) -> None:
    _, a = sim
    (fig,) = metric_figures(a.cells, a.model_frames, a.plan.metric)
    g = _cls(_svg(fig), "facet")[0]
    marks = [e for e in g.iter() if e.get("class") == "cell-mean"]
    xs = sorted({round(float(e.get("cx")), 1) for e in marks})
    scratch = xs[:: 3] if len(xs) == 9 else None
    assert scratch is not None, xs  # three inits x three rungs, each at its own x
    # the rungs double in params: equal steps on a log axis (inits are dodged by a constant factor)
    assert scratch[1] - scratch[0] == pytest.approx(scratch[2] - scratch[1], abs=0.3)


def test_gains_lines_never_join_two_eval_sets_and_name_each_domain() -> None:
    rows = []
    for i in range(3):
        for train in ("real", "sketch"):
            evals = [(train, "in_domain")] + [(e, "cross_domain") for e in ("real", "sketch", "clipart") if e != train]
            for ev, shift in evals:
                rows.append({"task": "classification", "family": "f", "backbone": f"f@w{i}", "params": 1e5 * 2**i,
                             "train_set": train, "eval_set": ev, "shift": shift, "init": "imagenet",
                             "baseline": "scratch", "metric": "top1", "gain": 0.01 * i, "ci_low": -0.01,
                             "ci_high": 0.03, "margin": 0.01, "sd_pooled": 0.01, "verdict": "inconclusive"})
    root = ET.fromstring(gains_vs_capacity_svg(pd.DataFrame(rows), title="g"))
    lines = _cls(root, "gain-line")
    pairs = {(r["train_set"], r["eval_set"]) for r in rows}
    assert sorted((e.get("data-train"), e.get("data-eval")) for e in lines) == sorted(pairs)
    assert all(len(e.get("points").split()) == 3 for e in lines)  # three rungs of one eval set, nothing else
    texts = {t.text for t in root.iter(f"{SVG}text")}
    assert {"eval on real", "eval on sketch", "eval on clipart", "trained on real", "trained on sketch"} <= texts
    colours = {e.get("data-eval"): e.get("stroke") for e in lines}
    assert len(set(colours.values())) == 3  # one colour per eval domain


def test_forest_labels_differ_where_rows_differ(sim) -> None:
    _, a = sim
    root = ET.fromstring(forest_svg(a.gains, title="f"))
    labels = [(e.get("class"), e.text) for e in root.iter(f"{SVG}text") if e.get("class") in ("group-label", "row-label")]
    keyed, group = [], None
    for kind, text in labels:
        if kind == "group-label":
            group = text
        else:
            keyed.append((group, text))
    assert len(keyed) == len(a.gains)
    assert len(set(keyed)) == len(keyed), [k for k, n in Counter(keyed).items() if n > 1]
    assert ("detection · efficientnet · imagenet vs scratch", "B-1 (400k) · llvip/rgb → flir/rgb") in keyed
    # two studies with the very same cells: the study is named only where it is needed
    twin = pd.concat([a.gains, a.gains.assign(study="other")], ignore_index=True)
    groups, rows = forest_labels(twin)
    assert len(set(zip(groups, rows))) == len(twin) and groups[0].startswith("det · ")


def test_forest_labels_fall_back_to_the_full_backbone() -> None:
    df = pd.DataFrame([{"task": "t", "family": "f", "backbone": b, "params": 1e5, "train_set": "a", "eval_set": "a",
                        "shift": "in_domain", "init": "i", "baseline": "s", "study": "x", "metric": "map"}
                       for b in ("arch1@w0.5 (R-1)", "arch2@w0.5 (R-1)")])
    _, rows = forest_labels(df)
    assert rows == ["R-1 (100k) · a → a · backbone arch1@w0.5 (R-1)", "R-1 (100k) · a → a · backbone arch2@w0.5 (R-1)"]


def _summary_with(verdicts: list[str], gates: list[dict]) -> dict:
    s = copy.deepcopy(hand_summary())
    base = s["verdicts"][0]
    s["verdicts"] = [{**base, "key": f"k{i}", "backbone": f"mbv3@w{i}", "verdict": v,
                      "seeds_needed": 12 if v == "inconclusive" else None} for i, v in enumerate(verdicts)]
    s["gates"] = gates
    return s


def _gate(status: str, **kw) -> dict:
    return {"key": f"g|{status}", "task": "detection", "family": "mbv3", "shift": kw.pop("shift", "cross_dataset"),
            "init": "imagenet", "status": status, "gate_params": None, "rung_from": None, **kw}


def test_headline_all_inconclusive_says_nothing_is_decided() -> None:
    (h,) = headline_sentences(_summary_with(["inconclusive"] * 3, [_gate("no_gate_in_range")]))
    assert h["decided"] == 0
    assert "no contrast decided: all 3 inconclusive (about 12 seeds per arm would resolve the median one)" in h["text"]
    assert "helps in" not in h["text"] and "upward" not in h["text"] and "no capacity gate" in h["text"]


def test_seeds_needed_at_the_plan_cap_reads_as_that_many_or_more() -> None:
    s = _summary_with(["inconclusive"] * 3, [_gate("no_gate_in_range")])
    s["plan"] = {**s.get("plan", {}), "max_seeds": 12, "alpha": 0.05, "correction": "holm",
                 "sequential": {"max_seeds": 5, "schedule": [3, 5], "spending": "pocock"}}
    assert seeds_words(7, s["plan"]) == "~7 seeds" and seeds_words(12, s["plan"]) == "≥12 seeds"
    assert seeds_words(None, s["plan"]) == ""
    assert seeds_words(7, s["plan"], prose=True) == "about 7 seeds"
    assert seeds_words(12, s["plan"], prose=True) == "12 or more seeds"
    (h,) = headline_sentences(s)
    assert "(12 or more seeds per arm would resolve the median one)" in h["text"]
    cells = [c for m in verdict_maps(s) for t in m["tables"] for r in t["rows"] for c in r["cells"] if c]
    assert cells and all(c["seeds"] == "≥12 seeds" for c in cells)
    # more seeds than the sequential design's last look: the tooltip says this plan cannot decide it
    assert all("12 or more seeds per arm would resolve it — more than this plan's sequential design allows "
               "(5 per arm)" in c["tip"] for c in cells)
    legend = map_legend(s)
    assert "95 % repeated (group-sequential) interval for that cell alone" in legend
    assert "(≥12: the plan's cap, that many or more)" in legend and "not adjusted for the 3 contrasts" in legend
    assert "Holm-adjusted" in legend and "unadjusted" in map_legend({**s, "plan": {**s["plan"], "correction": "none"}})


def test_headline_counts_helps_and_names_the_gate() -> None:
    gates = [_gate("gate", rung_from="R-1", gate_params=250_000.0), _gate("no_gate_in_range", shift="in_domain")]
    (h,) = headline_sentences(_summary_with(["helps", "helps", "within_noise", "inconclusive"], gates))
    assert h["text"] == ("Detection (mAP): imagenet vs scratch — of 4 contrasts, 3 decided: helps in 2, is within "
                         "noise in 1; 1 inconclusive; capacity gate — mbv3 cross_dataset: helps from R-1 (250k params) "
                         "upward (of the other 1 family × shift row: no gate in 1).")


def test_headline_never_words_an_undetermined_gate_as_a_benefit() -> None:
    (h,) = headline_sentences(_summary_with(["hurts", "inconclusive"], [_gate("undetermined")]))
    assert "hurts in 1" in h["text"] and "helps" not in h["text"]
    assert h["text"].endswith("capacity gate undetermined in 1 family × shift row.")
    (h,) = headline_sentences(_summary_with(["helps"], [_gate("helps_everywhere")]))
    assert h["text"].endswith("capacity gate — mbv3 cross_dataset: helps at every tested size.")


def test_rendered_page_puts_the_metric_figure_first_and_prints_intervals_and_seeds(sim) -> None:
    _, a = sim
    page = render_html(a, generated_at="t")
    assert page.index('<section id="metric">') < page.index('<section id="gains">')
    assert page.count('class="seed"') == sum(len(f) for f in a.model_frames.values())
    # the verdict map prints each contrast's interval and seeds-needed as text, not only in a tooltip
    cells = re.findall(r'<td class="v v-(\w+)" title="[^"]*">(.*?)</td>', page, flags=re.S)
    assert cells and all(re.search(r'<span class="g">\[[-+][\d.]+, [-+][\d.]+\] pp</span>', body) for _, body in cells)
    undecided = [body for v, body in cells if v == "inconclusive"]
    assert undecided and all(re.search(r"(~|≥)\d+ seeds", body) for body in undecided)
    # and says under the colours what those numbers are (a per-cell interval, not Holm-adjusted)
    assert "interval for that cell alone" in page and "not adjusted for the" in page
    heads = re.findall(r"<li>(.*?)</li>", page.split('<ul class="headline">')[1].split("</ul>")[0], flags=re.S)
    assert len(heads) == 2 and all("vs scratch" in html.unescape(h) for h in heads)


def test_cli_report_of_two_tasks_has_one_metric_figure_each(tmp_path) -> None:
    det = write_table(tmp_path / "det.parquet", detection_truth(), seed=0)
    cls = write_table(tmp_path / "cls.parquet", classification_truth(), seed=1)
    res = CliRunner().invoke(cli, ["report", str(det), str(cls), "-o", str(tmp_path / "out"), "--plan",
                                   str(_plan(tmp_path))])
    assert res.exit_code == 0, res.output
    page = (tmp_path / "out" / "index.html").read_text()
    section = page.split('<section id="metric">')[1].split("</section>")[0]
    assert section.count("<figure") == 2 and "top-1 against parameters" in section and "mAP against parameters" in section


def _plan(tmp_path):
    p = tmp_path / "plan.yaml"
    p.write_text("n_boot: 40\n")
    return p


def test_metric_figure_rings_outlier_runs() -> None:
    table = simulate_results(detection_truth(seeds=5), seed=0)
    ok = table[table["status"] == "ok"]
    victim = ok[(ok["init"] == "scratch") & (ok["eval_set"] == "llvip/rgb")].iloc[0]
    table.loc[(table["run_id"] == victim["run_id"]) & (table["eval_set"] == "llvip/rgb"), "map"] = 0.001  # a collapse
    a = analyze(table, FAST_PLAN)
    assert list(a.outlier_runs["run_id"]) == [victim["run_id"]]
    (fig,) = metric_figures(a.cells, a.model_frames, a.plan.metric, a.outlier_runs)
    rings = [e for e in _cls(_svg(fig), "seed") if e.get("data-outlier") == "1"]
    assert len(rings) == 1 and victim["run_id"] in rings[0].find("title").text
    assert "red ring marks the one seed" in fig["caption"]
