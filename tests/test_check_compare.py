"""capgate.check.compare on hand-written summaries: tolerances by hand, flips, warnings, JUnit XML."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path
from statistics import NormalDist

import pytest

from capgate.check import auto_z, compare, format_table, pooled_sd, read_summary, write_junit
from capgate.errors import InputError
from helpers import hand_summary, save_json, variant


def statuses(result) -> dict[tuple[str, str], str]:
    return {(r.check, r.key): r.status for r in result.rows}


def test_identical_summaries_pass_with_one_row_per_item() -> None:
    s = hand_summary()
    r = compare(s, s)
    assert r.passed and r.exit_code == 0 and not r.warnings
    assert len(r.rows) == 4 + 2 + 2 + 2 + 1  # cells + systematic (one per init) + verdicts + gates + expectations
    assert {row.status for row in r.rows} == {"pass"}


def test_tolerance_is_z_times_combined_pooled_se() -> None:
    # Every cell has sd 0.02 with 4 seeds: pooled sd 0.02, se 0.01 per side, sqrt(2) * 0.01 combined.
    s = hand_summary()
    assert pooled_sd(s) == {"detection": pytest.approx(0.02)}
    tol = 2.0 * math.sqrt(2) * 0.01  # 0.028284...
    key = s["cells"][0]["key"]
    inside = compare(s, variant(s, cells__0__mean=0.30 + 0.028), z=2.0)
    outside = compare(s, variant(s, cells__0__mean=0.30 + 0.029), z=2.0)
    assert statuses(inside)[("cell", key)] == "pass"
    assert statuses(outside)[("cell", key)] == "fail" and outside.exit_code == 1
    row = next(r for r in outside.rows if r.key == key)
    assert row.tolerance == f"±{100 * tol:.2f} pp" == "±2.83 pp"
    assert row.baseline == "30.00 % (n=4)" and row.current == "32.90 % (n=4)"


def test_abs_tol_is_a_floor_not_an_addition() -> None:
    s = hand_summary()
    shifted = variant(s, cells__0__mean=0.35)  # +5 pp
    assert not compare(s, shifted, z=2.0, abs_tol=0.049).passed
    assert compare(s, shifted, z=2.0, abs_tol=0.05).passed
    rows = {r.key: r for r in compare(s, shifted, z=2.0, abs_tol=0.05).rows if r.check == "cell"}
    assert rows[s["cells"][0]["key"]].tolerance == "±5.00 pp"


def test_cell_se_mode_uses_each_cells_own_se() -> None:
    s = hand_summary()
    noisy = variant(variant(s, cells__0__se=0.05), cells__0__sd=0.1)  # only this cell is noisy
    shifted = variant(noisy, cells__0__mean=0.40)
    assert compare(noisy, shifted, z=2.0, se_mode="cell").passed  # 2 * sqrt(2) * 0.05 = 14 pp
    assert not compare(noisy, shifted, z=2.0, se_mode="pooled").passed  # pooled over 4 cells is smaller


def test_default_z_is_bonferroni_over_baseline_cells() -> None:
    assert auto_z(50) == pytest.approx(NormalDist().inv_cdf(1 - 0.01 / 100))
    assert auto_z(50) == pytest.approx(3.719, abs=1e-3)
    assert "z = 3.02 (Bonferroni: 0.01 family-wise over 4 cells)" in compare(hand_summary(), hand_summary()).rule


def test_dropped_cell_and_dropped_verdict_fail() -> None:
    s = hand_summary()
    cur = variant(s)
    dropped = cur["cells"].pop(1)
    cur["verdicts"].pop(0)
    r = compare(s, cur)
    assert statuses(r)[("cell", dropped["key"])] == "fail"
    assert statuses(r)[("verdict", s["verdicts"][0]["key"])] == "fail"
    assert r.failures[0].message in {"cell missing from the current results", "contrast missing from the current results"}


def test_flipped_verdict_fails_when_its_gain_moved_and_move_to_inconclusive_warns() -> None:
    s = hand_summary()
    key = s["verdicts"][0]["key"]
    # the gain had no SE in the summary: a flip fails as before
    flipped = compare(s, variant(s, verdicts__0__verdict="within_noise"))
    assert statuses(flipped)[("verdict", key)] == "fail" and not flipped.passed
    assert flipped.failures[0].message == "verdict flipped helps -> within_noise (gain or its SE unavailable)"
    moved = compare(s, variant(s, verdicts__0__verdict="inconclusive"))
    assert statuses(moved)[("verdict", key)] == "warn"
    assert moved.passed and moved.exit_code == 0 and len(moved.warnings) == 1
    back = compare(variant(s, verdicts__1__verdict="inconclusive"), s)
    assert back.passed and back.warnings[0].message == "verdict moved inconclusive -> within_noise"


def test_gates_fail_only_when_intervals_part() -> None:
    s = hand_summary()
    key, other = s["gates"][0]["key"], s["gates"][1]["key"]
    within = variant(variant(s, gates__0__ci_low=300_000.0), gates__0__ci_high=400_000.0)
    assert statuses(compare(s, within))[("gate", key)] == "pass"
    moved = variant(variant(variant(variant(s, gates__0__ci_low=500_000.0), gates__0__ci_high=600_000.0),
                            gates__0__below_params=520_000.0), gates__0__gate_params=560_000.0)
    assert statuses(compare(s, moved))[("gate", key)] == "fail"
    # no gate (lower bound 700k) -> a gate whose interval reaches above 700k: a status change within noise
    near = variant(variant(variant(s, gates__1__status="gate"), gates__1__gate_params=650_000.0), gates__1__ci_high=None)
    assert statuses(compare(s, near))[("gate", other)] == "warn"
    far = variant(variant(near, gates__1__ci_low=100_000.0), gates__1__ci_high=200_000.0)
    assert statuses(compare(s, far))[("gate", other)] == "fail"
    undetermined = variant(s, gates__0__status="undetermined")
    assert statuses(compare(s, undetermined))[("gate", key)] == "warn"


def test_expectation_that_no_longer_holds_fails() -> None:
    s = hand_summary()
    r = compare(s, variant(variant(s, expectations__0__holds=False), expectations__0__status="fails"))
    assert [(f.check, f.key) for f in r.failures] == [("expectation", "imagenet helps on cross_dataset")]


def test_untested_expectation_warns_and_fails_under_strict() -> None:
    s = hand_summary()
    cur = variant(variant(s, expectations__0__holds=False), expectations__0__status="untested")
    r = compare(s, cur)
    assert r.passed and [(w.check, w.current) for w in r.warnings] == [("expectation", "untested")]
    strict = compare(s, cur, strict=True)
    assert not strict.passed and strict.failures[0].check == "expectation"


def test_new_cells_warn_and_missing_means_fail() -> None:
    s = hand_summary()
    cur = variant(s, cells__2__mean=None)
    cur["cells"].append({**s["cells"][0], "key": "detection|new@w1|a|b|scratch"})
    r = compare(s, cur)
    assert statuses(r)[("cell", "detection|new@w1|a|b|scratch")] == "warn"
    assert statuses(r)[("cell", s["cells"][2]["key"])] == "fail"


def test_malformed_summaries_are_unusable_input(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="summary schema is None, this capgate reads 'capgate-summary/2'"):
        compare({"cells": []}, hand_summary())
    bad = tmp_path / "base.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match=r"base\.json: baseline is not valid JSON"):
        read_summary(bad, what="baseline")
    with pytest.raises(InputError, match=r"missing\.json: baseline not found; create it with"):
        read_summary(tmp_path / "missing.json", what="baseline")
    broken = variant(hand_summary())
    del broken["cells"][0]["key"]
    with pytest.raises(InputError, match="'cells' must be a list of objects that each have a string 'key'"):
        read_summary(save_json(tmp_path / "b.json", broken))
    with pytest.raises(InputError, match="not a finite number >= 0"):
        compare(hand_summary(), hand_summary(), z=-1)


def test_junit_xml_has_one_testcase_per_row_and_counts_failures(tmp_path: Path) -> None:
    s = hand_summary()
    cur = variant(variant(s, cells__0__mean=0.9), verdicts__1__verdict="inconclusive")
    r = compare(s, cur)
    path = write_junit(r, tmp_path / "out" / "junit.xml")
    root = ET.parse(path).getroot()
    suite = root.find("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == len(r.rows) == 11
    assert int(suite.get("failures")) == len(r.failures) == 2  # the cell, and its init's systematic shift
    failed = [c for c in cases if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == [s["cells"][0]["key"], "hand|detection|scratch (2 cells)"]
    assert [c.get("classname") for c in failed] == ["capgate.check.cell", "capgate.check.systematic"]
    warned = [c for c in cases if c.find("system-out") is not None]
    assert len(warned) == 1 and warned[0].find("system-out").text.startswith("WARNING: verdict moved")


def test_table_lists_failures_first_and_states_the_rule() -> None:
    s = hand_summary()
    r = compare(s, variant(s, cells__3__mean=0.9))
    lines = format_table(r).splitlines()
    assert lines[0].split() == ["status", "check", "key", "baseline", "current", "tolerance", "note"]
    assert lines[2].startswith("FAIL") and s["cells"][3]["key"] in lines[2]
    assert lines[-2] == "check FAIL: 9 passed, 0 warnings, 2 failures"
    assert lines[-1].startswith("rule: how each tolerance is computed: rerun with --explain")
    explained = format_table(r, explain=True).splitlines()
    assert explained[-1].startswith("rule: cell mean passes when |current - baseline| <= max(z * sqrt(")
    short = format_table(r, only_problems=True).splitlines()
    assert len(short) == 2 + 2 + 3 and short[4] == "(9 passing comparisons not shown)"


def test_expectations_can_be_held_to_the_baseline_status():
    from capgate.check.rules import _compare_expectations

    base = {"expectations": [{"text": "a", "status": "fails"}, {"text": "b", "status": "holds"},
                             {"text": "c", "status": "untested"}]}
    cur = {"expectations": [{"text": "a", "status": "fails"}, {"text": "b", "status": "fails"},
                            {"text": "c", "status": "holds"}]}
    hold = {r.key: r.status for r in _compare_expectations(base, cur, strict=False)}
    assert hold == {"a": "fail", "b": "fail", "c": "pass"}
    kept = {r.key: r.status for r in _compare_expectations(base, cur, strict=False, mode="baseline")}
    assert kept == {"a": "pass", "b": "fail", "c": "warn"}  # kept / drifted / to-from untested
    assert {r.key: r.status for r in _compare_expectations(base, cur, strict=True, mode="baseline")}["c"] == "fail"


def test_long_keys_are_wrapped_whole_so_two_rows_never_print_the_same_key() -> None:
    from capgate.check.output import wrap_key
    from capgate.check.rules import CheckResult, CheckRow

    stem = "det|efficientnet|efficientnet_b0@w0.35|llvip/rgb|flir/rgb|cross_dataset|"
    assert wrap_key("a|bb|ccc", 5) == ["a|bb|", "ccc"]
    assert wrap_key("abcdefgh", 3) == ["abc", "def", "gh"]  # no separator: cut at the width
    rows = tuple(CheckRow("verdict", stem + init, "helps", "within_noise", "", "warn", "verdict moved")
                 for init in ("imagenet", "imagenet_coco"))
    lines = format_table(CheckResult(rows=rows, rule="r"), max_key=40).splitlines()
    assert [ln.split()[-1] if ln.startswith(" ") else ln.split()[2] for ln in lines[2:8]] == [
        "det|efficientnet|efficientnet_b0@w0.35|", "llvip/rgb|flir/rgb|cross_dataset|", "imagenet",
        "det|efficientnet|efficientnet_b0@w0.35|", "llvip/rgb|flir/rgb|cross_dataset|", "imagenet_coco"]
    assert "".join(ln.split()[-1] if ln.startswith(" ") else ln.split()[2] for ln in lines[5:8]) == \
        stem + "imagenet_coco"
