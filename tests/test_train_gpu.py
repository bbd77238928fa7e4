"""The GPU path without a GPU: recipe.amp / channels_last validation and resolution, device
placement of every batch tensor (checked on the meta device), autocast and GradScaler in the
step, CUDA peak memory (None on CPU, torch.cuda.max_memory_allocated on CUDA), the fractional-GPU
resources handed to Ray Tune, and the smoke script on CPU. True CUDA tests skip without CUDA."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
import yaml

from capgate.errors import SpecError
from capgate.spec.model import AMP_MODES, Recipe, Resources
from capgate.train import recipe as rc
from capgate.train.fit import METRICS_COLUMNS, fit, run_peak_memory
from capgate.train.loop import (EpochStats, classification_loss, detection_loss, map_tensors, pinned_batches,
                                to_device, train_one_epoch)

REPO = Path(__file__).resolve().parents[1]
CPU, CUDA, META = torch.device("cpu"), torch.device("cuda"), torch.device("meta")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


# ---------------------------------------------------------------------------------------------
# recipe.amp and recipe.channels_last in the spec


def test_recipe_defaults_are_fp32_and_nchw() -> None:
    r = Recipe()
    assert r.amp == "off" and r.channels_last is False
    assert AMP_MODES == ("off", "auto", "bf16", "fp16")


def _recipe_from(raw: dict, where: str) -> Recipe:
    from capgate.spec.load import _recipe

    return _recipe(raw, where)


def test_recipe_amp_and_channels_last_from_yaml() -> None:
    r = _recipe_from(yaml.safe_load("{amp: bf16, channels_last: true}"), "recipe")
    assert (r.amp, r.channels_last) == ("bf16", True)
    # YAML 1.1 reads a bare `off` as false: it means "off", not an error
    assert _recipe_from(yaml.safe_load("{amp: off}"), "recipe").amp == "off"


@pytest.mark.parametrize("raw, message", [
    ({"amp": "fp8"}, "spec key 'recipe.amp' has invalid value 'fp8'; valid choices: off, auto, bf16, fp16"),
    ({"amp": True}, "spec key 'recipe.amp' = true is ambiguous; valid choices: off, auto, bf16, fp16"),
    ({"channels_last": "yes"}, "spec key 'recipe.channels_last' must be true or false, got 'yes'"),
])
def test_recipe_bad_amp_or_channels_last_name_the_choices(raw: dict, message: str) -> None:
    with pytest.raises(SpecError) as exc:
        _recipe_from(raw, "recipe")
    assert str(exc.value) == message


# ---------------------------------------------------------------------------------------------
# resolution per device (no GPU needed: the device is only inspected)


@pytest.mark.parametrize("amp, device, bf16_ok, dtype", [
    ("off", CPU, True, None), ("off", CUDA, True, None),
    ("auto", CPU, True, None), ("auto", CUDA, True, torch.bfloat16), ("auto", CUDA, False, torch.float16),
    ("bf16", CPU, True, torch.bfloat16), ("bf16", CUDA, True, torch.bfloat16),
    ("fp16", CUDA, True, torch.float16),
])
def test_resolve_amp(monkeypatch: pytest.MonkeyPatch, amp: str, device: torch.device, bf16_ok: bool,
                     dtype: torch.dtype | None) -> None:
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16_ok)
    assert rc.resolve_amp(amp, device) is dtype


def test_fp16_on_cpu_is_refused_with_the_fix() -> None:
    with pytest.raises(SpecError, match=r"recipe.amp = 'fp16' needs a CUDA device \(this run is on cpu\); "
                                        r"use --set recipe.amp=bf16 or --set recipe.amp=auto on CPU"):
        rc.resolve_amp("fp16", CPU)
    with pytest.raises(SpecError, match="valid choices: off, auto, bf16, fp16"):
        rc.resolve_amp("half", CPU)


def test_grad_scaler_only_for_fp16_on_cuda() -> None:
    assert rc.make_grad_scaler(None, CUDA) is None
    assert rc.make_grad_scaler(torch.bfloat16, CUDA) is None
    assert rc.make_grad_scaler(torch.float16, CPU) is None
    with warnings.catch_warnings():  # without CUDA the scaler warns that it disables itself
        warnings.simplefilter("ignore")
        scaler = rc.make_grad_scaler(torch.float16, CUDA)
    assert isinstance(scaler, torch.amp.GradScaler)


def test_precision_and_device_names() -> None:
    assert [rc.precision_name(d) for d in (None, torch.bfloat16, torch.float16)] == ["fp32", "bf16", "fp16"]
    assert rc.device_name(CPU) == "cpu"


def test_cudnn_benchmark_on_cuda_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    rc.prepare_device(CPU)
    assert torch.backends.cudnn.benchmark is False
    rc.prepare_device(CUDA)  # only sets a flag: no GPU needed
    assert torch.backends.cudnn.benchmark is True


def test_prepare_model_channels_last_and_device() -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    rc.prepare_model(model, Recipe(channels_last=True), META)
    w = model[0].weight
    assert w.device.type == "meta" and w.is_contiguous(memory_format=torch.channels_last)
    assert not w.is_contiguous()
    plain = rc.prepare_model(torch.nn.Conv2d(3, 4, 3), Recipe(), CPU)
    assert plain.weight.is_contiguous()


def test_to_device_channels_last() -> None:
    x = torch.zeros(2, 3, 8, 8)
    y = to_device(x, META, channels_last=True)
    assert y.device.type == "meta" and y.is_contiguous(memory_format=torch.channels_last)
    assert to_device(x, CPU).is_contiguous()


# ---------------------------------------------------------------------------------------------
# every tensor on the run's device


class _Recorder(torch.nn.Module):
    """Stands in for a detector/classifier and records where its inputs live."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, torch.device, bool]] = []

    def forward(self, x, targets=None):  # noqa: ANN001, ANN201
        self.seen.append(("images", x.device, x.is_contiguous(memory_format=torch.channels_last)))
        if targets is not None:
            for t in targets:
                for k, v in t.items():
                    self.seen.append((k, v.device, False))
            return {"cls": x.sum(), "box": x.mean()}
        return x.flatten(1)[:, :3]


def test_detection_loss_moves_images_boxes_and_labels() -> None:
    m = _Recorder()
    targets = [{"boxes": torch.tensor([[1.0, 2.0, 5.0, 6.0]]), "labels": torch.zeros(1, dtype=torch.int64)}
               for _ in range(2)]
    loss, n = detection_loss(m, (torch.zeros(2, 3, 8, 8), targets, torch.arange(2)), META, channels_last=True)
    assert n == 2 and loss.device.type == "meta"
    assert [k for k, _, _ in m.seen] == ["images", "boxes", "labels", "boxes", "labels"]
    assert all(d.type == "meta" for _, d, _ in m.seen)
    assert m.seen[0][2]  # images in channels_last


def test_classification_loss_moves_images_and_labels_non_blocking(monkeypatch: pytest.MonkeyPatch) -> None:
    m = _Recorder()
    x, y = torch.zeros(2, 3, 4, 4), torch.tensor([0, 2])
    moved = []
    orig = torch.Tensor.to

    def spy(self, *a, **k):  # noqa: ANN001, ANN202
        out = orig(self, *a, **k)
        moved.append((tuple(self.shape), out.device.type, k.get("non_blocking")))
        return out

    monkeypatch.setattr(torch.Tensor, "to", spy)
    loss, n = classification_loss(m, (x, y), CPU)
    monkeypatch.undo()
    assert n == 2 and math.isfinite(float(loss))
    assert ((2, 3, 4, 4), "cpu", True) in moved and ((2,), "cpu", True) in moved


def test_map_tensors_reaches_every_tensor_of_a_detection_batch() -> None:
    batch = (torch.zeros(2, 3, 4, 4), [{"boxes": torch.zeros(1, 4), "labels": torch.zeros(1, dtype=torch.int64)}],
             torch.arange(2))
    out = map_tensors(batch, lambda t: t.to("meta"))
    assert isinstance(out, tuple) and isinstance(out[1], list) and set(out[1][0]) == {"boxes", "labels"}
    assert [t.device.type for t in (out[0], out[1][0]["boxes"], out[1][0]["labels"], out[2])] == ["meta"] * 4


def test_pinned_batches_keeps_non_cpu_tensors_as_they_are() -> None:
    t = torch.zeros(2, device="meta")
    (out,) = list(pinned_batches([(t, [{"boxes": t}])]))
    assert out[0] is t and out[1][0]["boxes"] is t  # nothing to pin: no CUDA call is made


@needs_cuda
def test_pinned_batches_pins_cpu_tensors() -> None:
    (out,) = list(pinned_batches([(torch.zeros(2, 3), [{"boxes": torch.zeros(1, 4)}])]))
    assert out[0].is_pinned() and out[1][0]["boxes"].is_pinned()


# ---------------------------------------------------------------------------------------------
# autocast and the GradScaler inside the step


class _TinyNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4, 3)
        self.autocast: list[tuple[bool, torch.dtype]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.autocast.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))
        return self.fc(self.conv(x).mean((2, 3)))


def _cls_batches(n: int = 3) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return [(torch.rand(4, 3, 8, 8, generator=g), torch.tensor([0, 1, 2, 0])) for _ in range(n)]


def test_train_one_epoch_runs_the_forward_under_cpu_bf16_autocast() -> None:
    net = _TinyNet()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    stats = train_one_epoch(net, _cls_batches(), opt, None, CPU, loss_fn=classification_loss,
                            amp_dtype=torch.bfloat16)
    assert net.autocast == [(True, torch.bfloat16)] * 3
    assert stats.steps == 3 and math.isfinite(stats.loss) and stats.peak_mem_bytes is None
    assert net.conv.weight.dtype == torch.float32  # master weights stay fp32
    net.autocast.clear()
    train_one_epoch(net, _cls_batches(1), opt, None, CPU, loss_fn=classification_loss)
    assert net.autocast == [(False, torch.get_autocast_dtype("cpu"))]


def test_scaler_scales_then_unscales_before_clipping() -> None:
    net = _TinyNet()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 12)
    before = net.fc.weight.detach().clone()
    train_one_epoch(net, _cls_batches(1), opt, None, CPU, loss_fn=classification_loss, grad_clip=0.5,
                    scaler=scaler)
    grads = [p.grad for p in net.parameters()]
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    assert float(norm) <= 0.5 + 1e-5  # clipped after unscaling (scaled grads would be ~4096x)
    assert not torch.equal(before, net.fc.weight)  # the scaler stepped the optimizer
    assert scaler.get_scale() == 2.0 ** 12  # no overflow, scale unchanged on the first step


# ---------------------------------------------------------------------------------------------
# CUDA peak memory


def test_peak_memory_is_none_off_cuda() -> None:
    assert rc.peak_memory(CPU) is None and rc.peak_memory(META) is None
    rc.reset_peak_memory(CPU)  # a no-op, must not touch torch.cuda


def test_peak_memory_reads_max_memory_allocated_on_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda d=None: calls.append(("reset", d)))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda d=None: calls.append(("max", d)) or 123_456)
    rc.reset_peak_memory(CUDA)
    assert rc.peak_memory(CUDA) == 123_456
    assert calls == [("reset", CUDA), ("max", CUDA)]


def test_run_peak_memory_is_the_largest_epoch_peak() -> None:
    hist = [EpochStats(1.0, 2, 8, 0.1, 100), EpochStats(0.9, 2, 8, 0.1, 300), EpochStats(0.8, 2, 8, 0.1, 200)]
    assert run_peak_memory(hist) == 300
    assert run_peak_memory([EpochStats(1.0, 2, 8, 0.1)]) is None
    assert run_peak_memory([]) is None


def test_fit_on_cpu_records_no_peak(tmp_path: Path) -> None:
    net = _TinyNet()
    batches = _cls_batches(2)
    csv_path = tmp_path / "metrics.csv"
    recipe = Recipe(epochs=2, warmup_steps=0, amp="auto", channels_last=True, lr=0.01)
    hist = fit(net, lambda: iter(batches), 2, recipe, CPU, classification_loss, csv_path)
    assert [h.steps for h in hist] == [2, 2] and all(h.peak_mem_bytes is None for h in hist)
    assert net.autocast[0] == (False, torch.get_autocast_dtype("cpu"))  # auto is fp32 on CPU
    assert net.conv.weight.is_contiguous(memory_format=torch.channels_last)
    lines = csv_path.read_text().splitlines()
    assert lines[0].split(",") == list(METRICS_COLUMNS) and len(lines) == 3


# ---------------------------------------------------------------------------------------------
# fractional GPUs per trial, handed to Ray Tune


def test_trial_resources_from_the_paper_spec() -> None:
    from capgate.grid.driver import plan_grid, trial_resources

    plan = plan_grid(REPO / "experiments" / "llvip_flir.yaml")
    assert trial_resources(plan.study.resources) == {"cpu": 2.0, "gpu": 0.25}
    assert trial_resources(plan.study.stage_resources, "stage_resources") == {"cpu": 4.0, "gpu": 1.0}
    over = plan_grid(REPO / "experiments" / "llvip_flir.yaml", ["resources.gpu=0.5", "resources.cpu=3"])
    assert trial_resources(over.study.resources) == {"cpu": 3.0, "gpu": 0.5}


def test_trial_resources_reach_tune_with_resources() -> None:
    from ray import tune

    from capgate.grid.driver import trial_resources

    def trainable(config: dict) -> None:  # a fresh function: with_resources sets an attribute on it
        return None

    wrapped = tune.with_resources(trainable, trial_resources(Resources(cpu=2, gpu=0.25)))
    assert wrapped._resources.required_resources == {"CPU": 2.0, "GPU": 0.25}


@pytest.mark.parametrize("res, cluster, message", [
    (Resources(cpu=1, gpu=1.5), None,
     r"spec key 'resources.gpu' = 1.5: Ray gives a trial a fraction of a GPU only below 1; .*--set resources.gpu=1"),
    (Resources(cpu=1, gpu=0.25), {"CPU": 2.0},
     r"spec key 'resources.gpu' = 0.25 but the Ray cluster has no GPU; .*--set resources.gpu=0"),
])
def test_trial_resources_refuse_what_ray_cannot_schedule(res: Resources, cluster: dict | None, message: str) -> None:
    from capgate.grid.driver import trial_resources

    with pytest.raises(SpecError, match=message):
        trial_resources(res, "resources", cluster)


def test_trial_resources_accept_whole_gpus_and_gpu_clusters() -> None:
    from capgate.grid.driver import trial_resources

    assert trial_resources(Resources(cpu=1, gpu=2), "resources", {"GPU": 4.0}) == {"cpu": 1.0, "gpu": 2.0}
    assert trial_resources(Resources(cpu=1, gpu=0), "resources", {"CPU": 2.0}) == {"cpu": 1.0, "gpu": 0.0}


@pytest.mark.parametrize("gpu_ids, device", [([], "cpu"), ([0], "cuda")])
def test_a_trial_uses_cuda_only_when_ray_reserved_a_gpu(monkeypatch: pytest.MonkeyPatch, gpu_ids: list,
                                                        device: str) -> None:
    import ray

    from capgate.grid.trial import trial_device

    monkeypatch.setattr(ray, "get_gpu_ids", lambda: gpu_ids)
    assert trial_device() == device


# ---------------------------------------------------------------------------------------------
# true CUDA tests (skipped here; run on a GPU machine)


@needs_cuda
@pytest.mark.parametrize("amp, channels_last", [("auto", False), ("fp16", True)])
def test_fit_on_cuda_amp_peak_memory_and_placement(amp: str, channels_last: bool) -> None:
    net = _TinyNet()
    batches = _cls_batches(3)
    recipe = Recipe(epochs=1, warmup_steps=0, amp=amp, channels_last=channels_last, lr=0.01)
    hist = fit(net, lambda: iter(batches), 3, recipe, CUDA, classification_loss)
    assert all(p.device.type == "cuda" for p in net.parameters())
    assert math.isfinite(hist[0].loss)
    peak = run_peak_memory(hist)
    assert isinstance(peak, int) and peak >= sum(p.numel() * 4 for p in net.parameters())
    assert torch.backends.cudnn.benchmark is True


@needs_cuda
def test_detector_trains_on_cuda_under_bf16() -> None:
    from capgate.models import build_detector, get_rung

    model = build_detector(get_rung("S-6"), 1, 64)
    targets = [{"boxes": torch.tensor([[8.0, 8.0, 40.0, 56.0]]), "labels": torch.zeros(1, dtype=torch.int64)}] * 2
    batch = (torch.rand(2, 3, 64, 64).pin_memory(), targets, torch.arange(2))
    hist = fit(model, lambda: iter([batch] * 2), 2, Recipe(epochs=1, warmup_steps=0, amp="bf16"), CUDA,
               detection_loss)
    assert math.isfinite(hist[0].loss) and hist[0].peak_mem_bytes > 0


# ---------------------------------------------------------------------------------------------
# the smoke script, on CPU


@pytest.mark.slow
def test_gpu_smoke_script_runs_on_cpu(tmp_path: Path) -> None:
    import json

    out = tmp_path / "smoke.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_smoke.py"), "--device", "cpu",
                           "--concurrency", "1,2", "--steps", "3", "--trials", "1", "--cpus", "1",
                           "--json", str(out)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "all checks passed" in proc.stdout
    d = json.loads(out.read_text())
    assert d["device"] == "cpu" and d["problems"] == []
    det, cls = d["detection"], d["classification"]
    assert det["status"] == cls["status"] == "ok"
    assert 0.0 <= det["map"] <= 1.0 and 0.0 <= cls["top1"] <= 1.0
    assert all(math.isfinite(v) for v in det["losses"] + cls["losses"])
    assert det["precision"] == "fp32" and det["cuda_peak_mem_bytes"] is None  # amp=auto is fp32 on CPU
    assert det["peak_mem_bytes"] > 0  # the model's batch-1 step, measured on CPU as well
    assert d["detection_variant"]["precision"] == "bf16" and d["detection_variant"]["status"] == "ok"
    rows = d["throughput"]
    assert [r["concurrency"] for r in rows] == [1, 2] and [r["trials"] for r in rows] == [1, 2]
    assert all(r["ok"] == r["trials"] and r["trials_per_hour"] > 0 for r in rows)
