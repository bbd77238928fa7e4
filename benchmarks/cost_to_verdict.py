"""Cost to verdict: the adaptive-seed loop against a fixed grid at the maximum seed count.

On simulated studies with a known capacity gate (one family of seven rungs, two eval sets, the
pretraining gain bending from 0 to 4-5 pp around 200k params; quiet cells, a seed component shared
by both inits), prints per spending function:

- runs trained by the adaptive loop (``capgate.analysis.next_seeds.replay_adaptive``: round 1 with the
  schedule's first seeds, then the seeds ``next_seeds`` advises, looks at 3, 5, 7, 10 seeds per arm)
  as a share of the fixed grid's runs (every group at 10 seeds);
- decided verdicts of each (helps / hurts / within_noise) and wrong ones against the truth;

and on true-null studies (every gain 0) the share of studies with any false helps/hurts after up to
``--looks`` rounds of peeking (schedule 3, 4, ..., 2 + looks seeds per arm), with the margin at 0 (no
contrast stops early for equivalence: the worst case for peeking) and at the default 1 pp; beside it the
same peeking with fixed-design p-values (what judging every round without the sequential design gives).

    python benchmarks/cost_to_verdict.py --studies 40 --null-studies 200 --looks 10
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from capgate.analysis.gains import gains_of_table
from capgate.analysis.next_seeds import replay_adaptive
from capgate.analysis.plan import resolve_plan
from capgate.analysis.simulate import Truth, simulate_results, true_gains

RUNGS = [("efficientnet_b0@w0.1d0.25 (B-7)", 41_874), ("efficientnet_b0@w0.15d0.25 (B-6)", 56_598),
         ("efficientnet_b0@w0.2d0.25 (B-5)", 76_826), ("efficientnet_b0@w0.25d0.25 (B-4)", 127_954),
         ("efficientnet_b0@w0.3d0.5 (B-3)", 277_402), ("efficientnet_b0@w0.4d0.5 (B-2)", 502_820),
         ("efficientnet_b0@w0.5d0.5 (B-1)", 713_574)]
SETS = {"llvip/rgb": [("llvip/rgb", "in_domain"), ("flir/rgb", "cross_dataset")]}
GATE = {"imagenet": {"in_domain": {"low": 0.0, "high": 0.04, "gate": 200_000},
                     "cross_dataset": {"low": 0.0, "high": 0.05, "gate": 200_000}}}
CLAIMS = ("helps", "hurts")


def truth(seeds: int, sd: float, gains: dict) -> Truth:
    return Truth(study="cost", families={"efficientnet": RUNGS}, sets=SETS, inits=("scratch", "imagenet"), seeds=seeds,
                 gains=gains, run_sd=sd, noise_sd=sd / 2, seed_sd=sd, rung_sd=0.01)


def gains_of(table: pd.DataFrame, plan: dict) -> pd.DataFrame:
    return gains_of_table(table, plan)[0]  # a sequential plan: each contrast stops at its first decisive look


def wrong(g: pd.DataFrame, tg: pd.DataFrame) -> int:
    m = g.merge(tg[["backbone", "eval_set", "init", "true_gain"]], on=["backbone", "eval_set", "init"])
    bad = ((m["verdict"] == "helps") & (m["true_gain"] <= 0)) | ((m["verdict"] == "hurts") & (m["true_gain"] >= 0)) \
        | ((m["verdict"] == "within_noise") & (m["true_gain"].abs() >= m["margin"]))
    return int(bad.sum())


def cost(studies: int, sd: float, spending: str, max_seeds: int) -> dict:
    seq = resolve_plan({"sequential": {"max_seeds": max_seeds, "spending": spending}})
    fixed = resolve_plan({})
    tg = true_gains(truth(max_seeds, sd, GATE))
    tot = {"runs_adaptive": 0, "runs_fixed": 0, "decided_adaptive": 0, "decided_fixed": 0, "wrong_adaptive": 0,
           "wrong_fixed": 0, "rounds": [], "contrasts": 0}
    for s in range(studies):
        full = simulate_results(truth(max_seeds, sd, GATE), seed=10_000 + s)
        out, rounds = replay_adaptive(full, seq, first=seq.sequential.schedule[0])
        ga, gf = gains_of(out, seq), gains_of(full, fixed)
        tot["runs_adaptive"] += out["run_id"].nunique()
        tot["runs_fixed"] += full["run_id"].nunique()
        tot["decided_adaptive"] += int((ga["verdict"] != "inconclusive").sum())
        tot["decided_fixed"] += int((gf["verdict"] != "inconclusive").sum())
        tot["wrong_adaptive"] += wrong(ga, tg)
        tot["wrong_fixed"] += wrong(gf, tg)
        tot["rounds"].append(len(rounds))
        tot["contrasts"] += len(gf)
    return tot


def null_share(studies: int, sd: float, looks: int, margin: float, spending: str) -> tuple[float, float]:
    """(share of null studies with any false helps/hurts under the sequential loop, the same share when
    every round is judged with fixed-design p-values)."""
    schedule = list(range(3, 3 + looks))
    seq = resolve_plan({"margin": margin, "sequential": {"max_seeds": schedule[-1], "schedule": schedule,
                                                         "spending": spending}})
    fixed = resolve_plan({"margin": margin})
    seq_claims = naive_claims = 0
    for s in range(studies):
        full = simulate_results(truth(schedule[-1], sd, {}), seed=20_000 + s)
        out, _ = replay_adaptive(full, seq, first=schedule[0])
        seq_claims += bool(gains_of(out, seq)["verdict"].isin(CLAIMS).any())
        # naive peeking: judge every round with fixed-design p-values, stop at the first claim
        naive = False
        for n in schedule:
            view = full[full["seed"] < n]
            view.attrs["capgate_validated"] = True
            if gains_of(view, fixed)["verdict"].isin(CLAIMS).any():
                naive = True
                break
        naive_claims += naive
    return seq_claims / studies, naive_claims / studies


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=40, help="simulated gate studies per setting")
    ap.add_argument("--null-studies", type=int, default=200, help="simulated null studies per margin")
    ap.add_argument("--looks", type=int, default=10, help="looks (rounds) of the null check's schedule")
    ap.add_argument("--sd", type=float, nargs="+", default=[0.002, 0.003], help="run-to-run SD of one run")
    ap.add_argument("--margins", type=float, nargs="+", default=[0.0, 0.01], help="margins of the null check")
    ap.add_argument("--max-seeds", type=int, default=10, help="seeds per arm of the fixed grid and the loop's cap")
    args = ap.parse_args()
    t0 = time.time()
    print(f"capacity-gate studies: {args.studies} per setting; fixed grid = {args.max_seeds} seeds per arm, "
          f"loop = looks at {resolve_plan({'sequential': {'max_seeds': args.max_seeds}})['sequential']['schedule']}")
    print(f"{'sd':>6} {'spending':<15} {'runs loop/fixed':>16} {'share':>6} {'decided loop':>13} {'decided fixed':>14} "
          f"{'wrong loop':>11} {'wrong fixed':>12} {'rounds':>7}")
    for sd in args.sd if args.studies > 0 else []:
        for spending in ("obrien_fleming", "pocock"):
            r = cost(args.studies, sd, spending, args.max_seeds)
            print(f"{sd:>6.3f} {spending:<15} {r['runs_adaptive']:>7}/{r['runs_fixed']:<8} "
                  f"{r['runs_adaptive'] / r['runs_fixed']:>6.2f} {r['decided_adaptive']:>7}/{r['contrasts']:<5} "
                  f"{r['decided_fixed']:>8}/{r['contrasts']:<5} {r['wrong_adaptive']:>11} {r['wrong_fixed']:>12} "
                  f"{np.mean(r['rounds']):>7.2f}")
    alpha = resolve_plan({})["alpha"]
    print(f"null studies: {args.null_studies} per margin, up to {args.looks} looks (3..{2 + args.looks} seeds per arm), "
          f"Pocock spending, sd {args.sd[0]:g}; target: share <= alpha = {alpha} within simulation error")
    for margin in args.margins:
        share, naive = null_share(args.null_studies, args.sd[0], args.looks, margin, "pocock")
        se = np.sqrt(max(share * (1 - share), alpha * (1 - alpha)) / args.null_studies)
        print(f"  margin {margin:<5g} false-claim share with the sequential design {share:.3f} (+- {se:.3f}); "
              f"judging every round with fixed-design p-values {naive:.3f}")
    print(f"({time.time() - t0:.0f}s)")


if __name__ == "__main__":
    main()
