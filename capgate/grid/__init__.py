"""The Ray Tune driver and the study store (records keyed by run_id -> results table).

Importing this package does not import ray or torch; :func:`run_grid` does, when it starts.
"""

from __future__ import annotations

from capgate.grid.driver import DEFAULT_STORAGE, GridPlan, GridResult, plan_grid, resolve_storage, run_grid
from capgate.grid.store import FINAL_STATUSES, Store

__all__ = ["DEFAULT_STORAGE", "FINAL_STATUSES", "GridPlan", "GridResult", "Store", "plan_grid",
           "resolve_storage", "run_grid"]
