"""A tiny classification study end to end through the CLI: run-grid -> report -> check."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from capgate.cli import cli

TINY_WORLD = {"llvip_train": 2, "llvip_test": 1, "flir_train": 2, "flir_val": 1, "flir_video": 2,
              "imagenet_classes": 3, "imagenet_train": 4, "imagenet_val": 1, "coco_train": 2, "coco_val": 1,
              "domainnet_classes": 3, "domainnet_train": 4, "domainnet_test": 2,
              "domainnet_domains": ["real", "sketch"]}


def tiny_classification_spec(tmp_path: Path, study: str = "tinycls", seeds: int = 2) -> Path:
    """A tiny two-rung DomainNet-like study (also used by the adaptive-loop tests)."""
    spec = {
        "study": study, "task": "classification", "classes": ["bicycle", "car", "dog"],
        "world": {"seed": 0, "config": TINY_WORLD},
        "datasets": {"domainnet": {"format": "domainnet", "root": "synthetic"},
                     "imagenet": {"format": "imagenet", "root": "synthetic"}},
        "train_sets": [{"dataset": "domainnet", "split": "train", "domain": "real", "name": "domainnet/real",
                        "eval": [{"dataset": "domainnet", "split": "test", "domain": "real",
                                  "name": "domainnet/real", "shift": "in_domain"},
                                 {"dataset": "domainnet", "split": "test", "domain": "sketch",
                                  "name": "domainnet/sketch", "shift": "cross_domain"}]}],
        "rungs": {"efficientnet": ["B-7"], "mobilenetv3": ["S-6"]},
        "inits": {"scratch": {}, "imagenet": {"stages": ["imagenet"]}},
        "pretraining": {"imagenet": {"kind": "classification", "dataset": "imagenet",
                                     "recipe": {"steps": 2, "batch_size": 4, "resolution": 32}}},
        "seeds": list(range(seeds)),
        "recipe": {"steps": 3, "batch_size": 4, "resolution": 32, "warmup_steps": 1},
    }
    path = tmp_path / f"{study}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.mark.slow
def test_classification_grid_report_and_check(tmp_path: Path) -> None:
    runner = CliRunner()
    spec = tiny_classification_spec(tmp_path)
    storage = tmp_path / "store"

    dry = runner.invoke(cli, ["run-grid", str(spec), "--dry-run"])
    assert dry.exit_code == 0, dry.output

    ran = runner.invoke(cli, ["run-grid", str(spec), "--storage", str(storage), "--max-concurrent", "2"])
    assert ran.exit_code == 0, ran.output
    table = pd.read_parquet(storage / "tinycls" / "results.parquet")
    assert len(table) == 2 * 2 * 2 * 2  # rungs x inits x seeds x eval domains
    assert set(table["status"]) == {"ok"} and set(table["task"]) == {"classification"}
    assert set(table["shift"]) == {"in_domain", "cross_domain"}
    for col in ("top1", "top5", "macro_f1"):
        assert table[col].between(0, 1).all(), col
    assert (table["top5"] >= table["top1"]).all()  # 3 classes: top-5 covers all of them
    assert (table["top5"] == 1.0).all()
    assert (table["size_bytes"] > 0).all() and (table["peak_mem_bytes"] > 0).all()

    out = tmp_path / "report"
    rep = runner.invoke(cli, ["report", str(storage / "tinycls" / "results.parquet"), "-o", str(out)])
    assert rep.exit_code == 0, rep.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["tasks"] == ["classification"] and summary["metric"]["classification"] == "top1"
    gains = pd.read_csv(out / "gains.csv")
    assert len(gains) == 2 * 2 and set(gains["init"]) == {"imagenet"}  # rungs x eval domains
    assert "<svg" in (out / "index.html").read_text()

    baseline = tmp_path / "baseline.json"
    results = str(storage / "tinycls" / "results.parquet")
    upd = runner.invoke(cli, ["check", results, "--baseline", str(baseline), "--update-baseline"])
    assert baseline.is_file(), upd.output
    again = runner.invoke(cli, ["check", results, "--baseline", str(baseline), "--junit", str(tmp_path / "j.xml")])
    assert again.exit_code == 0, again.output
    assert (tmp_path / "j.xml").read_text().startswith("<?xml")
