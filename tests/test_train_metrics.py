"""Metrics against hand-computed values: COCO mAP edge cases, top-k and macro-F1."""

from __future__ import annotations

import math

import numpy as np
import pytest

from capgate.train.metrics import classification_scores, coco_map


def gt_two_boxes() -> dict:
    return {"images": [{"id": 1, "width": 100, "height": 100}, {"id": 2, "width": 100, "height": 100}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 40], "area": 800,
                             "iscrowd": 0},
                            {"id": 2, "image_id": 2, "category_id": 1, "bbox": [50, 20, 30, 30], "area": 900,
                             "iscrowd": 0}],
            "categories": [{"id": 1, "name": "person"}]}


def test_perfect_detections_score_one() -> None:
    dets = [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 40], "score": 0.9},
            {"image_id": 2, "category_id": 1, "bbox": [50, 20, 30, 30], "score": 0.8}]
    assert coco_map(gt_two_boxes(), dets) == pytest.approx({"map": 1.0, "ap50": 1.0, "ap75": 1.0})


def test_no_detections_scores_zero_not_an_error() -> None:
    assert coco_map(gt_two_boxes(), []) == {"map": 0.0, "ap50": 0.0, "ap75": 0.0}


def test_no_ground_truth_is_nan() -> None:
    gt = gt_two_boxes()
    gt["annotations"] = []
    out = coco_map(gt, [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 0.5}])
    assert all(math.isnan(v) for v in out.values())


def test_half_the_boxes_found_at_iou_between_50_and_75() -> None:
    # image 1: exact box; image 2: box shifted so IoU = 0.6 (> 0.5, < 0.75)
    # 30x30 box shifted by 7.5 px in x: overlap 22.5*30 = 675, union 2*900 - 675 = 1125, IoU 0.6
    dets = [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 40], "score": 0.9},
            {"image_id": 2, "category_id": 1, "bbox": [57.5, 20, 30, 30], "score": 0.8}]
    out = coco_map(gt_two_boxes(), dets)
    assert out["ap50"] == pytest.approx(1.0)
    # at IoU 0.75 only the first (higher-scored) detection matches: precision 1 up to recall 0.5
    assert out["ap75"] == pytest.approx(0.50495, abs=1e-4)  # 51 of 101 recall points
    assert 0.5 < out["map"] < 1.0


def test_classification_scores_hand_computed() -> None:
    # 4 samples, 3 classes; predictions 0, 1, 1, 2 for labels 0, 1, 2, 2
    logits = np.array([[3.0, 1.0, 0.0], [0.0, 2.0, 1.0], [0.0, 2.0, 1.5], [0.0, 1.0, 3.0]])
    labels = np.array([0, 1, 2, 2])
    out = classification_scores(logits, labels, 3)
    assert out["top1"] == pytest.approx(0.75)
    assert out["top5"] == pytest.approx(1.0)  # k = min(5, classes) = 3
    # F1: class 0 = 1; class 1: tp1 fp1 fn0 -> 2/3; class 2: tp1 fp0 fn1 -> 2/3
    assert out["macro_f1"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)


def test_classification_top5_with_many_classes() -> None:
    logits = np.tile(np.arange(10.0), (2, 1))  # ranking 9, 8, 7, 6, 5, ...
    out = classification_scores(logits, np.array([5, 4]), 10)
    assert out["top1"] == 0.0 and out["top5"] == pytest.approx(0.5)
