"""``gs://`` storage against a GCS emulator (gcp-storage-emulator, the JSON API in memory): the
store's file semantics, folders that exist only because objects are under them (pyarrow lists
none without recursion, apache/arrow#35993), the endpoint carried to workers in the portable URI,
and a real Ray grid whose store is a bucket, rerun without retraining and reported from the bucket."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import unquote

import pytest
from click.testing import CliRunner

from gcsserver import gcs_server
from helpers import tiny_spec


@pytest.fixture(autouse=True)
def _environment_restored():
    """The tests point the driver at the emulator through STORAGE_EMULATOR_HOST; later tests must
    not inherit that endpoint."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_gcs_location_reads_writes_lists_and_reopens_from_its_portable_uri() -> None:
    from capgate.store.location import location

    with gcs_server() as (env, bucket):
        os.environ.update(env)
        root = location(f"gs://{bucket}/store")
        assert root.local is None and root.fs.type_name == "gcs"
        (root / "study" / "runs" / "a.json").write_text('{"x": 1}')
        (root / "study" / "runs" / "a" / "metrics.csv").write_text("epoch\n0\n")
        (root / "other" / "runs" / "b.json").write_text("{}")
        assert [f.name for f in (root / "study" / "runs").files(".json")] == ["a.json"]
        # folders that exist only as prefixes of their objects (capgate writes no directory markers)
        assert [d.name for d in root.folders()] == ["other", "study"]
        assert [d.name for d in (root / "study" / "runs").folders()] == ["a"]
        assert (root / "study").is_dir() and not (root / "nothing").is_dir()
        assert json.loads((root / "study" / "runs" / "a.json").read_text()) == {"x": 1}
        with pytest.raises(FileExistsError):
            (root / "study" / "runs" / "a.json").write_text("{}", exclusive=True)
        (root / "study" / "runs" / "c.json").write_text("{}", exclusive=True)
        with pytest.raises(FileNotFoundError):
            (root / "study" / "missing.json").read_bytes()
        (root / "study" / "runs" / "c.json").unlink()
        assert not (root / "study" / "runs" / "c.json").is_file()
        # a worker reopens it from the portable text alone, with no emulator variable of its own
        text = root.portable()
        assert text.startswith(f"gs://{bucket}/store?") and "endpoint_override=http://127.0.0.1:" in unquote(text)
        del os.environ["STORAGE_EMULATOR_HOST"]
        again = location(text)
        assert again.uri == root.uri and (again / "study" / "runs" / "a.json").read_text() == '{"x": 1}'


@pytest.mark.slow
def test_grid_on_gcs_reruns_nothing_and_reports_from_the_bucket(tmp_path: Path) -> None:
    from capgate.store.location import location
    from capgate.cli import cli
    from capgate.grid import Store, plan_grid, run_grid

    spec = tiny_spec(tmp_path, name="gcsgrid", rungs={"mobilenetv3": ["S-6"]}, seeds=[0, 1],
                     inits=("scratch", "imagenet"))
    plan = plan_grid(spec)
    with gcs_server() as (env, bucket):
        os.environ.update(env)
        uri = f"gs://{bucket}/store"
        res = run_grid(spec, storage=uri, num_cpus=2)
        assert res.n_trained == len(plan.runs) == 4 and res.counts == {"ok": 4}
        store = Store(location(uri), "gcsgrid")
        table = store.table()
        assert sorted(store.stored_ids()) == sorted(r.run_id for r in plan.runs)
        assert set(table["status"]) == {"ok"} and len(table) == 3 * len(plan.runs)
        assert all((store.runs / r.run_id / "trial.log").is_file() for r in plan.runs)
        stages = (location(uri) / "gcsgrid" / "pretrain").folders()
        assert [len(st.files("checkpoint.pt")) for st in stages] == [1]  # the imagenet stage, trained once
        started = {rid: store.read(rid)["records"][0]["started_at"] for rid in store.stored_ids()}
        again = run_grid(spec, storage=uri, num_cpus=2)
        assert again.n_trained == 0 and again.n_skipped == 4
        assert {rid: store.read(rid)["records"][0]["started_at"] for rid in store.stored_ids()} == started
        # the report reads the bucket's store root: its study folders are found by listing
        out = CliRunner().invoke(cli, ["report", uri, "-o", str(tmp_path / "rep")])
        assert out.exit_code == 0, out.output
        assert (tmp_path / "rep" / "index.html").is_file() and "4 runs" in out.output
