"""CIFAR-10 and CIFAR-100 (https://www.cs.toronto.edu/~kriz/cifar.html) in both distributed layouts.

Python version (pickles written by Python 2's cPickle, protocol 2: dicts whose keys are Python 2
``str``, so ``bytes`` under ``pickle.load(f, encoding="bytes")``; ``data`` a ``numpy.ndarray``
pickled through ``numpy.core.multiarray._reconstruct``)::

    cifar-10-batches-py/   data_batch_1 .. data_batch_5, test_batch   {data: N x 3072 uint8, labels: [N],
                           batches.meta {label_names: [10]}             batch_label, filenames}
    cifar-100-python/      train, test                                  {data, fine_labels, coarse_labels, ...}
                           meta {fine_label_names: [100], coarse_label_names: [20]}

Binary version (records without delimiters)::

    cifar-10-batches-bin/  data_batch_1.bin .. data_batch_5.bin, test_batch.bin   <1 label byte><3072 pixel bytes>
                           batches.meta.txt (one label name per line)
    cifar-100-binary/      train.bin, test.bin     <1 coarse label byte><1 fine label byte><3072 pixel bytes>
                           coarse_label_names.txt, fine_label_names.txt

The 3072 pixel bytes of one image are the red, green and blue 32x32 planes, each row-major;
images are returned ``(32, 32, 3)`` RGB, as torchvision's ``CIFAR10`` transposes them.

Pickles are read by :class:`_Py2Unpickler`, which admits only the three globals these files
hold (``numpy.core.multiarray._reconstruct``, ``numpy.ndarray``, ``numpy.dtype``; numpy 2
spells the first ``numpy._core.multiarray._reconstruct``) and refuses any other with
:class:`~capgate.errors.UnsafePickleError` naming the file: a pickle can run any code it names.

``root`` may be the extracted folder or the folder holding it; with both versions present the
Python one is read (``layout="binary"`` picks the other). CIFAR-100 gives its fine labels by
default and its 20 coarse superclasses with ``labels="coarse"``.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from capgate.data.problems import ProblemLog
from capgate.data.types import ClassificationDataset
from capgate.errors import DataError, UnsafePickleError

__all__ = ["CifarLayout", "CIFAR10", "CIFAR100", "CIFAR_LAYOUTS", "CIFAR_SPLITS", "read_cifar", "scan_cifar",
           "find_cifar", "load_py2_pickle", "PIXELS"]

CIFAR_SPLITS = ("train", "test")
PIXELS = 3 * 32 * 32


@dataclass(frozen=True)
class CifarLayout:
    """The file names of one CIFAR variant in both versions. ``label_sets`` name each label set
    (``fine``, ``coarse``): its pickle key, its names' key in the pickle meta, its byte in a
    binary record and its names file."""

    name: str
    py_folder: str
    py_files: dict[str, tuple[str, ...]]
    py_meta: str
    bin_folder: str
    bin_files: dict[str, tuple[str, ...]]
    label_bytes: int
    label_sets: dict[str, tuple[str, str, int, str]]  # set -> (pickle key, meta key, record byte, names file)


CIFAR10 = CifarLayout(
    "cifar10", "cifar-10-batches-py",
    {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}, "batches.meta",
    "cifar-10-batches-bin",
    {"train": tuple(f"data_batch_{i}.bin" for i in range(1, 6)), "test": ("test_batch.bin",)}, 1,
    {"fine": ("labels", "label_names", 0, "batches.meta.txt")},
)
CIFAR100 = CifarLayout(
    "cifar100", "cifar-100-python", {"train": ("train",), "test": ("test",)}, "meta",
    "cifar-100-binary", {"train": ("train.bin",), "test": ("test.bin",)}, 2,
    {"fine": ("fine_labels", "fine_label_names", 1, "fine_label_names.txt"),
     "coarse": ("coarse_labels", "coarse_label_names", 0, "coarse_label_names.txt")},
)
CIFAR_LAYOUTS = {"cifar10": CIFAR10, "cifar100": CIFAR100}

_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(1))[0]  # numpy's _reconstruct, wherever this numpy keeps it
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _Py2Unpickler(pickle.Unpickler):
    """Loads the CIFAR pickles and nothing that names another global."""

    def __init__(self, file: Any, source: Path) -> None:
        super().__init__(file, encoding="bytes")
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        found = _ALLOWED_GLOBALS.get((module, name))
        if found is None:
            allowed = ", ".join(f"{m}.{n}" for m, n in _ALLOWED_GLOBALS)
            raise UnsafePickleError(
                f"{self.source}: the pickle names {module}.{name}, which CIFAR's files never hold (they hold only "
                f"{allowed}); refused without loading it; fix: restore the file from the official archive")
        return found


def load_py2_pickle(path: Path) -> dict[str, Any]:
    """A CIFAR pickle as a dict with ``str`` keys (the files' keys are Python 2 ``str``, read as
    bytes). Raises UnsafePickleError for a foreign global, DataError for an unreadable file."""
    try:
        with open(path, "rb") as f:
            obj = _Py2Unpickler(f, path).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
        raise DataError(f"{path}: not a readable CIFAR pickle ({type(exc).__name__}: {exc}); "
                        "fix: restore the file from the official archive") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}: holds a {type(obj).__name__}, not the dict CIFAR's pickles hold; "
                        "fix: restore the file from the official archive")
    return {k.decode("latin1") if isinstance(k, bytes) else str(k): v for k, v in obj.items()}


def find_cifar(root: Path, layout: CifarLayout, version: str | None = None) -> tuple[Path, str]:
    """The folder holding the files and its version (``python`` or ``binary``): ``root`` itself
    or its ``cifar-10-batches-py``-style child; Python before binary unless ``version`` says."""
    names = next(iter(layout.label_sets.values()))[3]
    found = {"python": next((d for d in (root, root / layout.py_folder) if (d / layout.py_meta).is_file()), None),
             "binary": next((d for d in (root, root / layout.bin_folder) if (d / names).is_file()), None)}
    if version is not None:
        if version not in found:
            raise DataError(f"CIFAR version {version!r} is unknown; valid: python, binary")
        order = [version]
    else:
        order = ["python", "binary"]
    for v in order:
        if found[v] is not None:
            return found[v], v
    want = " or ".join(f"{layout.py_folder}/ ({layout.py_meta})" if v == "python" else
                       f"{layout.bin_folder}/ ({names})" for v in order)
    raise DataError(f"{root}: no {layout.name} files found; fix: point at {want} or the folder holding it")


def _names_from_pickle(path: Path, key: str, problems: ProblemLog) -> tuple[str, ...] | None:
    meta = load_py2_pickle(path)
    names = meta.get(key)
    if not isinstance(names, list) or not names:
        problems.add(path, f"has no list {key!r} (keys: {', '.join(sorted(meta))})",
                     "restore the meta file from the official archive")
        return None
    return tuple(n.decode("latin1") if isinstance(n, bytes) else str(n) for n in names)


def _names_from_text(path: Path, problems: ProblemLog) -> tuple[str, ...] | None:
    if not path.is_file():
        problems.add(path, "label names file is missing", "restore it from the official archive")
        return None
    names = tuple(line.strip() for line in path.read_text(encoding="latin1").splitlines() if line.strip())
    if not names:
        problems.add(path, "lists no label names", "restore it from the official archive")
    return names or None


def _read_python_file(path: Path, label_key: str, problems: ProblemLog) -> tuple[np.ndarray, np.ndarray] | None:
    d = load_py2_pickle(path)
    data, labels = d.get("data"), d.get(label_key)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != PIXELS:
        what = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        problems.add(path, f"'data' is {what}, not an N x {PIXELS} uint8 array", "restore the file")
        return None
    if labels is None:
        problems.add(path, f"has no {label_key!r} (keys: {', '.join(sorted(d))})", "restore the file")
        return None
    labels = np.asarray(labels)
    if labels.shape != (len(data),) or labels.dtype.kind not in "iu":
        problems.add(path, f"{label_key!r} holds {labels.shape} {labels.dtype}, not {len(data)} integers",
                     "restore the file")
        return None
    return data, labels.astype(np.int64)


def _read_binary_file(path: Path, layout: CifarLayout, byte: int, problems: ProblemLog) -> tuple[np.ndarray, np.ndarray] | None:
    raw = np.fromfile(path, dtype=np.uint8)
    record = layout.label_bytes + PIXELS
    if raw.size == 0 or raw.size % record:
        problems.add(path, f"is {raw.size} bytes, not a whole number of {record}-byte records "
                     f"({layout.label_bytes} label byte(s) + {PIXELS} pixel bytes)", "restore the file (truncated?)")
        return None
    rows = raw.reshape(-1, record)
    return rows[:, layout.label_bytes:], rows[:, byte].astype(np.int64)


def scan_cifar(root: Path, variant: str, split: str, problems: ProblemLog, labels: str = "fine",
               version: str | None = None) -> ClassificationDataset:
    """One split, every problem collected in ``problems`` (see :func:`read_cifar`)."""
    layout = CIFAR_LAYOUTS[variant]
    if split not in CIFAR_SPLITS:
        raise DataError(f"{variant} split {split!r} is unknown; valid splits: {', '.join(CIFAR_SPLITS)}")
    if labels not in layout.label_sets:
        raise DataError(f"{variant} label set {labels!r} is unknown; valid: {', '.join(layout.label_sets)}")
    folder, version = find_cifar(Path(root).absolute(), layout, version)
    label_key, meta_key, byte, names_file = layout.label_sets[labels]
    if version == "python":
        names = _names_from_pickle(folder / layout.py_meta, meta_key, problems)
        files = [folder / f for f in layout.py_files[split]]
    else:
        names = _names_from_text(folder / names_file, problems)
        files = [folder / f for f in layout.bin_files[split]]
    pixels, samples = [], []
    for f in files:
        if not f.is_file():
            problems.add(f, f"{split} batch file is missing", "restore it from the official archive")
            continue
        got = (_read_python_file(f, label_key, problems) if version == "python"
               else _read_binary_file(f, layout, byte, problems))
        if got is None:
            continue
        data, y = got
        ok = (y >= 0) & (y < len(names or ()))
        for i in np.flatnonzero(~ok)[:5].tolist():
            problems.add(f, f"image {i} has label {int(y[i])}, outside 0..{len(names or ()) - 1}", "restore the file")
        if (~ok).sum() > 5:
            problems.add(f, f"... and {int((~ok).sum()) - 5} more images with labels out of range", "restore the file")
        data, y = data[ok], y[ok]
        pixels.append(data)
        samples.extend((f, int(v)) for v in y.tolist())
    flat = np.concatenate(pixels) if pixels else np.zeros((0, PIXELS), dtype=np.uint8)
    images = np.ascontiguousarray(flat.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    name = variant if labels == "fine" else f"{variant}_{labels}"
    return ClassificationDataset(
        name=name, format=name, root=folder, split=split, domain=None, classes=names or (), samples=samples,
        meta={"variant": variant, "version": version, "labels": labels, "files": [f.name for f in files]},
        pixels=images,
    )


def read_cifar(root: Path | str, variant: str = "cifar10", split: str = "train", labels: str = "fine",
               version: str | None = None) -> ClassificationDataset:
    """Read one CIFAR split (``variant`` ``cifar10`` or ``cifar100``) from either version.

    ``labels``: ``fine`` (CIFAR-10's only set; CIFAR-100's 100 classes) or ``coarse`` (CIFAR-100's
    20 superclasses). Raises UnsafePickleError for a pickle naming a foreign global and
    DataError listing every other problem."""
    if variant not in CIFAR_LAYOUTS:
        raise DataError(f"CIFAR variant {variant!r} is unknown; valid: {', '.join(CIFAR_LAYOUTS)}")
    problems = ProblemLog()
    ds = scan_cifar(Path(root), variant, split, problems, labels, version)
    problems.raise_if_any(f"{variant} {ds.root} ({split})")
    return ds
