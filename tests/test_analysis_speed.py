"""The vectorised / faster paths give exactly what the plain versions gave (same numbers, same order)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from capgate.analysis.cells import CELL_COLUMNS, outlier_runs
from capgate.analysis.outputs import frame_csv


def _outliers_by_loop(y: pd.DataFrame, cells: pd.DataFrame, k: float) -> pd.DataFrame:
    """The per-run loop outlier_runs replaced (leave-one-out np.median)."""
    scale = cells.groupby(["study", "task", "eval_set"])["sd_mod"].median()
    keyed = y.merge(cells[[*CELL_COLUMNS, "key"]], on=list(CELL_COLUMNS), how="left")
    rows = []
    for key, g in keyed.groupby("key", sort=True):
        sc = float(scale.get((g["study"].iloc[0], g["task"].iloc[0], g["eval_set"].iloc[0]), np.nan))
        if len(g) < 3 or not np.isfinite(sc) or sc <= 0:
            continue
        vals = g["y"].to_numpy(dtype=float)
        for i, r in enumerate(g.itertuples(index=False)):
            med = float(np.median(np.delete(vals, i)))
            if vals[i] < med - k * sc:
                rows.append({"key": key, "run_id": r.run_id, "seed": int(r.seed), "value": vals[i],
                             "siblings_median": med, "scale": sc, "drop": vals[i] - med})
    return pd.DataFrame(rows, columns=["key", "run_id", "seed", "value", "siblings_median", "scale", "drop"])


def test_outlier_runs_matches_the_per_run_loop_with_odd_even_and_tied_cells():
    rng = np.random.default_rng(1)
    rows = []
    for c, n in enumerate([2, 3, 4, 5, 6, 7]):  # a 2-run cell is never judged
        vals = rng.normal(0.5, 0.01, n)
        if n == 6:
            vals[:3] = 0.5  # ties
        vals[0] -= 0.05 * (c % 2)
        for s, v in enumerate(vals):
            rows.append({"study": "s", "task": "detection", "family": "f", "backbone": f"b{c}", "train_set": "t",
                         "eval_set": "e", "shift": "in_domain", "init": "scratch", "run_id": f"r{c}_{s}", "seed": s,
                         "y": v})
    y = pd.DataFrame(rows)
    cells = y.groupby(list(CELL_COLUMNS), as_index=False).size()
    cells["key"] = cells["backbone"]
    cells["sd_mod"] = 0.01
    for k in (0.0, 1.0, 6.0):
        want = _outliers_by_loop(y, cells, k)
        got = outlier_runs(y, cells, k)
        pd.testing.assert_frame_equal(got.reset_index(drop=True), want, check_dtype=False)
    assert len(outlier_runs(y, cells, 1.0)) > 0


def test_frame_csv_reads_back_to_the_same_values():
    f = pd.DataFrame({"model": ["a", "b,c", "d"], "y": [0.1, 1 / 3, np.nan], "z": [0.0, 2.0, 1e-17],
                      "seed": [0, 1, 2], "s": pd.array(["x", None, "y"], dtype="string")})
    back = pd.read_csv(io.BytesIO(frame_csv(f)))
    assert back["model"].tolist() == ["a", "b,c", "d"]
    np.testing.assert_array_equal(back["y"].to_numpy(), f["y"].to_numpy())
    np.testing.assert_array_equal(back["z"].to_numpy(), f["z"].to_numpy())
    assert back["seed"].tolist() == [0, 1, 2]
    assert back["s"].isna().tolist() == [False, True, False]


def test_report_lists_at_most_the_largest_outlier_runs():
    from capgate.report.context import _completeness

    runs = [{"key": f"k{i}", "run_id": f"r{i}", "seed": i, "value": 0.1, "siblings_median": 0.5,
             "drop": -0.01 * (i % 7) - 0.001 * i} for i in range(250)]
    out = _completeness({"cells": [], "outlier_runs": runs})
    assert out["outliers_total"] == 250 and len(out["outliers"]) == 200
    kept = {o["run_id"] for o in out["outliers"]}
    assert min(runs, key=lambda r: r["drop"])["run_id"] in kept
    assert [o["run_id"] for o in out["outliers"]] == [r["run_id"] for r in runs if r["run_id"] in kept]
    assert len(_completeness({"cells": [], "outlier_runs": runs[:3]})["outliers"]) == 3


def test_gate_bootstrap_with_bh_is_reproducible_and_methods_say_satterthwaite():
    from capgate.analysis import analyze, build_summary, simulate_results
    from capgate.analysis.analyze import analyze_contrasts
    from capgate.report.methods import methods_paragraphs

    t = simulate_results(seed=4)
    _, _, g1 = analyze_contrasts(t, {"n_boot": 40, "correction": "bh"}, rng=7)
    _, _, g2 = analyze_contrasts(t, {"n_boot": 40, "correction": "bh"}, rng=7)
    pd.testing.assert_frame_equal(g1, g2)
    a = analyze(t, {"n_boot": 0})
    paras = methods_paragraphs(a.methods, a.models, a.plan, build_summary(a))
    assert any("Satterthwaite degrees of freedom, as lmerTest computes them" in p for p in paras)
    assert a.models[0]["df_method"].startswith("Satterthwaite")
