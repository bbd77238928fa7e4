"""initialize(): every supported source, the load report, refusals and provenance."""

from __future__ import annotations

import hashlib
import re

import pytest
import torch
from safetensors.torch import save_file

from capgate.errors import CheckpointError, SpecError
from capgate.models import (CLASS_SPECIFIC_KEYS, build_backbone, build_classifier, build_detector, get_rung,
                            initialize, save_checkpoint)

PROVENANCE = re.compile(r"^file=(\S+) sha256=([0-9a-f]{16}) loaded=(\d+)/(\d+) skipped=(\d+) mismatched=(\d+)$")


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _perturbed(model: torch.nn.Module, seed: int = 1) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.add_(torch.randn(t.shape, generator=gen))
    return model


def _same(a: dict, b: dict, keys) -> bool:
    return all(torch.equal(a[k], b[k]) for k in keys)


def _n_counted(module: torch.nn.Module) -> int:
    return sum(1 for k in module.state_dict() if not k.endswith("num_batches_tracked"))


def test_scratch_loads_nothing():
    report = initialize(build_classifier(get_rung("B-7"), 3), None)
    assert report.provenance == "none" and report.loaded == () and report.fraction == 0.0


def test_detector_minus_class_layers_across_num_classes(tmp_path):
    rung = get_rung("S-6")
    src = _perturbed(build_detector(rung, 80, 64))
    path = save_checkpoint(tmp_path / "coco.pt", src, "detector", rung, {"stage": "coco"})
    dst = build_detector(rung, 1, 64)
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    report = initialize(dst, path, part="detector")
    after, src_sd = dst.state_dict(), src.state_dict()
    shared = [k for k in after if k not in CLASS_SPECIFIC_KEYS]
    assert _same(after, src_sd, shared)
    assert _same(after, before, CLASS_SPECIFIC_KEYS)  # logits conv keeps its fresh init
    assert after[CLASS_SPECIFIC_KEYS[0]].shape[0] == 1
    assert report.reinitialized == tuple(sorted(CLASS_SPECIFIC_KEYS))
    assert report.total == _n_counted(dst) - 2
    assert (len(report.loaded), report.skipped, report.missing, report.mismatched) == (report.total, (), (), ())
    assert "head.regression_head.bbox_reg.weight" in report.loaded
    assert "head.regression_head.bbox_ctrness.weight" in report.loaded
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    n = report.total
    assert report.provenance == f"file=coco.pt sha256={digest[:16]} loaded={n}/{n} skipped=0 mismatched=0"


def test_backbone_from_a_classifier_checkpoint_into_a_detector(tmp_path):
    rung = get_rung("B-6")
    clf = _perturbed(build_classifier(rung, 10))
    path = save_checkpoint(tmp_path / "imagenet.pt", clf, "classifier", rung, {})
    det = build_detector(rung, 2, 64)
    head_before = {k: v.clone() for k, v in det.state_dict().items() if not k.startswith("backbone.body.")}
    report = initialize(det, path)  # part="backbone"
    body = det.backbone.body.state_dict()
    assert _same(body, clf.backbone.state_dict(), body)
    assert _same(det.state_dict(), head_before, head_before)  # neck and head untouched
    assert report.prefix == "backbone." and report.part == "backbone"
    assert report.skipped == ("head.weight", "head.bias")
    m = PROVENANCE.match(report.provenance)
    assert m and m.group(1) == "imagenet.pt" and m.group(3) == m.group(4) == str(_n_counted(det.backbone.body))


def test_backbone_from_a_detector_checkpoint_into_a_classifier(tmp_path):
    rung = get_rung("S-4")
    det = _perturbed(build_detector(rung, 3, 64))
    path = save_checkpoint(tmp_path / "det.pt", det, "detector", rung, {})
    clf = build_classifier(rung, 5)
    report = initialize(clf, path, part="backbone")
    assert report.prefix == "backbone.body."
    assert _same(clf.backbone.state_dict(), det.backbone.body.state_dict(), clf.backbone.state_dict())
    # the neck and head tensors of the file have no place in a classifier
    assert len(report.skipped) == len(det.state_dict()) - len(det.backbone.body.state_dict())
    assert all(k.startswith(("backbone.fpn.", "head.")) for k in report.skipped)


def test_different_rung_reports_mismatches_and_refuses_too_little(tmp_path):
    src = build_classifier(get_rung("B-1"), 10)
    path = save_checkpoint(tmp_path / "b1.pt", src, "classifier", get_rung("B-1"), {})
    dst = build_classifier(get_rung("B-7"), 10)
    with pytest.raises(CheckpointError, match=r"b1.pt: matched only \d+/\d+ tensors of the backbone \(\d+% < "
                                              r"min_fraction 50%\) \(the file is efficientnet_b0@w0.5d0.5 \(B-1\), "
                                              r"the model efficientnet_b0@w0.1d0.25 \(B-7\)\); \d+ mismatched: "):
        initialize(dst, path)
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    report = initialize(dst, path, min_fraction=0.0)
    assert len(report.mismatched) > 0 and len(report.loaded) > 0 and len(report.skipped) > 0
    key, file_shape, model_shape = report.mismatched[0]
    assert file_shape == tuple(src.state_dict()[f"backbone.{key}"].shape)
    assert model_shape == tuple(dst.backbone.state_dict()[key].shape) and file_shape != model_shape
    assert len(report.loaded) + len(report.mismatched) + len(report.missing) == report.total
    after = dst.state_dict()
    assert all(torch.equal(after[f"backbone.{k}"], before[f"backbone.{k}"]) for k, _, _ in report.mismatched)
    m = PROVENANCE.match(report.provenance)
    assert int(m.group(6)) == len(report.mismatched) and int(m.group(5)) == len(report.skipped)


def test_other_family_is_refused(tmp_path):
    """timm names EfficientNet's and MobileNetV3's blocks alike and tiny rungs share shapes, so
    about a third of the tensors would 'match': a capgate checkpoint's family is checked, and a
    plain state dict falls under min_fraction."""
    eff = build_classifier(get_rung("B-3"), 4)
    path = save_checkpoint(tmp_path / "eff.pt", eff, "classifier", get_rung("B-3"), {})
    with pytest.raises(CheckpointError, match=r"eff.pt: holds a efficientnet network \(efficientnet_b0@w0.3d0.5 "
                                              r"\(B-3\)\), the model is mobilenetv3"):
        initialize(build_classifier(get_rung("S-3"), 4), path, min_fraction=0.0)
    plain = tmp_path / "eff_plain.pt"
    torch.save(eff.state_dict(), plain)
    with pytest.raises(CheckpointError, match=r"eff_plain.pt: matched only 68/190 tensors of the backbone \(36% <"):
        initialize(build_classifier(get_rung("S-3"), 4), plain)


def test_safetensors_and_wrapped_plain_state_dicts(tmp_path):
    rung = get_rung("B-7")
    src = _perturbed(build_classifier(rung, 4))
    ref = src.backbone.state_dict()
    st = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(st))
    dst = build_detector(rung, 1, 64)
    report = initialize(dst, st)
    assert report.description == "safetensors" and report.fraction == 1.0
    assert _same(dst.backbone.body.state_dict(), ref, ref)

    wrapped = tmp_path / "train_ckpt.pth"  # DataParallel keys inside {"model": ...}, plus training state
    torch.save({"epoch": 3, "model": {f"module.{k}": v for k, v in src.state_dict().items()},
                "optimizer": {"lr": 0.1}}, wrapped)
    dst2 = build_classifier(rung, 7)
    report = initialize(dst2, wrapped)
    assert report.description == "state dict" and report.fraction == 1.0
    assert _same(dst2.backbone.state_dict(), ref, ref)

    bare = tmp_path / "bare.pt"
    torch.save(ref, bare)
    assert initialize(build_classifier(rung, 2), bare).prefix == ""


def test_timm_checkpoint_by_key_mapping_and_by_pretrained_cfg_overlay(tmp_path):
    """A full timm classification network (conv_head, classifier and all) feeds the features
    backbone: by capgate's key mapping, and by timm's own loader via pretrained_cfg_overlay."""
    rung = get_rung("S-6")
    full = _perturbed(build_backbone(rung, features_only=False))
    path = tmp_path / "timm_mnv3.pth"
    torch.save({"state_dict": full.state_dict(), "arch": "mobilenetv3_large_100"}, path)
    det = build_detector(rung, 1, 64)
    report = initialize(det, path)
    body = det.backbone.body.state_dict()
    assert report.fraction == 1.0
    assert set(report.skipped) == {"conv_head.weight", "conv_head.bias", "classifier.weight", "classifier.bias"}
    assert _same(body, full.state_dict(), body)

    via_timm = build_backbone(rung, checkpoint=path)
    assert _same(via_timm.state_dict(), full.state_dict(), via_timm.state_dict())
    prefixed = tmp_path / "prefixed.pth"
    torch.save({f"encoder.{k}": v for k, v in full.state_dict().items()}, prefixed)
    with pytest.raises(CheckpointError, match=r"prefixed.pth: timm loaded only 0/\d+ tensors into "
                                              r"mobilenetv3_large@w0.1d0.25 \(S-6\)"):
        build_backbone(rung, checkpoint=prefixed)
    assert initialize(build_detector(rung, 1, 64), prefixed).prefix == "encoder."
    with pytest.raises(CheckpointError, match="backbone checkpoint not found"):
        build_backbone(rung, checkpoint=tmp_path / "missing.pth")


def test_refusals(tmp_path):
    rung = get_rung("B-7")
    clf_path = save_checkpoint(tmp_path / "clf.pt", build_classifier(rung, 3), "classifier", rung, {})
    with pytest.raises(CheckpointError,
                       match=r"clf.pt: holds a classifier, not a detector; load it with part='backbone'"):
        initialize(build_detector(rung, 1, 64), clf_path, part="detector")
    with pytest.raises(SpecError, match="part='detector' needs a detector"):
        initialize(build_classifier(rung, 3), clf_path, part="detector")
    with pytest.raises(SpecError, match="init part 'head' is invalid; valid parts: backbone, detector"):
        initialize(build_classifier(rung, 3), clf_path, part="head")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00\x01 not safetensors")
    with pytest.raises(CheckpointError, match=r"junk.safetensors: not a readable safetensors file"):
        initialize(build_classifier(rung, 3), junk)
    empty = tmp_path / "empty.pt"
    torch.save({"epoch": 1}, empty)
    with pytest.raises(CheckpointError, match=r"empty.pt: the file holds no tensors"):
        initialize(build_classifier(rung, 3), empty)
