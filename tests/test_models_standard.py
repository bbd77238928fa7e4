"""Standard full-size classifiers: exact published parameter counts, published preprocessing and
MACs, the replaced last layer, loud registry errors, and a spec that names them."""

from __future__ import annotations

import pytest
import torch

from capgate.errors import SpecError
from capgate.models import build_classifier, build_detector, count_params, get_rung, ladder, profile_model
from capgate.models.ladder import (STANDARD_FAMILY, Rung, StandardInfo, get_standard, register_standard, rung_names,
                                   standard_names)
from capgate.models.standard import StandardClassifier, build_standard
from capgate.spec import expand
from capgate.spec.load import load_study

#: Parameters at 1000 classes as timm and torchvision publish them (torchvision: its weights'
#: meta["num_params"], checked below too).
PUBLISHED = {
    "squeezenet1_1": 1_235_496, "shufflenet_v2_x1_0": 2_278_604, "resnet18": 11_689_512,
    "efficientnet_v2_s": 21_458_488, "mobilenetv3_small_100": 2_542_856, "lcnet_100": 2_953_800,
    "mobilenetv2_100": 3_504_872, "efficientnet_lite0": 4_652_008, "tf_efficientnet_lite0": 4_652_008,
    "ghostnet_100": 5_182_508, "efficientnet_b0": 5_288_548, "mobilenetv3_large_100": 5_483_032,
}
#: In-features of each last layer (the replaced head of N classes has in * N + N parameters).
HEAD_IN = {"squeezenet1_1": 512, "shufflenet_v2_x1_0": 1024, "resnet18": 512, "efficientnet_v2_s": 1280,
           "mobilenetv3_small_100": 1024, "lcnet_100": 1280, "mobilenetv2_100": 1280, "efficientnet_lite0": 1280,
           "tf_efficientnet_lite0": 1280, "ghostnet_100": 1280, "efficientnet_b0": 1280,
           "mobilenetv3_large_100": 1280}


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def test_the_registry_holds_the_brief_s_models_in_order():
    assert standard_names() == list(PUBLISHED)
    assert {get_standard(n).title for n in ("mobilenetv3_small_100", "resnet18", "squeezenet1_1", "efficientnet_v2_s",
                                            "shufflenet_v2_x1_0")} == {
        "MobileNetV3-Small", "ResNet-18", "SqueezeNet 1.1", "EfficientNetV2-S", "ShuffleNetV2 x1.0"}
    assert get_standard("resnet18").constructor == "torchvision.models.resnet18(weights=None, num_classes=N)"
    assert get_standard("ghostnet_100").constructor == \
        "timm.create_model('ghostnet_100', pretrained=False, num_classes=N)"


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_exact_published_parameters_and_the_replaced_last_layer(name):
    assert get_standard(name).params == PUBLISHED[name]
    model = build_classifier(get_rung(name), 1000)
    assert isinstance(model, StandardClassifier) and count_params(model) == PUBLISHED[name]
    ten = build_standard(name, 10)
    head = dict(ten.backbone.get_submodule(get_standard(name).head).named_parameters())
    assert head["weight"].shape[0] == 10 and head["bias"].shape == (10,)
    assert count_params(ten) == PUBLISHED[name] - (1000 - 10) * (HEAD_IN[name] + 1)
    assert ten.head_keys == (f"{get_standard(name).head}.weight", f"{get_standard(name).head}.bias")


def test_resnet18_for_ten_classes_by_hand():
    # 11,689,512 - 1000 * 512 - 1000 + 10 * 512 + 10 = 11,181,642
    assert count_params(build_standard("resnet18", 10)) == 11_181_642


@pytest.mark.parametrize("name", [n for n in PUBLISHED if get_standard(n).source == "torchvision"])
def test_torchvision_models_match_their_published_meta_params_macs_and_transforms(name):
    from torchvision.models import get_model_weights

    weights = get_model_weights(name).DEFAULT
    info = get_standard(name)
    assert weights.meta["num_params"] == info.params
    t = weights.transforms()
    assert (t.crop_size, t.resize_size) == ([info.input_size], [round(info.input_size / info.crop_pct)])
    assert (tuple(t.mean), tuple(t.std), t.interpolation.value) == (info.mean, info.std, info.interpolation)
    # torchvision publishes GMACs (its "_ops", 3 decimals) under capgate's convention: conv + linear
    macs = profile_model(build_standard(name), info.input_size, latency=False, memory=False).macs
    assert round(macs / 1e9, 3) == weights.meta["_ops"]


@pytest.mark.parametrize("name", [n for n in PUBLISHED if get_standard(n).source == "timm"])
def test_timm_models_match_their_pretrained_cfg(name):
    cfg = build_standard(name).backbone.pretrained_cfg
    info = get_standard(name)
    assert (cfg["mean"], cfg["std"], cfg["input_size"], cfg["crop_pct"], cfg["interpolation"]) == \
        (info.mean, info.std, (3, info.input_size, info.input_size), info.crop_pct, info.interpolation)
    assert cfg["classifier"] == info.head


def test_resnet18_profile_at_224():
    prof = profile_model(build_standard("resnet18"), 224, latency=False, memory=False)
    assert prof.params == 11_689_512 and prof.fp32_bytes == 46_758_048  # 4 bytes per parameter
    # size_bytes adds every buffer: 20 BatchNorms over 4800 channels (mean and variance, one counter each)
    # and the 3 + 3 normalization constants
    assert prof.size_bytes == prof.fp32_bytes + 4 * (2 * 4800 + 20 + 6) == 46_796_552
    assert prof.macs == 1_814_073_344


def test_forward_and_training_step_in_0_1_images():
    model = build_classifier(get_rung("squeezenet1_1"), 5).train()
    logits = model(torch.rand(2, 3, 64, 64))
    assert logits.shape == (2, 5)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 4])).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_registry_and_rungs_fail_loudly():
    with pytest.raises(SpecError, match=r"unknown standard model 'resnet50'; valid: squeezenet1_1, .*mobilenetv3_large_100$"):
        get_standard("resnet50")
    with pytest.raises(SpecError, match=r"unknown rung 'resnet50'; .*or a standard model \(squeezenet1_1, "):
        get_rung("resnet50")
    with pytest.raises(SpecError, match="standard model name 'resnet18' is already registered"):
        register_standard(get_standard("resnet18"))
    with pytest.raises(SpecError, match="standard model name 'B-1' is already registered"):
        register_standard(StandardInfo("B-1", "x", "timm", 1, "fc", (0, 0, 0), (1, 1, 1), 224, 1.0, "bicubic", "x"))
    with pytest.raises(SpecError, match="source 'keras' is invalid; valid: timm, torchvision"):
        StandardInfo("x", "x", "keras", 1, "fc", (0, 0, 0), (1, 1, 1), 224, 1.0, "bicubic", "x")
    with pytest.raises(SpecError, match="standard model 'resnet18' has width and depth 1"):
        Rung("resnet18", STANDARD_FAMILY, 0.5, 1.0)
    with pytest.raises(SpecError, match="is a standard classifier with its own head; build it with build_classifier"):
        build_detector(get_rung("resnet18"), 1, 64)
    with pytest.raises(SpecError, match="'B-7' is a ladder rung, not a standard model"):
        build_standard("B-7", 10)
    with pytest.raises(SpecError, match="drop_rate 0.2 is invalid for resnet18"):
        build_standard("resnet18", 10, drop_rate=0.2)


def test_the_ladder_is_unchanged_and_standard_rungs_round_trip():
    assert len(ladder()) == 34 and not set(rung_names()) & set(standard_names())
    rung = get_rung("mobilenetv3_small_100")
    assert (rung.family, rung.width, rung.depth, rung.backbone_name) == ("standard", 1.0, 1.0, "mobilenetv3_small_100")
    assert Rung.from_dict(rung.to_dict()) == rung and rung.standard is get_standard("mobilenetv3_small_100")
    with pytest.raises(SpecError, match="is a standard model, not a ladder rung"):
        rung.info


def test_a_spec_names_standard_models_as_rungs_of_family_standard():
    study = load_study("experiments/demo_classification.yaml", ["rungs={standard: [resnet18, squeezenet1_1]}"])
    assert study.rungs == (("standard", "resnet18"), ("standard", "squeezenet1_1")) and study.rung_defs == {}
    _, runs = expand(study)
    assert {r.rung for r in runs} == {"resnet18", "squeezenet1_1"}
    run = runs[0]
    assert run.family == "standard" and run.rung_def is None and "rung_def" not in run.to_dict()
    assert run.build_rung() == get_rung(run.rung)
    again = expand(load_study("experiments/demo_classification.yaml", ["rungs={standard: [resnet18, squeezenet1_1]}"]))
    assert [r.run_id for r in again[1]] == [r.run_id for r in runs]  # stable ids


def test_a_detection_spec_refuses_standard_models():
    with pytest.raises(SpecError, match=r"spec key 'rungs.standard': standard models are classifiers with their own "
                                        r"head; a detection study names rungs of the ladder's families"):
        load_study("experiments/demo.yaml", ["rungs={standard: [resnet18]}"])
    with pytest.raises(SpecError, match=r"'rungs.standard\[0\]' = 'B-3' is a efficientnet rung"):
        load_study("experiments/demo_classification.yaml", ["rungs={standard: [B-3]}"])


def test_a_capgate_checkpoint_of_a_standard_model_moves_to_other_classes(tmp_path):
    from capgate.models import initialize, read_checkpoint, save_checkpoint

    rung = get_rung("squeezenet1_1")
    src = build_classifier(rung, 10)
    with torch.no_grad():
        for p in src.parameters():
            p.add_(0.5)
    path = save_checkpoint(tmp_path / "sq.pt", src, "classifier", rung, {})
    assert read_checkpoint(path).rung == rung
    same = build_classifier(rung, 10)
    report = initialize(same, path)
    assert report.rule == "name" and report.prefix == "backbone." and len(report.loaded) == report.total == 52
    assert all(torch.equal(a, b) for a, b in zip(same.parameters(), src.parameters()))
    other = build_classifier(rung, 5)
    report = initialize(other, path)
    assert report.reinitialized == ("classifier.1.bias", "classifier.1.weight") and report.mismatched == ()
    assert len(report.loaded) == report.total == 50
    assert torch.equal(other.backbone.features[0].weight, src.backbone.features[0].weight)
