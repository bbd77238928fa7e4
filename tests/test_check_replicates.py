"""capgate check across machines: stage noise in pretrained cells, the systematic shift test, minimum
detectable shifts, verdict flips within noise, and the environments of both summaries (worked by hand)."""

from __future__ import annotations

import copy
import math

import pytest

from capgate.analysis.summary import environment
from capgate.check import compare
from capgate.check.noise import Z_POWER, systematic_shifts
from helpers import _cell, hand_summary, variant


def rows(result, check: str = "cell") -> dict:
    return {r.key: r for r in result.rows if r.check == check}


def test_a_pretrained_cell_admits_a_redraw_of_its_stage() -> None:
    s = hand_summary()  # every cell: sd 0.02, 4 seeds, se 0.01; cells 1 and 3 are imagenet
    # assumed: one replicate with stage SD = seed SD -> each side 0.01^2 + 0.02^2; 2 * sqrt(2 * 0.0005) = 6.32 pp
    key = s["cells"][1]["key"]
    inside = compare(s, variant(s, cells__1__mean=0.36 + 0.063), z=2.0)
    outside = compare(s, variant(s, cells__1__mean=0.36 + 0.064), z=2.0)
    assert rows(inside)[key].status == "pass" and rows(inside)[key].tolerance == "±6.32 pp"
    assert rows(outside)[key].status == "fail"
    assert "stage noise assumed (one replicate, stage SD = seed SD)" in rows(inside)[key].message
    # the scratch cell has no stage: the same shift fails it (2 * sqrt(2) * 0.01 = 2.83 pp)
    scratch = s["cells"][0]["key"]
    assert rows(compare(s, variant(s, cells__0__mean=0.30 + 0.063), z=2.0))[scratch].status == "fail"


def test_the_summarys_stage_sd_replaces_the_assumption() -> None:
    s = variant(variant(hand_summary(), cells__1__stage_sd=0.04), cells__1__n_stages=2)
    key = s["cells"][1]["key"]
    # each side 0.01^2 + 0.04^2 / 2 = 0.0009; 2 * sqrt(0.0018) = 8.49 pp
    assert rows(compare(s, s, z=2.0))[key].tolerance == "±8.49 pp"
    assert "stage noise from the summary's stage_sd" in rows(compare(s, s, z=2.0))[key].message
    none = variant(hand_summary(), cells__1__stage_sd=None)  # the analysis found no stage component
    assert rows(compare(none, none, z=2.0))[key].tolerance == "±2.83 pp"


def test_each_row_states_its_minimum_detectable_shift() -> None:
    s = hand_summary()
    row = rows(compare(s, s, z=2.0))[s["cells"][0]["key"]]
    se = math.sqrt(2) * 0.01
    assert Z_POWER == pytest.approx(0.8416, abs=1e-4)
    assert f"detectable shift {100 * (2 * se + Z_POWER * se):.2f} pp" == "detectable shift 4.02 pp"
    assert "detectable shift 4.02 pp" in row.message


def _wide(n_backbones: int = 8) -> dict:
    """A summary of ``n_backbones`` backbones x 2 eval sets x scratch/imagenet, every cell sd 0.02, 4 seeds."""
    s = hand_summary()
    s["cells"] = [_cell(("detection", f"mbv3@w{i}", "llvip/rgb", ev, init), 0.30)
                  for i in range(n_backbones) for ev in ("flir/rgb", "llvip/ir") for init in ("scratch", "imagenet")]
    s["verdicts"], s["gates"], s["expectations"] = [], [], []
    return s


def test_a_shift_of_every_cell_of_one_init_fails_the_systematic_test_only() -> None:
    s = _wide()
    cur = copy.deepcopy(s)
    for c in cur["cells"]:
        if c["init"] == "scratch":
            c["mean"] += 0.02
    r = compare(s, cur, z=2.0)
    assert all(row.status == "pass" for row in r.rows if row.check == "cell")  # each cell: 2 pp < 2.83 pp
    sysrows = rows(r, "systematic")
    bad = sysrows["hand|detection|scratch (16 cells)"]
    # 8 units (backbone x train set) of 2 eval sets, each unit's SD sqrt(2) * 0.01:
    # SE = sqrt(8 * (2/16)^2 * 0.0002) = 0.005, tolerance 2 * 0.005 = 1 pp, detectable 1 + 0.84 * 0.5 = 1.42 pp
    assert bad.status == "fail" and bad.tolerance == "±1.00 pp" and r.exit_code == 1
    assert "+2.00 pp over 16 cells in 8 independent units (SE 0.50 pp); detectable shift 1.42 pp" in bad.message
    assert sysrows["hand|detection|imagenet (16 cells)"].status == "pass"


def test_the_systematic_se_treats_cells_sharing_a_stage_as_one_unit() -> None:
    s = _wide(2)
    pairs = [(c, c, 0.01, 0.01, c["init"] == "imagenet") for c in s["cells"]]
    shifts = {x.key: x for x in systematic_shifts(pairs, 2.0, 0.0, None)}
    # imagenet: 2 units (backbones) of 2 cells, each unit SD hypot(0.01, 0.01); SE = sqrt(2 * 0.25 * 0.0002) = 0.01
    img = shifts["hand|detection|imagenet (4 cells)"]
    assert img.n_units == 2 and img.se == pytest.approx(0.01) and img.tol == pytest.approx(0.02)
    assert shifts["hand|detection|scratch (4 cells)"].n_units == 2  # one train set: backbone x train set


def test_a_verdict_flip_within_noise_warns_and_beyond_noise_fails() -> None:
    s = variant(hand_summary(), verdicts__0__se=0.01)
    key = s["verdicts"][0]["key"]
    # arm cell (imagenet, assumed stage SD 0.02): each side 0.01^2 + 0.02^2; z 2 -> 6.32 pp
    near = variant(variant(s, verdicts__0__verdict="within_noise"), verdicts__0__gain=0.02)
    far = variant(variant(s, verdicts__0__verdict="within_noise"), verdicts__0__gain=-0.01)
    r_near, r_far = compare(s, near, z=2.0), compare(s, far, z=2.0)
    assert rows(r_near, "verdict")[key].status == "warn" and r_near.passed
    assert rows(r_near, "verdict")[key].message.startswith("verdict flipped helps -> within_noise, but the gain "
                                                           "moved within noise (gain +6.00 -> +2.00 pp, tolerance ±6.32 pp")
    assert rows(r_far, "verdict")[key].status == "fail" and not r_far.passed


def test_check_prints_both_environments_when_they_differ() -> None:
    env = {"cpu": "AMD EPYC 7B13", "torch": "2.4.1", "timm": "1.0.9", "git_sha": "abc", "capgate": "0.1.0"}
    s = {**hand_summary(), "environment": env}
    assert compare(s, s).notes == ()
    other = {**s, "environment": {**env, "cpu": "Intel Xeon 8480", "git_sha": "def"}}
    notes = compare(s, other).notes
    assert notes[0] == "made in another environment (cpu, git_sha differ)"
    assert notes[1] == "baseline environment: cpu AMD EPYC 7B13, torch 2.4.1, timm 1.0.9, git_sha abc, capgate 0.1.0"
    assert notes[2].startswith("current environment: cpu Intel Xeon 8480, torch 2.4.1")
    old = compare(hand_summary(), other).notes
    assert old[0].startswith("the baseline records no environment")


def test_the_summary_environment_takes_the_runs_versions() -> None:
    env = environment({"torch_version": ["2.4.1"], "timm_version": ["1.0.9", "1.0.11"], "git_sha": ["unknown"],
                       "capgate_version": []})
    assert env["torch"] == "2.4.1" and env["timm"] == "1.0.9+1.0.11"
    assert env["git_sha"] is None  # no run recorded one
    assert env["capgate"]  # this process's capgate
    assert set(env) == {"cpu", "torch", "timm", "git_sha", "capgate", "python"}


def test_the_summarys_se_rerun_replaces_the_assumption() -> None:
    s = variant(variant(hand_summary(), cells__1__se_rerun=0.03), cells__1__n_stages=3)
    key = s["cells"][1]["key"]
    # se_rerun 0.03 is the whole SE of the cell under a redraw of its 3 replicates: each side 0.03^2;
    # 2 * sqrt(2) * 0.03 = 8.49 pp
    row = rows(compare(s, s, z=2.0))[key]
    assert row.tolerance == "±8.49 pp" and "stage noise from 3 pretraining replicates (se_rerun)" in row.message
    assert "assumed" not in row.message
    # se_rerun below the cell's own se adds nothing (the scratch-like 2.83 pp)
    low = variant(variant(hand_summary(), cells__1__se_rerun=0.005), cells__1__n_stages=3)
    assert rows(compare(low, low, z=2.0))[key].tolerance == "±2.83 pp"
    # a pretrained cell of one replicate (se_rerun null) keeps the conservative rule
    one = variant(variant(hand_summary(), cells__1__se_rerun=None), cells__1__n_stages=1)
    assert rows(compare(one, one, z=2.0))[key].tolerance == "±6.32 pp"
