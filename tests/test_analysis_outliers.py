"""flag_outliers: the robust one-sided rule of capgate.analysis.outliers, by hand-checkable numbers."""

import math

import pandas as pd
import pytest

from capgate.analysis.outliers import OUTLIER_COLUMNS, flag_outliers


def _table(cells: dict[tuple[str, str], list[float]], task: str = "detection", status: dict | None = None):
    metric = "map" if task == "detection" else "top1"
    rows = []
    for (backbone, init), values in cells.items():
        for seed, v in enumerate(values):
            rid = f"{backbone}-{init}-{seed}"
            rows.append({"study": "s", "task": task, "family": "efficientnet", "backbone": backbone,
                         "train_set": "llvip/rgb", "eval_set": "llvip/rgb", "shift": "in_domain", "init": init,
                         "run_id": rid, "seed": seed, "status": (status or {}).get(rid, "ok"), metric: v})
    return pd.DataFrame(rows)


def test_collapsed_seed_is_flagged_with_its_run_id_and_z():
    out = flag_outliers(_table({("B-3", "scratch"): [0.42, 0.00, 0.44]}))
    assert list(out.columns) == list(OUTLIER_COLUMNS)
    assert out["run_id"].tolist() == ["B-3-scratch-1"]
    # med 0.42, mad 0.02 -> scale max(0.02965, 0.02, 0.042) = 0.042; z = 0.42 / 0.042 = 10
    assert out["z"].iloc[0] == pytest.approx(10.0)
    assert out["value"].iloc[0] == 0.0 and out["cell_median"].iloc[0] == pytest.approx(0.42)
    assert "B-3" in out["cell"].iloc[0] and "scratch" in out["cell"].iloc[0]
    assert "below the median 0.420" in out["reason"].iloc[0]


def test_exact_siblings_use_the_floor():
    # two seeds agree exactly (mad 0): scale = max(0, 0.02, 0.0375) = 0.0375; z = 0.328 / 0.0375 = 8.75
    out = flag_outliers(_table({("B-7", "imagenet"): [0.375, 0.047, 0.375]}))
    assert out["run_id"].tolist() == ["B-7-imagenet-1"]
    assert out["z"].iloc[0] == pytest.approx(0.328 / 0.0375)


def test_ordinary_noise_and_high_runs_are_not_flagged():
    t = _table({("B-3", "scratch"): [0.40, 0.37, 0.43], ("B-5", "scratch"): [0.30, 0.30, 0.60]})
    assert flag_outliers(t).empty  # 0.03 below with scale 0.04 is z 0.75; high runs never count


def test_two_seeds_are_never_judged_and_failed_rows_are_ignored():
    assert flag_outliers(_table({("B-3", "scratch"): [0.42, 0.0]})).empty
    t = _table({("B-3", "scratch"): [0.42, 0.0, 0.44]}, status={"B-3-scratch-1": "diverged"})
    assert flag_outliers(t).empty  # the diverged run is reported as diverged, not as an outlier
    t = _table({("B-3", "scratch"): [0.42, math.nan, 0.44, 0.41]})
    assert flag_outliers(t).empty  # NaN metrics are skipped, the three others agree


def test_threshold_is_a_parameter_and_classification_uses_top1():
    t = _table({("S-2", "scratch"): [0.50, 0.40, 0.52]}, task="classification")
    # med 0.50, mad 0.02 -> scale max(0.02965, 0.02, 0.05) = 0.05; z(0.40) = 2
    assert flag_outliers(t).empty
    out = flag_outliers(t, threshold=1.5)
    assert out["run_id"].tolist() == ["S-2-scratch-1"] and out["metric"].iloc[0] == "top1"
    with pytest.raises(ValueError, match="threshold"):
        flag_outliers(t, threshold=0)


def test_empty_table_gives_empty_frame_with_columns():
    out = flag_outliers(_table({}).reindex(columns=["task", "status", "map"]))
    assert out.empty and list(out.columns) == list(OUTLIER_COLUMNS)
