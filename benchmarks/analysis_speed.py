"""Growth of ``capgate report`` (read + analysis + outputs + HTML) with the results table: 20k / 100k / 300k rows.

Each size runs in a fresh subprocess (so its peak RSS is its own) on a simulated table: detection
(LLVIP<->FLIR RGB, RGB->IR) and DomainNet classification, two families x seven rungs, three inits,
seeds chosen to hit the row count, written to results.parquet. Printed per size: seconds for
reading and validating that file (load_tables), analyze, write_outputs (model.json,
model_frame.csv, gains.csv, summary.json) and the HTML, their total, the mixed-model fits' share,
peak RSS; and, when ``Rscript`` with lme4 is installed, lme4's ``lmer`` time on the same model frame
(read from model_frame.csv; only the lmer call is timed) beside capgate's single fit of the same
formula (:func:`capgate.analysis.lmm.lmer`, no component tests) and the whole fit_mixed (the fit,
the likelihood-ratio test of every variance component, boundary refits, OLS cross-check).
Targets: 300k rows in < 60 s and < 2 GB; the fit within 3x of lme4.

    .venv/bin/python benchmarks/analysis_speed.py [--sizes 20000,100000,300000] [--no-r] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from capgate.analysis import demo_truth, simulate_results


def build_table(rows: int, seed: int = 0) -> pd.DataFrame:
    """Half detection (3 eval sets per run), half classification (4 per run), seeds chosen to hit ``rows``."""
    det_per_seed = 14 * 2 * 3 * 3  # rungs x train sets x inits x eval sets
    cls_per_seed = 14 * 2 * 3 * 4
    det = simulate_results(demo_truth(seeds=max(2, rows // 2 // det_per_seed), p_failed=0.02, p_diverged=0.01),
                           seed=seed)
    cls = simulate_results(demo_truth("classification", seeds=max(2, rows // 2 // cls_per_seed), p_failed=0.02),
                           seed=seed + 1)
    return pd.concat([det, cls], ignore_index=True)


def one_size(rows: int, out: Path) -> dict:
    """Run analysis + report on a ``rows``-row table in this process; returns the figures."""
    import importlib

    from capgate.analysis import analyze, build_summary, write_outputs
    from capgate.analysis.lmm import lmer
    from capgate.report import load_tables, render_html

    t_build = time.perf_counter()
    build_table(rows).to_parquet(out / "results.parquet", index=False)
    t_build = time.perf_counter() - t_build
    fit_s: dict[str, float] = {}
    analyze_mod = importlib.import_module("capgate.analysis.analyze")  # the package exports analyze(), the function
    fit_mixed = analyze_mod.fit_mixed

    def timed(*args, **kw):
        t = time.perf_counter()
        try:
            return fit_mixed(*args, **kw)
        finally:
            fit_s[kw["name"]] = time.perf_counter() - t

    analyze_mod.fit_mixed = timed
    # what render_report (``capgate report results.parquet``) does, step by step
    t0 = time.perf_counter()
    table, _ = load_tables(out / "results.parquet")
    t_load = time.perf_counter() - t0
    analysis = analyze(table, rng=0)
    t1 = time.perf_counter()
    summary = build_summary(analysis)
    write_outputs(analysis, out, summary)
    t2 = time.perf_counter()
    (out / "index.html").write_text(render_html(analysis, summary))
    t3 = time.perf_counter()
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
    models = []
    for m in analysis.models:
        frame = analysis.model_frames[m["name"]]
        t = time.perf_counter()
        single = lmer(m["formula_lme4"], frame, test_components=False) if m.get("random_effects") not in (None, "none") else None
        models.append({"name": m["name"], "n_obs": m["n_obs"], "formula_lme4": m["formula_lme4"],
                       "status": m["status"], "fit_mixed_s": fit_s.get(m["name"]),
                       "single_fit_s": time.perf_counter() - t if single is not None else None,
                       "r_snippet": m.get("r_snippet")})
    return {"rows": len(table), "runs": int(table["run_id"].nunique()), "build_s": t_build,
            "load_s": t_load, "analyze_s": t1 - t0 - t_load, "outputs_s": t2 - t1, "html_s": t3 - t2, "total_s": t3 - t0,
            "mixed_s": sum(fit_s.values()), "peak_rss_gb": rss_gb, "models": models}


def lme4_seconds(out: Path, snippet: str) -> float | None:
    """lme4's time for the lmer call of one model's r_snippet, on model_frame.csv in ``out``."""
    lines = []
    for line in snippet.splitlines():
        if line.startswith("fit <- lme4::lmer("):
            lines.append(f"t_fit <- system.time({line})[['elapsed']]")
            lines.append("cat('LMER_SECONDS', t_fit, '\\n')")
            break
        lines.append(line)
    (out / "time_lmer.R").write_text("suppressMessages(library(lme4))\n" + "\n".join(lines) + "\n")
    r = subprocess.run(["Rscript", "time_lmer.R"], cwd=out, capture_output=True, text=True, timeout=900)
    for line in r.stdout.splitlines():
        if line.startswith("LMER_SECONDS"):
            return float(line.split()[1])
    print(f"  lme4 failed: {r.stderr.strip()[-300:]}", file=sys.stderr)
    return None


def have_lme4() -> bool:
    return shutil.which("Rscript") is not None and subprocess.run(
        ["Rscript", "-e", "library(lme4)"], capture_output=True).returncode == 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="20000,100000,300000", help="comma-separated row counts")
    ap.add_argument("--no-r", action="store_true", help="skip the lme4 comparison")
    ap.add_argument("--out", type=Path, default=None, help="folder for the outputs (default: a temporary one)")
    ap.add_argument("--_one", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    base = args.out or Path(tempfile.mkdtemp(prefix="capgate-bench-"))
    if args._one is not None:  # child: one size, figures as JSON on stdout
        out = base / str(args._one)
        out.mkdir(parents=True, exist_ok=True)
        print("RESULT " + json.dumps(one_size(args._one, out)))
        return
    use_r = not args.no_r and have_lme4()
    results = []
    for rows in [int(s) for s in args.sizes.split(",")]:
        r = subprocess.run([sys.executable, __file__, "--_one", str(rows), "--out", str(base)],
                           capture_output=True, text=True)
        line = next((x for x in r.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            print(f"{rows} rows: failed\n{r.stderr[-2000:]}", file=sys.stderr)
            continue
        res = json.loads(line[7:])
        for m in res["models"]:
            m["lme4_s"] = lme4_seconds(base / str(rows), m["r_snippet"]) if use_r and m["single_fit_s"] else None
        results.append(res)
        print(f"{res['rows']:>7} rows: total {res['total_s']:6.1f} s (load {res['load_s']:.1f}, analyze {res['analyze_s']:.1f}, outputs "
              f"{res['outputs_s']:.1f}, html {res['html_s']:.1f}; mixed fits {res['mixed_s']:.1f} s), "
              f"peak RSS {res['peak_rss_gb']:.2f} GB", flush=True)
    print(f"\ngrowth: read + analysis + report, as `capgate report results.parquet` (table simulation excluded "
          "from the seconds, not from peak RSS); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'rows':>8} {'runs':>7} {'total s':>8} {'load':>6} {'analyze':>8} {'outputs':>8} {'html':>6} {'mixed s':>8} "
          f"{'mixed %':>8} {'RSS GB':>7} {'x rows':>7} {'x time':>7}")
    first = results[0] if results else None
    for r in results:
        print(f"{r['rows']:>8} {r['runs']:>7} {r['total_s']:>8.1f} {r['load_s']:>6.1f} {r['analyze_s']:>8.1f} {r['outputs_s']:>8.1f} "
              f"{r['html_s']:>6.1f} {r['mixed_s']:>8.1f} {100 * r['mixed_s'] / r['total_s']:>7.0f}% "
              f"{r['peak_rss_gb']:>7.2f} {r['rows'] / first['rows']:>7.1f} {r['total_s'] / first['total_s']:>7.1f}")
    print("\nmixed fit vs lme4 on the same model frame (single fit = capgate.analysis.lmm.lmer, no component tests)")
    print(f"{'rows':>8} {'model':>15} {'n':>7} {'fit_mixed s':>12} {'single s':>9} {'lme4 s':>7} {'ratio':>6}")
    for r in results:
        for m in r["models"]:
            lm, sf = m.get("lme4_s"), m.get("single_fit_s")
            ratio = f"{sf / lm:6.2f}" if lm and sf else "     -"
            print(f"{r['rows']:>8} {m['name']:>15} {m['n_obs']:>7} {m['fit_mixed_s'] or float('nan'):>12.2f} "
                  f"{sf or float('nan'):>9.2f} {lm if lm is not None else float('nan'):>7.2f} {ratio}")
    if not use_r:
        print("(lme4 comparison skipped: Rscript with lme4 not found, or --no-r)")
    last = results[-1] if results else None
    if last:
        ok = last["total_s"] < 60 and last["peak_rss_gb"] < 2
        print(f"\ntarget at {last['rows']} rows: < 60 s and < 2 GB -> {'met' if ok else 'NOT met'}; outputs in {base}")


if __name__ == "__main__":
    main()
