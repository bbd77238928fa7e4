"""The FCOS detector: label convention, no resizing, pixel-coordinate boxes, assembly."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torchvision.models.detection import FCOS

from capgate.errors import SpecError
from capgate.models import build_detector, get_rung
from capgate.models.detector import CLASS_SPECIFIC_KEYS


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _force_class(model: nn.Module, k: int) -> None:
    """Make every location predict class ``k`` with high confidence and a valid box."""
    cls = model.head.classification_head.cls_logits
    with torch.no_grad():
        cls.weight.zero_()
        cls.bias.fill_(-20.0)
        cls.bias[k] = 10.0
        ctr = model.head.regression_head.bbox_ctrness
        ctr.weight.zero_()
        ctr.bias.fill_(10.0)


@pytest.mark.parametrize("k", [0, 1, 2])
def test_eval_labels_are_zero_based_category_indices(k):
    """Logit channel k -> label k: no background slot and no +1 offset."""
    torch.manual_seed(0)
    model = build_detector(get_rung("B-7"), 3, 64).eval()
    assert model.head.classification_head.cls_logits.out_channels == 3
    _force_class(model, k)
    with torch.no_grad():
        out = model(torch.rand(1, 3, 64, 64))[0]
    assert len(out["labels"]) > 0
    assert out["labels"].unique().tolist() == [k]
    assert out["scores"].min() > 0.9


def test_training_targets_use_the_same_zero_based_labels():
    """A target with label k makes logit k (and only k) a positive of the focal loss: with the
    head at p=0.5 for class 1 and p~0 for class 0 everywhere, labelling the box 0 costs each
    positive location exactly (sigmoid focal loss, alpha 0.25, gamma 2)
    [0.25 * 20 (class 0 missed) + 0.75 * 0.5**2 * ln 2 (class 1 a false positive)]
    - 0.25 * 0.5**2 * ln 2 (class 1 a half-confident true positive) = 5 + 0.125 ln 2."""
    torch.manual_seed(0)
    model = build_detector(get_rung("B-7"), 2, 64).train()
    _force_class(model, 1)
    with torch.no_grad():
        model.head.classification_head.cls_logits.bias[1] = 0.0
    images = torch.rand(1, 3, 64, 64)
    box = torch.tensor([[8.0, 8.0, 56.0, 56.0]])
    loss_right = model(images, [{"boxes": box, "labels": torch.tensor([1])}])["classification"]
    loss_wrong = model(images, [{"boxes": box, "labels": torch.tensor([0])}])["classification"]
    assert loss_wrong.item() - loss_right.item() == pytest.approx(5.0 + 0.125 * math.log(2), abs=1e-3)


def test_images_are_not_resized_and_boxes_stay_in_input_pixels():
    model = build_detector(get_rung("S-6"), 1, 64).eval()
    assert model.resolution == 64 and model.num_classes == 1
    images, _ = model.transform([torch.rand(3, 64, 64), torch.rand(3, 48, 80)])
    assert images.image_sizes == [(64, 64), (48, 80)]
    assert images.tensors.shape[-2:] == (64, 96)  # padded to a multiple of stride 32 only
    _force_class(model, 0)
    with torch.no_grad():
        out = model([torch.rand(3, 48, 80)])[0]
    boxes = out["boxes"]
    assert len(boxes) > 0
    assert boxes[:, 0].min() >= 0 and boxes[:, 2].max() <= 80 and boxes[:, 3].max() <= 48
    assert boxes[:, 2].max() > 64  # not rescaled to 64 px


def test_assembly_and_defaults():
    model = build_detector(get_rung("B-1"), 4, 128)
    assert isinstance(model, FCOS)
    assert model.capgate_kind == "detector" and model.rung is get_rung("B-1")
    assert (model.score_thresh, model.detections_per_img, model.nms_thresh) == (0.05, 100, 0.6)
    assert model.backbone.out_channels == 48
    assert [a[0] for a in model.anchor_generator.sizes] == [8, 16, 32]
    norms = [m for m in model.head.modules() if isinstance(m, nn.GroupNorm)]
    assert len(norms) == 4 and all(m.num_groups == 6 and m.num_channels == 48 for m in norms)
    keys = set(model.state_dict())
    assert set(CLASS_SPECIFIC_KEYS) <= keys
    assert model.state_dict()[CLASS_SPECIFIC_KEYS[0]].shape[0] == 4


def test_optional_stride_4_level():
    model = build_detector(get_rung("S-6"), 1, 64, feature_levels=(1, 2, 3, 4))
    assert [a[0] for a in model.anchor_generator.sizes] == [4, 8, 16, 32]
    model.train()
    losses = model(torch.rand(1, 3, 64, 64), [{"boxes": torch.tensor([[10.0, 10.0, 16.0, 17.0]]),
                                               "labels": torch.tensor([0])}])
    assert all(math.isfinite(v.item()) for v in losses.values())


def test_invalid_arguments():
    with pytest.raises(SpecError, match="num_classes 0 is invalid"):
        build_detector(get_rung("B-7"), 0, 64)
    with pytest.raises(SpecError, match="resolution 16 is invalid"):
        build_detector(get_rung("B-7"), 1, 16)
    with pytest.raises(SpecError, match=r"feature_levels \(3, 2\) is invalid"):
        build_detector(get_rung("B-7"), 1, 64, feature_levels=(3, 2))


def test_a_tiny_detector_learns_one_box():
    """Overfitting one image: the top detection lands on the box with the right label."""
    from torchvision.ops import box_iou

    torch.manual_seed(0)
    model = build_detector(get_rung("B-5"), 2, 64)
    image = torch.full((1, 3, 64, 64), 0.2)
    image[:, :, 16:48, 20:44] = 0.9
    target = [{"boxes": torch.tensor([[20.0, 16.0, 44.0, 48.0]]), "labels": torch.tensor([1])}]
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    first = None
    for _ in range(60):
        loss = sum(model(image, target).values())
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first
    model.eval()
    with torch.no_grad():
        out = model(image)[0]
    assert out["labels"][0].item() == 1
    assert box_iou(out["boxes"][:1], target[0]["boxes"]).item() > 0.5


def test_box_regression_pushed_negative_still_learns():
    """The collapse of issue 10: with ReLU, a bbox_reg whose outputs are all negative has zero
    gradient forever; softplus keeps one (and stays positive, as the box coder needs)."""
    torch.manual_seed(0)
    model = build_detector(get_rung("S-6"), 1, 64).train()
    reg = model.head.regression_head.bbox_reg
    with torch.no_grad():
        reg.weight.zero_()
        reg.bias.fill_(-3.0)  # every distance far below zero before the activation
    x = torch.rand(2, 3, 64, 64)
    targets = [{"boxes": torch.tensor([[8.0, 8.0, 40.0, 56.0]]), "labels": torch.zeros(1, dtype=torch.int64)}] * 2
    losses = model(x, targets)
    losses["bbox_regression"].backward()
    assert reg.bias.grad is not None and float(reg.bias.grad.abs().sum()) > 1e-4
    feats = list(model.backbone(model.transform(list(x))[0].tensors).values())
    out, _ = model.head.regression_head(feats)
    assert bool((out > 0).all())  # softplus(-3) = 0.049 > 0: no zero-size boxes
