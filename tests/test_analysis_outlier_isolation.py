"""Plan key ``outlier_runs``: ``keep`` (default) counts every ok run; ``isolate`` keeps a collapsed run
(far below its siblings, in a cell of 4+ ok runs) out of the verdicts on every eval set, as if it had
diverged. Calibration of the trade-off: ``benchmarks/calibration.py`` (README, "Calibration")."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from capgate.analysis import resolve_plan, simulate_results
from capgate.analysis.analyze import analyze, analyze_contrasts
from capgate.analysis.cells import analysis_frame, outlier_runs, suspect_sites
from capgate.analysis.simulate import demo_truth
from capgate.analysis.summary import build_summary
from capgate.report.methods import methods_paragraphs
from capgate.errors import SpecError

COLS = ["key", "gain", "se", "df", "n_pairs", "verdict"]


def _table(seeds: int) -> pd.DataFrame:
    tr = dataclasses.replace(demo_truth(), inits=("scratch", "imagenet"), gains={"imagenet": 0.03}, seeds=seeds,
                             p_failed=0.0, p_diverged=0.0, p_missing=0.0)
    return simulate_results(tr, seed=7)


def _collapse(t: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The table with one pretrained run of the largest rung collapsed by 20 pp on every eval set."""
    ok = t[(t["init"] == "imagenet") & (t["status"] == "ok")]
    run = ok.sort_values(["params", "seed"], ascending=[False, True])["run_id"].iloc[1]
    out = t.copy()
    hit = out["run_id"] == run
    out.loc[hit, "map"] = out.loc[hit, "map"] - 0.20
    return out, run


def _gains(t: pd.DataFrame, **plan) -> pd.DataFrame:
    _, g, _ = analyze_contrasts(t, resolve_plan({"n_boot": 0, "contrasts": ["imagenet"], **plan}))
    return g.set_index("key")


def test_isolate_keeps_a_collapsed_run_out_of_the_verdicts_as_if_it_had_diverged():
    t, run = _collapse(_table(seeds=5))
    iso = _gains(t, outlier_runs="isolate")
    as_diverged = t.copy()
    as_diverged.loc[as_diverged["run_id"] == run, "status"] = "diverged"
    as_diverged.loc[as_diverged["run_id"] == run, "map"] = np.nan
    ref = _gains(as_diverged, outlier_runs="isolate")  # the same plan: the same suspect sites (judged both ways)
    r = t[t["run_id"] == run].iloc[0]
    hit = [k for k in iso.index if f"|{r['backbone']}|{r['train_set']}|" in k]
    assert len(hit) == 3 and (iso.loc[hit, "n_pairs"] == 4).all()  # its three eval sets' contrasts lost that pair
    # ... but not its scratch partner: demo_truth's seeds share nothing, so the partially overlapping estimate
    # (4 imagenet runs, 5 scratch runs) has the smaller variance
    assert (iso.loc[hit, "n_dropped"] == 0).all() and (iso.loc[hit, "n_baseline"] == 5).all()
    pd.testing.assert_frame_equal(iso[COLS[1:]], ref.loc[iso.index, COLS[1:]])
    kept = _gains(t)  # default: keep; the collapsed run drags its contrasts down
    assert (kept.loc[hit, "n_pairs"] == 5).all()
    assert (kept.loc[hit, "gain"] < iso.loc[hit, "gain"] - 0.02).all()


def test_isolate_lists_every_run_it_keeps_out_even_below_the_report_threshold():
    """A run 5 SDs down is not listed under keep (6) but is kept out, and listed, under isolate (4)."""
    t = _table(seeds=5)
    plan = resolve_plan({"n_boot": 0, "contrasts": ["imagenet"]})
    y, cells, _ = analysis_frame(t, plan)
    run = t[(t["init"] == "imagenet") & (t["seed"] == 1)]["run_id"].iloc[0]
    scale = float(cells[cells["eval_set"] == "llvip/rgb"]["sd_mod"].median())
    t = t.copy()
    t.loc[t["run_id"] == run, "map"] -= 5.2 * scale  # between the two thresholds (seeded table)
    _, _, kept = analysis_frame(t, plan)
    y_iso, _, listed = analysis_frame(t, plan.replace(outlier_runs="isolate"))
    assert run not in set(kept["run_id"])
    assert run in set(listed["run_id"]) and run not in set(y_iso["run_id"])


def test_isolate_judges_only_cells_of_four_or_more_runs():
    t, _ = _collapse(_table(seeds=3))
    pd.testing.assert_frame_equal(_gains(t, outlier_runs="isolate")[COLS[1:]], _gains(t)[COLS[1:]])


def test_analysis_frame_lists_the_flagged_runs_under_either_policy_and_the_report_says_which():
    t, run = _collapse(_table(seeds=5))
    for policy in ("keep", "isolate"):
        plan = resolve_plan({"n_boot": 0, "contrasts": ["imagenet"], "outlier_runs": policy})
        y, _, odd = analysis_frame(t, plan)
        assert set(odd["run_id"]) == {run} and len(odd) == 3  # flagged on each of its three eval sets
        assert (run in set(y["run_id"])) == (policy == "keep")
        a = analyze(t, plan)
        text = next(w for w in a.warnings if "below their siblings" in w)
        assert text.startswith("3 runs lie more than 6 eval-set SDs below their siblings (kept in the statistics"
                               if policy == "keep" else
                               "1 runs were kept out of the verdicts on every eval set (more than 4 eval-set SDs")
        assert a.plan.to_dict()["outlier_runs"] == policy
        paras = methods_paragraphs(a.methods, a.models, a.plan, build_summary(a))
        said = next(p for p in paras if p.startswith("Outlier runs. "))  # the report's methods name the policy
        assert said.startswith(f"Outlier runs. plan outlier_runs '{policy}': ")
        assert ("judged with and without those runs (an intersection-union test" in said) == (policy == "isolate")


def test_an_unknown_policy_is_refused_naming_the_key_and_the_choices():
    with pytest.raises(SpecError, match=r"outlier_runs.*\['keep', 'isolate'\]"):
        resolve_plan({"outlier_runs": "drop"})


def test_isolate_judges_a_site_with_a_run_just_short_of_its_threshold_both_with_the_run_and_without():
    """A run 3.75 SDs down on one eval set stays in, and every contrast of its backbone and train set is judged
    both ways (an intersection-union test): with the suspect runs in (the keep analysis) and with them out (as
    if diverged). p is the larger of the two, the interval their hull, the estimate the binding analysis's;
    contrasts elsewhere are the keep analysis's (README, Calibration)."""
    t = _table(seeds=5)
    plan = resolve_plan({"n_boot": 0, "contrasts": ["imagenet"]})
    y, cells, _ = analysis_frame(t, plan)
    r = t[(t["init"] == "scratch") & (t["seed"] == 2)].iloc[0]
    every = outlier_runs(y, cells, k=-np.inf, min_runs=4)  # every record's drop below its siblings, and scale
    one = every[(every["run_id"] == r["run_id"]) & every["key"].str.contains("|llvip/rgb|", regex=False)].iloc[0]
    t = t.copy()  # its llvip/rgb record to 3.75 SDs below its siblings, the other eval sets as they were
    t.loc[(t["run_id"] == r["run_id"]) & (t["eval_set"] == "llvip/rgb"), "map"] -= one["drop"] + 3.75 * one["scale"]
    iso_plan = plan.replace(outlier_runs="isolate")
    y_iso, cells_iso, listed = analysis_frame(t, iso_plan)
    after = outlier_runs(y_iso, cells_iso, k=-np.inf, min_runs=4)
    z = after.loc[after["run_id"] == r["run_id"], "drop"] / after.loc[after["run_id"] == r["run_id"], "scale"]
    assert -4 < z.min() < -3.5 and z.mean() > -3.5  # under both isolation rules, past the suspect threshold
    assert r["run_id"] in set(y_iso["run_id"]) and not len(listed)  # kept in, and nothing else kept out
    sus = suspect_sites(y_iso, cells_iso)
    assert r["run_id"] in set(sus["run_id"])
    iso, kept = _gains(t, outlier_runs="isolate"), _gains(t)  # nothing kept out: "in" is the keep analysis
    out_t = t.copy()  # "out": every suspect run as if it had diverged
    gone = out_t["run_id"].isin(set(sus["run_id"]))
    out_t.loc[gone, "status"], out_t.loc[gone, "map"] = "diverged", np.nan
    out = _gains(out_t)
    marked = {(b, s) for b, s in zip(sus["backbone"], sus["train_set"])}
    site = np.array([any(f"|{b}|{s}|" in k for b, s in marked) for k in iso.index])
    assert site.sum() == 3 * len(marked) and site.sum() < len(iso)
    mine = iso.index.str.contains(f"|{r['backbone']}|{r['train_set']}|", regex=False)
    assert mine.sum() == 3 and site[mine].all()
    assert iso.loc[site, "verdict"].isin(["helps", "hurts"]).any()  # the claim rule below is exercised
    for key in iso.index[site]:
        a, i, o = iso.loc[key], kept.loc[key], out.loc[key]
        same_sign = np.sign(i["gain"]) == np.sign(o["gain"])
        assert a["p_value"] == pytest.approx(max(i["p_value"], o["p_value"]) if same_sign else 1.0, rel=1e-9)
        assert a["ci_low"] == pytest.approx(min(i["ci_low"], o["ci_low"]), rel=1e-9)
        assert a["ci_high"] == pytest.approx(max(i["ci_high"], o["ci_high"]), rel=1e-9)
        binding = o if o["p_value"] > i["p_value"] else i
        assert (a["gain"], a["se"], a["df"]) == pytest.approx((binding["gain"], binding["se"], binding["df"]), rel=1e-9)
        if a["verdict"] in ("helps", "hurts"):  # a claim both analyses make
            assert i["gain"] * o["gain"] > 0 and min(abs(i["gain"]), abs(o["gain"])) > a["margin"]
    rest = iso.index[~site]
    raw = ["gain", "se", "df", "n_pairs", "p_value", "ci_low", "ci_high"]  # verdicts: Holm over the whole family
    pd.testing.assert_frame_equal(iso.loc[rest, raw], kept.loc[rest, raw])
    a = analyze(t, iso_plan)
    assert any(w.startswith(f"{sus['run_id'].nunique()} runs kept in lie more than 2.5 eval-set SDs below their "
                            "siblings on an eval set") for w in a.warnings), a.warnings
    assert not any("runs kept in lie" in w for w in analyze(t, plan).warnings)


def test_isolate_keeps_out_a_run_down_on_average_though_on_no_eval_set_by_four_sds():
    """A collapse moves every eval set of its run: 3.5 SDs down on average is enough (ISOLATE_RUN_MEAN_SDS)."""
    t = _table(seeds=5)
    plan = resolve_plan({"n_boot": 0, "contrasts": ["imagenet"]})
    y, cells, _ = analysis_frame(t, plan)
    run = t[(t["init"] == "imagenet") & (t["seed"] == 3)]["run_id"].iloc[0]
    every = outlier_runs(y, cells, k=-np.inf, min_runs=4)
    mine = every[every["run_id"] == run]
    t = t.copy()
    for row in mine.itertuples():  # each eval set to 3.8 SDs below its siblings
        ev = row.key.split("|")[-2]  # the key: study|task|backbone|train set|eval set|init
        hit = (t["run_id"] == run) & (t["eval_set"] == ev)
        t.loc[hit, "map"] -= row.drop + 3.8 * row.scale
    y_iso, _, listed = analysis_frame(t, plan.replace(outlier_runs="isolate"))
    assert run not in set(y_iso["run_id"]) and (listed["run_id"] == run).sum() == 3
    assert run in set(analysis_frame(t, plan)[0]["run_id"])  # keep: still in


def test_isolate_keeps_out_only_the_low_runs_in_excess_of_as_many_runs_as_far_above():
    """A collapse only goes down; heavy-tailed noise goes both ways. A run 25 pp up elsewhere in the study
    mirrors the one 20 pp down: neither is kept out, and the low one makes its site a suspect (judged both
    ways). A second collapse, 30 pp down, is deeper than any run lies high: it is the excess, kept out."""
    t, low = _collapse(_table(seeds=5))
    plan = resolve_plan({"n_boot": 0, "contrasts": ["imagenet"], "outlier_runs": "isolate"})
    ok = t[(t["init"] == "scratch") & (t["status"] == "ok")].sort_values(["params", "seed"])
    high = ok["run_id"].iloc[0]  # a scratch run of the smallest rung: another site
    up = t.copy()
    up.loc[up["run_id"] == high, "map"] += 0.25
    y, cells, _ = analysis_frame(up, plan)
    assert {low, high} <= set(y["run_id"])  # both kept in
    assert low in set(suspect_sites(y, cells)["run_id"])
    second = ok["run_id"].iloc[-1]  # a scratch run of the largest rung, 30 pp down: the excess, and the lowest
    down = up.copy()
    down.loc[down["run_id"] == second, "map"] -= 0.30
    y2, _, listed = analysis_frame(down, plan)
    assert second not in set(y2["run_id"]) and low in set(y2["run_id"]) and high in set(y2["run_id"])
    assert {second, low} <= set(listed["run_id"])  # the report lists both (kept out, and 6+ SDs down)


def test_isolate_keeps_out_a_collapse_deeper_than_any_run_lies_high():
    """A run just past the thresholds on the high side mirrors a run as far down, not a collapse 20 pp down:
    the mirror counts runs at each depth (cells._isolated)."""
    t, low = _collapse(_table(seeds=5))
    plan = resolve_plan({"n_boot": 0, "contrasts": ["imagenet"], "outlier_runs": "isolate"})
    y, cells, _ = analysis_frame(t, plan)
    every = outlier_runs(y, cells, k=-np.inf, min_runs=4)
    ok = t[(t["init"] == "scratch") & (t["status"] == "ok")].sort_values(["params", "seed"])
    high = ok["run_id"].iloc[0]
    up = t.copy()
    for row in every[every["run_id"] == high].itertuples():  # every eval set 5 SDs above its siblings
        ev = row.key.split("|")[-2]
        up.loc[(up["run_id"] == high) & (up["eval_set"] == ev), "map"] += 5.0 * row.scale - row.drop
    y_up, _, listed = analysis_frame(up, plan)
    assert low not in set(y_up["run_id"]) and high in set(y_up["run_id"])
    assert (listed["run_id"] == low).sum() == 3
