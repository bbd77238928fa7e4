"""Golden test against R's lme4: the refit recipe shipped in model.json, run on model_frame.csv alone,
gives capgate's estimates as printed (fixed effects within 0.1 %, variances within 1 %).

Needs ``Rscript`` with lme4 (Debian: ``apt-get install r-base-core r-cran-lme4``; ``.ci/run`` installs
them and sets CAPGATE_REQUIRE_R=1, which turns a missing R into a failure instead of a skip).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from capgate.analysis import analyze, simulate_results, write_outputs
from helpers import detection_truth


def _have_lme4() -> bool:
    if shutil.which("Rscript") is None:
        return False
    r = subprocess.run(["Rscript", "-e", "library(lme4)"], capture_output=True, text=True)
    return r.returncode == 0


def test_lme4_refit_matches_capgate(tmp_path: Path):
    if not _have_lme4():
        if os.environ.get("CAPGATE_REQUIRE_R"):
            pytest.fail("Rscript with lme4 is required (CAPGATE_REQUIRE_R=1): apt-get install r-base-core r-cran-lme4")
        pytest.skip("Rscript with lme4 not installed (apt-get install r-base-core r-cran-lme4); "
                    "CAPGATE_REQUIRE_R=1 makes this a failure")
    gains = {"imagenet": {"cross_dataset": {"low": 0.0, "high": 0.06, "gate": 280_000, "width": 0.02},
                          "in_domain": 0.01}}
    t = simulate_results(detection_truth(seeds=4, gains=gains, rung_sd=0.02, run_sd=0.01, noise_sd=0.003), seed=3)
    a = analyze(t, {"n_boot": 0})
    (entry,) = a.models
    assert entry["random_effects"] == "rung+init+run" and "(1 | backbone:init)" in entry["formula_lme4"]
    write_outputs(a, tmp_path)
    doc = json.loads((tmp_path / "model.json").read_text())
    snippet = doc["models"][0]["r_snippet"]
    assert "relevel(factor(d$init" in snippet and "REML = TRUE" in snippet
    script = snippet + (
        "\nfe <- lme4::fixef(fit); write.csv(data.frame(term = names(fe), estimate = unname(fe)), 'r_fixef.csv', "
        "row.names = FALSE)\nvc <- as.data.frame(lme4::VarCorr(fit)); write.csv(vc[, c('grp', 'vcov')], "
        "'r_vc.csv', row.names = FALSE)\n")
    (tmp_path / "refit.R").write_text(script)
    r = subprocess.run(["Rscript", "refit.R"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    fe_r = pd.read_csv(tmp_path / "r_fixef.csv").set_index("term")["estimate"]
    ours = {f["term_lme4"]: f["estimate"] for f in entry["fixed_effects"]}
    assert set(fe_r.index) == set(ours)  # the same names as printed: initimagenet, not initscratch
    for term, est in ours.items():
        assert fe_r[term] == pytest.approx(est, rel=1e-3, abs=1e-6), term
    vc_r = pd.read_csv(tmp_path / "r_vc.csv")
    vc_r["grp"] = vc_r["grp"].replace({"Residual": "residual"})
    vc_r = vc_r.set_index("grp")["vcov"]
    for comp, v in entry["variance_components"].items():
        assert vc_r[comp] == pytest.approx(v, rel=1e-2, abs=1e-9), comp
