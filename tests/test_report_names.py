"""Any name a spec accepts analyses: inits, families, rungs, eval and train sets, studies named with
``-``, ``+``, ``.``, spaces or quotes give the same verdicts as the plain-named table, and the lme4
refit recipe in model.json runs on model_frame.csv (when R with lme4 is installed)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from capgate.analysis import simulate_results
from capgate.analysis.mixed import safe_name
from capgate.report.render import render_report
from helpers import detection_truth

#: Each column's plain name -> an awkward one (every character class that broke a formula).
RENAMES = {
    "init": {"imagenet": "imagenet-1k", "imagenet_coco": "in1k+coco"},
    "family": {"efficientnet_b0": "my fam.v2"},
    "eval_set": {"flir/rgb": "flir rgb (v2)'"},
    "train_set": {"llvip/rgb": "in1k.v2 train"},
    "study": {"det": "my study.v2"},
}
KEYS = ["study", "task", "family", "backbone", "train_set", "eval_set", "init", "baseline"]


def _renamed(t: pd.DataFrame) -> pd.DataFrame:
    t = t.copy()
    for col, mapping in RENAMES.items():
        if col in t:
            t[col] = t[col].replace(mapping)
    t["backbone"] = t["backbone"].str.replace("@", " @ ", regex=False)
    return t


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> tuple[Path, Path]:
    truth = detection_truth(inits=("scratch", "imagenet", "imagenet_coco"), rung_sd=0.01,
                            gains={"imagenet": {"cross_dataset": 0.06, "in_domain": 0.0},
                                   "imagenet_coco": {"cross_dataset": 0.03, "in_domain": 0.02}})
    plain = simulate_results(truth, seed=5)
    a, b = tmp_path_factory.mktemp("plain"), tmp_path_factory.mktemp("renamed")
    render_report(plain, a, {"n_boot": 0})
    render_report(_renamed(plain), b, {"n_boot": 0})
    return a, b


def test_safe_name_keeps_plain_names_and_separates_awkward_ones():
    assert safe_name("imagenet_coco") == "imagenet_coco"
    assert safe_name("in1k+coco").startswith("in1k_coco_") and safe_name("in1k-coco").startswith("in1k_coco_")
    assert safe_name("in1k+coco") != safe_name("in1k-coco")


def test_awkward_names_render_with_the_plain_tables_verdicts(reports):
    a, b = reports
    html = (b / "index.html").read_text()
    assert "imagenet-1k" in html and "in1k+coco" in html and "flir rgb (v2)&#39;" in html
    ga, gb = pd.read_csv(a / "gains.csv"), pd.read_csv(b / "gains.csv")
    ga = _renamed(ga)
    m = ga.merge(gb, on=KEYS, suffixes=("_a", "_b"), validate="one_to_one")
    assert len(m) == len(ga) == len(gb) == 16  # 4 rungs x 2 eval sets x 2 inits
    assert (m["verdict_a"] == m["verdict_b"]).all()
    assert set(m["verdict_a"]) >= {"helps"}  # the comparison is not between two all-inconclusive tables
    assert m["gain_a"].to_numpy() == pytest.approx(m["gain_b"].to_numpy(), abs=1e-12)
    assert m["p_adj_a"].to_numpy() == pytest.approx(m["p_adj_b"].to_numpy(), rel=1e-9)


def test_model_json_names_encoded_columns_and_keeps_the_mapping(reports):
    _, b = reports
    (entry,) = json.loads((b / "model.json").read_text())["models"]
    assert entry["status"] in ("ok", "reduced")
    cols = [t for t in entry["formula_lme4"].split(" + ") if t.startswith("ix__")]
    assert cols and all(c.replace("_", "").isalnum() for c in cols)
    assert f"column ix__{safe_name('in1k+coco')}__in_domain = init 'in1k+coco' under shift 'in_domain'" in entry["notes"]
    header = (b / "model_frame.csv").read_text().splitlines()[0]
    assert all(f'"{c}"' in header for c in cols)


def _have_lme4() -> bool:
    if shutil.which("Rscript") is None:
        return False
    return subprocess.run(["Rscript", "-e", "library(lme4)"], capture_output=True).returncode == 0


def test_lme4_refits_the_awkwardly_named_frame(reports):
    if not _have_lme4():
        if os.environ.get("CAPGATE_REQUIRE_R"):
            pytest.fail("Rscript with lme4 is required (CAPGATE_REQUIRE_R=1): apt-get install r-base-core r-cran-lme4")
        pytest.skip("Rscript with lme4 not installed (apt-get install r-base-core r-cran-lme4)")
    _, b = reports
    (entry,) = json.loads((b / "model.json").read_text())["models"]
    script = entry["r_snippet"] + ("\nfe <- lme4::fixef(fit); write.csv(data.frame(term = names(fe), "
                                   "estimate = unname(fe)), 'r_fixef.csv', row.names = FALSE)\n")
    (b / "refit.R").write_text(script)
    r = subprocess.run(["Rscript", "refit.R"], cwd=b, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    fe_r = pd.read_csv(b / "r_fixef.csv").set_index("term")["estimate"]
    ours = {f["term_lme4"]: f["estimate"] for f in entry["fixed_effects"]}
    assert set(fe_r.index) == set(ours)
    for term, est in ours.items():
        assert fe_r[term] == pytest.approx(est, rel=1e-3, abs=1e-6), term
