"""``capgate demo`` runs ONE fixed protocol: both grids and the adaptive rounds on every machine; its time
budget stops it (DemoStopped, exit 1, resumable) before a step, and never skips one."""

from __future__ import annotations

from pathlib import Path

import pytest

import capgate.grid.demo as demo
from capgate.grid.driver import GridResult


class Clock:
    """``time.monotonic`` that advances ``step`` seconds per call."""

    def __init__(self, step: float) -> None:
        self.t, self.step = 1000.0, step

    def __call__(self) -> float:
        self.t += self.step
        return self.t


@pytest.fixture()
def calls(monkeypatch) -> list[str]:
    seen: list[str] = []

    def fake_grid(spec, overrides, **kw):
        seen.append(f"grid {Path(spec).name}")
        return GridResult(Path(spec).stem, Path("t.parquet"), 4, 4, 0, {"ok": 4})

    def fake_loop(spec, overrides, **kw):
        seen.append(f"loop {Path(spec).name} max_rounds={kw['max_rounds']}")
        for _ in range(kw["max_rounds"] - 1):  # every round asks the hook; None means train it
            assert kw["before_round"](object(), object()) is None
            seen.append("round")
        return type("A", (), {"grid": None, "stop_line": lambda self: "stopped"})()

    monkeypatch.setattr(demo, "run_grid", fake_grid)
    monkeypatch.setattr("capgate.grid.adaptive.run_until_resolved", fake_loop)
    return seen


def test_the_demo_always_runs_both_grids_and_every_round(calls, monkeypatch) -> None:
    monkeypatch.setattr(demo.time, "monotonic", Clock(1.0))
    demo.run_demo(report=False, budget_min=15.0)
    assert calls == ["grid demo.yaml", "grid demo_classification.yaml", "loop demo.yaml max_rounds=2", "round"]


def test_a_demo_past_its_budget_stops_before_its_next_step_and_says_how_to_resume(calls, monkeypatch) -> None:
    monkeypatch.setattr(demo.time, "monotonic", Clock(200.0))  # 200 s per step: past 5 min at the second grid
    with pytest.raises(demo.DemoStopped) as err:
        demo.run_demo(report=False, budget_min=5.0)
    assert calls == ["grid demo.yaml"]
    msg = str(err.value)
    assert "past its time budget of 5 min, before the grid of demo_classification.yaml" in msg
    assert "rerun the same command to finish" in msg and "capgate demo --budget-min" in msg
    assert err.value.exit_code == 1


def test_the_budget_stops_before_an_adaptive_round_never_skips_it(calls, monkeypatch) -> None:
    monkeypatch.setattr(demo.time, "monotonic", Clock(100.0))  # grids at 100, 200 s, the loop at 300 s, its round at 400 s
    with pytest.raises(demo.DemoStopped, match="before an adaptive round of demo.yaml"):
        demo.run_demo(report=False, budget_min=6.0)
    assert calls[-1] == "loop demo.yaml max_rounds=2" and "round" not in calls
    monkeypatch.setattr(demo.time, "monotonic", Clock(100.0))
    calls.clear()
    demo.run_demo(report=False, budget_min=0)  # 0: no budget
    assert calls[-1] == "round"
