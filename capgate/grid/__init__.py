"""The Ray Tune driver and the study store (records keyed by run_id -> results table).

Importing this package imports neither ray nor torch; :func:`run_grid` imports ray when it starts,
and the driver never imports torch (Ray workers do).
"""

from __future__ import annotations

from capgate.grid.driver import (DEFAULT_STORAGE, GridInterrupted, GridPlan, GridResult, plan_grid, resolve_storage,
                                 run_grid)
from capgate.store.study import FINAL_STATUSES, Store

__all__ = ["DEFAULT_STORAGE", "FINAL_STATUSES", "GridInterrupted", "GridPlan", "GridResult", "Store", "plan_grid",
           "resolve_storage", "run_grid"]
