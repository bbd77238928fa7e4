"""A study planned before anything starts: the expanded stages and runs, what ``--dry-run`` prints.

:func:`plan_grid` loads and validates the spec (rung names included) and expands it; no data is
read (but the class index file of a spec's ``classes: from_data``) and neither torch nor ray is imported. :meth:`GridPlan.describe` and :meth:`GridPlan.to_dict`
are the dry run's text and ``--json`` output: the resolved spec (as YAML in the text), every
pretraining stage and run, and how many runs the store already holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from capgate._resources import shipped
from capgate.errors import CapgateError, SpecError
from capgate.spec.model import PretrainSpec, RunSpec, StudySpec, expand
from capgate.spec.load import load_study, study_to_dict

__all__ = ["GridPlan", "plan_grid", "find_spec_file"]


@dataclass(frozen=True)
class GridPlan:
    """A study expanded into stages and runs, before anything is started."""

    study: StudySpec
    stages: list[PretrainSpec]
    runs: list[RunSpec]

    @property
    def n_records(self) -> int:
        return sum(len(r.train_set.evals) for r in self.runs)

    def headline(self, stored: int | None = None) -> str:
        s = self.study
        line = (f"study {s.study} ({s.task}): {len(self.runs)} runs = {len(s.train_sets)} train sets x "
                f"{len(s.rungs)} rungs x {len(s.inits)} inits x {len(s.seeds)} seeds; {self.n_records} result "
                f"records; {len(self.stages)} pretraining stages")
        if len(s.stage_seeds) > 1:
            line += (f" ({len(s.stage_seeds)} replicates per chain, stage seeds {list(s.stage_seeds)}; fine-tuning "
                     f"seed i starts from stage seed stage_seeds[i % {len(s.stage_seeds)}])")
        if stored is not None:
            line += f"; {stored} of {len(self.runs)} runs already stored, {len(self.runs) - stored} to train"
        return line

    def describe(self, stored: int | None = None) -> str:
        """A readable listing: the resolved spec as YAML, every stage and every run."""
        counts = [len(self.study.classes_of(i)) for i in range(len(self.study.train_sets))]
        sets = ", ".join(f"{ts.name} ({n} class{'' if n == 1 else 'es'})"
                         for ts, n in zip(self.study.train_sets, counts))
        lines = [self.headline(stored), f"train sets: {sets}", "resolved spec:"]
        text = yaml.safe_dump(study_to_dict(self.study), sort_keys=False, default_flow_style=None, width=100)
        lines += ["  " + ln for ln in text.rstrip().splitlines()]
        lines.append("pretraining stages:")
        for st in self.stages:
            src = st.checkpoint or f"{st.data.format}:{st.data.split} @ {st.data.root}"
            lines.append(f"  {st.stage_id}  {st.kind:<14} {st.family}/{st.rung}  seed={st.seed}  from {src}"
                         + (f"  after {st.parent}" if st.parent else ""))
        lines.append("runs:")
        for r in self.runs:
            evals = ", ".join(f"{e.name}[{e.shift}]" for e in r.train_set.evals)
            stage = f" stage={r.init_stage} stage_seed={r.stage_seed}" if r.init_stage else ""
            lines.append(f"  {r.run_id}  {r.family}/{r.rung} init={r.init} seed={r.seed}{stage} "
                         f"train={r.train_set.name} eval={evals}")
        return "\n".join(lines)

    def to_dict(self, stored: list[str] | None = None) -> dict[str, Any]:
        """The dry run as JSON-able data (``run-grid --dry-run --json``)."""
        done = set(stored or ())
        return {
            "study": self.study.study, "task": self.study.task, "n_runs": len(self.runs),
            "n_records": self.n_records, "n_stored": None if stored is None else len(done),
            "spec": study_to_dict(self.study),
            "stages": [{"stage_id": s.stage_id, **s.to_dict()} for s in self.stages],
            "stage_seeds": list(self.study.stage_seeds),
            "train_sets": [{"name": ts.name, "n_classes": len(self.study.classes_of(i))}
                           for i, ts in enumerate(self.study.train_sets)],
            "runs": [{"run_id": r.run_id, "family": r.family, "rung": r.rung, "init": r.init, "seed": r.seed,
                      "init_stage": r.init_stage, "stage_seed": r.stage_seed, "train_set": r.train_set.name,
                      "evals": [e.name for e in r.train_set.evals], "stored": r.run_id in done} for r in self.runs],
        }


def find_spec_file(spec: str | Path) -> Path:
    """``spec`` as given when that file exists; else the spec of that name shipped with capgate
    (``experiments/llvip_flir.yaml``, ``llvip_flir.yaml`` or ``llvip_flir``), so an installed
    wheel runs the shipped studies from any folder."""
    path = Path(spec)
    if path.exists():
        return path
    name = path.name if path.suffix in (".yaml", ".yml") else f"{path.name}.yaml"
    try:
        candidate = shipped("experiments") / name
    except CapgateError:  # no shipped folder: report the path as given
        candidate = None
    if candidate is not None and candidate.is_file():
        return candidate
    known = sorted(p.name for p in shipped("experiments").glob("*.yaml")) if candidate is not None else []
    raise SpecError(f"spec file {path} does not exist; pass a path to a study spec"
                    + (f" or the name of a shipped one ({', '.join(known)})" if known else ""))


def plan_grid(spec_path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> GridPlan:
    """Load, validate and expand a study spec (rung names are checked while it is loaded)."""
    study = load_study(find_spec_file(spec_path), overrides)
    stages, runs = expand(study)
    return GridPlan(study, stages, runs)
