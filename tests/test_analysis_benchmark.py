"""The benchmark's answer on a simulated benchmark with hand-checkable numbers.

Three standard models (a: 1M params, b: 2M, c: 3M), scratch vs imagenet, 5 seeds, two datasets:
- ``keep``: scratch a 0.60 > b 0.50 > c 0.40; imagenet adds 0.10 to every model: same order.
- ``flip``: scratch a 0.60 > b 0.50 > c 0.40; imagenet a 0.40 < b 0.50 < c 0.60: the order reverses.
Seed offsets are a fixed pattern (scratch) and a permutation of it (imagenet): every cell's seed mean is
exact, its SD sqrt(1e-5), and the t interval's half width t(0.975, 4) * sqrt(1e-5) / sqrt(5) = 0.0039264.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from capgate.analysis import analyze
from capgate.analysis.benchmark import benchmark_table, rank_flips, ranking_changes, seed_interval

PARAMS = {"a": 1_000_000, "b": 2_000_000, "c": 3_000_000}
TRUE = {("keep", "scratch"): {"a": 0.6, "b": 0.5, "c": 0.4}, ("keep", "imagenet"): {"a": 0.7, "b": 0.6, "c": 0.5},
        ("flip", "scratch"): {"a": 0.6, "b": 0.5, "c": 0.4}, ("flip", "imagenet"): {"a": 0.4, "b": 0.5, "c": 0.6}}
OFFSET = {"scratch": [-0.004, -0.002, 0.0, 0.002, 0.004], "imagenet": [0.004, -0.004, 0.002, -0.002, 0.0]}
HALF = 0.0039264


def _table() -> pd.DataFrame:
    rows = []
    for (ds, init), models in TRUE.items():
        for bb, mu in models.items():
            for seed, off in enumerate(OFFSET[init]):
                rows.append({"study": "bench", "task": "classification", "run_id": f"{ds}-{bb}-{init}-{seed}",
                             "family": "standard", "backbone": bb, "params": PARAMS[bb], "init": init,
                             "train_set": ds, "eval_set": ds, "shift": "in_domain", "seed": seed, "status": "ok",
                             "top1": mu + off, "top5": mu + off + 0.2, "macro_f1": mu + off - 0.05,
                             "macs": PARAMS[bb] * 10, "size_bytes": PARAMS[bb] * 4, "latency_ms": PARAMS[bb] / 1e6})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def result():
    table = _table()
    return table, analyze(table, {"n_boot": 200}, rng=0)


def test_seed_interval_by_hand():
    m, lo, hi = seed_interval(np.array([0.596, 0.598, 0.6, 0.602, 0.604]))
    assert m == pytest.approx(0.6) and hi - m == pytest.approx(HALF, abs=1e-6) and m - lo == pytest.approx(HALF, abs=1e-6)
    assert math.isnan(seed_interval(np.array([0.5]))[1])


def test_table_means_intervals_costs_and_ranks(result):
    table, a = result
    t = benchmark_table(table, a)
    assert len(t) == 12 and set(t["n_seeds"]) == {5}
    row = t[(t["eval_set"] == "flip") & (t["init"] == "imagenet") & (t["backbone"] == "c")].iloc[0]
    assert row["top1"] == pytest.approx(0.6) and row["top5"] == pytest.approx(0.8) and row["macro_f1"] == pytest.approx(0.55)
    assert row["top1_high"] - row["top1"] == pytest.approx(HALF, abs=1e-6)
    assert (row["params"], row["size_bytes"], row["macs"], row["latency_ms"]) == (3e6, 12e6, 30e6, 3.0)
    ranks = {k: "".join(grp.sort_values("rank")["backbone"]) for k, grp in t.groupby(["eval_set", "init"])}
    assert ranks == {("flip", "imagenet"): "cba", ("flip", "scratch"): "abc",
                     ("keep", "imagenet"): "abc", ("keep", "scratch"): "abc"}


def test_verdicts_per_model_come_from_the_gains(result):
    table, a = result
    t = benchmark_table(table, a).set_index(["eval_set", "init", "backbone"])
    assert t.loc[("keep", "imagenet", "a"), "gain"] == pytest.approx(0.1)
    assert t.loc[("flip", "imagenet", "a"), "gain"] == pytest.approx(-0.2)
    verdict = {k: t.loc[("flip", "imagenet", k), "verdict"] for k in "abc"}
    assert verdict["a"] == "hurts" and verdict["c"] == "helps"
    assert {t.loc[("keep", "imagenet", k), "verdict"] for k in "abc"} == {"helps"}
    assert t.xs("scratch", level="init")["verdict"].isna().all()  # the baseline has no verdict


def test_pareto_fronts_per_init(result):
    table, a = result
    t = benchmark_table(table, a).set_index(["eval_set", "init", "backbone"])
    # scratch on flip: the cheapest model is also the best, it alone is on the front
    assert [t.loc[("flip", "scratch", k), "front_params"] for k in "abc"] == [True, False, False]
    # imagenet on flip: each more costly model is more accurate, all on the front
    assert [t.loc[("flip", "imagenet", k), "front_macs"] for k in "abc"] == [True, True, True]


def test_ranking_flips_by_construction_and_holds_otherwise(result):
    _, a = result
    ch = ranking_changes(a).set_index("eval_set")
    assert ch.loc["flip", "kendall_tau"] == pytest.approx(-1.0) and bool(ch.loc["flip", "flips"])
    assert ch.loc["keep", "kendall_tau"] == pytest.approx(1.0) and not bool(ch.loc["keep", "flips"])
    assert ch.loc["flip", "n_reversed"] == 3 and ch.loc["flip", "n_reversed_beyond_noise"] == 3
    assert ch.loc["keep", "n_reversed"] == 0
    flips = rank_flips(a)
    assert set(zip(flips["better_a"], flips["better_b"])) == {("c", "b"), ("c", "a"), ("b", "a")}  # imagenet's order first
    assert set(flips["init_a"]) == {"imagenet"} and (flips["p_keep_a"] > 0.99).all()


def test_a_reversal_inside_seed_noise_is_not_beyond_noise():
    table = _table()
    # flip's b and c under imagenet 0.0005 apart (noise SD 0.003): their reversal vs scratch is noise
    table.loc[(table["eval_set"] == "flip") & (table["init"] == "imagenet") & (table["backbone"] == "c"), "top1"] -= 0.0995
    flips = rank_flips(analyze(table, {"n_boot": 200}, rng=0))
    bc = flips[(flips["eval_set"] == "flip") & (flips["better_a"] == "c") & (flips["better_b"] == "b")]
    assert len(bc) == 1 and not bool(bc["beyond_noise"].iloc[0])
