"""The rules of ``capgate check``: a current summary against a baseline summary, row by row.

- the two summaries are of the same studies: another study's baseline, or a subset of the baseline's
  studies, is unusable input (exit 2) naming the studies;
- every baseline cell is still present, and its mean is within a noise-aware tolerance:
  ``|mean_now - mean_base| <= max(z * sqrt(se_base**2 + se_now**2), abs_tol)`` where each ``se`` is the
  cell's own *stabilised* standard error (its moderated run-to-run SD / sqrt(n_ok), written by the
  analysis) and ``z`` is Bonferroni-adjusted so that a re-run with fresh seeds of an unchanged study
  raises a false alarm in at most 1 % of checks; ``se_mode='pooled'`` uses the task's pooled SD instead;
  a pretrained cell adds the variance of its pretraining stages to each side (:mod:`capgate.check.noise`:
  the summary's ``stage_sd``, else one replicate with the seed SD), so retrained stages do not fail it;
- the mean shift over all cells of each init stays within its pooled SE (the systematic test of
  :mod:`capgate.check.noise`): a small shift of every cell that no single cell shows fails;
- every row states its minimum detectable shift (80 % power at the check's alpha);
- every verdict is unchanged: a flip between ``helps``, ``within_noise`` and ``hurts`` fails when the gain
  moved beyond its own tolerance (seed and stage noise of both sides, Bonferroni over the verdicts) and
  warns when it did not; a move to or from ``inconclusive`` warns;
- where the two summaries were made (``environment``: CPU, torch, timm, git sha, capgate) is printed
  when it differs;
- every capacity gate stays where it was (its rung interval, widened by its bootstrap range, overlaps
  the baseline's; a status change with overlapping intervals, or to/from ``undetermined``, warns);
- the plan's expectations hold; an expectation left ``untested`` by inconclusive cells warns
  (``strict=True`` fails it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

from capgate.analysis.summary import _num, gate_interval, param_ranges, validate_summary
from capgate.analysis.verdicts import DECIDED
from capgate.check.environment import ENVIRONMENT_FIELDS, environment_notes
from capgate.check.noise import cell_sd, mds, pretrained_inits, stage_var, systematic_shifts
from capgate.errors import InputError
from capgate.schema import format_params

__all__ = ["CheckRow", "CheckResult", "compare", "pooled_sd", "auto_z", "check_studies", "environment_notes",
           "FAMILY_ALPHA", "SE_MODES", "ENVIRONMENT_FIELDS"]

#: Family-wise false-alarm rate of the mean checks under pure seed noise when z is not given.
FAMILY_ALPHA = 0.01
SE_MODES = ("cell", "pooled")
#: How plan expectations are judged (see :func:`_compare_expectations`).
EXPECTATION_MODES = ("hold", "baseline")
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


def _stage_vars(summary: dict) -> dict[str, tuple[float, str]]:
    pre = pretrained_inits(summary)
    return {c["key"]: stage_var(c, pre) for c in summary["cells"]}


def _compare_cells(base: dict, cur: dict, abs_tol: float, z: float, se_mode: str,
                   pairs: list | None = None) -> list[CheckRow]:
    """The per-cell rows; ``pairs`` collects (base cell, current cell, sd_b, sd_c, staged) for the
    systematic test."""
    rows = []
    b_cells, c_cells = _by_key(base["cells"]), _by_key(cur["cells"])
    pool_b, pool_c = pooled_sd(base), pooled_sd(cur)
    st_b, st_c = _stage_vars(base), _stage_vars(cur)
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
        (vb, how_b), (vc, how_c) = st_b[key], st_c.get(key, (0.0, "none"))
        sd_b, sd_c = cell_sd(se_b, vb), cell_sd(se_c, vc)
        if pairs is not None:
            pairs.append((b, c, sd_b, sd_c, how_b != "none" or how_c != "none"))
        se = math.hypot(sd_b, sd_c)
        tol = max(z * se, abs_tol)
        diff = mc - mb
        ok = abs(diff) <= tol + 1e-12
        note = f"diff {100 * diff:+.2f} pp; detectable shift {100 * mds(tol, se):.2f} pp"
        if "assumed" in (how_b, how_c):
            note += "; stage noise assumed (one replicate, stage SD = seed SD)"
        elif "replicates" in (how_b, how_c):
            k = sorted({f"{_num(x.get('n_stages')) or 0:g}" for x, how in ((b, how_b), (c, how_c))
                        if how == "replicates"})  # a hand-made summary may lack n_stages: 0, not a crash
            note += f"; stage noise from {'/'.join(k)} pretraining replicates (se_rerun)"
        elif "summary" in (how_b, how_c) and vb + vc > 0:
            note += "; stage noise from the summary's stage_sd"
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


def _compare_systematic(pairs: list, z: float | None, abs_tol: float) -> list[CheckRow]:
    rows = []
    for s in systematic_shifts(pairs, z, abs_tol, auto_z):
        note = (f"mean shift {100 * s.diff:+.2f} pp over {s.n_cells} cells in {s.n_units} independent units "
                f"(SE {100 * s.se:.2f} pp); detectable shift {100 * s.mds:.2f} pp")
        rows.append(CheckRow("systematic", s.key, _fmt_metric(s.base_mean), _fmt_metric(s.cur_mean), _fmt_pp(s.tol),
                             "pass" if s.passed else "fail",
                             note if s.passed else f"every cell of this init moved together beyond noise: {note}"))
    return rows


def _gain_moved(b: dict, c: dict, vb: float, vc: float, z: float) -> tuple[bool, str]:
    """Whether a contrast's gain moved beyond its noise (gain SEs and the arm's stage variance)."""
    gb, gc, sb, sc = _num(b.get("gain")), _num(c.get("gain")), _num(b.get("se")), _num(c.get("se"))
    if None in (gb, gc, sb, sc):
        return True, "gain or its SE unavailable"
    se = math.hypot(cell_sd(sb, vb), cell_sd(sc, vc))
    tol = z * se
    return abs(gc - gb) > tol + 1e-12, (f"gain {100 * gb:+.2f} -> {100 * gc:+.2f} pp, tolerance {_fmt_pp(tol)}, "
                                        f"detectable shift {100 * mds(tol, se):.2f} pp")


def _compare_verdicts(base: dict, cur: dict, z: float | None = None) -> list[CheckRow]:
    rows = []
    b_v, c_v = _by_key(base["verdicts"]), _by_key(cur["verdicts"])
    st_b, st_c = _stage_vars(base), _stage_vars(cur)
    zv = auto_z(len(b_v)) if z is None else z
    for key, b in b_v.items():
        c = c_v.get(key)
        if c is None:
            rows.append(CheckRow("verdict", key, b.get("verdict", "?"), "missing", "", "fail",
                                 "contrast missing from the current results"))
            continue
        vb, vc = b.get("verdict"), c.get("verdict")
        if vb == vc:
            rows.append(CheckRow("verdict", key, vb, vc, "", "pass"))
        elif vb in DECIDED and vc in DECIDED:
            arm = key.split("|vs|")[0]
            moved, why = _gain_moved(b, c, st_b.get(arm, (0.0, ""))[0], st_c.get(arm, (0.0, ""))[0], zv)
            rows.append(CheckRow("verdict", key, vb, vc, "", "fail" if moved else "warn",
                                 f"verdict flipped {vb} -> {vc}" + (f" ({why})" if moved else
                                                                    f", but the gain moved within noise ({why})")))
        else:
            rows.append(CheckRow("verdict", key, str(vb), str(vc), "", "warn", f"verdict moved {vb} -> {vc}"))
    for key in c_v.keys() - b_v.keys():
        rows.append(CheckRow("verdict", key, "absent", str(c_v[key].get("verdict")), "", "warn",
                             "new contrast not in the baseline"))
    return rows


def _gate_txt(g: dict[str, Any]) -> str:
    lo, hi = format_params(_num(g.get("ci_low"))), format_params(_num(g.get("ci_high")))
    if g.get("status") == "gate":
        return (f"gate {g.get('rung_below') or format_params(_num(g.get('below_params')))}"
                f"–{g.get('rung_from') or format_params(_num(g.get('gate_params')))} [{lo}, {hi}]")
    if g.get("ci_low") is not None or g.get("ci_high") is not None:
        return f"{g.get('status')} [{lo}, {hi}]"
    return str(g.get("status"))


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


def _exp_status(e: dict) -> str:
    return str(e.get("status") or ("holds" if e.get("holds") else "fails"))


def _compare_expectations(base: dict, cur: dict, strict: bool, mode: str = "hold") -> list[CheckRow]:
    """``mode='hold'``: every expectation must hold. ``mode='baseline'``: an expectation must keep
    the status the baseline recorded (a claim the study does not reproduce stays reported, and a
    change either way is drift); moves to or from ``untested`` warn (fail under ``strict``)."""
    if mode not in EXPECTATION_MODES:
        raise InputError(f"expectations mode {mode!r} is not one of {list(EXPECTATION_MODES)}; "
                         "pass --expectations hold or --expectations baseline")
    rows = []
    cur_exp = cur.get("expectations") or []
    base_status = {str(e.get("text")): _exp_status(e) for e in base.get("expectations") or []}
    for e in cur_exp:
        status = _exp_status(e)
        text = {"holds": "holds", "fails": "does not hold", "untested": "untested"}.get(status, str(status))
        row_status = ("pass" if status == "holds" else "fail" if status == "fails" or strict else "warn")
        note = str(e.get("detail") or "")
        was = base_status.get(str(e.get("text")))
        if mode == "baseline" and was is not None:
            if status == was:
                row_status, note = "pass", f"as in the baseline ({text}); " + note
            elif "untested" in (status, was):
                row_status = "fail" if strict else "warn"
                note = f"baseline: {was}; " + note
            else:
                row_status, note = "fail", f"changed from the baseline's {was!r}; " + note
        if status == "untested":
            note += "; inconclusive cells leave it untested: add seeds (gains.csv seeds_needed)" + (
                " (--strict fails untested expectations)" if strict else "")
        rows.append(CheckRow("expectation", str(e.get("text")), was or "", text, "", row_status, note))
    now = {str(e.get("text")) for e in cur_exp}
    for e in base.get("expectations") or []:
        if str(e.get("text")) not in now:
            rows.append(CheckRow("expectation", str(e.get("text")), str(e.get("status") or e.get("holds")),
                                 "not evaluated", "", "warn", "expectation of the baseline is not in the current plan"))
    return rows


def check_studies(baseline: dict[str, Any], current: dict[str, Any], baseline_name: str = "baseline") -> list[str]:
    """Raise :class:`InputError` when the summaries are of different studies or the current one lacks
    some of the baseline's studies; returns notes about studies only the current summary has."""
    b, c = list(baseline.get("studies") or []), list(current.get("studies") or [])
    if b and c and not set(b) & set(c):
        raise InputError(f"{baseline_name} is of study {', '.join(b)} but the results are of study {', '.join(c)}; "
                         "pass the baseline of the same study (or regenerate it with --update-baseline)")
    missing = sorted(set(b) - set(c))
    if b and c and missing:
        raise InputError(f"{baseline_name} covers studies {', '.join(b)} but the results lack {', '.join(missing)}; "
                         "pass the results of every baseline study")
    extra = sorted(set(c) - set(b))
    return [f"studies not in the baseline (not compared): {', '.join(extra)}"] if b and extra else []


def compare(baseline: dict[str, Any], current: dict[str, Any], *, abs_tol: float = 0.0, z: float | None = None,
            se_mode: str = "cell", strict: bool = False, expectations: str = "hold") -> CheckResult:
    """Compare a current summary with a baseline summary (both ``summary.json`` dicts).

    ``z``: the tolerance multiplier; None (default) picks the Bonferroni z that keeps false alarms
    under pure seed noise at :data:`FAMILY_ALPHA` over all baseline cells. ``se_mode``: ``pooled``
    (default) takes each cell's SE as the task's pooled run-to-run SD / sqrt(n_ok), stable with a
    handful of seeds; ``cell`` (default) takes each cell's own stabilised SE from the summary.
    ``strict``: an untested expectation fails instead of warning. ``expectations``: ``hold`` (every
    plan expectation must hold) or ``baseline`` (each must keep the status the baseline recorded).
    """
    if se_mode not in SE_MODES:
        raise InputError(f"se_mode={se_mode!r} is not one of {list(SE_MODES)}; pass --se pooled or --se cell")
    validate_summary(baseline, "baseline")
    validate_summary(current, "current summary")
    notes = check_studies(baseline, current)
    z_given = z is not None
    z = auto_z(len(baseline["cells"])) if z is None else float(z)
    if not (z >= 0 and math.isfinite(z)):
        raise InputError(f"z={z!r} is not a finite number >= 0; pass e.g. --z 3")
    if not (abs_tol >= 0 and math.isfinite(abs_tol)):
        raise InputError(f"abs_tol={abs_tol!r} is not a finite number >= 0 on the metric's 0..1 scale; pass e.g. --abs-tol 0.005")
    pairs: list = []
    rows = (_compare_cells(baseline, current, abs_tol, z, se_mode, pairs)
            + _compare_systematic(pairs, z if z_given else None, abs_tol)
            + _compare_verdicts(baseline, current, z if z_given else None)
            + _compare_gates(baseline, current) + _compare_expectations(baseline, current, strict, expectations))
    notes += environment_notes(baseline, current)
    kinds = {"cell": 0, "systematic": 1, "verdict": 2, "gate": 3, "expectation": 4}
    rows.sort(key=lambda r: (_STATUS_ORDER[r.status], kinds[r.check], r.key))
    z_words = "" if z_given else f" (Bonferroni: {FAMILY_ALPHA:g} family-wise over {len(baseline['cells'])} cells)"
    se_words = ("se = the task's pooled run-to-run SD / sqrt(n_ok)" if se_mode == "pooled"
                else "se = each cell's stabilised standard error (moderated SD / sqrt(n_ok))")
    rule = (f"cell mean passes when |current - baseline| <= max(z * sqrt(se_base^2 + se_current^2), abs_tol) "
            f"with z = {z:.3g}{z_words}, {se_words}, abs_tol = {abs_tol:g}; a pretrained cell adds its stage "
            "variance to each se^2 (stage_sd^2 / n_stages from the summary, else the seed SD^2: one stage "
            "replicate); the mean shift over all cells of each init passes within max(z * SE, abs_tol), SE pooled "
            "over independent (backbone, init) units, z Bonferroni over those tests; detectable shift = tolerance "
            "+ 0.84 SE (80 % power); verdict flips among "
            f"{'/'.join(DECIDED)} fail when the gain moved beyond "
            "z * its SE (stage noise included, z Bonferroni over the verdicts), else warn; moves to/from "
            "inconclusive warn; a gate fails when its interval no longer "
            "overlaps the baseline's (a status change with overlapping intervals, or to/from undetermined, warns); "
            + ("plan expectations must hold" if expectations == "hold" else
               "plan expectations must keep the baseline's status (holds / does not hold)")
            + " (untested ones warn" + (", and fail under --strict)" if strict else ")"))
    return CheckResult(rows=tuple(rows), rule=rule, notes=tuple(notes))


