"""Tiny ImageNet reader against a fixture in the CS231n release's layout.

``tiny-imagenet-200/``: ``wnids.txt`` (200 wnids, not sorted), ``words.txt`` (``wnid<TAB>names`` for
all of WordNet), ``train/<wnid>/images/<wnid>_<i>.JPEG`` with ``train/<wnid>/<wnid>_boxes.txt``
(``file<TAB>x0<TAB>y0<TAB>x1<TAB>y1``), ``val/images/val_<i>.JPEG`` with ``val/val_annotations.txt``
(``file<TAB>wnid<TAB>x0<TAB>y0<TAB>x1<TAB>y1``), ``test/images/test_<i>.JPEG`` unlabeled. Some of the
real JPEGs are greyscale.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from capgate.cli import cli
from capgate.data import open_classification, read_tinyimagenet
from capgate.data.registry import verify_dataset
from capgate.errors import DataError

WNIDS = ["n02124075", "n01443537", "n09246464"]  # as in the real wnids.txt: not sorted
WORDS = {"n02124075": "Egyptian cat", "n01443537": "goldfish, Carassius auratus", "n09246464": "cliff, drop, drop-off"}


def _jpeg(path: Path, value: int, grey: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "L" if grey else "RGB"
    Image.new(mode, (64, 64), value if grey else (value, 255 - value, 40)).save(path, quality=95)


def write_tiny_imagenet(root: Path) -> Path:
    d = root / "tiny-imagenet-200"
    d.mkdir(parents=True)
    (d / "wnids.txt").write_text("\n".join(WNIDS) + "\n")
    words = {"n00001740": "entity", **WORDS, "n15300051": "time off"}
    (d / "words.txt").write_text("".join(f"{w}\t{n}\n" for w, n in sorted(words.items())))
    for k, wnid in enumerate(WNIDS):
        lines = []
        for i in (0, 1, 10):  # numeric order: _10 after _1
            _jpeg(d / "train" / wnid / "images" / f"{wnid}_{i}.JPEG", 20 * k + i, grey=(k, i) == (2, 1))
            lines.append(f"{wnid}_{i}.JPEG\t0\t10\t63\t58")
        (d / "train" / wnid / f"{wnid}_boxes.txt").write_text("\n".join(lines) + "\n")
    val = [("val_0.JPEG", "n09246464"), ("val_1.JPEG", "n02124075"), ("val_2.JPEG", "n01443537")]
    for i, (name, _) in enumerate(val):
        _jpeg(d / "val" / "images" / name, 100 + i, grey=i == 1)
    (d / "val" / "val_annotations.txt").write_text("".join(f"{n}\t{w}\t0\t32\t44\t62\n" for n, w in val))
    _jpeg(d / "test" / "images" / "test_0.JPEG", 5)
    return d


def test_train_and_val_share_the_wnids_txt_index_and_carry_words_names(tmp_path: Path) -> None:
    d = write_tiny_imagenet(tmp_path)
    train = read_tinyimagenet(tmp_path, "train")  # the folder holding tiny-imagenet-200
    val = open_classification("tinyimagenet", d, "val")
    assert train.classes == val.classes == tuple(WNIDS)
    assert train.class_names == ("Egyptian cat", "goldfish, Carassius auratus", "cliff, drop, drop-off")
    assert [p.name for p, _ in train.samples[:3]] == ["n02124075_0.JPEG", "n02124075_1.JPEG", "n02124075_10.JPEG"]
    assert [train.label(i) for i in range(len(train))] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert [val.label(i) for i in range(3)] == [2, 0, 1]


def test_greyscale_jpegs_come_back_as_three_equal_channels(tmp_path: Path) -> None:
    write_tiny_imagenet(tmp_path)
    train = read_tinyimagenet(tmp_path, "train")
    grey = train.image(7)  # n09246464_1.JPEG, written as an L-mode JPEG
    assert Image.open(train.samples[7][0]).mode == "L"
    assert grey.shape == (64, 64, 3) and (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()
    assert abs(int(grey[30, 30, 0]) - 41) <= 2  # JPEG of a flat 41: within the codec's rounding
    colour = train.image(0)
    assert abs(int(colour[30, 30, 0]) - 0) <= 3 and abs(int(colour[30, 30, 1]) - 255) <= 3


def test_test_split_is_refused_as_unlabeled(tmp_path: Path) -> None:
    write_tiny_imagenet(tmp_path)
    with pytest.raises(DataError, match=r"test/ images carry no labels .*; fix: evaluate on split 'val'"):
        open_classification("tinyimagenet", tmp_path, "test")


def test_verify_summarises_and_lists_every_problem_with_exit_2(tmp_path: Path) -> None:
    d = write_tiny_imagenet(tmp_path)
    r = CliRunner().invoke(cli, ["data", "verify", str(tmp_path), "--format", "tinyimagenet"])
    assert r.exit_code == 0, r.output
    assert "train: 9 images, 3 classes" in r.output and "size 64x64 (all)" in r.output
    assert "train boxes: 9 boxes in 3 <wnid>_boxes.txt files" in r.output and "test: 1 unlabeled images" in r.output
    (d / "val" / "images" / "val_2.JPEG").unlink()
    _jpeg(d / "val" / "images" / "val_3.JPEG", 7)
    with open(d / "train" / "n01443537" / "n01443537_boxes.txt", "a") as f:
        f.write("n01443537_1.JPEG\t0\t10\t64\t58\n")
    report = verify_dataset(d, "tinyimagenet")
    got = [str(p) for p in report.problems]
    assert got == [  # train's boxes files are checked with train, before val
        f"{d / 'train' / 'n01443537' / 'n01443537_boxes.txt'}:4: bad box line 'n01443537_1.JPEG\\t0\\t10\\t64\\t58'; "
        "fix: write '<file>\\t<x0>\\t<y0>\\t<x1>\\t<y1>' inside the 64x64 image",
        f"{d / 'val' / 'val_annotations.txt'}:3: image val/images/val_2.JPEG is missing; fix: restore the image or "
        "remove the line",
        f"{d / 'val' / 'images' / 'val_3.JPEG'}: has no line in val/val_annotations.txt; fix: restore val_annotations.txt",
    ]
    r = CliRunner().invoke(cli, ["data", "verify", str(d), "--format", "tinyimagenet"])
    assert r.exit_code == 2 and "problems: 3" in r.output
    with pytest.raises(DataError, match="val_2.JPEG is missing"):
        read_tinyimagenet(d, "val")


def test_wnids_and_folders_must_agree(tmp_path: Path) -> None:
    d = write_tiny_imagenet(tmp_path)
    (d / "train" / "n99999999" / "images").mkdir(parents=True)
    (d / "words.txt").write_text("n02124075\tEgyptian cat\n")
    with pytest.raises(DataError) as exc:
        read_tinyimagenet(d, "train")
    msg = str(exc.value)
    assert "n99999999: class folder is not listed in wnids.txt" in msg
    assert "words.txt: has no line for wnid n01443537" in msg
    with pytest.raises(DataError, match=r"no wnids.txt here nor in tiny-imagenet-200/"):
        read_tinyimagenet(tmp_path / "tiny-imagenet-200" / "train", "train")


def test_synthetic_stand_in_reads_back_with_greyscale_files(tmp_path: Path) -> None:
    from capgate.data.synth_benchmark import BenchmarkConfig, ensure_benchmark_world

    cfg = BenchmarkConfig(cifar10_train=1, cifar10_test=1, cifar100_train=1, cifar100_test=1, tiny_classes=4,
                          tiny_train=4, tiny_val=2, tiny_test=3)
    world = ensure_benchmark_world(tmp_path / "bench", cfg, seed=1)
    train = open_classification("tinyimagenet", world.dataset_root("tinyimagenet"), "train")
    val = open_classification("tinyimagenet", world.dataset_root("tinyimagenet"), "val")
    assert len(train) == 16 and len(val) == 8 and train.classes == val.classes
    assert train.classes == ("n90000003", "n90000002", "n90000001", "n90000000")  # wnids.txt order, unsorted
    modes = {Image.open(p).mode for p, _ in train.samples + val.samples}
    assert modes == {"L", "RGB"}
    assert np.bincount([y for _, y in train.samples]).tolist() == [4, 4, 4, 4]
    assert verify_dataset(world.dataset_root("tinyimagenet"), "tinyimagenet").ok
    again = ensure_benchmark_world(tmp_path / "bench2", cfg, seed=1)
    assert again.fingerprint == world.fingerprint  # same config and seed, same bytes
    assert ensure_benchmark_world(tmp_path / "bench3", cfg, seed=2).fingerprint != world.fingerprint
