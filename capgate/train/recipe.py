"""The shared training recipe made concrete: seeding, device, optimizer and LR schedule."""

from __future__ import annotations

import math
import random

import numpy as np
import torch

from capgate.spec import Recipe

__all__ = ["seed_everything", "pick_device", "make_optimizer", "make_scheduler", "total_steps",
           "DEFAULT_MEMORY_BUDGET_MB", "memory_budget_bytes"]

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
