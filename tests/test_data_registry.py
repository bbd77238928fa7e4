"""The format registry: one record per format, the lists computed from it, and the new formats
going through the same open -> decode -> train path as the old ones."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from capgate.data import registry
from capgate.data.registry import FORMATS, format_names, get_format, open_classification
from capgate.errors import DataError, SpecError

REPO = Path(__file__).resolve().parents[1]


def test_every_record_is_complete_and_its_splits_are_the_readers() -> None:
    from capgate.data.cifar import CIFAR_SPLITS
    from capgate.data.domainnet import DOMAINNET_SPLITS
    from capgate.data.flir import FLIR_SPLITS
    from capgate.data.imagenet import IMAGENET_SPLITS
    from capgate.data.llvip import LLVIP_SPLITS
    from capgate.data.tinyimagenet import TINYIMAGENET_SPLITS

    readers = {"llvip": LLVIP_SPLITS, "flir": FLIR_SPLITS, "flir_v2": FLIR_SPLITS, "flir_v1": FLIR_SPLITS,
               "coco": None, "imagenet": IMAGENET_SPLITS, "domainnet": DOMAINNET_SPLITS, "cifar10": CIFAR_SPLITS,
               "cifar100": CIFAR_SPLITS, "cifar100_coarse": CIFAR_SPLITS, "tinyimagenet": TINYIMAGENET_SPLITS}
    assert {n: f.splits for n, f in FORMATS.items()} == readers
    assert all(f.task in ("detection", "classification") and f.about for f in FORMATS.values())
    assert registry.DETECTION_FORMATS == ("llvip", "flir", "flir_v2", "flir_v1", "coco")
    assert registry.CLASSIFICATION_FORMATS == ("imagenet", "domainnet", "cifar10", "cifar100", "cifar100_coarse",
                                               "tinyimagenet")
    assert format_names("detection", can="export") == registry.EXPORT_FORMATS == ("llvip", "flir", "coco")


def test_unknown_formats_list_the_valid_ones() -> None:
    with pytest.raises(DataError, match="unknown classification format 'cifar'; valid: imagenet, domainnet, cifar10"):
        open_classification("cifar", "/nowhere", "train")
    with pytest.raises(DataError, match="unknown detection format 'cifar10'; valid: llvip, flir, flir_v2"):
        get_format("cifar10", "detection")


def test_the_cli_builds_its_choices_without_importing_a_reader() -> None:
    code = ("import sys, capgate.cli.app as c; print(c.DATA_VERIFY_FORMATS[-3:], "
            "sorted(m for m in sys.modules if m.startswith(('numpy', 'PIL', 'capgate.data.')) and '.' in m)[:3])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "('cifar10', 'cifar100', 'tinyimagenet') ['capgate.data.registry']"


def _benchmark_spec(tmp_path: Path, bench: Path, fmt: str = "cifar10", classes: list[str] | None = None) -> Path:
    names = classes or ["person_plain", "car_side_plain", "car_rear_plain", "bicycle_plain", "dog_plain",
                        "ball_plain", "stop_sign_plain", "tree_plain", "house_plain", "star_plain"]
    spec = tmp_path / "bench.yaml"
    spec.write_text(
        "study: bench_test\ntask: classification\n"
        f"classes: [{', '.join(names)}]\n"
        f"datasets:\n  cifar: {{format: {fmt}, root: {bench}}}\n"
        "train_sets:\n  - dataset: cifar\n    split: train\n    name: cifar/train\n    eval:\n"
        "      - {dataset: cifar, split: test, name: cifar/test, shift: in_domain}\n"
        "rungs:\n  mobilenetv3: [S-6]\ninits:\n  scratch: {}\nseeds: [0]\n"
        "recipe: {optimizer: adamw, lr: 0.01, steps: 2, batch_size: 8, resolution: 32, warmup_steps: 0}\n")
    return spec


def test_a_spec_names_the_new_formats_and_the_loader_checks_them(tmp_path: Path) -> None:
    from capgate.spec import expand
    from capgate.spec.load import load_study

    _, runs = expand(load_study(_benchmark_spec(tmp_path, tmp_path / "b")))
    assert runs[0].train_set.data.format == "cifar10" and runs[0].train_set.evals[0].data.split == "test"
    with pytest.raises(SpecError, match="cifar100_coarse, tinyimagenet"):
        load_study(_benchmark_spec(tmp_path, tmp_path / "b", fmt="cifar"))


def test_in_memory_pixels_decode_and_stream_like_image_files(tmp_path: Path) -> None:
    import torch

    from capgate.data.synth_benchmark import BenchmarkConfig, ensure_benchmark_world
    from capgate.train.stream import stream_batches, streaming_split
    from capgate.train.tensors import batch_order, decode_classification

    cfg = BenchmarkConfig(cifar10_train=2, cifar10_test=1, cifar100_train=1, cifar100_test=1, tiny_classes=2,
                          tiny_train=1, tiny_val=1, tiny_test=1)
    world = ensure_benchmark_world(tmp_path / "bench", cfg)
    ds = open_classification("cifar10", world.dataset_root("cifar10"), "train")
    mem = decode_classification(ds, 32, tmp_path / "cache")
    assert mem.images.shape == (20, 3, 32, 32)
    assert (mem.images[5].permute(1, 2, 0).numpy() == ds.image(5)).all()  # 32 -> 32: no resampling
    assert mem.labels.tolist() == [ds.label(i) for i in range(20)]
    again = decode_classification(ds, 32, tmp_path / "cache")  # from the memory-mapped cache
    assert torch.equal(again.images, mem.images)
    small = decode_classification(ds, 16, None)
    stream = streaming_split(ds, 16, None, detection=False, workers=0)
    order = batch_order(20, 8, None)
    streamed = torch.cat([x for _, x in stream_batches(stream, order)])
    assert torch.equal(streamed, small.images)  # the streaming path resizes the same pixels the same way
    assert np.array_equal(stream.pixels, ds.pixels)
    stream.decode_device = torch.device("cpu")  # the CUDA path's per-batch decode, here on the CPU: pixels pass
    assert torch.equal(torch.cat([x for _, x in stream_batches(stream, order)]), small.images)


@pytest.mark.slow
def test_a_spec_with_format_cifar10_trains(tmp_path: Path) -> None:
    from capgate.data.synth_benchmark import BenchmarkConfig, ensure_benchmark_world
    from capgate.spec import expand
    from capgate.spec.load import load_study
    from capgate.train import train_one_run

    cfg = BenchmarkConfig(cifar10_train=4, cifar10_test=2, cifar100_train=1, cifar100_test=1, tiny_classes=2,
                          tiny_train=1, tiny_val=1, tiny_test=1)
    world = ensure_benchmark_world(tmp_path / "bench", cfg)
    _, (run,) = expand(load_study(_benchmark_spec(tmp_path, world.dataset_root("cifar10"))))
    (record,) = train_one_run(run, tmp_path / "store")
    assert record["status"] == "ok", record.get("error")
    assert record["train_set"] == "cifar/train" and record["eval_set"] == "cifar/test"
    assert record["top1"] in {k / 20 for k in range(21)} and record["params"] > 0  # 20 test images
