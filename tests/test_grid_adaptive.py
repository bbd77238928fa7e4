"""run-grid --until-resolved: the loop over run_grid, its recorded rounds, and resuming after a kill."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

import capgate.grid.adaptive as adaptive
from capgate.cli import cli
from capgate.errors import SpecError
from capgate.schema import PRIMARY_METRIC
from capgate.grid.adaptive import STATE_NAME, run_until_resolved, seeded_runs
from capgate.grid.driver import GridResult
from capgate.grid.plan import plan_grid
from helpers import run_main, tiny_classification_spec

PLAN = {"sequential": {"max_seeds": 7, "schedule": [2, 3, 5, 7], "spending": "pocock"}}


def tiny_spec(tmp_path: Path, seeds: int = 2) -> Path:
    return tiny_classification_spec(tmp_path, study="tinyadapt", seeds=seeds)


class FakeGrid:
    """Stands in for run_grid: 'trains' a run by drawing its metric from a known truth (mobilenetv3 gains
    +5 pp from imagenet, efficientnet nothing), stores it once per run_id, and writes the table."""

    def __init__(self, kill_after: int | None = None, gain: float = 0.05) -> None:
        self.store: dict[str, list[dict]] = {}
        self.trained: list[str] = []
        self.kill_after = kill_after
        self.gain = gain

    def __call__(self, spec_path, overrides=(), *, storage, raise_on_failure, extra_runs=(), **kw) -> GridResult:
        plan = plan_grid(spec_path, overrides)
        runs = [*plan.runs, *extra_runs]
        assert len({r.run_id for r in runs}) == len(runs)
        todo = [r for r in runs if r.run_id not in self.store]
        for r in todo:
            if self.kill_after is not None and len(self.trained) >= self.kill_after:
                self.kill_after = None
                raise KeyboardInterrupt("killed mid-round")
            self.trained.append(r.run_id)
            self.store[r.run_id] = self._records(r, self.gain)
        rows = [rec for r in runs for rec in self.store[r.run_id]]
        path = Path(storage) / plan.study.study / "results.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_csv(path, index=False)
        return GridResult(plan.study.study, path, len(runs), len(todo), len(runs) - len(todo), {"ok": len(runs)})

    @staticmethod
    def _records(r, gain_if_mobilenet: float) -> list[dict]:
        u = int(hashlib.sha1(r.run_id.encode()).hexdigest()[:8], 16)
        rng = np.random.default_rng(u)
        seed_effect = np.random.default_rng(r.seed + 1000 * (r.family == "mobilenetv3")).normal(0, 0.004)
        gain = gain_if_mobilenet if (r.family == "mobilenetv3" and r.init == "imagenet") else 0.0
        backbone = r.build_rung().backbone_name
        out = []
        for e in r.train_set.evals:
            out.append({"study": r.study, "task": r.task, "run_id": r.run_id, "family": r.family, "backbone": backbone,
                        "params": 50_000 if r.family == "efficientnet" else 40_000, "init": r.init,
                        "train_set": r.train_set.name, "eval_set": e.name, "shift": e.shift, "seed": r.seed,
                        "status": "ok", PRIMARY_METRIC[r.task]: 0.5 + gain + seed_effect + rng.normal(0, 0.004)})
        return out


def test_seeded_runs_replace_only_the_seed(tmp_path: Path) -> None:
    base = plan_grid(tiny_spec(tmp_path)).runs
    r0 = base[0]
    key = (r0.study, r0.task, r0.family, r0.build_rung().backbone_name, r0.train_set.name, r0.init)
    new = seeded_runs(base, {key: {5, 2}})
    assert [r.seed for r in new] == [2, 5]
    assert all(r.run_id not in {b.run_id for b in base} for r in new)
    assert new[0].to_dict() | {"seed": r0.seed} == r0.to_dict()
    with pytest.raises(SpecError, match="match no run of the spec"):
        seeded_runs(base, {("x", *key[1:]): {3}})


def test_loop_adds_seeds_where_open_and_stops_when_done(tmp_path: Path, monkeypatch) -> None:
    fake = FakeGrid()
    monkeypatch.setattr(adaptive, "run_grid", fake)
    lines: list[str] = []
    res = run_until_resolved(tiny_spec(tmp_path), plan=PLAN, storage=tmp_path / "s", echo=lines.append)
    assert res.rounds[0]["runs"] == 8 and res.rounds[0]["trained"] == 8  # 2 rungs x 2 inits x 2 seeds
    assert len(res.rounds) >= 2 and res.rounds[-1]["open"] == res.undecidable
    assert res.stopped.startswith("done")
    assert len(fake.trained) == len(set(fake.trained)) == res.rounds[-1]["runs"]
    assert all(line.startswith("[adaptive] round ") and "runs so far" in line and "contrasts open" in line
               for line in lines)
    table = pd.read_csv(res.grid.table)
    seeds = table.drop_duplicates("run_id").groupby(["family", "init"])["seed"].nunique()
    assert set(seeds) <= {2, 3, 5, 7} and seeds["efficientnet"].min() > 2  # the null family was grown
    assert seeds.loc["efficientnet", "imagenet"] == seeds.loc["efficientnet", "scratch"]  # both arms
    state = json.loads((tmp_path / "s" / "tinyadapt" / STATE_NAME).read_text())
    assert len(state["rounds"]) == len(res.rounds) - 1


def test_a_kill_mid_round_loses_nothing_and_trains_nothing_twice(tmp_path: Path, monkeypatch) -> None:
    spec = tiny_spec(tmp_path)
    whole = FakeGrid()
    monkeypatch.setattr(adaptive, "run_grid", whole)
    ref = run_until_resolved(spec, plan=PLAN, storage=tmp_path / "a", max_rounds=3, echo=lambda s: None)
    assert ref.rounds[0]["added"] >= 2 and len(ref.rounds) == 3
    fake = FakeGrid(kill_after=ref.rounds[0]["runs"] + 1)  # round 1 trains 8, the kill comes during round 2
    monkeypatch.setattr(adaptive, "run_grid", fake)
    with pytest.raises(KeyboardInterrupt):
        run_until_resolved(spec, plan=PLAN, storage=tmp_path / "b", max_rounds=3, echo=lambda s: None)
    again = run_until_resolved(spec, plan=PLAN, storage=tmp_path / "b", max_rounds=3, echo=lambda s: None)
    assert len(fake.trained) == len(set(fake.trained))  # nothing trained twice
    assert set(fake.trained) == set(whole.trained)  # nothing lost: the same runs as without the kill
    assert again.rounds[0]["round"] == 2 and again.rounds[-1]["round"] == ref.rounds[-1]["round"]
    assert again.rounds[-1]["runs"] == ref.rounds[-1]["runs"]


def test_loop_refuses_a_plan_without_a_sequential_design(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="sequential"):
        run_until_resolved(tiny_spec(tmp_path), plan={}, storage=tmp_path / "s")
    res = CliRunner().invoke(cli, ["run-grid", str(tiny_spec(tmp_path)), "--max-rounds", "2"])
    assert res.exit_code == 2 and "--until-resolved" in res.output


def _said(capsys: pytest.CaptureFixture) -> list[str]:
    """Every non-empty line the command printed, stdout and stderr (the log) together."""
    out = capsys.readouterr()
    return [ln for ln in (out.out + out.err).splitlines() if ln.strip()]


def test_the_cli_says_each_round_line_once(tmp_path: Path, monkeypatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(adaptive, "run_grid", FakeGrid())
    plan = tmp_path / "seq.yaml"
    plan.write_text(yaml.safe_dump(PLAN))
    code = run_main(["run-grid", str(tiny_spec(tmp_path)), "--storage", str(tmp_path / "s"), "--until-resolved",
                     "--plan", str(plan), "--max-rounds", "3"])
    lines = _said(capsys)
    assert code == 0, lines
    rounds = [ln for ln in lines if "[adaptive] round " in ln]
    assert [ln.split("[adaptive] ")[1][:10] for ln in rounds] == ["round 1/3:", "round 2/3:", "round 3/3:"]
    assert len(lines) == len(set(lines)), lines  # no line twice: the summary adds only the stop line and the grid's
    assert lines[-3].startswith("adaptive study tinyadapt: stopped (") and lines[-2].startswith("study tinyadapt: ")


def test_the_demo_logs_each_round_line_once(tmp_path: Path, monkeypatch, capsys: pytest.CaptureFixture) -> None:
    import capgate.grid.demo as demo

    fake = FakeGrid()
    monkeypatch.setattr(adaptive, "run_grid", fake)
    monkeypatch.setattr(demo, "run_grid", fake)
    code = run_main(["demo", "--storage", str(tmp_path / "s"), "--no-report", "--budget-min", "0"])
    lines = _said(capsys)
    assert code == 0, lines
    rounds = [ln for ln in lines if "[adaptive] round " in ln]
    assert rounds and len(rounds) == len(set(rounds)) == int(rounds[-1].split("round ")[1].split("/")[0])
    assert len(lines) == len(set(lines)), lines


@pytest.mark.slow
def test_until_resolved_on_a_real_tiny_grid_through_ray(tmp_path: Path) -> None:
    spec = tiny_spec(tmp_path)
    plan = tmp_path / "seq.yaml"
    plan.write_text(yaml.safe_dump(PLAN))
    storage = tmp_path / "store"
    args = ["run-grid", str(spec), "--storage", str(storage), "--until-resolved", "--plan", str(plan),
            "--max-rounds", "2", "--max-concurrent", "2"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "[adaptive] round 1/2: 8 runs so far (8 trained this round)" in res.output
    rounds = [ln for ln in res.output.splitlines() if "[adaptive] round " in ln]
    assert len(rounds) == len(set(rounds)) and len(rounds) <= 2  # each once, through Ray's logging too
    table = pd.read_parquet(storage / "tinyadapt" / "results.parquet")
    n = table["run_id"].nunique()
    assert n >= 8 and set(table["status"]) <= {"ok", "diverged", "failed"}
    again = CliRunner().invoke(cli, args)  # the same command: everything stored, nothing trained
    assert again.exit_code == 0, again.output
    assert "0 trained this round" in again.output


def test_a_round_budget_caps_the_new_runs_and_a_before_round_hook_can_stop_the_loop(tmp_path: Path,
                                                                                    monkeypatch) -> None:
    fake = FakeGrid(gain=0.0)  # both families null: both sites open after round 1
    monkeypatch.setattr(adaptive, "run_grid", fake)
    free = run_until_resolved(tiny_spec(tmp_path), plan=PLAN, storage=tmp_path / "a", max_rounds=2,
                              echo=lambda s: None)
    assert free.rounds[0]["added"] == 4  # 2 sites x 2 arms x 1 seed (the next look is at 3)
    fake = FakeGrid(gain=0.0)
    monkeypatch.setattr(adaptive, "run_grid", fake)
    capped = run_until_resolved(tiny_spec(tmp_path), plan=PLAN, storage=tmp_path / "b", max_rounds=2, max_runs=3,
                                echo=lambda s: None)
    assert capped.rounds[0]["added"] == 2 and capped.rounds[1]["trained"] == 2  # one site's pair fits in 3
    seen: list[int] = []

    def stop_before(advice, table) -> str:
        seen.append(advice.n_runs)
        assert set(table["run_id"]) == set(fake.trained)
        return "time budget: over"

    fake = FakeGrid(gain=0.0)
    monkeypatch.setattr(adaptive, "run_grid", fake)
    stopped = run_until_resolved(tiny_spec(tmp_path), plan=PLAN, storage=tmp_path / "c", max_rounds=3,
                                 before_round=stop_before, echo=lambda s: None)
    assert seen == [free.rounds[0]["added"]] and stopped.stopped == "time budget: over"
    assert len(stopped.rounds) == 1 and len(fake.trained) == 8  # nothing beyond the spec's grid
    assert not (tmp_path / "c" / "tinyadapt" / STATE_NAME).exists()  # a skipped round is not recorded
