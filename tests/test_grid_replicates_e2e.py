"""Pretraining replicates as a user sees them: a tiny study trained with stage seeds [0, 1], then again
with the disjoint stage seeds [2, 3] (every pretrained cell's stage redrawn), passes ``capgate check``
against the first's baseline; a +5 pp shift of every cell of one init fails it (exit 1)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from capgate.cli import cli, main
from helpers import TINY_CLS_WORLD, tiny_classification_spec


def _spec(tmp_path: Path) -> Path:
    path = tiny_classification_spec(tmp_path, study="tinyrep", seeds=3)
    spec = yaml.safe_load(path.read_text())
    spec["world"]["config"] = {**TINY_CLS_WORLD, "domainnet_train": 12, "domainnet_test": 30}  # 90 test images a domain
    spec["rungs"] = {"mobilenetv3": ["S-6"]}
    spec["pretraining"]["imagenet"]["recipe"] = {"steps": 6, "batch_size": 8, "resolution": 32}
    spec["recipe"] = {"steps": 12, "batch_size": 8, "resolution": 32, "warmup_steps": 2, "lr": 0.003}
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.mark.slow
def test_a_redraw_of_every_stage_passes_the_check_and_a_shift_of_one_init_fails_it(tmp_path: Path, capsys) -> None:
    runner = CliRunner()
    spec = _spec(tmp_path)
    tables = {}
    for name, seeds in (("a", "[0, 1]"), ("b", "[2, 3]")):
        store = tmp_path / name
        ran = runner.invoke(cli, ["run-grid", str(spec), "--storage", str(store), "--set", f"stage_seeds={seeds}",
                                  "--max-concurrent", "2"])
        assert ran.exit_code == 0, ran.output
        tables[name] = store / "tinyrep" / "results.parquet"
    a = pd.read_parquet(tables["a"]).drop_duplicates("run_id")
    got = sorted((i, s, None if pd.isna(ss) else int(ss)) for i, s, ss in zip(a["init"], a["seed"], a["stage_seed"]))
    assert got == [("imagenet", 0, 0), ("imagenet", 1, 1), ("imagenet", 2, 0),
                   ("scratch", 0, None), ("scratch", 1, None), ("scratch", 2, None)]
    b = pd.read_parquet(tables["b"]).drop_duplicates("run_id")
    assert set(b.loc[b["init"] == "imagenet", "init_source"].str[:25]).isdisjoint(
        a.loc[a["init"] == "imagenet", "init_source"].str[:25])  # every stage redrawn

    baseline = tmp_path / "baseline.json"
    assert _check(tables["a"], baseline, "--update-baseline") == 0 and baseline.is_file()
    assert _check(tables["b"], baseline, "--expectations", "baseline") == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    # the summary's cells carry se_rerun (2 replicates): the tolerance rests on them, not on the assumption
    assert "stage noise from 2 pretraining replicates (se_rerun)" in out and "stage noise assumed" not in out

    shifted = pd.read_parquet(tables["b"])
    ok = (shifted["init"] == "scratch") & (shifted["status"] == "ok")
    shifted.loc[ok, "top1"] += 0.05
    moved = tmp_path / "shifted.parquet"
    shifted.to_parquet(moved, index=False)
    assert _check(moved, baseline, "--expectations", "baseline") == 1
    out = capsys.readouterr().out
    fails = [ln for ln in out.splitlines() if ln.startswith("FAIL")]
    assert any(" systematic " in ln and "tinyrep|classification|scratch" in ln for ln in fails), out


def _check(results: Path, baseline: Path, *args: str) -> int:
    """``capgate check`` through the console entry point (its exit code is the command's return value)."""
    with pytest.raises(SystemExit) as exc:
        main(["check", str(results), "--baseline", str(baseline), *args])
    return exc.value.code
