"""capgate: does pretrained initialization pay off for a tiny ConvNet, or is its gain inside
run-to-run noise? Controlled studies on Ray Tune, mixed-effects verdicts, reports and checks.

The public API is listed in ``__all__``; heavy submodules (torch, ray) are imported lazily so
that the analysis, report and check paths run with only pandas and statsmodels.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
