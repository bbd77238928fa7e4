"""The commands that analyse RESULTS: ``next-seeds``, ``report`` and ``check``. All three read their
inputs through the one results loader (:func:`capgate.cli.results.load_inputs`): local files, study
folders, object-store URIs, several concatenated, a foreign table's columns mapped with ``--map``."""

from __future__ import annotations

from pathlib import Path

import click

from capgate.cli.results import load_inputs, mapping_args, mapping_options
from capgate.cli.support import EXIT_CODES_HELP

__all__ = ["next_seeds_cmd", "report_cmd", "check_cmd"]

ALL_RUNS_HELP = ("Read every record of a study folder, older specs' runs included (default: the runs of the "
                 "spec run-grid last ran, the same rows as its results.parquet).")


@click.command("next-seeds", epilog=EXIT_CODES_HELP)
@click.argument("results", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--plan", type=click.Path(path_type=str), help="Analysis plan YAML (default: built-in defaults).")
@click.option("--max-seeds", type=click.IntRange(2), default=None,
              help="Never grow a run group past N seeds [default: the plan's sequential.max_seeds, else 10].")
@click.option("--max-runs", type=click.IntRange(2), default=None,
              help="A budget of new runs for this round, spent where the expected decided verdicts per run are "
                   "highest; the other open contrasts are listed as deferred [default: no limit].")
@click.option("--json", "as_json", is_flag=True,
              help="Print JSON: {done, add: [...], undecidable: [...], deferred: [...]}.")
@click.option("--all-runs", is_flag=True, help=ALL_RUNS_HELP)
@mapping_options
def next_seeds_cmd(results: tuple[str, ...], plan: str | None, max_seeds: int | None, max_runs: int | None,
                   as_json: bool, all_runs: bool, mapping: tuple[str, ...], shift_labels: tuple[str, ...]) -> None:
    """Say which run groups of RESULTS need how many more seeds to decide their open verdicts, and why.

    RESULTS may be local paths or object-store URIs (s3://bucket/prefix/study, gs://bucket/study)."""
    import json

    from capgate.analysis.next_seeds import next_seeds
    from capgate.analysis import as_plan

    loaded = load_inputs(results, all_runs=all_runs, mapping=mapping, shift_labels=shift_labels, plan=plan)
    advice = next_seeds(loaded.table, as_plan(plan), max_seeds=max_seeds, max_runs=max_runs)
    click.echo(json.dumps(advice.to_dict(), indent=1, default=float) if as_json else "\n".join(advice.lines()))


@click.command("report", epilog=EXIT_CODES_HELP)
@click.argument("results", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--plan", type=click.Path(path_type=str), help="Analysis plan YAML (default: built-in defaults).")
@click.option("-o", "--out", "outdir", required=True, type=click.Path(file_okay=False, path_type=str),
              help="Output folder, e.g. reports/demo/.")
@click.option("--title", help="Report title (default: from the study names).")
@click.option("--all-runs", is_flag=True, help=ALL_RUNS_HELP)
@mapping_options
def report_cmd(results: tuple[str, ...], plan: str | None, outdir: str, title: str | None, all_runs: bool,
               mapping: tuple[str, ...], shift_labels: tuple[str, ...]) -> None:
    """Analyze RESULTS (results tables or study folders; several give one combined report) and
    write index.html, summary.json, gains.csv, model.json and model_frame.csv into --out.

    RESULTS may be local paths or object-store URIs (s3://bucket/prefix/study, gs://bucket/study);
    a table from another trainer is read with --map (see README, 'Bring your own results')."""
    from capgate.report import render_report, report_tally

    loaded = load_inputs(results, all_runs=all_runs, mapping=mapping, shift_labels=shift_labels, plan=plan)
    index = render_report(loaded.table, outdir, plan=plan, title=title, inputs=loaded.inputs)
    click.echo(f"report written to {index}")
    click.echo(report_tally(outdir))


@click.command("check", epilog=EXIT_CODES_HELP + " Exit 1 means a regression against the baseline.")
@click.argument("results", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--baseline", required=True, type=click.Path(dir_okay=False, path_type=str),
              help="Baseline summary JSON, e.g. reports/baselines/demo.json.")
@click.option("--plan", type=click.Path(path_type=str), help="Analysis plan YAML whose expectations must hold.")
@click.option("--junit", type=click.Path(dir_okay=False, path_type=str), help="Write JUnit XML here.")
@click.option("--abs-tol", type=float, default=0.0, show_default=True,
              help="Absolute floor of the mean tolerance, on the metric's 0..1 scale.")
@click.option("--z", "z", type=float, default=None,
              help="Tolerance multiplier of sqrt(se_base^2 + se_current^2) "
                   "[default: Bonferroni z for 1% family-wise false alarms over the baseline's cells].")
@click.option("--se", "se_mode", type=click.Choice(["cell", "pooled"]), default="cell", show_default=True,
              help="Each cell's SE: its own stabilised (moderated) SE, or the task's pooled SD / sqrt(seeds).")
@click.option("--strict", is_flag=True, help="Fail expectations left untested by inconclusive cells (default: warn).")
@click.option("--expectations", "expectations", type=click.Choice(["hold", "baseline"]), default="hold",
              show_default=True, help="Plan expectations must hold, or keep the status the baseline recorded "
                                      "(a claim the study does not reproduce stays reported; a change is drift).")
@click.option("--update-baseline", is_flag=True, help="Write the current summary as the new baseline.")
@click.option("--only-problems", is_flag=True, help="Print only warnings and failures.")
@click.option("--all-runs", is_flag=True, help=ALL_RUNS_HELP)
@click.option("--explain", is_flag=True, help="Also print the rule that computes each tolerance (also with -v).")
@mapping_options
@click.pass_context
def check_cmd(ctx: click.Context, results: tuple[str, ...], baseline: str, plan: str | None, junit: str | None,
              abs_tol: float, z: float | None, se_mode: str, strict: bool, expectations: str, update_baseline: bool,
              only_problems: bool, all_runs: bool, explain: bool, mapping: tuple[str, ...],
              shift_labels: tuple[str, ...]) -> int:
    """Compare RESULTS (results tables, or one summary.json) with a baseline summary: cells present
    and means within noise, verdicts and capacity gates unchanged, plan expectations hold."""
    from capgate.check.run import format_table, run_check

    options = dict(abs_tol=abs_tol, z=z, se_mode=se_mode, junit=junit, update_baseline=update_baseline,
                   strict=strict, expectations=expectations)
    if any(r.endswith(".json") and Path(r).is_file() for r in results):  # a summary.json, checked as it is
        result = run_check(list(results), baseline, plan, **options)
    else:
        loaded = load_inputs(results, all_runs=all_runs, mapping=mapping, shift_labels=shift_labels, plan=plan)
        result = run_check(loaded.table, baseline, plan, **options,
                           command_args=[*results, *mapping_args(mapping, shift_labels)]
                           + (["--all-runs"] if all_runs else []))
    explain = explain or ctx.find_root().meta.get("capgate.verbosity", 0) > 0
    click.echo(format_table(result, only_problems=only_problems, explain=explain))
    return 0 if update_baseline else result.exit_code  # the baseline was written: that is the success
