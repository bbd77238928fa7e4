"""``capgate demo``: the embedded default studies end to end on the synthetic tiny world.

Detection (``experiments/demo.yaml``) then the classification slice
(``experiments/demo_classification.yaml``): world generation, pretraining stages, both grids,
the results tables, then one report over both studies in ``reports/demo/`` when the report
package is installed. Rerunning reuses everything already stored.

A demo spec with an ``adaptive`` section (the detection study) then gets the rounds of the
``--until-resolved`` loop (:mod:`capgate.grid.adaptive`): new seeds only for the run groups whose
verdicts are still open, at most ``adaptive.max_runs`` per round, judged with the plan's
group-sequential design. A round runs only when the time budget allows (``budget_min``, default
:data:`DEFAULT_BUDGET_MIN`): its runs' time is projected from the same groups' measured run times, and
a round that would end the demo past the budget is skipped (and says so). A round already recorded
by an interrupted demo always finishes, so a rerun reaches the same table.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from capgate._resources import shipped
from capgate.errors import SpecError
from capgate.grid.driver import GridResult, run_grid
from capgate.grid.plan import GridPlan, plan_grid

__all__ = ["DemoResult", "run_demo", "plan_demo", "demo_spec", "demo_plan", "DEMO_SPECS", "DEFAULT_BUDGET_MIN"]

log = logging.getLogger("capgate.grid")

DEMO_SPECS = ("demo.yaml", "demo_classification.yaml")
#: The demo's time budget in minutes: an adaptive round that would end the demo later is skipped.
DEFAULT_BUDGET_MIN = 15.0
#: Seconds a round costs besides its runs (Ray start, the workers' imports) when no grid of this demo
#: trained anything to measure it from, and the report's seconds (it renders after the round).
_ROUND_OVERHEAD_S = 15.0
_REPORT_S = 25.0


def _round_overhead(grids: list[GridResult]) -> float:
    """Seconds a grid invocation spent outside its stages and trials (Ray start, storage probe, world
    check, collecting the table): the smallest measured by this demo's grids that trained runs (the
    first one also generated the world), else :data:`_ROUND_OVERHEAD_S`."""
    spent = [g.wall_seconds - g.stage_seconds - g.trials_wall_seconds for g in grids if g.n_trained]
    return max(0.0, min(spent)) if spent else _ROUND_OVERHEAD_S


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
        lines += [a.loop_lines()[-1] for a in self.adaptive]  # each round's line was logged as it ran
        if self.report is not None:
            lines.append(f"report: {self.report}")
        lines.append(f"demo finished in {self.wall_seconds / 60:.1f} min")
        return "\n".join(lines)


def run_demo(storage: str | Path | None = None, outdir: str | Path = "reports/demo",
             classification: bool = True, report: bool = True, overrides: tuple[str, ...] = (),
             max_concurrent: int | None = None, budget_min: float = DEFAULT_BUDGET_MIN) -> DemoResult:
    """Run the demo studies (and the adaptive rounds the time budget allows) and render their report;
    failed runs raise after the report."""
    from capgate.spec.load import load_study

    t0 = time.monotonic()
    out = DemoResult()
    names = DEMO_SPECS if classification else DEMO_SPECS[:1]
    failures = []
    for name in names:  # the fixed grids first: every study has its first look before any round
        res = run_grid(demo_spec(name), overrides, storage=storage, max_concurrent=max_concurrent,
                       raise_on_failure=False)
        out.grids.append(res)
        failures += res.failed
    for i, name in enumerate(names):
        settings = load_study(demo_spec(name), overrides).adaptive
        if settings is None:
            continue
        from capgate.grid.adaptive import adaptive_settings, run_until_resolved

        slots = max(out.grids[i].slots, 1)
        res_a = run_until_resolved(demo_spec(name), overrides, **adaptive_settings(settings), storage=storage,
                                   max_concurrent=max_concurrent, echo=log.info,
                                   before_round=_time_budget(t0, budget_min, slots, report,
                                                             _round_overhead(out.grids)))
        out.adaptive.append(res_a)  # its table is the study's results.parquet, as out.grids[i].table says
        failures += [f for f in (res_a.grid.failed if res_a.grid is not None else []) if f not in failures]
    if report:
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
        from capgate.errors import GridError

        raise GridError(f"{len(failures)} demo runs failed (recorded; rerun `capgate demo` to retry): "
                        + "; ".join(f"{rid}: {err.strip().splitlines()[0][:200]}" for rid, err in failures[:10]))
    return out


def _time_budget(t0: float, budget_min: float, slots: int, report: bool,
                 overhead_s: float = _ROUND_OVERHEAD_S) -> Callable[[Any, Any], str | None]:
    """The demo's check before an adaptive round: None (train it) when the round, projected from the
    measured run times of the same run groups, still ends the demo within ``budget_min``; else why not."""
    from capgate.analysis.next_seeds import GROUP_COLUMNS

    def check(advice: Any, table: Any) -> str | None:
        runs = table.drop_duplicates("run_id")
        per_group = runs.groupby(list(GROUP_COLUMNS))["wall_seconds"].mean()
        busy = sum(a["seeds"] * float(per_group.get(tuple(a[c] for c in GROUP_COLUMNS), per_group.mean()))
                   for a in advice.add)
        elapsed = time.monotonic() - t0
        end = elapsed + busy / slots + overhead_s + (_REPORT_S if report else 0.0)
        if end <= budget_min * 60:
            log.info("[demo] adaptive round of %d runs: projected to end the demo at %.1f min, within its budget "
                     "of %.0f min", advice.n_runs, end / 60, budget_min)
            return None
        return (f"time budget: the round's {advice.n_runs} runs would end the demo at about {end / 60:.1f} min, "
                f"over its budget of {budget_min:g} min (capgate demo --budget-min)")

    return check
