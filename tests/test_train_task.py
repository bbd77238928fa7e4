"""The task object: one set of operations per task, no string forks in runs and stages."""

from __future__ import annotations

from pathlib import Path

import pytest

from capgate.schema import PRIMARY_METRIC, TASK_METRICS, TASKS
from capgate.train.task import CLASSIFICATION, DETECTION, get_task

REPO = Path(__file__).resolve().parents[1]


def test_one_task_object_per_schema_task() -> None:
    assert tuple(get_task(t).name for t in TASKS) == TASKS
    assert DETECTION.metrics == TASK_METRICS["detection"] and CLASSIFICATION.primary_metric == PRIMARY_METRIC[
        "classification"]
    with pytest.raises(ValueError, match="unknown task 'segmentation'; valid tasks: detection, classification"):
        get_task("segmentation")


def test_which_part_a_stage_initializes() -> None:
    assert DETECTION.init_part("detection") == "detector"
    assert DETECTION.init_part("classification") == "backbone"
    assert CLASSIFICATION.init_part("detection") == "backbone"


@pytest.mark.parametrize("module", ["capgate/train/run.py", "capgate/train/pretrain.py"])
def test_runs_and_stages_do_not_fork_on_the_task_name(module: str) -> None:
    text = (REPO / module).read_text()
    assert '"detection"' not in text and '"classification"' not in text


@pytest.mark.slow
def test_classification_fit_and_evaluate_through_the_task(tmp_path: Path) -> None:
    import torch

    from capgate.models import get_rung
    from capgate.spec.model import Recipe
    from capgate.train.tensors import ClassificationTensors

    gen = torch.Generator().manual_seed(0)
    data = ClassificationTensors(torch.randint(0, 255, (8, 3, 32, 32), dtype=torch.uint8, generator=gen),
                                 torch.tensor([0, 1] * 4))
    model = CLASSIFICATION.build_model(get_rung("B-7"), 2, 32)
    recipe = Recipe(steps=2, batch_size=4, resolution=32, warmup_steps=0)
    history = CLASSIFICATION.fit(model, data, recipe, gen, torch.device("cpu"), tmp_path / "m.csv")
    assert len(history) == 1 and (tmp_path / "m.csv").read_text().count("\n") == 2
    scores = CLASSIFICATION.evaluate(model, data, None, torch.device("cpu"), 2)
    assert set(scores) == set(CLASSIFICATION.metrics) and 0.0 <= scores["top1"] <= 1.0
