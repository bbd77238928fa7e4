"""profile_model: exact parameters, MACs, FP32 size, latency and peak training memory."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from capgate.models import ModelProfile, build_classifier, build_detector, get_rung, profile_model
from capgate.models.profile import measure_latency, measure_macs, measure_peak_memory


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def test_macs_of_a_hand_checkable_network():
    """A 3x3 conv 3->8 on 16x16 (padding 1) then a linear 8->5 on the pooled vector:
    8*16*16*3*3*3 + 8*5 = 55,296 + 40 MACs."""
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(8, 5))
    assert measure_macs(net, 16) == 55_296 + 40


def test_macs_scale_with_the_image_area():
    clf = build_classifier(get_rung("B-5"), 10)
    m64, m128 = measure_macs(clf, 64), measure_macs(clf, 128)
    assert m64 > 0 and 3.9 < m128 / m64 <= 4.0  # the linear head does not scale
    det = build_detector(get_rung("B-5"), 1, 64)
    d64, d128 = measure_macs(det, 64), measure_macs(det, 128)
    assert d64 > m64 and 3.9 < d128 / d64 < 4.1


def test_profile_fields_are_exact_and_json_able():
    model = build_detector(get_rung("S-5"), 2, 64)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    prof = profile_model(model, 64, latency=True)
    assert isinstance(prof, ModelProfile) and prof.kind == "detector" and prof.resolution == 64
    assert prof.params == sum(p.numel() for p in model.parameters())
    assert prof.backbone_params == sum(p.numel() for p in model.backbone.body.parameters())
    assert prof.size_bytes == 4 * (prof.params + sum(b.numel() for b in model.buffers()))
    assert prof.macs == measure_macs(model, 64)
    assert prof.latency_ms > 0 and prof.latency_threads == 1
    assert prof.peak_mem_method == "cpu_live_tensor_bytes" and prof.peak_mem_bytes > prof.size_bytes
    assert json.loads(json.dumps(prof.to_dict())) == prof.to_dict()
    # profiling trains a copy: the model's weights and BatchNorm statistics are untouched
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert model.training
    bare = profile_model(model, 64, latency=False, memory=False)
    assert (bare.latency_ms, bare.latency_threads, bare.peak_mem_bytes, bare.peak_mem_method) == (None,) * 4
    assert (bare.params, bare.macs) == (prof.params, prof.macs)


def test_detector_and_classifier_share_backbone_accounting():
    rung = get_rung("B-4")
    det = profile_model(build_detector(rung, 1, 64), 64, latency=False, memory=False)
    clf = profile_model(build_classifier(rung, 10), 64, latency=False, memory=False)
    assert det.backbone_params == clf.backbone_params
    assert clf.params == clf.backbone_params + clf_head_params(rung, 10)


def clf_head_params(rung, n):
    channels = build_classifier(rung, n).backbone.feature_info.channels()[-1]
    return channels * n + n


def test_peak_memory_counts_the_backward_pass():
    """Flatten + Linear(3*32*32 -> 10): resident = weight + bias + image + int64 label; the
    step adds the weight and bias gradients and a few logits-sized temporaries (views of the
    weight, e.g. ``weight.t()``, share its storage and are not counted twice)."""
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))
    weight, bias, image = 3 * 32 * 32 * 10 * 4, 10 * 4, 3 * 32 * 32 * 4
    resident = weight + bias + image + 8
    peak, method = measure_peak_memory(net, 32)
    assert method == "cpu_live_tensor_bytes"
    assert resident + weight + bias <= peak <= resident + weight + bias + 256
    assert all(p.grad is None for p in net.parameters())


def test_latency_restores_the_thread_count():
    torch.set_num_threads(1)
    ms = measure_latency(build_classifier(get_rung("B-7"), 3), 32, threads=2, warmup=1, repeats=3)
    assert ms > 0 and torch.get_num_threads() == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_profile_and_forward():
    det = build_detector(get_rung("S-6"), 2, 64).cuda()
    prof = profile_model(det, 64)
    assert prof.peak_mem_method == "cuda_max_memory_allocated" and prof.peak_mem_bytes > prof.size_bytes
    det.eval()
    with torch.no_grad():
        out = det(torch.rand(1, 3, 64, 64, device="cuda"))
    assert out[0]["boxes"].device.type == "cuda"


def test_peak_memory_where_batchnorm_cannot_train_on_one_image() -> None:
    """At 32 px a classifier's last feature map is 1x1: batch 1 cannot train BatchNorm, so the step
    runs at batch 2 and the method says so (it once crashed every tiny classification run)."""
    from capgate.models import build_classifier, get_rung
    from capgate.models.profile import measure_peak_memory

    peak, method = measure_peak_memory(build_classifier(get_rung("S-6"), 3), 32)
    assert peak > 0 and method.endswith("_batch2")
