"""Which run groups need more seeds, and how many: seeds spent only where a verdict is still open.

A *run group* is (study, task, family, backbone, train_set, init): one trained model per seed, scored
on every eval set of its train set. A *contrast* (a pretrained init against the baseline in one cell)
is open while its verdict is ``inconclusive``. For each open contrast with ``n`` seeds per arm (seed
pairs when paired):

- **sequential plan** (plan key ``sequential``): the target is the design's next look, the first
  schedule point above ``n``; the verdicts at that look use repeated p-values
  (:func:`capgate.analysis.gains.sequential_tests`), so looking after every round keeps the chance of
  any false ``helps``/``hurts`` of a null study at alpha;
- **fixed plan**: the target is the contrast's ``seeds_needed`` in gains.csv and the report (the one
  rule of :mod:`capgate.analysis.planning`, always above ``n``), capped at ``max_seeds``. Looking again
  after those seeds is a second look that a fixed design does not pay for: :func:`next_seeds` says so in ``warnings`` (use a ``sequential`` plan for a loop).

Targets are capped at ``max_seeds`` (``--max-seeds``, at most the design's ``max_seeds``); a contrast
already at the cap is *undecidable* within it and reported as such, never grown. Both arms of a
contrast need the new seeds (the baseline group too), and the new seed numbers are the same for every
group of a site (task, family, backbone, train_set), so new runs pair with each other. A group is
grown to the largest target of its open contrasts.

With pretraining replicates (``stage_seed``) an open contrast whose noise is mostly between pretraining
runs (gains' ``more_of``) says so in its reason: more fine-tuning seeds on the same replicates would not
decide it; new seeds spread over new stage seeds would (the grid's ``stage_seeds``).

``expected_decided`` of a group: the sum over the open contrasts it serves of the chance that the
contrast is decided at its target, taking the current estimate and stabilised SD as the truth, at
the strictest adjusted level alpha / (contrasts in the family) (under a sequential design, that
level's nominal boundary at the target look) and the cell's own prior df — a planning figure, not
a promise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from capgate.analysis.cells import analysis_frame
from capgate.analysis.gains import gains_of_table
from capgate.analysis.planning import own_prior_df, p_decided
from capgate.analysis.load import validate
from capgate.analysis.plan import Plan, Sequential, resolve_plan, sequential_looks
from capgate.analysis.sequential import nominal_levels
from capgate.errors import ResultsError

__all__ = ["SeedAdvice", "next_seeds", "replay_adaptive", "GROUP_COLUMNS", "DEFAULT_MAX_SEEDS"]

#: The columns that name a run group (one trained model per seed).
GROUP_COLUMNS = ("study", "task", "family", "backbone", "train_set", "init")
#: The cap on seeds per arm when neither ``--max-seeds`` nor a sequential design sets one.
DEFAULT_MAX_SEEDS = 10
_SITE = ("study", "task", "family", "backbone", "train_set")


@dataclass(frozen=True)
class SeedAdvice:
    """What :func:`next_seeds` found. ``add``: one dict per run group to grow (the group's columns,
    ``seeds`` to add, ``new_seeds`` (their numbers), ``have``, ``target``, ``contrasts`` it helps decide,
    ``expected_decided``, ``per_run``, ``reason``); ``undecidable``: open contrasts at the cap;
    ``n_open``/``n_decided``: contrasts by state; ``max_seeds``: the cap used; ``design``: 'sequential'
    or 'fixed'; ``deferred``: open contrasts left for a later round by the budget ``max_runs``."""

    add: list[dict[str, Any]]
    undecidable: list[dict[str, Any]]
    n_open: int
    n_decided: int
    max_seeds: int
    design: str
    warnings: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)
    max_runs: int | None = None

    @property
    def done(self) -> bool:
        """True when no group needs another seed (every contrast decided or undecidable)."""
        return not self.add and not self.deferred

    @property
    def n_runs(self) -> int:
        return sum(a["seeds"] for a in self.add)

    def to_dict(self) -> dict[str, Any]:
        return {"done": self.done, "design": self.design, "max_seeds": self.max_seeds, "n_open": self.n_open,
                "n_decided": self.n_decided, "n_runs": self.n_runs, "add": self.add,
                "undecidable": self.undecidable, "deferred": self.deferred, "max_runs": self.max_runs,
                "warnings": self.warnings}

    def lines(self) -> list[str]:
        """A readable table: one line per group to grow, then the undecidable contrasts."""
        out = [f"{self.n_decided} contrasts decided, {self.n_open} open ({len(self.undecidable)} undecidable within "
               f"{self.max_seeds} seeds per arm); {self.design} design"]
        if self.done:
            out.append("done: no run group needs another seed")
        elif self.add:
            out.append(f"add {self.n_runs} runs in {len(self.add)} run groups:")
            out.append(f"  {'task':<14} {'family':<12} {'backbone':<34} {'train_set':<18} {'init':<14} "
                       f"{'have':>4} {'add':>4} {'to':>3} {'E[dec]/run':>10}  reason")
            for a in self.add:
                out.append(f"  {a['task']:<14} {a['family']:<12} {a['backbone']:<34} {a['train_set']:<18} "
                           f"{a['init']:<14} {a['have']:>4} {a['seeds']:>4} {a['target']:>3} "
                           f"{a['per_run']:>10.3f}  {a['reason']}")
        if self.deferred:
            out.append(f"deferred to a later round ({len(self.deferred)} open contrasts over this round's budget of "
                       f"{self.max_runs} runs), e.g. {self.deferred[0]}")
        for u in self.undecidable:
            out.append(f"undecidable within {self.max_seeds} seeds: {u['contrast']} ({u['reason']})")
        out += [f"warning: {w}" for w in self.warnings]
        return out


def _fmt(x: float) -> str:
    return "?" if not np.isfinite(x) else f"{x:+.4f}"


def _p_decided(r: Any, n: int, target: int, alpha_adj: float, seq: Sequential | None) -> float:
    """Chance the contrast is decided at ``target`` seeds per arm (:func:`capgate.analysis.planning.p_decided`,
    the rule gains.csv's ``seeds_needed`` solves), under a sequential design at the nominal level of the
    target look."""
    if not (np.isfinite(r.sd_mod) and r.sd_mod > 0 and np.isfinite(r.margin) and r.margin > 0):
        return 0.0
    paired = r.pairing == "paired"
    level = alpha_adj
    if seq:
        looks = sequential_looks(float(target), seq)
        level = float(nominal_levels(looks, alpha_adj, seq.spending)[-1]) if looks else alpha_adj
        if level <= 0:
            return 0.0
    return float(p_decided(r.gain, r.sd_mod, r.margin, target, alpha=level,
                           d0=own_prior_df(r.df, n, paired), paired=paired))


def next_seeds(table: pd.DataFrame, plan: Plan | dict[str, Any] | None = None, *, max_seeds: int | None = None,
               max_runs: int | None = None) -> SeedAdvice:
    """The seeds to add per run group so that open contrasts can be decided (see the module doc).

    ``table``: a results table (validated here); ``plan``: a raw or resolved plan dict (None: defaults);
    ``max_seeds``: the cap on seeds per arm (default: the sequential design's ``max_seeds``, else
    :data:`DEFAULT_MAX_SEEDS`; never above the design's); ``max_runs``: a budget of new runs for this round
    (None: no budget), spent on the contrasts with the most expected decided verdicts per run.
    """
    if max_runs is not None and max_runs < 2:
        raise ResultsError(f"max_runs = {max_runs}: a contrast needs a new run in each arm; pass --max-runs 2 or more")
    plan = resolve_plan(plan)  # idempotent on a resolved plan
    table = table if table.attrs.get("capgate_validated") else validate(table)
    if plan.baseline not in set(table["init"]):
        raise ResultsError(f"plan baseline {plan.baseline!r} is not an init of the results table (inits: "
                           f"{sorted(table['init'].unique())}); set the plan's 'baseline'")
    seq = plan.sequential
    cap = int(max_seeds) if max_seeds is not None else int(seq.max_seeds) if seq else DEFAULT_MAX_SEEDS
    if seq:
        cap = min(cap, int(seq.max_seeds))
    if cap < 2:
        raise ResultsError(f"max_seeds = {cap}: a contrast needs at least 2 seeds per arm; pass --max-seeds 2 or more")
    y, cells, _ = analysis_frame(table, plan)
    gains, _ = gains_of_table(table, plan, y, cells)
    baseline, alpha = plan.baseline, plan.alpha
    fam = gains["study"] + "|" + gains["task"]
    m_family = gains["p_value"].notna().groupby(fam).transform("sum").clip(lower=1)

    # seeds already attempted per site (any status: a failed seed number is never reused) and ok per group
    attempted = table.groupby(list(_SITE))["seed"].max()
    ok_runs = table[table["status"] == "ok"].drop_duplicates("run_id")
    have_ok = ok_runs.groupby(list(GROUP_COLUMNS))["seed"].nunique()

    open_ = gains[gains["verdict"] == "inconclusive"]
    undecidable, wanted = _open_contrasts(open_, baseline, cap, seq, alpha, m_family)
    chosen, deferred = _within_budget(wanted, max_runs)
    add = _groups_to_add(chosen, attempted, have_ok, plan)
    warnings = []
    if add and not seq:
        warnings.append("the plan has no 'sequential' design: judging the verdicts again after these seeds is a "
                        "second look a fixed design does not pay for (false claims above alpha); add a plan key "
                        "'sequential: {max_seeds: 10, schedule: [3, 5, 7, 10]}' before looping")
    n_open = int(len(open_))
    return SeedAdvice(add=add, undecidable=undecidable, n_open=n_open, n_decided=int(len(gains) - n_open),
                      max_seeds=cap, design="sequential" if seq else "fixed", warnings=warnings,
                      deferred=[w["name"] for w in deferred], max_runs=max_runs)


def _open_contrasts(open_: pd.DataFrame, baseline: str, cap: int, seq: Sequential | None, alpha: float,
                    m_family: pd.Series) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(undecidable, wanted) of the open contrasts: those at the cap, and for each one below it the two
    groups to grow, the seeds to add, the target and the chance it is decided there."""
    undecidable: list[dict[str, Any]] = []
    wanted: list[dict[str, Any]] = []  # one per open contrast below the cap
    for i, r in open_.iterrows():
        n = int(r.n_pairs) if r.pairing == "paired" else int(min(r.n_init, r.n_baseline))
        name = f"{r.init} vs {baseline} {r.backbone} {r.train_set}->{r.eval_set}"
        interval = f"gain {_fmt(r.gain)} [{_fmt(r.ci_low)}, {_fmt(r.ci_high)}]"
        if r.more_of == "pretraining_replicates":  # seeds alone shrink only the fine-tuning part of its noise
            interval += (f" (mostly between-pretraining-run noise over {int(r.n_stages)} replicates: more pretraining "
                         "replicates would decide it, not more seeds on these)")
        elif isinstance(r.conditional_on, str):
            interval += f" (conditional on the checkpoint {r.conditional_on})"
        if n >= cap:
            undecidable.append({**{c: r[c] for c in GROUP_COLUMNS}, "eval_set": r.eval_set, "baseline": baseline,
                                "contrast": name, "seeds": n, "gain": float(r.gain), "ci_low": float(r.ci_low),
                                "ci_high": float(r.ci_high),
                                "reason": f"{interval} still inconclusive at the cap of {cap} seeds per arm"})
            continue
        if seq:
            target = next((p for p in seq.schedule if p > n), cap)
        else:
            sn = r.seeds_needed
            target = max(n + 1, int(sn) if pd.notna(sn) else 3)
            if target > cap:
                interval += f"; needs {target} seeds per arm, grown to the cap of {cap}"
        target = int(min(target, cap))
        site = (r.study, r.task, r.family, r.backbone, r.train_set)
        wanted.append({"keys": (site + (r.init,), site + (baseline,)), "k": target - n, "target": target,
                       "p": _p_decided(r, n, target, alpha / float(m_family.loc[i]), seq), "name": name,
                       "interval": interval})
    return undecidable, wanted


def _groups_to_add(chosen: list[dict[str, Any]], attempted: pd.Series, have_ok: pd.Series,
                   plan: Plan) -> list[dict[str, Any]]:
    """One dict per run group the chosen contrasts grow (see :class:`SeedAdvice`), grown to the largest
    target of its contrasts, its new seed numbers after the last one attempted at its site."""
    seq = plan.sequential
    need: dict[tuple, dict[str, Any]] = {}
    for w in chosen:
        for j, key in enumerate(w["keys"]):
            # paired: both arms grow by the pairs missing; the group keeps its largest need
            e = need.setdefault(key, {"k": 0, "target": 0, "contrasts": [], "p": 0.0, "intervals": []})
            e["k"], e["target"] = max(e["k"], w["k"]), max(e["target"], w["target"])
            e["contrasts"].append(w["name"])
            e["p"] += w["p"] if j == 0 else 0.0  # keys: (the init's group, the baseline's)
            e["intervals"].append(w["interval"])

    add = []
    for key, e in sorted(need.items()):
        site = key[:5]
        start = int(attempted.get(site, -1)) + 1
        have = int(have_ok.get(key, 0))
        contrasts = sorted(set(e["contrasts"]))
        look = (f"next look at {e['target']} seeds per arm" if seq else f"{e['target']} seeds per arm for power "
                f"{plan.power}")
        add.append({**dict(zip(GROUP_COLUMNS, key)), "seeds": int(e["k"]), "new_seeds": list(range(start, start + e["k"])),
                    "have": have, "target": int(e["target"]), "contrasts": contrasts,
                    "expected_decided": round(e["p"], 4), "per_run": round(e["p"] / max(e["k"], 1), 4),
                    "reason": f"{len(contrasts)} open contrast(s), e.g. {contrasts[0]}: {e['intervals'][0]}; {look}"})
    return add


def _within_budget(wanted: list[dict[str, Any]], max_runs: int | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The open contrasts to grow this round: all of them, or with a budget of ``max_runs`` new runs a
    greedy choice of *units* (an init's group and the baseline's group at one site, with every open
    contrast they serve) by expected decided verdicts per new run; a unit's cost is the runs its two
    groups still need once the units already chosen are paid for (ties go to the name). The contrasts
    of the units left out are deferred."""
    if max_runs is None:
        return wanted, []
    units: dict[tuple, dict[str, Any]] = {}
    for w in wanted:
        u = units.setdefault(w["keys"], {"keys": w["keys"], "k": 0, "p": 0.0, "members": []})
        u["k"], u["p"] = max(u["k"], w["k"]), u["p"] + w["p"]
        u["members"].append(w)
    grown: dict[tuple, int] = {}
    left = sorted(units.values(), key=lambda u: u["keys"])
    chosen: list[dict[str, Any]] = []
    spent = 0

    def cost(u: dict[str, Any]) -> int:
        return sum(max(0, u["k"] - grown.get(key, 0)) for key in u["keys"])

    while left:
        fits = [u for u in left if spent + cost(u) <= max_runs]
        if not fits:
            break
        best = max(fits, key=lambda u: u["p"] / cost(u) if cost(u) else float("inf"))
        spent += cost(best)
        for key in best["keys"]:
            grown[key] = max(grown.get(key, 0), best["k"])
        chosen += best["members"]
        left.remove(best)
    return chosen, [w for u in left for w in u["members"]]


def replay_adaptive(full: pd.DataFrame, plan: Plan | dict[str, Any] | None, *, first: int, max_rounds: int = 10,
                    max_seeds: int | None = None) -> tuple[pd.DataFrame, list[SeedAdvice]]:
    """The adaptive loop on a table that already holds every seed a loop could ask for (a simulated study
    with the maximum seeds): round 1 shows seeds ``< first`` of every run group, each later round shows
    the seeds :func:`next_seeds` advised, until done or ``max_rounds``. Returns the table the loop ended
    with and each round's advice (no training: what tests and the cost benchmark use)."""
    plan = resolve_plan(plan)
    full = full if full.attrs.get("capgate_validated") else validate(full)
    keys = [*GROUP_COLUMNS, "seed"]
    shown = full["seed"] < first
    advice: list[SeedAdvice] = []
    for _ in range(max_rounds):
        table = full[shown]
        table.attrs["capgate_validated"] = True
        a = next_seeds(table, plan, max_seeds=max_seeds)
        advice.append(a)
        if a.done or len(advice) == max_rounds:
            break
        want = pd.DataFrame([(*(g[c] for c in GROUP_COLUMNS), s) for g in a.add for s in g["new_seeds"]], columns=keys)
        hit = full[keys].merge(want.drop_duplicates(), on=keys, how="left", indicator=True)["_merge"] == "both"
        new = hit.to_numpy() & ~shown.to_numpy()
        if not new.any():  # the full table holds none of the advised seeds: nothing more to show
            break
        shown = shown | new
    out = full[shown].copy()
    out.attrs["capgate_validated"] = True
    return out, advice
