"""One generator per synthetic dataset, each writing the real dataset's layout into a folder.

Each generator takes ``(folder, config, seed)``, writes its files and returns a small dict
recorded in the world manifest (categories, splits, counts).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from capgate.data.domainnet import domainnet_class_index
from capgate.data.flir import VIDEO_MAP, flir_v2_folder
from capgate.data.synth_classify import DOMAINNET_SHAPES, domainnet_image, imagenet_classes, imagenet_image
from capgate.data.synth_formats import coco_annotation, coco_image, write_jpeg, write_json, write_voc
from capgate.data.synth_render import render_ir, render_rgb
from capgate.data.synth_scenes import COCO_CATEGORIES, coco_scene, flir_scene, llvip_cameras, llvip_scene

#: A :class:`capgate.data.synth_world.WorldConfig`; not imported, since synth_world imports this
#: module (no import circle, not even a type-only one).
WorldConfig = Any

__all__ = ["GENERATORS", "image_rng", "FLIR_CATEGORIES"]

#: FLIR ADAS v2's categories (non-contiguous ids); the tiny world draws person, bike and car.
FLIR_CATEGORIES = ((1, "person"), (2, "bike"), (3, "car"), (4, "motor"), (6, "bus"), (7, "train"), (8, "truck"),
                   (10, "light"), (11, "hydrant"), (12, "sign"), (17, "dog"), (37, "skateboard"),
                   (73, "stroller"), (77, "scooter"), (79, "other vehicle"))
_FLIR_ID = {"person": 1, "bicycle": 2, "car": 3}


def image_rng(seed: int, dataset: str, split: str, index: int) -> np.random.Generator:
    """The generator of one image: independent of generation order and of other counts."""
    key = int.from_bytes(hashlib.sha256(f"{dataset}/{split}".encode()).digest()[:4], "little")
    return np.random.default_rng([seed, key, index])


def _boxes(scene: Any) -> list[tuple[str, tuple[int, int, int, int]]]:
    return [(o.category, o.tight_box) for o in scene.objects if o.category is not None and o.tight_box is not None]


def gen_llvip(folder: Path, cfg: WorldConfig, seed: int) -> dict[str, Any]:
    """LLVIP layout: Annotations/*.xml, visible/{train,test}/*.jpg, infrared/{train,test}/*.jpg."""
    w, h = cfg.llvip_size
    cams = llvip_cameras(image_rng(seed, "llvip", "cameras", 0), (h, w), cfg.llvip_cameras)
    counts = {}
    for split, n, base in (("train", cfg.llvip_train, 10001), ("test", cfg.llvip_test, 190001)):
        boxes = 0
        for i in range(n):
            rng = image_rng(seed, "llvip", split, i)
            scene = llvip_scene(rng, cams[int(rng.integers(len(cams)))], cfg.llvip_max_people)
            rgb, ir = render_rgb(scene, rng), render_ir(scene, rng)
            name = f"{base + i:06d}"
            write_jpeg(folder / "visible" / split / f"{name}.jpg", rgb, cfg.jpeg_quality)
            write_jpeg(folder / "infrared" / split / f"{name}.jpg", ir, cfg.jpeg_quality)
            objs = _boxes(scene)
            write_voc(folder / "Annotations" / f"{name}.xml", f"{name}.jpg", w, h, objs)
            boxes += len(objs)
        counts[split] = {"images": n, "boxes": boxes}
    return {"format": "llvip", "categories": ["person"], "splits": counts}


def gen_flir(folder: Path, cfg: WorldConfig, seed: int) -> dict[str, Any]:
    """FLIR ADAS v2 layout with train, val and a video test pair plus the pairing map."""
    w, h = cfg.flir_size
    cats = [{"id": i, "name": n, "supercategory": "unknown"} for i, n in FLIR_CATEGORIES]
    counts, vid_map = {}, {}
    for split, n in (("train", cfg.flir_train), ("val", cfg.flir_val), ("video_test", cfg.flir_video)):
        per_mod: dict[str, dict[str, list]] = {m: {"images": [], "annotations": []} for m in ("rgb", "ir")}
        for i in range(n):
            rng = image_rng(seed, "flir", split, i)
            scene = flir_scene(rng, (h, w), cfg.flir_max_objects)
            arrays = {"rgb": render_rgb(scene, rng), "ir": render_ir(scene, rng)}
            objs = _boxes(scene)
            for mod, suffix in (("rgb", "RGB"), ("ir", "THERMAL")):
                fname = f"video-syn{split.replace('_', '')}-frame-{i:06d}-{suffix}.jpg"
                write_jpeg(flir_v2_folder(folder, split, mod) / "data" / fname, arrays[mod], cfg.jpeg_quality)
                rec = per_mod[mod]
                rec["images"].append(coco_image(i, f"data/{fname}", w, h))
                for cat, box in objs:
                    rec["annotations"].append(coco_annotation(len(rec["annotations"]) + 1, i, _FLIR_ID[cat], box))
            if split == "video_test":
                vid_map[f"video-synvideotest-frame-{i:06d}-RGB.jpg"] = f"video-synvideotest-frame-{i:06d}-THERMAL.jpg"
        for mod, rec in per_mod.items():
            doc = {"info": {"description": "capgate synthetic FLIR-like"}, "licenses": [], "categories": cats, **rec}
            write_json(flir_v2_folder(folder, split, mod) / "coco.json", doc)
        counts[split] = {"images": n, "boxes": len(per_mod["rgb"]["annotations"])}
    write_json(folder / VIDEO_MAP, vid_map)
    return {"format": "flir_v2", "categories": ["person", "bike", "car"], "splits": counts}


def gen_coco(folder: Path, cfg: WorldConfig, seed: int) -> dict[str, Any]:
    """COCO layout: annotations/instances_{train,val}.json and train/, val/ image folders."""
    w, h = cfg.coco_size
    cats = [{"id": i, "name": n, "supercategory": "object"} for i, n, _ in COCO_CATEGORIES]
    cat_id = {n: i for i, n, _ in COCO_CATEGORIES}
    counts = {}
    for split, n in (("train", cfg.coco_train), ("val", cfg.coco_val)):
        images, anns = [], []
        for i in range(n):
            rng = image_rng(seed, "coco", split, i)
            scene = coco_scene(rng, (h, w), cfg.coco_max_objects)
            image_id = i + 1
            fname = f"{image_id:012d}.jpg"
            write_jpeg(folder / split / fname, render_rgb(scene, rng), cfg.jpeg_quality)
            images.append(coco_image(image_id, fname, w, h))
            for cat, box in _boxes(scene):
                anns.append(coco_annotation(len(anns) + 1, image_id, cat_id[cat], box))
        doc = {"info": {"description": "capgate synthetic COCO-like"}, "licenses": [], "categories": cats,
               "images": images, "annotations": anns}
        write_json(folder / "annotations" / f"instances_{split}.json", doc)
        counts[split] = {"images": n, "boxes": len(anns)}
    return {"format": "coco", "categories": [n for _, n, _ in COCO_CATEGORIES], "splits": counts}


def gen_imagenet(folder: Path, cfg: WorldConfig, seed: int) -> dict[str, Any]:
    """ImageNet folder layout: {train,val}/<class>/*.jpg, classes = (shape, texture) pairs."""
    classes = imagenet_classes(cfg.imagenet_classes)
    for split, n in (("train", cfg.imagenet_train), ("val", cfg.imagenet_val)):
        for name, shape, tex in classes:
            for i in range(n):
                rng = image_rng(seed, "imagenet", f"{split}/{name}", i)
                write_jpeg(folder / split / name / f"{name}_{i:05d}.jpg",
                           imagenet_image(rng, shape, tex, cfg.imagenet_size), cfg.jpeg_quality)
    return {"format": "imagenet", "classes": sorted(c[0] for c in classes),
            "splits": {"train": cfg.imagenet_train * len(classes), "val": cfg.imagenet_val * len(classes)}}


def gen_domainnet(folder: Path, cfg: WorldConfig, seed: int) -> dict[str, Any]:
    """DomainNet layout: <domain>/<class>/*.jpg and <domain>_{train,test}.txt split files."""
    if cfg.domainnet_classes > len(DOMAINNET_SHAPES):
        from capgate.errors import DataError

        raise DataError(f"domainnet_classes={cfg.domainnet_classes} exceeds the {len(DOMAINNET_SHAPES)} "
                        "shapes the tiny world can draw; fix: choose fewer")
    classes = list(domainnet_class_index(list(DOMAINNET_SHAPES)[: cfg.domainnet_classes]))  # DomainNet's order
    for domain in cfg.domainnet_domains:
        lines: dict[str, list[str]] = {"train": [], "test": []}
        for label, cls in enumerate(classes):
            for i in range(cfg.domainnet_train + cfg.domainnet_test):
                split = "train" if i < cfg.domainnet_train else "test"
                rng = image_rng(seed, "domainnet", f"{domain}/{cls}", i)
                rel = f"{domain}/{cls}/{domain}_{label + 1:03d}_{i:06d}.jpg"  # as in DomainNet: label + 1
                write_jpeg(folder / rel, domainnet_image(rng, DOMAINNET_SHAPES[cls], domain, cfg.domainnet_size),
                           cfg.jpeg_quality)
                lines[split].append(f"{rel} {label}")
        for split, ls in lines.items():
            (folder / f"{domain}_{split}.txt").write_text("".join(s + "\n" for s in ls), encoding="utf-8")
    return {"format": "domainnet", "domains": list(cfg.domainnet_domains), "classes": classes}


GENERATORS: dict[str, Callable[[Path, WorldConfig, int], dict[str, Any]]] = {
    "llvip": gen_llvip, "flir": gen_flir, "imagenet": gen_imagenet, "coco": gen_coco, "domainnet": gen_domainnet,
}
