"""The workspace tests/test_readme_run.py runs every README command in: the checkout's specs and
plans, a copy of the committed baselines, the tiny synthetic world in the real dataset layouts for
every ``${VAR}`` root, study stores of simulated results, and tables from other trainers."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pandas as pd

from capgate.analysis import simulate_results
from capgate.analysis.simulate import Truth, demo_truth
from helpers import TINY_WORLD

__all__ = ["build_workspace", "store_study", "small_study", "spec_study", "REPO"]

REPO = Path(__file__).resolve().parents[1]


# --- the workspace --------------------------------------------------------------------------------------


def store_study(root: Path | str, table: pd.DataFrame) -> None:
    """A study store as run-grid leaves it: one record file per run, then results.parquet/csv."""
    from capgate.store.study import Store

    store = Store(root, str(table["study"].iloc[0]))
    ids = []
    for rid, rows in table.groupby("run_id", sort=True):
        store.write(str(rid), {}, json.loads(rows.to_json(orient="records")))
        ids.append(str(rid))
    store.collect(ids, str(table["task"].iloc[0]))


def _baseline_truth(study: str) -> Truth:
    """A truth with the cells of the committed demo baseline's ``study`` (backbones, sets, inits)."""
    cells = [c for c in json.loads((REPO / "reports/baselines/demo.json").read_text())["cells"] if c["study"] == study]
    families: dict[str, list] = {}
    for c in cells:
        if (c["backbone"], int(c["params"])) not in families.setdefault(c["family"], []):
            families[c["family"]].append((c["backbone"], int(c["params"])))
    sets: dict[str, list] = {}
    for c in cells:
        if (c["eval_set"], c["shift"]) not in sets.setdefault(c["train_set"], []):
            sets[c["train_set"]].append((c["eval_set"], c["shift"]))
    inits = tuple(sorted({c["init"] for c in cells}, key=lambda i: (i != "scratch", i)))
    return Truth(study=study, task=cells[0]["task"], families=families, sets=sets, inits=inits, seeds=3,
                 gains={}, base=0.3)


def small_study(study: str, task: str = "detection", **kw) -> pd.DataFrame:  # noqa: ANN003
    """A small simulated study: two rungs, scratch and imagenet, three seeds, an in-domain and a shifted
    eval set."""
    fam = {"mobilenetv3": [("mobilenetv3_large@w0.1d0.25 (S-6)", 37_038), ("mobilenetv3_large@w0.35d0.5 (S-2)", 328_582)]}
    sets = {"detection": {"llvip/rgb": [("llvip/rgb", "in_domain"), ("flir/rgb", "cross_dataset")]},
            "classification": {"domainnet/real": [("domainnet/real", "in_domain"),
                                                  ("domainnet/sketch", "cross_domain")]}}[task]
    truth = Truth(study=study, task=task, families=kw.pop("families", fam), sets=kw.pop("sets", sets),
                  inits=("scratch", "imagenet"), seeds=3, **kw)
    return simulate_results(truth, seed=len(study))


def spec_study(name: str) -> pd.DataFrame:
    """Simulated results of ``experiments/<name>.yaml``'s design: its train and eval sets, shifts and
    inits, the first and last rung of its first family (the simulator's ladder), three seeds."""
    from capgate.spec.load import load_study

    study = load_study(REPO / "experiments" / f"{name}.yaml")
    ladder = demo_truth(study.task).families
    rungs: dict[str, list[str]] = {}
    for family, rung in study.rungs:
        rungs.setdefault(family, []).append(rung)
    family, names = next(iter(rungs.items()))
    families = {family: [b for b in ladder[family] if b[0].endswith((f"({names[0]})", f"({names[-1]})"))]}
    sets = {t.name: [(e.name, e.shift) for e in t.evals] for t in study.train_sets}
    truth = dataclasses.replace(demo_truth(study.task), study=name, families=families, sets=sets,
                                inits=tuple(i.name for i in study.inits), seeds=3)
    return simulate_results(truth, seed=len(name))


def _world(ws: Path) -> None:
    from capgate.data.synth_world import WorldConfig, ensure_world

    config = {k: ",".join(v) if isinstance(v, list) else str(v) for k, v in TINY_WORLD.items()}
    config["domainnet_domains"] = "real,sketch,clipart,painting,quickdraw"
    ensure_world(ws / "world", WorldConfig().with_overrides(config), 0)
    dn = ws / "world" / "domainnet"  # experiments/domainnet.yaml also reads infograph, a style the world lacks:
    shutil.copytree(dn / "painting", dn / "infograph")  # painting's images under infograph's names
    for split in ("train", "test"):
        lines = (dn / f"painting_{split}.txt").read_text().replace("painting", "infograph")
        (dn / f"infograph_{split}.txt").write_text(lines)
    for f in list((dn / "infograph").rglob("*.jpg")):
        f.rename(f.with_name(f.name.replace("painting", "infograph")))
    coco = ws / "world" / "coco"
    for split in ("train", "val"):  # the real COCO 2017 names the paper specs use
        (coco / f"{split}2017").symlink_to(coco / split)
        (coco / "annotations" / f"instances_{split}2017.json").symlink_to(coco / "annotations" / f"instances_{split}.json")


def _foreign_tables(ws: Path) -> None:
    """per_seed.csv (another trainer's per-seed table), runs.json (a W&B runs export), results.parquet."""
    table = small_study("mine", "classification")
    ok = table[table["status"] == "ok"]
    per_seed = pd.DataFrame({"model": ok["backbone"], "params": ok["params"], "init": ok["init"], "seed": ok["seed"],
                             "dataset": ok["train_set"], "eval_dataset": ok["eval_set"],
                             "accuracy": (100 * ok["top1"]).round(2)})
    per_seed.to_csv(ws / "per_seed.csv", index=False)
    runs = []
    for rid, rows in ok.groupby("run_id", sort=True):
        first = rows.iloc[0]
        runs.append({"id": rid, "name": f"run-{rid}", "state": "finished",
                     "config": {"arch": first["backbone"], "family": first["family"], "params": int(first["params"]),
                                "init": first["init"], "train_set": first["train_set"], "seed": int(first["seed"])},
                     "summary": {f"{r.eval_set}/top1": float(r.top1) for r in rows.itertuples()}})
    (ws / "runs.json").write_text(json.dumps(runs))
    ok.to_parquet(ws / "results.parquet")


def build_workspace(ws: Path) -> Path:
    """Fill ``ws`` with everything the README commands read (see the module docstring)."""
    for name in ("experiments", "analysis"):
        (ws / name).symlink_to(REPO / name)
    shutil.copytree(REPO / "reports" / "baselines", ws / "reports" / "baselines")
    _world(ws)
    _foreign_tables(ws)
    for study in ("demo", "demo_classification"):
        store_study(ws / ".capgate", simulate_results(_baseline_truth(study), seed=1))
    store_study(ws / ".capgate", small_study("families", "classification"))
    standard = {"standard": [("squeezenet1_1", 1_235_496), ("shufflenet_v2_x1_0", 2_278_604),
                             ("resnet18", 11_689_512)]}
    for study in ("llvip_flir", "rgb_to_ir", "domainnet"):
        store_study(ws / "shared", spec_study(study))
    for suffix, name in (("", "cifar10"), ("_cifar100", "cifar100"), ("_tinyimagenet", "tinyimagenet")):
        store_study(ws / ".capgate", small_study("lightweight_benchmark_demo" + suffix, "classification",
                                                 families=standard, sets={name: [(name, "in_domain")]}))
    benchmark = {name: [(name, "in_domain")] for name in ("cifar10", "cifar100", "tinyimagenet")}  # ONE study
    store_study(ws / "shared", small_study("lightweight_benchmark", "classification", families=standard,
                                           sets=benchmark))
    (ws / "weights").mkdir()
    return ws
