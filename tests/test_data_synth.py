"""The synthetic tiny world: determinism, format validity with independent parsers, the heat
model, DomainNet styles, atomic and concurrent ensure_world, generation time."""

from __future__ import annotations

import json
import multiprocessing as mp
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from capgate.data import WorldConfig, WorldManifest, ensure_world, generate_world, open_detection, read_domainnet
from capgate.data import synth_datasets
from capgate.errors import DataError

TINY = WorldConfig(
    llvip_train=4, llvip_test=2, flir_train=4, flir_val=2, flir_video=2, imagenet_classes=4, imagenet_train=2,
    imagenet_val=1, coco_train=4, coco_val=2, domainnet_classes=3, domainnet_train=2, domainnet_test=1,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> WorldManifest:
    return generate_world(tmp_path_factory.mktemp("w") / "world", TINY, seed=3)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_world(world: WorldManifest, tmp_path: Path) -> None:
    again = generate_world(tmp_path / "again", TINY, seed=3)
    a, b = _files(world.root), _files(again.root)
    assert a.keys() == b.keys() and len(a) > 100
    assert all(a[k] == b[k] for k in a)
    assert again.fingerprint == world.fingerprint
    other = generate_world(tmp_path / "other", TINY, seed=4)
    assert other.fingerprint != world.fingerprint
    assert other.datasets["llvip"]["fingerprint"] != world.datasets["llvip"]["fingerprint"]


def test_world_is_identical_across_processes_with_other_hash_seeds(world: WorldManifest, tmp_path: Path) -> None:
    """Each Ray worker generates in its own process: nothing may depend on PYTHONHASHSEED (a set's
    iteration order once changed the COCO- and FLIR-like images between processes)."""
    import os
    import subprocess
    import sys

    code = ("import sys; from capgate.data import WorldConfig, generate_world; import json; "
            "generate_world(sys.argv[1], WorldConfig.from_dict(json.loads(sys.argv[2])), seed=3)")
    for hash_seed in ("1", "12345"):
        out = tmp_path / f"h{hash_seed}"
        subprocess.run([sys.executable, "-c", code, str(out), json.dumps(TINY.to_dict())], check=True,
                       env={**os.environ, "PYTHONHASHSEED": hash_seed}, capture_output=True)
        assert _files(out) == _files(world.root), f"PYTHONHASHSEED={hash_seed} changed the world"


def test_manifest_records_config_seed_and_counts(world: WorldManifest) -> None:
    d = json.loads((world.root / "manifest.json").read_text())
    assert d["seed"] == 3 and d["config"]["llvip_train"] == 4 and d["fingerprint"] == world.fingerprint
    assert set(d["datasets"]) == {"llvip", "flir", "imagenet", "coco", "domainnet"}
    assert d["datasets"]["llvip"]["files"] == 6 * 3  # visible + infrared + xml per pair
    assert WorldManifest.load(world.root) == world


def test_llvip_voc_parses_with_elementtree_and_pairs_align(world: WorldManifest) -> None:
    root = world.dataset_root("llvip")
    for split, n in (("train", 4), ("test", 2)):
        vis = sorted(p.name for p in (root / "visible" / split).iterdir())
        assert vis == sorted(p.name for p in (root / "infrared" / split).iterdir()) and len(vis) == n
        for name in vis:
            tree = ET.parse(root / "Annotations" / name.replace(".jpg", ".xml")).getroot()
            w, h = int(tree.findtext("size/width")), int(tree.findtext("size/height"))
            with Image.open(root / "visible" / split / name) as rgb, Image.open(root / "infrared" / split / name) as ir:
                assert rgb.size == ir.size == (w, h) and rgb.mode == "RGB" and ir.mode == "L"
            objs = tree.findall("object")
            assert objs and all(o.findtext("name") == "person" for o in objs)
            for o in objs:
                x0, y0, x1, y1 = (int(o.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax"))
                assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
    rgb, ir = open_detection("llvip", root, "train", "rgb"), open_detection("llvip", root, "train", "ir")
    for a, b in zip(rgb.samples, ir.samples):
        assert a.image_path.name == b.image_path.name and np.array_equal(a.boxes, b.boxes)
        # written in the LLVIP authors' convention: the XML corners are the xyxy box (w = xmax - xmin)
        tree = ET.parse(root / "Annotations" / a.image_path.name.replace(".jpg", ".xml")).getroot()
        corners = [[int(o.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax")] for o in tree.iter("object")]
        assert a.boxes.tolist() == corners


def test_coco_and_flir_json_parse_with_pycocotools(world: WorldManifest) -> None:
    flir = world.dataset_root("flir")
    for folder in ("images_rgb_train", "images_thermal_val", "video_rgb_test", "video_thermal_test"):
        coco = COCO(str(flir / folder / "coco.json"))
        cats = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
        assert (cats[1], cats[2], cats[3], cats[17]) == ("person", "bike", "car", "dog")
        used = {a["category_id"] for a in coco.loadAnns(coco.getAnnIds())}
        assert used and used <= {1, 2, 3}
        for img in coco.loadImgs(coco.getImgIds()):
            assert (flir / folder / img["file_name"]).is_file()
            for a in coco.loadAnns(coco.getAnnIds(imgIds=[img["id"]])):
                x, y, w, h = a["bbox"]
                assert x >= 0 and y >= 0 and w > 0 and h > 0 and x + w <= img["width"] and y + h <= img["height"]
    vid = json.loads((flir / "rgb_to_thermal_vid_map.json").read_text())
    assert len(vid) == 2 and all((flir / "video_thermal_test" / "data" / t).is_file() for t in vid.values())
    coco_root = world.dataset_root("coco")
    gt = COCO(str(coco_root / "annotations" / "instances_train.json"))
    assert {c["name"] for c in gt.loadCats(gt.getCatIds())} >= {"person", "car", "bicycle"}
    assert len(gt.getImgIds()) == 4 and all((coco_root / "train" / i["file_name"]).is_file() for i in gt.loadImgs(gt.getImgIds()))


def test_infrared_is_a_heat_rendering_not_a_grey_copy(tmp_path: Path) -> None:
    m = generate_world(tmp_path / "w", WorldConfig(datasets=("llvip", "flir"), llvip_train=12, llvip_test=0,
                                                     flir_train=12, flir_val=0, flir_video=0), seed=0)
    corrs, contrast = [], []
    for fmt in ("llvip", "flir"):
        rgb = open_detection(fmt, m.dataset_root(fmt), "train", "rgb")
        ir = open_detection(fmt, m.dataset_root(fmt), "train", "ir")
        for a, b in zip(rgb.samples, ir.samples):
            grey = np.asarray(Image.open(a.image_path).convert("L"), dtype=float)
            heat = np.asarray(Image.open(b.image_path), dtype=float)
            corrs.append(np.corrcoef(grey.ravel(), heat.ravel())[0, 1])
            persons = [box for box, lab in zip(b.boxes, b.labels) if b.labels.size and ir.categories[lab] == "person"]
            if persons:
                x0, y0, x1, y1 = (int(v) for v in persons[0])
                inside = heat[y0:y1, x0:x1].mean()
                contrast.append(inside - heat.mean())
    assert np.median(corrs) < 0.8  # not a grey copy of the RGB image
    assert contrast and np.mean(contrast) > 25  # people are warm (bright) against a cool background


def test_domainnet_layout_and_distinct_styles(world: WorldManifest) -> None:
    root = world.dataset_root("domainnet")
    white = {}
    for domain in ("real", "sketch", "clipart", "painting", "quickdraw"):
        train, test = read_domainnet(root, domain, "train"), read_domainnet(root, domain, "test")
        assert train.classes == test.classes == ("bicycle", "car", "dog") and (len(train), len(test)) == (6, 3)
        # DomainNet's file names carry label + 1: real/bicycle/real_001_000000.jpg has label 0
        assert all(int(p.stem.split("_")[1]) == y + 1 for p, y in train.samples)
        pix = np.stack([np.asarray(Image.open(p).convert("RGB"), dtype=float) for p, _ in train.samples])
        white[domain] = float((pix.min(axis=-1) > 230).mean())
    assert white["quickdraw"] > 0.8 and white["sketch"] > 0.4 and white["real"] < 0.1 and white["painting"] < 0.1


def test_imagenet_layout(world: WorldManifest) -> None:
    root = world.dataset_root("imagenet")
    classes = sorted(p.name for p in (root / "train").iterdir())
    assert len(classes) == 4 and classes == sorted(p.name for p in (root / "val").iterdir())
    assert all(len(list((root / "train" / c).iterdir())) == 2 for c in classes)


def test_ensure_world_reuses_regenerates_and_refuses(tmp_path: Path) -> None:
    cfg = WorldConfig(datasets=("llvip",), llvip_train=2, llvip_test=1)
    root = tmp_path / "w"
    m1 = ensure_world(root, cfg, seed=0)
    stamp = (root / "manifest.json").stat().st_mtime_ns
    assert ensure_world(root, cfg, seed=0) == m1 and (root / "manifest.json").stat().st_mtime_ns == stamp
    m2 = ensure_world(root, cfg, seed=1)
    assert m2.seed == 1 and m2.fingerprint != m1.fingerprint and WorldManifest.load(root).seed == 1
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith("-lock")) == ["w"]
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(DataError, match="is not empty and holds no capgate world"):
        ensure_world(tmp_path / "mine", cfg)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_killed_generation_leaves_no_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(folder: Path, cfg: WorldConfig, seed: int) -> dict:
        (folder / "half").mkdir(parents=True)
        raise KeyboardInterrupt

    monkeypatch.setitem(synth_datasets.GENERATORS, "coco", boom)
    with pytest.raises(KeyboardInterrupt):
        ensure_world(tmp_path / "w", WorldConfig(datasets=("llvip", "coco"), llvip_train=1, llvip_test=1))
    assert not (tmp_path / "w").exists()
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith("-lock")] == []


def _ensure_in_child(root: str, q: mp.Queue) -> None:
    m = ensure_world(root, WorldConfig(datasets=("llvip",), llvip_train=3, llvip_test=1), seed=5)
    q.put(m.fingerprint)


def test_concurrent_ensure_world_generates_one_world(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_ensure_in_child, args=(str(tmp_path / "w"), q)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    fps = {q.get(timeout=5) for _ in procs}
    assert len(fps) == 1 and WorldManifest.load(tmp_path / "w").fingerprint in fps
    assert sorted(p.name for p in tmp_path.iterdir()) == [".w.world-lock", "w"]


def test_world_config_overrides() -> None:
    cfg = WorldConfig().with_overrides({"llvip_train": "7", "llvip_size": "96,80", "datasets": "llvip,coco"})
    assert (cfg.llvip_train, cfg.llvip_size, cfg.datasets) == (7, (96, 80), ("llvip", "coco"))
    assert WorldConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(DataError, match=r"unknown world setting\(s\) \['llvip_trian'\]; valid: datasets, llvip_size"):
        WorldConfig().with_overrides({"llvip_trian": "3"})
    with pytest.raises(DataError, match=r"--set llvip_train='x': not a valid int"):
        WorldConfig().with_overrides({"llvip_train": "x"})
    with pytest.raises(DataError, match=r"unknown \['mnist'\]"):
        WorldConfig(datasets=("mnist",))


def test_small_world_generates_fast(tmp_path: Path) -> None:
    t0 = time.perf_counter()
    generate_world(tmp_path / "w", TINY, seed=0)
    assert time.perf_counter() - t0 < 10.0  # ~80 images; well under a second on an idle core


@pytest.mark.slow
def test_default_world_generates_well_under_a_minute(tmp_path: Path) -> None:
    t0 = time.perf_counter()
    m = generate_world(tmp_path / "w")
    assert time.perf_counter() - t0 < 60.0
    ds = open_detection("llvip", m.dataset_root("llvip"), "train", "rgb", class_map="person")
    assert len(ds) == 300 and ds.class_counts()["person"] >= 300


def test_ensure_world_inside_a_callers_lock_on_the_sibling_lock_file(tmp_path: Path) -> None:
    """capgate.train wraps ensure_world in its own flock on ``.<name>.lock``: no deadlock."""
    import fcntl
    import signal

    def timeout(signum: int, frame: object) -> None:
        raise TimeoutError("ensure_world blocked on the caller's lock")

    old = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(60)
    try:
        with open(tmp_path / ".w.lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            m = ensure_world(tmp_path / "w", WorldConfig(datasets=("llvip",), llvip_train=1, llvip_test=1))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert m.datasets["llvip"]["files"] == 6
