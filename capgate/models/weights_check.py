"""``check-weights``: load ImageNet weights into a standard model and look at what it predicts.

A weights file of unknown origin is loaded exactly as a study would load it
(:func:`capgate.models.initialize`, by name or by structure) into the standard model at 1000
classes, and each photograph is classified after the preprocessing of the model's published
weights (short side resized to ``input_size / crop_pct`` with the model's interpolation, centre
crop of ``input_size``; normalization happens inside the model). A right ImageNet class in the
top five says the weights, the rule that matched them and the preprocessing all work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from capgate.errors import InputError, SpecError
from capgate.models.init import MATCH_RULES, initialize
from capgate.models.ladder import StandardInfo, get_rung, standard_names
from capgate.models.standard import IMAGENET_CLASSES, build_standard

__all__ = ["check_weights", "read_image"]

_RESAMPLE = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}


def read_image(path: str | Path, info: StandardInfo) -> Tensor:
    """``[3, S, S]`` float image in ``[0, 1]`` (``S = info.input_size``), preprocessed for ``info``."""
    path = Path(path)
    try:
        with Image.open(path) as img:
            rgb = img.convert("RGB")
    except (OSError, UnidentifiedImageError) as exc:
        raise InputError(f"{path}: not a readable image ({exc}); give a JPEG or PNG photograph") from None
    size = info.input_size
    short = int(round(size / info.crop_pct))
    w, h = rgb.size
    scale = short / min(w, h)
    rgb = rgb.resize((max(size, round(w * scale)), max(size, round(h * scale))), _RESAMPLE[info.interpolation])
    left, top = (rgb.width - size) // 2, (rgb.height - size) // 2
    rgb = rgb.crop((left, top, left + size, top + size))
    pixels = torch.frombuffer(bytearray(rgb.tobytes()), dtype=torch.uint8).view(size, size, 3)
    return pixels.permute(2, 0, 1).float() / 255.0


def check_weights(model: str, weights: str | Path, images: Sequence[str | Path] = (), *,
                  match: str = "auto") -> dict[str, Any]:
    """Load ``weights`` into the standard ``model`` (1000 classes) and classify ``images``.

    Returns ``{"model", "file", "sha256", "head_loaded", "load": {rule, rule_detail, loaded, total,
    skipped, missing, mismatched, reinitialized, provenance}, "images": [{"path", "top5",
    "top5_prob"}]}`` with ``top5`` the five most probable ImageNet class indices, best first.
    """
    rung = get_rung(model)
    if rung.standard is None:
        raise SpecError(f"{model!r} is a ladder rung without an ImageNet head; check-weights takes a standard "
                        f"model: {', '.join(standard_names())}")
    if match not in MATCH_RULES:
        raise SpecError(f"match rule {match!r} is invalid; valid rules: {', '.join(MATCH_RULES)}")
    batch = [(str(path), read_image(path, rung.standard)) for path in images]  # a bad image fails before the load
    torch.manual_seed(0)  # the head stays at a fixed fresh draw if the file lacks it
    net = build_standard(rung, IMAGENET_CLASSES).eval()
    report = initialize(net, weights, part="backbone", match=match)
    head = set(net.head_keys)
    load = {"rule": report.rule, "rule_detail": report.rule_detail, "loaded": len(report.loaded),
            "total": report.total, "skipped": list(report.skipped), "missing": list(report.missing),
            "mismatched": [[k, list(a), list(b)] for k, a, b in report.mismatched],
            "reinitialized": list(report.reinitialized), "provenance": report.provenance}
    rows = []
    for path, image in batch:
        with torch.no_grad():
            probs = net(image.unsqueeze(0)).softmax(dim=1)[0]
        top = probs.topk(5)
        rows.append({"path": path, "top5": [int(i) for i in top.indices],
                     "top5_prob": [round(float(p), 4) for p in top.values]})
    return {"model": rung.name, "file": str(weights), "sha256": report.sha256,
            "head_loaded": head <= set(report.loaded), "load": load, "images": rows}
