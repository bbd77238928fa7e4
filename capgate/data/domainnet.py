"""DomainNet: six domains of the same 345 classes, with the official train/test split files.

Layout (the M3SDA release, http://ai.bu.edu/M3SDA/)::

    <domain>/<class>/<domain>_<NNN>_<NNNNNN>.jpg     e.g. clipart/aircraft_carrier/clipart_001_000018.jpg
    <domain>_train.txt  <domain>_test.txt            lines ``<domain>/<class>/<file>.jpg <label>``

**Class order.** The official labels 0..344 order the class names ignoring case and the
characters ``_`` and ``-`` (:func:`domainnet_order_key`): ``aircraft_carrier`` is 0,
``paintbrush`` comes before ``paint_can``, ``The_Eiffel_Tower`` is 308, ``t-shirt`` 327 and
``zigzag`` 344; the three-digit number in a file name is the label + 1. Python's plain
``sorted()`` puts the three ``The_*`` classes first and agrees on only 17 of the 345 labels.

One class index serves every domain and split: the union of the class folders of all domains
under the root (those with a split file), in that order. With the real dataset's 345 folders
this is exactly the official list (:data:`DOMAINNET_CLASSES`); a DomainNet-layout dataset of
other classes (the synthetic world) gets the same rule. A class subset (``classes=k`` or names)
keeps that order and re-indexes labels 0..k-1.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from capgate.data.problems import ProblemLog, safe_join
from capgate.data.types import ClassificationDataset
from capgate.errors import DataError

__all__ = ["read_domainnet", "scan_domainnet", "domainnet_classes", "domainnet_class_index", "domainnet_order_key",
           "DOMAINNET_CLASSES", "DOMAINNET_DOMAINS", "DOMAINNET_SPLITS"]

DOMAINNET_SPLITS = ("train", "test")
#: The six real DomainNet domains (the tiny world writes a subset of these names).
DOMAINNET_DOMAINS = ("clipart", "infograph", "painting", "quickdraw", "real", "sketch")


def domainnet_order_key(name: str) -> str:
    """The sort key of DomainNet's official label order: lower case, ``_`` and ``-`` removed."""
    return name.lower().replace("_", "").replace("-", "")


#: The 345 DomainNet classes in official label order (label = position).
DOMAINNET_CLASSES: tuple[str, ...] = tuple((
    'aircraft_carrier airplane alarm_clock ambulance angel animal_migration ant anvil apple arm asparagus '
    'axe backpack banana bandage barn baseball baseball_bat basket basketball bat bathtub beach bear '
    'beard bed bee belt bench bicycle binoculars bird birthday_cake blackberry blueberry book boomerang '
    'bottlecap bowtie bracelet brain bread bridge broccoli broom bucket bulldozer bus bush butterfly '
    'cactus cake calculator calendar camel camera camouflage campfire candle cannon canoe car carrot '
    'castle cat ceiling_fan cello cell_phone chair chandelier church circle clarinet clock cloud '
    'coffee_cup compass computer cookie cooler couch cow crab crayon crocodile crown cruise_ship cup '
    'diamond dishwasher diving_board dog dolphin donut door dragon dresser drill drums duck dumbbell ear '
    'elbow elephant envelope eraser eye eyeglasses face fan feather fence finger fire_hydrant fireplace '
    'firetruck fish flamingo flashlight flip_flops floor_lamp flower flying_saucer foot fork frog '
    'frying_pan garden garden_hose giraffe goatee golf_club grapes grass guitar hamburger hammer hand '
    'harp hat headphones hedgehog helicopter helmet hexagon hockey_puck hockey_stick horse hospital '
    'hot_air_balloon hot_dog hot_tub hourglass house house_plant hurricane ice_cream jacket jail kangaroo '
    'key keyboard knee knife ladder lantern laptop leaf leg light_bulb lighter lighthouse lightning line '
    'lion lipstick lobster lollipop mailbox map marker matches megaphone mermaid microphone microwave '
    'monkey moon mosquito motorbike mountain mouse moustache mouth mug mushroom nail necklace nose ocean '
    'octagon octopus onion oven owl paintbrush paint_can palm_tree panda pants paper_clip parachute '
    'parrot passport peanut pear peas pencil penguin piano pickup_truck picture_frame pig pillow '
    'pineapple pizza pliers police_car pond pool popsicle postcard potato power_outlet purse rabbit '
    'raccoon radio rain rainbow rake remote_control rhinoceros rifle river roller_coaster rollerskates '
    'sailboat sandwich saw saxophone school_bus scissors scorpion screwdriver sea_turtle see_saw shark '
    'sheep shoe shorts shovel sink skateboard skull skyscraper sleeping_bag smiley_face snail snake '
    'snorkel snowflake snowman soccer_ball sock speedboat spider spoon spreadsheet square squiggle '
    'squirrel stairs star steak stereo stethoscope stitches stop_sign stove strawberry streetlight '
    'string_bean submarine suitcase sun swan sweater swing_set sword syringe table teapot teddy-bear '
    'telephone television tennis_racquet tent The_Eiffel_Tower The_Great_Wall_of_China The_Mona_Lisa '
    'tiger toaster toe toilet tooth toothbrush toothpaste tornado tractor traffic_light train tree '
    'triangle trombone truck trumpet t-shirt umbrella underwear van vase violin washing_machine '
    'watermelon waterslide whale wheel windmill wine_bottle wine_glass wristwatch yoga zebra zigzag '
).split())


def domainnet_class_index(names: Iterable[str]) -> tuple[str, ...]:
    """Class names in DomainNet's label order (:func:`domainnet_order_key`, ties by the name)."""
    return tuple(sorted(set(names), key=lambda n: (domainnet_order_key(n), n)))


def _domains_present(root: Path) -> list[str]:
    """Domains with a split file at the root and a folder beside it."""
    found = {p.name.rsplit("_", 1)[0] for p in root.glob("*_t*.txt") if p.stem.rsplit("_", 1)[-1] in DOMAINNET_SPLITS}
    return sorted(d for d in found if (root / d).is_dir())


def domainnet_classes(root: Path, domain: str) -> tuple[str, ...]:
    """The class index shared by every domain and split under ``root`` (see the module docstring)."""
    ddir = root / domain
    if not ddir.is_dir():
        found = _domains_present(root)
        raise DataError(
            f"{ddir}: DomainNet domain folder is missing; fix: choose one of the domains present "
            f"({', '.join(found) or 'none found'}) or point at the DomainNet root"
        )
    names: set[str] = set()
    for d in {domain, *_domains_present(root)}:
        names.update(p.name for p in (root / d).iterdir() if p.is_dir())
    return domainnet_class_index(names)


def _select(all_classes: tuple[str, ...], classes: int | Sequence[str] | None) -> tuple[str, ...]:
    if classes is None:
        return all_classes
    if isinstance(classes, int):
        if not 1 <= classes <= len(all_classes):
            raise DataError(f"class subset size {classes} is out of range; fix: choose 1..{len(all_classes)}")
        return all_classes[:classes]
    unknown = [c for c in classes if c not in all_classes]
    if unknown:
        raise DataError(
            f"unknown DomainNet class(es) {unknown}; valid classes include: {', '.join(all_classes[:30])}"
            + (" ..." if len(all_classes) > 30 else "")
        )
    wanted = set(classes)
    return tuple(c for c in all_classes if c in wanted)


def read_domainnet(
    root: Path | str,
    domain: str,
    split: str = "train",
    classes: int | Sequence[str] | None = None,
) -> ClassificationDataset:
    """Read one DomainNet domain and split.

    ``classes``: None for all, an int k for the first k classes in the official order, or class
    names; labels are re-indexed 0..k-1 in that order and the subset is recorded in meta.
    Bad lines, labels out of range or disagreeing with the class folder, missing files and
    paths escaping the root raise a DataError naming the file and line.
    """
    root = Path(root).absolute()
    problems = ProblemLog()
    ds = scan_domainnet(root, domain, split, classes, problems)
    problems.raise_if_any(f"DomainNet {root} ({domain}, {split})")
    return ds


def scan_domainnet(
    root: Path, domain: str, split: str, classes: int | Sequence[str] | None, problems: ProblemLog
) -> ClassificationDataset:
    if split not in DOMAINNET_SPLITS:
        raise DataError(f"DomainNet split {split!r} is unknown; valid splits: {', '.join(DOMAINNET_SPLITS)}")
    all_classes = domainnet_classes(root, domain)
    subset = _select(all_classes, classes)
    index = {c: i for i, c in enumerate(all_classes)}
    new_label = {index[c]: i for i, c in enumerate(subset)}
    split_file = root / f"{domain}_{split}.txt"
    if not split_file.is_file():
        raise DataError(f"{split_file}: DomainNet split file is missing; fix: restore {split_file.name} at the DomainNet root")
    samples: list[tuple[Path, int]] = []
    with open(split_file, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{split_file}:{lineno}"
            parts = line.split()
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                problems.add(where, f"bad line {line.strip()!r}", "write '<domain>/<class>/<file>.jpg <label>'")
                continue
            rel, label = parts[0], int(parts[1])
            if not 0 <= label < len(all_classes):
                problems.add(where, f"label {label} is out of range 0..{len(all_classes) - 1}", "fix the label")
                continue
            path = safe_join(root, rel, where, problems)
            if path is None:
                continue
            folder_class = path.parent.name
            if folder_class != all_classes[label]:
                expected = index.get(folder_class)
                missing = len(all_classes) < len(DOMAINNET_CLASSES) and set(all_classes) < set(DOMAINNET_CLASSES)
                problems.add(
                    where,
                    f"label {label} means class {all_classes[label]!r} but the file lies in class folder "
                    f"{folder_class!r}" + (f" (label {expected} in DomainNet's class order)" if expected is not None else ""),
                    f"restore the missing class folders ({len(all_classes)} of DomainNet's {len(DOMAINNET_CLASSES)} "
                    "are present; labels index all of them)" if missing else "fix the label or the path",
                )
                continue
            if label not in new_label:
                continue
            if not path.is_file():
                problems.add(where, f"image file {rel} is missing", "restore the image or remove the line")
                continue
            samples.append((path, new_label[label]))
    meta: dict[str, Any] = {
        "variant": "domainnet",
        "n_classes_total": len(all_classes),
        "class_order": "official" if all_classes == DOMAINNET_CLASSES else "class folders, DomainNet's order",
        "class_subset": "all" if classes is None else (f"first{len(subset)}" if isinstance(classes, int) else list(subset)),
        "split_file": str(split_file),
    }
    return ClassificationDataset(
        name=f"domainnet/{domain}", format="domainnet", root=root, split=split, domain=domain,
        classes=subset, samples=samples, meta=meta,
    )
