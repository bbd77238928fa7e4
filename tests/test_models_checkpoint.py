"""capgate checkpoints: round trip, atomic write, and clear errors for bad files."""

from __future__ import annotations

import hashlib

import pytest
import torch

from capgate.errors import CheckpointError
from capgate.models import (CHECKPOINT_FORMAT, build_classifier, build_detector, get_rung, read_checkpoint,
                            save_checkpoint)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


class Unsafe:
    """An arbitrary object: weights_only loading must refuse to unpickle it."""


def _perturbed(model: torch.nn.Module) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.add_(torch.randn(t.shape, generator=gen))
    return model


def test_detector_round_trip_keeps_every_tensor_and_the_config(tmp_path):
    model = _perturbed(build_detector(get_rung("S-5"), 2, 64))
    config = {"study": "demo", "lr": 0.01, "classes": ["person", "car"], "nested": {"a": [1, 2.5, None, True]}}
    path = save_checkpoint(tmp_path / "sub" / "det.pt", model, "detector", get_rung("S-5"), config,
                           categories=["person", "car"], stage_id="coco-S-5-abc")
    assert path == tmp_path / "sub" / "det.pt"
    assert [p.name for p in path.parent.iterdir()] == ["det.pt"]  # no temp file left behind
    ckpt = read_checkpoint(path)
    assert (ckpt.kind, ckpt.rung, ckpt.num_classes) == ("detector", get_rung("S-5"), 2)
    assert ckpt.categories == ["person", "car"] and ckpt.config == config
    assert ckpt.meta == {"stage_id": "coco-S-5-abc"}
    assert ckpt.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    expected = model.state_dict()
    assert list(ckpt.state_dict) == list(expected)
    assert all(torch.equal(ckpt.state_dict[k], expected[k]) for k in expected)
    fresh = build_detector(get_rung("S-5"), 2, 64)
    fresh.load_state_dict(ckpt.state_dict)
    assert all(torch.equal(fresh.state_dict()[k], expected[k]) for k in expected)
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == CHECKPOINT_FORMAT == "capgate-checkpoint/1"
    assert raw["rung"] == {"name": "S-5", "family": "mobilenetv3", "width": 0.15, "depth": 0.25, "note": ""}


def test_backbone_kind_stores_only_the_backbone(tmp_path):
    clf = _perturbed(build_classifier(get_rung("B-7"), 4))
    ckpt = read_checkpoint(save_checkpoint(tmp_path / "bb.pt", clf, "backbone", get_rung("B-7"), {}))
    assert ckpt.kind == "backbone" and ckpt.num_classes is None
    assert list(ckpt.state_dict) == list(clf.backbone.state_dict())
    assert all(torch.equal(v, clf.backbone.state_dict()[k]) for k, v in ckpt.state_dict.items())


def test_overwrite_is_atomic_replacement(tmp_path):
    path = tmp_path / "c.pt"
    a = build_classifier(get_rung("B-7"), 3)
    save_checkpoint(path, a, "classifier", get_rung("B-7"), {"v": 1})
    save_checkpoint(path, a, "classifier", get_rung("B-7"), {"v": 2})
    assert read_checkpoint(path).config == {"v": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]


def test_save_refuses_wrong_kind_and_non_plain_config(tmp_path):
    clf = build_classifier(get_rung("B-7"), 3)
    with pytest.raises(CheckpointError, match="cannot save a classifier as a 'detector' checkpoint"):
        save_checkpoint(tmp_path / "x.pt", clf, "detector", get_rung("B-7"), {})
    with pytest.raises(CheckpointError,
                       match=r"checkpoint kind 'weights' is invalid; valid kinds: backbone, detector, classifier"):
        save_checkpoint(tmp_path / "x.pt", clf, "weights", get_rung("B-7"), {})
    with pytest.raises(CheckpointError, match=r"config.path is a PosixPath; checkpoints hold plain JSON-like values"):
        save_checkpoint(tmp_path / "x.pt", clf, "classifier", get_rung("B-7"), {"path": tmp_path})
    assert list(tmp_path.iterdir()) == []


def test_corrupt_truncated_foreign_and_missing_files(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"definitely not a checkpoint")
    with pytest.raises(CheckpointError, match=r"garbage.pt: is not a torch checkpoint .*Re-create it"):
        read_checkpoint(garbage)

    good = save_checkpoint(tmp_path / "good.pt", build_classifier(get_rung("B-7"), 3), "classifier",
                           get_rung("B-7"), {})
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"truncated.pt: .*Re-create it"):
        read_checkpoint(truncated)

    plain = tmp_path / "plain.pt"
    torch.save({"w": torch.zeros(2)}, plain)
    with pytest.raises(CheckpointError, match=r"plain.pt: not a capgate checkpoint \(no 'format'.*initialize"):
        read_checkpoint(plain)

    future = tmp_path / "future.pt"
    torch.save({"format": "capgate-checkpoint/9", "kind": "detector"}, future)
    with pytest.raises(CheckpointError, match=r"future.pt: checkpoint format 'capgate-checkpoint/9' is not "
                                              r"'capgate-checkpoint/1'"):
        read_checkpoint(future)

    bad_rung = tmp_path / "bad_rung.pt"
    payload = torch.load(good, weights_only=True)
    payload["rung"] = {"family": "resnet", "width": 1.0, "depth": 1.0}
    torch.save(payload, bad_rung)
    with pytest.raises(CheckpointError, match=r"bad_rung.pt: its rung is invalid \(unknown backbone family 'resnet'"):
        read_checkpoint(bad_rung)

    pickled = tmp_path / "pickled.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "obj": Unsafe()}, pickled)
    with pytest.raises(CheckpointError, match=r"pickled.pt: could not be read with torch.load\(weights_only=True\)"):
        read_checkpoint(pickled)

    with pytest.raises(CheckpointError, match=r"nope.pt: checkpoint file not found"):
        read_checkpoint(tmp_path / "nope.pt")


def test_checkpoint_error_is_an_input_error_exit_code_2():
    assert CheckpointError.exit_code == 2
