"""Data errors fail the dry run and the preflight (exit 2, key and fix named), not every trial:
a modality or domain typo, a split the format lacks, an empty or incomplete dataset root; and a
grid whose runs failed on unusable data ends with exit 2 and the errors, not a retry hint."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from capgate.cli import cli
from capgate.errors import DataError, InputError
from capgate.grid import plan_grid
from capgate.grid.preflight import preflight, raise_on_unusable_data

REPO = Path(__file__).resolve().parents[1]


def _spec(tmp_path: Path, name: str, edit) -> Path:  # noqa: ANN001
    spec = yaml.safe_load((REPO / "experiments" / name).read_text())
    edit(spec)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _dry_run(tmp_path: Path, path: Path):  # noqa: ANN202
    return CliRunner().invoke(cli, ["run-grid", str(path), "--dry-run", "--storage", str(tmp_path / "store")])


def test_a_modality_typo_fails_the_dry_run_with_the_key_and_the_valid_values(tmp_path: Path) -> None:
    def edit(s: dict) -> None:
        s["train_sets"][0]["eval"][2]["modality"] = "rbg"

    res = _dry_run(tmp_path, _spec(tmp_path, "demo.yaml", edit))
    assert isinstance(res.exception, InputError) and res.exception.exit_code == 2
    assert str(res.exception) == (f"{tmp_path / 's.yaml'}: the grid cannot start:\n  spec key "
                                  "'train_sets[0].eval[2].modality' = 'rbg' is not a llvip modality; valid: rgb, ir; "
                                  "did you mean 'rgb'?")


def test_a_domain_typo_is_checked_against_the_synthetic_worlds_domains(tmp_path: Path) -> None:
    def edit(s: dict) -> None:
        s["train_sets"][0]["eval"][0]["domain"] = "clipartt"
        s["train_sets"][0]["eval"][1]["domain"] = "infograph"  # a DomainNet domain the world does not render

    problems, _ = preflight(plan_grid(_spec(tmp_path, "demo_classification.yaml", edit)), strict=False)
    assert problems == [
        "spec key 'train_sets[0].eval[0].domain' = 'clipartt' is not a domainnet domain; valid: real, sketch, "
        "clipart, painting, quickdraw; did you mean 'clipart'?",
        "spec key 'train_sets[0].eval[1].domain' = 'infograph' is not a domainnet domain; valid: real, sketch, "
        "clipart, painting, quickdraw",
    ]


def test_a_split_the_format_lacks_and_a_missing_domain_are_named(tmp_path: Path) -> None:
    def edit(s: dict) -> None:
        s["train_sets"][0]["split"] = "val"
        del s["train_sets"][0]["eval"][0]["domain"]

    problems, _ = preflight(plan_grid(_spec(tmp_path, "demo_classification.yaml", edit)), strict=False)
    assert problems[0] == ("spec key 'train_sets[0].split' = 'val' is not a domainnet split; valid: train, test")
    assert problems[1].startswith("spec key 'train_sets[0].eval[0].domain' is missing: format domainnet needs "
                                  "a domain; add one of: real, sketch")


def _llvip_spec(tmp_path: Path, root: Path) -> Path:
    def edit(s: dict) -> None:
        s["datasets"]["llvip"]["root"] = str(root)

    return _spec(tmp_path, "demo.yaml", edit)


def test_an_empty_dataset_root_fails_the_dry_run_naming_the_missing_folder(tmp_path: Path) -> None:
    root = tmp_path / "llvip"
    root.mkdir()
    res = _dry_run(tmp_path, _llvip_spec(tmp_path, root))
    assert res.exit_code == 2 or (isinstance(res.exception, InputError) and res.exception.exit_code == 2)
    lines = str(res.exception).splitlines()[1:]
    assert lines == [
        f"  spec key 'train_sets[0]': {root / 'Annotations'} is missing, so the llvip split 'train' cannot be read "
        f"from {root} (from '{root}'); fix: point the dataset's root at the folder that holds Annotations/, "
        "visible/{train,test}/ and infrared/{train,test}/",
        # the same root's other splits are not listed again
    ]


def test_a_split_folder_without_files_is_named_and_a_complete_root_passes(tmp_path: Path) -> None:
    root = tmp_path / "llvip"
    for d in ("Annotations", "visible/train", "visible/test", "infrared/test"):
        (root / d).mkdir(parents=True)
    problems, _ = preflight(plan_grid(_llvip_spec(tmp_path, root)), strict=False)
    assert problems == [
        f"spec key 'train_sets[0]': {root / 'visible' / 'train'} holds no files, so the llvip split 'train' cannot "
        f"be read from {root} (from '{root}'); fix: point the dataset's root at the folder that holds "
        "Annotations/, visible/{train,test}/ and infrared/{train,test}/",
        f"spec key 'train_sets[0].eval[0]': {root / 'visible' / 'test'} holds no files, so the llvip split 'test' "
        f"cannot be read from {root} (from '{root}'); fix: point the dataset's root at the folder that holds "
        "Annotations/, visible/{train,test}/ and infrared/{train,test}/",
        f"spec key 'train_sets[0].eval[2]': {root / 'infrared' / 'test'} holds no files, so the llvip split 'test' "
        f"cannot be read from {root} (from '{root}'); fix: point the dataset's root at the folder that holds "
        "Annotations/, visible/{train,test}/ and infrared/{train,test}/",
    ]
    for d in ("visible/train", "visible/test", "infrared/test"):
        (root / d / "000001.jpg").write_bytes(b"")
    assert preflight(plan_grid(_llvip_spec(tmp_path, root)), strict=False) == ([], [])


def test_runs_failed_on_unusable_data_end_the_grid_with_exit_2_and_their_errors() -> None:
    failed = [("r1", "DataError: /d/Annotations/1.xml: malformed XML; fix: restore it\nTraceback ..."),
              ("r2", "RuntimeError: CUDA out of memory")]
    with pytest.raises(DataError) as exc:
        raise_on_unusable_data(failed, 4, "/s/results.parquet")
    assert exc.value.exit_code == 2
    assert str(exc.value) == ("1 of 4 runs failed on unusable data or weights (recorded in /s/results.parquet); "
                              "rerunning cannot help: fix what each error names, then run the same command again:\n"
                              "  r1: DataError: /d/Annotations/1.xml: malformed XML; fix: restore it")
    raise_on_unusable_data(failed[1:], 4, "/s/results.parquet")  # other failures: the caller's retry hint


def test_a_report_of_an_all_failed_study_shows_the_runs_errors(tmp_path: Path) -> None:
    import numpy as np

    from capgate.analysis import simulate_results
    from capgate.errors import CapgateError
    from capgate.report import render_report
    from helpers import detection_truth

    t = simulate_results(detection_truth(seeds=2, run_sd=0.004, noise_sd=0.002, seed_sd=0.004), seed=5)
    t["status"], t["map"] = "failed", np.nan
    runs = sorted(t["run_id"].unique())
    t["error"] = ["DataError: /d/llvip/visible/train: folder is missing\nTraceback" if r == runs[0]
                  else "RuntimeError: out of memory" for r in t["run_id"]]
    with pytest.raises(CapgateError) as exc:
        render_report(t, tmp_path / "r", plan={"n_boot": 0})
    assert str(exc.value).endswith(f"; the runs' errors:\n  {len(runs) - 1} runs: RuntimeError: out of memory\n"
                                   "  1 run: DataError: /d/llvip/visible/train: folder is missing")
