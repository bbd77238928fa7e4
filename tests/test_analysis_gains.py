"""Gains, verdicts, pairing, correction families and seeds-needed on hand-checkable numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from capgate.analysis import analyze, resolve_plan, validate
from scipy import stats

from capgate.analysis.cells import cell_table, metric_frame
from capgate.analysis.gains import compute_gains, power_helps, power_within, seeds_needed
from capgate.analysis.verdicts import adjust_pvalues, decide


def tiny_table(values: dict[str, list[float]], *, status: dict[tuple[str, int], str] | None = None,
               study: str = "tiny") -> pd.DataFrame:
    """One site (detection, one rung, llvip/rgb -> flir/rgb), one run per (init, seed)."""
    rows = []
    for init, vals in values.items():
        for seed, v in enumerate(vals):
            st = (status or {}).get((init, seed), "ok")
            rows.append({
                "study": study, "task": "detection", "run_id": f"{init}-{seed}", "family": "efficientnet",
                "width": 0.3, "depth": 0.5, "resolution": 64, "backbone": "efficientnet_b0@w0.3d0.5 (B-3)",
                "params": 277402, "macs": 1000, "init": init, "init_source": "none", "train_set": "llvip/rgb",
                "eval_set": "flir/rgb", "shift": "cross_dataset", "seed": seed, "status": st,
                "map": v if st == "ok" else np.nan, "ap50": np.nan, "ap75": np.nan,
                "capgate_version": "0", "torch_version": "0", "timm_version": "0", "git_sha": "0",
                "spec_hash": "0", "data_fingerprint": "0", "started_at": "t0", "ended_at": "t1",
                "wall_seconds": 1.0, "error": None if st == "ok" else "boom",
            })
    return pd.DataFrame(rows)


PAIRED = {"scratch": [0.20, 0.30, 0.40], "imagenet": [0.25, 0.37, 0.44]}


def _gains(values, plan=None, **kw):
    t = validate(tiny_table(values, **kw))
    plan = resolve_plan({"n_boot": 0, **(plan or {})})
    return compute_gains(metric_frame(t, plan), cell_table(t, plan), plan)[0]


def test_golden_paired_t():
    # One contrast: the prior of its difference variance has nothing to pool (d0 = 0), so this is the
    # classical paired t test. d = 0.05, 0.07, 0.04: mean 0.053333, SD 0.015275, se = SD / sqrt(3)
    # = 0.0088192, t = 6.047432 on 2 df, two-sided p = 0.026271; CI = mean -+ 4.302653 x se = -+ 0.037946.
    g = _gains(PAIRED).iloc[0]
    assert g["pairing"] == "paired" and (g["n_pairs"], g["n_dropped"]) == (3, 0)
    assert g["gain"] == pytest.approx(0.0533333, abs=1e-7)
    assert g["sd_raw"] == pytest.approx(0.0152753, abs=1e-7) and g["sd_mod"] == pytest.approx(0.0152753, abs=1e-7)
    assert g["se"] == pytest.approx(0.0088192, abs=1e-7) and g["df"] == 2
    assert g["p_value"] == pytest.approx(0.0262710, abs=1e-7)
    assert g["ci_low"] == pytest.approx(0.0533333 - 0.0379458, abs=1e-7)
    assert g["p_adj"] == pytest.approx(g["p_value"])  # a family of one contrast
    assert g["verdict"] == "helps"  # p_adj < 0.05 and 0.0533 > the 1 pp margin
    assert g["margin"] == 0.01
    assert g["key"] == "tiny|detection|efficientnet_b0@w0.3d0.5 (B-3)|llvip/rgb|flir/rgb|imagenet|vs|scratch"


def test_unpaired_analysis_ignores_the_shared_seed():
    # The arms differ by ~5 pp but each spans 20 pp: unpaired, the seed noise swamps the gain.
    g = _gains(PAIRED, {"pairing": "unpaired"}).iloc[0]
    assert g["pairing"] == "unpaired" and g["n_pairs"] == 0
    assert g["gain"] == pytest.approx(0.0533333, abs=1e-7)
    assert g["se"] > 5 * 0.0088192 and g["verdict"] == "inconclusive"


def test_a_run_without_its_partner_drops_only_that_pair():
    # matched seeds move together here: the paired estimate on the complete pairs has the smaller variance
    values = {"scratch": [0.20, 0.30, 0.40, 0.50], "imagenet": [0.25, 0.37, 0.44, 0.9]}
    g = _gains(values, status={("imagenet", 3): "failed"}).iloc[0]
    assert (g["n_pairs"], g["n_dropped"], g["n_init"], g["n_baseline"]) == (3, 1, 3, 4)
    assert g["gain"] == pytest.approx(0.0533333, abs=1e-7)  # the three complete pairs only
    assert g["mean_baseline"] == pytest.approx(0.35)  # the cell mean keeps every ok run


def test_a_run_without_its_partner_joins_as_partially_overlapping_samples():
    # Seeds that share nothing (here the matched seeds even move apart): the unmatched scratch run carries
    # information the paired estimate drops. Derrick et al. (2017): gain = mean_a - mean_b over every ok run,
    # var = c_a s_a^2 + c_b s_b^2 + c_d s_d^2 with c_d = n_p / (n_a n_b), c_a = 1/n_a - c_d, c_b = 1/n_b - c_d,
    # on Satterthwaite's df. The arms' variances are moderated across the two cells; the one paired contrast
    # keeps its own variance of the differences (d0 = 0).
    values = {"scratch": [0.30, 0.22, 0.35, 0.27, 0.31], "imagenet": [0.33, 0.38, 0.29, 0.36, 0.0]}
    status = {("imagenet", 4): "failed"}
    g = _gains(values, status=status).iloc[0]
    t = validate(tiny_table(values, status=status))
    cells = cell_table(t, resolve_plan({"n_boot": 0})).set_index("init")
    sa2, dfa = cells.loc["imagenet", "sd_mod"] ** 2, cells.loc["imagenet", "df_mod"]
    a, b = np.array(values["imagenet"][:4]), np.array(values["scratch"])
    sd2 = float(np.var(a - b[:4], ddof=1))
    cd = 4 / (4 * 5)
    ca, cb = 1 / 4 - cd, 1 / 5 - cd
    assert cb == 0  # every imagenet run is matched: the scratch arm's own variance does not enter
    var = ca * sa2 + cd * sd2
    assert (g["n_pairs"], g["n_dropped"], g["n_init"], g["n_baseline"]) == (4, 0, 4, 5)
    assert g["pairing"] == "paired"
    assert g["gain"] == pytest.approx(a.mean() - b.mean(), rel=1e-9)  # 0.34 - 0.29: the unmatched run counts
    assert g["se"] == pytest.approx(np.sqrt(var), rel=1e-9)
    assert g["df"] == pytest.approx(var ** 2 / ((ca * sa2) ** 2 / dfa + (cd * sd2) ** 2 / 3), rel=1e-9)
    assert g["se"] < np.sqrt(sd2 / 4)  # below the paired estimate's SE, which is why it is used


def test_family_is_each_study_and_task():
    # A second study in the same report does not change the first study's adjusted p-values.
    one = validate(tiny_table(PAIRED))
    other = tiny_table({"scratch": [0.2, 0.3, 0.4], "imagenet": [0.2, 0.31, 0.39]}, study="other")
    other["run_id"] = "o-" + other["run_id"]
    both = validate(pd.concat([tiny_table(PAIRED), other], ignore_index=True))
    plan = resolve_plan({"n_boot": 0})
    alone = compute_gains(metric_frame(one, plan), cell_table(one, plan), plan)[0].set_index("key")
    joint = compute_gains(metric_frame(both, plan), cell_table(both, plan), plan)[0].set_index("key")
    k = alone.index[0]
    assert joint.loc[k, "p_adj"] == pytest.approx(alone.loc[k, "p_adj"]) and joint.loc[k, "verdict"] == "helps"
    assert len(joint) == 2 and joint["study"].tolist() == ["other", "tiny"]


def test_failed_runs_are_counted_and_shrink_n():
    values = {"scratch": [0.2, 0.3, 0.4], "imagenet": [0.5, 0.6, 0.7]}
    t = validate(tiny_table(values, status={("imagenet", 2): "failed", ("scratch", 0): "diverged"}))
    a = analyze(t, {"n_boot": 0})
    c = a.cells.set_index("init")
    assert c.loc["imagenet", "n_ok"] == 2 and c.loc["imagenet", "n_failed"] == 1
    assert c.loc["scratch", "n_ok"] == 2 and c.loc["scratch", "n_diverged"] == 1
    assert not c.loc["imagenet", "complete"]
    g = a.gains.iloc[0]
    # one complete pair (seed 1: 0.6 - 0.3): fewer than two pairs, so auto pairing analyses it unpaired
    assert g["pairing"] == "unpaired" and g["gain"] == pytest.approx(0.55 - 0.35)
    assert any("incomplete" in w for w in a.warnings)
    assert any("1 failed" in w for w in a.warnings) and any("1 diverged" in w for w in a.warnings)


def test_within_noise_with_many_seeds():
    rng = np.random.default_rng(0)
    shared = rng.normal(0, 0.01, 30)
    t = validate(tiny_table({"scratch": list(0.3 + shared + rng.normal(0, 0.002, 30)),
                             "imagenet": list(0.3 + shared + rng.normal(0, 0.002, 30))}))
    g = analyze(t, {"n_boot": 0}).gains.iloc[0]
    assert g["verdict"] == "within_noise"
    half = stats.t.ppf(0.95, g["df"]) * g["se"]  # the (1 - 2 alpha) interval lies inside the margin
    assert -0.01 < g["gain"] - half and g["gain"] + half < 0.01


def test_hurts_is_the_mirror():
    g = _gains({"scratch": PAIRED["imagenet"], "imagenet": PAIRED["scratch"]}).iloc[0]
    assert g["gain"] == pytest.approx(-0.0533333, abs=1e-7) and g["verdict"] == "hurts"


def test_decide_rule():
    assert decide(0.3, 0.01, 0.9, 0.1, 0.05) == "helps"
    assert decide(0.05, 0.01, 0.9, 0.1, 0.05) == "inconclusive"  # significant but below the margin
    assert decide(0.05, 0.01, 0.01, 0.1, 0.05) == "within_noise"  # shown smaller than the margin
    assert decide(-0.3, 0.01, 0.9, 0.1, 0.05) == "hurts"
    assert decide(np.nan, np.nan, np.nan, 0.1, 0.05) == "inconclusive"


def test_holm_and_bh_by_hand():
    p = np.array([0.01, 0.04, 0.03, np.nan])
    # Holm: sorted 0.01, 0.03, 0.04 times 3, 2, 1 -> 0.03, 0.06, max(0.06, 0.04) = 0.06
    assert np.allclose(adjust_pvalues(p, "holm")[:3], [0.03, 0.06, 0.06])
    # BH: 0.04 * 3/3 = 0.04, 0.03 * 3/2 = 0.045 -> min(0.045, 0.04) = 0.04, 0.01 * 3/1 = 0.03
    assert np.allclose(adjust_pvalues(p, "bh")[:3], [0.03, 0.04, 0.04])
    assert np.isnan(adjust_pvalues(p, "holm")[3])
    assert np.allclose(adjust_pvalues(p, "none")[:3], p[:3])


def test_power_by_hand_with_known_noise():
    # d0 = inf: the SE is known, so P(helps) = P(estimate > max(margin, z x se)) exactly.
    se = 0.01 / np.sqrt(4)  # sigma 0.01 of a paired difference, 4 pairs
    want = stats.norm.sf((max(0.01, stats.norm.ppf(0.975) * se) - 0.02) / se)
    assert power_helps(0.02, 0.01, 0.01, 4, alpha=0.05, d0=np.inf, paired=True) == pytest.approx(want, abs=1e-5)
    half = 0.01 - stats.norm.ppf(0.95) * se
    want = stats.norm.cdf(half / se) - stats.norm.cdf(-half / se)
    assert power_within(0.0, 0.01, 0.01, 4, alpha=0.05, d0=np.inf, paired=True) == pytest.approx(want, abs=1e-5)


def test_seeds_needed_monotone_and_capped():
    n_w, n_h = seeds_needed(0.01, 0.01, alpha=0.05, d0=20, paired=True)
    assert 2 <= n_h <= n_w  # equivalence within 1 SD needs more seeds than detecting 2 SD
    quiet = seeds_needed(0.002, 0.01, alpha=0.05, d0=20, paired=True)
    assert quiet == (2, 2)
    assert seeds_needed(0.05, 0.01, alpha=0.05 / 100, d0=2, paired=False, cap=30) == (30, 30)
    assert seeds_needed(np.nan, 0.01, alpha=0.05, d0=20, paired=True) == (None, None)
