"""Size, compute, latency and memory of a model: the capacity columns of the results table.

* ``params``: exact integer count of the whole model's parameters; ``backbone_params`` those of
  the backbone alone (the same for a rung's detector and classifier).
* ``macs``: multiply-accumulates of one forward pass of one image at ``resolution``, under the one
  convention :data:`MACS_CONVENTION` (printed beside every MACs figure): counted by
  ``torch.utils.flop_counter.FlopCounterMode``, which counts convolutions and matrix products
  (``aten.convolution``, ``mm``, ``addmm``, ``bmm``, ``baddbmm``: linear layers included, bias adds
  not); BatchNorm, activations, pooling (adaptive included), elementwise ops, the input
  normalization and NMS are not counted. ``MACs = FLOPs / 2``. ``tests/test_models_macs.py``
  checks every standard model and rung against fvcore's independent counter, operator by operator.
* ``latency_ms``: CPU, batch 1, eval mode, no grad, median of ``repeats`` timed forwards after
  ``warmup`` untimed ones, with ``torch.set_num_threads(threads)`` (restored afterwards). For a
  detector this includes normalization and post-processing (NMS), i.e. what deployment pays.
* ``fp32_bytes``: FP32 parameter storage, ``params * 4`` (what papers report as model size).
* ``size_bytes``: FP32 size of the state, the bytes of every parameter and buffer (BatchNorm's
  running statistics included) at 4 bytes per element.
* ``peak_mem_bytes``: peak bytes of one training step (forward + backward of batch 1; no
  optimizer state, which depends on the recipe), measured on a copy of the model: the bytes
  of its parameters, buffers and input, plus the peak of what the step allocates on top. On
  CUDA the step's part is ``torch.cuda.max_memory_allocated`` minus the allocation before the
  step (``cuda_max_memory_allocated``); on CPU it is the peak of live tensor-storage bytes,
  tracked exactly by intercepting every aten op of the step with a ``TorchDispatchMode``
  (``cpu_live_tensor_bytes``); allocator caching and the Python heap are not included.
"""

from __future__ import annotations

import copy
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode

from capgate.errors import CheckpointError
from capgate.models.checkpoint import backbone_module

__all__ = ["MACS_CONVENTION", "ModelProfile", "count_params", "measure_latency", "measure_macs", "measure_peak_memory",
           "profile_model"]


#: What a capgate MACs figure counts (printed beside every MACs figure: ``capgate models``, docs).
MACS_CONVENTION = ("MACs: multiply-accumulates of one forward pass of one image; counted: convolutions and "
                   "matrix products (linear layers), bias adds excluded; not counted: BatchNorm, activations, "
                   "pooling, elementwise ops, input normalization (torch FlopCounterMode FLOPs / 2)")


@dataclass(frozen=True)
class ModelProfile:
    """A model's capacity and cost at one input resolution (JSON-able via :meth:`to_dict`)."""

    kind: str
    resolution: int
    params: int
    backbone_params: int
    macs: int
    fp32_bytes: int
    size_bytes: int
    latency_ms: float | None
    latency_threads: int | None
    peak_mem_bytes: int | None
    peak_mem_method: str | None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields."""
        return asdict(self)


def count_params(module: nn.Module) -> int:
    """Exact number of parameter elements (shared parameters counted once)."""
    return sum(p.numel() for p in module.parameters())


def _device(model: nn.Module) -> torch.device:
    for t in model.parameters():
        return t.device
    return torch.device("cpu")


def _example_batch(model: nn.Module, resolution: int, device: torch.device, batch: int = 1):
    """``batch`` images in [0, 1] and, for a detector, one box target each (labels 0)."""
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(batch, 3, resolution, resolution, generator=gen).to(device)
    if getattr(model, "capgate_kind", None) == "detector":
        r = float(resolution)
        targets = [{"boxes": torch.tensor([[0.25 * r, 0.2 * r, 0.6 * r, 0.9 * r]], device=device),
                    "labels": torch.zeros(1, dtype=torch.int64, device=device)} for _ in range(batch)]
        return images, targets
    return images, torch.zeros(batch, dtype=torch.int64, device=device)


def _train_loss(model: nn.Module, images: Tensor, targets) -> Tensor:
    if getattr(model, "capgate_kind", None) == "detector":
        return sum(model(images, targets).values())
    return nn.functional.cross_entropy(model(images), targets)


def measure_macs(model: nn.Module, resolution: int) -> int:
    """MACs of one eval-mode forward of one ``resolution`` x ``resolution`` image (FLOPs / 2)."""
    was_training = model.training
    model.eval()
    images, _ = _example_batch(model, resolution, _device(model))
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(images)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops()) // 2


def measure_latency(model: nn.Module, resolution: int, *, threads: int = 1, warmup: int = 3,
                    repeats: int = 10) -> float:
    """Median CPU milliseconds of a batch-1 eval forward (a CPU copy is timed if the model
    lives elsewhere); ``threads`` is fixed for the measurement and restored after."""
    cpu_model = model if _device(model).type == "cpu" else copy.deepcopy(model).cpu()
    was_training = cpu_model.training
    cpu_model.eval()
    images, _ = _example_batch(cpu_model, resolution, torch.device("cpu"))
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    times = []
    try:
        with torch.no_grad():
            for i in range(warmup + repeats):
                start = time.perf_counter()
                cpu_model(images)
                if i >= warmup:
                    times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(old_threads)
        cpu_model.train(was_training)
    return statistics.median(times) * 1000.0


class _LiveTensorBytes(TorchDispatchMode):
    """Tracks the bytes of tensor storages created inside the mode while they are alive.

    ``existing`` tensors (parameters, buffers, inputs) are already counted by the caller: views
    of them (``weight.t()``, ``detach``) share their storage and must not count again.
    """

    def __init__(self, existing: list[Tensor]) -> None:
        super().__init__()
        self.known = {t.untyped_storage().data_ptr() for t in existing}
        self.live: dict[int, tuple[StorageWeakRef, int]] = {}
        self.current = 0
        self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self._sweep()
        for t in tree_flatten(out)[0]:
            if isinstance(t, Tensor) and t.device.type == "cpu":
                storage = t.untyped_storage()
                key = storage.data_ptr()
                if key and key not in self.live and key not in self.known and storage.nbytes():
                    self.live[key] = (StorageWeakRef(storage), storage.nbytes())
                    self.current += storage.nbytes()
        self.peak = max(self.peak, self.current)
        return out

    def _sweep(self) -> None:
        dead = [k for k, (ref, _) in self.live.items() if ref.expired()]
        for k in dead:
            self.current -= self.live.pop(k)[1]


def measure_peak_memory(model: nn.Module, resolution: int) -> tuple[int, str]:
    """Peak bytes of one batch-1 training step (forward + backward) and the method used.

    Where the last feature map is 1x1, BatchNorm cannot train on one image (one value per
    channel); the step then runs at batch 2 and the method says so.
    """
    try:
        return _peak_memory(model, resolution, batch=1)
    except ValueError as exc:
        if "Expected more than 1 value per channel" not in str(exc):
            raise
        peak, method = _peak_memory(model, resolution, batch=2)
        return peak, f"{method}_batch2"


def _peak_memory(model: nn.Module, resolution: int, batch: int) -> tuple[int, str]:
    device = _device(model)
    was_training = model.training
    model.train()
    images, targets = _example_batch(model, resolution, device, batch)
    model.zero_grad(set_to_none=True)
    try:
        existing = list(model.parameters()) + list(model.buffers()) + [images]
        existing += [t for target in (targets if isinstance(targets, list) else [{"y": targets}])
                     for t in target.values()]
        resident = sum(t.untyped_storage().nbytes() for t in {t.untyped_storage().data_ptr(): t
                                                               for t in existing}.values())
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            base = torch.cuda.memory_allocated(device)
            torch.cuda.reset_peak_memory_stats(device)
            _train_loss(model, images, targets).backward()
            torch.cuda.synchronize(device)
            step = torch.cuda.max_memory_allocated(device) - base
            return int(resident + step), "cuda_max_memory_allocated"
        with _LiveTensorBytes(existing) as tracker:
            _train_loss(model, images, targets).backward()
        return int(resident + tracker.peak), "cpu_live_tensor_bytes"
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)


def profile_model(model: nn.Module, resolution: int, *, latency: bool = True, memory: bool = True,
                  threads: int = 1) -> ModelProfile:
    """Profile a capgate detector or classifier (or a features backbone) at ``resolution``.

    The model itself is left untouched (the training step runs on a copy).
    """
    try:
        backbone = backbone_module(model)
    except CheckpointError:  # any other module: its backbone is itself
        backbone = model
    size = sum(t.numel() * 4 for t in list(model.parameters()) + list(model.buffers()))
    params = count_params(model)
    peak, method = measure_peak_memory(copy.deepcopy(model), resolution) if memory else (None, None)
    return ModelProfile(
        kind=getattr(model, "capgate_kind", type(model).__name__),
        resolution=int(resolution),
        params=params,
        backbone_params=count_params(backbone),
        macs=measure_macs(model, resolution),
        fp32_bytes=4 * params,
        size_bytes=int(size),
        latency_ms=measure_latency(model, resolution, threads=threads) if latency else None,
        latency_threads=threads if latency else None,
        peak_mem_bytes=peak,
        peak_mem_method=method,
    )
