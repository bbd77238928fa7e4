"""Scores: COCO mAP@[.5:.95], AP50, AP75 with pycocotools; top-1, top-5 and macro-F1.

COCO conventions kept on purpose: ground truth comes from ``DetectionDataset.to_coco()``
(category id = label index + 1, original image pixels), detections are mapped back to those
pixels. pycocotools' ``loadRes([])`` raises IndexError, so a model with no detections scores
0.0 without calling it; a -1 from COCOeval (no ground truth for the category) becomes NaN.
"""

from __future__ import annotations

import contextlib
import io
import math
from typing import Any

import numpy as np

__all__ = ["coco_map", "classification_scores"]


def coco_map(gt: dict[str, Any], detections: list[dict[str, Any]]) -> dict[str, float]:
    """COCO box metrics of ``detections`` (``image_id``, ``category_id``, ``bbox`` xywh,
    ``score``) against the ground-truth dict ``gt``: ``{"map", "ap50", "ap75"}`` in 0..1."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if not gt.get("annotations"):
        return {"map": math.nan, "ap50": math.nan, "ap75": math.nan}
    if not detections:
        return {"map": 0.0, "ap50": 0.0, "ap75": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = {"info": {}, **gt}
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(detections)
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats = [float(s) if s >= 0 else math.nan for s in ev.stats[:3]]
    return {"map": stats[0], "ap50": stats[1], "ap75": stats[2]}


def classification_scores(logits: np.ndarray, labels: np.ndarray, num_classes: int) -> dict[str, float]:
    """top-1, top-5 (top-k with k = min(5, classes)) and macro-F1 over the classes present in
    ``labels`` or predicted (a class with no support and no prediction is left out).

    ``logits`` is [N, C]; ``labels`` [N] integer classes.
    """
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) == 0:
        return {"top1": math.nan, "top5": math.nan, "macro_f1": math.nan}
    pred = logits.argmax(axis=1)
    k = min(5, logits.shape[1])
    topk = np.argsort(-logits, axis=1, kind="stable")[:, :k]
    top1 = float((pred == labels).mean())
    top5 = float((topk == labels[:, None]).any(axis=1).mean())
    f1s = []
    for c in range(num_classes):
        tp = int(((pred == c) & (labels == c)).sum())
        fp = int(((pred == c) & (labels != c)).sum())
        fn = int(((pred != c) & (labels == c)).sum())
        if tp + fp + fn == 0:
            continue
        f1s.append(2 * tp / (2 * tp + fp + fn))
    return {"top1": top1, "top5": top5, "macro_f1": float(np.mean(f1s)) if f1s else math.nan}
