"""Object shapes of the synthetic world and their vectorised rasterisation.

A shape is a list of parts ``(role, kind, params)`` in unit coordinates of its box (x right,
y down, both 0..1). Kinds: ``ellipse (cx, cy, rx, ry)``, ``rect (x0, y0, x1, y1)``,
``poly ((x, y), ...)``, ``line (x0, y0, x1, y1, width)`` and ``ring (cx, cy, rx, ry, width)``;
widths are fractions of the box width. Roles (``skin``, ``top``, ``body``, ``wheel``, ...) let
the RGB and infrared renderers colour and heat the same part differently.

Every shape builder takes a ``np.random.Generator`` for pose and proportion jitter.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

__all__ = ["Part", "SHAPES", "ASPECT", "rasterize", "edges"]

Part = tuple[str, str, tuple]


def _person(rng: np.random.Generator) -> list[Part]:
    arm_l, arm_r = rng.uniform(-0.08, 0.1, size=2)
    spread = rng.uniform(0.0, 0.14)
    step = rng.uniform(-0.06, 0.06)
    return [
        ("skin", "ellipse", (0.5, 0.085, 0.17, 0.085)),
        ("top", "rect", (0.24, 0.165, 0.76, 0.57)),
        ("top", "line", (0.29, 0.2, 0.14 + arm_l, 0.53, 0.14)),
        ("top", "line", (0.71, 0.2, 0.86 - arm_r, 0.53, 0.14)),
        ("skin", "ellipse", (0.14 + arm_l, 0.56, 0.07, 0.03)),
        ("skin", "ellipse", (0.86 - arm_r, 0.56, 0.07, 0.03)),
        ("bottom", "line", (0.4, 0.56, 0.37 - spread + step, 0.965, 0.18)),
        ("bottom", "line", (0.6, 0.56, 0.63 + spread + step, 0.965, 0.18)),
    ]


def _car_side(rng: np.random.Generator) -> list[Part]:
    roof = rng.uniform(0.05, 0.15)
    return [
        ("body", "rect", (0.0, 0.42, 1.0, 0.8)),
        ("body", "poly", ((0.18, 0.43), (0.3, roof), (0.72, roof), (0.84, 0.43))),
        ("window", "poly", ((0.24, 0.42), (0.33, roof + 0.06), (0.69, roof + 0.06), (0.78, 0.42))),
        ("wheel", "ellipse", (0.22, 0.8, 0.11, 0.2)),
        ("wheel", "ellipse", (0.78, 0.8, 0.11, 0.2)),
        ("light", "rect", (0.93, 0.48, 1.0, 0.58)),
    ]


def _car_rear(rng: np.random.Generator) -> list[Part]:
    roof = rng.uniform(0.0, 0.08)
    return [
        ("body", "rect", (0.03, 0.36, 0.97, 0.86)),
        ("body", "poly", ((0.12, 0.37), (0.24, roof), (0.76, roof), (0.88, 0.37))),
        ("window", "poly", ((0.19, 0.36), (0.28, roof + 0.07), (0.72, roof + 0.07), (0.81, 0.36))),
        ("light", "rect", (0.06, 0.45, 0.24, 0.56)),
        ("light", "rect", (0.76, 0.45, 0.94, 0.56)),
        ("wheel", "rect", (0.08, 0.8, 0.26, 1.0)),
        ("wheel", "rect", (0.74, 0.8, 0.92, 1.0)),
        ("engine", "rect", (0.38, 0.82, 0.62, 0.92)),
    ]


def _bicycle(rng: np.random.Generator) -> list[Part]:
    seat = rng.uniform(0.3, 0.4)
    return [
        ("wheel", "ring", (0.2, 0.68, 0.18, 0.3, 0.05)),
        ("wheel", "ring", (0.8, 0.68, 0.18, 0.3, 0.05)),
        ("frame", "line", (0.2, 0.68, 0.45, 0.68, 0.045)),
        ("frame", "line", (0.45, 0.68, 0.38, seat, 0.045)),
        ("frame", "line", (0.38, seat, 0.72, seat, 0.045)),
        ("frame", "line", (0.72, seat, 0.45, 0.68, 0.045)),
        ("frame", "line", (0.72, seat, 0.8, 0.68, 0.045)),
        ("frame", "line", (0.2, 0.68, 0.38, seat, 0.045)),
        ("frame", "line", (0.72, seat, 0.7, 0.15, 0.045)),
        ("frame", "line", (0.62, 0.13, 0.8, 0.13, 0.05)),
        ("frame", "line", (0.3, seat - 0.08, 0.45, seat - 0.08, 0.07)),
    ]


def _dog(rng: np.random.Generator) -> list[Part]:
    tail = rng.uniform(0.05, 0.3)
    return [
        ("body", "ellipse", (0.48, 0.45, 0.3, 0.2)),
        ("body", "ellipse", (0.82, 0.25, 0.14, 0.17)),
        ("detail", "ellipse", (0.92, 0.3, 0.07, 0.06)),
        ("body", "line", (0.28, 0.5, 0.26, 0.97, 0.09)),
        ("body", "line", (0.38, 0.55, 0.4, 0.97, 0.09)),
        ("body", "line", (0.6, 0.55, 0.58, 0.97, 0.09)),
        ("body", "line", (0.7, 0.5, 0.72, 0.97, 0.09)),
        ("body", "line", (0.2, 0.4, 0.04, tail, 0.06)),
        ("detail", "ellipse", (0.75, 0.1, 0.05, 0.09)),
    ]


def _polygon_star(n: int, inner: float) -> tuple:
    pts = []
    for k in range(2 * n):
        r = 0.5 if k % 2 == 0 else 0.5 * inner
        a = math.pi * k / n - math.pi / 2
        pts.append((0.5 + r * math.cos(a), 0.5 + r * math.sin(a)))
    return tuple(pts)


def _simple(parts: list[Part]) -> Callable[[np.random.Generator], list[Part]]:
    return lambda rng: list(parts)


SHAPES: dict[str, Callable[[np.random.Generator], list[Part]]] = {
    "person": _person,
    "car": lambda rng: _car_rear(rng) if rng.random() < 0.5 else _car_side(rng),
    "car_rear": _car_rear,
    "car_side": _car_side,
    "bicycle": _bicycle,
    "dog": _dog,
    "ball": _simple([("body", "ellipse", (0.5, 0.5, 0.5, 0.5)), ("detail", "ring", (0.5, 0.5, 0.5, 0.2, 0.08))]),
    "stop_sign": _simple(
        [("body", "poly", tuple((0.5 + 0.5 * math.cos(a), 0.32 + 0.32 * math.sin(a)) for a in
                                np.linspace(math.pi / 8, 2 * math.pi + math.pi / 8, 9)[:-1])),
         ("frame", "rect", (0.45, 0.62, 0.55, 1.0)), ("detail", "rect", (0.2, 0.27, 0.8, 0.37))]
    ),
    "tree": _simple([("frame", "rect", (0.4, 0.55, 0.6, 1.0)), ("body", "ellipse", (0.5, 0.35, 0.5, 0.35))]),
    "house": _simple(
        [("body", "rect", (0.1, 0.45, 0.9, 1.0)), ("detail", "poly", ((0.0, 0.47), (0.5, 0.0), (1.0, 0.47))),
         ("window", "rect", (0.42, 0.65, 0.58, 1.0)), ("window", "rect", (0.18, 0.55, 0.34, 0.7))]
    ),
    "star": _simple([("body", "poly", _polygon_star(5, 0.45))]),
    "cross": _simple([("body", "rect", (0.35, 0.0, 0.65, 1.0)), ("body", "rect", (0.0, 0.35, 1.0, 0.65))]),
    "triangle": _simple([("body", "poly", ((0.5, 0.0), (1.0, 1.0), (0.0, 1.0)))]),
    "arrow": _simple(
        [("body", "rect", (0.0, 0.38, 0.6, 0.62)), ("body", "poly", ((0.55, 0.1), (1.0, 0.5), (0.55, 0.9)))]
    ),
    "fish": _simple(
        [("body", "ellipse", (0.42, 0.5, 0.4, 0.3)), ("detail", "poly", ((0.75, 0.5), (1.0, 0.2), (1.0, 0.8))),
         ("window", "ellipse", (0.2, 0.42, 0.05, 0.07))]
    ),
    "umbrella": _simple(
        [("body", "poly", ((0.0, 0.45), (0.15, 0.15), (0.5, 0.0), (0.85, 0.15), (1.0, 0.45))),
         ("frame", "line", (0.5, 0.45, 0.5, 0.95, 0.06)), ("frame", "line", (0.5, 0.95, 0.38, 0.9, 0.06))]
    ),
    "cup": _simple(
        [("body", "poly", ((0.1, 0.1), (0.7, 0.1), (0.62, 1.0), (0.18, 1.0))),
         ("detail", "ring", (0.75, 0.5, 0.2, 0.22, 0.08))]
    ),
    "sun": _simple(
        [("body", "ellipse", (0.5, 0.5, 0.3, 0.3))]
        + [("detail", "line", (0.5 + 0.36 * math.cos(a), 0.5 + 0.36 * math.sin(a),
                               0.5 + 0.48 * math.cos(a), 0.5 + 0.48 * math.sin(a), 0.06))
           for a in np.linspace(0, 2 * math.pi, 9)[:-1]]
    ),
    "diamond": _simple([("body", "poly", ((0.5, 0.0), (1.0, 0.5), (0.5, 1.0), (0.0, 0.5)))]),
    "key": _simple(
        [("body", "ring", (0.22, 0.5, 0.2, 0.35, 0.12)), ("body", "rect", (0.4, 0.44, 1.0, 0.56)),
         ("body", "rect", (0.8, 0.56, 0.88, 0.75)), ("body", "rect", (0.65, 0.56, 0.72, 0.7))]
    ),
}

#: Typical width / height of each shape's box.
ASPECT: dict[str, float] = {
    "person": 0.42, "car": 1.6, "car_rear": 1.35, "car_side": 2.2, "bicycle": 1.6, "dog": 1.4,
    "ball": 1.0, "stop_sign": 0.6, "tree": 0.75, "house": 1.0, "star": 1.0, "cross": 1.0, "triangle": 1.1,
    "arrow": 1.5, "fish": 1.8, "umbrella": 1.0, "cup": 0.9, "sun": 1.0, "diamond": 0.8, "key": 2.0,
}


def _inside_poly(u: np.ndarray, v: np.ndarray, pts: tuple) -> np.ndarray:
    inside = np.zeros(np.broadcast_shapes(u.shape, v.shape), dtype=bool)
    n = len(pts)
    for i in range(n):
        (xa, ya), (xb, yb) = pts[i], pts[(i + 1) % n]
        if ya == yb:
            continue
        crosses = (ya > v) != (yb > v)
        xint = xa + (v - ya) * (xb - xa) / (yb - ya)
        inside ^= crosses & (u < xint)
    return inside


def _part_mask(kind: str, p: tuple, u: np.ndarray, v: np.ndarray, sx: float, sy: float) -> np.ndarray:
    if kind == "ellipse":
        cx, cy, rx, ry = p
        return ((u - cx) / rx) ** 2 + ((v - cy) / ry) ** 2 <= 1.0
    if kind == "rect":
        x0, y0, x1, y1 = p
        return (u >= x0) & (u <= x1) & (v >= y0) & (v <= y1)
    if kind == "poly":
        return _inside_poly(u, v, p)
    if kind == "line":
        x0, y0, x1, y1, w = p
        ax, ay, bx, by = x0 * sx, y0 * sy, x1 * sx, y1 * sy
        px, py = u * sx, v * sy
        dx, dy = bx - ax, by - ay
        t = np.clip(((px - ax) * dx + (py - ay) * dy) / max(dx * dx + dy * dy, 1e-9), 0.0, 1.0)
        d2 = (px - ax - t * dx) ** 2 + (py - ay - t * dy) ** 2
        half = max(0.7, w * sx / 2)
        return d2 <= half * half
    if kind == "ring":
        cx, cy, rx, ry, w = p
        d = np.sqrt(((u - cx) / rx) ** 2 + ((v - cy) / ry) ** 2)
        half = max(0.7, w * sx / 2) / max(min(rx * sx, ry * sy), 1e-6)
        return np.abs(d - 1.0) <= half
    raise ValueError(f"unknown part kind {kind!r}")


def rasterize(
    parts: list[Part], box: tuple[float, float, float, float], hw: tuple[int, int]
) -> tuple[tuple[slice, slice], dict[str, np.ndarray]]:
    """Masks of each role over the image region covered by ``box`` (pixel xyxy), clipped to
    the image of size ``hw``. Returns ``((row slice, col slice), {role: bool mask})``."""
    x0, y0, x1, y1 = box
    h, w = hw
    c0, c1 = max(0, int(math.floor(x0))), min(w, int(math.ceil(x1)))
    r0, r1 = max(0, int(math.floor(y0))), min(h, int(math.ceil(y1)))
    sx, sy = max(x1 - x0, 1e-6), max(y1 - y0, 1e-6)
    u = ((np.arange(c0, c1) + 0.5 - x0) / sx)[None, :]
    v = ((np.arange(r0, r1) + 0.5 - y0) / sy)[:, None]
    masks: dict[str, np.ndarray] = {}
    for role, kind, p in parts:
        m = _part_mask(kind, p, u, v, sx, sy)
        m = np.broadcast_to(m, (r1 - r0, c1 - c0))
        masks[role] = masks[role] | m if role in masks else m.copy()
    return (slice(r0, r1), slice(c0, c1)), masks


def edges(mask: np.ndarray) -> np.ndarray:
    """Boundary pixels of a boolean mask (in the mask, with a 4-neighbour outside it)."""
    p = np.pad(mask, 1)
    interior = p[1:-1, 1:-1] & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    return mask & ~interior
