"""capgate: does pretrained initialization pay off for a tiny ConvNet, or is its gain inside
run-to-run noise? Controlled studies on Ray Tune, mixed-effects verdicts, reports and checks.

The public API is listed in ``__all__``. Names are imported lazily on first use, so that
``import capgate`` stays cheap and the analysis, report and check paths run with only pandas and
statsmodels (they never import torch or ray).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> the module that defines it
_EXPORTS = {
    # spec and grid
    "load_study": "capgate.spec.load",
    "expand": "capgate.spec",
    "RunSpec": "capgate.spec",
    "PretrainSpec": "capgate.spec",
    "run_grid": "capgate.grid",
    "Store": "capgate.grid",
    "train_one_run": "capgate.train",
    # data and models
    "ensure_world": "capgate.data",
    "open_detection": "capgate.data",
    "open_classification": "capgate.data",
    "get_rung": "capgate.models",
    "build_detector": "capgate.models",
    "build_classifier": "capgate.models",
    "profile_model": "capgate.models",
    "initialize": "capgate.models",
    # analysis, report, check
    "load_results": "capgate.analysis",
    "analyze": "capgate.analysis",
    "write_outputs": "capgate.analysis",
    "load_plan": "capgate.analysis",
    "simulate_results": "capgate.analysis",
    "render_report": "capgate.report",
    "run_check": "capgate.check",
    "compare": "capgate.check",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'capgate' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
