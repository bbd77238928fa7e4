"""next-seeds and the group-sequential path of gains: plan keys, repeated p-values, advice, a simulated loop."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from capgate.analysis.gains import gains_of_table
from capgate.analysis.load import validate
from capgate.analysis.next_seeds import next_seeds, replay_adaptive
from capgate.analysis.plan import Sequential, default_schedule, resolve_plan, sequential_looks
from capgate.analysis.simulate import Truth, simulate_results
from capgate.cli import cli
from capgate.errors import ResultsError, SpecError

FAM = {"efficientnet": [("efficientnet_b0@w0.1d0.25 (B-7)", 41_874), ("efficientnet_b0@w0.3d0.5 (B-3)", 277_402),
                        ("efficientnet_b0@w0.5d0.5 (B-1)", 713_574)]}
SETS = {"llvip/rgb": [("llvip/rgb", "in_domain"), ("flir/rgb", "cross_dataset")]}


def truth(**kw) -> Truth:
    base = dict(families=FAM, sets=SETS, inits=("scratch", "imagenet"), seeds=10, run_sd=0.002, noise_sd=0.001,
                seed_sd=0.002, rung_sd=0.01,
                gains={"imagenet": {"in_domain": {"low": 0.0, "high": 0.04, "gate": 200_000},
                                    "cross_dataset": {"low": 0.0, "high": 0.05, "gate": 200_000}}})
    base.update(kw)
    return Truth(**base)


def gains_of(table: pd.DataFrame, plan: dict) -> pd.DataFrame:
    plan = resolve_plan(plan)
    return gains_of_table(table, plan)[0]  # a sequential plan: each contrast stops at its first decisive look


# --- plan keys --------------------------------------------------------------------------------------------

def test_sequential_plan_key_defaults_and_errors() -> None:
    assert resolve_plan({}).sequential is None
    assert default_schedule(10) == [3, 5, 7, 10]
    seq = resolve_plan({"sequential": {"max_seeds": 10}}).sequential
    assert seq == Sequential(max_seeds=10, schedule=(3, 5, 7, 10), spending="obrien_fleming")
    assert seq.to_dict() == {"max_seeds": 10, "schedule": [3, 5, 7, 10], "spending": "obrien_fleming"}
    # a schedule that stops short of max_seeds gets the last look appended
    assert resolve_plan({"sequential": {"max_seeds": 8, "schedule": [3, 5]}}).sequential.schedule == (3, 5, 8)
    for bad, word in (({"max_seeds": 1}, "max_seeds"), ({"max_seeds": 10, "schedule": [5, 3]}, "schedule"),
                      ({"max_seeds": 10, "schedule": [3, 12]}, "schedule"),
                      ({"max_seeds": 10, "spending": "haybittle"}, "spending"), ({"max_seeds": 10, "looks": 3}, "looks")):
        with pytest.raises(SpecError, match=word):
            resolve_plan({"sequential": bad})


def test_sequential_looks_by_hand() -> None:
    seq = Sequential(max_seeds=10, schedule=(3, 5, 7, 10))
    assert sequential_looks(1, seq) == []
    assert sequential_looks(3, seq) == [0.3]
    assert sequential_looks(5, seq) == [0.3, 0.5]
    assert sequential_looks(6, seq) == [0.3, 0.5, 0.6]  # between schedule points: the current look at 6/10
    assert sequential_looks(10, seq) == [0.3, 0.5, 0.7, 1.0]
    assert sequential_looks(12, seq) == [0.3, 0.5, 0.7, 1.0]  # never past full information


# --- gains under the sequential design -------------------------------------------------------------------

def test_one_look_at_full_information_equals_the_fixed_design() -> None:
    t = simulate_results(truth(seeds=4), seed=3)
    fixed = gains_of(t, {})
    seq = gains_of(t, {"sequential": {"max_seeds": 4, "schedule": [4]}})
    for col in ("p_value", "p_adj", "p_tost", "p_tost_adj", "ci_low", "ci_high"):
        np.testing.assert_allclose(seq[col], fixed[col], rtol=1e-6, atol=1e-12, err_msg=col)
    assert list(seq["verdict"]) == list(fixed["verdict"])


def test_an_early_look_pays_for_the_later_ones() -> None:
    t = simulate_results(truth(seeds=3), seed=4)
    fixed = gains_of(t, {})
    seq = gains_of(t, {"sequential": {"max_seeds": 10, "spending": "pocock"}})
    ok = fixed["p_value"].notna()
    assert (seq.loc[ok, "p_value"] >= fixed.loc[ok, "p_value"] - 1e-9).all()
    assert (seq.loc[ok, "p_tost"] >= fixed.loc[ok, "p_tost"] - 1e-5).all()
    width = lambda g: g["ci_high"] - g["ci_low"]  # noqa: E731
    assert (width(seq)[ok] > width(fixed)[ok]).all()
    assert np.allclose((seq["ci_low"] + seq["ci_high"])[ok] / 2, seq["gain"][ok])  # centred on the estimate


# --- next_seeds -------------------------------------------------------------------------------------------

def test_next_seeds_grows_both_arms_of_open_contrasts_only() -> None:
    t = simulate_results(truth(seeds=3, run_sd=0.004, noise_sd=0.002, seed_sd=0.004), seed=1)
    plan = {"sequential": {"max_seeds": 10, "spending": "pocock"}}
    g = gains_of(t, plan)
    a = next_seeds(t, plan)
    assert a.add and 0 < a.n_open < len(g)
    assert a.design == "sequential" and a.max_seeds == 10
    assert a.n_open == int((g["verdict"] == "inconclusive").sum()) and a.n_open + a.n_decided == len(g)
    grown = {(x["backbone"], x["init"]): x for x in a.add}
    for r in g[g["verdict"] == "inconclusive"].itertuples():
        assert (r.backbone, "imagenet") in grown and (r.backbone, "scratch") in grown  # the baseline group too
    decided = set(g.groupby("backbone")["verdict"].apply(lambda v: (v != "inconclusive").all()).loc[lambda s: s].index)
    assert not decided & {b for b, _ in grown}
    for x in a.add:  # the next look of the schedule, new seed numbers past every seed of the site
        assert x["have"] == 3 and x["target"] == 5 and x["seeds"] == 2 and x["new_seeds"] == [3, 4]
        assert x["contrasts"] and "next look at 5" in x["reason"]


def test_next_seeds_budget_spends_runs_where_expected_decisions_per_run_are_highest() -> None:
    t = simulate_results(truth(seeds=3, run_sd=0.008, noise_sd=0.004, seed_sd=0.008), seed=3)  # 3 open sites
    plan = {"sequential": {"max_seeds": 10, "spending": "pocock"}}
    full = next_seeds(t, plan)
    assert full.n_runs > 8 and not full.deferred
    budget = next_seeds(t, plan, max_runs=8)
    assert 0 < budget.n_runs <= 8 and budget.deferred and not budget.done
    assert budget.n_open == full.n_open and budget.max_runs == 8
    chosen = {c for a in budget.add for c in a["contrasts"]}
    assert chosen and not chosen & set(budget.deferred)
    assert chosen | set(budget.deferred) == {c for a in full.add for c in a["contrasts"]}
    # the chosen contrasts are the best per run: every group the budget grows is among the full advice's
    # best per_run, and the baseline group of each chosen contrast is grown too (pairs stay pairs)
    best = max(a["per_run"] for a in full.add)
    assert max(a["per_run"] for a in budget.add) == best
    grown = {(a["backbone"], a["init"]) for a in budget.add}
    assert all((b, "scratch") in grown for b, i in grown)
    lines = "\n".join(budget.lines())
    assert "deferred to a later round" in lines and "budget of 8 runs" in lines
    assert budget.to_dict()["deferred"] == budget.deferred
    with pytest.raises(ResultsError, match="max_runs"):
        next_seeds(t, plan, max_runs=1)
    # a budget too small for any contrast defers them all and is not done
    tiny = next_seeds(t, plan, max_runs=3)
    assert not tiny.add and tiny.deferred and not tiny.done


def test_next_seeds_never_grows_past_the_cap_and_reports_undecidable() -> None:
    t = simulate_results(truth(seeds=3, run_sd=0.02, noise_sd=0.01, seed_sd=0.0), seed=2)
    capped = next_seeds(t, {"sequential": {"max_seeds": 10}}, max_seeds=3)
    assert capped.done and capped.max_seeds == 3 and len(capped.undecidable) == capped.n_open > 0
    u = capped.undecidable[0]
    assert u["seeds"] == 3 and "cap of 3" in u["reason"] and u["ci_low"] < u["ci_high"]
    # --max-seeds above the design's max_seeds is held at the design's (its boundaries end there)
    assert next_seeds(t, {"sequential": {"max_seeds": 5}}, max_seeds=50).max_seeds == 5
    fixed = next_seeds(t, {}, max_seeds=6)
    assert fixed.design == "fixed" and fixed.warnings and "sequential" in fixed.warnings[0]
    assert all(x["target"] <= 6 for x in fixed.add)


def test_next_seeds_cli_json_table_and_exit_codes(tmp_path) -> None:
    t = simulate_results(truth(seeds=3, run_sd=0.004, noise_sd=0.002, seed_sd=0.004), seed=1)
    path = tmp_path / "results.csv"
    t.to_csv(path, index=False)
    plan = tmp_path / "seq.yaml"
    plan.write_text("sequential: {max_seeds: 10, schedule: [3, 5, 7, 10], spending: pocock}\n")
    runner = CliRunner()
    res = runner.invoke(cli, ["next-seeds", str(path), "--plan", str(plan), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert set(doc) >= {"done", "add", "undecidable"} and doc["done"] is False
    assert set(doc["add"][0]) >= {"task", "family", "backbone", "train_set", "init", "seeds", "contrasts", "reason"}
    text = runner.invoke(cli, ["next-seeds", str(path), "--plan", str(plan)])
    assert text.exit_code == 0 and "add 4 runs in 2 run groups" in text.output and "2 open" in text.output
    from capgate.cli import main
    for argv in (["next-seeds", str(tmp_path / "missing.csv")], ["next-seeds", str(path), "--max-seeds", "1"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2


# --- the loop, simulated ------------------------------------------------------------------------------------

def test_simulated_loop_reaches_the_verdicts_of_the_full_grid_with_fewer_runs() -> None:
    full = simulate_results(truth(), seed=5)
    plan = {"sequential": {"max_seeds": 10, "spending": "pocock"}}
    out, rounds = replay_adaptive(full, plan, first=3)
    assert rounds[-1].done and len(rounds) <= 4
    seeds = out[out["status"] == "ok"].drop_duplicates("run_id").groupby(["backbone", "init"])["seed"].nunique()
    assert set(seeds) <= {3, 5, 7, 10}  # only the looks of the schedule
    n_adapt, n_full = out["run_id"].nunique(), full["run_id"].nunique()
    assert n_adapt < n_full
    decided = (gains_of(out, plan)["verdict"] != "inconclusive").sum()
    assert decided >= (gains_of(full, {})["verdict"] != "inconclusive").sum() - 1
    again, _ = replay_adaptive(full, plan, first=3)  # same table, same loop
    assert set(again["run_id"]) == set(out["run_id"])


@pytest.mark.slow  # about 30 s: 30 studies x 3 looks
def test_null_studies_peeking_every_round_keep_false_claims_at_alpha() -> None:
    """Margin 0 (no TOST stop), so every contrast is looked at up to 3 times; 30 null studies."""
    plan = {"margin": 0.0, "sequential": {"max_seeds": 5, "schedule": [3, 4, 5], "spending": "pocock"}}
    claims = 0
    for s in range(30):
        full = simulate_results(truth(seeds=5, gains={}), seed=100 + s)
        out, _ = replay_adaptive(full, plan, first=3)
        claims += bool(gains_of(out, plan)["verdict"].isin(["helps", "hurts"]).any())
    assert claims <= 4  # P(X >= 5 | n=30, p=0.05) = 0.016


def test_a_contrast_stops_at_its_first_decisive_look() -> None:
    """A contrast decided at the 3-seed look keeps that look's verdict, interval and n when later seeds
    of its groups (grown for a sibling) would leave it open; without a sequential design nothing changes."""
    plan = resolve_plan({"sequential": {"max_seeds": 5, "schedule": [3, 5], "spending": "pocock"}})
    t = simulate_results(truth(seeds=5, run_sd=0.004, noise_sd=0.002, seed_sd=0.004), seed=1)
    metric = "map" if "map" in t.columns else "top1"
    at3 = gains_of(t[t["seed"] < 3].reset_index(drop=True), plan)
    decided = at3[at3["verdict"] == "helps"].iloc[0]
    bad = t.copy()  # seeds 3 and 4 of that contrast's arm fall far below: at 5 seeds it is open
    rows = (bad["backbone"] == decided.backbone) & (bad["init"] == decided.init) & (bad["seed"] >= 3)
    bad.loc[rows & (bad["seed"] == 3), metric] -= 0.2
    bad.loc[rows & (bad["seed"] == 4), metric] += 0.1
    from capgate.analysis.cells import cell_table, metric_frame
    from capgate.analysis.gains import compute_gains

    bad = validate(bad)
    naive, _ = compute_gains(metric_frame(bad, plan), cell_table(bad, plan), plan)
    assert naive.set_index("key").loc[decided.key, "verdict"] == "inconclusive"
    kept = gains_of_table(bad, plan)[0].set_index("key").loc[decided.key]
    assert kept["verdict"] == "helps" and kept["n_pairs"] == 3
    assert (kept["ci_low"], kept["ci_high"]) == (decided.ci_low, decided.ci_high)
    fixed = resolve_plan({})
    same = gains_of_table(bad, fixed)[0]
    assert same.equals(compute_gains(metric_frame(bad, fixed), cell_table(bad, fixed), fixed)[0])
