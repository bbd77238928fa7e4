"""Regenerate the report golden (tests/golden/report/summary.json and gains.csv) from the current code.

    PYTHONPATH=. python tests/golden/make_report_golden.py

Run it only for an intended change of the report's numbers or verdicts, and say so in the commit.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from helpers import GOLDEN, golden_report  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        summary, gains = golden_report(Path(tmp))
    GOLDEN.mkdir(parents=True, exist_ok=True)
    (GOLDEN / "summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    gains.to_csv(GOLDEN / "gains.csv", index=False)
    print(f"wrote {GOLDEN / 'summary.json'} and {GOLDEN / 'gains.csv'} ({len(gains)} contrasts)")


if __name__ == "__main__":
    main()
