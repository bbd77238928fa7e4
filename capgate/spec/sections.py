"""The sections of a study spec as frozen dataclasses: the recipe, dataset references, train and eval
sets, pretraining stages, inits, resources and the adaptive loop's settings. :mod:`capgate.spec.model`
builds the study, run and stage specs from them (and re-exports them)."""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["AMP_MODES", "fields_of", "Recipe", "DatasetRef", "EvalSet", "TrainSet", "StageDef", "InitDef",
           "Resources", "Adaptive",
           "MinStageScore"]

#: Mixed precision of training (``recipe.amp``): ``auto`` is bf16 on a CUDA device that supports it,
#: fp16 (with a GradScaler) on one that does not, and off on CPU; resolved in capgate.train.recipe.
AMP_MODES = ("off", "auto", "bf16", "fp16")

def fields_of(cls: type) -> tuple[str, ...]:
    """Field names of a spec dataclass, in order (the valid keys of its YAML section)."""
    return tuple(f.name for f in fields(cls))


@dataclass(frozen=True)
class Recipe:
    """The one training recipe of a study (or of a pretraining stage).

    ``epochs`` passes over the train set, or a fixed number of ``steps`` when set (steps wins).
    ``hflip`` is the horizontal-flip probability, ``brightness`` the +-fraction of a random
    brightness change, ``grayscale`` the probability of replacing an image by its luminance (a
    standard colour augmentation, which also lets an RGB-trained model see infrared-like input); ``max_train_images``/``max_eval_images`` cap the splits (small budgets).
    ``amp`` is the mixed precision of training (one of ``AMP_MODES``) and ``channels_last`` the
    memory format of the model and its inputs; both are off by default (plain fp32, NCHW).
    ``memory_budget_mb`` (default ``capgate.train.recipe.DEFAULT_MEMORY_BUDGET_MB``): a split whose
    decoded size exceeds it is streamed from disk by DataLoader workers instead of held in memory.
    """

    optimizer: str = "adamw"
    lr: float = 0.003
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: str = "cosine"
    warmup_steps: int = 20
    epochs: int = 10
    steps: int | None = None
    batch_size: int = 16
    resolution: int = 64
    hflip: float = 0.5
    brightness: float = 0.0
    grayscale: float = 0.0
    grad_clip: float | None = 10.0
    max_train_images: int | None = None
    max_eval_images: int | None = None
    amp: str = "off"
    channels_last: bool = False
    memory_budget_mb: int | None = None


@dataclass(frozen=True)
class DatasetRef:
    """One split of one dataset: ``root`` is ``synthetic`` (the tiny world) or a path that may
    use ``${ENV_VAR}`` (expanded only when the data is opened, never for a dry run)."""

    format: str
    root: str
    split: str
    modality: str | None = None
    domain: str | None = None
    drop_invalid: bool = False  # detection formats: drop zero-area/out-of-image boxes, counted in the record


@dataclass(frozen=True)
class EvalSet:
    """An evaluation set, named as in the results table (``flir/rgb``), with its shift tag."""

    name: str
    data: DatasetRef
    shift: str


@dataclass(frozen=True)
class TrainSet:
    """A training set and the eval sets its models are scored on."""

    name: str
    data: DatasetRef
    evals: tuple[EvalSet, ...]

    @property
    def datasets(self) -> list[DatasetRef]:
        """The train split and every eval split."""
        return [self.data, *(e.data for e in self.evals)]


@dataclass(frozen=True)
class StageDef:
    """A pretraining stage: classification on an ImageNet-layout corpus or detection on a
    COCO-layout corpus, with its own recipe; or a local ``checkpoint`` file used instead."""

    name: str
    kind: str
    data: DatasetRef | None
    recipe: Recipe
    checkpoint: str | None = None


@dataclass(frozen=True)
class InitDef:
    """An initialization: ``scratch`` (no stages), a chain of stage names, or a checkpoint."""

    name: str
    stages: tuple[str, ...] = ()
    checkpoint: str | None = None


@dataclass(frozen=True)
class Resources:
    """Ray resources of one trial (fractional GPUs let small trials share a GPU)."""

    cpu: float = 1.0
    gpu: float = 0.0


@dataclass(frozen=True)
class Adaptive:
    """The spec's ``adaptive`` section: ``run-grid SPEC`` runs the ``--until-resolved`` loop with these
    values (command-line flags override each one). ``plan`` is the analysis plan's resolved path; a
    field left ``None`` takes the library default (the plan's ``sequential.max_seeds``; 10 rounds; no
    budget of runs per round)."""

    plan: str | None = None
    max_seeds: int | None = None
    max_rounds: int | None = None
    max_runs: int | None = None


@dataclass(frozen=True)
class MinStageScore:
    """The spec's ``min_stage_score``: the lowest held-out score a pretraining stage of each kind may end
    with before runs fine-tune from it (classification: top-1; detection: COCO mAP; ``None``: no minimum).
    A stage below it stops the grid before its trials (:mod:`capgate.grid.stage_scores`); in no id."""

    classification: float | None = None
    detection: float | None = None
