"""CLI `capgate data synth` and `capgate data verify`: exact exit codes and output."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from capgate.cli import cli, main
from capgate.cli.app import DATA_VERIFY_FORMATS
from capgate.data import WorldManifest
from capgate.data.registry import VERIFY_FORMATS, verify_dataset as verify

SMALL = ["--set", "datasets=llvip,flir", "--set", "llvip_train=2", "--set", "llvip_test=1",
         "--set", "flir_train=2", "--set", "flir_val=1", "--set", "flir_video=1"]


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    out = capsys.readouterr()
    return int(exc.value.code), out.out, out.err


@pytest.fixture
def small_world(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    code, out, _ = run(["data", "synth", "--out", str(tmp_path / "w"), "--seed", "2", *SMALL], capsys)
    assert code == 0
    return tmp_path / "w"


def test_synth_prints_what_it_wrote_and_the_fingerprint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["-q", "data", "synth", "--out", str(tmp_path / "w"), "--seed", "2", *SMALL], capsys)
    assert code == 0 and err == ""
    m = WorldManifest.load(tmp_path / "w")
    lines = out.splitlines()
    assert lines[0] == f"synthetic world at {tmp_path / 'w'} (seed 2)"
    assert re.fullmatch(r"  llvip +9 files  .*/w/llvip  [0-9a-f]{16}", lines[1])
    assert re.fullmatch(r"  flir +\d+ files  .*/w/flir  [0-9a-f]{16}", lines[2])
    assert lines[3] == f"fingerprint {m.fingerprint}" and len(lines) == 4
    assert m.seed == 2 and m.config.llvip_train == 2 and m.config.datasets == ("llvip", "flir")


def test_synth_bad_set_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["data", "synth", "--out", str(tmp_path / "w"), "--set", "llvip_train"], capsys)
    assert code == 2 and "Invalid value for --set: 'llvip_train' is not KEY=VALUE" in err
    code, _, err = run(["data", "synth", "--out", str(tmp_path / "w"), "--set", "nope=1"], capsys)
    assert code == 2 and err.startswith("Error: unknown world setting(s) ['nope']; valid: datasets,")
    assert not (tmp_path / "w").exists()


def test_verify_clean_dataset_exits_0(small_world: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["data", "verify", str(small_world / "llvip"), "--format", "llvip"], capsys)
    lines = out.splitlines()
    assert code == 0 and lines[0] == f"llvip dataset at {small_world / 'llvip'}"
    assert re.fullmatch(r"  train/rgb: 2 images, \d+ boxes in 1 categories \(per class: person \d+\); size 160x128 \(all\)", lines[1])
    assert lines[-1] == "no problems found" and len(lines) == 6
    code, out, _ = run(["data", "verify", str(small_world / "flir"), "--format", "flir"], capsys)
    assert code == 0 and "video_test pairs: 1 RGB frames paired with thermal frames" in out


def test_verify_collects_every_problem_and_exits_2(small_world: Path, capsys: pytest.CaptureFixture[str]) -> None:
    llvip = small_world / "llvip"
    (llvip / "Annotations" / "010001.xml").write_text("<annotation>")
    (llvip / "infrared" / "train" / "010002.jpg").unlink()
    code, out, _ = run(["data", "verify", str(llvip), "--format", "llvip"], capsys)
    assert code == 2
    assert "problems: 2" in out  # malformed XML (shared by both modalities, listed once) + unpaired image
    assert out.count("010001.xml: malformed XML") == 1
    assert "visible/train/010002.jpg: has no infrared counterpart with the same file name" in out
    report = verify(llvip, "llvip")
    assert not report.ok and len(report.problems) == 2
    code, out, _ = run(["data", "verify", str(llvip), "--format", "llvip", "--json"], capsys)
    assert code == 2 and json.loads(out)["ok"] is False


def test_verify_reports_size_mismatch_and_wrong_layout(small_world: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = small_world / "flir" / "images_rgb_val" / "coco.json"
    doc = json.loads(p.read_text())
    doc["images"][0]["width"] = 99
    p.write_text(json.dumps(doc))
    code, out, _ = run(["data", "verify", str(small_world / "flir"), "--format", "flir"], capsys)
    assert code == 2 and "image is 160x128 but its annotation says 99x128" in out
    code, out, _ = run(["data", "verify", str(small_world / "llvip"), "--format", "domainnet"], capsys)
    assert code == 2 and "no <domain>_{train,test}.txt split files" in out


def test_verify_bad_options_exit_2(tmp_path: Path) -> None:
    r = CliRunner().invoke(cli, ["data", "verify", str(tmp_path), "--format", "voc"])
    assert r.exit_code == 2 and "Invalid value for '--format': 'voc' is not one of 'llvip', 'flir'" in r.output
    r = CliRunner().invoke(cli, ["data", "verify", str(tmp_path / "missing"), "--format", "coco"])
    assert r.exit_code == 2 and "does not exist" in r.output


def test_cli_formats_come_from_the_registry_and_commands_have_help() -> None:
    from capgate.cli.app import DATA_EXPORT_FORMATS

    assert DATA_VERIFY_FORMATS == VERIFY_FORMATS == ("llvip", "flir", "coco", "imagenet", "domainnet", "cifar10",
                                                     "cifar100", "tinyimagenet")
    assert DATA_EXPORT_FORMATS == ("llvip", "flir", "coco")
    for args in (["data", "--help"], ["data", "synth", "--help"], ["data", "verify", "-h"], ["data", "export", "-h"]):
        r = CliRunner().invoke(cli, args)
        assert r.exit_code == 0 and "Usage: " in r.output


def _zero_area_llvip(root: Path) -> Path:
    from PIL import Image

    for split, name in (("train", "010001"), ("test", "190001")):
        for folder in ("visible", "infrared"):
            (root / folder / split).mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (20, 16)).save(root / folder / split / f"{name}.jpg")
        box = "<xmin>4</xmin><ymin>2</ymin><xmax>4</xmax><ymax>9</ymax>" if split == "train" else \
            "<xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax>"
        (root / "Annotations").mkdir(exist_ok=True)
        (root / "Annotations" / f"{name}.xml").write_text(
            f"<annotation><filename>{name}.jpg</filename><size><width>20</width><height>16</height><depth>3</depth>"
            f"</size><object><name>person</name><bndbox>{box}</bndbox></object></annotation>")
    return root


def test_verify_drop_invalid_lists_dropped_boxes_per_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _zero_area_llvip(tmp_path / "LLVIP")
    xml = root / "Annotations" / "010001.xml"
    code, out, _ = run(["data", "verify", str(root), "--format", "llvip"], capsys)
    assert code == 2 and f"{xml}: box [4.0, 2.0, 4.0, 9.0] (xyxy) has zero or negative area" in out
    assert "`capgate data verify --drop-invalid`" in out
    code, out, _ = run(["data", "verify", str(root), "--format", "llvip", "--drop-invalid"], capsys)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[-3:] == ["dropped 1 invalid box(es) (--drop-invalid) in 1 file(s):", f"  {xml}: 1", "no problems found"]
    code, out, _ = run(["data", "verify", str(root), "--format", "llvip", "--drop-invalid", "--json"], capsys)
    d = json.loads(out)
    assert code == 0 and d["drop_invalid"] is True and d["dropped"] == {str(xml): 1}


def test_export_cli_writes_coco_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _zero_area_llvip(tmp_path / "LLVIP")
    code, _, err = run(["data", "export", str(root), "--format", "llvip", "-o", str(tmp_path / "out")], capsys)
    assert code == 2 and "zero or negative area" in err and not (tmp_path / "out" / "train_rgb.json").exists()
    code, out, _ = run(["data", "export", str(root), "--format", "llvip", "-o", str(tmp_path / "out"),
                        "--drop-invalid", "--class-map", "person"], capsys)
    assert code == 0
    assert out.splitlines() == [f"{tmp_path / 'out' / name}.json  {name.replace('_', '/')}: 1 images, {n} boxes"
                                for name, n in (("train_rgb", 0), ("train_ir", 0), ("test_rgb", 1), ("test_ir", 1))]
    doc = json.loads((tmp_path / "out" / "test_rgb.json").read_text())
    assert doc["annotations"][0]["bbox"] == [1.0, 1.0, 4.0, 4.0] and doc["categories"][0]["name"] == "person"
