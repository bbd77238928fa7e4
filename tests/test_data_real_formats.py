"""Readers on tiny fixtures that follow the real datasets' files, each fixture citing its source.

The fixtures are written from the datasets' public descriptions and the public loaders that read
them (cited in each docstring), never from capgate's own writers; images are tiny stand-ins.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from capgate.data import open_classification, open_detection, read_domainnet, read_flir, read_imagenet, read_llvip
from capgate.data.domainnet import DOMAINNET_CLASSES, domainnet_order_key
from capgate.data.registry import export_coco, verify_dataset as verify
from capgate.errors import DataError


def _img(path: Path, w: int = 20, h: int = 16, mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (w, h), 100).save(path, format="JPEG")


# --- DomainNet --------------------------------------------------------------------------------

# Official labels named in the DomainNet split files (e.g. clipart_train.txt), checked against a
# public loader that indexes its 345-name list with those labels.
OFFICIAL = {"aircraft_carrier": 0, "airplane": 1, "paintbrush": 205, "paint_can": 206, "teddy-bear": 303,
            "The_Eiffel_Tower": 308, "The_Mona_Lisa": 310, "t-shirt": 327, "zigzag": 344}


@pytest.fixture
def domainnet(tmp_path: Path) -> Path:
    """The M3SDA release (http://ai.bu.edu/M3SDA/): ``<domain>/<class>/<domain>_<label+1:03d>_<n:06d>.jpg``
    for all 345 classes and the split files ``<domain>_{train,test}.txt`` beside the domain folders,
    lines ``clipart/aircraft_carrier/clipart_001_000018.jpg 0``. Two domains, images in a few classes."""
    root = tmp_path / "DomainNet"
    for domain in ("clipart", "sketch"):
        for cls in DOMAINNET_CLASSES:
            (root / domain / cls).mkdir(parents=True)
        for split, n in (("train", (18, 33)), ("test", (5,))):
            lines = []
            for cls, label in OFFICIAL.items():
                for k in n:
                    rel = f"{domain}/{cls}/{domain}_{label + 1:03d}_{k:06d}.jpg"
                    _img(root / rel)
                    lines.append(f"{rel} {label}")
            (root / f"{domain}_{split}.txt").write_text("\n".join(lines) + "\n")
    return root


def test_domainnet_class_order_is_the_official_one() -> None:
    assert len(DOMAINNET_CLASSES) == 345 and len(set(DOMAINNET_CLASSES)) == 345
    assert {c: DOMAINNET_CLASSES.index(c) for c in OFFICIAL} == OFFICIAL
    assert tuple(sorted(DOMAINNET_CLASSES, key=domainnet_order_key)) == DOMAINNET_CLASSES
    # plain sorted() (the old rule) agrees on only 17 labels and puts The_* first
    assert sum(a == b for a, b in zip(sorted(DOMAINNET_CLASSES), DOMAINNET_CLASSES)) == 17


def test_domainnet_real_split_files_read_with_one_index_for_every_domain(domainnet: Path) -> None:
    for domain in ("clipart", "sketch"):
        for split in ("train", "test"):
            ds = read_domainnet(domainnet, domain, split)
            assert ds.classes == DOMAINNET_CLASSES and ds.meta["class_order"] == "official"
            got = {p.parent.name: lab for p, lab in ds.samples}
            assert got == OFFICIAL
    assert verify(domainnet, "domainnet").ok
    # a class folder missing from one domain does not shift that domain's labels
    (domainnet / "sketch" / "zebra").rmdir()
    assert read_domainnet(domainnet, "sketch", "train").classes == DOMAINNET_CLASSES


def test_domainnet_subsets_pick_the_official_first_classes(domainnet: Path) -> None:
    first = open_classification("domainnet", domainnet, "train", "clipart", 2)
    assert first.classes == ("aircraft_carrier", "airplane") and sorted({y for _, y in first.samples}) == [0, 1]
    named = read_domainnet(domainnet, "clipart", "test", classes=["zigzag", "t-shirt", "The_Eiffel_Tower"])
    assert named.classes == ("The_Eiffel_Tower", "t-shirt", "zigzag")
    assert {p.parent.name: y for p, y in named.samples} == {"The_Eiffel_Tower": 0, "t-shirt": 1, "zigzag": 2}


def test_domainnet_wrong_label_names_the_official_one(domainnet: Path) -> None:
    with open(domainnet / "clipart_train.txt", "a") as f:
        f.write("clipart/The_Eiffel_Tower/clipart_309_000001.jpg 0\n")
    _img(domainnet / "clipart" / "The_Eiffel_Tower" / "clipart_309_000001.jpg")
    with pytest.raises(DataError, match=r"clipart_train\.txt:19: label 0 means class 'aircraft_carrier' but the file "
                                        r"lies in class folder 'The_Eiffel_Tower' \(label 308"):
        read_domainnet(domainnet, "clipart", "train")


# --- FLIR ADAS --------------------------------------------------------------------------------

V2_CATS = [{"id": 1, "name": "person", "supercategory": "unknown"}, {"id": 2, "name": "bike", "supercategory": "unknown"},
           {"id": 3, "name": "car", "supercategory": "unknown"}, {"id": 4, "name": "motor", "supercategory": "unknown"},
           {"id": 6, "name": "bus", "supercategory": "unknown"}, {"id": 17, "name": "dog", "supercategory": "unknown"}]


def _flir_v2_coco(names: list[str], boxes: dict[int, list[tuple[int, list[float]]]]) -> dict:
    images = [{"id": i, "width": 20, "height": 16, "file_name": f"data/{n}",
               "extra_info": {"video_id": n.split("-")[1], "frame": i}} for i, n in enumerate(names)]
    anns, k = [], 0
    for iid, items in boxes.items():
        for cid, b in items:
            anns.append({"id": k, "image_id": iid, "category_id": cid, "bbox": b, "area": b[2] * b[3], "iscrowd": 0,
                         "segmentation": [[]], "extra_info": {"occluded": False}})
            k += 1
    return {"info": {"description": "FLIR ADAS v2"}, "licenses": [], "categories": V2_CATS, "images": images,
            "annotations": anns}


@pytest.fixture
def flir_archive(tmp_path: Path) -> Path:
    """FLIR_ADAS_v2.zip unpacked (FLIR's v2 README; public loaders read ``FLIR_ADAS_v2/images_rgb_train/
    coco.json`` and the map at ``<archive top>/rgb_to_thermal_vid_map.json``): ``FLIR_ADAS_v2/`` holds
    ``{images_rgb,images_thermal}_{train,val}/`` and ``video_{rgb,thermal}_test/``, each with ``coco.json``,
    ``index.json`` and ``data/video-<video id>-frame-<n>-<frame id>.jpg``; the map, RGB name -> thermal
    name (different video ids per spectrum), lies beside ``FLIR_ADAS_v2/``. Returns the archive top."""
    top = tmp_path / "flir"
    root = top / "FLIR_ADAS_v2"
    pairs = {}
    for folder, vid in (("images_rgb_train", "4FRnNpmSmwktFJKjg"), ("images_thermal_train", "5Cv9dmZbmeTj6cNtM"),
                        ("images_rgb_val", "6tiaAwRCkcdTPbmyq"), ("images_thermal_val", "7qGjhi3rsZdCRyPHJ"),
                        ("video_rgb_test", "2Af3dwvs6YPfwSdf6"), ("video_thermal_test", "BvN6P5Xoa3Kh5kHaF")):
        names = [f"video-{vid}-frame-{n:06d}-X9sEqRbTjYEnWn{n}k.jpg" for n in range(2)]
        for n in names:
            _img(root / folder / "data" / n, mode="L" if "thermal" in folder else "RGB")
        doc = _flir_v2_coco(names, {0: [(1, [2, 3, 4, 5]), (17, [0, 0, 20, 16])], 1: [(2, [10, 2, 6, 6])]})
        (root / folder / "coco.json").write_text(json.dumps(doc))
        (root / folder / "index.json").write_text(json.dumps({"frames": [{"videoMetadata": {}, "datasetFrameId": n}
                                                                         for n in names]}))
        if folder.startswith("video"):
            pairs.setdefault("rgb" if "rgb" in folder else "ir", names)
    (top / "rgb_to_thermal_vid_map.json").write_text(json.dumps(dict(zip(pairs["rgb"], pairs["ir"]))))
    return top


def test_flir_v2_map_beside_the_root_is_found(flir_archive: Path) -> None:
    root = flir_archive / "FLIR_ADAS_v2"
    ds = read_flir(root, "video_test", "ir")
    assert ds.meta["video_pairs"] == 2 and len(ds) == 2
    report = verify(root, "flir")
    assert report.ok, report.lines()
    assert "  video_test pairs: 2 RGB frames paired with thermal frames by rgb_to_thermal_vid_map.json" in report.lines()
    assert ds.meta["class_notes"] == {"bike": "bicycles only (motorcycles are 'motor')"}


def test_flir_v2_missing_map_names_both_places(flir_archive: Path) -> None:
    (flir_archive / "rgb_to_thermal_vid_map.json").unlink()
    root = flir_archive / "FLIR_ADAS_v2"
    with pytest.raises(DataError, match=r"rgb_to_thermal_vid_map\.json is in neither .*FLIR_ADAS_v2 nor its parent"):
        read_flir(root, "video_test", "rgb")
    assert not verify(root, "flir").ok


def test_flir_v2_zero_width_box_names_the_file_and_can_be_dropped(flir_archive: Path) -> None:
    root = flir_archive / "FLIR_ADAS_v2"
    path = root / "images_rgb_train" / "coco.json"
    doc = json.loads(path.read_text())
    doc["annotations"].append({"id": 9, "image_id": 1, "category_id": 3, "bbox": [5, 5, 0, 4], "area": 0, "iscrowd": 0})
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError, match=r"images_rgb_train/coco\.json: box \[5\.0, 5\.0, 5\.0, 9\.0\] \(xyxy\) has zero"):
        read_flir(root, "train", "rgb")
    ds = read_flir(root, "train", "rgb", drop_invalid=True)
    assert ds.meta["dropped_by_file"] == {str(path): 1} and sum(len(s.boxes) for s in ds.samples) == 3
    report = verify(root, "flir", drop_invalid=True)
    assert report.ok and report.dropped == {str(path): 1}


def test_flir_v1_bicycle_is_documented_as_covering_motorcycles(tmp_path: Path) -> None:
    """FLIR ADAS v1 (FLIR_ADAS_1_3, README "FLIR Thermal Starter Dataset", July 2018):
    ``{train,val,video}/thermal_annotations.json`` with ``file_name`` ``thermal_8_bit/FLIR_00001.jpeg``
    and the categories 1 People, 2 Bicycles ("bicycles and motorcycles (not consistent with coco)"),
    3 Cars, 18 Dogs, 91 Other Vehicle."""
    root = tmp_path / "FLIR_ADAS_1_3"
    _img(root / "train" / "thermal_8_bit" / "FLIR_00001.jpeg", mode="L")
    doc = {"info": {}, "licenses": [], "images": [{"id": 0, "width": 20, "height": 16, "file_name": "thermal_8_bit/FLIR_00001.jpeg"}],
           "annotations": [{"id": 1, "image_id": 0, "category_id": 2, "bbox": [1, 1, 5, 5], "area": 25, "iscrowd": 0}],
           "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "bicycle"}, {"id": 3, "name": "car"},
                          {"id": 18, "name": "dog"}, {"id": 91, "name": "other vehicle"}]}
    (root / "train" / "thermal_annotations.json").write_text(json.dumps(doc))
    ds = read_flir(root, "train", "ir", version=None)
    assert ds.format == "flir_v1" and ds.categories == ("person", "bicycle", "car", "dog", "other vehicle")
    assert "motorcycles" in ds.meta["class_notes"]["bicycle"]


# --- LLVIP ------------------------------------------------------------------------------------

def _labelimg_xml(path: Path, objects: list[tuple[int, int, int, int]], w: int = 1280, h: int = 1024) -> None:
    """As labelImg's ``pascal_voc_io.py`` writes it (LLVIP's annotation tool): integer corners."""
    objs = "".join(f"\t<object>\n\t\t<name>person</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>0</truncated>\n"
                   f"\t\t<difficult>0</difficult>\n\t\t<bndbox>\n\t\t\t<xmin>{a}</xmin>\n\t\t\t<ymin>{b}</ymin>\n"
                   f"\t\t\t<xmax>{c}</xmax>\n\t\t\t<ymax>{d}</ymax>\n\t\t</bndbox>\n\t</object>\n" for a, b, c, d in objects)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<annotation>\n\t<folder>train</folder>\n\t<filename>{path.stem}.jpg</filename>\n"
                    f"\t<source>\n\t\t<database>Unknown</database>\n\t</source>\n\t<size>\n\t\t<width>{w}</width>\n"
                    f"\t\t<height>{h}</height>\n\t\t<depth>3</depth>\n\t</size>\n\t<segmented>0</segmented>\n{objs}</annotation>\n")


@pytest.fixture
def llvip(tmp_path: Path) -> Path:
    """LLVIP (github.com/bupt-ai-cz/LLVIP): ``Annotations/<name>.xml`` shared by ``visible/{train,test}/``
    and ``infrared/{train,test}/<name>.jpg`` (train names 01xxxx, test 19xxxx), 1280x1024 frames (the
    authors' yolo converter divides by 1280 and 1024); 010001's first box as public LLVIP loaders quote it."""
    root = tmp_path / "LLVIP"
    for split, name, boxes in (("train", "010001", [(287, 428, 351, 662), (1, 20, 30, 1024)]),
                               ("train", "010002", [(604, 311, 604, 402)]), ("test", "190001", [(3, 4, 6, 9)])):
        _img(root / "visible" / split / f"{name}.jpg", 1280, 1024)
        _img(root / "infrared" / split / f"{name}.jpg", 1280, 1024, mode="L")
        _labelimg_xml(root / "Annotations" / f"{name}.xml", boxes)
    return root


def _authors_voc2coco(xmin: int, ymin: int, xmax: int, ymax: int) -> list[float]:
    """LLVIP's toolbox/voc2coco.py: bbox = [xmin, ymin, xmax - xmin, ymax - ymin]."""
    return [float(xmin), float(ymin), float(xmax - xmin), float(ymax - ymin)]


def test_llvip_boxes_match_the_authors_converter_and_zero_area_is_a_problem(llvip: Path) -> None:
    with pytest.raises(DataError, match=r"010002\.xml: box \[604\.0, 311\.0, 604\.0, 402\.0\] \(xyxy\) has zero or "
                                        r"negative area"):
        read_llvip(llvip, "train")
    ds = read_llvip(llvip, "train", drop_invalid=True)
    assert ds.meta["box_convention"].startswith("llvip authors") and ds.meta["dropped_boxes"] == 1
    coco = ds.to_coco()
    assert [a["bbox"] for a in coco["annotations"]] == [_authors_voc2coco(287, 428, 351, 662),
                                                        _authors_voc2coco(1, 20, 30, 1024)]
    x1, _, x2, _ = ds.samples[0].boxes[0].tolist()
    # the authors' xml2txt_yolov5.py: x_center = 0.5 * (xmin + xmax) / 1280, width = (xmax - xmin) / 1280
    assert [0.5 * (x1 + x2) / 1280, (x2 - x1) / 1280] == [0.5 * (287 + 351) / 1280, (351 - 287) / 1280]


# --- ILSVRC2012 -------------------------------------------------------------------------------

SYNSETS = [("n01440764", "tench, Tinca tinca"), ("n01443537", "goldfish, Carassius auratus"),
           ("n01751748", "sea snake"), ("n02105855", "Shetland sheepdog, Shetland sheep dog, Shetland"),
           ("n09193705", "alp")]
# the first val images: ILSVRC2012_val_00000001 sea snake, _00000002 alp, _00000003 Shetland sheepdog
VAL = [("ILSVRC2012_val_00000001", "n01751748", 490), ("ILSVRC2012_val_00000002", "n09193705", 361),
       ("ILSVRC2012_val_00000003", "n02105855", 171)]


def _ilsvrc_train(root: Path, wnids: list[str]) -> None:
    for w in wnids:
        for k in (10026, 10027):
            _img(root / "train" / w / f"{w}_{k}.JPEG")


@pytest.fixture
def imagenet_loc(tmp_path: Path) -> Path:
    """The localization release (Kaggle "imagenet-object-localization-challenge"; public loaders read
    ``LOC_val_solution.csv`` with ``csv.DictReader`` and take the first token of PredictionString):
    ``ILSVRC/Data/CLS-LOC/train/<wnid>/<wnid>_<n>.JPEG``, a flat ``.../val/ILSVRC2012_val_<8 digits>.JPEG``,
    ``LOC_val_solution.csv`` (``ImageId,PredictionString``; PredictionString repeats ``wnid xmin ymin xmax
    ymax``) and ``LOC_synset_mapping.txt`` (``<wnid> <words>``, wnids sorted) at the top. The train
    split here holds two classes the val split lacks."""
    top = tmp_path / "imagenet"
    cls_loc = top / "ILSVRC" / "Data" / "CLS-LOC"
    _ilsvrc_train(cls_loc, ["n01440764", "n01443537"])
    for stem, _, _ in VAL:
        _img(cls_loc / "val" / f"{stem}.JPEG")
    rows = [f"{stem},{w} 1 2 10 12 {w} 3 4 8 9" for stem, w, _ in VAL]
    (top / "LOC_val_solution.csv").write_text("ImageId,PredictionString\n" + "\n".join(rows) + "\n")
    (top / "LOC_synset_mapping.txt").write_text("".join(f"{w} {words}\n" for w, words in SYNSETS))
    return top


def test_imagenet_flat_val_with_loc_solution_shares_the_train_index(imagenet_loc: Path) -> None:
    train, val = read_imagenet(imagenet_loc, "train"), read_imagenet(imagenet_loc, "val")
    assert train.classes == val.classes == tuple(w for w, _ in SYNSETS)
    assert [y for _, y in train.samples] == [0, 0, 1, 1]
    assert [(p.stem, val.classes[y]) for p, y in val.samples] == [(s, w) for s, w, _ in VAL]
    assert val.meta["layout"] == "flat" and val.meta["label_file"] == "LOC_val_solution.csv"
    # pointing at CLS-LOC itself finds the LOC files three levels up
    assert read_imagenet(imagenet_loc / "ILSVRC" / "Data" / "CLS-LOC", "val").classes == val.classes
    report = verify(imagenet_loc, "imagenet")
    assert report.ok and [p["images"] for p in report.parts] == [4, 3]


def test_imagenet_flat_val_without_labels_says_where_to_put_them(imagenet_loc: Path) -> None:
    (imagenet_loc / "LOC_val_solution.csv").unlink()
    with pytest.raises(DataError, match=r"val/ is flat \(ILSVRC2012_val_00000001\.JPEG, \.\.\.\) but no labels were found; "
                                        r"fix: put LOC_val_solution\.csv and LOC_synset_mapping\.txt"):
        read_imagenet(imagenet_loc, "val")


def _meta_mat(path: Path) -> None:
    """The devkit's ``data/meta.mat`` as torchvision's ``parse_meta_mat`` reads it: a ``synsets`` struct
    array with fields ILSVRC2012_ID, WNID, words, gloss, num_children, children, wordnet_height,
    num_train_images; the 1000 classes are the leaves (num_children == 0), IDs not in wnid order."""
    from scipy.io import savemat

    dt = [(k, "O") for k in ("ILSVRC2012_ID", "WNID", "words", "gloss", "num_children", "children",
                             "wordnet_height", "num_train_images")]
    leaves = [(i, w, dict(SYNSETS)[w], "g", 0, np.zeros((0,), np.uint8), 0, 1300) for _, w, i in VAL]
    inner = [(1001, "n00001740", "entity", "g", 3, np.array([490, 361, 171]), 18, 0)]
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(path, {"synsets": np.array(leaves + inner, dtype=dt)})


def test_imagenet_flat_val_with_the_devkit_ground_truth(tmp_path: Path) -> None:
    """ILSVRC2012_img_val.tar untarred flat into ``val/`` and ILSVRC2012_devkit_t12 beside it: line n of
    ``data/ILSVRC2012_validation_ground_truth.txt`` is the ILSVRC2012_ID of ILSVRC2012_val_<n>."""
    root = tmp_path / "ilsvrc2012"
    for stem, _, _ in VAL:
        _img(root / "val" / f"{stem}.JPEG")
    devkit = root / "ILSVRC2012_devkit_t12" / "data"
    _meta_mat(devkit / "meta.mat")
    (devkit / "ILSVRC2012_validation_ground_truth.txt").write_text("".join(f"{i}\n" for _, _, i in VAL))
    _ilsvrc_train(root, ["n01751748"])
    val, train = read_imagenet(root, "val"), read_imagenet(root, "train")
    assert val.classes == train.classes == ("n01751748", "n02105855", "n09193705")  # leaves, sorted wnids
    assert [(p.stem, val.classes[y]) for p, y in val.samples] == [(s, w) for s, w, _ in VAL]
    assert val.meta["label_file"].endswith("ILSVRC2012_validation_ground_truth.txt")
    assert [y for _, y in train.samples] == [0, 0]


def test_imagenet_class_folders_train_and_val_share_one_index(tmp_path: Path) -> None:
    _ilsvrc_train(tmp_path, ["n01440764", "n01443537"])
    _img(tmp_path / "val" / "n01443537" / "ILSVRC2012_val_00000010.JPEG")
    train, val = read_imagenet(tmp_path, "train"), read_imagenet(tmp_path, "val")
    assert train.classes == val.classes == ("n01440764", "n01443537") and [y for _, y in val.samples] == [1]


# --- COCO 2014 minival ------------------------------------------------------------------------

@pytest.fixture
def coco2014(tmp_path: Path) -> Path:
    """COCO 2014 with Detectron's minival (``annotations/instances_minival2014.json``, images in
    ``val2014/COCO_val2014_<12 digits>.jpg``); COCO's instances fields, non-contiguous category ids."""
    root = tmp_path / "coco"
    names = {42: "COCO_val2014_000000000042.jpg", 73: "COCO_val2014_000000000073.jpg"}
    for n in names.values():
        _img(root / "val2014" / n)
    doc = {"info": {"year": 2014}, "licenses": [{"id": 1, "name": "x", "url": ""}],
           "images": [{"license": 1, "file_name": n, "coco_url": "", "height": 16, "width": 20,
                       "date_captured": "2013-11-14 16:28:13", "flickr_url": "", "id": i} for i, n in names.items()],
           "annotations": [{"segmentation": [[1, 1, 5, 1, 5, 5]], "area": 12.0, "iscrowd": 0, "image_id": 42,
                            "bbox": [1.5, 1.0, 4.0, 4.0], "category_id": 1, "id": 1},
                           {"segmentation": {"counts": [1], "size": [16, 20]}, "area": 30.0, "iscrowd": 1,
                            "image_id": 42, "bbox": [0, 0, 6, 5], "category_id": 1, "id": 2},
                           {"segmentation": [[2, 2, 9, 2, 9, 9]], "area": 30.0, "iscrowd": 0, "image_id": 73,
                            "bbox": [2.0, 2.0, 7.0, 7.0], "category_id": 90, "id": 3}],
           "categories": [{"supercategory": "person", "id": 1, "name": "person"},
                          {"supercategory": "vehicle", "id": 2, "name": "bicycle"},
                          {"supercategory": "indoor", "id": 90, "name": "toothbrush"}]}
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "instances_minival2014.json").write_text(json.dumps(doc))
    return root


def test_coco2014_minival_reads_images_from_val2014(coco2014: Path) -> None:
    ds = open_detection("coco", coco2014, "minival2014")
    assert ds.split == "minival2014" and ds.categories == ("person", "bicycle", "toothbrush")
    assert [s.image_path.name for s in ds.samples] == ["COCO_val2014_000000000042.jpg", "COCO_val2014_000000000073.jpg"]
    assert ds.samples[0].boxes.tolist() == [[1.5, 1.0, 5.5, 5.0]] and ds.meta["crowd_boxes_skipped"] == 1
    assert ds.samples[1].labels.tolist() == [2]
    report = verify(coco2014, "coco")
    assert report.ok and report.parts[0]["name"] == "minival2014" and report.parts[0]["boxes"] == 2


# --- export -----------------------------------------------------------------------------------

def test_export_writes_what_training_reads_per_split_and_modality(llvip: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="zero or negative area"):
        export_coco(llvip, "llvip", tmp_path / "out")
    files = export_coco(llvip, "llvip", tmp_path / "out", class_map="person", drop_invalid=True)
    assert [(f.path.name, f.images, f.boxes) for f in files] == [
        ("train_rgb.json", 2, 2), ("train_ir.json", 2, 2), ("test_rgb.json", 1, 1), ("test_ir.json", 1, 1)]
    coco = COCO(str(tmp_path / "out" / "train_ir.json"))
    assert [a["bbox"] for a in coco.loadAnns(coco.getAnnIds())] == [_authors_voc2coco(287, 428, 351, 662),
                                                                    _authors_voc2coco(1, 20, 30, 1024)]
    info = json.loads((tmp_path / "out" / "train_ir.json").read_text())["info"]
    assert info["image_root"] == str(llvip) and info["class_map"] == "person" and info["dropped_boxes"] == 1
    assert (Path(info["image_root"]) / coco.loadImgs([1])[0]["file_name"]).is_file()
    ds = read_llvip(llvip, "train", "ir", "person", drop_invalid=True)
    assert info["fingerprint"] == ds.fingerprint()


def test_export_flir_and_coco_layouts(flir_archive: Path, coco2014: Path, tmp_path: Path) -> None:
    files = export_coco(flir_archive / "FLIR_ADAS_v2", "flir", tmp_path / "f")
    assert [f.path.name for f in files] == ["train_rgb.json", "train_ir.json", "val_rgb.json", "val_ir.json",
                                            "video_test_rgb.json", "video_test_ir.json"]
    doc = json.loads(files[0].path.read_text())
    assert [c["name"] for c in doc["categories"]] == ["person", "bike", "car", "motor", "bus", "dog"]
    assert [c["id"] for c in doc["categories"]] == [1, 2, 3, 4, 5, 6]  # capgate's label + 1
    coco = export_coco(coco2014, "coco", tmp_path / "c")
    assert [(f.path.name, f.boxes) for f in coco] == [("minival2014_rgb.json", 2)]
    with pytest.raises(DataError, match="export supports the detection formats llvip, flir, coco, not 'imagenet'"):
        export_coco(coco2014, "imagenet", tmp_path / "x")
