"""Readers on tiny hand-written fixtures in each real layout, including every bad-input case."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from capgate.data import (
    ClassMap,
    load_image_array,
    open_classification,
    open_detection,
    read_coco,
    read_domainnet,
    read_flir,
    read_imagenet,
    read_llvip,
)
from capgate.data.classmap import resolve_class_map
from capgate.errors import DataError


def _img(path: Path, w: int = 20, h: int = 16, mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (w, h), 128).save(path)


def _voc(path: Path, objects: list[tuple[str, int, int, int, int]], w: int = 20, h: int = 16) -> None:
    """One LLVIP annotation as labelImg writes it (labelImg's ``libs/pascal_voc_io.py``: folder,
    filename, path, source/database ``Unknown``, size with depth, segmented, then per object name,
    pose, truncated, difficult and the integer bndbox corners), the tool the LLVIP XMLs come from;
    the real images are 1280x1024, these are shrunk to ``w`` x ``h``."""
    objs = "".join(
        f"\t<object>\n\t\t<name>{n}</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>0</truncated>\n"
        f"\t\t<difficult>0</difficult>\n\t\t<bndbox>\n\t\t\t<xmin>{a}</xmin>\n\t\t\t<ymin>{b}</ymin>\n"
        f"\t\t\t<xmax>{c}</xmax>\n\t\t\t<ymax>{d}</ymax>\n\t\t</bndbox>\n\t</object>\n" for n, a, b, c, d in objects
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"<annotation>\n\t<folder>Annotations</folder>\n\t<filename>{path.stem}.jpg</filename>\n"
        f"\t<path>/data/LLVIP/visible/train/{path.stem}.jpg</path>\n\t<source>\n\t\t<database>Unknown</database>\n"
        f"\t</source>\n\t<size>\n\t\t<width>{w}</width>\n\t\t<height>{h}</height>\n\t\t<depth>3</depth>\n"
        f"\t</size>\n\t<segmented>0</segmented>\n{objs}</annotation>\n"
    )


@pytest.fixture
def llvip(tmp_path: Path) -> Path:
    root = tmp_path / "LLVIP"
    for split, names in (("train", ["010001", "010002"]), ("test", ["190001"])):
        for n in names:
            _img(root / "visible" / split / f"{n}.jpg")
            _img(root / "infrared" / split / f"{n}.jpg", mode="L")
    _voc(root / "Annotations" / "010001.xml", [("person", 1, 1, 10, 8), ("person", 11, 5, 20, 16)])
    _voc(root / "Annotations" / "010002.xml", [])
    _voc(root / "Annotations" / "190001.xml", [("person", 3, 4, 6, 9)])
    return root


def _coco_doc(images: list[tuple[int, str]], anns: list[tuple[int, int, list[float]]], cats: list[tuple[int, str]]) -> dict:
    return {
        "images": [{"id": i, "file_name": f, "width": 20, "height": 16} for i, f in images],
        "annotations": [{"id": k + 1, "image_id": i, "category_id": c, "bbox": b, "area": b[2] * b[3], "iscrowd": 0}
                        for k, (i, c, b) in enumerate(anns)],
        "categories": [{"id": i, "name": n} for i, n in cats],
    }


FLIR_CATS = [(1, "person"), (2, "bike"), (3, "car"), (4, "motor"), (6, "bus"), (17, "dog")]


@pytest.fixture
def flir_v2(tmp_path: Path) -> Path:
    root = tmp_path / "FLIR_ADAS_v2"
    for folder, prefix in (("images_rgb_train", "r"), ("images_thermal_train", "t"), ("images_rgb_val", "r"),
                           ("images_thermal_val", "t"), ("video_rgb_test", "vr"), ("video_thermal_test", "vt")):
        _img(root / folder / "data" / f"{prefix}0.jpg", mode="L" if "thermal" in folder else "RGB")
        _img(root / folder / "data" / f"{prefix}1.jpg", mode="L" if "thermal" in folder else "RGB")
        doc = _coco_doc([(5, f"data/{prefix}0.jpg"), (9, f"data/{prefix}1.jpg")],
                        [(5, 1, [2, 3, 4, 5]), (5, 17, [0, 0, 20, 16]), (9, 3, [10, 2, 6, 6]), (9, 6, [1, 1, 2, 2])],
                        FLIR_CATS)
        (root / folder / "coco.json").write_text(json.dumps(doc))
    (root / "rgb_to_thermal_vid_map.json").write_text(json.dumps({"vr0.jpg": "vt0.jpg", "vr1.jpg": "vt1.jpg"}))
    return root


# --- LLVIP -----------------------------------------------------------------------------------

def test_llvip_reads_boxes_in_the_authors_convention(llvip: Path) -> None:
    ds = read_llvip(llvip, "train", "rgb")
    assert ds.name == "llvip/rgb" and ds.categories == ("person",) and len(ds) == 2
    s = ds.samples[0]
    assert s.image_path == llvip / "visible" / "train" / "010001.jpg"
    # LLVIP's toolbox/voc2coco.py: bbox = [xmin, ymin, xmax - xmin, ymax - ymin]; so the XML box
    # (1,1,10,8) is xyxy (1,1,10,8), width 9 (not the VOC reading (0,0,10,8), width 10)
    np.testing.assert_array_equal(s.boxes, np.array([[1, 1, 10, 8], [11, 5, 20, 16]], dtype=np.float32))
    assert s.labels.tolist() == [0, 0] and ds.samples[1].boxes.shape == (0, 4)
    ir = read_llvip(llvip, "train", "ir")
    assert [x.image_path.name for x in ir.samples] == [x.image_path.name for x in ds.samples]
    assert [x.image_id for x in ir.samples] == [x.image_id for x in ds.samples]
    np.testing.assert_array_equal(ir.samples[0].boxes, s.boxes)
    assert read_llvip(llvip, "test", "ir").samples[0].boxes.tolist() == [[3, 4, 6, 9]]
    arr = load_image_array(ir.samples[0].image_path)  # single-channel on disk, 3 channels loaded
    assert arr.shape == (16, 20, 3) and arr.dtype == np.uint8 and (arr[..., 0] == arr[..., 2]).all()
    assert ds.tag == "llvip[all]" and len(ds.fingerprint()) == 64 and ds.fingerprint() != ir.fingerprint()


def test_voc_to_coco_round_trip_through_pycocotools(llvip: Path, tmp_path: Path) -> None:
    gt = read_llvip(llvip, "train", "rgb").to_coco()
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    coco = COCO(str(path))
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[1]))
    # what the LLVIP authors' voc2coco.py writes: (1,1,10,8) -> xywh (1,1,9,7); (11,5,20,16) -> (11,5,9,11)
    assert [a["bbox"] for a in anns] == [[1.0, 1.0, 9.0, 7.0], [11.0, 5.0, 9.0, 11.0]]
    assert [a["area"] for a in anns] == [63.0, 99.0]
    assert coco.loadCats(coco.getCatIds()) == [{"id": 1, "name": "person", "supercategory": ""}]
    assert coco.loadImgs([1])[0]["file_name"] == "visible/train/010001.jpg"
    back = read_coco(path, llvip, split="x")
    np.testing.assert_array_equal(back.samples[0].boxes, read_llvip(llvip, "train").samples[0].boxes)


def test_llvip_malformed_xml_names_file(llvip: Path) -> None:
    (llvip / "Annotations" / "010002.xml").write_text("<annotation><size>")
    with pytest.raises(DataError, match=r"010002\.xml: malformed XML"):
        read_llvip(llvip, "train")


def test_llvip_missing_annotation_and_missing_folder(llvip: Path, tmp_path: Path) -> None:
    (llvip / "Annotations" / "010002.xml").unlink()
    with pytest.raises(DataError, match=r"010002\.xml: annotation is missing for image 010002\.jpg"):
        read_llvip(llvip, "train")
    with pytest.raises(DataError, match=r"visible/train: folder is missing"):
        read_llvip(tmp_path / "nowhere", "train")
    with pytest.raises(DataError, match="valid splits: train, test"):
        read_llvip(llvip, "val")


def test_llvip_zero_area_and_outside_boxes_error_or_drop(llvip: Path) -> None:
    # xmin == xmax occurs in the real archive: zero area, never silently widened to one pixel
    _voc(llvip / "Annotations" / "010002.xml", [("person", 7, 3, 7, 9), ("person", 2, 2, 40, 10), ("person", 2, 2, 5, 5)])
    with pytest.raises(DataError) as err:
        read_llvip(llvip, "train")
    msg = str(err.value)
    assert "2 problem(s)" in msg and "box [7.0, 3.0, 7.0, 9.0] (xyxy) has zero or negative area" in msg
    assert "outside the 20x16 image" in msg and "010002.xml: box" in msg
    assert "capgate data verify --drop-invalid" in msg and "drop_invalid: true" in msg
    ds = read_llvip(llvip, "train", drop_invalid=True)
    assert ds.samples[1].boxes.tolist() == [[2, 2, 5, 5]]
    assert ds.meta["dropped_boxes"] == 2 and ds.meta["invalid_boxes"] == 2
    assert ds.meta["dropped_by_file"] == {str(llvip / "Annotations" / "010002.xml"): 2}


def test_llvip_box_overshooting_by_one_pixel_is_clipped_and_counted(llvip: Path) -> None:
    _voc(llvip / "Annotations" / "010002.xml", [("person", 1, 1, 21, 16)])
    ds = read_llvip(llvip, "train")
    assert ds.samples[1].boxes.tolist() == [[1, 1, 20, 16]] and ds.meta["clipped_boxes"] == 1


def test_llvip_class_map_renames_and_drops(llvip: Path) -> None:
    _voc(llvip / "Annotations" / "010002.xml", [("Pedestrian", 1, 1, 5, 5), ("cyclist", 6, 6, 9, 9)])
    ds = read_llvip(llvip, "train", class_map={"person": ["person", "pedestrian"]})
    assert ds.categories == ("person",) and ds.samples[1].labels.tolist() == [0]
    assert ds.meta["unmapped_boxes"] == {"cyclist": 1} and ds.meta["class_map"] == "person=person|pedestrian"
    assert read_llvip(llvip, "train").categories == ("Pedestrian", "cyclist", "person")


# --- FLIR ------------------------------------------------------------------------------------

def test_flir_v2_maps_category_ids_by_id_not_position(flir_v2: Path) -> None:
    ds = read_flir(flir_v2, "train", "rgb")
    assert ds.categories == ("person", "bike", "car", "motor", "bus", "dog")
    assert ds.name == "flir/rgb" and ds.format == "flir_v2" and ds.meta["variant"] == "flir_v2"
    s5, s9 = ds.samples
    assert (s5.image_id, s9.image_id) == (5, 9)
    assert s5.labels.tolist() == [0, 5]  # id 17 -> dog, index 5
    assert s9.labels.tolist() == [2, 4]  # id 3 -> car, id 6 -> bus
    np.testing.assert_array_equal(s9.boxes, np.array([[10, 2, 16, 8], [1, 1, 3, 3]], dtype=np.float32))
    ir = read_flir(flir_v2, "val", "ir")
    assert ir.samples[0].image_path == flir_v2 / "images_thermal_val" / "data" / "t0.jpg"


def test_flir_class_map_person_and_video_pairs(flir_v2: Path) -> None:
    ds = read_flir(flir_v2, "video_test", "ir", class_map="person")
    assert ds.categories == ("person",) and ds.meta["class_map"] == "person" and ds.tag == "flir_v2[person]"
    assert [s.labels.tolist() for s in ds.samples] == [[0], []]
    assert ds.meta["unmapped_boxes"] == {"bus": 1, "car": 1, "dog": 1}
    assert ds.meta["video_pairs"] == 2
    pm = read_flir(flir_v2, "train", "rgb", class_map="person_bike_car")
    assert pm.categories == ("person", "bicycle", "car") and pm.samples[1].labels.tolist() == [2]


def test_flir_unknown_category_id_and_malformed_json(flir_v2: Path) -> None:
    p = flir_v2 / "images_rgb_train" / "coco.json"
    doc = json.loads(p.read_text())
    doc["annotations"][0]["category_id"] = 5
    p.write_text(json.dumps(doc))
    with pytest.raises(DataError, match=r"coco\.json: annotation 1 has unknown category id 5 \(known: 1 person, 2 bike"):
        read_flir(flir_v2, "train", "rgb")
    p.write_text("{\"images\": [")
    with pytest.raises(DataError, match=r"images_rgb_train/coco\.json: malformed JSON"):
        read_flir(flir_v2, "train", "rgb")


def test_flir_missing_image_and_escaping_paths(flir_v2: Path) -> None:
    (flir_v2 / "images_thermal_train" / "data" / "t1.jpg").unlink()
    with pytest.raises(DataError, match=r"t1\.jpg: image file is missing \(listed in coco\.json as 'data/t1\.jpg'\)"):
        read_flir(flir_v2, "train", "ir")
    p = flir_v2 / "images_rgb_val" / "coco.json"
    doc = json.loads(p.read_text())
    doc["images"][0]["file_name"] = "../../secret.jpg"
    doc["images"][1]["file_name"] = "/etc/passwd"
    p.write_text(json.dumps(doc))
    with pytest.raises(DataError) as err:
        read_flir(flir_v2, "val", "rgb")
    assert "'../../secret.jpg' escapes the dataset root" in str(err.value)
    assert "'/etc/passwd' is absolute; absolute paths are refused" in str(err.value)


def test_flir_video_map_missing_frame(flir_v2: Path) -> None:
    (flir_v2 / "video_thermal_test" / "data" / "vt1.jpg").unlink()
    with pytest.raises(DataError, match=r"vt1\.jpg: video frame listed in rgb_to_thermal_vid_map\.json is missing"):
        read_flir(flir_v2, "video_test", "rgb")


def test_flir_v1_thermal_reads_and_rgb_refused(tmp_path: Path) -> None:
    root = tmp_path / "FLIR_ADAS_1_3"
    _img(root / "train" / "thermal_8_bit" / "FLIR_00001.jpeg", mode="L")
    _img(root / "train" / "RGB" / "FLIR_00001.jpg")
    doc = _coco_doc([(0, "thermal_8_bit/FLIR_00001.jpeg")], [(0, 3, [1, 2, 3, 4]), (0, 18, [0, 0, 5, 5])],
                    [(1, "person"), (2, "bicycle"), (3, "car"), (18, "dog")])
    (root / "train" / "thermal_annotations.json").write_text(json.dumps(doc))
    ds = read_flir(root, "train", "ir", version="v1")
    assert ds.format == "flir_v1" and ds.samples[0].labels.tolist() == [2, 3]
    assert open_detection("flir", root, "train", "ir").format == "flir_v1"  # auto-detected
    with pytest.raises(DataError, match=r"v1 RGB frames are unannotated.*version='v2'.*modality='ir'"):
        read_flir(root, "train", "rgb", version="v1")


# --- COCO ------------------------------------------------------------------------------------

def test_coco_reader_crowd_zero_area_and_unknown_image(tmp_path: Path) -> None:
    _img(tmp_path / "val" / "a.jpg")
    doc = _coco_doc([(1, "a.jpg")], [(1, 1, [0, 0, 4, 4]), (1, 1, [3, 3, 0, 5])], [(1, "person")])
    doc["annotations"].append({"id": 9, "image_id": 1, "category_id": 1, "bbox": [0, 0, 9, 9], "iscrowd": 1})
    doc["annotations"].append({"id": 10, "image_id": 77, "category_id": 1, "bbox": [0, 0, 9, 9]})
    ann = tmp_path / "annotations" / "instances_val.json"
    ann.parent.mkdir()
    ann.write_text(json.dumps(doc))
    with pytest.raises(DataError) as err:
        read_coco(ann, tmp_path / "val")
    assert "box [3.0, 3.0, 3.0, 8.0] (xyxy) has zero or negative area" in str(err.value)
    assert "annotation 10 refers to unknown image id 77" in str(err.value)
    doc["annotations"].pop()
    ann.write_text(json.dumps(doc))
    ds = open_detection("coco", tmp_path, "val", drop_invalid=True)
    assert ds.split == "val" and ds.samples[0].boxes.tolist() == [[0, 0, 4, 4]]
    assert ds.meta["crowd_boxes_skipped"] == 1 and ds.meta["dropped_boxes"] == 1


def test_coco_not_instances_file(tmp_path: Path) -> None:
    p = tmp_path / "x.json"
    p.write_text("[1, 2]")
    with pytest.raises(DataError, match=r"x\.json: not a COCO instances file"):
        read_coco(p, tmp_path)


# --- class maps and registries ---------------------------------------------------------------

def test_class_map_forms_and_errors() -> None:
    cm = resolve_class_map("person=person|people;car=car")
    assert cm.targets == ("person", "car") and cm.lookup("PEOPLE") == "person" and cm.lookup("dog") is None
    assert str(cm) == "person=person|people;car=car" and str(resolve_class_map("person")) == "person"
    assert resolve_class_map({"a": "b"}).to_dict() == {"a": ["b"]}
    with pytest.raises(DataError, match="unknown class map 'nope'; valid presets: person, person_bike_car"):
        resolve_class_map("nope")
    with pytest.raises(DataError, match="sends source class 'x' to both 'a' and 'b'"):
        ClassMap.from_dict({"a": ["x"], "b": ["x"]})


def test_unknown_formats_list_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown detection format 'voc'; valid: llvip, flir, flir_v2, flir_v1, coco"):
        open_detection("voc", tmp_path, "train")
    with pytest.raises(DataError, match="unknown classification format 'cifar'; valid: imagenet, domainnet"):
        open_classification("cifar", tmp_path, "train")


# --- ImageNet and DomainNet ------------------------------------------------------------------

def test_imagenet_folders(tmp_path: Path) -> None:
    for cls, n in (("n02", 2), ("n01", 1)):
        for i in range(n):
            _img(tmp_path / "train" / cls / f"{cls}_{i}.JPEG")
    (tmp_path / "train" / "n01" / "notes.txt").write_text("x")
    ds = read_imagenet(tmp_path, "train")
    assert ds.classes == ("n01", "n02") and [lab for _, lab in ds.samples] == [0, 1, 1]
    assert len(ds.fingerprint()) == 64
    (tmp_path / "train" / "n03").mkdir()
    with pytest.raises(DataError, match=r"train/n03: class folder has no images"):
        read_imagenet(tmp_path, "train")


@pytest.fixture
def domainnet(tmp_path: Path) -> Path:
    root = tmp_path / "domainnet"
    classes = ["zebra", "apple", "bus"]  # class order = sorted: apple 0, bus 1, zebra 2
    lines = []
    for label, cls in enumerate(sorted(classes)):
        for i in range(2):
            rel = f"sketch/{cls}/sketch_{label:03d}_{i:06d}.jpg"
            _img(root / rel)
            lines.append(f"{rel} {label}")
    (root / "sketch_train.txt").write_text("\n".join(lines) + "\n")
    (root / "sketch_test.txt").write_text(lines[0] + "\n")
    return root


def test_domainnet_reads_and_subsets(domainnet: Path) -> None:
    ds = read_domainnet(domainnet, "sketch", "train")
    assert ds.classes == ("apple", "bus", "zebra") and [lab for _, lab in ds.samples] == [0, 0, 1, 1, 2, 2]
    assert ds.name == "domainnet/sketch" and ds.meta["class_subset"] == "all"
    sub = read_domainnet(domainnet, "sketch", "train", classes=["zebra", "apple"])
    assert sub.classes == ("apple", "zebra") and [lab for _, lab in sub.samples] == [0, 0, 1, 1]
    assert sub.meta["class_subset"] == ["apple", "zebra"] and sub.meta["n_classes_total"] == 3
    first = open_classification("domainnet", domainnet, "train", "sketch", 2)
    assert first.classes == ("apple", "bus") and first.meta["class_subset"] == "first2"
    with pytest.raises(DataError, match=r"unknown DomainNet class\(es\) \['cat'\]"):
        read_domainnet(domainnet, "sketch", classes=["cat"])
    with pytest.raises(DataError, match=r"domainnet/real: DomainNet domain folder is missing.*\(sketch\)"):
        read_domainnet(domainnet, "real")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("sketch/apple/sketch_000_000000.jpg", r"sketch_train\.txt:7: bad line"),
        ("sketch/apple/sketch_000_000000.jpg 3", r"sketch_train\.txt:7: label 3 is out of range 0\.\.2"),
        ("sketch/apple/missing.jpg 0", r"sketch_train\.txt:7: image file sketch/apple/missing\.jpg is missing"),
        ("../outside/apple/x.jpg 0", r"sketch_train\.txt:7: image path '\.\./outside/apple/x\.jpg' escapes"),
        ("sketch/bus/sketch_001_000000.jpg 0", r"sketch_train\.txt:7: label 0 means class 'apple' but the file"),
    ],
)
def test_domainnet_bad_lines_name_file_and_line(domainnet: Path, line: str, message: str) -> None:
    with open(domainnet / "sketch_train.txt", "a") as f:
        f.write(line + "\n")
    with pytest.raises(DataError, match=message):
        read_domainnet(domainnet, "sketch", "train")


def test_fingerprint_follows_image_bytes_and_annotations(llvip: Path) -> None:
    before = read_llvip(llvip, "train").fingerprint()
    assert read_llvip(llvip, "train").fingerprint() == before
    Image.new("RGB", (20, 16), 7).save(llvip / "visible" / "train" / "010002.jpg")
    after_image = read_llvip(llvip, "train").fingerprint()
    _voc(llvip / "Annotations" / "010002.xml", [("person", 1, 1, 2, 2)])
    after_box = read_llvip(llvip, "train").fingerprint()
    assert len({before, after_image, after_box}) == 3
