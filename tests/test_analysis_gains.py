"""Gains, verdicts, corrections and seeds-needed on hand-checkable numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from capgate.analysis import analyze, resolve_plan, validate
from capgate.analysis.cells import cell_table, metric_frame, pooled_noise
from capgate.analysis.gains import adjust_pvalues, compute_gains, decide, seeds_needed


def tiny_table(values: dict[str, list[float]], *, status: dict[tuple[str, int], str] | None = None) -> pd.DataFrame:
    """One site (detection, one rung, llvip/rgb -> flir/rgb), one run per (init, seed)."""
    rows = []
    for init, vals in values.items():
        for seed, v in enumerate(vals):
            st = (status or {}).get((init, seed), "ok")
            rows.append({
                "study": "tiny", "task": "detection", "run_id": f"{init}-{seed}", "family": "efficientnet",
                "width": 0.3, "depth": 0.5, "resolution": 64, "backbone": "efficientnet_b0@w0.3d0.5 (B-3)",
                "params": 277402, "macs": 1000, "init": init, "init_source": "none", "train_set": "llvip/rgb",
                "eval_set": "flir/rgb", "shift": "cross_dataset", "seed": seed, "status": st,
                "map": v if st == "ok" else np.nan, "ap50": np.nan, "ap75": np.nan,
                "capgate_version": "0", "torch_version": "0", "timm_version": "0", "git_sha": "0",
                "spec_hash": "0", "data_fingerprint": "0", "started_at": "t0", "ended_at": "t1",
                "wall_seconds": 1.0, "error": None if st == "ok" else "boom",
            })
    return pd.DataFrame(rows)


GOLDEN = {"scratch": [0.2, 0.3, 0.4], "imagenet": [0.5, 0.6, 0.7], "imagenet_coco": [0.2, 0.3, 0.4]}


def test_golden_gains_and_verdicts():
    t = validate(tiny_table(GOLDEN))
    plan = resolve_plan({"n_boot": 0})
    gains, noise = compute_gains(metric_frame(t, plan), cell_table(t, plan), plan)
    # Every arm has SD 0.1 (deviations -0.1, 0, 0.1 over n - 1 = 2), so the pooled SD is 0.1 with
    # df = 3 arms x (3 - 1) = 6, and the margin (pooled_sd rule) is 0.1.
    assert noise.loc[0, "sd_pooled"] == pytest.approx(0.1)
    assert noise.loc[0, "df"] == 6
    g = gains.set_index("init")
    im, co = g.loc["imagenet"], g.loc["imagenet_coco"]
    # imagenet: gain 0.6 - 0.3 = 0.3; se = 0.1 * sqrt(1/3 + 1/3) = 0.0816497; t = 3.674235;
    # two-sided p = 2 * P(T6 > 3.674235) = 0.0104017; CI = 0.3 -+ 2.446912 * 0.0816497 = 0.3 -+ 0.199790.
    assert im["gain"] == pytest.approx(0.3)
    assert im["se"] == pytest.approx(0.1 * np.sqrt(2 / 3))
    assert im["df"] == 6
    assert im["ci_low"] == pytest.approx(0.3 - 0.199790, abs=1e-6)
    assert im["ci_high"] == pytest.approx(0.3 + 0.199790, abs=1e-6)
    assert im["p_value"] == pytest.approx(0.0104017, abs=1e-7)
    # Holm over 2 contrasts: the smaller p doubles (0.0208034), the other stays max(0.0208, 1) = 1.
    assert im["p_adj"] == pytest.approx(0.0208034, abs=1e-7)
    assert im["margin"] == pytest.approx(0.1) and im["sd_pooled"] == pytest.approx(0.1)
    assert im["sd_cell"] == pytest.approx(0.1)
    assert (im["n_init"], im["n_baseline"]) == (3, 3)
    assert im["verdict"] == "helps" and pd.isna(im["seeds_needed"])  # p_adj < 0.05 and 0.3 > 0.1
    # imagenet_coco: identical to scratch: gain 0, p = 1, p_adj = 1; TOST p = P(T6 > 0.1/0.0816497)
    # = P(T6 > 1.224745) = 0.133285 > 0.05: not shown equivalent -> inconclusive.
    assert co["gain"] == pytest.approx(0.0, abs=1e-12)
    assert co["p_value"] == pytest.approx(1.0) and co["p_adj"] == pytest.approx(1.0)
    assert co["p_tost"] == pytest.approx(0.133285, abs=1e-6)
    assert co["verdict"] == "inconclusive"
    # Seeds per arm for TOST to succeed with probability 0.8 when the true gain is 0:
    # need 0.1 / se >= t(0.95, 6) + z(0.9) = 1.943180 + 1.281552, so se <= 0.031010,
    # sqrt(2/n) <= 0.31010, n >= 20.8 -> 21.
    assert co["seeds_needed"] == 21
    assert gains.loc[0, "key"] == "detection|efficientnet_b0@w0.3d0.5 (B-3)|llvip/rgb|flir/rgb|imagenet|vs|scratch"


def test_failed_runs_are_counted_and_shrink_n():
    t = validate(tiny_table(GOLDEN, status={("imagenet", 2): "failed", ("scratch", 0): "diverged"}))
    a = analyze(t, {"n_boot": 0})
    c = a.cells.set_index("init")
    assert c.loc["imagenet", "n_ok"] == 2 and c.loc["imagenet", "n_failed"] == 1
    assert c.loc["scratch", "n_ok"] == 2 and c.loc["scratch", "n_diverged"] == 1
    assert not c.loc["imagenet", "complete"] and c.loc["imagenet_coco", "complete"]
    g = a.gains.set_index("init").loc["imagenet"]
    # imagenet {0.5, 0.6}: mean 0.55; scratch {0.3, 0.4}: mean 0.35; gain 0.2
    assert g["gain"] == pytest.approx(0.2)
    assert (g["n_init"], g["n_baseline"]) == (2, 2)
    assert any("incomplete" in w for w in a.warnings)
    assert any("1 failed" in w for w in a.warnings) and any("1 diverged" in w for w in a.warnings)


def test_within_noise_with_many_seeds():
    rng = np.random.default_rng(0)
    base = list(0.3 + rng.normal(0, 0.01, 30))
    same = list(0.3 + rng.normal(0, 0.01, 30))
    t = validate(tiny_table({"scratch": base, "imagenet": same}))
    a = analyze(t, {"n_boot": 0, "margin": 0.01})
    g = a.gains.iloc[0]
    assert g["verdict"] == "within_noise"
    # the (1 - 2 alpha) interval lies inside the margin
    from scipy import stats
    half = stats.t.ppf(0.95, g["df"]) * g["se"]
    assert -0.01 < g["gain"] - half and g["gain"] + half < 0.01


def test_hurts_is_the_mirror():
    t = validate(tiny_table({"scratch": GOLDEN["imagenet"], "imagenet": GOLDEN["scratch"]}))
    a = analyze(t, {"n_boot": 0})
    g = a.gains.iloc[0]
    assert g["gain"] == pytest.approx(-0.3) and g["verdict"] == "hurts"


def test_decide_rule():
    assert decide(0.3, 0.01, 0.9, 0.1, 0.05) == "helps"
    assert decide(0.05, 0.01, 0.9, 0.1, 0.05) == "inconclusive"  # significant but below the margin
    assert decide(0.05, 0.01, 0.01, 0.1, 0.05) == "within_noise"  # significant, but shown smaller than margin
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


def test_seeds_needed_monotone_and_capped():
    assert seeds_needed(0.05, 0.01, 0.01, alpha=0.05, df=100) == 2  # 5 SD gain: two seeds suffice
    n_big, n_small = (seeds_needed(d, 0.01, 0.01, alpha=0.05, df=100) for d in (0.03, 0.015))
    assert n_big < n_small
    assert seeds_needed(0.0101, 0.01, 0.01, alpha=0.05, df=100, cap=50) == 50  # at the margin: cap
    assert seeds_needed(0.02, np.nan, 0.01, alpha=0.05, df=100) is None


def test_pooled_noise_counts_runs_once_across_eval_sets():
    t = tiny_table(GOLDEN)
    t2 = t.assign(eval_set="llvip/rgb", shift="in_domain")
    t2["map"] = t2["map"] + 0.05
    both = validate(pd.concat([t, t2], ignore_index=True))
    noise = pooled_noise(metric_frame(both, resolve_plan(None)))
    # 6 arms (3 inits x 2 eval sets) of SD 0.1, but only 3 run groups of 3 runs: df = 3 x 2 = 6
    assert noise.loc[0, "sd_pooled"] == pytest.approx(0.1)
    assert noise.loc[0, "df"] == 6
