"""``capgate demo``: the embedded default studies end to end on the synthetic tiny world.

Detection (``experiments/demo.yaml``) then the classification slice
(``experiments/demo_classification.yaml``): world generation, pretraining stages, both grids,
the results tables, then one report over both studies in ``reports/demo/`` when the report
package is installed. Rerunning reuses everything already stored.

A demo spec with an ``adaptive`` section (the detection study) then gets the rounds of the
``--until-resolved`` loop (:mod:`capgate.grid.adaptive`): new seeds only for the run groups whose
verdicts are still open, at most ``adaptive.max_runs`` per round, judged with the plan's
group-sequential design.

ONE fixed protocol: the demo trains the same runs (every stage replicate, both grids, the adaptive
rounds up to the spec's ``max_rounds``) on every machine, fast or slow, so its answer rests on the same
runs everywhere. The time budget (``budget_min``, default :data:`DEFAULT_BUDGET_MIN`; 0: none) never
skips or changes a step: before each step that trains (each grid, each adaptive round) a demo already
past its budget stops with :class:`DemoStopped` (exit 1) saying where; everything trained is stored,
and the same command resumes where it stopped (an adaptive round is recorded before it trains).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from capgate._resources import shipped
from capgate.errors import GridError, SpecError
from capgate.grid.driver import GridResult, run_grid
from capgate.grid.plan import GridPlan, plan_grid

__all__ = ["DemoResult", "DemoStopped", "run_demo", "plan_demo", "demo_spec", "demo_plan", "DEMO_SPECS",
           "DEFAULT_BUDGET_MIN"]

log = logging.getLogger("capgate.grid")

DEMO_SPECS = ("demo.yaml", "demo_classification.yaml")
#: The demo's time budget in minutes: a demo past it stops (resumable) before its next step.
DEFAULT_BUDGET_MIN = 15.0


class DemoStopped(GridError):
    """The demo passed its time budget: it stopped before a step, with everything so far stored."""


def _deadline(t0: float, budget_min: float | None) -> Callable[[str], None]:
    """``check(step)``: raises :class:`DemoStopped` when the demo is past ``budget_min`` before ``step``."""
    def check(step: str) -> None:
        spent = time.monotonic() - t0
        if budget_min and spent > budget_min * 60:
            raise DemoStopped(f"the demo stopped after {spent / 60:.1f} min, past its time budget of {budget_min:g} "
                              f"min, before {step}; everything trained so far is stored: rerun the same command to "
                              "finish (nothing trains twice), or give more time with capgate demo --budget-min")
    return check


def demo_spec(name: str) -> Path:
    """A demo spec shipped with capgate (``experiments/`` of the checkout or of the wheel)."""
    path = shipped("experiments") / name
    if not path.is_file():
        raise SpecError(f"demo spec {name} is missing from {path.parent}; reinstall capgate")
    return path


def demo_plan() -> Path | None:
    """The demo's analysis plan shipped with capgate (``analysis/demo.yaml``), if present."""
    path = shipped("analysis") / "demo.yaml"
    return path if path.is_file() else None


def plan_demo(classification: bool = True, overrides: tuple[str, ...] = ()) -> list[GridPlan]:
    """The demo studies planned, nothing started (``capgate demo --dry-run``)."""
    names = DEMO_SPECS if classification else DEMO_SPECS[:1]
    return [plan_grid(demo_spec(name), overrides) for name in names]


@dataclass
class DemoResult:
    """The grids' results and the report's index (None when no report was rendered)."""

    grids: list[GridResult] = field(default_factory=list)
    report: Path | None = None
    wall_seconds: float = 0.0
    adaptive: list[Any] = field(default_factory=list)  # AdaptiveResult per adaptive study

    def summary(self) -> str:
        lines = [g.summary() for g in self.grids]
        lines += [a.stop_line() for a in self.adaptive]  # each round's line was logged as it ran
        if self.report is not None:
            lines.append(f"report: {self.report}")
        lines.append(f"demo finished in {self.wall_seconds / 60:.1f} min")
        return "\n".join(lines)


def run_demo(storage: str | Path | None = None, outdir: str | Path = "reports/demo",
             classification: bool = True, report: bool = True, overrides: tuple[str, ...] = (),
             max_concurrent: int | None = None, budget_min: float | None = DEFAULT_BUDGET_MIN) -> DemoResult:
    """Run the demo's fixed protocol (both grids, then the adaptive rounds) and render its report; a demo
    past ``budget_min`` raises :class:`DemoStopped` before its next step; failed runs raise after the report."""
    from capgate.spec.load import load_study

    t0 = time.monotonic()
    check = _deadline(t0, budget_min)
    out = DemoResult()
    names = DEMO_SPECS if classification else DEMO_SPECS[:1]
    failures = []
    for name in names:  # the fixed grids first: every study has its first look before any round
        check(f"the grid of {name}")
        res = run_grid(demo_spec(name), overrides, storage=storage, max_concurrent=max_concurrent,
                       raise_on_failure=False)
        out.grids.append(res)
        failures += res.failed
    for name in names:
        settings = load_study(demo_spec(name), overrides).adaptive
        if settings is None:
            continue
        from capgate.grid.adaptive import adaptive_settings, run_until_resolved

        check(f"the adaptive rounds of {name}")
        res_a = run_until_resolved(demo_spec(name), overrides, **adaptive_settings(settings), storage=storage,
                                   max_concurrent=max_concurrent, echo=log.info,
                                   before_round=lambda advice, table, n=name: check(f"an adaptive round of {n}"))
        out.adaptive.append(res_a)  # its table is the study's results.parquet, as out.grids[i].table says
        failures += [f for f in (res_a.grid.failed if res_a.grid is not None else []) if f not in failures]
    if report:  # the report changes no run: it renders even past the budget
        try:
            from capgate.report import render_report
        except ImportError:
            log.warning("capgate.report is not available; the demo ends at the results tables")
        else:
            plan = demo_plan()
            inputs: Any = [str(g.table) for g in out.grids]
            if not all(isinstance(g.table, Path) for g in out.grids):  # tables on object storage
                import pandas as pd

                from capgate.analysis import load_results

                inputs = pd.concat([load_results(t) for t in inputs], ignore_index=True, sort=False)
            out.report = Path(render_report(inputs, str(outdir), plan=str(plan) if plan else None))
    out.wall_seconds = time.monotonic() - t0  # the summary says it ("demo finished in"), once
    if failures:
        raise GridError(f"{len(failures)} demo runs failed (recorded; rerun `capgate demo` to retry): "
                        + "; ".join(f"{rid}: {err.strip().splitlines()[0][:200]}" for rid, err in failures[:10]))
    return out
