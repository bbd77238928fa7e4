"""Packaging without setup.py: the wheel ships templates/, experiments/ and analysis/ (setuptools'
package-dir mapping), and an installed wheel runs `capgate demo --dry-run` and `capgate report`
from a folder outside the checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from capgate._resources import SHIPPED, shipped

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def test_no_setup_py_and_every_package_is_listed() -> None:
    assert not (REPO / "setup.py").exists()
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "capgate").rglob("__init__.py")}
    assert listed == found | set(SHIPPED.values())
    assert PYPROJECT["tool"]["setuptools"]["package-dir"] == {v: k for k, v in SHIPPED.items()}


def test_shipped_folders_resolve_in_the_checkout() -> None:
    assert shipped("templates") == REPO / "templates" and (shipped("templates") / "report.html.j2").is_file()
    assert (shipped("experiments") / "demo.yaml").is_file() and (shipped("analysis") / "demo.yaml").is_file()
    with pytest.raises(ValueError, match="valid: templates, experiments, analysis"):
        shipped("nope")


def _copy_sources(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "pyproject.toml", "MANIFEST.in",
                            "README.md", "capgate", "templates", "experiments", "analysis"],
                           cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            (dest / name).write_bytes(src.read_bytes())


@pytest.mark.slow
def test_installed_wheel_runs_demo_dry_run_and_report_outside_the_checkout(tmp_path: Path) -> None:
    from helpers import detection_truth, write_table

    src = tmp_path / "src"
    _copy_sources(src)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path / "dist"), str(src)], check=True, capture_output=True)
    wheel = next((tmp_path / "dist").glob("capgate-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder, package in SHIPPED.items():
        for f in (REPO / folder).iterdir():
            if f.is_file():
                assert f"{package.replace('.', '/')}/{f.name}" in names, f
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-compile", "--target", str(site),
                    str(wheel)], check=True, capture_output=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"PYTHONPATH": str(site), "PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path),
           "OMP_NUM_THREADS": "1"}

    def capgate(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "capgate", *args], cwd=elsewhere, env=env,
                              capture_output=True, text=True, timeout=300)

    where = subprocess.run([sys.executable, "-c", "import capgate; print(capgate.__file__)"], cwd=elsewhere,
                           env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert where == str(site / "capgate" / "__init__.py")
    demo = capgate("-q", "demo", "--dry-run")
    assert demo.returncode == 0, demo.stderr
    assert "study demo (detection): 36 runs" in demo.stdout
    assert "study demo_classification (classification): 24 runs" in demo.stdout
    shipped_spec = capgate("run-grid", "experiments/llvip_flir.yaml", "--dry-run", "--json")
    assert shipped_spec.returncode == 0, shipped_spec.stderr
    assert '"study": "llvip_flir"' in shipped_spec.stdout
    table = write_table(elsewhere / "det.parquet", detection_truth(), seed=0)
    plan = elsewhere / "plan.yaml"
    plan.write_text("n_boot: 20\n")
    rep = capgate("report", str(table), "--plan", str(plan), "-o", str(elsewhere / "out"))
    assert rep.returncode == 0, rep.stderr
    assert (elsewhere / "out" / "index.html").is_file() and (elsewhere / "out" / "summary.json").is_file()
    assert "report.css" not in rep.stderr
    assert (rep.stdout + rep.stderr).count("report written") == 1
