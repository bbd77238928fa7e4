"""Every file ``capgate report`` and ``capgate check`` write honours the umask (all go through
capgate.store.atomic): a team on a shared store reads them with umask 0o007, nobody else with 0o077."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from helpers import FAST_PLAN, detection_truth, write_table

from capgate.check import run_check
from capgate.report import render_report


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_table(tmp_path_factory.mktemp("modes") / "det.parquet", detection_truth(), seed=0)


@pytest.mark.parametrize("mask", [0o007, 0o077])
def test_report_and_check_files_honour_the_umask(table: Path, tmp_path: Path, mask: int) -> None:
    old = os.umask(mask)
    try:
        render_report(table, tmp_path / "report", plan=FAST_PLAN)
        run_check(table, tmp_path / "baselines" / "det.json", FAST_PLAN, update_baseline=True,
                  junit=tmp_path / "junit.xml")
    finally:
        os.umask(old)
    files = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    names = {p.name for p in files}
    assert {"index.html", "summary.json", "gains.csv", "model.json", "model_frame.csv", "det.json",
            "junit.xml"} <= names
    modes = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in files}
    assert modes == {name: oct(0o666 & ~mask) for name in names}  # 0o660 with 0o007, 0o600 with 0o077
