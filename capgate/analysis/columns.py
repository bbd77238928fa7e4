"""Column mapping: a run table from any trainer or tracker -> capgate's results table.

A table that already carries every required column (:data:`capgate.schema.REQUIRED_COLUMNS`) and
no mapping is returned untouched. Any other table ("foreign") goes through these steps, each of
which adds a line to :attr:`Mapped.notes` when it changed something (nothing is filled silently):

1. **wide to long**: a tracker export holds one row per run with prefixed columns
   (``metrics.<key>``, ``params.<key>``, ``config.<key>``, ``tags.<key>``: MLflow's
   ``search_runs`` layout, a W&B runs dump). A metric key ``<eval set>/<metric>`` or
   ``<metric>/<eval set>`` becomes one row per run and eval set; a key that is only a metric
   name is a run-level metric (the eval set then comes from a column); with the mapping
   ``METRIC=metrics.*`` every other key is an eval set holding METRIC. Other keys (losses, learning
   rates) are left out and listed. Prefixed columns are then read by their bare name when that
   name is free (``params.seed`` -> ``seed``).
2. **the mapping** ``COLUMN=SOURCE`` (``--map`` flags, or a plan's ``columns:`` block): column
   COLUMN of the results table is read from the table's column SOURCE.
3. **defaults** for what is still absent: ``status`` ``ok`` (tracker states mapped: FINISHED ->
   ok, FAILED/CRASHED -> failed, RUNNING/SCHEDULED/KILLED rows dropped and counted); a metric
   alias (``accuracy``, ``acc`` -> ``top1``); ``task`` from the metric (top1 ... -> classification,
   map ... -> detection); ``study`` from the file name; ``eval_set`` = ``train_set``; ``shift``
   ``in_domain`` where train and eval set agree, else ``cross_dataset``; ``family`` one ladder
   ``all`` (ordered by ``params``); ``run_id`` a hash of the run's design columns. ``backbone``,
   ``params``, ``init``, ``train_set`` and ``seed`` are never invented: their absence is an error
   that names the likely source column.
4. **metric scale**: a metric whose largest value is above 1 and at most 100 is read as a
   percentage and divided by 100; the scale found is stated either way.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from capgate._hash import short_hash
from capgate.errors import ResultsError
from capgate.schema import COLUMN_KINDS, METRIC_COLUMNS, OPTIONAL_COLUMNS, REQUIRED_COLUMNS, SHIFTS, TASK_METRICS

__all__ = ["Mapped", "map_columns", "parse_mapping", "check_shift_labels", "check_columns_block", "merge_mappings",
           "all_shift_labels", "metric_key", "needs_mapping", "ONE_LADDER", "STATUS_MAP", "DROPPED_STATES", "METRICS_STAR"]

PREFIXES = ("params.", "config.", "tags.")
METRICS_PREFIX = "metrics."
#: The mapping source that makes every unparsed ``metrics.<key>`` column an eval set.
METRICS_STAR = "metrics.*"
#: The family of every row when a table names none: one capacity ladder, ordered by params.
ONE_LADDER = "all"
#: Tracker run states (lower-cased) read as capgate statuses.
STATUS_MAP = {"ok": "ok", "finished": "ok", "diverged": "diverged", "failed": "failed", "crashed": "failed"}
#: Tracker run states whose rows are dropped (the run has no final result) and counted in a note.
DROPPED_STATES = ("running", "scheduled", "killed")
#: Metric names read as a capgate metric without a mapping.
METRIC_ALIASES = {"accuracy": "top1", "acc": "top1", "top1_accuracy": "top1", "top1_acc": "top1",
                  "top5_accuracy": "top5", "mAP": "map", "bbox_mAP": "map"}
#: Likely sources of the columns capgate never invents (for the error's suggestion).
LIKELY_SOURCES = {"backbone": ("model", "arch", "architecture", "model_name", "network"),
                  "params": ("n_params", "num_params", "param_count", "parameters"),
                  "init": ("pretrained", "weights", "initialization", "init_type"),
                  "train_set": ("dataset", "train_dataset", "train_data", "data"),
                  "eval_set": ("eval_dataset", "test_dataset", "test_set", "eval_data"),
                  "seed": ("random_seed", "run_seed", "fold")}
_NEVER_INVENTED = ("backbone", "params", "init", "train_set", "seed")
#: Columns whose values define one trained run (its run_id is their hash when the table has none).
_RUN_KEYS = ("study", "task", "family", "backbone", "params", "init", "train_set", "seed", "width", "depth",
             "resolution", "init_source", "rung", "data_variant", "class_map", "epochs")
_LABEL = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class Mapped:
    """A mapped table (not yet validated) and one line per change made to it."""

    table: pd.DataFrame
    notes: tuple[str, ...] = ()


def parse_mapping(items: Iterable[str] | Mapping[str, str] | None, *, what: str = "--map") -> dict[str, str]:
    """``COLUMN=SOURCE`` strings (or a ``{COLUMN: SOURCE}`` mapping) -> a checked dict; errors name
    the item and the valid results-table columns."""
    if items is None:
        return {}
    pairs = list(items.items()) if isinstance(items, Mapping) else [_split(i, what) for i in items]
    out: dict[str, str] = {}
    known = sorted({*COLUMN_KINDS, *METRIC_COLUMNS})
    for col, src in pairs:
        if not isinstance(col, str) or not isinstance(src, str) or not col or not src:
            raise ResultsError(f"{what}: {col!r}={src!r} is not COLUMN=SOURCE with two names")
        if col not in known:
            near = difflib.get_close_matches(col, known, n=3)
            raise ResultsError(f"{what}: {col!r} is not a results-table column"
                               + (f" (did you mean {' or '.join(map(repr, near))}?)" if near else "")
                               + f"; columns: {known}")
        if col in out and out[col] != src:
            raise ResultsError(f"{what}: column {col!r} is mapped twice ({out[col]!r} and {src!r}); keep one")
        out[col] = src
    return out


def _split(item: str, what: str) -> tuple[str, str]:
    col, sep, src = str(item).partition("=")
    if not sep:
        raise ResultsError(f"{what}: {item!r} is not COLUMN=SOURCE, e.g. backbone=model")
    return col.strip(), src.strip()


def check_shift_labels(labels: Iterable[str] | None, *, what: str = "--shift-labels") -> tuple[str, ...]:
    """User-declared shift labels, checked (a word of letters, digits, ``_.-``), built-ins dropped."""
    out: list[str] = []
    for label in labels or ():
        for lab in (s.strip() for s in str(label).split(",")):
            if not lab:
                continue
            if not _LABEL.match(lab):
                raise ResultsError(f"{what}: shift label {lab!r} must be one word of letters, digits, '_', '.', '-'")
            if lab not in SHIFTS and lab not in out:
                out.append(lab)
    return tuple(out)


def needs_mapping(table: pd.DataFrame, mapping: Mapping[str, str] | None = None) -> bool:
    """Whether ``table`` is foreign: a mapping is given, or a required column is absent."""
    return bool(mapping) or any(c not in table.columns for c in REQUIRED_COLUMNS)


def map_columns(raw: pd.DataFrame, mapping: Mapping[str, str] | None = None, *, source: str = "results table",
                default_study: str | None = None) -> Mapped:
    """Map ``raw`` (one row per run x eval set, or one row per run with ``metrics.*`` columns) onto
    the results table's columns as the module docstring says; the result still goes through
    :func:`capgate.analysis.load.validate`. Errors name the column and the likely source."""
    mapping = dict(mapping or {})
    if not needs_mapping(raw, mapping):
        return Mapped(raw)
    notes: list[str] = []
    t = _long(raw, mapping, notes, source)
    t = _unprefix(t, notes)
    t = _apply(t, mapping, notes, source)
    t = _status(t, notes, source)
    _metrics(t, notes, source)
    _design(t, notes, source, default_study)
    return Mapped(t.reset_index(drop=True), tuple(notes))


def _metric_names(mapping: Mapping[str, str]) -> dict[str, str]:
    names = {m: m for m in METRIC_COLUMNS} | dict(METRIC_ALIASES)
    names.update({src: col for col, src in mapping.items() if col in METRIC_COLUMNS and src != METRICS_STAR})
    return names


def _parse_key(key: str, names: Mapping[str, str], star: str | None) -> tuple[str | None, str] | None:
    """``(eval set or None, metric)`` of one metrics key, or None when it is no metric of the study."""
    parts = key.split("/")
    if len(parts) > 1 and parts[-1] in names:
        return "/".join(parts[:-1]), names[parts[-1]]
    if len(parts) > 1 and parts[0] in names:
        return "/".join(parts[1:]), names[parts[0]]
    if key in names:
        return None, names[key]
    return (key, star) if star else None


def metric_key(key: str, mapping: Mapping[str, str] | None = None) -> bool:
    """Whether a column or metrics key reads as a metric of an eval set (``<eval set>/<metric>`` or
    ``<metric>/<eval set>``, the metric a known one, an alias, or a mapping's source)."""
    got = _parse_key(key, _metric_names(mapping or {}), None)
    return got is not None and got[0] is not None


def _long(raw: pd.DataFrame, mapping: dict[str, str], notes: list[str], source: str) -> pd.DataFrame:
    """One row per run x eval set out of ``metrics.<key>`` columns (none: the table as it is)."""
    mcols = [c for c in raw.columns if isinstance(c, str) and c.startswith(METRICS_PREFIX)]
    if not mcols:
        return raw.copy()
    star = next((col for col, src in mapping.items() if src == METRICS_STAR), None)
    names = _metric_names(mapping)
    parsed = {c: _parse_key(c[len(METRICS_PREFIX):], names, star) for c in mcols}
    per_eval = {c: p for c, p in parsed.items() if p is not None and p[0] is not None}
    run_level = {c: p[1] for c, p in parsed.items() if p is not None and p[0] is None}
    skipped = sorted(c[len(METRICS_PREFIX):] for c, p in parsed.items() if p is None
                     or (per_eval and p[0] is None))
    if skipped:
        notes.append(f"metrics left out (not a metric of an eval set): {', '.join(skipped[:8])}"
                     + (f" and {len(skipped) - 8} more" if len(skipped) > 8 else ""))
    base = raw.drop(columns=mcols)
    if not per_eval:
        if not run_level:
            return base
        out = base.copy()
        for c, m in run_level.items():
            out[m] = pd.to_numeric(raw[c], errors="coerce")
        notes.append("run-level metrics read: " + ", ".join(f"{c} -> {m}" for c, m in run_level.items()))
        return out
    if "eval_set" in base.columns:
        raise ResultsError(f"{source}: the table has both an 'eval_set' column and per-eval-set metric columns "
                           f"({', '.join(list(per_eval)[:3])}); drop one of them")
    evals = list(dict.fromkeys(p[0] for p in per_eval.values()))
    metrics = list(dict.fromkeys(p[1] for p in per_eval.values()))
    frames = []
    for ev in evals:
        part = base.copy()
        part["eval_set"] = ev
        for m in metrics:
            col = next((c for c, p in per_eval.items() if p == (ev, m)), None)
            part[m] = pd.to_numeric(raw[col], errors="coerce") if col else np.nan
        part["_run_row"] = np.arange(len(base))
        frames.append(part)
    long = pd.concat(frames, ignore_index=True)
    has_value = long[metrics].notna().any(axis=1)
    any_value = has_value.groupby(long["_run_row"]).transform("any")
    long = long[has_value | ~any_value].sort_values(["_run_row"], kind="stable").drop(columns="_run_row")
    notes.append(f"{len(base)} runs x {len(evals)} eval sets ({', '.join(evals)}) from metrics.<eval set>/<metric> "
                 f"columns: {len(long)} rows of {', '.join(metrics)}")
    return long


def _unprefix(t: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    renamed = {}
    for prefix in PREFIXES:
        for c in t.columns:
            if isinstance(c, str) and c.startswith(prefix):
                bare = c[len(prefix):]
                if bare and bare not in t.columns and bare not in renamed.values():
                    renamed[c] = bare
    if renamed:
        shown = [c for c in renamed if renamed[c] in {*COLUMN_KINDS, *METRIC_COLUMNS}]
        if shown:
            notes.append("read by their bare names: " + ", ".join(shown))
    return t.rename(columns=renamed)


def _missing_source(t: pd.DataFrame, name: str, source: str, why: str) -> ResultsError:
    cols = [str(c) for c in t.columns]
    near = difflib.get_close_matches(name, cols, n=3, cutoff=0.6)
    return ResultsError(f"{source}: {why}" + (f"; did you mean {' or '.join(map(repr, near))}?" if near else "")
                        + f" (columns: {cols[:30]}{' ...' if len(cols) > 30 else ''})")


def _apply(t: pd.DataFrame, mapping: Mapping[str, str], notes: list[str], source: str) -> pd.DataFrame:
    done = []
    for col, src in mapping.items():
        if src == METRICS_STAR:
            continue
        if src not in t.columns and col in METRIC_COLUMNS and col in t.columns:
            continue  # a metric source already read as <eval set>/<source> by the wide-to-long step
        found = next((c for c in (src, *(p + src for p in PREFIXES)) if c in t.columns), None)
        if found is None:
            raise _missing_source(t, src, source, f"--map {col}={src}: the table has no column {src!r}")
        t[col] = t[found]
        done.append(f"{col} <- {found}")
    if done:
        notes.append("mapped: " + ", ".join(done))
    return t


def _status(t: pd.DataFrame, notes: list[str], source: str) -> pd.DataFrame:
    if "status" not in t.columns:
        t["status"] = "ok"
        notes.append("status: absent, every row read as 'ok'")
        return t
    raw = t["status"].astype(str).str.strip().str.lower()
    dropped = raw.isin(DROPPED_STATES)
    unknown = sorted(set(raw[~dropped & ~raw.isin(list(STATUS_MAP))]))
    if unknown:
        raise ResultsError(f"{source}: unknown run status {unknown}; valid: {sorted(STATUS_MAP)} (read as "
                           f"ok/failed/diverged) and {list(DROPPED_STATES)} (rows dropped); map another column "
                           "with --map status=COLUMN")
    if dropped.any():
        gone = pd.DataFrame({"state": raw[dropped], "run": t.loc[dropped, "run_id"] if "run_id" in t.columns
                             else np.arange(int(dropped.sum()))}).drop_duplicates()
        counts = gone["state"].value_counts().sort_index()
        notes.append(f"dropped {len(gone)} runs without a final result ("
                     + ", ".join(f"{k}: {v}" for k, v in counts.items()) + f"; {int(dropped.sum())} rows)")
    t = t[~dropped].copy()
    mapped = raw[~dropped].map(STATUS_MAP)
    if (mapped != t["status"]).any():
        notes.append("status read as: " + ", ".join(f"{a} -> {b}" for a, b in
                                                    sorted(set(zip(t["status"].astype(str), mapped)))))
    t["status"] = mapped
    return t


def _metrics(t: pd.DataFrame, notes: list[str], source: str) -> None:
    """Metric aliases, the task (from the metric), and each metric's scale (0-1 or 0-100)."""
    present = [m for m in METRIC_COLUMNS if m in t.columns]
    for alias, metric in METRIC_ALIASES.items():
        if alias in t.columns and metric not in t.columns:
            t[metric] = t[alias]
            present.append(metric)
            notes.append(f"{metric} <- {alias} (alias)")
    if "task" not in t.columns:
        tasks = [task for task, ms in TASK_METRICS.items() if any(m in present for m in ms)]
        if len(tasks) != 1:
            raise _missing_source(t, "accuracy", source, "column 'task' is missing and "
                                  + ("the metrics belong to both tasks" if tasks else "no metric column was found")
                                  + f"; name the metric with --map top1=COLUMN or --map map=COLUMN ({list(METRIC_COLUMNS)})")
        t["task"] = tasks[0]
        notes.append(f"task: absent, '{tasks[0]}' (from the metric {', '.join(present)})")
    for m in present:
        num = pd.to_numeric(t[m], errors="coerce")
        top = float(num.max()) if num.notna().any() else float("nan")
        if 1 < top <= 100 and float(num.min()) >= 0:
            t[m] = num / 100.0
            notes.append(f"{m}: on a 0-100 scale (max {top:g}), divided by 100")
        elif top <= 1:
            t[m] = num
            notes.append(f"{m}: on a 0-1 scale (max {top:g})")


def _design(t: pd.DataFrame, notes: list[str], source: str, default_study: str | None) -> None:
    """Defaults for study, eval_set, shift, family and run_id; errors for what is never invented."""
    for col in _NEVER_INVENTED:
        if col not in t.columns:
            likely = [c for c in LIKELY_SOURCES.get(col, ()) if c in t.columns]
            near = likely or difflib.get_close_matches(col, [str(c) for c in t.columns], n=2, cutoff=0.6)
            hint = f"--map {col}={near[0]}" if near else f"--map {col}=COLUMN"
            raise ResultsError(f"{source}: column {col!r} is missing and is never guessed; map it with {hint} "
                               f"(or `columns: {{{col}: ...}}` in the analysis plan); columns: "
                               f"{[str(c) for c in t.columns][:30]}")
    if "study" not in t.columns:
        t["study"] = default_study or "study"
        notes.append(f"study: absent, {t['study'].iloc[0]!r} (from the file name)")
    if "eval_set" not in t.columns:
        t["eval_set"] = t["train_set"]
        notes.append("eval_set: absent, each run evaluated on its train_set")
    if "shift" not in t.columns:
        same = t["eval_set"].astype(str) == t["train_set"].astype(str)
        t["shift"] = np.where(same, "in_domain", "cross_dataset")
        notes.append(f"shift: absent, in_domain where train_set = eval_set ({int(same.sum())} rows), "
                     f"cross_dataset elsewhere ({int((~same).sum())} rows); map a column for other shifts")
    if "family" not in t.columns:
        t["family"] = ONE_LADDER
        notes.append(f"family: absent, every backbone in one ladder {ONE_LADDER!r} ordered by params")
    if "run_id" not in t.columns:
        keys = [k for k in _RUN_KEYS if k in t.columns]
        t["run_id"] = [short_hash({k: _plain(v) for k, v in zip(keys, row)}) for row in
                       t[keys].itertuples(index=False, name=None)]
        notes.append(f"run_id: absent, a hash of each run's {', '.join(keys)}")
    for col, kind in OPTIONAL_COLUMNS.items():  # a tracker's param strings hold numbers
        if col in t.columns and kind != "str" and t[col].dtype == object:
            t[col] = pd.to_numeric(t[col], errors="coerce")


def _plain(v: object) -> object:
    if isinstance(v, np.generic):
        return v.item()
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    return str(v) if not isinstance(v, (int, float, str, bool)) else v


def check_columns_block(block: object, *, source: str) -> dict[str, str]:
    """A plan's ``columns:`` block (``{COLUMN: SOURCE}``) checked like ``--map`` flags."""
    if block is None:
        return {}
    if not isinstance(block, Mapping):
        raise ResultsError(f"{source}: plan key 'columns' must map results-table columns to source columns, "
                           "e.g. {backbone: model, top1: accuracy}")
    return parse_mapping(block, what=f"{source}: plan key 'columns'")


def merge_mappings(plan_columns: Mapping[str, str] | None, flags: Mapping[str, str] | None) -> dict[str, str]:
    """The plan's ``columns:`` with ``--map`` flags on top (a flag wins for its column)."""
    return {**dict(plan_columns or {}), **dict(flags or {})}


def all_shift_labels(*groups: Sequence[str] | None) -> tuple[str, ...]:
    """Built-in shifts followed by every user label, each once."""
    return tuple(dict.fromkeys([*SHIFTS, *(lab for g in groups for lab in (g or ()))]))
