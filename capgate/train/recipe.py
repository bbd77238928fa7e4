"""The shared training recipe made concrete: seeding, device, precision, optimizer and LR schedule.

Precision (``recipe.amp``) resolves to an autocast dtype per device: ``off`` is fp32 everywhere;
``auto`` is bf16 on a CUDA device that supports it, fp16 on one that does not and fp32 on CPU;
``bf16`` and ``fp16`` are taken as given on CUDA. On CPU, ``bf16`` runs under CPU autocast and
``fp16`` is refused (CPU fp16 autocast is slow and has no loss scaling). fp16 trains with a
``torch.amp.GradScaler``; bf16 needs none (it has fp32's exponent range).
"""

from __future__ import annotations

import math
import random

import numpy as np
import torch

from capgate.spec.model import Recipe

__all__ = ["seed_everything", "pick_device", "make_optimizer", "make_scheduler", "total_steps",
           "resolve_amp", "make_grad_scaler", "prepare_device", "prepare_model", "reset_peak_memory",
           "peak_memory", "precision_name", "device_name", "DEFAULT_MEMORY_BUDGET_MB", "memory_budget_bytes"]

#: ``recipe.memory_budget_mb`` when unset: a split whose decoded uint8 tensor (N x 3 x R x R bytes)
#: is larger is streamed from disk by DataLoader workers instead of being held in memory
#: (:mod:`capgate.train.tensors`). 2 GiB holds ~14,000 images at 224 px or ~170,000 at 64 px,
#: so the demo's and the small studies' splits stay in memory (and share a memory-mapped cache),
#: while ImageNet train (~190 GB at 224 px) or COCO train2017 (~36 GB at 320 px) stream.
DEFAULT_MEMORY_BUDGET_MB = 2048


def memory_budget_bytes(recipe: Recipe) -> int:
    """The recipe's per-split memory budget in bytes (``memory_budget_mb``, default
    :data:`DEFAULT_MEMORY_BUDGET_MB`)."""
    mb = getattr(recipe, "memory_budget_mb", None)
    return int((DEFAULT_MEMORY_BUDGET_MB if mb is None else mb) * 2**20)


def seed_everything(seed: int) -> torch.Generator:
    """Seed python's, numpy's and torch's global RNGs (libraries such as timm draw their weight
    initialization from torch's global RNG) and return a dedicated generator for data order and
    augmentation. The seed therefore controls: weight initialization of every freshly created
    layer, the order of training batches, and every augmentation draw. Evaluation is
    deterministic. Bitwise reproducibility additionally needs the same device and thread count.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


def pick_device() -> torch.device:
    """CUDA when present, CPU otherwise."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``recipe.amp`` on ``device`` (None: train in fp32; see the module doc)."""
    from capgate.errors import SpecError
    from capgate.spec.model import AMP_MODES

    if amp not in AMP_MODES:
        raise SpecError(f"recipe.amp = {amp!r} is not a valid choice; valid choices: {', '.join(AMP_MODES)}")
    if amp == "off":
        return None
    cuda = device.type == "cuda"
    if amp == "auto":
        if not cuda:
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if amp == "fp16" and not cuda:
        raise SpecError(f"recipe.amp = 'fp16' needs a CUDA device (this run is on {device.type}); use "
                        f"--set recipe.amp=bf16 or --set recipe.amp=auto on CPU")
    return torch.bfloat16 if amp == "bf16" else torch.float16


def make_grad_scaler(dtype: torch.dtype | None, device: torch.device) -> torch.amp.GradScaler | None:
    """A GradScaler for fp16 training on CUDA, None otherwise (fp32 and bf16 need no loss scaling)."""
    if dtype == torch.float16 and device.type == "cuda":
        return torch.amp.GradScaler("cuda")
    return None


def prepare_device(device: torch.device) -> None:
    """Per-process device settings: on CUDA, ``cudnn.benchmark`` picks the fastest convolution
    algorithms for the run's fixed input size (at the cost of bitwise run-to-run reproducibility)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def prepare_model(model: torch.nn.Module, recipe: Recipe, device: torch.device) -> torch.nn.Module:
    """``model`` moved to ``device`` in place, in channels_last memory format when the recipe says so."""
    model.to(device)
    if recipe.channels_last:
        model.to(memory_format=torch.channels_last)
    return model


def reset_peak_memory(device: torch.device) -> None:
    """Start a new CUDA peak-memory window on ``device`` (no-op elsewhere)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device: torch.device) -> int | None:
    """Peak bytes the CUDA caching allocator handed out on ``device`` in this process since the
    last :func:`reset_peak_memory` (``torch.cuda.max_memory_allocated``); None off CUDA, where
    no comparable counter exists."""
    if device.type != "cuda":
        return None
    return int(torch.cuda.max_memory_allocated(device))


def precision_name(dtype: torch.dtype | None) -> str:
    """``fp32`` for no autocast, else ``bf16`` or ``fp16`` (the results table's ``precision``)."""
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def device_name(device: torch.device) -> str:
    """``cpu``, or ``cuda (<device name>)`` (the results table's ``device``)."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type


def make_optimizer(params: list[torch.nn.Parameter], recipe: Recipe) -> torch.optim.Optimizer:
    """The recipe's optimizer; weight decay is not applied to biases and norm parameters."""
    decay = [p for p in params if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in params if p.requires_grad and p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": recipe.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum, nesterov=True)
    if recipe.optimizer == "adam":
        return torch.optim.Adam(groups, lr=recipe.lr)
    return torch.optim.AdamW(groups, lr=recipe.lr)


def total_steps(recipe: Recipe, steps_per_epoch: int) -> int:
    """Optimizer steps of the whole run: ``recipe.steps`` when set, else epochs x batches."""
    return recipe.steps if recipe.steps else recipe.epochs * max(1, steps_per_epoch)


def make_scheduler(opt: torch.optim.Optimizer, recipe: Recipe, steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step LR multiplier: linear warmup, then cosine to 0, constant, or x0.1 at 2/3."""
    warm = min(recipe.warmup_steps, max(0, steps - 1))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / (warm + 1)
        if recipe.schedule == "constant":
            return 1.0
        if recipe.schedule == "step":
            return 1.0 if step < 2 * steps // 3 else 0.1
        t = (step - warm) / max(1, steps - warm)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)
