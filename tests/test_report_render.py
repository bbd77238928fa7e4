"""``capgate report`` end to end: files that parse and agree, sections, escaping, self-containment,
the combined detection + classification report, and templates inside a built wheel."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from capgate.cli import main
from capgate.report import render_report
from helpers import FAST_PLAN, classification_truth, detection_truth, write_table

SECTIONS = ("headline", "gains", "forest", "gates", "diagnostics", "rankings", "efficiency", "completeness",
            "methods", "provenance")
EVIL = "<script>alert('x')</script>"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("report")
    det = write_table(d / "det.parquet", detection_truth(), seed=0)
    plan = d / "plan.yaml"
    plan.write_text("n_boot: 40\nexpectations:\n  - {init: imagenet, shift: cross_dataset, min_params: 400000, verdict: helps}\n")
    with pytest.raises(SystemExit) as exc:
        main(["report", str(det), "--plan", str(plan), "-o", str(d / "out")])
    assert exc.value.code == 0
    return d / "out"


def test_writes_all_files_that_parse(report: Path) -> None:
    assert sorted(p.name for p in report.iterdir()) == [
        "figures", "gains.csv", "index.html", "model.json", "model_frame.csv", "sentences.md", "summary.json", "tables"]
    assert sorted(p.name for p in (report / "tables").iterdir()) == ["cells.md", "cells.tex", "verdicts.md",
                                                                     "verdicts.tex"]
    model = json.loads((report / "model.json").read_text())
    assert [m["name"] for m in model["models"]] == ["detection"]
    assert pd.read_csv(report / "model_frame.csv")["model"].unique().tolist() == ["detection"]


def test_gains_csv_agrees_with_summary_and_index(report: Path) -> None:
    summary = json.loads((report / "summary.json").read_text())
    gains = pd.read_csv(report / "gains.csv")
    verdicts = {v["key"]: v["verdict"] for v in summary["verdicts"]}
    assert len(gains) == len(verdicts) == 8
    assert dict(zip(gains["key"], gains["verdict"])) == verdicts
    page = (report / "index.html").read_text()
    for cell in summary["cells"]:
        assert f'data-key="{html.escape(cell["key"])}"' in page
    # the verdict map shows each contrast's verdict once: 8 cells coloured by verdict
    assert len(re.findall(r'<td class="v v-(helps|hurts|within_noise|inconclusive)"', page)) == 8
    helps = sum(v == "helps" for v in verdicts.values())
    assert helps >= 2  # the two big rungs cross-dataset
    assert page.count('<td class="v v-helps"') == helps


def test_page_has_every_section_and_accessible_figures(report: Path) -> None:
    page = (report / "index.html").read_text()
    for sid in SECTIONS:
        assert f'<section id="{sid}">' in page
    svgs = re.findall(r"<svg [^>]*>", page)
    assert len(svgs) >= 6  # gains, forest, gates, rankings (2), Pareto (>= 2)
    for tag in svgs:
        assert 'role="img"' in tag and "aria-label=" in tag
    assert page.count("<figure") == page.count("<figcaption>")
    assert len(re.findall(r"<svg [^>]*><title>[^<]+</title>", page)) == len(svgs)
    assert "1/1 expectations hold" in page and "statsmodels: <code>" in page and "lme4: <code>" in page


def test_page_is_self_contained(report: Path) -> None:
    page = (report / "index.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert not re.search(r"@import|url\(\s*['\"]?https?:", page, re.I)
    assert "<script" not in page.lower() and "<link" not in page.lower() and "<img" not in page.lower()
    assert "default-src 'none'" in page  # the CSP blocks any fetch a future edit might add


def test_user_strings_are_escaped(tmp_path: Path) -> None:
    truth = detection_truth(families={"efficientnet_b0": [
        (f"evil{EVIL}@w0.25", 100_000), ("evil@w0.35", 200_000), ("evil@w0.5", 400_000), ("evil@w1.0", 800_000)]})
    index = render_report(write_table(tmp_path / "evil.parquet", truth), tmp_path / "out", plan=FAST_PLAN)
    page = index.read_text()
    assert "<script" not in page
    assert "evil&lt;script&gt;alert(" in page  # escaped in tables and SVG text alike
    assert page.count("evil&lt;script&gt;") >= 5


def test_combined_report_compares_the_two_tasks_gates(tmp_path: Path) -> None:
    det = write_table(tmp_path / "det.parquet", detection_truth(), seed=0)
    cls = write_table(tmp_path / "cls.parquet", classification_truth(), seed=0)
    index = render_report([det, cls], tmp_path / "both", plan=FAST_PLAN)
    summary = json.loads((tmp_path / "both" / "summary.json").read_text())
    assert summary["tasks"] == ["classification", "detection"] and summary["studies"] == ["cls", "det"]
    page = html.unescape(index.read_text())
    assert '<section id="cross-task">' in page
    assert "Does classification mirror detection's gating?" in page
    m = re.search(r"Of (\d+) comparable \(family, initialization, shift\) pairs, classification mirrors "
                  r"detection's gating in (\d+), differs in (\d+), and (\d+) cannot be decided yet\.", page)
    assert m is not None
    # in_domain pairs with in_domain, cross_dataset with cross_domain; the same truth: both mirror
    assert tuple(map(int, m.groups())) == (2, 2, 0, 0)
    assert re.search(r"<td>cross_dataset</td><td>helps from [^<]+</td>\s*<td>classification \(cross_domain\)</td>"
                     r"<td>helps from [^<]+</td>\s*<td><span class=\"chip a-mirrors\">mirrors</span></td>"
                     r"<td>both: gate, gate intervals overlap</td>", page)
    assert "Classification · evaluated on sketch" in page and "Detection · evaluated on flir/rgb" in page


def test_unusable_results_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["report", str(tmp_path / "none.parquet"), "-o", str(tmp_path / "o")])
    assert exc.value.code == 2
    assert capsys.readouterr().err == (f"Error: {tmp_path / 'none.parquet'}: results not found; pass a results "
                                       "table (parquet or CSV) or a study folder\n")


# The wheel (templates, specs and plans inside it) is tested in tests/test_packaging.py.


def test_report_and_check_never_import_torch_or_ray(tmp_path: Path) -> None:
    det = write_table(tmp_path / "det.parquet", detection_truth())
    code = (
        "import sys\n"
        "from capgate.report import render_report\n"
        "from capgate.check import run_check\n"
        f"render_report({str(det)!r}, {str(tmp_path / 'out')!r}, plan={{'n_boot': 20}})\n"
        f"run_check({str(det)!r}, {str(tmp_path / 'b.json')!r}, {{'n_boot': 20}}, update_baseline=True)\n"
        "print(sorted(m for m in ('torch', 'torchvision', 'timm', 'ray') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"
