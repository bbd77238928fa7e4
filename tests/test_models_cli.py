"""``capgate models``: table and JSON output, filters, exact exit codes and messages."""

from __future__ import annotations

import json

import pytest
import torch

from capgate.models import build_detector, count_params, get_rung, ladder
from capgate.models.profile import MACS_CONVENTION
from helpers import run_main


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)



def test_json_lists_every_rung_with_exact_counts(capsys):
    assert run_main(["models", "--json", "--no-latency", "--resolution", "64"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["rung"] for r in rows] == [r.name for r in ladder()]
    assert len(rows) == 34
    b7 = rows[[r["rung"] for r in rows].index("B-7")]
    assert b7["backbone"] == "efficientnet_b0@w0.1d0.25 (B-7)"
    assert (b7["width"], b7["depth"], b7["task"], b7["num_classes"]) == (0.1, 0.25, "detection", 1)
    assert b7["resolution"] == 64
    assert b7["params"] == count_params(build_detector(get_rung("B-7"), 1, 64)) == 41_874
    assert all(r["macs"] > 0 and r["latency_ms"] is None for r in rows)
    assert all(r["macs_convention"] == MACS_CONVENTION and r["fp32_bytes"] == 4 * r["params"] for r in rows)
    assert b7["builder"] == ("timm.models.efficientnet._gen_efficientnet('efficientnet_b0', channel_multiplier=0.1, "
                             "depth_multiplier=0.25)")
    assert b7["scaling"].startswith("width = channel_multiplier")


def test_one_new_family_as_json(capsys):
    assert run_main(["models", "--family", "shufflenetv2", "--json", "--no-latency", "--resolution", "64"]) == 0
    out = capsys.readouterr()
    rows = json.loads(out.out)  # stdout holds only the JSON; the line before the measuring is on stderr
    assert out.err == ("INFO capgate.cli: measuring 4 rungs (shufflenetv2, 64 px): building each FCOS detector, "
                       "counting parameters and MACs; this takes a while\n")
    assert [r["rung"] for r in rows] == ["SH-1", "SH-2", "SH-3", "SH-4"]
    assert [r["params"] for r in rows] == [621_322, 280_090, 90_504, 22_028]
    assert rows[1]["builder"] == "torchvision.models.ShuffleNetV2(stages_repeats=[2, 4, 2], " \
                                 "stages_out_channels=[12, 60, 116, 232, 1024])"
    assert rows[1]["family"] == "shufflenetv2" and rows[1]["backbone"] == "shufflenet_v2@w0.5d0.5 (SH-2)"


def test_table_with_latency_for_one_family(capsys):
    assert run_main(["models", "--family", "mobilenetv3", "--resolution", "64"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["rung", "backbone", "width", "depth", "backbone", "params", "params", "MMACs",
                                "latency", "ms"]
    assert lines[-2:] == ["", MACS_CONVENTION]  # the convention beside every MACs figure
    lines = lines[:-2]
    assert [line.split()[0] for line in lines[2:]] == [f"S-{i}" for i in range(7)]
    s6 = lines[-1].split()
    assert s6[1:3] == ["mobilenetv3_large@w0.1d0.25", "(S-6)"] and s6[6] == "37,038"
    assert float(s6[-1]) > 0


def test_classification_task(capsys):
    assert run_main(["models", "--task", "classification", "--num-classes", "7", "--family", "efficientnet",
                     "--no-latency", "--json", "--resolution", "32"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["kind"] for r in rows] == ["classifier"] * 7
    assert all(r["params"] - r["backbone_params"] > 7 for r in rows)


def test_bad_options_exit_2(capsys):
    assert run_main(["models", "--family", "resnet"]) == 2
    err = capsys.readouterr().err
    assert ("Invalid value for '--family': 'resnet' is not one of 'efficientnet', 'mobilenetv3', "
            "'efficientnet_lite', 'mobilenetv2', 'ghostnet', 'lcnet', 'shufflenetv2'.") in err
    assert run_main(["models", "--resolution", "8"]) == 2
    assert "Invalid value for '--resolution'" in capsys.readouterr().err
    assert run_main(["models", "--task", "classification", "--num-classes", "1", "--no-latency"]) == 2
    err = capsys.readouterr().err.splitlines()  # the line saying what is measured, then the error
    assert err[-1] == "Error: num_classes 1 is invalid; a classifier needs an integer >= 2" and len(err) == 2


def test_help(capsys):
    assert run_main(["models", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--latency / --no-latency" in out and "Exit codes: 0 success, 1 failure, 2 unusable input." in out


def test_standard_models_as_json(capsys):
    assert run_main(["models", "--standard", "--json", "--no-latency", "--resolution", "64"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows][:3] == ["squeezenet1_1", "shufflenet_v2_x1_0", "resnet18"] and len(rows) == 12
    assert all(r["params"] == r["params_published"] and r["fp32_bytes"] == 4 * r["params"] for r in rows)
    assert all(r["macs_convention"] == MACS_CONVENTION and r["num_classes"] == 1000 for r in rows)
    resnet = rows[2]
    assert (resnet["params"], resnet["fp32_bytes"], resnet["resolution"]) == (11_689_512, 46_758_048, 64)
    # 64 x 64 is 1/(3.5 x 3.5) of 224 x 224 in every conv; the fc does not shrink: 1,813,561,344 / 12.25 + 512,000 = 148,045,824 + 512,000
    assert resnet["macs"] == 148_557_824 and resnet["latency_ms"] is None
    assert resnet["constructor"] == "torchvision.models.resnet18(weights=None, num_classes=N)"


def test_standard_table_at_the_default_224_with_latency(capsys, monkeypatch):
    import capgate.models.table as table

    monkeypatch.setattr(table, "standard_names", lambda: ["squeezenet1_1"])
    assert run_main(["models", "--standard"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["model", "title", "params", "FP32", "MB", "MMACs", "latency", "ms"]
    row = lines[2].split()
    # SqueezeNet 1.1 at 224: torchvision publishes 0.349 GMACs (conv only; its classifier is a conv)
    assert row[:6] == ["squeezenet1_1", "SqueezeNet", "1.1", "1,235,496", "4.94", "349.15"] and float(row[6]) > 0
    assert lines[-1] == MACS_CONVENTION
    assert run_main(["models", "--standard", "--family", "lcnet"]) == 2
    assert "--standard lists classifiers with their own heads; drop --family and --task" in capsys.readouterr().err
