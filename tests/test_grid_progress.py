"""Progress lines: the epoch line parsed from a log, its formatting, the watch that logs an epoch
once, a grid ETA that never reads 0s while a run trains, and (slow) the lines of a tiny grid."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest

from capgate.grid import progress
from capgate.grid.live import LiveStatusHandler
from capgate.grid.progress import EpochProgress, EpochWatch, GridProgress, format_epoch, parse_epoch

LOG = ("2026-01-01 00:00:00,000 INFO capgate.grid.trial: trial of run abc starts on cpu\n"
       "2026-01-01 00:00:01,000 INFO capgate.train.fit: epoch 1: loss 2.5000 (3 steps, 3 of 24, 1.5s)\n"
       "2026-01-01 00:00:02,500 INFO capgate.train.fit: epoch 2: loss 1.2500 (3 steps, 6 of 24, 1.5s)\n")


def test_the_last_epoch_line_of_a_log_is_parsed() -> None:
    p = parse_epoch(LOG)
    assert p == EpochProgress(epoch=2, loss=1.25, done=6, total=24, seconds=1.5)
    assert p.epochs == 8  # 3 steps per epoch, 24 steps
    assert p.remaining_seconds == 18 * 0.5  # 18 steps left at 1.5 s per 3 steps
    assert parse_epoch("trial of run abc starts on cpu\n") is None


def test_the_epoch_line_reads_epoch_of_total_percent_loss_pace_eta_and_log() -> None:
    p = EpochProgress(epoch=3, loss=1.23456, done=9, total=24, seconds=12.0)
    assert format_epoch("stage imagenet 0a1b (efficientnet/B-3)", p, "/s/demo/pretrain/0a1b/stage.log") == (
        "[grid] stage imagenet 0a1b (efficientnet/B-3): epoch 3/8 (37%), loss 1.235, 12.0s/epoch, ETA 1m00s "
        "| log /s/demo/pretrain/0a1b/stage.log")
    # a step budget that ends mid-epoch: 10 steps of 4 per epoch -> 3 epochs
    assert EpochProgress(epoch=1, loss=1.0, done=4, total=10, seconds=2.0).epochs == 3


def test_the_watch_logs_each_new_epoch_once_at_its_interval(tmp_path: Path) -> None:
    log_file = tmp_path / "trial.log"
    now = [0.0]
    said: list[str] = []
    watch = EpochWatch(interval=10.0, echo=said.append, clock=lambda: now[0])
    watch.watch("abc", "run abc", log_file)
    assert watch.poll() == []  # no log yet: nothing, no error
    log_file.write_text(LOG)
    now[0] = 5.0
    assert watch.poll() == []  # inside the interval: not read
    now[0] = 10.0
    (line,) = watch.poll()
    assert line.startswith("[grid] run abc: epoch 2/8 (25%), loss 1.25, 1.5s/epoch, ETA 9s | log ")
    now[0] = 20.0
    assert watch.poll() == []  # the same epoch is not repeated
    log_file.write_text(LOG + "x INFO capgate.train.fit: epoch 3: loss 1.0000 (3 steps, 9 of 24, 1.5s)\n")
    assert watch.final("abc").startswith("[grid] run abc: epoch 3/8")  # read once more when it ends
    assert said == [line, said[1]] and watch.watched == {} and watch.latest == {}


DONE = LOG + "2026-01-01 00:00:12,000 INFO capgate.train.fit: epoch 8: loss 0.5000 (3 steps, 24 of 24, 1.5s)\n"


def test_after_its_last_epoch_a_line_and_bar_say_evaluating_not_eta_0s(tmp_path: Path) -> None:
    p = parse_epoch(DONE)
    assert p.fitted and p.remaining_seconds == 0 and p.eta_words() == "evaluating"
    assert format_epoch("run abc", p) == "[grid] run abc: epoch 8/8 (100%), loss 0.5, 1.5s/epoch, evaluating"
    assert parse_epoch(LOG).eta_words() == "ETA 9s"
    (tmp_path / "trial.log").write_text(DONE)
    tty = _Tty()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    root.handlers, live = [], LiveStatusHandler(tty, columns=200)
    root.addHandler(live)
    root.setLevel(logging.INFO)
    try:
        watch = EpochWatch(interval=0.0)
        watch.watch("abc", "run abc (x)", tmp_path / "trial.log")
        watch.poll()
    finally:
        root.handlers = saved[0]
        root.setLevel(saved[1])
    assert tty.text == "run abc [##########] 8/8 evaluating"


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _trial(tid: str, run: str) -> SimpleNamespace:
    return SimpleNamespace(trial_id=tid, config={"run": run})


def _grid(tmp_path: Path, total: int) -> tuple[GridProgress, _Clock]:
    runs = [SimpleNamespace(run_id=f"r{i}", family="efficientnet", rung="B-7", init="scratch", seed=i)
            for i in range(1, total + 1)]
    clock = _Clock()
    watch = EpochWatch(interval=0.0, echo=lambda s: None, clock=clock)
    return GridProgress(total, slots=1, runs=runs, store=SimpleNamespace(runs=tmp_path), watch=watch,
                        clock=clock), clock


def _write(tmp_path: Path, run: str, text: str) -> None:
    (tmp_path / run).mkdir(exist_ok=True)
    (tmp_path / run / "trial.log").write_text(text)


def test_the_eta_counts_each_trials_epochs_left_and_its_evaluation(tmp_path: Path) -> None:
    g, clock = _grid(tmp_path, 3)
    assert g.eta() is None and g.eta_text() == "?"
    g.on_trial_start(0, [], _trial("t1", "r1"))
    assert g.eta() is None and "ETA ?" in g.line()  # nothing has a pace yet
    _write(tmp_path, "r1", LOG)
    g.watch.poll()
    # r1 at epoch 2/8: 18 steps x 0.5 s = 9 s to train, then its evaluation: no trial finished, so one
    # epoch (1.5 s) as a floor -> 10.5 s left, a run takes 10.5 s; 2 runs queued on 1 slot
    assert g.eval_guess() == 1.5 and g.eta() == 10.5 + 2 * 10.5
    clock.now = 12.0
    _write(tmp_path, "r1", DONE)
    g.watch.poll()  # its last epoch: 1.5 s of evaluation left; a run takes 12 + 1.5 s
    assert g.eta() == 1.5 + 2 * 13.5 and g.eta_text() == "28s"
    clock.now = 14.0  # evaluating longer than the guess: its rest is unknown, a run takes at least 14 s
    assert g.eta() == 2 * 14.0
    clock.now = 15.0
    g.on_trial_result(0, [], _trial("t1", "r1"), {"status": "ok", "busy_seconds": 15.0})
    assert g.eval_seconds == [3.0]  # measured: 12 s (last epoch seen) -> 15 s (its end)
    g.on_trial_start(0, [], _trial("t2", "r2"))  # no epoch yet: the mean run (15 s); 1 run queued
    assert g.eta() == 15.0 + 15.0
    clock.now = 25.0
    _write(tmp_path, "r2", DONE)
    g.watch.poll()  # its last epoch: the measured 3 s of evaluation left
    assert g.eta() == 3.0 + 15.0


def test_the_eta_is_never_0s_while_a_trial_evaluates_it_reads_finishing(tmp_path: Path) -> None:
    g, clock = _grid(tmp_path, 1)
    g.on_trial_start(0, [], _trial("t1", "r1"))
    clock.now = 12.0
    _write(tmp_path, "r1", DONE)  # its last epoch at once: only its evaluation is left
    g.watch.poll()
    assert g.eta() == 1.5 and g.eta_text() == "2s"  # one epoch as the floor (format_eta rounds)
    clock.now = 13.2
    assert g.eta() is None and g.eta_text() == "finishing"  # 0.3 s estimated: not "0s"
    clock.now = 20.0
    assert g.eta() is None and "| ETA finishing" in g.line()  # past the guess: unknown, still running
    g.on_trial_result(0, [], _trial("t1", "r1"), {"status": "ok", "busy_seconds": 20.0})
    assert g.eta() == 0.0 and g.line().endswith("ETA 0s")  # nothing runs: now 0s is true
    g2, clock2 = _grid(tmp_path, 2)
    g2.on_trial_start(0, [], _trial("t1", "r1"))
    clock2.now = 20.0
    g2.on_trial_result(0, [], _trial("t1", "r1"), {"status": "ok", "busy_seconds": 20.0})
    g2.on_trial_start(0, [], _trial("t2", "r9"))
    clock2.now = 50.0  # longer than the mean (20 s) and no epoch seen: unknown, not 0s
    assert g2.eta() is None and g2.eta_text() == "finishing"


@pytest.mark.slow
def test_a_tiny_grid_logs_its_stage_and_trial_epochs_and_names_each_log(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import yaml

    from capgate.grid import run_grid
    from helpers import tiny_spec

    monkeypatch.setattr(progress, "POLL_SECONDS", 0.2)
    spec = tiny_spec(tmp_path, name="prog", rungs={"mobilenetv3": ["S-6"]}, seeds=[0], inits=("imagenet",))
    doc = yaml.safe_load(spec.read_text())
    doc["recipe"] = {"epochs": 4, "batch_size": 2, "resolution": 64, "warmup_steps": 1}
    doc["pretraining"]["imagenet"]["recipe"] = {"epochs": 3, "batch_size": 4, "resolution": 64}
    spec.write_text(yaml.safe_dump(doc))
    storage = tmp_path / "store"
    with caplog.at_level(logging.INFO, logger="capgate"):
        result = run_grid(spec, storage=storage, num_cpus=2)
    assert result.counts == {"ok": 2}  # the scratch baseline and the imagenet init
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("[grid]")]
    stage = next(ln for ln in lines if ln.startswith("[grid] stage imagenet ") and "| log " in ln)
    stage_log = stage.split("| log ")[1]
    assert stage_log.startswith(str(storage / "prog" / "pretrain")) and stage_log.endswith("/stage.log")
    assert Path(stage_log).is_file()
    epochs = [ln for ln in lines if ln.startswith("[grid] stage imagenet ") and ": epoch " in ln]
    assert epochs and epochs[-1].split(": epoch ")[1].startswith("3/3 (100%)")  # its last epoch, once
    assert len(epochs) == len(set(epochs))
    starts = [ln for ln in lines if " started | log " in ln]
    assert len(starts) == 2
    for start in starts:
        run_log = start.split("| log ")[1]
        assert run_log.startswith(str(storage / "prog" / "runs")) and run_log.endswith("/trial.log")
        assert Path(run_log).is_file()
    trial_epochs = [ln for ln in lines if ln.startswith("[grid] run ") and ": epoch " in ln]
    assert trial_epochs and all(ln.split("| log ")[1] in [s.split("| log ")[1] for s in starts] for ln in trial_epochs)
    assert len(trial_epochs) == len(set(trial_epochs))


def test_epoch_lines_go_through_the_log_so_q_quiets_them(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "trial.log").write_text(LOG)
    for level, expected in ((logging.WARNING, 0), (logging.INFO, 1)):  # -q sets WARNING, the default INFO
        caplog.clear()
        watch = EpochWatch(interval=0.0)
        watch.watch("abc", "run abc", tmp_path / "trial.log")
        with caplog.at_level(level, logger="capgate"):
            watch.poll()
        assert len([r for r in caplog.records if ": epoch 2/8" in r.getMessage()]) == expected


def test_the_demo_summary_repeats_no_line_the_demo_logged_as_it_ran(tmp_path: Path) -> None:
    from capgate.grid.adaptive import AdaptiveResult
    from capgate.grid.demo import DemoResult
    from capgate.grid.driver import GridResult

    grid = GridResult("demo", tmp_path / "results.parquet", 54, 0, 54, {"ok": 54})
    rounds = [{"round": 1, "runs": 54, "decided": 20, "open": 4, "line": "round 1/2: 54 runs so far; adding 4 runs"},
              {"round": 2, "runs": 58, "decided": 22, "open": 2, "line": "round 2/2: 58 runs so far; max_rounds"}]
    demo = DemoResult(grids=[grid], adaptive=[AdaptiveResult("demo", rounds, grid, "max_rounds 2 reached")],
                      wall_seconds=600.0)
    lines = demo.summary().splitlines()
    assert not any(ln.startswith("[adaptive] round") for ln in lines)  # logged live by the loop (echo=log.info)
    assert lines[-2].startswith("adaptive study demo: stopped (max_rounds 2 reached) after 2 rounds, 58 runs")
    assert lines[-1] == "demo finished in 10.0 min" and len(lines) == len(set(lines))


class _Tty:
    def __init__(self) -> None:
        self.text = ""

    def write(self, s: str) -> None:
        self.text += s

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return True


def test_on_a_terminal_epochs_are_one_live_status_line_under_the_log(tmp_path: Path) -> None:
    from capgate.grid.live import LiveStatusHandler, bar, use_live_status

    assert bar("run abc", 0.25, "2/8 ETA 9s") == "run abc [##........] 2/8 ETA 9s"  # 2.5 cells: 2 done
    tty = _Tty()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    root.handlers = [logging.StreamHandler(tty)]
    root.setLevel(logging.INFO)
    try:
        live = use_live_status(tty)
        assert isinstance(live, LiveStatusHandler) and root.handlers == [live]
        live.columns = 200
        (tmp_path / "trial.log").write_text(LOG)
        watch = EpochWatch(interval=0.0)
        watch.watch("abc", "run abc (mobilenetv3/S-6 scratch seed 0)", tmp_path / "trial.log")
        watch.poll()
        assert tty.text == "run abc [##........] 2/8 ETA 9s"  # a bar, not the plain line
        logging.getLogger("capgate.grid").info("[grid] done 1/3")
        assert tty.text.endswith("\r\x1b[K[grid] done 1/3\nrun abc [##........] 2/8 ETA 9s")  # printed above it
        watch.forget("abc")
        assert tty.text.endswith("\r\x1b[K") and live.status == {}  # the trial ended: its bar is gone
    finally:
        root.handlers = saved[0]
        root.setLevel(saved[1])
    assert use_live_status(open(tmp_path / "plain.log", "w")) is None  # a file: plain lines
