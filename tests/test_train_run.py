"""train_one_epoch / batching / seeding units, and one real run on a tiny world."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from capgate.errors import DivergedError
from capgate.spec.model import Recipe
from capgate.train.loop import train_one_epoch
from capgate.train.recipe import make_optimizer, make_scheduler, seed_everything
from capgate.train.tensors import DetectionTensors, detection_batches


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def tiny_tensors(n: int = 6, size: int = 32) -> DetectionTensors:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 255, (n, 3, size, size), generator=g, dtype=torch.uint8)
    boxes = [torch.tensor([[2.0, 4.0, 10.0, 20.0]]) for _ in range(n)]
    labels = [torch.zeros(1, dtype=torch.int64) for _ in range(n)]
    return DetectionTensors(images, boxes, labels, torch.ones(n, 2, dtype=torch.float64), list(range(1, n + 1)))


def test_hflip_moves_boxes_with_the_image() -> None:
    data = tiny_tensors(n=1)
    x, t, _ = next(detection_batches(data, 1, torch.Generator().manual_seed(0), hflip=1.0))
    assert torch.equal(x[0], data.images[0].float().div(255).flip(-1))
    assert t[0]["boxes"].tolist() == [[22.0, 4.0, 30.0, 20.0]]  # x1' = 32 - 10, x2' = 32 - 2


def test_same_seed_same_order_and_augmentation_other_seed_differs() -> None:
    data = tiny_tensors()

    def draw(seed: int) -> list:
        gen = seed_everything(seed)
        return [(i.tolist(), x.sum().item()) for x, _, i in detection_batches(data, 2, gen, hflip=0.5, brightness=0.2)]

    assert draw(3) == draw(3)
    assert draw(3) != draw(4)


def test_eval_batches_are_unshuffled_and_unaugmented() -> None:
    data = tiny_tensors()
    idx = torch.cat([i for _, _, i in detection_batches(data, 4)])
    assert idx.tolist() == list(range(6))


def test_non_finite_loss_raises_diverged() -> None:
    model = torch.nn.Linear(2, 1)
    recipe = Recipe(lr=0.1, warmup_steps=0)
    opt = make_optimizer(list(model.parameters()), recipe)

    def loss_fn(m, batch, device):  # noqa: ANN001, ANN202
        out = m(batch)
        return (out.sum().abs() + 1) * (math.inf if batch[0, 0] > 0 else 1.0), batch.shape[0]

    batches = [torch.full((2, 2), -1.0), torch.full((2, 2), 1.0)]
    with pytest.raises(DivergedError, match="training loss became inf by step 2; lower the learning rate"):
        train_one_epoch(model, batches, opt, None, torch.device("cpu"), loss_fn=loss_fn)


def test_scheduler_warmup_then_cosine_to_zero() -> None:
    p = torch.nn.Parameter(torch.zeros(2, 2))
    recipe = Recipe(lr=1.0, warmup_steps=4, schedule="cosine", weight_decay=0.0)
    opt = make_optimizer([p], recipe)
    sched = make_scheduler(opt, recipe, 20)
    lrs = []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:4] == pytest.approx([0.2, 0.4, 0.6, 0.8])
    assert lrs[4] == pytest.approx(1.0) and lrs[-1] < 0.01
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:]))


@pytest.mark.slow
def test_train_one_run_real_tiny_world_is_seeded(tmp_path: Path) -> None:
    from helpers import tiny_spec

    from capgate.spec.model import expand
    from capgate.spec.load import load_study
    from capgate.train import train_one_run

    spec = tiny_spec(tmp_path, name="one", rungs={"mobilenetv3": ["S-6"]}, seeds=[0, 1], inits=("scratch",),
                     steps=3)
    _, runs = expand(load_study(spec))
    a = train_one_run(runs[0], tmp_path / "s1")
    b = train_one_run(runs[0], tmp_path / "s2")
    c = train_one_run(runs[1], tmp_path / "s1")
    assert [r["status"] for r in a] == ["ok"] * 3, a[0]["error"]
    assert [r["eval_set"] for r in a] == ["llvip/rgb", "flir/rgb", "llvip/ir"]
    assert [r["shift"] for r in a] == ["in_domain", "cross_dataset", "cross_modality"]
    loss = lambda s: (tmp_path / s / "one" / "runs").glob("*/metrics.csv")  # noqa: E731
    assert len(list(loss("s1"))) == 2
    ma = (tmp_path / "s1" / "one" / "runs" / runs[0].run_id / "metrics.csv").read_text()
    mb = (tmp_path / "s2" / "one" / "runs" / runs[0].run_id / "metrics.csv").read_text()
    mc = (tmp_path / "s1" / "one" / "runs" / runs[1].run_id / "metrics.csv").read_text()
    col = lambda text: [line.split(",")[3] for line in text.splitlines()[1:]]  # noqa: E731
    assert col(ma) == col(mb)  # same seed, same losses
    assert col(ma) != col(mc)  # another seed, other losses
    assert [r["map"] for r in a] == [r["map"] for r in b]
    assert a[0]["params"] == c[0]["params"] > 10_000 and a[0]["macs"] > 0
    assert a[0]["run_id"] == runs[0].run_id and a[0]["seed"] == 0 and c[0]["seed"] == 1
    assert a[0]["torch_version"] == torch.__version__ and a[0]["data_fingerprint"]


def test_grayscale_gives_equal_channels_and_draws_nothing_when_off() -> None:
    data = tiny_tensors(n=2)
    x, _, _ = next(detection_batches(data, 2, torch.Generator().manual_seed(0), grayscale=1.0))
    raw = data.images[:2].float().div(255)
    luma = 0.299 * raw[:, 0] + 0.587 * raw[:, 1] + 0.114 * raw[:, 2]
    assert torch.allclose(x[:, 0], luma) and torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 1], x[:, 2])
    # grayscale=0 draws nothing from the generator: the batches of existing recipes are unchanged
    a = [x.sum().item() for x, _, _ in detection_batches(data, 2, torch.Generator().manual_seed(1), hflip=0.5,
                                                         brightness=0.2)]
    b = [x.sum().item() for x, _, _ in detection_batches(data, 2, torch.Generator().manual_seed(1), hflip=0.5,
                                                         brightness=0.2, grayscale=0.0)]
    assert a == b


def test_stage_table_gathers_stage_quality(tmp_path: Path) -> None:
    import json

    from capgate.spec.model import DatasetRef, PretrainSpec
    from capgate.train.pretrain import stage_dir, write_stage_table

    ref = DatasetRef("imagenet", "synthetic", "train")
    first = PretrainSpec("imagenet", "classification", "efficientnet", "B-7", ref, Recipe(), {}, None)
    second = PretrainSpec("coco", "detection", "efficientnet", "B-7", ref, Recipe(), {}, first.stage_id)
    missing = PretrainSpec("imagenet", "classification", "efficientnet", "B-5", ref, Recipe(), {}, None)
    for st, q in ((first, {"split": "val", "metric": "top1", "value": 0.25, "chance": 1 / 30}),
                  (second, {"split": "val", "metric": "map", "value": 0.125, "chance": None})):
        d = stage_dir(tmp_path, "s", st.stage_id)
        d.mkdir(parents=True)
        (d / "stage.json").write_text(json.dumps({"stage_id": st.stage_id, "seconds": 2.0, "images": 8,
                                                  "quality": q}))
    out = write_stage_table(tmp_path, "s", [first, second, missing])
    assert Path(out) == tmp_path / "s" / "stages.json"
    rows = json.loads(out.read_text())["stages"]
    assert [(r["name"], r["metric"], r["value"], r["parent"]) for r in rows] == [
        ("imagenet", "top1", 0.25, None), ("coco", "map", 0.125, first.stage_id)]
    assert write_stage_table(tmp_path, "other", [missing]) is None
