"""The ladder, or the standard models, as a table: every network built and profiled (what
``capgate models`` prints). Every MACs figure comes with :data:`~capgate.models.profile.MACS_CONVENTION`
(a ``macs_convention`` field in each row, a footer line under the text table)."""

from __future__ import annotations

from typing import Any

from capgate.errors import SpecError
from capgate.schema import TASKS
from capgate.models.classifier import build_classifier
from capgate.models.detector import build_detector
from capgate.models.ladder import Rung, builder_call, get_rung, get_standard, ladder, standard_names
from capgate.models.profile import MACS_CONVENTION, profile_model

__all__ = ["DEFAULT_NUM_CLASSES", "ladder_table", "standard_table", "format_ladder_table"]

#: Classes when none are given: one (person, the cross-dataset class) for detection, ten for
#: classification.
DEFAULT_NUM_CLASSES = {"detection": 1, "classification": 10}


def ladder_table(
    family: str | None = None,
    *,
    task: str = "detection",
    resolution: int = 128,
    num_classes: int | None = None,
    latency: bool = True,
    memory: bool = False,
    rungs: list[Rung] | None = None,
) -> list[dict[str, Any]]:
    """One row per rung (default ladder of ``family``, or all; or the given ``rungs``): the rung,
    its multipliers, neck/head sizes and its :class:`~capgate.models.profile.ModelProfile`."""
    if task not in TASKS:
        raise SpecError(f"task {task!r} is invalid; valid tasks: {', '.join(TASKS)}")
    n = DEFAULT_NUM_CLASSES[task] if num_classes is None else num_classes
    rows = []
    for rung in rungs if rungs is not None else ladder(family):
        if task == "detection":
            model = build_detector(rung, n, resolution)
        else:
            model = build_classifier(rung, n)
        row: dict[str, Any] = {
            "rung": rung.name,
            "family": rung.family,
            "backbone": rung.backbone_name,
            "width": rung.width,
            "depth": rung.depth,
            "neck_channels": rung.neck_channels if task == "detection" else None,
            "head_convs": rung.head_convs if task == "detection" else None,
            "task": task,
            "num_classes": n,
            "note": rung.note,
            "builder": builder_call(rung),
            "scaling": rung.info.scaling,
        }
        row.update(profile_model(model, resolution, latency=latency, memory=memory).to_dict())
        row["macs_convention"] = MACS_CONVENTION
        rows.append(row)
    return rows


def standard_table(
    names: list[str] | None = None,
    *,
    resolution: int = 224,
    num_classes: int = 1000,
    latency: bool = True,
    memory: bool = False,
) -> list[dict[str, Any]]:
    """One row per standard model (all, or ``names``): ``name``, ``title``, ``source``,
    ``constructor``, the published ``params_published`` and the built network's
    :class:`~capgate.models.profile.ModelProfile` (``params``, ``fp32_bytes`` = params x 4, ``macs``
    at ``resolution``, ``latency_ms``) with its head sized for ``num_classes``."""
    from capgate.models.standard import build_standard

    rows = []
    for name in names if names is not None else standard_names():
        info = get_standard(name)
        model = build_standard(get_rung(name), num_classes)
        row: dict[str, Any] = {
            "name": name, "rung": name, "family": "standard", "backbone": name, "title": info.title,
            "source": info.source, "constructor": info.constructor, "params_published": info.params,
            "num_classes": num_classes,
        }
        row.update(profile_model(model, resolution, latency=latency, memory=memory).to_dict())
        row["macs_convention"] = MACS_CONVENTION
        rows.append(row)
    return rows


def _fmt_int(n: int) -> str:
    return f"{n:,}"


def format_ladder_table(rows: list[dict[str, Any]]) -> str:
    """Fixed-width text table of :func:`ladder_table` or :func:`standard_table` rows, with the MACs
    convention on the last line."""
    standard = bool(rows) and rows[0].get("family") == "standard"
    if standard:
        header = ["model", "title", "params", "FP32 MB", "MMACs", "latency ms"]
    else:
        header = ["rung", "backbone", "width", "depth", "backbone params", "params", "MMACs", "latency ms"]
    body = []
    for r in rows:
        lat = "-" if r.get("latency_ms") is None else f"{r['latency_ms']:.2f}"
        if standard:
            body.append([r["name"], r["title"], _fmt_int(r["params"]), f"{r['fp32_bytes'] / 1e6:.2f}",
                         f"{r['macs'] / 1e6:.2f}", lat])
            continue
        body.append([r["rung"], r["backbone"], f"{r['width']:g}", f"{r['depth']:g}",
                     _fmt_int(r["backbone_params"]), _fmt_int(r["params"]), f"{r['macs'] / 1e6:.2f}", lat])
    widths = [max(len(h), *(len(row[i]) for row in body)) if body else len(h) for i, h in enumerate(header)]
    left = {0, 1}

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    out = [line(header), line(["-" * w for w in widths])]
    out += [line(row) for row in body]
    out += ["", MACS_CONVENTION]
    return "\n".join(out)
