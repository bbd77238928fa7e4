"""capgate's checkpoint format, and reading weights from any supported file.

A capgate checkpoint is one ``torch.save``'d dict that carries its own config::

    {"format": "capgate-checkpoint/1",
     "kind": "backbone" | "detector" | "classifier",
     "rung": {"name", "family", "width", "depth", "note"},
     "num_classes": int | None, "categories": [str, ...],
     "config": {...the spec that produced it, plain JSON-like values...},
     "meta": {...anything else passed to save_checkpoint, plain values...},
     "state_dict": {name: tensor}}

``state_dict`` keys are the saved module's own: a ``backbone`` checkpoint holds the timm
backbone's keys (``conv_stem.weight``, ``blocks.0.0...``), a ``detector`` one the whole FCOS
(``backbone.body.*``, ``backbone.fpn.*``, ``head.*``), a ``classifier`` one ``backbone.*`` and
``head.*``. Everything is read with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from capgate._hash import file_sha256  # noqa: F401  (re-exported: capgate.models.checkpoint.file_sha256)
from capgate.store.atomic import atomic_write
from capgate.errors import CheckpointError, SpecError
from capgate.models.ladder import Rung

__all__ = [
    "CHECKPOINT_FORMAT",
    "KINDS",
    "Checkpoint",
    "backbone_module",
    "feature_key",
    "file_sha256",
    "read_checkpoint",
    "read_weights",
    "save_checkpoint",
]

CHECKPOINT_FORMAT = "capgate-checkpoint/1"
KINDS = ("backbone", "detector", "classifier")
#: Wrapper keys under which training scripts nest a state dict (tried in this order).
_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "module", "net", "weights")
_READ_ERRORS = (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError, zipfile.BadZipFile,
                AttributeError, TypeError, KeyError, IndexError)


@dataclass(frozen=True)
class Checkpoint:
    """A capgate checkpoint as read from ``path`` (``sha256``: hex digest of the file)."""

    path: Path
    kind: str
    rung: Rung
    num_classes: int | None
    categories: list[str]
    config: dict[str, Any]
    state_dict: dict[str, Tensor] = field(repr=False)
    meta: dict[str, Any] = field(default_factory=dict)
    sha256: str = ""


_FLATTENED = re.compile(r"^([A-Za-z_]\w*)\.(\d+)\.")


def feature_key(name: str, target: set[str] | dict[str, Any]) -> str:
    """``name`` as the ``target`` network spells it. timm's features networks built with
    ``flatten_sequential`` (GhostNet's) rename ``blocks.0.0.conv`` to ``blocks_0.0.conv``; a
    file in the full network's spelling maps onto them. Otherwise ``name`` is returned as is."""
    if name in target:
        return name
    alias = _FLATTENED.sub(r"\1_\2.", name, count=1)
    return alias if alias in target else name


def backbone_module(model: nn.Module) -> nn.Module:
    """The backbone inside a capgate detector (``backbone.body``) or classifier
    (``backbone``); a bare features backbone (one with ``feature_info``) is returned as is."""
    kind = getattr(model, "capgate_kind", None)
    if kind == "detector":
        return model.backbone.body
    if kind == "classifier":
        return model.backbone
    if hasattr(model, "feature_info"):
        return model
    raise CheckpointError(
        f"{type(model).__name__} is not a capgate detector, classifier or timm backbone; build it "
        f"with build_detector, build_classifier or build_backbone"
    )


def _check_plain(value: Any, where: str) -> None:
    if value is None or isinstance(value, (str, bool, int, float)):
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise CheckpointError(f"{where} has a non-string key {k!r}; checkpoint configs use string keys")
            _check_plain(v, f"{where}.{k}")
        return
    raise CheckpointError(
        f"{where} is a {type(value).__name__}; checkpoints hold plain JSON-like values "
        f"(str, int, float, bool, None, lists, dicts) so that weights_only loading can read them"
    )


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    kind: str,
    rung: Rung,
    config: dict[str, Any],
    **meta: Any,
) -> Path:
    """Write ``model`` as a capgate checkpoint, atomically (temp file in the same folder, then
    rename). ``kind="backbone"`` stores only the backbone of a detector or classifier.

    ``num_classes`` and ``categories`` in ``meta`` go to their top-level fields (num_classes
    defaults to the model's); any other ``meta`` is stored under ``"meta"``.
    """
    if kind not in KINDS:
        raise CheckpointError(f"checkpoint kind {kind!r} is invalid; valid kinds: {', '.join(KINDS)}")
    model_kind = getattr(model, "capgate_kind", None)
    if kind != "backbone" and model_kind != kind:
        raise CheckpointError(
            f"cannot save a {model_kind or type(model).__name__} as a {kind!r} checkpoint; pass kind="
            f"{model_kind!r}" + (" or kind='backbone'" if model_kind else "")
        )
    num_classes = meta.pop("num_classes", None if kind == "backbone" else getattr(model, "num_classes", None))
    categories = list(meta.pop("categories", []) or [])
    _check_plain(dict(config), "config")
    _check_plain(categories, "categories")
    _check_plain(meta, "meta")
    module = backbone_module(model) if kind == "backbone" else model
    payload = {
        "format": CHECKPOINT_FORMAT,
        "kind": kind,
        "rung": rung.to_dict(),
        "num_classes": num_classes,
        "categories": categories,
        "config": dict(config),
        "meta": meta,
        "state_dict": {k: v.detach().cpu() for k, v in module.state_dict().items()},
    }
    return atomic_write(path, lambda fh: torch.save(payload, fh))


def _torch_load(path: Path) -> Any:
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found; give the path of an existing local file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except _READ_ERRORS as exc:
        if not zipfile.is_zipfile(path):
            problem = ("is not a torch checkpoint (torch.save writes a zip archive; this file is truncated "
                       "or of another format)")
        else:
            detail = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
            problem = (f"could not be read with torch.load(weights_only=True) ({type(exc).__name__}: {detail}); "
                       f"it is damaged or holds objects other than tensors and plain values")
        raise CheckpointError(
            f"{path}: {problem}. Re-create it with capgate.models.save_checkpoint or torch.save(model.state_dict())"
        ) from exc


def _tensor_dict(obj: Any, path: Path, what: str) -> dict[str, Tensor]:
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: {what} is a {type(obj).__name__}, not a dict of tensors; "
                              f"save a state dict (model.state_dict())")
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, Tensor)}
    if not tensors:
        raise CheckpointError(f"{path}: {what} holds no tensors; save a state dict (model.state_dict())")
    return tensors


def _parse_capgate(obj: dict, path: Path) -> Checkpoint:
    fmt = obj.get("format")
    if fmt != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path}: checkpoint format {fmt!r} is not {CHECKPOINT_FORMAT!r}; this capgate cannot read it, "
            f"re-create it with this version's save_checkpoint"
        )
    kind = obj.get("kind")
    if kind not in KINDS:
        raise CheckpointError(f"{path}: checkpoint kind {kind!r} is invalid (valid: {', '.join(KINDS)}); "
                              f"the file is damaged, re-create it with save_checkpoint")
    try:
        rung = Rung.from_dict(obj.get("rung"))
    except SpecError as exc:
        raise CheckpointError(f"{path}: its rung is invalid ({exc}); re-create it with save_checkpoint") from exc
    config = obj.get("config") or {}
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: 'config' is a {type(config).__name__}, not a dict; re-create the file")
    return Checkpoint(
        path=path,
        kind=kind,
        rung=rung,
        num_classes=obj.get("num_classes"),
        categories=list(obj.get("categories") or []),
        config=config,
        state_dict=_tensor_dict(obj.get("state_dict"), path, "'state_dict'"),
        meta=dict(obj.get("meta") or {}),
        sha256=file_sha256(path),
    )


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Read a capgate checkpoint; a missing, corrupt, foreign or wrong-version file raises
    :class:`CheckpointError` naming the file and the fix."""
    path = Path(path)
    obj = _torch_load(path)
    if not isinstance(obj, dict) or "format" not in obj:
        raise CheckpointError(
            f"{path}: not a capgate checkpoint (no 'format': {CHECKPOINT_FORMAT!r}); write it with "
            f"capgate.models.save_checkpoint, or load plain weights with capgate.models.initialize"
        )
    return _parse_capgate(obj, path)


def read_weights(path: str | Path) -> tuple[dict[str, Tensor], str, Checkpoint | None]:
    """Tensors of any supported weights file: ``(state_dict, description, checkpoint)``.

    Supported: a capgate checkpoint (``checkpoint`` is set), safetensors (``.safetensors``), and
    torch files (``.pt``/``.pth``/``.bin``/...) holding a plain state dict, possibly wrapped in
    ``{"state_dict" | "model" | ...: ...}`` (timm and torchvision training checkpoints). A
    leading ``module.`` (DataParallel) is stripped.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        if not path.is_file():
            raise CheckpointError(f"{path}: checkpoint file not found; give the path of an existing local file")
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            tensors = load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"{path}: not a readable safetensors file ({exc}); re-export it with "
                                  f"safetensors.torch.save_file(state_dict, path)") from exc
        return _strip_module(_tensor_dict(tensors, path, "the file")), "safetensors", None
    obj = _torch_load(path)
    if isinstance(obj, dict) and "format" in obj:
        ckpt = _parse_capgate(obj, path)
        return ckpt.state_dict, f"capgate {ckpt.kind} checkpoint", ckpt
    what = "the file"
    if isinstance(obj, dict):
        for key in _WRAPPER_KEYS:
            if isinstance(obj.get(key), dict):
                obj, what = obj[key], f"its {key!r} entry"
                break
    return _strip_module(_tensor_dict(obj, path, what)), "state dict", None


def _strip_module(sd: dict[str, Tensor]) -> dict[str, Tensor]:
    if sd and all(k.startswith("module.") for k in sd):
        return {k[len("module."):]: v for k, v in sd.items()}
    return sd
