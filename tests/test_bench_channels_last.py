"""benchmarks/channels_last.py runs from the command line and prints one row per rung and model with both
step times and their ratio (the README's channels_last figures come from it)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_channels_last_benchmark_prints_both_formats_and_their_ratio() -> None:
    out = subprocess.run([sys.executable, "benchmarks/channels_last.py", "--rungs", "S-6", "--rounds", "1",
                          "--steps", "1"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [ln.split() for ln in out.stdout.splitlines() if ln.startswith("S-6 ")]
    assert [r[1] for r in rows] == ["classifier", "FCOS"]
    for r in rows:
        nchw, cl, ratio = map(float, r[-3:])
        assert nchw > 0 and cl > 0 and abs(ratio - cl / nchw) < 0.002  # ratio of the printed (rounded) times
    assert re.search(r"median of 1 alternating rounds of 1 steps", out.stdout)
