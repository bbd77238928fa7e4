"""Calibration over simulated studies with a known truth and the noise that breaks naive statistics:
eval sets 5x apart in noise, a seed component shared by every init (matched-seed correlation 0.6), a
run component shared across a run's eval sets, failed runs and missing runs (unbalanced seeds).

Each study: 3 rungs x 2 train sets x 2 eval sets (one quiet, SD 0.5 pp; one noisy, 2.5 pp) x
(scratch, imagenet) x 4 seeds = 12 contrasts. Tolerances are about 3 Monte-Carlo SEs.
``benchmarks/calibration.py`` prints the same figures over more studies.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from capgate.analysis import Truth, resolve_plan, simulate_results, true_gains
from capgate.analysis.analyze import analyze_contrasts

RUNGS = [("net@w0.5 (R-0)", 700_000), ("net@w0.3 (R-1)", 280_000), ("net@w0.1 (R-2)", 50_000)]
SETS = {"a": [("a", "in_domain"), ("b", "cross_dataset")], "b": [("b", "in_domain"), ("a", "cross_dataset")]}
QUIET, NOISY = 0.005, 0.025
N = 40


def truth(seeds: int = 4, gains: dict | None = None, **kw) -> Truth:
    t = Truth(study="cal", families={"net": RUNGS}, inits=("scratch", "imagenet"), sets=SETS, seeds=seeds,
              gains={"imagenet": gains or {}}, rung_sd=0.01, seed_sd=np.sqrt(0.6), run_sd=np.sqrt(0.3),
              noise_sd=np.sqrt(0.1), eval_noise={"a": QUIET, "b": NOISY}, p_failed=0.05, p_missing=0.05,
              latency=False, base=0.5, slope_per_decade=0.05)
    return dataclasses.replace(t, **kw)


def run(tr: Truth, seed0: int, plan: dict | None = None, n: int = N) -> pd.DataFrame:
    plan = resolve_plan({"n_boot": 0, **(plan or {})})
    tg = true_gains(tr).set_index(["backbone", "train_set", "eval_set", "init"])["true_gain"]
    out = []
    for i in range(n):
        _, g, _ = analyze_contrasts(simulate_results(tr, seed=seed0 + i), plan)
        g["sim"] = i
        g["true_gain"] = [tg[k] for k in zip(g["backbone"], g["train_set"], g["eval_set"], g["init"])]
        g["cls"] = np.where(g["eval_set"] == "a", "quiet", "noisy")
        out.append(g)
    return pd.concat(out, ignore_index=True)


def test_null_studies_keep_false_claims_and_coverage():
    g = run(truth(), 1000)
    false = g["verdict"].isin(["helps", "hurts"]).groupby(g["sim"]).any().mean()
    assert false <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / N)
    cover = ((g["ci_low"] <= g["true_gain"]) & (g["true_gain"] <= g["ci_high"])).groupby(g["cls"]).mean()
    se = 3 * np.sqrt(0.05 * 0.95 / (len(g) / 2))
    assert (cover - 0.95).abs().max() <= se + 0.02, cover.to_dict()
    # a 1 pp margin is 2 quiet SDs: the quiet eval set can show equivalence, the noisy one cannot yet
    wn = (g["verdict"] == "within_noise").groupby(g["cls"]).mean()
    assert wn["quiet"] > 0.2 and wn["noisy"] == 0.0
    assert (g["n_dropped"] > 0).any()  # missing and failed runs leave unpartnered seeds


def test_null_studies_with_scratch_arms_3x_noisier():
    # noise differs by init as well as by eval set (the demo's scratch arms are about 4x noisier in-domain
    # than pretrained ones): two contrasts share the noisy baseline arm
    tr = truth(inits=("scratch", "imagenet", "imagenet_coco"), gains={}, init_noise={"scratch": 3.0})
    g = run(tr, 1500, {"contrasts": ["imagenet", "imagenet_coco"]})
    false = g["verdict"].isin(["helps", "hurts"]).groupby(g["sim"]).any().mean()
    assert false <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / N)
    cover = ((g["ci_low"] <= g["true_gain"]) & (g["true_gain"] <= g["ci_high"])).groupby(g["cls"]).mean()
    assert (cover - 0.95).abs().max() <= 3 * np.sqrt(0.05 * 0.95 / (len(g) / 2)) + 0.02, cover.to_dict()
    # the noisier init is not taken for an outlier of its eval set: most contrasts keep the moderated df
    # (0.87 here; 0.70 with one prior per eval set, which flags arms of the noisier init as outliers)
    assert (g["df"] > 4).mean() > 0.8


def test_a_quiet_cells_4_sd_gain_is_called_helps():
    g = run(truth(gains={"in_domain": 4 * QUIET, "cross_dataset": 0.0}), 2000, n=20)
    quiet = g[(g["cls"] == "quiet") & (g["shift"] == "in_domain")]
    assert (quiet["verdict"] == "helps").mean() >= 0.90
    assert (g["verdict"] == "hurts").mean() <= 0.02


def test_p_helps_at_zero_one_and_two_margins():
    rates = []
    for k, mult in enumerate((0.0, 1.0, 2.0)):
        g = run(truth(gains={"in_domain": mult * 0.01, "cross_dataset": 0.0}), 3000 + 100 * k, n=20)
        quiet = g[(g["cls"] == "quiet") & (g["shift"] == "in_domain")]
        rates.append((quiet["verdict"] == "helps").mean())
    # at gain = margin, "estimate beyond the margin" caps P(helps) at one half
    assert rates[0] <= 0.02 and rates[1] <= 0.5 and rates[2] > rates[1] > rates[0]


def test_pairing_sees_the_shared_seed():
    tr = truth(gains={"in_domain": 2 * NOISY, "cross_dataset": 0.0})
    paired = run(tr, 4000, n=20)
    unpaired = run(tr, 4000, {"pairing": "unpaired"}, n=20)
    sel = lambda g: g[(g["cls"] == "noisy") & (g["shift"] == "in_domain")]  # noqa: E731
    p, u = ((sel(x)["verdict"] == "helps").mean() for x in (paired, unpaired))
    assert p > u + 0.2
    assert (sel(paired)["se"].median() < 0.75 * sel(unpaired)["se"].median())


@pytest.mark.slow
def test_advised_seeds_deliver_the_promised_power():
    # pilots: null studies with 4 seeds advise seeds for the largest rung's noisy in-domain cells (a 2 pp
    # gain is 0.9 SD of their paired difference); rerun with that many seeds and a true gain of
    # 2 x margin there: P(helps) = 0.8 +- 0.10
    pilots = run(truth(), 5000, n=20)
    target = (pilots["backbone"] == RUNGS[0][0]) & (pilots["cls"] == "noisy") & (pilots["shift"] == "in_domain")
    advised = int(pilots.loc[target, "seeds_needed_helps"].dropna().median())
    top = {"low": 0.0, "high": 0.02, "gate": 600_000, "width": 0.005}
    g = run(truth(seeds=advised, gains={"in_domain": top}, p_failed=0.0, p_missing=0.0), 6000, n=40)
    hit = g[(g["backbone"] == RUNGS[0][0]) & (g["cls"] == "noisy") & (g["shift"] == "in_domain")]
    assert abs((hit["verdict"] == "helps").mean() - 0.8) <= 0.10


def test_the_calibration_benchmark_runs_its_verdicts_suite():
    """The README's calibration commands run (two studies a scenario: the figures are the benchmark's), the verdicts
    suite and --suite classic."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "benchmarks/calibration.py", "--studies", "2", "--only",
                          "null, 3 seeds, margin 0|one replicate|isolate (oracle)"], capture_output=True, text=True,
                         cwd=repo, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "[null, 3 seeds, margin 0] false-claim share" in out.stdout
    assert "[null, one run in 20 drops 5 SD, 5 seeds, outlier_runs: isolate (oracle)] false-claim share" in out.stdout
    assert "verdicts named conditional: 1.000" in out.stdout
    classic = subprocess.run([sys.executable, "benchmarks/calibration.py", "--suite", "classic", "--studies", "2"],
                             capture_output=True, text=True, cwd=repo, timeout=600)
    assert classic.returncode == 0, classic.stderr  # the README's --suite classic runs too
    assert "[null, eval sets 5x apart]" in classic.stdout and "seeds_needed: median advice" in classic.stdout
