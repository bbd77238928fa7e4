"""Pre-registered analysis plans (``analysis/*.yaml``): loading, validation, defaults.

A plan fixes, before looking at results: the metric per task, the baseline initialization, the
contrasts, the margin (a fixed, pre-registered gain in metric units: 1 pp by default), the pairing of
seeds, alpha, the multiple-comparison correction, the interval method, an optional group-sequential
design (``sequential``: looks after rounds of new seeds, see :func:`sequential_looks`), the
expectations ``capgate check`` verifies, and how a foreign table's columns map onto the results table
(``columns: {COLUMN: SOURCE}``, :mod:`capgate.analysis.columns`) with the user's own shift labels
(``shift_labels: [corruption]``). ``None`` for a key means "use the default".

A plan is resolved once, at the entry (:func:`load_plan` for a YAML file, :func:`resolve_plan` for a
dict), into a frozen :class:`Plan`; every step reads its attributes. :meth:`Plan.to_dict` gives the
plain form written into ``summary.json`` (and accepted back by :func:`resolve_plan`).
"""

from __future__ import annotations

import copy
import os
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from capgate.schema import CLASSIFICATION_METRICS, DETECTION_METRICS, SHIFTS, TASKS
from capgate.analysis.verdicts import CORRECTIONS, DECIDED, VERDICTS
from capgate.errors import ResultsError, SpecError

__all__ = ["Plan", "Sequential", "as_plan", "DEFAULT_PLAN", "DEFAULT_MARGIN", "PAIRINGS", "OUTLIER_POLICIES", "load_plan", "resolve_plan",
           "expectation_text", "margin_rule", "sequential_looks", "default_schedule"]

DEFAULT_PLAN: dict[str, Any] = {
    "name": "default",
    "metric": {"detection": "map", "classification": "top1"},
    "baseline": "scratch",
    "contrasts": "all",
    "margin": 0.01,
    "pairing": "auto",
    "alpha": 0.05,
    "correction": "holm",
    "interval": "t",
    "power": 0.8,
    "max_seeds": 100,
    "seeds": None,
    "n_boot": 500,
    "sequential": None,
    "expectations": [],
    "columns": {},
    "shift_labels": [],
    "outlier_runs": "keep",
}

PAIRINGS = ("auto", "paired", "unpaired")
#: What the verdicts do with a run far below its siblings (capgate.analysis.cells.analysis_frame).
OUTLIER_POLICIES = ("keep", "isolate")
#: The fixed margin when a plan sets none: 1 percentage point of the metric.
DEFAULT_MARGIN = 0.01
INTERVALS = ("t",)
_TASK_METRICS = {"detection": DETECTION_METRICS, "classification": CLASSIFICATION_METRICS}
_EXPECTATION_KEYS = {"init", "verdict", "shift", "task", "family", "min_params", "max_params", "text"}


@dataclass(frozen=True)
class Sequential:
    """A group-sequential design: looks after ``schedule`` seeds per arm (increasing, the last is
    ``max_seeds``), Lan-DeMets alpha spending of the ``spending`` kind."""

    max_seeds: int
    schedule: tuple[int, ...]
    spending: str = "obrien_fleming"

    def to_dict(self) -> dict[str, Any]:
        return {"max_seeds": self.max_seeds, "schedule": list(self.schedule), "spending": self.spending}


@dataclass(frozen=True)
class Plan:
    """A resolved, validated analysis plan (the keys of :data:`DEFAULT_PLAN` as attributes).

    ``metric``: task -> metric column; ``contrasts``: ``"all"`` or the init names compared with the
    ``baseline``; ``margin``: a number, ``"pooled_sd"``, or task -> either (see :func:`margin_rule`);
    ``sequential``: None for a fixed design (one look); ``expectations``: validated mappings, each with
    its readable ``text``; ``source``: the YAML file it came from, if any.
    """

    name: str
    metric: dict[str, str]
    baseline: str
    contrasts: str | tuple[str, ...]
    margin: float | str | dict[str, float | str]
    pairing: str
    alpha: float
    correction: str
    interval: str
    power: float
    max_seeds: int
    seeds: int | None
    n_boot: int
    sequential: Sequential | None
    expectations: tuple[dict[str, Any], ...]
    columns: dict[str, str] = dataclasses.field(default_factory=dict)
    shift_labels: tuple[str, ...] = ()
    outlier_runs: str = "keep"
    source: str | None = None
    description: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The plain (JSON-able) form: every key of :data:`DEFAULT_PLAN`, plus source and description when set."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name in ("source", "description") and v is None:
                continue
            if f.name == "contrasts" and v != "all":
                v = list(v)
            elif f.name == "sequential" and v is not None:
                v = v.to_dict()
            elif f.name == "expectations":
                v = [dict(e) for e in v]
            elif f.name == "shift_labels":
                v = list(v)
            out[f.name] = copy.deepcopy(v)
        return out

    def replace(self, **changes: Any) -> "Plan":
        """A copy with ``changes`` (plain values, validated like a plan dict)."""
        return resolve_plan({**self.to_dict(), **changes}, source=self.source or "plan")


def load_plan(path: str | Path) -> Plan:
    """Read a plan YAML file and return it resolved against :data:`DEFAULT_PLAN`."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise SpecError(f"{path}: plan file not found; pass an analysis/*.yaml plan") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML ({exc}); fix the syntax") from exc
    if raw is None:
        raw = {}
    if isinstance(raw, dict):
        raw = {**raw, "source": str(path)}
    return resolve_plan(raw, source=str(path))


def as_plan(plan: Plan | dict[str, Any] | str | os.PathLike | None) -> Plan:
    """THE resolution of a plan argument, done once at an entry point: a :class:`Plan` as it is, a
    dict (or None: the defaults) through :func:`resolve_plan`, a path through :func:`load_plan`."""
    if plan is None or isinstance(plan, (Plan, dict)):
        return resolve_plan(plan)
    return load_plan(plan)


def _err(source: str, key: str, value: Any, valid: str) -> SpecError:
    return SpecError(f"{source}: plan key {key!r} has invalid value {value!r}; valid: {valid}")


def resolve_plan(plan: Plan | dict[str, Any] | None, *, source: str = "plan") -> Plan:
    """Validate a plan dict and fill in defaults; errors name the key, the value and the valid choices.
    A :class:`Plan` is returned as it is (it was resolved already)."""
    if isinstance(plan, Plan):
        return plan
    if plan is None:
        plan = {}
    if not isinstance(plan, dict):
        raise SpecError(f"{source}: a plan is a mapping of keys {sorted(DEFAULT_PLAN)}, got {type(plan).__name__}")
    unknown = sorted(set(plan) - set(DEFAULT_PLAN) - {"source", "description"})
    if unknown:
        raise SpecError(f"{source}: unknown plan key(s) {unknown}; valid keys: {sorted(DEFAULT_PLAN)}")
    out = copy.deepcopy(DEFAULT_PLAN)
    out.update({k: copy.deepcopy(v) for k, v in plan.items() if v is not None})

    metric = out["metric"]
    if isinstance(metric, str):
        metric = {t: metric for t in TASKS if metric in _TASK_METRICS[t]}
        if not metric:
            raise _err(source, "metric", out["metric"], f"one of {list(DETECTION_METRICS + CLASSIFICATION_METRICS)}")
    if not isinstance(metric, dict):
        raise _err(source, "metric", metric, "a mapping task -> metric, e.g. {detection: map, classification: top1}")
    merged = dict(DEFAULT_PLAN["metric"])
    for task, m in metric.items():
        if task not in TASKS:
            raise _err(source, f"metric.{task}", m, f"tasks {list(TASKS)}")
        if m not in _TASK_METRICS[task]:
            raise _err(source, f"metric.{task}", m, str(list(_TASK_METRICS[task])))
        merged[task] = m
    out["metric"] = merged

    if not isinstance(out["baseline"], str) or not out["baseline"]:
        raise _err(source, "baseline", out["baseline"], "an init name such as 'scratch'")
    contrasts = out["contrasts"]
    if contrasts != "all":
        if isinstance(contrasts, str):
            contrasts = [contrasts]
        if not isinstance(contrasts, list) or not all(isinstance(c, str) for c in contrasts) or not contrasts:
            raise _err(source, "contrasts", out["contrasts"], "'all' or a list of init names")
        if out["baseline"] in contrasts:
            raise _err(source, "contrasts", contrasts, f"init names other than the baseline {out['baseline']!r}")
        out["contrasts"] = list(contrasts)

    out["margin"] = _margin(out["margin"], source)
    for key, choices, why in (("pairing", PAIRINGS, "auto = paired when both arms share seeds"),
                              ("outlier_runs", OUTLIER_POLICIES, "isolate = runs far below their siblings out")):
        if out[key] not in choices:
            raise _err(source, key, out[key], f"{list(choices)} ({why})")
    alpha = out["alpha"]
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not 0 < alpha < 0.5:
        raise _err(source, "alpha", alpha, "a number in (0, 0.5), e.g. 0.05")
    out["alpha"] = float(alpha)
    if out["correction"] not in CORRECTIONS:
        raise _err(source, "correction", out["correction"], str(list(CORRECTIONS)))
    if out["interval"] not in INTERVALS:
        raise _err(source, "interval", out["interval"], f"{list(INTERVALS)} (t-based with the pooled df)")
    power = out["power"]
    if not isinstance(power, (int, float)) or isinstance(power, bool) or not 0.5 <= power < 1:
        raise _err(source, "power", power, "a number in [0.5, 1), e.g. 0.8")
    for key, lo in (("max_seeds", 2), ("n_boot", 0)):
        v = out[key]
        if not isinstance(v, int) or isinstance(v, bool) or v < lo:
            raise _err(source, key, v, f"an integer >= {lo}")
    if out["seeds"] is not None and (not isinstance(out["seeds"], int) or out["seeds"] < 1):
        raise _err(source, "seeds", out["seeds"], "null (infer from the table) or an integer >= 1")
    out["sequential"] = _sequential(out["sequential"], source)
    if not isinstance(out["expectations"], list):
        raise _err(source, "expectations", out["expectations"], "a list of mappings")
    from capgate.analysis.columns import check_columns_block, check_shift_labels

    try:
        out["columns"] = check_columns_block(out["columns"], source=source)
        out["shift_labels"] = tuple(check_shift_labels(out["shift_labels"], what=f"{source}: plan key 'shift_labels'"))
    except ResultsError as exc:
        raise SpecError(str(exc)) from None
    shifts = (*SHIFTS, *out["shift_labels"])
    out["expectations"] = tuple(_expectation(e, i, source, shifts) for i, e in enumerate(out["expectations"]))
    if out["contrasts"] != "all":
        out["contrasts"] = tuple(out["contrasts"])
    return Plan(**out)


def _margin(margin: Any, source: str) -> Any:
    def one(v: Any, key: str) -> Any:
        if v == "pooled_sd":
            return v
        if isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1:
            return float(v)
        raise _err(source, key, v, "a number in [0, 1) on the metric's scale (e.g. 0.01 = 1 pp), or 'pooled_sd'")

    if isinstance(margin, dict):
        bad = sorted(set(margin) - set(TASKS))
        if bad:
            raise _err(source, "margin", margin, f"a number, 'pooled_sd', or a mapping over tasks {list(TASKS)}")
        return {t: one(v, f"margin.{t}") for t, v in margin.items()}
    return one(margin, "margin")


_SEQ_KEYS = {"max_seeds", "schedule", "spending"}
_SEQ_EXAMPLE = "{max_seeds: 10, schedule: [3, 5, 7, 10], spending: obrien_fleming}"


def default_schedule(max_seeds: int, first: int = 3) -> list[int]:
    """Looks at ``first`` seeds per arm, then about 1.5x more each round, up to ``max_seeds``
    (``default_schedule(10) == [3, 5, 7, 10]``)."""
    pts = [min(first, max_seeds)]
    while pts[-1] < max_seeds:
        pts.append(min(max_seeds, max(pts[-1] + 2, round(pts[-1] * 1.4))))
    return pts


def _sequential(seq: Any, source: str) -> Sequential | None:
    """The ``sequential`` key: None (a fixed design, one look) or the pre-declared design."""
    from capgate.analysis.sequential import SPENDING

    if seq is None or seq is False:
        return None
    if isinstance(seq, Sequential):
        seq = seq.to_dict()
    if not isinstance(seq, dict):
        raise _err(source, "sequential", seq, f"null (one look) or a mapping like {_SEQ_EXAMPLE}")
    unknown = sorted(set(seq) - _SEQ_KEYS)
    if unknown:
        raise SpecError(f"{source}: plan key 'sequential' has unknown key(s) {unknown}; valid: {sorted(_SEQ_KEYS)}")
    n_max = seq.get("max_seeds")
    if not isinstance(n_max, int) or isinstance(n_max, bool) or n_max < 2:
        raise _err(source, "sequential.max_seeds", n_max, "an integer >= 2 (seeds per arm at the last look)")
    schedule = seq.get("schedule")
    schedule = default_schedule(n_max) if schedule is None else schedule
    if (not isinstance(schedule, list) or not schedule
            or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 2 for x in schedule)
            or any(b <= a for a, b in zip(schedule, schedule[1:])) or schedule[-1] > n_max):
        raise _err(source, "sequential.schedule", schedule,
                   f"increasing integers >= 2 (seeds per arm at each look), the last <= max_seeds = {n_max}, "
                   "e.g. [3, 5, 7, 10]")
    if schedule[-1] < n_max:
        schedule = [*schedule, n_max]
    spending = seq.get("spending", "obrien_fleming")
    if spending not in SPENDING:
        raise _err(source, "sequential.spending", spending, str(list(SPENDING)))
    return Sequential(max_seeds=n_max, schedule=tuple(schedule), spending=spending)


def sequential_looks(n: float, seq: Sequential) -> list[float]:
    """Information fractions of the looks a contrast with ``n`` seeds per arm has had under the design
    ``seq``: every schedule point below ``n`` (an earlier round's look), then the current look at
    ``n / max_seeds`` (capped at 1). Empty when ``n < 2`` (nothing to test)."""
    if not np.isfinite(n) or n < 2:
        return []
    n_max = float(seq.max_seeds)
    pts = [p / n_max for p in seq.schedule if p < min(n, n_max)]
    return [*pts, min(float(n) / n_max, 1.0)]


def margin_rule(plan: Plan, task: str) -> Any:
    """The margin rule of one task: ``'pooled_sd'`` or a number."""
    m = plan.margin
    if isinstance(m, dict):
        return m.get(task, DEFAULT_MARGIN)
    return m


def _expectation(e: Any, i: int, source: str, shifts: tuple[str, ...] = SHIFTS) -> dict[str, Any]:
    key = f"expectations[{i}]"
    if not isinstance(e, dict):
        raise _err(source, key, e, "a mapping like {init: imagenet_coco, shift: cross_dataset, verdict: helps}")
    unknown = sorted(set(e) - _EXPECTATION_KEYS)
    if unknown:
        raise SpecError(f"{source}: {key} has unknown key(s) {unknown}; valid: {sorted(_EXPECTATION_KEYS)}")
    for req in ("init", "verdict"):
        if req not in e:
            raise SpecError(f"{source}: {key} needs key {req!r}")
    verdicts = e["verdict"] if isinstance(e["verdict"], list) else [e["verdict"]]
    for v in verdicts:
        if v not in VERDICTS:
            raise _err(source, f"{key}.verdict", v, str(list(DECIDED)))
        if v == "inconclusive":
            raise SpecError(
                f"{source}: {key}.verdict lists 'inconclusive'; an expectation is met only by decided verdicts "
                f"({', '.join(DECIDED)}): remove 'inconclusive' (cells left inconclusive are reported as untested)")
    if "shift" in e and e["shift"] not in shifts:
        raise _err(source, f"{key}.shift", e["shift"], f"{list(shifts)} (declare your own in shift_labels)")
    if "task" in e and e["task"] not in TASKS:
        raise _err(source, f"{key}.task", e["task"], str(list(TASKS)))
    for k in ("min_params", "max_params"):
        if k in e and (not isinstance(e[k], (int, float)) or isinstance(e[k], bool) or e[k] < 0):
            raise _err(source, f"{key}.{k}", e[k], "a non-negative number of parameters")
    out = dict(e)
    out["verdict"] = verdicts
    out.setdefault("text", expectation_text(out))
    return out


def expectation_text(e: dict[str, Any]) -> str:
    """Readable form, e.g. 'imagenet_coco helps on cross_dataset for rungs with >= 500,000 params'."""
    verdicts = e["verdict"] if isinstance(e["verdict"], list) else [e["verdict"]]
    parts = [f"{e['init']} {' or '.join(verdicts)}"]
    if e.get("task"):
        parts.append(f"in {e['task']}")
    if e.get("family"):
        parts.append(f"for {e['family']}")
    if e.get("shift"):
        parts.append(f"on {e['shift']}")
    lo, hi = e.get("min_params"), e.get("max_params")
    if lo is not None and hi is not None:
        parts.append(f"for rungs with {lo:,.0f} to {hi:,.0f} params")
    elif lo is not None:
        parts.append(f"for rungs with >= {lo:,.0f} params")
    elif hi is not None:
        parts.append(f"for rungs with <= {hi:,.0f} params")
    return " ".join(parts)
