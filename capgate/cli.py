"""capgate's command line: thin click commands, each parsing its options, calling one library
function and printing. Library errors (``CapgateError``) become ``Error: ...`` on stderr and
the error's exit code, in one place (:func:`main`).

Exit codes: 0 success; 1 failure (failed trials, a regression found by ``check``, a crash);
2 unusable input (a malformed spec, dataset, checkpoint, plan or results file, or bad options).
"""

from __future__ import annotations

import logging
import sys

import click

from capgate import __version__
from capgate.errors import CapgateError

EXIT_CODES_HELP = "Exit codes: 0 success, 1 failure, 2 unusable input."
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _configure_logging(verbosity: int) -> None:
    level = {-1: logging.WARNING, 0: logging.INFO, 1: logging.DEBUG}[max(-1, min(1, verbosity))]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)


@click.group(context_settings=CONTEXT_SETTINGS, epilog=EXIT_CODES_HELP)
@click.version_option(__version__, "--version", prog_name="capgate")
@click.option("-v", "--verbose", count=True, help="More log output (debug).")
@click.option("-q", "--quiet", count=True, help="Less log output (warnings only).")
def cli(verbose: int, quiet: int) -> None:
    """capgate: is pretrained initialization worth it for a tiny ConvNet?"""
    _configure_logging(verbose - quiet)


# Commands are added below by section; each section's library lives in its own package.
# --- data -------------------------------------------------------------------------------
# Kept in step with capgate.data.verify.VERIFY_FORMATS (a test checks), so --help stays light.
DATA_VERIFY_FORMATS = ("llvip", "flir", "coco", "imagenet", "domainnet")


@cli.group(context_settings=CONTEXT_SETTINGS, epilog=EXIT_CODES_HELP)
def data() -> None:
    """The synthetic tiny world, and checks of datasets on disk."""


@data.command("synth", context_settings=CONTEXT_SETTINGS, epilog=EXIT_CODES_HELP)
@click.option("--out", type=click.Path(file_okay=False), default="capgate-world", show_default=True,
              help="Folder to write the world into (reused if it already holds a matching world).")
@click.option("--seed", type=int, default=0, show_default=True, help="Generator seed.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a WorldConfig field, e.g. --set llvip_train=50 --set llvip_size=96,80.")
@click.option("--force", is_flag=True, help="Regenerate even if a matching world exists.")
def data_synth(out: str, seed: int, overrides: tuple[str, ...], force: bool) -> None:
    """Generate the synthetic tiny world (LLVIP, FLIR, ImageNet, COCO and DomainNet layouts)."""
    from capgate.data.synth_world import WorldConfig, ensure_world, generate_world

    pairs = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--set")
        pairs[key.strip()] = value.strip()
    config = WorldConfig().with_overrides(pairs)
    manifest = (generate_world if force else ensure_world)(out, config, seed)
    click.echo(f"synthetic world at {manifest.root} (seed {manifest.seed})")
    for name, info in manifest.datasets.items():
        click.echo(f"  {name:<10} {info['files']:>6} files  {manifest.root / info['path']}  {info['fingerprint'][:16]}")
    click.echo(f"fingerprint {manifest.fingerprint}")


@data.command("verify", context_settings=CONTEXT_SETTINGS,
              epilog="Exit codes: 0 no problems, 2 problems found or unusable input.")
@click.argument("path", type=click.Path(exists=True))
@click.option("--format", "fmt", type=click.Choice(DATA_VERIFY_FORMATS), required=True, help="On-disk layout.")
@click.option("--all-images", is_flag=True, help="Open every image header (default: up to 2000 per split).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def data_verify(ctx: click.Context, path: str, fmt: str, all_images: bool, as_json: bool) -> None:
    """Summarise a dataset (images, boxes per class, image sizes) and list every problem."""
    import json

    from capgate.data.verify import verify

    report = verify(path, fmt, None if all_images else 2000)
    click.echo(json.dumps(report.to_dict(), indent=1) if as_json else "\n".join(report.lines()))
    if not report.ok:
        ctx.exit(2)


# --- models -----------------------------------------------------------------------------


@cli.command("models", context_settings=CONTEXT_SETTINGS, epilog=EXIT_CODES_HELP)
@click.option("--family", type=click.Choice(["efficientnet", "mobilenetv3"]), default=None,
              help="Only this family's rungs (default: both).")
@click.option("--resolution", type=click.IntRange(32, 4096), default=128, show_default=True,
              help="Input size in pixels for MACs and latency.")
@click.option("--task", type=click.Choice(["detection", "classification"]), default="detection",
              show_default=True, help="Profile the FCOS detector or the classifier.")
@click.option("--num-classes", type=click.IntRange(1), default=None,
              help="Classes of the head (default: 1 for detection, 10 for classification).")
@click.option("--latency/--no-latency", default=True, show_default=True,
              help="Measure CPU latency (batch 1, 1 thread, median of 10 after 3 warm-ups).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object per rung) instead of a table.")
def models_cmd(family: str | None, resolution: int, task: str, num_classes: int | None, latency: bool,
               as_json: bool) -> None:
    """Print the capacity ladder: each rung's multipliers, exact parameters, MACs and latency.

    MACs = FLOPs / 2 of one image at --resolution, counted by torch's FlopCounterMode.
    """
    import json

    from capgate.models.table import format_ladder_table, ladder_table

    rows = ladder_table(family, task=task, resolution=resolution, num_classes=num_classes, latency=latency)
    click.echo(json.dumps(rows, indent=2) if as_json else format_ladder_table(rows))

# --- grid -------------------------------------------------------------------------------


@cli.command("run-grid", context_settings=CONTEXT_SETTINGS,
             epilog=EXIT_CODES_HELP + " Exit 1 also when runs failed (they are recorded and listed).")
@click.argument("spec", type=click.Path(dir_okay=False, path_type=str))
@click.option("--dry-run", is_flag=True, help="List every pretraining stage and run; start nothing.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a spec value (YAML syntax), e.g. --set recipe.lr=0.01 --set seeds=5. Repeatable.")
@click.option("--storage", default=None, metavar="PATH|URI",
              help="Study storage: a local path or file:// URI every node mounts [default: ./.capgate].")
@click.option("--address", default=None, help="Join this Ray cluster (default: start one in-process).")
@click.option("--max-concurrent", type=click.IntRange(1), default=None, help="At most N trials at once.")
@click.option("--retries", type=click.IntRange(0), default=2, show_default=True,
              help="Times Ray retries a trial or stage lost to a dead worker or node.")
def run_grid_cmd(spec: str, dry_run: bool, overrides: tuple[str, ...], storage: str | None,
                 address: str | None, max_concurrent: int | None, retries: int) -> None:
    """Run the study SPEC (experiments/*.yaml) on Ray Tune: every run missing from the store is
    trained (pretraining stages first), then the results table is written (parquet and CSV).
    Rerunning the same command trains only what is missing."""
    from capgate.grid import plan_grid, run_grid

    if dry_run:
        click.echo(plan_grid(spec, overrides).describe())
        return
    result = run_grid(spec, overrides, storage=storage, address=address, max_concurrent=max_concurrent,
                      retries=retries)
    click.echo(result.summary())

# --- report and check -------------------------------------------------------------------
@cli.command("report", epilog=EXIT_CODES_HELP)
@click.argument("results", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--plan", type=click.Path(path_type=str), help="Analysis plan YAML (default: built-in defaults).")
@click.option("-o", "--out", "outdir", required=True, type=click.Path(file_okay=False, path_type=str),
              help="Output folder, e.g. reports/demo/.")
@click.option("--title", help="Report title (default: from the study names).")
def report_cmd(results: tuple[str, ...], plan: str | None, outdir: str, title: str | None) -> None:
    """Analyze RESULTS (results tables or study folders; several give one combined report) and
    write index.html, summary.json, gains.csv, model.json and model_frame.csv into --out."""
    from capgate.report import render_report

    index = render_report(list(results), outdir, plan=plan, title=title)
    click.echo(f"report written to {index}")


@cli.command("check", epilog=EXIT_CODES_HELP + " Exit 1 means a regression against the baseline.")
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
@click.option("--update-baseline", is_flag=True, help="Write the current summary as the new baseline.")
@click.option("--only-problems", is_flag=True, help="Print only warnings and failures.")
def check_cmd(results: tuple[str, ...], baseline: str, plan: str | None, junit: str | None, abs_tol: float,
              z: float | None, se_mode: str, strict: bool, update_baseline: bool, only_problems: bool) -> int:
    """Compare RESULTS (results tables, or one summary.json) with a baseline summary: cells present
    and means within noise, verdicts and capacity gates unchanged, plan expectations hold."""
    from capgate.check import format_table, run_check

    result = run_check(list(results), baseline, plan, abs_tol=abs_tol, z=z, se_mode=se_mode, junit=junit,
                       update_baseline=update_baseline, strict=strict)
    click.echo(format_table(result, only_problems=only_problems))
    return result.exit_code


# --- demo -------------------------------------------------------------------------------


@cli.command("demo", context_settings=CONTEXT_SETTINGS, epilog=EXIT_CODES_HELP)
@click.option("--storage", default=None, metavar="PATH", help="Study storage [default: ./.capgate].")
@click.option("-o", "--out", "outdir", default="reports/demo", show_default=True,
              type=click.Path(file_okay=False, path_type=str), help="Report folder.")
@click.option("--classification/--no-classification", default=True, show_default=True,
              help="Also run the classification slice (experiments/demo_classification.yaml).")
@click.option("--report/--no-report", default=True, show_default=True, help="Render the report at the end.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a spec value (both studies).")
@click.option("--max-concurrent", type=click.IntRange(1), default=None, help="At most N trials at once.")
def demo_cmd(storage: str | None, outdir: str, classification: bool, report: bool, overrides: tuple[str, ...],
             max_concurrent: int | None) -> None:
    """Run the demo end to end on the synthetic tiny world: world, pretraining, the detection
    grid (experiments/demo.yaml), the classification slice, results tables and the report."""
    from capgate.grid.demo import run_demo

    result = run_demo(storage=storage, outdir=outdir, classification=classification, report=report,
                      overrides=overrides, max_concurrent=max_concurrent)
    click.echo(result.summary())



def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``capgate`` console script and ``python -m capgate``."""
    try:
        rv = cli.main(args=argv, prog_name="capgate", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if exc.exit_code == 2 else exc.exit_code)
    except CapgateError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(exc.exit_code)
    # A command may return an int exit code (``check`` returns 1 on a regression).
    sys.exit(rv if isinstance(rv, int) else 0)
