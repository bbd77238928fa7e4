"""Per-epoch training state: a fit killed after epoch k and resumed ends exactly where an
uninterrupted fit ends (weights, optimizer, scheduler, RNG draws, metrics CSV)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from capgate.spec.model import Recipe
from capgate.train.fit import fit
from capgate.train.recipe import seed_everything
from capgate.train.resume import STATE_NAME


class Killed(Exception):
    """Stands in for a SIGKILL / lost node in the middle of an epoch."""


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


X = torch.linspace(-1, 1, 24).reshape(12, 2)
Y = (X[:, :1] * 3 - X[:, 1:]).clone()


def make_model() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Dropout(0.3), torch.nn.ReLU(), torch.nn.Linear(8, 1))


def loss_fn(model, batch, device):  # noqa: ANN001, ANN201
    x, y = batch
    # draws from every global RNG a run may use, so a missed RNG state would show
    noise = 1e-3 * (random.random() + float(np.random.rand()))
    return torch.nn.functional.mse_loss(model(x.to(device)), y.to(device)) + noise, len(x)


def train(tmp: Path, epochs: int, state: Path | None, kill_in_epoch: int | None = None) -> tuple:
    recipe = Recipe(optimizer="adamw", lr=0.05, epochs=epochs, warmup_steps=3, schedule="cosine", batch_size=4)
    gen = seed_everything(7)
    model = make_model()
    calls = {"n": 0}

    def batches():  # noqa: ANN202
        calls["n"] += 1
        order = torch.randperm(len(X), generator=gen)
        for i in range(0, len(X), 4):
            if kill_in_epoch is not None and calls["n"] == kill_in_epoch and i == 4:
                raise Killed  # mid-epoch: this epoch's work is lost
            j = order[i:i + 4]
            yield X[j], Y[j]

    history = fit(model, batches, 3, recipe, torch.device("cpu"), loss_fn, tmp / "metrics.csv", state=state,
                  generator=gen)
    return model, history, (tmp / "metrics.csv").read_text()


def test_kill_after_epoch_k_then_resume_is_identical_to_an_uninterrupted_fit(tmp_path: Path, caplog) -> None:  # noqa: ANN001
    whole, whole_hist, whole_csv = train(tmp_path / "a", 5, None)
    state = tmp_path / "b" / STATE_NAME
    with pytest.raises(Killed):
        train(tmp_path / "b", 5, state, kill_in_epoch=3)  # epochs 1, 2 saved; killed inside epoch 3
    assert torch.load(state, weights_only=True)["epoch"] == 2  # tensors and plain values only
    with caplog.at_level("INFO", logger="capgate.train.resume"):
        resumed, hist, csv_text = train(tmp_path / "b", 5, state)
    # it resumed (a restart from epoch 1 would give the same numbers, so this is what shows it)
    assert "after epoch 2 (" in caplog.text and "unreadable" not in caplog.text
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert [h.loss for h in hist] == [h.loss for h in whole_hist]
    assert len(hist) == 5
    strip = [line.rsplit(",", 1)[0] for line in whole_csv.splitlines()]  # the seconds column differs
    assert [line.rsplit(",", 1)[0] for line in csv_text.splitlines()] == strip
    assert torch.load(state, weights_only=True)["epoch"] == 5


def test_a_finished_state_trains_nothing_more_and_a_torn_state_restarts(tmp_path: Path) -> None:
    state = tmp_path / STATE_NAME
    first, _, _ = train(tmp_path, 2, state)
    again, hist, _ = train(tmp_path, 2, state)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), again.state_dict().values()))
    assert len(hist) == 2
    state.write_bytes(b"torn")
    fresh, hist, _ = train(tmp_path, 2, state)
    assert len(hist) == 2 and all(torch.equal(a, b) for a, b in zip(first.state_dict().values(),
                                                                    fresh.state_dict().values()))


class HardKill(BaseException):
    """Not an Exception: train_one_run records failures, a kill must go straight through."""


@pytest.mark.slow
def test_a_real_run_killed_mid_way_resumes_to_the_same_weights_and_metrics(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """train_one_run (the function every trial calls) on the tiny world: killed inside epoch 3 of
    4, run again on the same storage, it ends with exactly the records of an uninterrupted run."""
    from helpers import tiny_spec

    import capgate.train.fit as fit_module
    from capgate.spec.model import expand
    from capgate.spec.load import load_study
    from capgate.train import train_one_run
    from capgate.train.run import state_target

    spec = tiny_spec(tmp_path, name="res", rungs={"mobilenetv3": ["S-6"]}, seeds=[0], inits=("scratch",), steps=12)
    _, (run,) = expand(load_study(spec))
    whole = train_one_run(run, tmp_path / "a")
    real, calls = fit_module.train_one_epoch, {"n": 0}

    def killed_in_epoch_3(*args, **kw):  # noqa: ANN002, ANN003, ANN202
        calls["n"] += 1
        if calls["n"] == 3:
            raise HardKill
        return real(*args, **kw)

    monkeypatch.setattr(fit_module, "train_one_epoch", killed_in_epoch_3)
    with pytest.raises(HardKill):
        train_one_run(run, tmp_path / "b")
    assert torch.load(state_target(tmp_path / "b", run), weights_only=False)["epoch"] == 2
    monkeypatch.setattr(fit_module, "train_one_epoch", real)
    resumed = train_one_run(run, tmp_path / "b")
    assert [r["status"] for r in resumed] == ["ok"] * 3, resumed[0]["error"]
    metrics = ("map", "ap50", "ap75")
    assert [[r[m] for m in metrics] for r in resumed] == [[r[m] for m in metrics] for r in whole]
    assert resumed[0]["epochs"] == whole[0]["epochs"] == 4
    col = lambda p: [ln.split(",")[3] for ln in (p / "res" / "runs" / run.run_id / "metrics.csv").read_text().splitlines()]  # noqa: E731
    assert col(tmp_path / "b") == col(tmp_path / "a")  # the same loss every epoch
