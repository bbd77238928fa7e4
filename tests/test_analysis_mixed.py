"""Mixed models (capgate.analysis.lmm): structures, boundary reduction, Satterthwaite df, formulas and frames."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from capgate.analysis import demo_truth, resolve_plan, simulate_results, validate
from capgate.analysis.cells import metric_frame
from capgate.analysis.mixed import fit_mixed, lme4_term


def _one_record_per_run(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(8):
        params = int(10 ** (4.6 + 0.1 * g))
        for s in range(6):
            init = ("scratch", "imagenet")[s % 2]
            rows.append({"y": 0.3 + 0.1 * (np.log10(params) - 4.95) + (0.05 if init == "imagenet" else 0)
                         + rng.normal(0, 0.02), "init": init, "shift": "cross_dataset", "family": "efficientnet",
                         "backbone": f"b{g}", "run_id": f"r{g}{init}{s}", "train_set": "llvip/rgb",
                         "eval_set": "flir/rgb", "seed": s, "params": params, "task": "detection"})
    return pd.DataFrame(rows)


def test_fit_mixed_between_rung_effects_with_satterthwaite_df_and_records_attempts():
    y = _one_record_per_run(0)
    entry, frame = fit_mixed(y, name="d", task="detection", metric="map", baseline="scratch")
    assert entry["attempts"][0]["random_effects"] == "rung+init" and entry["attempts"][0]["error"] is None
    assert entry["fitter"] == "capgate.analysis.lmm" and entry["df_method"].startswith("Satterthwaite")
    assert entry["status"] == "ok" and entry["converged"]
    # one record per run: the run effect is not identifiable; the init effect varies by rung
    assert entry["random_effects"] == "rung+init"
    assert entry["formula_lme4"] == "map ~ init + logp_c + init:logp_c + (1 | backbone) + (1 | backbone:init)"
    assert any("one record per run" in n for n in entry["notes"])
    # Satterthwaite df, lmerTest 3.1-3 on this frame (summary(lmer(map ~ init + logp_c + init:logp_c +
    # (1 | backbone) + (1 | backbone:init)))): 10.6344641, 6.0001268, 10.6344642, 6.0001268
    df = {f["term_lme4"]: f["df"] for f in entry["fixed_effects"]}
    assert df == pytest.approx({"(Intercept)": 10.6344641, "initimagenet": 6.0001268, "logp_c": 10.6344642,
                                "initimagenet:logp_c": 6.0001268}, rel=1e-3)
    # neither variance is distinguishable from 0 by its likelihood-ratio test
    assert entry["boundary"] == ["backbone", "backbone:init"]
    assert all(t["p"] >= 0.05 and t["at_boundary"] for t in entry["boundary_tests"])
    est = {f["term_lme4"]: f["estimate"] for f in entry["fixed_effects"]}
    assert est["logp_c"] == pytest.approx(0.1, abs=0.03)
    assert est["initimagenet"] == pytest.approx(0.05, abs=0.02)
    assert entry["crosscheck"]["disagree"] == []
    assert all(t["agree"] for t in entry["crosscheck"]["terms"])


def test_boundary_fit_is_reduced_and_said_so():
    y = _one_record_per_run(2)  # this draw has Var(backbone) at the boundary
    entry, _ = fit_mixed(y, name="d", task="detection", metric="map", baseline="scratch")
    assert entry["boundary"] == ["backbone", "backbone:init"]
    assert entry["status"] == "reduced" and entry["random_effects"] == "none"
    assert entry["formula_lme4"] == "map ~ init + logp_c + init:logp_c"
    assert any("collapsed" in n for n in entry["notes"])
    assert {f["df"] for f in entry["fixed_effects"]} == {44}  # 48 records - 4 fixed effects
    est = {f["term_lme4"]: f["estimate"] for f in entry["fixed_effects"]}
    assert est["logp_c"] != 0.0 and est["(Intercept)"] != 0.0


def test_primary_model_on_simulated_study_recovers_variances_and_writes_refittable_frame():
    # gains constant in capacity, so the model is correctly specified (a bend would inflate the residual)
    gains = {"imagenet": 0.01, "imagenet_coco": {"in_domain": 0.02, "cross_dataset": 0.04, "cross_modality": 0.0}}
    t = validate(simulate_results(demo_truth(seeds=4, run_sd=0.01, noise_sd=0.006, rung_sd=0.01, gains=gains), seed=5))
    y = metric_frame(t, resolve_plan(None))
    entry, frame = fit_mixed(y, name="detection", task="detection", metric="map", baseline="scratch")
    # the truth's init effect does not vary by rung: that variance collapses and the model is reduced
    assert entry["status"] == "reduced" and entry["boundary"] == ["backbone:init"]
    assert entry["converged"] and entry["zeroed_effects"] == []
    assert all(not t["at_boundary"] and t["p"] < 1e-6 for t in entry["boundary_tests"])
    vc = entry["variance_components"]
    assert np.sqrt(vc["backbone:run_id"]) == pytest.approx(0.01, rel=0.35)
    assert np.sqrt(vc["residual"]) == pytest.approx(0.006, rel=0.25)
    assert entry["n_groups"] == {"backbone": 14, "run_id": int(t["run_id"].nunique())}
    assert entry["formula_lme4"].endswith("+ family + train_set + eval_set + (1 | backbone) + (1 | backbone:run_id)")
    # IR eval sets occur under one shift only: the shift main effect is absorbed by eval_set and the
    # interaction written as explicit columns that are in the frame.
    ix = [c for c in frame.columns if c.startswith("ix__")]
    assert sorted(ix) == ["ix__imagenet__cross_modality", "ix__imagenet__in_domain",
                          "ix__imagenet_coco__cross_modality", "ix__imagenet_coco__in_domain"]
    # the frame alone refits to the same estimates (what lme4 would be given)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' absolute-0.01 boundary warning (see fit_mixed notes)
        refit = smf.mixedlm(entry["formula_statsmodels"], frame, groups="backbone", re_formula="1",
                            vc_formula={"run_id": "0 + C(run_id)"}).fit(reml=True, method=["powell"])
    est = {f["term"]: f["estimate"] for f in entry["fixed_effects"]}
    assert est["C(init, Treatment('scratch'))[T.imagenet_coco]"] == pytest.approx(0.04, abs=0.006)
    assert est["ix__imagenet_coco__cross_modality"] == pytest.approx(-0.04, abs=0.006)
    for term, value in refit.fe_params.items():
        assert est[term] == pytest.approx(value, abs=1e-6)


def test_lme4_term_names():
    assert lme4_term("Intercept") == "(Intercept)"
    assert lme4_term("C(init, Treatment('scratch'))[T.imagenet_coco]:logp_c") == "initimagenet_coco:logp_c"
    assert lme4_term("C(shift)[T.in_domain]") == "shiftin_domain"
    assert lme4_term("C(eval_set)[T.flir/rgb]") == "eval_setflir/rgb"


def test_crosscheck_runs_when_init_x_shift_is_written_as_indicator_columns():
    """IR eval sets only occur under cross_modality, so init x shift becomes ix__* columns; the OLS
    cross-check on cell means must keep those columns (it once failed with a NameError)."""
    from capgate.analysis import analyze

    analysis = analyze(simulate_results(seed=3))
    entry = analysis.models[0]
    assert any(c.startswith("ix__") for c in analysis.model_frames[entry["name"]].columns)
    assert "error" not in entry["crosscheck"]
    assert entry["crosscheck"]["terms"] and entry["crosscheck"]["disagree"] == []
