"""Schema-valid results tables simulated from a known truth, for tests, calibration and benchmarks.

The truth (:class:`Truth`) fixes: the capacity ladder per family, the inits, the train sets with
their eval sets and shifts, seeds, the baseline metric (intercept, a slope per decade of params,
an offset per eval set), the true gain of each init as a function of shift and capacity (a logistic
*bend* in log10 params: ``low + (high - low) / (1 + exp(-(log10 p - log10 gate) / width)))``,
seed noise (a *seed* effect shared by every init trained with that seed: the same seed fixes data
order and augmentation; a *run* effect shared by all eval sets of one trained model; a per-record
residual), noise scales per eval set and per cell (heteroscedastic grids), a random effect per rung,
the chance that a run fails or diverges, and the chance that a run is missing (unbalanced seeds).
Pretraining replicates: ``stage_seeds`` stage replicates per pretrained init and rung, each with a
*stage* effect (SD ``stage_sd``) shared by every fine-tuning run started from it (on every train set and
eval set); seed ``s`` fine-tunes from replicate ``s % stage_seeds`` (the table's ``stage_seed``). With
one replicate the stage effect is that checkpoint's own offset: ``table.attrs["stage_effects"]`` holds
every drawn effect and :func:`conditional_gains` the true gain of each cell given its checkpoint(s).
Heavy tails: ``tail_df`` draws the run effect from a t distribution with that df (scaled to ``run_sd``);
outliers: with probability ``p_outlier`` a run lands ``outlier_sds`` of its own run-to-run SDs low
(a collapsed run marked ok; their run ids in ``table.attrs["outlier_runs"]``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from capgate.errors import SpecError
from capgate.schema import metrics_for

__all__ = ["Truth", "simulate_results", "true_gain", "true_gains", "conditional_gains", "demo_truth"]

#: The default capacity ladder of capgate.models.ladder (whole-detector params, one class).
_LADDER = {
    "efficientnet": [("B-7", 0.10, 0.25, 41_874), ("B-6", 0.15, 0.25, 56_598), ("B-5", 0.20, 0.25, 76_826),
                     ("B-4", 0.25, 0.25, 127_954), ("B-3", 0.30, 0.50, 277_402), ("B-2", 0.40, 0.50, 502_820),
                     ("B-1", 0.50, 0.50, 713_574)],
    "mobilenetv3": [("S-6", 0.10, 0.25, 37_038), ("S-5", 0.15, 0.25, 48_918), ("S-4", 0.25, 0.25, 121_062),
                    ("S-3", 0.25, 0.50, 193_398), ("S-2", 0.35, 0.50, 328_582), ("S-1", 0.50, 0.50, 642_214),
                    ("S-0", 0.45, 1.00, 838_222)],
}
_ARCH = {"efficientnet": "efficientnet_b0", "mobilenetv3": "mobilenetv3_large"}
_DEFAULT_FAMILIES = {
    fam: [(f"{_ARCH[fam]}@w{w:g}d{d:g} ({name})", p) for name, w, d, p in rungs] for fam, rungs in _LADDER.items()
}
_DEFAULT_SETS = {
    "llvip/rgb": [("llvip/rgb", "in_domain"), ("flir/rgb", "cross_dataset"), ("llvip/ir", "cross_modality")],
    "flir/rgb": [("flir/rgb", "in_domain"), ("llvip/rgb", "cross_dataset"), ("flir/ir", "cross_modality")],
}
_CLASSIFICATION_SETS = {
    "domainnet/real": [("domainnet/real", "in_domain"), ("domainnet/sketch", "cross_domain"),
                       ("domainnet/clipart", "cross_domain"), ("domainnet/painting", "cross_domain")],
    "domainnet/sketch": [("domainnet/sketch", "in_domain"), ("domainnet/real", "cross_domain"),
                         ("domainnet/clipart", "cross_domain"), ("domainnet/painting", "cross_domain")],
}
_CLASSIFICATION_GAINS = {
    "imagenet": {"in_domain": {"low": 0.0, "high": 0.04, "gate": 200_000},
                 "cross_domain": {"low": 0.0, "high": 0.05, "gate": 250_000}},
    "imagenet_coco": {"in_domain": {"low": 0.0, "high": 0.03, "gate": 250_000},
                      "cross_domain": {"low": 0.0, "high": 0.04, "gate": 300_000}},
}
_DEFAULT_GAINS = {
    "imagenet": {"in_domain": {"low": 0.0, "high": 0.015, "gate": 400_000},
                 "cross_dataset": {"low": 0.0, "high": 0.03, "gate": 400_000},
                 "cross_modality": 0.0},
    "imagenet_coco": {"in_domain": {"low": 0.0, "high": 0.03, "gate": 300_000},
                      "cross_dataset": {"low": 0.0, "high": 0.06, "gate": 300_000},
                      "cross_modality": {"low": 0.0, "high": 0.02, "gate": 500_000}},
}


@dataclass(frozen=True)
class Truth:
    """The data-generating truth of a simulated study (all metric values on the 0..1 scale).

    ``gains[init][shift]`` is a number (constant gain) or ``{"low", "high", "gate", "width"}`` (a bend
    in log10 params, ``width`` in decades, default 0.1); an init or shift absent from ``gains`` has
    gain 0. ``sets[train_set] = [(eval_set, shift), ...]``. Noise of a record: ``scale * (seed effect
    + run effect + residual)`` with SDs ``seed_sd``, ``run_sd``, ``noise_sd`` and ``scale`` =
    ``eval_noise[eval_set]`` x ``cell_noise["<backbone>|<eval_set>"]`` x ``init_noise[init]`` (default 1:
    a scratch arm several times noisier than a pretrained one, as in the demo); ``p_missing``: the
    chance that a run is absent from the table (unbalanced seeds).
    """

    study: str = "sim"
    task: str = "detection"
    families: dict[str, list[tuple[str, int]]] = field(default_factory=lambda: dict(_DEFAULT_FAMILIES))
    inits: tuple[str, ...] = ("scratch", "imagenet", "imagenet_coco")
    sets: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: dict(_DEFAULT_SETS))
    seeds: int = 3
    base: float = 0.30
    slope_per_decade: float = 0.08
    eval_offsets: dict[str, float] = field(default_factory=dict)
    gains: dict[str, Any] = field(default_factory=lambda: dict(_DEFAULT_GAINS))
    run_sd: float = 0.010
    noise_sd: float = 0.006
    rung_sd: float = 0.01
    seed_sd: float = 0.0
    eval_noise: dict[str, float] = field(default_factory=dict)
    cell_noise: dict[str, float] = field(default_factory=dict)
    init_noise: dict[str, float] = field(default_factory=dict)
    p_missing: float = 0.0
    stage_seeds: int = 1
    stage_sd: float = 0.0
    tail_df: float | None = None
    p_outlier: float = 0.0
    outlier_sds: float = 5.0
    p_failed: float = 0.0
    p_diverged: float = 0.0
    resolution: int = 64
    latency: bool = True

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Truth":
        """Build a Truth from plain data (unknown keys fail, naming the valid ones)."""
        names = {f.name for f in dataclasses.fields(cls)}
        bad = sorted(set(d) - names)
        if bad:
            raise SpecError(f"simulation truth: unknown key(s) {bad}; valid: {sorted(names)}")
        d = dict(d)
        if "families" in d:
            d["families"] = {k: [tuple(x) for x in v] for k, v in d["families"].items()}
        if "sets" in d:
            d["sets"] = {k: [tuple(x) for x in v] for k, v in d["sets"].items()}
        if "inits" in d:
            d["inits"] = tuple(d["inits"])
        return cls(**d)


def demo_truth(task: str = "detection", **overrides: Any) -> Truth:
    """A default truth on the capacity ladder (two families x seven rungs).

    detection: LLVIP<->FLIR RGB (cross_dataset) and RGB->IR (cross_modality), pretraining gains that
    bend upwards around 300k-500k params; classification: DomainNet real/sketch -> every domain.
    """
    if task == "classification":
        base = Truth(study="sim_domainnet", task="classification", sets=dict(_CLASSIFICATION_SETS),
                     gains=dict(_CLASSIFICATION_GAINS), base=0.45, slope_per_decade=0.10,
                     eval_offsets={"domainnet/sketch": -0.12, "domainnet/clipart": -0.08,
                                   "domainnet/painting": -0.10})
    elif task == "detection":
        base = Truth()
    else:
        raise SpecError(f"demo_truth: unknown task {task!r}; valid: detection, classification")
    return dataclasses.replace(base, **overrides)


def true_gain(truth: Truth, init: str, shift: str, params: float) -> float:
    """The true gain of ``init`` over the baseline at ``params`` under ``shift``."""
    spec = truth.gains.get(init, {})
    g = spec.get(shift, 0.0) if isinstance(spec, dict) else spec
    if isinstance(g, (int, float)):
        return float(g)
    width = float(g.get("width", 0.1))
    z = (math.log10(params) - math.log10(float(g["gate"]))) / width
    return float(g["low"]) + (float(g["high"]) - float(g["low"])) / (1.0 + math.exp(-z))


def true_gains(truth: Truth) -> pd.DataFrame:
    """True gain per cell (task, family, backbone, params, train_set, eval_set, shift, init != first init)."""
    rows = []
    for fam, rungs in truth.families.items():
        for backbone, params in rungs:
            for train, evals in truth.sets.items():
                for ev, shift in evals:
                    for init in truth.inits[1:]:
                        rows.append({"task": truth.task, "family": fam, "backbone": backbone, "params": params,
                                     "train_set": train, "eval_set": ev, "shift": shift, "init": init,
                                     "true_gain": true_gain(truth, init, shift, params)})
    return pd.DataFrame(rows)


def conditional_gains(truth: Truth, table: pd.DataFrame) -> pd.DataFrame:
    """:func:`true_gains` plus ``conditional_gain``: the gain of the checkpoints the table's runs started from
    (the true gain plus the mean stage effect of the cell's replicates, in metric units: what a verdict
    conditional on those checkpoints claims). Equal to ``true_gain`` without a stage component."""
    tg = true_gains(truth)
    eff = table.attrs.get("stage_effects", {})
    k = max(truth.stage_seeds, 1)
    extra = []
    for r in tg.itertuples(index=False):
        scale = (truth.eval_noise.get(r.eval_set, 1.0) * truth.cell_noise.get(f"{r.backbone}|{r.eval_set}", 1.0)
                 * truth.init_noise.get(r.init, 1.0))
        reps = [eff.get(f"{r.backbone}|{r.init}|{j}", 0.0) for j in range(min(k, truth.seeds))]
        extra.append(scale * float(np.mean(reps)))
    return tg.assign(conditional_gain=tg["true_gain"].to_numpy() + np.array(extra))


def _run_id(*parts: Any) -> str:
    return hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()[:16]


def simulate_results(truth: Truth | dict[str, Any] | None = None, *, seed: int | np.random.Generator) -> pd.DataFrame:
    """A results table (every required column) drawn from ``truth``; same seed, same table.

    Metric ``y = base + slope * (log10 p - 5.5) + eval offset + rung effect + true gain(init, shift, p)
    + run effect + residual``, clipped to [0, 1]. The first init of ``truth.inits`` is the baseline
    (zero gain). Failed and diverged runs keep their records with status set and metrics NaN.
    """
    if truth is None:
        truth = Truth()
    elif isinstance(truth, dict):
        truth = Truth.from_dict(truth)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    metrics = metrics_for(truth.task)
    stage = _stage_effects(truth, rng)
    run_sd_all = math.sqrt(truth.seed_sd ** 2 + truth.run_sd ** 2 + truth.noise_sd ** 2)
    rows, dropped = [], []
    for fam, rungs in truth.families.items():
        for r_i, (backbone, params) in enumerate(rungs):
            rung_effect = rng.normal(0.0, truth.rung_sd) if truth.rung_sd > 0 else 0.0
            m = re.search(r"@w([0-9.]+)(?:d([0-9.]+))?", backbone)
            width = float(m.group(1)) if m else 1.0
            depth = float(m.group(2)) if m and m.group(2) else 1.0
            macs = int(params * truth.resolution**2 / 40)
            for train, evals in truth.sets.items():
                seed_effect = (rng.normal(0.0, truth.seed_sd, size=truth.seeds) if truth.seed_sd > 0
                               else np.zeros(truth.seeds))
                for init in truth.inits:
                    for s in range(truth.seeds):
                        run_id = _run_id(truth.study, truth.task, backbone, train, init, s)
                        run_effect = _run_effect(truth, rng)
                        collapsed = truth.p_outlier > 0 and rng.random() < truth.p_outlier
                        if collapsed:
                            run_effect -= truth.outlier_sds * run_sd_all
                        pretrained = init != truth.inits[0]
                        rep = s % max(truth.stage_seeds, 1) if pretrained else None
                        run_effect += stage.get((backbone, init, rep), 0.0)
                        u = rng.random()
                        if truth.p_missing > 0 and rng.random() < truth.p_missing:
                            continue
                        if collapsed:
                            dropped.append(run_id)
                        status = ("failed" if u < truth.p_failed else
                                  "diverged" if u < truth.p_failed + truth.p_diverged else "ok")
                        latency = float(0.02 + macs / 2e7 + rng.normal(0, 0.002)) if truth.latency else None
                        for ev, shift in evals:
                            mu = (truth.base + truth.slope_per_decade * (math.log10(params) - 5.5)
                                  + truth.eval_offsets.get(ev, 0.0) + rung_effect
                                  + (true_gain(truth, init, shift, params) if init != truth.inits[0] else 0.0))
                            scale = (truth.eval_noise.get(ev, 1.0) * truth.cell_noise.get(f"{backbone}|{ev}", 1.0)
                                     * truth.init_noise.get(init, 1.0))
                            resid = rng.normal(0.0, truth.noise_sd) if truth.noise_sd > 0 else 0.0
                            y = mu + scale * (seed_effect[s] + run_effect + resid)
                            y = min(max(y, 0.0), 1.0)
                            row = {
                                "study": truth.study, "task": truth.task, "run_id": run_id, "family": fam,
                                "width": width, "depth": depth, "resolution": truth.resolution,
                                "backbone": backbone, "params": int(params), "macs": macs, "init": init,
                                "init_source": f"sim:{init}:stage{rep}" if pretrained else "none",
                                "stage_seed": rep,
                                "train_set": train, "eval_set": ev, "shift": shift, "seed": s,
                                "status": status, "rung": f"r{r_i}",
                                "capgate_version": "sim", "torch_version": "none", "timm_version": "none",
                                "git_sha": "0" * 40, "spec_hash": run_id, "data_fingerprint": "sim",
                                "started_at": "1970-01-01T00:00:00Z", "ended_at": "1970-01-01T00:00:01Z",
                                "wall_seconds": 1.0,
                                "error": {"ok": None, "failed": "simulated failure",
                                          "diverged": "simulated non-finite loss"}[status],
                            }
                            for k, m in enumerate(metrics):
                                v = y if k == 0 else min(1.0, y * (1.6 if k == 1 else 1.05))
                                row[m] = v if status == "ok" else float("nan")
                            if truth.latency:
                                row["latency_ms"] = latency
                            rows.append(row)
    table = pd.DataFrame(rows)
    table["stage_seed"] = table["stage_seed"].astype("Int64")
    table.attrs["stage_effects"] = {f"{b}|{i}|{r}": v * 1.0 for (b, i, r), v in stage.items()}
    table.attrs["outlier_runs"] = dropped
    return table


def _stage_effects(truth: Truth, rng: np.random.Generator) -> dict[tuple[str, str, int], float]:
    """One effect per (rung, pretrained init, stage replicate), drawn only when ``stage_sd`` > 0 (so a truth
    without stages draws the same numbers as before stages existed)."""
    if truth.stage_sd <= 0:
        return {}
    keys = [(b, i, r) for rungs in truth.families.values() for b, _ in rungs for i in truth.inits[1:]
            for r in range(max(truth.stage_seeds, 1))]
    return dict(zip(keys, rng.normal(0.0, truth.stage_sd, size=len(keys))))


def _run_effect(truth: Truth, rng: np.random.Generator) -> float:
    if truth.run_sd <= 0:
        return 0.0
    if truth.tail_df is None:
        return float(rng.normal(0.0, truth.run_sd))
    nu = float(truth.tail_df)  # t(nu) has variance nu / (nu - 2): scaled to SD run_sd
    return float(truth.run_sd * rng.standard_t(nu) * math.sqrt((nu - 2) / nu))
