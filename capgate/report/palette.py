"""Colours shared by the figures (colour-blind safe, Okabe-Ito based); the verdicts' own colours are
:data:`capgate.analysis.verdicts.VERDICT_COLOURS`."""

from __future__ import annotations

__all__ = ["SERIES", "TASK_COLOURS", "INIT_COLOURS", "series_colour",
           "init_colour", "SHAPES"]

SERIES = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#7f3c8d", "#4d4d4d")
TASK_COLOURS = {"detection": "#0072B2", "classification": "#D55E00"}
INIT_COLOURS = {"scratch": "#4d4d4d", "imagenet": "#0072B2", "imagenet_coco": "#CC79A7"}
#: marker shapes by position (a second categorical channel, e.g. the train set)
SHAPES = ("dot", "square", "diamond", "triangle")


def series_colour(i: int) -> str:
    """The ``i``-th categorical colour (cycles)."""
    return SERIES[i % len(SERIES)]


def init_colour(init: str, order: list[str]) -> str:
    """A stable colour for an initialization: the named ones fixed, others by position in ``order``."""
    if init in INIT_COLOURS:
        return INIT_COLOURS[init]
    return series_colour(3 + order.index(init)) if init in order else SERIES[-1]

