"""``run-grid --until-resolved``: train more seeds only where a verdict is still open.

Round 1 trains the spec's grid (its ``seeds``). After each round the study's results table goes to
:func:`capgate.analysis.next_seeds`, which names the run groups (task, family, backbone, train_set,
init) that need more seeds; those seeds become new :class:`~capgate.spec.RunSpec`\\ s (the seed is part
of the spec, so each has its own ``run_id``) and the next round trains them through the ordinary
:func:`capgate.grid.driver.run_grid` path. The loop stops when every contrast is decided or
undecidable within ``max_seeds``, or after ``max_rounds`` rounds.

Looking after every round is paid for by the analysis plan's group-sequential design (plan key
``sequential``; :func:`capgate.analysis.gains.sequential_tests`): the loop refuses a plan without one.

Crash safety: the seeds each round adds are written to ``<storage>/<study>/adaptive.json`` (atomically)
*before* that round trains. The same command after a kill first trains the recorded rounds' missing
runs (the store skips every run_id already stored, so nothing trains twice) and then continues with
the decisions an uninterrupted loop would have made, since those depend only on the stored results.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from capgate.store.atomic import atomic_write_json
from capgate._hash import short_hash
from capgate.errors import SpecError
from capgate.grid.driver import GridResult, resolve_storage, run_grid
from capgate.grid.plan import plan_grid
from capgate.spec.model import Adaptive, RunSpec, StudySpec, reseed

__all__ = ["AdaptiveResult", "run_until_resolved", "seeded_runs", "adaptive_settings", "STATE_NAME",
           "DEFAULT_MAX_ROUNDS"]

log = logging.getLogger("capgate.grid")

#: The file, beside the study's runs, that records the seeds each round added.
STATE_NAME = "adaptive.json"
DEFAULT_MAX_ROUNDS = 10


@dataclass
class AdaptiveResult:
    """What the loop did: one dict per round (round, runs, trained, open, decided, added), the last
    grid result, and why it stopped (``done``, ``max_rounds``)."""

    study: str
    rounds: list[dict[str, Any]] = field(default_factory=list)
    grid: GridResult | None = None
    stopped: str = ""
    undecidable: int = 0

    def stop_line(self) -> str:
        """Why the loop stopped, after how many rounds and runs, with the last round's counts."""
        last = self.rounds[-1] if self.rounds else {}
        return (f"adaptive study {self.study}: stopped ({self.stopped}) after {len(self.rounds)} rounds, "
                f"{last.get('runs', 0)} runs; {last.get('decided', 0)} contrasts decided, "
                f"{last.get('open', 0)} open ({self.undecidable} undecidable within the seed cap)")

    def summary(self) -> str:
        """What is left to say after the loop: the stop line and the last grid's summary. The round
        lines are not repeated: the loop said each as it ran (``echo``)."""
        lines = [self.stop_line()]
        if self.grid is not None:
            lines.append(self.grid.summary())
        return "\n".join(lines)


def adaptive_settings(spec_adaptive: Adaptive | None, until_resolved: bool = False, *, plan: str | None = None,
                      max_seeds: int | None = None, max_rounds: int | None = None,
                      max_runs: int | None = None) -> dict[str, Any] | None:
    """The loop's settings, each the flag's value, else the spec's ``adaptive`` key, else None (the
    library default); None when neither ``--until-resolved`` nor the spec's ``adaptive`` asks for a loop."""
    if spec_adaptive is None and not until_resolved:
        return None
    spec_values = spec_adaptive or Adaptive()
    flags = {"plan": plan, "max_seeds": max_seeds, "max_rounds": max_rounds, "max_runs": max_runs}
    return {k: v if v is not None else getattr(spec_values, k) for k, v in flags.items()}


def describe_settings(settings: dict[str, Any]) -> str:
    """One line for ``--dry-run``: the loop's settings, a library default named as such."""
    plan = settings["plan"] or "the default plan (no sequential design: the loop would refuse it)"
    seeds = settings["max_seeds"] if settings["max_seeds"] is not None else "the plan's sequential.max_seeds"
    rounds = settings["max_rounds"] if settings["max_rounds"] is not None else f"{DEFAULT_MAX_ROUNDS} (default)"
    runs = settings.get("max_runs")
    return (f"adaptive seeds (until resolved): plan {plan}; max_seeds {seeds}; max_rounds {rounds}; "
            f"max_runs {runs if runs is not None else 'unlimited (default)'} per round")


def _group_of(run: RunSpec) -> tuple[str, str, str, str, str, str]:
    return (run.study, run.task, run.family, run.build_rung().backbone_name, run.train_set.name, run.init)


def seeded_runs(base: list[RunSpec], added: dict[tuple, set[int]], study: StudySpec | None = None) -> list[RunSpec]:
    """The runs of ``added`` (run group -> seeds), each a base run of that group with its seed replaced
    and, given the ``study``, started from that seed's pretraining replicate (:func:`capgate.spec.model.reseed`).

    A group that names no run of the spec raises :class:`SpecError` (the spec changed under a recorded
    loop)."""
    template: dict[tuple, RunSpec] = {}
    for r in base:
        template.setdefault(_group_of(r), r)
    out = []
    for key, seeds in sorted(added.items()):
        if key not in template:
            raise SpecError(f"adaptive seeds recorded for run group {key} match no run of the spec; the spec changed "
                            f"since the loop started: use another --storage, or delete {STATE_NAME} to start over")
        out += [reseed(study, template[key], s) if study is not None else dataclasses.replace(template[key], seed=s)
                for s in sorted(seeds)]
    return out


def _state_path(storage: Any, study: str) -> Any:
    return storage / study / STATE_NAME


def _write_state(path: Any, state: dict[str, Any]) -> None:
    """Atomically: a local file by rename, an object-store location (its ``write_text``) by one put."""
    if isinstance(path, Path):
        atomic_write_json(path, state)
    else:
        path.write_text(json.dumps(state, indent=1) + "\n")


def _read_state(path: Any, fingerprint: str) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    try:
        state = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise SpecError(f"{path}: not valid JSON ({exc}); delete it to restart the adaptive loop") from exc
    if state.get("grid") != fingerprint:
        raise SpecError(f"{path}: recorded for another grid (spec or --set changed); use another --storage, "
                        "or delete the file to start the adaptive loop over")
    return list(state.get("rounds", []))


def run_until_resolved(spec_path: str | Path, overrides: list[str] | tuple[str, ...] = (), *,
                       plan: str | Path | dict[str, Any] | None = None, max_seeds: int | None = None,
                       max_rounds: int | None = None, max_runs: int | None = None,
                       storage: str | Path | None = None, echo: Callable[[str], None] | None = None,
                       before_round: Callable[[Any, Any], str | None] | None = None,
                       **grid_kw: Any) -> AdaptiveResult:
    """Train the spec's grid, then more seeds where verdicts are open, until done or the limits.

    ``plan``: the analysis plan (a YAML path or dict) with a ``sequential`` design; ``max_seeds``: the cap
    on seeds per arm (default: the design's); ``max_rounds``: rounds including the first
    (default :data:`DEFAULT_MAX_ROUNDS`); ``max_runs``: a budget of new runs per round (spent where the
    expected decided verdicts per run are highest; None: every advised run); ``before_round(advice,
    table)``: called before a new round trains, a returned reason stops the loop there (``capgate demo``'s
    time budget); ``grid_kw`` goes to :func:`run_grid` (address,
    max_concurrent, retries, num_cpus). ``echo`` receives each progress line (default: the log).
    """
    from capgate.analysis import load_results
    from capgate.analysis.next_seeds import next_seeds
    from capgate.analysis.plan import as_plan

    say = echo or log.info
    aplan = as_plan(plan)
    if not aplan.sequential:
        raise SpecError(f"{aplan.source or 'the default plan'}: --until-resolved looks at the verdicts after "
                        "every round and needs a pre-declared group-sequential design: pass --plan with a key "
                        "'sequential: {max_seeds: 10, schedule: [3, 5, 7, 10], spending: obrien_fleming}'")
    rounds_max = DEFAULT_MAX_ROUNDS if max_rounds is None else int(max_rounds)
    if rounds_max < 1:
        raise SpecError(f"--max-rounds {rounds_max}: give 1 or more rounds")
    gp = plan_grid(spec_path, overrides)
    base = list(gp.runs)
    root = resolve_storage(storage)
    study = gp.study.study
    path = _state_path(root, study)
    fingerprint = short_hash(sorted(r.run_id for r in base), 16)
    recorded = _read_state(path, fingerprint)
    added: dict[tuple, set[int]] = {}
    for rnd in recorded:
        for a in rnd["add"]:
            added.setdefault(tuple(a["group"]), set()).update(a["seeds"])
    result = AdaptiveResult(study)
    rnd_no = len(recorded) + 1
    while True:
        extra = seeded_runs(base, added, gp.study)
        grid = run_grid(spec_path, overrides, storage=root, raise_on_failure=False, extra_runs=extra, **grid_kw)
        result.grid = grid
        table = load_results(str(grid.table))
        advice = next_seeds(table, aplan, max_seeds=max_seeds, max_runs=max_runs)
        result.undecidable = len(advice.undecidable)
        line = (f"round {rnd_no}/{rounds_max}: {grid.n_runs} runs so far ({grid.n_trained} trained this round); "
                f"{advice.n_open} contrasts open ({len(advice.undecidable)} undecidable), {advice.n_decided} decided")
        entry = {"round": rnd_no, "runs": grid.n_runs, "trained": grid.n_trained, "open": advice.n_open,
                 "decided": advice.n_decided, "added": 0, "line": line}
        result.rounds.append(entry)
        if advice.done:
            result.stopped = "done: every contrast decided or undecidable within the seed cap"
        elif rnd_no >= rounds_max:
            result.stopped = f"max_rounds {rounds_max} reached, {advice.n_runs} more runs were advised"
        elif not advice.add:
            result.stopped = (f"the round's budget of {max_runs} runs fits none of the {len(advice.deferred)} open "
                              "contrasts (each needs new seeds in both arms): raise --max-runs")
        elif before_round is not None:
            result.stopped = before_round(advice, table) or ""
        if result.stopped:
            entry["line"] = line + f"; {result.stopped}"
            say(f"[adaptive] {entry['line']}")
            return result
        new = [{"group": [a[c] for c in ("study", "task", "family", "backbone", "train_set", "init")],
                "seeds": a["new_seeds"]} for a in advice.add]
        recorded.append({"round": rnd_no + 1, "add": new})
        _write_state(path, {"grid": fingerprint, "rounds": recorded})  # before training: a kill loses nothing
        for a in new:
            added.setdefault(tuple(a["group"]), set()).update(a["seeds"])
        entry["added"] = advice.n_runs
        entry["line"] = line + f"; adding {advice.n_runs} runs in {len(advice.add)} run groups"
        say(f"[adaptive] {entry['line']}")
        rnd_no += 1
