"""Writing CIFAR-layout stand-ins: Python 2-style pickles and binary records, as the real files are.

:func:`py2_pickle` encodes a value the way Python 2's ``cPickle.dump(obj, f, 2)`` did for the
CIFAR files: protocol 2; ``bytes`` as Python 2 ``str`` (``SHORT_BINSTRING``/``BINSTRING``, so a
Python 3 reader gets them back as bytes with ``encoding="bytes"`` and as str with ``"latin1"``, as
torchvision reads them); ints as ``BININT1``/``BININT2``/``BININT``; uint8 arrays through
``numpy.core.multiarray._reconstruct``, ``numpy.ndarray`` and ``numpy.dtype`` (numpy 1's names, the
ones the real files carry) with their raw bytes in one string; each global memoised and fetched
again with ``BINGET``. Python 3's own ``pickle.dumps(obj, 2)`` differs: it writes bytes through
``_codecs.encode``, a global the real files never name (and capgate's reader refuses).

:func:`write_cifar` writes one variant in both versions from ``(N, 32, 32, 3)`` images.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np

from capgate.data.cifar import CIFAR_LAYOUTS

__all__ = ["py2_pickle", "write_cifar"]


class _Py2Writer:
    def __init__(self) -> None:
        self.out = bytearray(b"\x80\x02")
        self.memo: dict[str, int] = {}

    def global_(self, module: str, name: str) -> None:
        key = f"{module}\n{name}"
        if key in self.memo:
            self.out += b"h" + bytes([self.memo[key]])
            return
        self.out += f"c{module}\n{name}\n".encode()
        self.memo[key] = len(self.memo)
        self.out += b"q" + bytes([self.memo[key]])

    def value(self, v: Any) -> None:  # noqa: C901 - one branch per pickled type
        if v is None:
            self.out += b"N"
        elif isinstance(v, bool):
            self.out += b"\x88" if v else b"\x89"
        elif isinstance(v, (int, np.integer)):
            v = int(v)
            if 0 <= v < 256:
                self.out += b"K" + bytes([v])
            elif 0 <= v < 65536:
                self.out += b"M" + struct.pack("<H", v)
            else:
                self.out += b"J" + struct.pack("<i", v)
        elif isinstance(v, bytes):
            self.out += (b"U" + bytes([len(v)]) if len(v) < 256 else b"T" + struct.pack("<i", len(v))) + v
        elif isinstance(v, tuple):
            self.out += b"("
            for item in v:
                self.value(item)
            self.out += b"t"
        elif isinstance(v, list):
            self.out += b"]("
            for item in v:
                self.value(item)
            self.out += b"e"
        elif isinstance(v, dict):
            self.out += b"}("
            for k, item in v.items():
                self.value(k)
                self.value(item)
            self.out += b"u"
        elif isinstance(v, np.ndarray):
            self.array(v)
        else:
            raise TypeError(f"py2_pickle cannot write {type(v).__name__}")

    def array(self, a: np.ndarray) -> None:
        assert a.dtype == np.uint8, "the CIFAR files hold uint8 arrays only"
        self.global_("numpy.core.multiarray", "_reconstruct")
        self.global_("numpy", "ndarray")
        self.out += b"K\x00\x85" + b"U\x01b" + b"\x87R"  # _reconstruct(ndarray, (0,), 'b')
        self.out += b"(K\x01"  # __setstate__((version 1, shape, dtype, fortran, raw bytes))
        self.value(tuple(a.shape))
        self.global_("numpy", "dtype")
        self.out += b"U\x02u1K\x00K\x01\x87R"  # dtype('u1', 0, 1)
        self.out += b"(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"  # its state, version 3
        self.out += b"\x89"
        self.value(np.ascontiguousarray(a).tobytes())
        self.out += b"tb"


def py2_pickle(obj: Any) -> bytes:
    """``obj`` (dicts, lists, tuples, bytes, ints, None, uint8 arrays) as Python 2's protocol-2 cPickle wrote it."""
    w = _Py2Writer()
    w.value(obj)
    return bytes(w.out + b".")


def _chunks(n: int, parts: int) -> list[slice]:
    step = -(-n // parts)
    return [slice(i * step, min(n, (i + 1) * step)) for i in range(parts)]


def write_cifar(folder: Path, variant: str, splits: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]],
                names: dict[str, list[str]]) -> None:
    """Write ``variant`` (``cifar10``/``cifar100``) into ``folder`` in both versions.

    ``splits[split] = (images (N, 32, 32, 3) uint8, {label set: labels (N,)})``, ``names[label set]``
    the label names. CIFAR-10's train split is cut into its five batches."""
    layout = CIFAR_LAYOUTS[variant]
    py, bn = folder / layout.py_folder, folder / layout.bin_folder
    py.mkdir(parents=True, exist_ok=True)
    bn.mkdir(parents=True, exist_ok=True)
    for split, (images, labels) in splits.items():
        flat = np.ascontiguousarray(images.transpose(0, 3, 1, 2)).reshape(len(images), -1)
        files = layout.py_files[split]
        for k, (part, bin_name) in enumerate(zip(_chunks(len(flat), len(files)), layout.bin_files[split])):
            kind = "training" if split == "train" else "testing"
            doc: dict[bytes, Any] = {b"data": flat[part]}
            for label_set, (key, _, _, _) in layout.label_sets.items():
                doc[key.encode()] = [int(v) for v in labels[label_set][part]]
            fine = names["fine"]
            doc[b"batch_label"] = f"{kind} batch {k + 1} of {len(files)}".encode()
            doc[b"filenames"] = [f"{fine[int(y)]}_s_{part.start + i:06d}.png".encode()
                                 for i, y in enumerate(labels["fine"][part])]
            (py / files[k]).write_bytes(py2_pickle(doc))
            record = [np.stack([labels[s] for s, v in sorted(layout.label_sets.items(), key=lambda kv: kv[1][2])],
                               axis=1)[part].astype(np.uint8), flat[part]]
            (bn / bin_name).write_bytes(np.concatenate(record, axis=1).tobytes())
    meta: dict[bytes, Any] = {}
    if variant == "cifar10":
        meta = {b"num_cases_per_batch": len(splits["train"][0]) // 5, b"label_names": None, b"num_vis": 3072}
    for label_set, (_, meta_key, _, names_file) in layout.label_sets.items():
        meta[meta_key.encode()] = [n.encode() for n in names[label_set]]
        (bn / names_file).write_text("\n".join(names[label_set]) + "\n\n", encoding="latin1")
    (py / layout.py_meta).write_bytes(py2_pickle(meta))
