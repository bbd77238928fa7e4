"""The capacity ladder: registry, naming, custom rungs, and every rung's detector and classifier
building, running and taking a finite training step."""

from __future__ import annotations

import math

import pytest
import torch

from capgate.errors import SpecError
from capgate.models import (FAMILIES, Rung, build_classifier, build_detector, count_params, get_rung, ladder,
                            register_rung, rung_names)

ALL = [r.name for r in ladder()]


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def test_default_names_follow_the_source_study():
    assert [r.name for r in ladder("efficientnet")] == [f"B-{i}" for i in range(1, 8)]
    assert [r.name for r in ladder("mobilenetv3")] == [f"S-{i}" for i in range(0, 7)]
    assert rung_names() == ALL
    assert set(FAMILIES) == {"efficientnet", "mobilenetv3"}


def test_backbone_names_are_readable_and_resolve_back():
    b3 = get_rung("B-3")
    assert (b3.family, b3.width, b3.depth) == ("efficientnet", 0.3, 0.5)
    assert b3.backbone_name == "efficientnet_b0@w0.3d0.5 (B-3)"
    assert get_rung("efficientnet_b0@w0.3d0.5 (B-3)") is b3
    # a default rung's multipliers spelled as a custom name give the default rung
    assert get_rung("efficientnet_b0@w0.3d0.5") is b3
    assert get_rung("S-0").backbone_name == "mobilenetv3_large@w0.45d1 (S-0)"


def test_custom_rungs():
    r = Rung.custom("mobilenetv3", 0.35, 0.75)
    assert r.name == r.backbone_name == "mobilenetv3_large@w0.35d0.75"
    assert not r.is_default and get_rung("B-1").is_default
    assert get_rung("mobilenetv3_large@w0.35d0.75") == r
    assert Rung.from_dict(r.to_dict()) == r
    assert Rung.from_dict({"family": "efficientnet", "width": 0.6, "depth": 0.5}).name == "efficientnet_b0@w0.6d0.5"
    assert Rung.from_dict({"name": "S-2"}) is get_rung("S-2")
    assert (r.neck_channels, r.head_convs) == (32, 3)


def test_unknown_and_invalid_rungs_fail_loudly():
    with pytest.raises(SpecError, match=r"unknown rung 'B-9'; valid rungs: B-1, B-2, .*S-6"):
        get_rung("B-9")
    with pytest.raises(SpecError, match="names architecture 'resnet50'"):
        get_rung("resnet50@w0.5d0.5")
    with pytest.raises(SpecError, match=r"unknown backbone family 'resnet'; valid families: efficientnet, mobilenetv3"):
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


def test_neck_and_head_scale_with_the_rung():
    assert [(r.neck_channels, r.head_convs) for r in ladder("efficientnet")] == [
        (48, 2), (40, 2), (32, 2), (24, 1), (16, 1), (16, 1), (16, 1)]
    assert [(r.neck_channels, r.head_convs) for r in ladder("mobilenetv3")] == [
        (40, 4), (48, 2), (32, 2), (24, 2), (24, 1), (16, 1), (16, 1)]


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_parameters_monotone_span_10x_and_under_1m(family):
    det = [count_params(build_detector(r, 1, 64)) for r in ladder(family)]
    backbone = [count_params(build_detector(r, 1, 64).backbone.body) for r in ladder(family)]
    assert all(a > b for a, b in zip(det, det[1:])), det
    assert all(a > b for a, b in zip(backbone, backbone[1:])), backbone
    assert det[0] < 1_000_000
    assert det[0] / det[-1] >= 10.0
    assert det[-1] < 100_000  # "ultra-small"


def test_documented_exact_parameter_counts():
    """The docstring table of capgate.models.ladder, pinned (timm 1.0.31, torchvision 0.29.1)."""
    expected = {"B-1": 713_574, "B-4": 127_954, "B-7": 41_874, "S-0": 838_222, "S-3": 193_398, "S-6": 37_038}
    got = {name: count_params(build_detector(get_rung(name), 1, 64)) for name in expected}
    assert got == expected


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
    # the classifier's backbone is the detector's, parameter for parameter
    det = build_detector(get_rung(name), 1, 64)
    assert count_params(model.backbone) == count_params(det.backbone.body)
    assert list(model.backbone.state_dict()) == list(det.backbone.body.state_dict())
