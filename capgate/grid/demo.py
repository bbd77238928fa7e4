"""``capgate demo``: the embedded default studies end to end on the synthetic tiny world.

Detection (``experiments/demo.yaml``) then the classification slice
(``experiments/demo_classification.yaml``): world generation, pretraining stages, both grids,
the results tables, then one report over both studies in ``reports/demo/`` when the report
package is installed. Rerunning reuses everything already stored.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from capgate._resources import shipped
from capgate.errors import SpecError
from capgate.grid.driver import GridResult, run_grid
from capgate.grid.plan import GridPlan, plan_grid

__all__ = ["DemoResult", "run_demo", "plan_demo", "demo_spec", "demo_plan", "DEMO_SPECS"]

log = logging.getLogger("capgate.grid")

DEMO_SPECS = ("demo.yaml", "demo_classification.yaml")


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

    def summary(self) -> str:
        lines = [g.summary() for g in self.grids]
        if self.report is not None:
            lines.append(f"report: {self.report}")
        lines.append(f"demo finished in {self.wall_seconds / 60:.1f} min")
        return "\n".join(lines)


def run_demo(storage: str | Path | None = None, outdir: str | Path = "reports/demo",
             classification: bool = True, report: bool = True, overrides: tuple[str, ...] = (),
             max_concurrent: int | None = None) -> DemoResult:
    """Run the demo studies and render their report; failed runs raise after the report."""
    t0 = time.monotonic()
    out = DemoResult()
    names = DEMO_SPECS if classification else DEMO_SPECS[:1]
    failures = []
    for name in names:
        res = run_grid(demo_spec(name), overrides, storage=storage, max_concurrent=max_concurrent,
                       raise_on_failure=False)
        out.grids.append(res)
        failures += res.failed
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
    out.wall_seconds = time.monotonic() - t0
    log.info("[demo] finished in %.1f min", out.wall_seconds / 60)
    if failures:
        from capgate.errors import GridError

        raise GridError(f"{len(failures)} demo runs failed (recorded; rerun `capgate demo` to retry): "
                        + "; ".join(f"{rid}: {err.strip().splitlines()[0][:200]}" for rid, err in failures[:10]))
    return out
