"""Rendering one synthetic scene twice: a visible (RGB) image and an infrared image.

A :class:`Scene` holds a background (colour and heat) and objects whose parts carry both a
colour and a temperature. :func:`render_rgb` paints colours under a light level (low light
is darker and noisier; lamps and tail lights stay bright). :func:`render_ir` paints a heat
field of the SAME scene (people and engines warm, background cool), then applies optics blur,
column fixed-pattern noise, sensor noise and automatic gain control: a single-channel image
with its own texture, not a grey copy of the RGB image.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import gaussian_filter, zoom

from capgate.data.synth_shapes import Part, rasterize

__all__ = ["SceneObject", "Scene", "render_rgb", "render_ir", "smooth_noise", "place_boxes"]


@dataclass
class SceneObject:
    """One object: its category (None = unannotated clutter), placement box and parts."""

    category: str | None
    box: tuple[float, float, float, float]
    parts: list[Part]
    colors: dict[str, np.ndarray]
    heat: dict[str, float]
    texture: float = 0.04
    z: float | None = None  # drawing order; None = by box bottom (nearer objects drawn later)
    tight_box: tuple[int, int, int, int] | None = None


@dataclass
class Scene:
    """Background colour ``(H, W, 3)`` in 0..1 and heat ``(H, W)`` in 0..1, plus objects."""

    rgb: np.ndarray
    heat: np.ndarray
    objects: list[SceneObject] = field(default_factory=list)
    light: float = 1.0
    glow: np.ndarray | None = None
    emissive: tuple[str, ...] = ()


def smooth_noise(rng: np.random.Generator, hw: tuple[int, int], scale: int) -> np.ndarray:
    """Zero-mean, unit-ish low-frequency noise of shape ``hw`` (features ~``scale`` pixels)."""
    h, w = hw
    small = rng.standard_normal((h // scale + 2, w // scale + 2))
    return zoom(small, scale, order=1)[:h, :w]


def place_boxes(
    rng: np.random.Generator,
    propose,
    n: int,
    max_iou: float = 0.2,
    existing: list[tuple[float, float, float, float]] | None = None,
    tries: int = 25,
) -> list[tuple]:
    """Call ``propose(rng)`` -> (box, extra) up to ``tries`` times per object, keeping those
    whose IoU with every kept box is at most ``max_iou``."""
    kept: list[tuple] = []
    boxes = list(existing or [])
    for _ in range(n):
        for _ in range(tries):
            box, extra = propose(rng)
            if all(_iou(box, b) <= max_iou for b in boxes):
                kept.append((box, extra))
                boxes.append(box)
                break
    return kept


def _iou(a: tuple, b: tuple) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _rasterize_all(scene: Scene) -> list[tuple[SceneObject, tuple[slice, slice], dict[str, np.ndarray]]]:
    hw = scene.heat.shape
    out = []
    for obj in sorted(scene.objects, key=lambda o: o.box[3] if o.z is None else o.z):
        region, masks = rasterize(obj.parts, obj.box, hw)
        union = np.zeros(next(iter(masks.values())).shape, dtype=bool)
        for m in masks.values():
            union |= m
        rows, cols = np.flatnonzero(union.any(axis=1)), np.flatnonzero(union.any(axis=0))
        if len(rows) and len(cols):
            r0, c0 = region[0].start, region[1].start
            obj.tight_box = (c0 + int(cols[0]), r0 + int(rows[0]), c0 + int(cols[-1]) + 1, r0 + int(rows[-1]) + 1)
        out.append((obj, region, masks))
    return out


def finalize_boxes(scene: Scene) -> None:
    """Compute each object's tight box (pixel xyxy, exclusive max) from its rendered masks."""
    _rasterize_all(scene)


def render_rgb(scene: Scene, rng: np.random.Generator) -> np.ndarray:
    """The visible image as ``(H, W, 3)`` uint8; sets each object's ``tight_box``."""
    img = scene.rgb.copy()
    emissive = []
    for obj, region, masks in _rasterize_all(scene):
        h, w = next(iter(masks.values())).shape
        shade = np.linspace(1.12, 0.82, h)[:, None, None] if h > 1 else 1.0
        tex = 1.0 + obj.texture * rng.standard_normal((h, w, 1))
        patch = img[region]
        for role, m in masks.items():
            col = np.clip(obj.colors[role][None, None, :] * shade * tex, 0, 1)
            patch[m] = col[m]
            if role in scene.emissive:
                emissive.append((region, m, obj.colors[role]))
    light = scene.light if scene.glow is None else scene.light + scene.glow[..., None]
    img = img * light
    for region, m, col in emissive:
        img[region][m] = np.clip(col * 1.2, 0, 1)
    img = gaussian_filter(img, sigma=(0.5, 0.5, 0))
    noise = 0.012 + 0.03 * (1.0 - min(scene.light, 1.0))
    img = img + noise * rng.standard_normal(img.shape)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def render_ir(scene: Scene, rng: np.random.Generator) -> np.ndarray:
    """The infrared image as ``(H, W)`` uint8 from the scene's heat; sets ``tight_box``."""
    t = scene.heat.copy()
    for obj, region, masks in _rasterize_all(scene):
        h, w = next(iter(masks.values())).shape
        patch = t[region]
        var = 0.03 * smooth_noise(rng, (h, w), max(2, min(h, w) // 3))
        for role, m in masks.items():
            patch[m] = obj.heat[role] + var[m]
    t = gaussian_filter(t, sigma=1.1)
    hgt, wid = t.shape
    t = t + 0.012 * rng.standard_normal((1, wid))  # column fixed-pattern noise
    yy, xx = np.mgrid[0:hgt, 0:wid]
    t = t - 0.05 * (((yy - hgt / 2) / hgt) ** 2 + ((xx - wid / 2) / wid) ** 2)  # vignetting
    t = t + 0.015 * rng.standard_normal(t.shape)
    lo, hi = np.percentile(t, [0.5, 99.8])
    t = (t - lo) / max(hi - lo, 0.2)  # automatic gain control, bounded so flat scenes stay flat
    return (np.clip(t, 0, 1) * 255 + 0.5).astype(np.uint8)
