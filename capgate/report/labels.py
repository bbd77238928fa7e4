"""Readable labels and the display order of design factors (shared by figures and tables)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from capgate.schema import SHIFTS

__all__ = ["pair_label", "shift_order", "rung_label", "distinct_labels"]


def pair_label(train_set: str, eval_set: str) -> str:
    """``llvip/rgb`` -> ``flir/rgb`` as one readable label (``train → eval``)."""
    return f"{train_set} → {eval_set}"


def shift_order(shift: str) -> int:
    """Sort key putting the known shifts in design order (in-domain first), unknown ones last."""
    return SHIFTS.index(shift) if shift in SHIFTS else len(SHIFTS)


def rung_label(backbone: str) -> str:
    """The short rung name of a backbone: ``B-2`` from ``efficientnet_b0@w0.4d0.5 (B-2)``, else the
    backbone itself (a table from another trainer may name backbones any way it likes)."""
    m = re.search(r"\(([^()]+)\)\s*$", str(backbone))
    return m.group(1) if m else str(backbone)


def distinct_labels(labels: Sequence[str], extras: Sequence[Sequence[tuple[str, object]]]) -> list[str]:
    """Make equal labels differ: for each group of rows sharing a label, append (``· name value``)
    the first of that row's ``extras`` whose values differ within the group, and repeat until every
    label is unique or the extras run out (then ``· row k``). ``extras[i]`` lists ``(name, value)``
    pairs of row ``i`` in order of preference (e.g. study, task, shift, full backbone)."""
    out = [str(s) for s in labels]
    used = [0] * len(out)
    for _ in range(max((len(e) for e in extras), default=0) + 1):
        counts = Counter(out)
        dup = [i for i, s in enumerate(out) if counts[s] > 1]
        if not dup:
            return out
        groups: dict[str, list[int]] = {}
        for i in dup:
            groups.setdefault(out[i], []).append(i)
        for idx in groups.values():
            k = min(used[i] for i in idx)
            while k < min(len(extras[i]) for i in idx):
                if len({str(extras[i][k][1]) for i in idx}) > 1:
                    break
                k += 1
            for i in idx:
                if k < len(extras[i]):
                    name, value = extras[i][k]
                    out[i] = f"{out[i]} · {name} {value}".replace("·  ", "· ")
                    used[i] = k + 1
                else:
                    out[i] = f"{out[i]} · row {i + 1}"
    return out
