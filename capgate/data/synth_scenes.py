"""Scene layouts of the three synthetic detection sites.

- ``llvip``: a few fixed elevated surveillance cameras over a plaza, low light, pedestrians
  that are large and clear (so a tiny detector can learn them), sized by perspective.
- ``flir``: a vehicle-mounted view of a road to the horizon, day or night, with cars,
  persons and bicycles at smaller scales (harder).
- ``coco``: varied indoor/outdoor scenes with several categories and unannotated clutter,
  the stand-in for COCO detection pretraining.

Each builder takes an ``np.random.Generator`` and returns a :class:`~.synth_render.Scene`.

How the world is built, and why
-------------------------------
The demo asks whether pretraining helps a tiny detector under a shift, so the world must let a
detector learn in a few hundred steps and let every eval set measure something:

- ``llvip`` draws its frames from eight fixed cameras (``WorldConfig.llvip_cameras``; the real
  LLVIP has a few dozen sites), so a model learns pedestrians rather than three backgrounds, and
  its pedestrians span 0.22-0.56 of the frame height by perspective (the real dataset's close,
  elevated views), wide enough that a model has seen the sizes the other sites show.
- ``flir`` is the cross-dataset target: another site (a road, half of it by day), other
  categories as distractors (cars, bicycles) and persons drawn with the same figure model but at
  road-side distances from 45 % of the way to the horizon down to the camera (0.29-0.65 of the
  frame height with the size jitter; at least 37 px of the 160x128 frame). World v3 started a quarter of the way (down
  to 14 px, 7 px at the demo's 80-px input, under the detector's finest stride of 8): the best
  cell reached 0.09 mAP, an eval set at the floor. The shift is now the site, the light, the
  framing and the distractors, not objects below the stride.
- ``coco`` is the COCO-detection stand-in: the same figure models (person, bicycle, car, dog...)
  in varied scenes and lights, the way real COCO shares people and vehicles with LLVIP and FLIR.
  It is what the ``imagenet_coco`` stage learns from, so it shares visual structure with the
  targets, never their images or sites.
"""

from __future__ import annotations

import numpy as np

from capgate.data.synth_render import Scene, SceneObject, place_boxes, smooth_noise
from capgate.data.synth_shapes import ASPECT, SHAPES

__all__ = ["llvip_cameras", "llvip_scene", "flir_scene", "coco_scene", "make_object", "random_color", "COCO_CATEGORIES"]

#: COCO-like categories with real COCO ids (sorted by id) and their shape names.
COCO_CATEGORIES = ((1, "person", "person"), (2, "bicycle", "bicycle"), (3, "car", "car"),
                   (13, "stop sign", "stop_sign"), (18, "dog", "dog"), (37, "sports ball", "ball"))

_SKIN = np.array([[0.95, 0.8, 0.68], [0.85, 0.65, 0.5], [0.6, 0.42, 0.3], [0.42, 0.28, 0.2]])
_CAR = np.array([[0.92, 0.92, 0.9], [0.7, 0.72, 0.75], [0.12, 0.12, 0.14], [0.75, 0.1, 0.1],
                 [0.15, 0.25, 0.65], [0.45, 0.45, 0.45], [0.85, 0.75, 0.2]])


def random_color(rng: np.random.Generator, s: tuple = (0.4, 1.0), v: tuple = (0.3, 1.0)) -> np.ndarray:
    h, sat, val = rng.random(), rng.uniform(*s), rng.uniform(*v)
    rgb = np.clip(np.abs((h * 6 + np.array([0.0, 4.0, 2.0])) % 6 - 3) - 1, 0, 1)
    return val * (1 - sat + sat * rgb)


def make_object(rng: np.random.Generator, shape: str, box: tuple, category: str | None, night: bool = False) -> SceneObject:
    """An object of ``shape`` in ``box`` with sampled colours and a plausible heat per part."""
    parts = SHAPES[shape](rng)
    roles = list(dict.fromkeys(r for r, _, _ in parts))  # ordered: a set's order follows PYTHONHASHSEED
    colors = {r: random_color(rng) for r in roles}
    heat = {r: 0.45 + 0.1 * rng.random() for r in roles}  # unknown objects: near ambient
    if shape == "person":
        colors["skin"] = _SKIN[rng.integers(len(_SKIN))]
        colors["bottom"] = random_color(rng, v=(0.1, 0.5))
        heat.update(skin=0.95, top=0.78 + 0.06 * rng.random(), bottom=0.72 + 0.06 * rng.random())
    elif shape.startswith("car"):
        colors["body"] = _CAR[rng.integers(len(_CAR))] * rng.uniform(0.85, 1.05)
        colors.update(window=np.array([0.18, 0.22, 0.28]), wheel=np.array([0.06, 0.06, 0.06]))
        colors["light"] = np.array([0.95, 0.12, 0.1]) if shape != "car_side" else np.array([1.0, 0.95, 0.7])
        colors.setdefault("engine", np.array([0.1, 0.1, 0.1]))
        heat.update(body=0.38 if night else 0.5, window=0.12, wheel=0.72, light=0.6, engine=0.9)
    elif shape == "bicycle":
        colors["wheel"] = np.array([0.08, 0.08, 0.08])
        heat.update(frame=0.42, wheel=0.5)
    elif shape == "dog":
        colors["body"] = random_color(rng, s=(0.2, 0.6), v=(0.25, 0.85))
        heat.update(body=0.85, detail=0.9)
    return SceneObject(category, box, parts, colors, heat)


def llvip_cameras(rng: np.random.Generator, hw: tuple[int, int], n: int = 3) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Fixed camera backgrounds: (rgb, heat, horizon row) each; built once per world."""
    h, w = hw
    cams = []
    yy, xx = np.mgrid[0:h, 0:w]
    for _ in range(n):
        wall = int(h * rng.uniform(0.18, 0.3))
        rgb = np.empty((h, w, 3))
        rgb[:wall] = random_color(rng, s=(0.1, 0.35), v=(0.35, 0.6))
        ground = random_color(rng, s=(0.05, 0.25), v=(0.4, 0.65))
        depth = (yy - wall) / max(h - wall, 1)
        rgb[wall:] = ground * (0.8 + 0.25 * depth[wall:, :, None])
        tile = max(6, w // 10)
        grid = ((xx % tile) == 0) | (((yy - wall) % max(4, int(tile * 0.7))) == 0)
        rgb[wall:][grid[wall:]] *= 0.82
        win = ((xx // 8) % 2 == 0) & ((yy // 6) % 2 == 1) & (yy < wall - 2)
        lit = rng.random() < 0.5
        rgb[win] = [0.9, 0.8, 0.5] if lit else [0.15, 0.17, 0.22]
        rgb += 0.04 * smooth_noise(rng, hw, 6)[..., None]
        heat = np.where(yy < wall, 0.34, 0.3 + 0.06 * depth) + 0.025 * smooth_noise(rng, hw, 10)
        heat[win] = 0.42 if lit else 0.3
        cams.append((np.clip(rgb, 0, 1), heat, float(wall)))
    return cams


def llvip_scene(rng: np.random.Generator, camera: tuple[np.ndarray, np.ndarray, float], max_people: int = 5) -> Scene:
    """A low-light surveillance frame with 1..``max_people`` large pedestrians."""
    rgb, heat, wall = camera
    h, w = heat.shape

    def propose(r: np.random.Generator) -> tuple:
        foot = r.uniform(wall + 0.32 * h, h - 1)
        ph = h * (0.22 + 0.34 * (foot - wall) / (h - wall)) * r.uniform(0.9, 1.1)
        pw = ph * ASPECT["person"] * r.uniform(0.85, 1.15)
        x0 = r.uniform(1, w - pw - 1)
        return (x0, foot - ph, x0 + pw, foot), None

    n = int(rng.integers(1, max_people + 1))
    objects = [make_object(rng, "person", box, "person", night=True) for box, _ in place_boxes(rng, propose, n, 0.15)]
    yy, xx = np.mgrid[0:h, 0:w]
    lx, ly = rng.uniform(0, w), rng.uniform(0, wall + 10)
    glow = 0.35 * np.exp(-(((xx - lx) / (0.45 * w)) ** 2 + ((yy - ly) / (0.6 * h)) ** 2))
    tint = rng.uniform(0.9, 1.1, size=3)
    return Scene(rgb * tint, heat + rng.normal(0, 0.02), objects, light=float(rng.uniform(0.3, 0.55)), glow=glow)


def flir_scene(rng: np.random.Generator, hw: tuple[int, int], max_objects: int = 6) -> Scene:
    """A road frame, day or night, with cars, persons and bicycles sized by perspective."""
    h, w = hw
    night = bool(rng.random() < 0.5)
    hor = h * rng.uniform(0.36, 0.46)
    vx = w * rng.uniform(0.4, 0.6)
    yy, xx = np.mgrid[0:h, 0:w]
    below = np.clip((yy - hor) / (h - hor), 0, 1)
    road = (yy > hor) & (np.abs(xx - vx) < below * w * 0.55)
    sky_top, sky_bot = (np.array([0.02, 0.03, 0.08]), np.array([0.08, 0.08, 0.15])) if night else (
        np.array([0.35, 0.55, 0.9]), np.array([0.75, 0.85, 0.95]))
    t = np.clip(yy / max(hor, 1), 0, 1)[..., None]
    rgb = sky_top * (1 - t) + sky_bot * t
    side = random_color(rng, s=(0.2, 0.5), v=(0.3, 0.55))
    rgb[yy > hor] = side
    rgb[road] = np.array([0.33, 0.33, 0.35]) * rng.uniform(0.8, 1.1)
    lane = road & (np.abs(xx - vx) < below * 1.2 + 0.3) & (((yy - hor) / np.maximum(below, 0.05)) % 24 < 12)
    rgb[lane] = [0.85, 0.85, 0.8]
    heat = np.where(yy < hor, 0.04, 0.3)
    heat = np.where(road, 0.42 if not night else 0.33, heat)
    for _ in range(int(rng.integers(2, 6))):  # buildings and trees on the horizon
        bx0 = rng.uniform(0, w)
        bw, bh = rng.uniform(0.08, 0.25) * w, rng.uniform(0.05, 0.25) * h
        m = (xx >= bx0) & (xx < bx0 + bw) & (yy < hor) & (yy >= hor - bh) & (np.abs(xx - vx) > 0.1 * w)
        rgb[m] = random_color(rng, s=(0.0, 0.4), v=(0.25, 0.6))
        heat[m] = rng.uniform(0.3, 0.42)
    rgb = rgb + 0.03 * smooth_noise(rng, hw, 4)[..., None]
    heat = heat + 0.03 * smooth_noise(rng, hw, 8)

    def propose(r: np.random.Generator) -> tuple:
        kind = r.choice(["car", "person", "bicycle"], p=[0.35, 0.5, 0.15])
        foot = r.uniform(hor + 0.45 * (h - hor), h - 1)
        s = (foot - hor) / (h - hor)
        if kind == "car":
            shape = "car_rear" if r.random() < 0.75 else "car_side"
            ow = max(12.0, s * w * 0.42 * ASPECT[shape] / 1.35 * r.uniform(0.85, 1.15))
            oh = ow / ASPECT[shape]
            cx = vx + r.uniform(-0.45, 0.45) * s * w
        else:
            shape = kind
            oh = max(14.0, s * h * (0.65 if kind == "person" else 0.42) * r.uniform(0.85, 1.15))
            ow = oh * ASPECT[shape] * r.uniform(0.85, 1.15)
            cx = vx + r.choice([-1, 1]) * r.uniform(0.35, 0.7) * s * w
        x0 = float(np.clip(cx - ow / 2, 1, w - ow - 1))
        return (x0, foot - oh, x0 + ow, foot), (shape, str(kind))

    n = int(rng.integers(1, max_objects + 1))
    objects = [make_object(rng, shape, box, kind, night) for box, (shape, kind) in place_boxes(rng, propose, n, 0.1)]
    glow = None
    if night:
        lx = rng.uniform(0, w)
        glow = 0.25 * np.exp(-(((xx - lx) / (0.3 * w)) ** 2 + ((yy - hor) / (0.3 * h)) ** 2))
    return Scene(np.clip(rgb, 0, 1), heat, objects, light=float(rng.uniform(0.25, 0.4) if night else rng.uniform(0.85, 1.1)),
                 glow=glow, emissive=("light",) if night else ())


def coco_scene(rng: np.random.Generator, hw: tuple[int, int], max_objects: int = 6) -> Scene:
    """A varied RGB scene with annotated COCO-like objects and unannotated clutter."""
    h, w = hw
    yy = np.mgrid[0:h, 0:w][0]
    split = int(h * rng.uniform(0.3, 0.7))
    rgb = np.empty((h, w, 3))
    rgb[:split] = random_color(rng, s=(0.1, 0.7), v=(0.4, 1.0))
    rgb[split:] = random_color(rng, s=(0.1, 0.7), v=(0.2, 0.8))
    rgb = rgb * (0.9 + 0.2 * (yy / h))[..., None] + 0.06 * smooth_noise(rng, hw, int(rng.integers(3, 12)))[..., None]
    clutter = []
    for _ in range(int(rng.integers(0, 3))):
        shape = str(rng.choice(["tree", "house", "star", "umbrella", "cup"]))
        ch = rng.uniform(0.15, 0.5) * h
        cw = ch * ASPECT[shape]
        x0, y0 = rng.uniform(0, max(w - cw, 1)), rng.uniform(0, max(h - ch, 1))
        clutter.append(make_object(rng, shape, (x0, y0, x0 + cw, y0 + ch), None))
    weights = np.array([0.4, 0.12, 0.2, 0.08, 0.1, 0.1])

    def propose(r: np.random.Generator) -> tuple:
        k = int(r.choice(len(COCO_CATEGORIES), p=weights))
        _, name, shape = COCO_CATEGORIES[k]
        size = r.uniform(0.12, 0.7) * h
        aspect = ASPECT[shape] * r.uniform(0.85, 1.15)
        oh, ow = (size, size * aspect) if aspect <= 1 else (size / aspect, size)
        x0, y0 = r.uniform(1, w - ow - 1), r.uniform(1, h - oh - 1)
        return (x0, y0, x0 + ow, y0 + oh), (shape, name)

    n = int(rng.integers(1, max_objects + 1))
    objects = [make_object(rng, shape, box, name) for box, (shape, name) in place_boxes(rng, propose, n, 0.15)]
    for o in objects:
        o.texture = 0.08
    for c in clutter:
        c.z = -1.0  # annotated objects are drawn over clutter
    return Scene(np.clip(rgb, 0, 1), np.full(hw, 0.4), clutter + objects, light=float(rng.uniform(0.75, 1.1)))
