"""CIFAR-10/100 readers against fixtures written from the datasets' public description.

The CIFAR page (https://www.cs.toronto.edu/~kriz/cifar.html): each Python batch is a dict with
``data`` (N x 3072 uint8: the red, green and blue 32x32 planes, row-major) and ``labels`` (CIFAR-100:
``fine_labels``, ``coarse_labels``), pickled by Python 2's cPickle; ``batches.meta``/``meta`` hold the
label names. The binary version: records of 1 label byte (CIFAR-100: coarse, then fine) + 3072 pixel
bytes, names in text files. The pickles below are assembled opcode by opcode as Python 2's
protocol-2 cPickle writes them (not by capgate's writer), and read with ``pickle.load(f,
encoding="bytes")`` (bytes keys) and ``encoding="latin1"`` (torchvision's ``CIFAR10``) first.
"""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from capgate.cli import cli
from capgate.data import open_classification, read_cifar
from capgate.data.registry import verify_dataset
from capgate.data.synth_cifar import py2_pickle
from capgate.errors import DataError, UnsafePickleError


def _s(b: bytes) -> bytes:
    """A Python 2 ``str``: SHORT_BINSTRING, or BINSTRING when 256 bytes or longer."""
    return (b"U" + bytes([len(b)]) + b) if len(b) < 256 else (b"T" + struct.pack("<i", len(b)) + b)


def _int(v: int) -> bytes:
    return b"K" + bytes([v]) if v < 256 else b"M" + struct.pack("<H", v)


def _ndarray(a: np.ndarray) -> bytes:
    """numpy 1's reduce of a uint8 2-D array, as the real batches hold ``data``."""
    return (b"cnumpy.core.multiarray\n_reconstruct\nq\x01cnumpy\nndarray\nq\x02K\x00\x85" + _s(b"b") + b"\x87R"
            + b"(K\x01" + _int(a.shape[0]) + _int(a.shape[1]) + b"\x86"
            + b"cnumpy\ndtype\nq\x03" + _s(b"u1") + b"K\x00K\x01\x87R"
            + b"(K\x03" + _s(b"|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
            + b"\x89" + _s(a.tobytes()) + b"tb")


def _list(items: list[bytes]) -> bytes:
    return b"](" + b"".join(items) + b"e"


def _dict(pairs: list[tuple[bytes, bytes]]) -> bytes:
    return b"\x80\x02}(" + b"".join(_s(k) + v for k, v in pairs) + b"u."


def _images(n: int, base: int) -> np.ndarray:
    """Row i: red plane all ``base + i``, green plane 0..255 repeating, blue plane 7."""
    data = np.zeros((n, 3072), dtype=np.uint8)
    for i in range(n):
        data[i, :1024] = base + i
        data[i, 1024:2048] = np.arange(1024) % 256
        data[i, 2048:] = 7
    return data


CIFAR10_NAMES = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]


def _cifar10_py(root: Path, per_batch: int = 2) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for k, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        data = _images(per_batch, 10 * k)
        labels = [(k + i) % 10 for i in range(per_batch)]
        (folder / name).write_bytes(_dict([
            (b"data", _ndarray(data)), (b"labels", _list([_int(v) for v in labels])),
            (b"batch_label", _s(f"training batch {k + 1} of 5".encode())),
            (b"filenames", _list([_s(f"img_{k}_{i}.png".encode()) for i in range(per_batch)]))]))
    (folder / "batches.meta").write_bytes(_dict([
        (b"num_cases_per_batch", _int(per_batch)), (b"label_names", _list([_s(n) for n in CIFAR10_NAMES])),
        (b"num_vis", _int(3072))]))
    return folder


def test_the_fixture_loads_like_the_real_files_do_in_torchvision_and_with_bytes_keys(tmp_path: Path) -> None:
    folder = _cifar10_py(tmp_path)
    with open(folder / "data_batch_2", "rb") as f:
        as_bytes = pickle.load(f, encoding="bytes")
    with open(folder / "data_batch_2", "rb") as f:
        as_latin1 = pickle.load(f, encoding="latin1")  # torchvision.datasets.CIFAR10's call
    assert list(as_bytes) == [b"data", b"labels", b"batch_label", b"filenames"]
    assert as_latin1["labels"] == [1, 2] and as_latin1["data"].shape == (2, 3072)
    assert (as_bytes[b"data"] == as_latin1["data"]).all()


def test_python_version_reads_planes_as_rgb_and_labels_in_order(tmp_path: Path) -> None:
    _cifar10_py(tmp_path)
    train = read_cifar(tmp_path, "cifar10", "train")  # the folder holding cifar-10-batches-py
    assert len(train) == 10 and train.classes[:3] == ("airplane", "automobile", "bird")
    assert [train.label(i) for i in range(10)] == [0, 1, 1, 2, 2, 3, 3, 4, 4, 5]
    # image 3 is batch 2's second: red 10 + 1, green = column index (row 0), blue 7
    assert train.image(3).shape == (32, 32, 3) and train.image(3)[0, 5].tolist() == [11, 5, 7]
    assert train.image(3)[1, 0].tolist() == [11, 32, 7]  # row-major: pixel (row 1, col 0) is entry 32
    test = open_classification("cifar10", tmp_path / "cifar-10-batches-py", "test")
    assert len(test) == 2 and test.label(1) == 6 and test.image(0)[0, 0].tolist() == [50, 0, 7]
    assert train.samples[0][0].name == "data_batch_1" and test.meta["version"] == "python"


def test_binary_version_of_cifar100_gives_fine_by_default_and_coarse_on_request(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-100-binary"
    folder.mkdir()
    records = b""
    for coarse, fine, red in ((3, 40, 200), (19, 99, 201), (0, 4, 202)):
        records += bytes([coarse, fine]) + bytes([red]) * 1024 + bytes(range(256)) * 4 + bytes([9]) * 1024
    (folder / "train.bin").write_bytes(records)
    (folder / "test.bin").write_bytes(records[:3074])
    (folder / "fine_label_names.txt").write_text("\n".join(f"fine{i}" for i in range(100)) + "\n\n")
    (folder / "coarse_label_names.txt").write_text("\n".join(f"coarse{i}" for i in range(20)) + "\n")
    fine = open_classification("cifar100", tmp_path, "train")
    assert [fine.label(i) for i in range(3)] == [40, 99, 4] and len(fine.classes) == 100
    assert fine.image(1)[0, 0].tolist() == [201, 0, 9] and fine.image(1)[0, 3].tolist() == [201, 3, 9]
    coarse = open_classification("cifar100_coarse", tmp_path, "train")
    assert [coarse.label(i) for i in range(3)] == [3, 19, 0] and coarse.classes[19] == "coarse19"
    assert open_classification("cifar100", folder, "test", labels="coarse").label(0) == 3
    assert fine.meta["version"] == "binary"


def test_cifar100_python_meta_and_both_label_sets(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for name, fine, coarse in (("train", [5, 99, 0], [1, 19, 0]), ("test", [7], [2])):
        (folder / name).write_bytes(_dict([
            (b"filenames", _list([_s(b"x.png")] * len(fine))), (b"batch_label", _s(b"training batch 1 of 1")),
            (b"fine_labels", _list([_int(v) for v in fine])), (b"coarse_labels", _list([_int(v) for v in coarse])),
            (b"data", _ndarray(_images(len(fine), 100)))]))
    (folder / "meta").write_bytes(_dict([
        (b"fine_label_names", _list([_s(f"f{i}".encode()) for i in range(100)])),
        (b"coarse_label_names", _list([_s(f"c{i}".encode()) for i in range(20)]))]))
    ds = open_classification("cifar100", tmp_path, "train")
    assert [ds.label(i) for i in range(3)] == [5, 99, 0] and ds.classes[99] == "f99"
    coarse = open_classification("cifar100_coarse", tmp_path, "test")
    assert coarse.label(0) == 2 and coarse.classes == tuple(f"c{i}" for i in range(20))
    sub = open_classification("cifar100", tmp_path, "train", classes=["f99", "f5"])
    assert sub.classes == ("f5", "f99") and [sub.label(i) for i in range(2)] == [0, 1] and len(sub.pixels) == 2


def test_capgates_py2_writer_matches_the_hand_assembled_opcodes(tmp_path: Path) -> None:
    data = _images(2, 3)
    doc = {b"data": data, b"labels": [1, 300], b"batch_label": b"testing batch 1 of 1"}
    ours = py2_pickle(doc)
    assert pickle.loads(ours, encoding="bytes")[b"labels"] == [1, 300]
    assert (pickle.loads(ours, encoding="latin1")["data"] == data).all()
    assert b"_codecs" not in ours and ours.startswith(b"\x80\x02}(U\x04datacnumpy.core.multiarray\n_reconstruct\n")
    # Python 3's own protocol 2 writes bytes through _codecs.encode: refused, as any foreign global
    folder = _cifar10_py(tmp_path)
    (folder / "test_batch").write_bytes(pickle.dumps(doc, protocol=2))
    with pytest.raises(UnsafePickleError, match=r"test_batch: the pickle names _codecs.encode"):
        read_cifar(tmp_path, "cifar10", "test")


class _Evil:
    def __reduce__(self):  # noqa: ANN204
        return (print, ("pwned",))


def test_a_pickle_naming_any_other_global_is_refused_with_exit_2_naming_the_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _cifar10_py(tmp_path)
    (folder / "data_batch_3").write_bytes(pickle.dumps({"data": _Evil()}, protocol=2))
    with pytest.raises(UnsafePickleError, match="data_batch_3: the pickle names __builtin__.print"):
        read_cifar(folder, "cifar10", "train")
    assert "pwned" not in capsys.readouterr().out
    r = CliRunner().invoke(cli, ["data", "verify", str(tmp_path), "--format", "cifar10"])
    assert r.exit_code == 2 and "data_batch_3: the pickle names __builtin__.print" in r.output
    assert "train (python)" not in r.output and "test (python): 2 images" in r.output
    r = CliRunner().invoke(cli, ["data", "verify", str(tmp_path), "--format", "cifar10"], catch_exceptions=False)
    assert "pwned" not in r.output


def test_verify_names_a_truncated_binary_file_and_disagreeing_versions(tmp_path: Path) -> None:
    _cifar10_py(tmp_path, per_batch=1)
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    for k, name in enumerate([f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]):
        (folder / name).write_bytes(bytes([k % 10]) + _images(1, 10 * k).tobytes())
    (folder / "batches.meta.txt").write_text("\n".join(n.decode() for n in CIFAR10_NAMES) + "\n\n")
    report = verify_dataset(tmp_path, "cifar10")
    assert report.ok, report.lines()
    assert [p["name"] for p in report.parts] == ["train (python)", "train (binary)", "test (python)", "test (binary)"]
    (folder / "test_batch.bin").write_bytes(bytes([6]) + _images(1, 51).tobytes())  # another image
    (folder / "data_batch_4.bin").write_bytes(bytes([1]) + bytes(100))  # truncated
    report = verify_dataset(tmp_path, "cifar10")
    text = "\n".join(report.lines())
    assert f"{folder / 'data_batch_4.bin'}: is 101 bytes, not a whole number of 3073-byte records" in text
    assert "the Python and binary versions of test (fine labels) differ (1 vs 1 images)" in text
    with pytest.raises(DataError, match="data_batch_4.bin: is 101 bytes"):
        read_cifar(tmp_path, "cifar10", "train", version="binary")


def test_wrong_folder_split_and_labels_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no cifar10 files found; fix: point at cifar-10-batches-py/"):
        open_classification("cifar10", tmp_path, "train")
    _cifar10_py(tmp_path)
    with pytest.raises(DataError, match="valid splits: train, test"):
        open_classification("cifar10", tmp_path, "val")
    with pytest.raises(DataError, match="label set 'coarse' is unknown; valid: fine"):
        open_classification("cifar10", tmp_path, "train", labels="coarse")


def test_torchvision_reads_the_synthetic_stand_in_as_capgate_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from torchvision.datasets import CIFAR10, CIFAR100, cifar

    from capgate.data.synth_benchmark import BenchmarkConfig, ensure_benchmark_world

    cfg = BenchmarkConfig(cifar10_train=3, cifar10_test=2, cifar100_train=2, cifar100_test=1, tiny_classes=2,
                          tiny_train=1, tiny_val=1, tiny_test=1)
    world = ensure_benchmark_world(tmp_path / "bench", cfg, seed=3)
    monkeypatch.setattr(cifar, "check_integrity", lambda *a, **k: True)  # the md5s are the real archives'
    for variant, tv, n_train in (("cifar10", CIFAR10, 30), ("cifar100", CIFAR100, 40)):
        root = world.dataset_root(variant)
        for split in ("train", "test"):
            ref = tv(str(root), train=split == "train")
            for version in ("python", "binary"):
                ds = read_cifar(root, variant, split, version=version)
                assert (ds.pixels == ref.data).all() and [ds.label(i) for i in range(len(ds))] == ref.targets
                assert list(ds.classes) == ref.classes
        assert len(read_cifar(root, variant, "train")) == n_train
