"""Paper-ready output: per-figure SVG files, cell and verdict tables as Markdown and LaTeX (compiled
with pdflatex when present; CAPGATE_REQUIRE_LATEX=1 makes a missing pdflatex a failure), reporting
sentences in the page and sentences.md, and the verdict tally that ``capgate report`` prints."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from markupsafe import escape
from click.testing import CliRunner

from capgate.analysis import simulate_results
from capgate.cli import cli
from capgate.report.paper import reporting_sentences, to_latex, to_markdown, verdict_tally
from svgcheck import figures
from helpers import detection_truth


def _verdict(verdict: str, **kw) -> dict:
    v = {"key": "k", "study": "s", "task": "detection", "family": "mobilenetv3",
         "backbone": "mobilenetv3_large@w0.35d0.5 (S-2)", "params": 328_582.0, "train_set": "llvip/rgb",
         "eval_set": "flir/rgb", "shift": "cross_dataset", "init": "imagenet", "baseline": "scratch", "gain": 0.108,
         "ci_low": 0.034, "ci_high": 0.182, "pairing": "paired", "n_pairs": 8, "margin": 0.01, "p_adj": 0.0123,
         "p_tost_adj": 1.0, "verdict": verdict, "seeds_needed": None}
    v.update(kw)
    return v


def test_tally_and_sentence_by_hand():
    summary = {"plan": {"alpha": 0.05, "correction": "holm"}, "metric": {"detection": "map"},
               "verdicts": [_verdict("helps"), _verdict("within_noise", gain=0.001, ci_low=-0.004, ci_high=0.006,
                                                         p_adj=1.0, p_tost_adj=0.0004),
                            _verdict("inconclusive", seeds_needed=16), _verdict("inconclusive", seeds_needed=30)]}
    assert verdict_tally(summary) == "2 of 4 contrasts decided: 1 helps, 1 within_noise; 2 inconclusive"
    helps, within = reporting_sentences(summary)
    assert helps["text"] == (
        "In detection, mobilenetv3 S-2 (329k params), llvip/rgb → flir/rgb (cross dataset), imagenet changed mAP by "
        "+10.8 pp over scratch (95 % CI +3.4 to +18.2 pp; 8 paired seeds per arm); Holm-adjusted p = 0.012 over 4 "
        "contrasts, beyond the ±1.0 pp margin: pretraining helps.")
    assert within["text"].endswith("+0.1 pp over scratch (95 % CI -0.4 to +0.6 pp; 8 paired seeds per arm); "
                                   "equivalence within ±1.0 pp shown by TOST, Holm-adjusted p < 0.001 over 4 "
                                   "contrasts: the difference is within run-to-run noise.")


def test_tables_escape_their_cells():
    header, rows = ["init", "gain (pp)"], [["in1k_coco & 50%", "+1.0"], ["a|b", "-2.5"]]
    assert to_markdown(header, rows).splitlines()[3] == "| a\\|b | -2.5 |"
    tex = to_latex(header, rows, caption="x", label="tab:x")
    assert r"in1k\_coco \& 50\% & +1.0 \\" in tex and r"\begin{tabular}{lr}" in tex and r"\toprule" in tex


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("exports")
    simulate_results(detection_truth(), seed=3).to_csv(root / "results.csv", index=False)
    r = CliRunner().invoke(cli, ["report", str(root / "results.csv"), "-o", str(root / "rep")])
    assert r.exit_code == 0, r.output
    return root / "rep", r.output


def test_report_prints_the_tally_and_writes_the_exports(report):
    out, output = report
    page = (out / "index.html").read_text()
    tally = re.search(r'<p class="tally"><strong>([^<]*)</strong>', page).group(1)
    assert output.splitlines()[-1] == tally
    assert re.fullmatch(r"\d+ of 8 contrasts decided(: .*)?; \d+ inconclusive", tally)
    svgs = sorted((out / "figures").glob("*.svg"))
    assert len(svgs) == len(figures(page)) >= 3
    for f in svgs:
        root = ET.parse(f).getroot()
        assert root.tag == "{http://www.w3.org/2000/svg}svg" and root.get("viewBox")
    verdict_rows = (out / "tables" / "verdicts.md").read_text().splitlines()
    assert len(verdict_rows) == 2 + 8  # header, rule, 4 rungs x 2 eval sets
    assert len((out / "tables" / "cells.md").read_text().splitlines()) == 2 + 16  # x 2 inits
    sentences = [line for line in (out / "sentences.md").read_text().splitlines() if line.startswith("- In ")]
    decided = int(tally.split(" of ")[0])
    assert decided >= 1 and len(sentences) == decided
    for s in sentences:
        assert str(escape(s[2:])) in page


def test_latex_tables_compile(report, tmp_path):
    if shutil.which("pdflatex") is None:
        if os.environ.get("CAPGATE_REQUIRE_LATEX"):
            pytest.fail("pdflatex is required (CAPGATE_REQUIRE_LATEX=1): apt-get install -y texlive-latex-base "
                        "texlive-latex-recommended")
        pytest.skip("pdflatex not installed (apt-get install -y texlive-latex-base texlive-latex-recommended)")
    out, _ = report
    doc = "\n".join([r"\documentclass{article}", r"\usepackage[T1]{fontenc}", r"\usepackage[utf8]{inputenc}",
                     r"\usepackage{booktabs}", r"\usepackage[margin=1cm,landscape]{geometry}", r"\begin{document}",
                     (out / "tables" / "cells.tex").read_text(), (out / "tables" / "verdicts.tex").read_text(),
                     r"\end{document}", ""])
    (tmp_path / "t.tex").write_text(doc)
    r = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:]
    assert (tmp_path / "t.pdf").stat().st_size > 1000
