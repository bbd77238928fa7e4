"""capgate.schema: the one home of the results-table vocabulary and its record builder."""

import math

import pytest

from capgate.schema import (OPTIONAL_COLUMNS, PRIMARY_METRIC, REQUIRED_COLUMNS, TASK_METRICS, TASKS,
                            build_records)

BASE = {"study": "s", "task": "detection", "run_id": "abc", "family": "efficientnet",
        "backbone": "efficientnet_b0@w0.5", "params": 12345, "macs": None, "init": "scratch",
        "train_set": "llvip/rgb", "seed": 0}


def test_vocabulary_is_consistent():
    assert set(TASK_METRICS) == set(TASKS) == set(PRIMARY_METRIC)
    assert all(PRIMARY_METRIC[t] == TASK_METRICS[t][0] for t in TASKS)
    assert not set(REQUIRED_COLUMNS) & set(OPTIONAL_COLUMNS)


def test_one_record_per_eval_set_with_nan_for_missing_scores():
    recs = build_records(BASE, [("llvip/rgb", "in_domain"), ("flir/rgb", "cross_dataset")], status="ok",
                         scores={"llvip/rgb": {"map": 0.5, "ap50": 0.75}}, error=None)
    assert [r["eval_set"] for r in recs] == ["llvip/rgb", "flir/rgb"]
    assert recs[0]["map"] == 0.5 and recs[0]["ap50"] == 0.75 and math.isnan(recs[0]["ap75"])
    assert all(math.isnan(recs[1][m]) for m in TASK_METRICS["detection"])
    assert recs[0]["macs"] is None and recs[0]["params"] == 12345 and recs[0]["error"] is None
    assert all(set(REQUIRED_COLUMNS) <= set(r) for r in recs)


def test_sentinels_and_unknown_vocabulary_are_refused():
    with pytest.raises(ValueError, match="sentinel"):
        build_records({**BASE, "params": -1}, [("llvip/rgb", "in_domain")], status="failed")
    with pytest.raises(ValueError, match="valid statuses: ok, diverged, failed"):
        build_records(BASE, [("llvip/rgb", "in_domain")], status="done")
    with pytest.raises(ValueError, match="valid shifts"):
        build_records(BASE, [("llvip/rgb", "indomain")], status="ok")
    with pytest.raises(ValueError, match="valid tasks"):
        build_records({**BASE, "task": "segmentation"}, [("llvip/rgb", "in_domain")], status="ok")
    with pytest.raises(ValueError, match=r"lacks required column\(s\) \['seed'\]"):
        build_records({k: v for k, v in BASE.items() if k != "seed"}, [("llvip/rgb", "in_domain")], status="ok")


def test_failed_run_without_params_passes_validation():
    from capgate.analysis.load import validate
    import pandas as pd

    ok = build_records(BASE, [("llvip/rgb", "in_domain")], status="ok", scores={"llvip/rgb": {"map": 0.4}})
    failed = build_records({**BASE, "run_id": "def", "seed": 1, "params": None}, [("llvip/rgb", "in_domain")],
                           status="failed", error="boom")
    t = validate(pd.DataFrame(ok + failed))
    assert t["params"].isna().tolist() == [False, True]
    assert t["macs"].isna().all()  # optional and unknown: NaN, never invented
