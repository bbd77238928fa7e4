"""experiments/families.yaml end to end through the CLI (run-grid -> report -> check), shrunk
with --set to a tiny world, two seeds and a few steps: every family's two rungs train from
scratch and from their own ImageNet pretraining stage, and the report ranks all fourteen
backbones across the two inits."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from capgate.cli import cli
from capgate.models import FAMILIES

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "experiments" / "families.yaml"
TINY = [
    "world.config={imagenet_classes: 3, imagenet_train: 4, imagenet_val: 1, domainnet_classes: 3, "
    "domainnet_train: 4, domainnet_test: 2, domainnet_domains: [real, clipart, sketch], llvip_train: 2, "
    "llvip_test: 1, flir_train: 2, flir_val: 1, flir_video: 2, coco_train: 2, coco_val: 1}",
    "classes=[bicycle, car, dog]",
    "seeds=[0, 1]",
    "recipe={steps: 3, batch_size: 4, resolution: 32, warmup_steps: 1}",
    "pretraining.imagenet.recipe={steps: 2, batch_size: 4, resolution: 32, warmup_steps: 1}",
]


@pytest.mark.slow
def test_families_study_runs_reports_and_checks(tmp_path: Path) -> None:
    runner = CliRunner()
    sets = [arg for item in TINY for arg in ("--set", item)]
    storage = tmp_path / "store"

    ran = runner.invoke(cli, ["run-grid", str(SPEC), *sets, "--storage", str(storage), "--max-concurrent", "2"])
    assert ran.exit_code == 0, ran.output
    table = pd.read_parquet(storage / "families" / "results.parquet")
    assert len(table) == 14 * 2 * 2 * 3  # rungs x inits x seeds x eval domains
    assert set(table["status"]) == {"ok"}
    assert set(table["family"]) == set(FAMILIES)
    assert table.groupby("family")["backbone"].nunique().to_dict() == {f: 2 for f in FAMILIES}
    assert table["top1"].between(0, 1).all()
    pretrained = table[table["init"] == "imagenet"]
    assert pretrained["init_source"].str.startswith("imagenet-").all()  # its own family-and-rung stage
    assert pretrained.groupby("backbone")["init_source"].nunique().eq(1).all()
    assert pretrained["init_source"].nunique() == 14
    stages = sorted(p.name for p in (storage / "families" / "pretrain").iterdir() if p.is_dir())
    assert len(stages) == 14 and {s.split("-")[1] for s in stages} == {"B", "S", "L", "M", "G", "LC", "SH"}

    out = tmp_path / "report"
    rep = runner.invoke(cli, ["report", str(storage / "families" / "results.parquet"), "-o", str(out)])
    assert rep.exit_code == 0, rep.output
    summary = json.loads((out / "summary.json").read_text())
    orders = [r["order"] for r in summary["rankings"]]
    assert orders and all(len(o) == 14 for o in orders)  # every backbone of every family is ranked
    assert {r["init_a"] + "|" + r["init_b"] for r in summary["ranking_stability"]} == {"imagenet|scratch"}
    gains = pd.read_csv(out / "gains.csv")
    assert len(gains) == 14 * 3 and set(gains["family"]) == set(FAMILIES)

    baseline = tmp_path / "baseline.json"
    results = str(storage / "families" / "results.parquet")
    upd = runner.invoke(cli, ["check", results, "--baseline", str(baseline), "--update-baseline"])
    assert baseline.is_file(), upd.output
    again = runner.invoke(cli, ["check", results, "--baseline", str(baseline)])
    assert again.exit_code == 0, again.output
