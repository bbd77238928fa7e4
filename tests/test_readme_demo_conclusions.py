"""The README's demo conclusions are written from the committed baseline's verdicts, never by hand:
the block between the markers is :func:`capgate.report.paper.conclusions_markdown` of
``reports/baselines/demo.json`` (regenerate it from the failure message after a new baseline)."""

from __future__ import annotations

import json
from pathlib import Path

from capgate.report.paper import conclusions_markdown

REPO = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- demo-conclusions:begin -->\n", "\n<!-- demo-conclusions:end -->"


def test_readme_demo_conclusions_are_the_baselines() -> None:
    readme = (REPO / "README.md").read_text()
    assert BEGIN in readme and END in readme, "README.md lacks the demo-conclusions markers"
    stated = readme.split(BEGIN, 1)[1].split(END, 1)[0]
    expected = conclusions_markdown(json.loads((REPO / "reports" / "baselines" / "demo.json").read_text()))
    assert stated == expected, f"replace the README's demo-conclusions block with:\n{expected}"


def test_conclusions_group_decided_verdicts_by_init_and_shift() -> None:
    row = {"task": "detection", "init": "imagenet", "shift": "cross_dataset", "eval_set": "flir/rgb",
           "params": 5e4, "backbone": "net@w0.1 (S-6)", "gain": 0.051, "verdict": "helps"}
    text = conclusions_markdown({"verdicts": [row, {**row, "verdict": "inconclusive", "backbone": "net (S-4)"}]})
    assert text == ("- **detection**: 1 of 2 contrasts decided: 1 helps; 1 inconclusive\n"
                    "  - `imagenet` helps cross-dataset: S-6 +5.1 pp")
