"""The family registry and the machinery every family shares: a torch-free registry that fails
loudly, feature pyramids at strides 8/16/32, ShuffleNetV2 through torchvision's feature
extraction, initialization from local weights and from capgate checkpoints, profiling, and a
pretraining stage per family and rung in experiments/families.yaml."""

from __future__ import annotations

import copy
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from capgate.cli import main
from capgate.errors import CheckpointError, SpecError
from capgate.models import (FAMILIES, Rung, build_backbone, build_classifier, build_detector, count_params,
                            get_rung, initialize, ladder, profile_model, save_checkpoint)
from capgate.models.ladder import builder_call, family_names, get_family, register_family
from capgate.models._families import shufflenet_v2_config
from capgate.models.checkpoint import feature_key
from capgate.spec.model import expand
from capgate.spec.load import load_study

REPO = Path(__file__).resolve().parents[1]
#: The smallest rung of every family: what the per-family machinery tests build.
SMALLEST = {family: ladder(family)[-1].name for family in FAMILIES}


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


def test_ladder_import_stays_free_of_torch_and_timm():
    code = ("import sys, capgate.models.ladder, capgate.spec; from capgate.models.ladder import get_rung; "
            "get_rung('SH-2'); print('torch' in sys.modules, 'timm' in sys.modules, 'torchvision' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.split() == ["False", "False", "False"]


def test_registry_fails_loudly_on_duplicates_and_unknown_names():
    info = get_family("ghostnet")
    assert family_names() == list(FAMILIES)
    with pytest.raises(SpecError, match=r"family name 'ghostnet' is already registered \(family 'ghostnet'\)"):
        register_family(info)
    with pytest.raises(SpecError, match=r"family prefix 'G' is already registered \(family 'ghostnet'\)"):
        register_family(replace(info, name="ghostnet2", arch="ghostnet2"))
    with pytest.raises(SpecError, match=r"family arch 'ghostnet' is already registered"):
        register_family(replace(info, name="ghostnet2", prefix="GG"))
    with pytest.raises(SpecError, match="source 'keras' is invalid; valid: timm, torchvision"):
        replace(info, name="x", source="keras")
    assert family_names() == list(FAMILIES)  # nothing was added
    with pytest.raises(SpecError, match=r"unknown backbone family 'resnet'; valid families: efficientnet, .*shufflenetv2"):
        get_family("resnet")


def test_every_family_states_its_scaling_and_pins_its_builder():
    for name, info in FAMILIES.items():
        assert info.name == name and info.scaling and info.pinned.split("==")[0] in {"timm", "torchvision"}
        assert info.to_dict()["depth_scaled"] is (info.depth_arg is not None)
    assert {n for n, i in FAMILIES.items() if not i.depth_scaled} == {"ghostnet", "lcnet"}
    assert builder_call(get_rung("M-3")) == ("timm.models.efficientnet._gen_mobilenet_v2('mobilenetv2_100', "
                                             "channel_multiplier=0.25, depth_multiplier=0.25)")


def test_the_installed_builders_are_the_pinned_versions():
    """Private builders and the parameter counts pinned in test_models_ladder depend on these."""
    import timm
    import torchvision

    installed = {"timm": timm.__version__, "torchvision": torchvision.__version__.split("+")[0]}
    for info in FAMILIES.values():
        package, version = info.pinned.split("==")
        assert installed[package] == version, f"{info.name} is pinned to {info.pinned}"


def test_shufflenet_stage_rule():
    assert shufflenet_v2_config(1.0, 1.0) == ([4, 8, 4], [24, 116, 232, 464, 1024])  # torchvision's x1.0
    assert shufflenet_v2_config(0.5, 0.5) == ([2, 4, 2], [12, 60, 116, 232, 1024])  # 58 -> 60: half rounds up
    assert shufflenet_v2_config(0.1, 0.1) == ([1, 1, 1], [8, 12, 24, 48, 1024])  # floor of 8 channels


@pytest.mark.parametrize("family", list(FAMILIES))
def test_feature_pyramid_strides_and_channels(family):
    body = build_backbone(get_rung(SMALLEST[family]))
    assert body.feature_info.reduction() == [8, 16, 32]
    feats = body(torch.rand(2, 3, 64, 64))
    assert isinstance(feats, list)
    assert [f.shape[1] for f in feats] == body.feature_info.channels()
    assert [f.shape[-1] for f in feats] == [8, 4, 2]


def test_shufflenet_features_keep_torchvision_names_and_survive_deepcopy():
    from torchvision.models import ShuffleNetV2

    rung = get_rung("SH-3")
    body = build_backbone(rung)
    full = build_backbone(rung, features_only=False)
    assert isinstance(full, ShuffleNetV2)
    keys = list(body.state_dict())
    assert set(keys) < set(full.state_dict())
    assert {k.split(".")[0] for k in keys} == {"conv1", "stage2", "stage3", "stage4"}  # conv5 and fc dropped
    body.eval()
    twin = copy.deepcopy(body)
    assert twin.feature_info.channels() == body.feature_info.channels() == [40, 80, 164]
    assert not twin.training
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(twin(x), body(x)))
    twin.train()
    assert isinstance(twin(x), list)  # the train-mode graph returns a list too
    stem = build_backbone(rung, out_indices=(1, 2))
    assert stem.feature_info.reduction() == [4, 8] and stem.feature_info.channels() == [8, 40]


def test_shufflenet_loads_torchvision_weights_at_width_one(tmp_path):
    from torchvision.models import shufflenet_v2_x1_0

    tv = _perturbed(shufflenet_v2_x1_0(weights=None))  # torchvision's architecture; nothing downloaded
    path = tmp_path / "shufflenet_v2_x1_0.pth"
    torch.save(tv.state_dict(), path)
    rung = Rung.custom("shufflenetv2", 1.0, 1.0)
    det = build_detector(rung, 1, 64)
    report = initialize(det, path)
    assert report.fraction == 1.0 and report.mismatched == () and report.missing == ()
    assert {k.split(".")[0] for k in report.skipped} == {"conv5", "fc"}
    body = det.backbone.body.state_dict()
    assert all(torch.equal(body[k], v) for k, v in tv.state_dict().items() if k in body)
    direct = build_backbone(rung, checkpoint=path)
    assert all(torch.equal(direct.state_dict()[k], v) for k, v in body.items())
    with pytest.raises(CheckpointError, match=r"capgate loaded only 0/\d+ tensors into shufflenet_v2@w0.35d0.25"):
        build_backbone(get_rung("SH-3"), checkpoint=path)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_init_from_the_family_full_network_weights(family, tmp_path):
    """A local file of the family's own full classification network (timm's or torchvision's
    names, head included) initializes the detector's backbone completely, and build_backbone
    loads the same file itself."""
    rung = get_rung(SMALLEST[family])
    full = _perturbed(build_backbone(rung, features_only=False))
    path = tmp_path / f"{family}.pth"
    torch.save(full.state_dict(), path)
    det = build_detector(rung, 1, 64)
    report = initialize(det, path)
    assert report.fraction == 1.0 and report.mismatched == () and report.missing == ()
    assert report.provenance.startswith(f"file={family}.pth sha256=")
    body = det.backbone.body.state_dict()
    source = {feature_key(k, body): v for k, v in full.state_dict().items()}  # GhostNet: blocks.0 -> blocks_0
    assert all(torch.equal(v, source[k]) for k, v in body.items())
    direct = build_backbone(rung, checkpoint=path)
    assert all(torch.equal(direct.state_dict()[k], v) for k, v in body.items())


@pytest.mark.parametrize("family", list(FAMILIES))
def test_capgate_checkpoint_moves_backbone_from_classifier_to_detector(family, tmp_path):
    rung = get_rung(SMALLEST[family])
    clf = _perturbed(build_classifier(rung, 3))
    path = save_checkpoint(tmp_path / "stage.pt", clf, "backbone", rung, {"stage": "imagenet"})
    det = build_detector(rung, 1, 64)
    report = initialize(det, path)
    assert report.fraction == 1.0 and len(report.loaded) == report.total
    src = clf.backbone.state_dict()
    assert all(torch.equal(v, src[k]) for k, v in det.backbone.body.state_dict().items())


def test_flattened_timm_feature_names():
    body = {"blocks_0.0.conv.weight": 0, "conv_stem.weight": 0, "blocks.9.x": 0}
    assert feature_key("blocks.0.0.conv.weight", body) == "blocks_0.0.conv.weight"
    assert feature_key("conv_stem.weight", body) == "conv_stem.weight"
    assert feature_key("blocks.9.x", body) == "blocks.9.x"  # already the target's spelling
    assert feature_key("blocks.1.0.conv.weight", body) == "blocks.1.0.conv.weight"  # no such target: unchanged


def test_a_checkpoint_of_another_family_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / "g.pt", build_classifier(get_rung("G-4"), 3), "backbone", get_rung("G-4"), {})
    with pytest.raises(CheckpointError, match=r"holds a ghostnet network \(ghostnet@w0.1d1 \(G-4\)\), the model is "
                                              r"lcnet \(lcnet@w0.1d1 \(LC-4\)\)"):
        initialize(build_classifier(get_rung("LC-4"), 3), path)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_profile_every_family(family):
    rung = get_rung(SMALLEST[family])
    for model in (build_detector(rung, 1, 64), build_classifier(rung, 4)):
        prof = profile_model(model, 64, latency=True, memory=True)
        assert prof.params == count_params(model) and 0 < prof.backbone_params < prof.params
        assert prof.macs > prof.params  # every weight is used at least once per 64x64 image
        assert prof.size_bytes >= 4 * prof.params
        assert prof.peak_mem_bytes > prof.size_bytes and prof.latency_ms > 0


def test_families_spec_has_every_family_and_a_stage_per_family_and_rung():
    study = load_study(REPO / "experiments" / "families.yaml")
    assert [fam for fam, _ in study.rungs][::2] == list(FAMILIES)
    assert all(get_rung(name).family == fam for fam, name in study.rungs)
    assert [i.name for i in study.inits] == ["scratch", "imagenet"] and study.task == "classification"
    stages, runs = expand(study)
    assert sorted((s.family, s.rung) for s in stages) == sorted(study.rungs)  # one stage per family and rung
    assert len(runs) == len(study.rungs) * 2 * len(study.seeds)


def test_dry_run_checks_rung_names_of_any_family(capsys):
    spec = str(REPO / "experiments" / "families.yaml")
    assert _main(["run-grid", spec, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "84 runs = 1 train sets x 14 rungs x 2 inits x 3 seeds" in out
    assert "imagenet-SH-4-" in out and "shufflenetv2/SH-4" in out
    assert _main(["run-grid", spec, "--dry-run", "--set", "rungs.ghostnet=[LC-2]"]) == 2
    assert "spec key 'rungs.ghostnet[0]' = 'LC-2' is a lcnet rung; move it under 'rungs.lcnet'" in \
        capsys.readouterr().err


def _main(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exc:
        main(args)
    return exc.value.code
