"""The capacity ladder: registry, naming, custom rungs, exact parameter counts (the source study's
two families pinned as they were on main), monotone ladders, and every rung's detector and
classifier building, running and taking a finite training step."""

from __future__ import annotations

import math

import pytest
import torch

from capgate.errors import SpecError
from capgate.models import (FAMILIES, Rung, build_classifier, build_detector, count_params, get_rung, ladder,
                            register_rung, rung_names)

ALL = [r.name for r in ladder()]
SOURCE_STUDY = ("efficientnet", "mobilenetv3")

#: Exact parameter counts (timm 1.0.31, torchvision 0.29.1): the whole detector for one class at
#: 64 px (counts do not depend on the resolution) and the classifier for ten classes. The B-* and
#: S-* numbers were measured on main before the family registry existed; the docstring table of
#: capgate.models.ladder shows the same numbers.
DETECTOR_PARAMS = {
    "B-1": 713_574, "B-2": 502_820, "B-3": 277_402, "B-4": 127_954, "B-5": 76_826, "B-6": 56_598, "B-7": 41_874,
    "S-0": 838_222, "S-1": 642_214, "S-2": 328_582, "S-3": 193_398, "S-4": 121_062, "S-5": 48_918, "S-6": 37_038,
    "L-1": 625_094, "L-2": 309_478, "L-3": 115_350, "L-4": 39_270,
    "M-1": 486_598, "M-2": 241_766, "M-3": 83_606, "M-4": 30_182,
    "G-1": 490_346, "G-2": 239_582, "G-3": 133_480, "G-4": 42_262,
    "LC-1": 524_534, "LC-2": 250_864, "LC-3": 140_766, "LC-4": 43_640,
    "SH-1": 621_322, "SH-2": 280_090, "SH-3": 90_504, "SH-4": 22_028,
}
CLASSIFIER_PARAMS = {
    "B-1": 555_050, "B-2": 392_744, "B-3": 206_942, "B-4": 98_182, "B-5": 63_358, "B-6": 43_354, "B-7": 28_726,
    "S-0": 660_626, "S-1": 471_530, "S-2": 252_586, "S-3": 150_874, "S-4": 89_050, "S-5": 35_098, "S-6": 23_506,
    "L-1": 466_570, "L-2": 238_410, "L-3": 85_578, "L-4": 26_122,
    "M-1": 328_842, "M-2": 170_954, "M-3": 54_218, "M-4": 17_034,
    "G-1": 252_302, "G-2": 132_882, "G-3": 73_116, "G-4": 15_290,
    "LC-1": 273_466, "LC-2": 138_580, "LC-3": 77_634, "LC-4": 16_028,
    "SH-1": 248_966, "SH-2": 114_222, "SH-3": 34_868, "SH-4": 8_216,
}


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def test_default_names_follow_the_source_study():
    assert [r.name for r in ladder("efficientnet")] == [f"B-{i}" for i in range(1, 8)]
    assert [r.name for r in ladder("mobilenetv3")] == [f"S-{i}" for i in range(0, 7)]
    assert rung_names() == ALL == list(DETECTOR_PARAMS)
    assert list(FAMILIES) == ["efficientnet", "mobilenetv3", "efficientnet_lite", "mobilenetv2", "ghostnet",
                              "lcnet", "shufflenetv2"]
    for family, prefix in [("efficientnet_lite", "L"), ("mobilenetv2", "M"), ("ghostnet", "G"), ("lcnet", "LC"),
                           ("shufflenetv2", "SH")]:
        assert rung_names(family) == [f"{prefix}-{i}" for i in range(1, 5)]


def test_source_study_ladders_are_unchanged():
    assert [(r.name, r.width, r.depth, r.note) for r in ladder("efficientnet")] == [
        ("B-1", 0.5, 0.5, "small"), ("B-2", 0.4, 0.5, ""), ("B-3", 0.3, 0.5, ""), ("B-4", 0.25, 0.25, ""),
        ("B-5", 0.2, 0.25, ""), ("B-6", 0.15, 0.25, ""), ("B-7", 0.1, 0.25, "ultra-small")]
    assert [(r.name, r.width, r.depth, r.note) for r in ladder("mobilenetv3")] == [
        ("S-0", 0.45, 1.0, "small (full depth)"), ("S-1", 0.5, 0.5, ""), ("S-2", 0.35, 0.5, ""),
        ("S-3", 0.25, 0.5, ""), ("S-4", 0.25, 0.25, ""), ("S-5", 0.15, 0.25, ""), ("S-6", 0.1, 0.25, "ultra-small")]
    names = rung_names("efficientnet") + rung_names("mobilenetv3")
    assert {n: count_params(build_detector(get_rung(n), 1, 64)) for n in names} == \
        {n: DETECTOR_PARAMS[n] for n in names}
    assert {n: count_params(build_classifier(get_rung(n), 10)) for n in names} == \
        {n: CLASSIFIER_PARAMS[n] for n in names}


def test_new_rung_notes_name_their_builder_call():
    assert get_rung("L-1").note == ("small; timm.models.efficientnet._gen_efficientnet_lite('efficientnet_lite0', "
                                    "channel_multiplier=0.5, depth_multiplier=0.5)")
    assert get_rung("G-3").note == "timm.models.ghostnet._create_ghostnet('ghostnet_100', width=0.25)"
    assert get_rung("SH-4").note == ("ultra-small; torchvision.models.ShuffleNetV2(stages_repeats=[1, 2, 1], "
                                     "stages_out_channels=[8, 16, 36, 68, 1024])")


def test_backbone_names_are_readable_and_resolve_back():
    b3 = get_rung("B-3")
    assert (b3.family, b3.width, b3.depth) == ("efficientnet", 0.3, 0.5)
    assert b3.backbone_name == "efficientnet_b0@w0.3d0.5 (B-3)"
    assert get_rung("efficientnet_b0@w0.3d0.5 (B-3)") is b3
    # a default rung's multipliers spelled as a custom name give the default rung
    assert get_rung("efficientnet_b0@w0.3d0.5") is b3
    assert get_rung("S-0").backbone_name == "mobilenetv3_large@w0.45d1 (S-0)"
    assert get_rung("SH-2").backbone_name == "shufflenet_v2@w0.5d0.5 (SH-2)"
    assert get_rung("ghostnet@w0.1d1") is get_rung("G-4")
    assert get_rung("efficientnet_lite0@w0.35d0.5") is get_rung("L-2")


def test_custom_rungs():
    r = Rung.custom("mobilenetv3", 0.35, 0.75)
    assert r.name == r.backbone_name == "mobilenetv3_large@w0.35d0.75"
    assert not r.is_default and get_rung("B-1").is_default
    assert get_rung("mobilenetv3_large@w0.35d0.75") == r
    assert Rung.from_dict(r.to_dict()) == r
    assert Rung.from_dict({"family": "efficientnet", "width": 0.6, "depth": 0.5}).name == "efficientnet_b0@w0.6d0.5"
    assert Rung.from_dict({"name": "S-2"}) is get_rung("S-2")
    assert (r.neck_channels, r.head_convs) == (32, 3)
    g = get_rung("ghostnet@w0.3d1")
    assert (g.family, g.width, g.depth, g.name) == ("ghostnet", 0.3, 1.0, "ghostnet@w0.3d1")
    assert Rung.custom("lcnet", 0.3).depth == 1.0


def test_unknown_and_invalid_rungs_fail_loudly():
    with pytest.raises(SpecError, match=r"unknown rung 'B-9'; valid rungs: B-1, B-2, .*S-6, L-1, .*SH-4, or a custom"):
        get_rung("B-9")
    with pytest.raises(SpecError, match="names architecture 'resnet50'"):
        get_rung("resnet50@w0.5d0.5")
    with pytest.raises(SpecError, match=r"unknown backbone family 'resnet'; valid families: efficientnet, "
                                        r"mobilenetv3, efficientnet_lite, mobilenetv2, ghostnet, lcnet, shufflenetv2$"):
        Rung.custom("resnet", 0.5, 0.5)
    with pytest.raises(SpecError, match=r"rung width 0.0 is out of range"):
        Rung.custom("efficientnet", 0.0, 0.5)
    with pytest.raises(SpecError, match="rung depth 'x' is not a number"):
        Rung("X", "efficientnet", 0.5, "x")
    with pytest.raises(SpecError, match="lacks depth"):
        Rung.from_dict({"family": "efficientnet", "width": 0.5})
    with pytest.raises(SpecError, match="'B-1' is already registered"):
        register_rung(Rung("B-1", "efficientnet", 0.9, 0.9))
    with pytest.raises(SpecError, match="unknown backbone family"):
        ladder("vit")
    with pytest.raises(SpecError, match="unknown backbone family 'vit'"):
        rung_names("vit")
    with pytest.raises(SpecError, match=r"rung depth 0.5 is invalid for family 'ghostnet': its builder "
                                        r"\(timm.models.ghostnet._create_ghostnet\) has no depth argument; give depth 1"):
        get_rung("ghostnet@w0.3d0.5")


def test_neck_and_head_scale_with_the_rung():
    assert [(r.neck_channels, r.head_convs) for r in ladder("efficientnet")] == [
        (48, 2), (40, 2), (32, 2), (24, 1), (16, 1), (16, 1), (16, 1)]
    assert [(r.neck_channels, r.head_convs) for r in ladder("mobilenetv3")] == [
        (40, 4), (48, 2), (32, 2), (24, 2), (24, 1), (16, 1), (16, 1)]
    assert [(r.neck_channels, r.head_convs) for r in ladder("ghostnet")] == [(48, 4), (32, 4), (24, 4), (16, 4)]
    assert [(r.neck_channels, r.head_convs) for r in ladder("shufflenetv2")] == [(72, 2), (48, 2), (32, 1), (16, 1)]


@pytest.mark.parametrize("family", list(FAMILIES))
def test_parameters_monotone_span_and_under_1m(family):
    """>= 4 rungs, strictly decreasing whole-detector and backbone parameters, all under 1M, a
    span of >= 10x (the source study's ladders) or >= 5x (the others), an ultra-small last rung."""
    dets = [build_detector(r, 1, 64) for r in ladder(family)]
    det = [count_params(d) for d in dets]
    backbone = [count_params(d.backbone.body) for d in dets]
    assert len(det) >= 4
    assert all(a > b for a, b in zip(det, det[1:])), det
    assert all(a > b for a, b in zip(backbone, backbone[1:])), backbone
    assert det[0] < 1_000_000
    assert det[0] / det[-1] >= (10.0 if family in SOURCE_STUDY else 5.0)
    assert det[-1] < 100_000


def test_documented_exact_parameter_counts():
    """Every rung's counts, as in the docstring table of capgate.models.ladder."""
    assert {n: count_params(build_detector(get_rung(n), 1, 64)) for n in ALL} == DETECTOR_PARAMS
    assert {n: count_params(build_classifier(get_rung(n), 10)) for n in ALL} == CLASSIFIER_PARAMS


def _targets(n_images: int, resolution: int) -> list[dict[str, torch.Tensor]]:
    r = float(resolution)
    out = [{"boxes": torch.tensor([[0.1 * r, 0.2 * r, 0.5 * r, 0.9 * r], [0.55 * r, 0.1 * r, 0.95 * r, 0.6 * r]]),
            "labels": torch.tensor([0, 1])}]
    out += [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}] * (n_images - 1)
    return out


@pytest.mark.parametrize("name", ALL)
def test_every_rung_detector_forward_and_training_step(name):
    torch.manual_seed(0)
    model = build_detector(get_rung(name), 2, 64)
    images = torch.rand(2, 3, 64, 64)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    model.train()
    losses = model(images, _targets(2, 64))
    assert set(losses) == {"classification", "bbox_regression", "bbox_ctrness"}
    loss = sum(losses.values())
    assert math.isfinite(loss.item()) and loss.item() > 0
    loss.backward()
    opt.step()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())
    model.eval()
    with torch.no_grad():
        out = model(images)
    assert len(out) == 2 and set(out[0]) == {"boxes", "scores", "labels"}
    assert out[0]["boxes"].shape[1] == 4 and len(out[0]["boxes"]) <= 100


@pytest.mark.parametrize("name", ALL)
def test_every_rung_classifier_forward_and_training_step(name):
    torch.manual_seed(0)
    model = build_classifier(get_rung(name), 5)
    images, labels = torch.rand(4, 3, 64, 64), torch.tensor([0, 1, 2, 4])
    model.train()
    logits = model(images)
    assert logits.shape == (4, 5)
    loss = torch.nn.functional.cross_entropy(logits, labels)
    assert math.isfinite(loss.item())
    loss.backward()
    torch.optim.SGD(model.parameters(), lr=0.01).step()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())
    # the classifier's backbone is the detector's, parameter for parameter
    det = build_detector(get_rung(name), 1, 64)
    assert count_params(model.backbone) == count_params(det.backbone.body)
    assert list(model.backbone.state_dict()) == list(det.backbone.body.state_dict())
