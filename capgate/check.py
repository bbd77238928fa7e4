"""Regression checks of a study's conclusions against a committed baseline ``summary.json``.

``capgate check`` answers "did these results drift from the baseline beyond run-to-run noise?":

- every baseline cell is still present, and its mean is within a noise-aware tolerance:
  ``|mean_now - mean_base| <= max(z * sqrt(se_base**2 + se_now**2), abs_tol)``. By default each
  ``se`` is the task's pooled run-to-run SD / sqrt(n_ok) (a cell's own SE from three seeds is too
  noisy to set a tolerance with) and ``z`` is Bonferroni-adjusted so that a re-run with fresh seeds
  of an unchanged study raises a false alarm in at most 1 % of checks; a missing SE counts as 0;
- every verdict is unchanged: a flip between ``helps``, ``within_noise`` and ``hurts`` fails, a move
  to or from ``inconclusive`` warns;
- every capacity gate stays where it was: its bootstrap interval (for ``no_gate_in_range`` everything
  above its lower bound or the largest tested size, for ``helps_everywhere`` everything below its
  upper bound or the smallest tested size) overlaps the baseline's; a status change with
  overlapping intervals, or to/from ``undetermined``, only warns;
- the plan's expectations hold.

Exit codes of the command: 0 pass (warnings allowed), 1 regression, 2 unusable input. Never imports
torch or ray and never refits anything beyond what :func:`capgate.analysis.analyze` does.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Any

from capgate.errors import InputError

__all__ = ["CheckRow", "CheckResult", "compare", "write_junit", "run_check", "read_summary", "format_table",
           "validate_summary", "current_summary", "pooled_sd", "auto_z", "gate_interval", "param_ranges",
           "FAMILY_ALPHA", "SE_MODES", "SUMMARY_SCHEMA"]

SUMMARY_SCHEMA = "capgate-summary/1"
#: Family-wise false-alarm rate of the mean checks under pure seed noise when z is not given.
FAMILY_ALPHA = 0.01
SE_MODES = ("pooled", "cell")
_DEFINITE = ("helps", "within_noise", "hurts")
_STATUS_ORDER = {"fail": 0, "warn": 1, "pass": 2}


@dataclass(frozen=True)
class CheckRow:
    """One comparison: ``check`` is ``cell``, ``verdict``, ``gate`` or ``expectation``; ``status``
    is ``pass``, ``warn`` or ``fail``; the value columns are already formatted for reading."""

    check: str
    key: str
    baseline: str
    current: str
    tolerance: str
    status: str
    message: str = ""


@dataclass(frozen=True)
class CheckResult:
    """Every comparison of one check run, with the rule that decided the mean rows."""

    rows: tuple[CheckRow, ...]
    rule: str
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def failures(self) -> tuple[CheckRow, ...]:
        """Rows that are regressions."""
        return tuple(r for r in self.rows if r.status == "fail")

    @property
    def warnings(self) -> tuple[CheckRow, ...]:
        """Rows worth a look that do not fail the check."""
        return tuple(r for r in self.rows if r.status == "warn")

    @property
    def passed(self) -> bool:
        """True when no row failed (warnings allowed)."""
        return not self.failures

    @property
    def exit_code(self) -> int:
        """0 when passed, 1 on a regression."""
        return 0 if self.passed else 1


def _fmt_metric(v: Any) -> str:
    return "—" if v is None else f"{100 * float(v):.2f} %"


def _fmt_pp(v: float) -> str:
    return f"±{100 * v:.2f} pp"


def _fmt_params(v: Any) -> str:
    if v is None:
        return "—"
    v = float(v)
    return f"{v / 1e6:.3g}M" if v >= 1e6 else f"{v / 1e3:.3g}k" if v >= 1e3 else f"{v:.0f}"


def _num(v: Any) -> float | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def validate_summary(d: Any, source: str) -> dict[str, Any]:
    """Check ``d`` is a ``capgate-summary/1`` dict with keyed cells, verdicts and gates."""
    fix = "regenerate it with `capgate report` or `capgate check ... --update-baseline`"
    if not isinstance(d, dict):
        raise InputError(f"{source}: a summary is a JSON object, got {type(d).__name__}; {fix}")
    if d.get("schema") != SUMMARY_SCHEMA:
        raise InputError(f"{source}: schema is {d.get('schema')!r}, expected {SUMMARY_SCHEMA!r}; {fix}")
    for part in ("cells", "verdicts", "gates"):
        items = d.get(part)
        if not isinstance(items, list) or not all(isinstance(x, dict) and isinstance(x.get("key"), str) for x in items):
            raise InputError(f"{source}: '{part}' must be a list of objects that each have a string 'key'; {fix}")
    bad = [c["key"] for c in d["cells"] if "mean" not in c]
    if bad:
        raise InputError(f"{source}: cells without a 'mean' (e.g. {bad[0]!r}); {fix}")
    return d


def read_summary(path: str | os.PathLike, *, what: str = "summary") -> dict[str, Any]:
    """Read and validate a ``summary.json`` (a baseline or a report's summary)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        hint = ("create it with `capgate check RESULTS --baseline " f"{p} --update-baseline`"
                if what == "baseline" else "pass a summary.json written by `capgate report`")
        raise InputError(f"{p}: {what} not found; {hint}") from None
    except (IsADirectoryError, UnicodeDecodeError, PermissionError) as exc:
        raise InputError(f"{p}: cannot read the {what} ({exc}); pass a summary.json file") from None
    try:
        d = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{p}: {what} is not valid JSON ({exc}); restore it from git or regenerate it "
                         "with --update-baseline") from None
    return validate_summary(d, str(p))


def _by_key(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {x["key"]: x for x in items}


def pooled_sd(summary: dict[str, Any]) -> dict[str, float]:
    """Run-to-run SD pooled over the cells of each task: sqrt(sum (n_ok - 1) sd^2 / sum (n_ok - 1))."""
    num: dict[str, float] = {}
    den: dict[str, float] = {}
    for c in summary["cells"]:
        sd, n = _num(c.get("sd")), _num(c.get("n_ok"))
        if sd is None or n is None or n < 2:
            continue
        t = str(c.get("task"))
        num[t] = num.get(t, 0.0) + (n - 1) * sd * sd
        den[t] = den.get(t, 0.0) + (n - 1)
    return {t: math.sqrt(num[t] / den[t]) for t in num if den[t] > 0}


def _se(cell: dict[str, Any], pooled: dict[str, float], se_mode: str) -> float | None:
    n = _num(cell.get("n_ok"))
    if se_mode == "pooled" and str(cell.get("task")) in pooled and n:
        return pooled[str(cell.get("task"))] / math.sqrt(n)
    return _num(cell.get("se"))


def auto_z(n_cells: int, family_alpha: float = FAMILY_ALPHA) -> float:
    """Bonferroni z: the two-sided normal quantile giving ``family_alpha`` false alarms over ``n_cells``."""
    return NormalDist().inv_cdf(1 - family_alpha / (2 * max(1, n_cells)))


def _compare_cells(base: dict, cur: dict, abs_tol: float, z: float, se_mode: str) -> list[CheckRow]:
    rows = []
    b_cells, c_cells = _by_key(base["cells"]), _by_key(cur["cells"])
    pool_b, pool_c = pooled_sd(base), pooled_sd(cur)
    for key, b in b_cells.items():
        c = c_cells.get(key)
        b_txt = f"{_fmt_metric(_num(b.get('mean')))} (n={b.get('n_ok', '?')})"
        if c is None:
            rows.append(CheckRow("cell", key, b_txt, "missing", "", "fail", "cell missing from the current results"))
            continue
        c_txt = f"{_fmt_metric(_num(c.get('mean')))} (n={c.get('n_ok', '?')})"
        mb, mc = _num(b.get("mean")), _num(c.get("mean"))
        if mb is None or mc is None:
            if mb is None and mc is None:
                rows.append(CheckRow("cell", key, b_txt, c_txt, "", "pass", "no successful runs in either"))
            elif mc is None:
                rows.append(CheckRow("cell", key, b_txt, c_txt, "", "fail", "no successful runs now"))
            else:
                rows.append(CheckRow("cell", key, b_txt, c_txt, "", "warn", "baseline had no successful runs"))
            continue
        se_b, se_c = _se(b, pool_b, se_mode), _se(c, pool_c, se_mode)
        noise = z * math.sqrt((se_b or 0.0) ** 2 + (se_c or 0.0) ** 2)
        tol = max(noise, abs_tol)
        diff = mc - mb
        ok = abs(diff) <= tol + 1e-12
        note = f"diff {100 * diff:+.2f} pp"
        if se_b is None or se_c is None:
            note += "; an SE is unavailable (fewer than 2 seeds), counted as 0"
        status = "pass" if ok else "fail"
        if ok and b.get("complete") and c.get("complete") is False:
            status, note = "warn", note + f"; now incomplete (n_ok {b.get('n_ok')} -> {c.get('n_ok')})"
        rows.append(CheckRow("cell", key, b_txt, c_txt, _fmt_pp(tol), status,
                             note if ok else f"mean moved beyond tolerance: {note}"))
    for key in c_cells.keys() - b_cells.keys():
        rows.append(CheckRow("cell", key, "absent", _fmt_metric(_num(c_cells[key].get("mean"))), "", "warn",
                             "new cell not in the baseline (accept it with --update-baseline)"))
    return rows


def _compare_verdicts(base: dict, cur: dict) -> list[CheckRow]:
    rows = []
    b_v, c_v = _by_key(base["verdicts"]), _by_key(cur["verdicts"])
    for key, b in b_v.items():
        c = c_v.get(key)
        if c is None:
            rows.append(CheckRow("verdict", key, b.get("verdict", "?"), "missing", "", "fail",
                                 "contrast missing from the current results"))
            continue
        vb, vc = b.get("verdict"), c.get("verdict")
        if vb == vc:
            rows.append(CheckRow("verdict", key, vb, vc, "", "pass"))
        elif vb in _DEFINITE and vc in _DEFINITE:
            rows.append(CheckRow("verdict", key, vb, vc, "", "fail", f"verdict flipped {vb} -> {vc}"))
        else:
            rows.append(CheckRow("verdict", key, str(vb), str(vc), "", "warn", f"verdict moved {vb} -> {vc}"))
    for key in c_v.keys() - b_v.keys():
        rows.append(CheckRow("verdict", key, "absent", str(c_v[key].get("verdict")), "", "warn",
                             "new contrast not in the baseline"))
    return rows


def _gate_txt(g: dict[str, Any]) -> str:
    lo, hi = _fmt_params(_num(g.get("ci_low"))), _fmt_params(_num(g.get("ci_high")))
    if g.get("status") == "gate":
        return f"gate {_fmt_params(_num(g.get('gate_params')))} [{lo}, {hi}]"
    if g.get("ci_low") is not None or g.get("ci_high") is not None:
        return f"{g.get('status')} [{lo}, {hi}]"
    return str(g.get("status"))


def param_ranges(summary: dict[str, Any]) -> dict[tuple[str, str], tuple[float, float]]:
    """Tested parameter range (smallest, largest) per (task, family) of a summary's cells."""
    out: dict[tuple[str, str], tuple[float, float]] = {}
    for c in summary["cells"]:
        p = _num(c.get("params"))
        if p is not None:
            k = (str(c.get("task")), str(c.get("family")))
            lo, hi = out.get(k, (math.inf, -math.inf))
            out[k] = (min(lo, p), max(hi, p))
    return out


def gate_interval(g: dict[str, Any], ranges: dict[tuple[str, str], tuple[float, float]]) -> tuple[float, float] | None:
    """Where the gate may lie, in parameters: a gate's interval; ``no_gate_in_range`` lies above its
    lower bound (default: the largest tested size), ``helps_everywhere`` below its upper bound
    (default: the smallest tested size); open ends extend to 0 / infinity."""
    status, lo, hi = g.get("status"), _num(g.get("ci_low")), _num(g.get("ci_high"))
    tested = ranges.get((str(g.get("task")), str(g.get("family"))))
    if status == "gate":
        return (lo or 0.0, math.inf if hi is None else hi)
    if status == "no_gate_in_range":
        lo = lo if lo is not None else (tested[1] if tested else None)
        return None if lo is None else (lo, math.inf)
    if status == "helps_everywhere":
        hi = hi if hi is not None else (tested[0] if tested else None)
        return None if hi is None else (0.0, hi)
    return None


def _compare_gates(base: dict, cur: dict) -> list[CheckRow]:
    rows = []
    b_g, c_g = _by_key(base["gates"]), _by_key(cur["gates"])
    r_b, r_c = param_ranges(base), param_ranges(cur)
    for key, b in b_g.items():
        c = c_g.get(key)
        if c is None:
            rows.append(CheckRow("gate", key, _gate_txt(b), "missing", "", "fail", "gate missing from the current results"))
            continue
        sb, sc = b.get("status"), c.get("status")
        ib, ic = gate_interval(b, r_b), gate_interval(c, r_c)
        overlap = ib is not None and ic is not None and ib[0] <= ic[1] and ic[0] <= ib[1]
        row = lambda status, msg="": CheckRow("gate", key, _gate_txt(b), _gate_txt(c), "intervals overlap", status, msg)  # noqa: E731
        if "undetermined" in (sb, sc) and sb != sc:
            rows.append(row("warn", f"gate status moved {sb} -> {sc}"))
        elif sb == sc and (sb != "gate" or overlap):
            rows.append(row("pass"))
        elif sb == sc:
            rows.append(row("fail", "gate moved: the baseline and current gate intervals do not overlap"))
        elif overlap:
            rows.append(row("warn", f"gate status changed {sb} -> {sc}, but the gate intervals overlap (within noise)"))
        else:
            rows.append(row("fail", f"gate status changed {sb} -> {sc} and the gate intervals do not overlap"))
    for key in c_g.keys() - b_g.keys():
        rows.append(CheckRow("gate", key, "absent", _gate_txt(c_g[key]), "", "warn", "new gate not in the baseline"))
    return rows


def _compare_expectations(base: dict, cur: dict) -> list[CheckRow]:
    rows = []
    cur_exp = cur.get("expectations") or []
    for e in cur_exp:
        holds = bool(e.get("holds"))
        rows.append(CheckRow("expectation", str(e.get("text")), "", "holds" if holds else "does not hold", "",
                             "pass" if holds else "fail", str(e.get("detail") or "")))
    now = {str(e.get("text")) for e in cur_exp}
    for e in base.get("expectations") or []:
        if str(e.get("text")) not in now:
            rows.append(CheckRow("expectation", str(e.get("text")), "holds" if e.get("holds") else "does not hold",
                                 "not evaluated", "", "warn", "expectation of the baseline is not in the current plan"))
    return rows


def compare(baseline: dict[str, Any], current: dict[str, Any], *, abs_tol: float = 0.0, z: float | None = None,
            se_mode: str = "pooled") -> CheckResult:
    """Compare a current summary with a baseline summary (both ``summary.json`` dicts).

    ``z``: the tolerance multiplier; None (default) picks the Bonferroni z that keeps false alarms
    under pure seed noise at :data:`FAMILY_ALPHA` over all baseline cells. ``se_mode``: ``pooled``
    (default) takes each cell's SE as the task's pooled run-to-run SD / sqrt(n_ok), stable with a
    handful of seeds; ``cell`` takes each cell's own SE from the summary.
    """
    if se_mode not in SE_MODES:
        raise InputError(f"se_mode={se_mode!r} is not one of {list(SE_MODES)}; pass --se pooled or --se cell")
    validate_summary(baseline, "baseline")
    validate_summary(current, "current summary")
    z_given = z is not None
    z = auto_z(len(baseline["cells"])) if z is None else float(z)
    if not (z >= 0 and math.isfinite(z)):
        raise InputError(f"z={z!r} is not a finite number >= 0; pass e.g. --z 3")
    if not (abs_tol >= 0 and math.isfinite(abs_tol)):
        raise InputError(f"abs_tol={abs_tol!r} is not a finite number >= 0 on the metric's 0..1 scale; pass e.g. --abs-tol 0.005")
    rows = (_compare_cells(baseline, current, abs_tol, z, se_mode) + _compare_verdicts(baseline, current)
            + _compare_gates(baseline, current) + _compare_expectations(baseline, current))
    kinds = {"cell": 0, "verdict": 1, "gate": 2, "expectation": 3}
    rows.sort(key=lambda r: (_STATUS_ORDER[r.status], kinds[r.check], r.key))
    z_words = "" if z_given else f" (Bonferroni: {FAMILY_ALPHA:g} family-wise over {len(baseline['cells'])} cells)"
    se_words = ("se = the task's pooled run-to-run SD / sqrt(n_ok)" if se_mode == "pooled"
                else "se = each cell's own standard error")
    rule = (f"cell mean passes when |current - baseline| <= max(z * sqrt(se_base^2 + se_current^2), abs_tol) "
            f"with z = {z:.3g}{z_words}, {se_words}, abs_tol = {abs_tol:g}; verdict flips among "
            "helps/within_noise/hurts fail, moves to/from inconclusive warn; a gate fails when its interval no longer "
            "overlaps the baseline's (a status change with overlapping intervals, or to/from undetermined, warns); "
            "plan expectations must hold")
    return CheckResult(rows=tuple(rows), rule=rule)


def format_table(result: CheckResult, *, only_problems: bool = False, max_key: int = 72) -> str:
    """The readable diff: one line per comparison (failures first), then a one-line verdict."""
    rows = [r for r in result.rows if not (only_problems and r.status == "pass")]
    head = ("status", "check", "key", "baseline", "current", "tolerance", "note")
    body = []
    for r in rows:
        key = r.key if len(r.key) <= max_key else r.key[: max_key - 1] + "…"
        body.append((r.status.upper(), r.check, key, r.baseline, r.current, r.tolerance, r.message))
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
    widths[-1] = 0  # the note is last and left ragged
    fmt = lambda cols: "  ".join(c.ljust(w) for c, w in zip(cols, widths)).rstrip()  # noqa: E731
    lines = [fmt(head), fmt(tuple("-" * max(w, len(h)) for w, h in zip(widths, head)))] + [fmt(b) for b in body]
    n_pass = sum(r.status == "pass" for r in result.rows)
    if only_problems and n_pass:
        lines.append(f"({n_pass} passing comparisons not shown)")
    verdict = "PASS" if result.passed else "FAIL"
    lines.append(f"check {verdict}: {n_pass} passed, {len(result.warnings)} warnings, {len(result.failures)} failures")
    lines.append(f"rule: {result.rule}")
    lines.extend(f"note: {n}" for n in result.notes)
    return "\n".join(lines)


def write_junit(result: CheckResult, path: str | os.PathLike) -> Path:
    """Write JUnit XML: one ``testcase`` per comparison, ``failure`` for regressions, warnings as
    ``system-out`` on passing testcases. Returns the path written."""
    p = Path(path)
    suites = ET.Element("testsuites", name="capgate check", tests=str(len(result.rows)),
                        failures=str(len(result.failures)), errors="0")
    suite = ET.SubElement(suites, "testsuite", name="capgate check", tests=str(len(result.rows)),
                          failures=str(len(result.failures)), errors="0", skipped="0", time="0")
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="rule", value=result.rule)
    ET.SubElement(props, "property", name="warnings", value=str(len(result.warnings)))
    for r in result.rows:
        case = ET.SubElement(suite, "testcase", classname=f"capgate.check.{r.check}", name=r.key, time="0")
        detail = f"baseline: {r.baseline}\ncurrent: {r.current}\ntolerance: {r.tolerance}\n{r.message}".strip()
        if r.status == "fail":
            fail = ET.SubElement(case, "failure", message=r.message or "regression", type="regression")
            fail.text = detail
        elif r.status == "warn":
            ET.SubElement(case, "system-out").text = f"WARNING: {r.message}\n{detail}"
    p.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suites).write(p, encoding="utf-8", xml_declaration=True)
    return p


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(data, indent=2, allow_nan=False) + "\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def current_summary(results: str | os.PathLike | Sequence[str | os.PathLike], plan: str | os.PathLike | dict | None = None) -> dict[str, Any]:
    """The summary to check: read directly when given one ``*.json`` summary (expectations of
    ``plan`` re-evaluated on its verdicts), else load the results tables and analyze them."""
    import pandas as pd

    from capgate.analysis import analyze, evaluate_expectations, load_plan, load_results, resolve_plan

    paths = [Path(results)] if isinstance(results, (str, os.PathLike)) else [Path(p) for p in results]
    if not paths:
        raise InputError("no results given; pass results tables (parquet/CSV), study folders or one summary.json")
    resolved = None if plan is None else (resolve_plan(plan) if isinstance(plan, dict) else load_plan(plan))
    if len(paths) == 1 and paths[0].suffix == ".json":
        summary = read_summary(paths[0])
        if resolved is not None and resolved.get("expectations"):
            exp = evaluate_expectations(pd.DataFrame(summary["verdicts"]), resolved)
            summary = {**summary, "expectations": [
                {"text": r.text, "holds": bool(r.holds), "detail": r.detail} for r in exp.itertuples()]}
        return summary
    tables = []
    for p in paths:
        if p.suffix == ".json":
            raise InputError(f"{p}: a summary.json can only be checked on its own; pass it alone, or pass results tables")
        if not p.exists():
            raise InputError(f"{p}: results not found; pass a results table (parquet or CSV), a study folder or a summary.json")
        tables.append(load_results(p))
    table = tables[0] if len(tables) == 1 else pd.concat(tables, ignore_index=True, sort=False)
    return analyze(table, resolved).summary()


def run_check(results: str | os.PathLike | Sequence[str | os.PathLike], baseline_path: str | os.PathLike,
              plan: str | os.PathLike | dict | None = None, *, abs_tol: float = 0.0, z: float | None = None,
              se_mode: str = "pooled", junit: str | os.PathLike | None = None,
              update_baseline: bool = False) -> CheckResult:
    """Check ``results`` against the baseline at ``baseline_path``; optionally write JUnit XML.

    ``update_baseline``: write the current summary as the new baseline (after comparing with the
    old one when it exists; the returned result then always passes, its notes say what was done).
    """
    current = current_summary(results, plan)
    bpath = Path(baseline_path)
    notes: list[str] = []
    if update_baseline:
        if bpath.exists():
            try:
                old = compare(read_summary(bpath, what="baseline"), current, abs_tol=abs_tol, z=z, se_mode=se_mode)
                notes.append(f"previous baseline differed by {len(old.failures)} failures and {len(old.warnings)} warnings")
            except InputError as exc:
                notes.append(f"previous baseline unreadable, replaced ({exc})")
        _write_json_atomic(bpath, current)
        notes.append(f"baseline written to {bpath}")
        result = compare(current, current, abs_tol=abs_tol, z=z, se_mode=se_mode)
        result = CheckResult(rows=result.rows, rule=result.rule, notes=tuple(notes))
    else:
        result = compare(read_summary(bpath, what="baseline"), current, abs_tol=abs_tol, z=z, se_mode=se_mode)
    if junit is not None:
        write_junit(result, junit)
    return result
