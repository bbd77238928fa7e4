"""capgate's command line: thin click commands, each parsing its options, calling one library
function and printing. Library errors (``CapgateError``) become ``Error: ...`` on stderr and
the error's exit code, in one place (:func:`main`).

Exit codes: 0 success; 1 failure (failed trials, a regression found by ``check``, a crash);
2 unusable input (a malformed spec, dataset, checkpoint, plan or results file, or bad options);
130 interrupted (Ctrl-C; rerunning the same command resumes).
"""

from __future__ import annotations

import logging
import sys

import click

from capgate import __version__
from capgate.errors import CapgateError
from capgate.cli.support import CONTEXT_SETTINGS, EXIT_CODES_HELP, INTERRUPT_HELP, _dry_run
from capgate.data.registry import format_names
from capgate.models.ladder import family_names
from capgate.cli.models import models_cmd


def _configure_logging(verbosity: int) -> None:
    level = {-1: logging.WARNING, 0: logging.INFO, 1: logging.DEBUG}[max(-1, min(1, verbosity))]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)
    if sys.stderr.isatty():  # progress of stages and trials as one live status line (plain lines elsewhere)
        from capgate.grid.live import use_live_status

        use_live_status(sys.stderr)


def _add_verbosity(ctx: click.Context, param: click.Parameter, value: int) -> None:
    """-v/-q given after a subcommand: add to the verbosity the group already set."""
    if value:
        meta = ctx.find_root().meta
        meta["capgate.verbosity"] = meta.get("capgate.verbosity", 0) + (value if param.name == "verbose" else -value)
        _configure_logging(meta["capgate.verbosity"])


def _verbosity_params() -> list[click.Option]:
    return [click.Option(["-v", "--verbose"], count=True, expose_value=False, callback=_add_verbosity,
                         help="More log output (debug)."),
            click.Option(["-q", "--quiet"], count=True, expose_value=False, callback=_add_verbosity,
                         help="Less log output (warnings only).")]


class _Group(click.Group):
    """A group whose command list shows each command's whole first sentence (wrapped, never cut)."""

    group_class = type  # subgroups (``capgate data``) list their commands the same way

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, cmd.get_short_help_str(limit=10_000)) for name, cmd in
                ((n, self.get_command(ctx, n)) for n in self.list_commands(ctx)) if cmd is not None and not cmd.hidden]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=_Group, context_settings=CONTEXT_SETTINGS, epilog=EXIT_CODES_HELP + INTERRUPT_HELP)
@click.version_option(__version__, "-V", "--version", prog_name="capgate")
@click.option("-v", "--verbose", count=True, help="More log output (debug); also accepted after a command.")
@click.option("-q", "--quiet", count=True, help="Less log output (warnings only); also after a command.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: int) -> None:
    """capgate: is pretrained initialization worth it for a tiny ConvNet?

    Shell completion: eval "$(_CAPGATE_COMPLETE=bash_source capgate)" (zsh_source, fish_source).
    """
    ctx.meta["capgate.verbosity"] = verbose - quiet
    _configure_logging(verbose - quiet)


# Commands are added below by section; each section's library lives in its own package.
# --- data -------------------------------------------------------------------------------
# From the format registry (light: it imports no reader until a format is used).
DATA_VERIFY_FORMATS = format_names(can="verify")


@cli.group(context_settings=CONTEXT_SETTINGS, epilog=EXIT_CODES_HELP)
def data() -> None:
    """The synthetic tiny world, checks of datasets on disk, and their export as COCO JSON."""


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
@click.option("--drop-invalid", is_flag=True,
              help="Drop invalid (zero-area, outside) boxes as a spec's `drop_invalid: true` does, and list "
                   "the count per annotation file, instead of reporting them as problems.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def data_verify(ctx: click.Context, path: str, fmt: str, all_images: bool, drop_invalid: bool, as_json: bool) -> None:
    """Summarise a dataset (images, boxes per class, image sizes) and list every problem."""
    import json

    from capgate.data.registry import verify_dataset

    report = verify_dataset(path, fmt, None if all_images else 2000, drop_invalid=drop_invalid)
    click.echo(json.dumps(report.to_dict(), indent=1) if as_json else "\n".join(report.lines()))
    if not report.ok:
        ctx.exit(2)


DATA_EXPORT_FORMATS = format_names(can="export")


@data.command("export", context_settings=CONTEXT_SETTINGS, epilog=EXIT_CODES_HELP)
@click.argument("path", type=click.Path(exists=True, file_okay=False))
@click.option("--format", "fmt", type=click.Choice(DATA_EXPORT_FORMATS), required=True, help="On-disk layout.")
@click.option("-o", "--out", "outdir", required=True, type=click.Path(file_okay=False),
              help="Folder for the COCO files (<split>_<modality>.json).")
@click.option("--class-map", default=None, metavar="PRESET|MAP",
              help="Class map as in a spec: a preset (person, person_bike_car) or 'person=person|pedestrian;car=car'.")
@click.option("--drop-invalid", is_flag=True, help="Drop invalid boxes (as `drop_invalid: true` in a spec).")
def data_export(path: str, fmt: str, outdir: str, class_map: str | None, drop_invalid: bool) -> None:
    """Write what capgate trains and evaluates on as COCO JSON: one file per split and modality, with
    exactly the boxes and categories the reader returns (inspect them with any COCO tool)."""
    from capgate.data.registry import export_coco

    for f in export_coco(path, fmt, outdir, class_map=class_map, drop_invalid=drop_invalid):
        click.echo(f"{f.path}  {f.split}/{f.modality}: {f.images} images, {f.boxes} boxes")


# --- models -----------------------------------------------------------------------------

cli.add_command(models_cmd)  # capgate models [--standard], capgate models check-weights


# --- grid -------------------------------------------------------------------------------


@cli.command("run-grid", context_settings=CONTEXT_SETTINGS,
             epilog=EXIT_CODES_HELP + " Exit 1 also when runs failed (they are recorded and listed), 2 when they failed on unusable data."
                    + INTERRUPT_HELP)
@click.argument("spec", type=click.Path(dir_okay=False, path_type=str))
@click.option("--dry-run", is_flag=True,
              help="Print the resolved spec, every stage and run, and how many runs are stored; start nothing.")
@click.option("--json", "as_json", is_flag=True, help="With --dry-run: print the plan as JSON.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a spec value (YAML syntax), e.g. --set recipe.lr=0.01 --set seeds=5. Repeatable.")
@click.option("--storage", default=None, metavar="PATH|URI",
              help="Study storage every node reaches: a local path (NFS), a file:// URI, or an object-store URI "
                   "such as s3://bucket/prefix (endpoint and credentials from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, "
                   "AWS_SECRET_ACCESS_KEY, AWS_REGION) or gs://bucket/prefix [default: ./.capgate].")
@click.option("--address", default=None, help="Join this Ray cluster (default: start one in-process).")
@click.option("--max-concurrent", type=click.IntRange(1), default=None, help="At most N trials at once.")
@click.option("--retries", type=click.IntRange(0), default=2, show_default=True,
              help="Times Ray retries a trial or stage lost to a dead worker or node.")
@click.option("--until-resolved", is_flag=True,
              help="After the spec's seeds, train more seeds only for run groups whose verdicts are open "
                   "(capgate next-seeds), round after round, until done or the limits [default: on when the "
                   "spec has an 'adaptive' section].")
@click.option("--plan", "analysis_plan", type=click.Path(path_type=str), default=None,
              help="With --until-resolved: the analysis plan; it must declare a 'sequential' design "
                   "[default: the spec's adaptive.plan].")
@click.option("--max-seeds", type=click.IntRange(2), default=None,
              help="With --until-resolved: at most N seeds per arm [default: the spec's adaptive.max_seeds, "
                   "else the plan's sequential.max_seeds].")
@click.option("--max-rounds", type=click.IntRange(1), default=None,
              help="With --until-resolved: at most R rounds, the first included [default: the spec's "
                   "adaptive.max_rounds, else 10].")
@click.option("--max-runs", type=click.IntRange(2), default=None,
              help="With --until-resolved: at most N new runs per round, spent where the expected decided "
                   "verdicts per run are highest [default: the spec's adaptive.max_runs, else no limit].")
def run_grid_cmd(spec: str, dry_run: bool, as_json: bool, overrides: tuple[str, ...], storage: str | None,
                 address: str | None, max_concurrent: int | None, retries: int, until_resolved: bool,
                 analysis_plan: str | None, max_seeds: int | None, max_rounds: int | None,
                 max_runs: int | None) -> None:
    """Train every missing run of the study SPEC on Ray Tune.

    SPEC is a study spec (experiments/*.yaml). Pretraining stages run first, then the runs; the
    results table is written as parquet and CSV. Rerunning the same command trains only what is
    missing; Ctrl-C stops (exit 130) and the same command resumes. With --until-resolved, new
    seeds go where verdicts are still open (the same command resumes a killed loop too); a spec
    with an 'adaptive: {plan, max_seeds, max_rounds, max_runs}' section runs that loop without the flag, and
    the flags override its values.
    """
    from capgate.grid import run_grid
    from capgate.grid.adaptive import adaptive_settings
    from capgate.grid.plan import find_spec_file
    from capgate.spec.load import load_study

    if as_json and not dry_run:
        raise click.UsageError("--json needs --dry-run (a grid run prints its summary as text)")
    spec_adaptive = load_study(find_spec_file(spec), overrides).adaptive
    if not until_resolved and spec_adaptive is None and (analysis_plan or max_seeds or max_rounds or max_runs):
        raise click.UsageError("--plan, --max-seeds, --max-rounds and --max-runs need --until-resolved "
                               "(or an 'adaptive' section in the spec)")
    adaptive = adaptive_settings(spec_adaptive, until_resolved, plan=analysis_plan, max_seeds=max_seeds,
                                 max_rounds=max_rounds, max_runs=max_runs)
    if dry_run:
        _dry_run(spec, overrides, storage, as_json, adaptive)
        return
    if adaptive is not None:
        from capgate.grid.adaptive import run_until_resolved

        res = run_until_resolved(spec, overrides, **adaptive, storage=storage, echo=click.echo, address=address,
                                 max_concurrent=max_concurrent, retries=retries)
        click.echo(res.summary())
        return
    result = run_grid(spec, overrides, storage=storage, address=address, max_concurrent=max_concurrent,
                      retries=retries)
    click.echo(result.summary())

# --- report and check: capgate/cli/reporting.py; import: capgate/cli/importing.py ----------
from capgate.cli.importing import import_group  # noqa: E402
from capgate.cli.reporting import check_cmd, next_seeds_cmd, report_cmd  # noqa: E402

for _command in (next_seeds_cmd, report_cmd, check_cmd, import_group):
    cli.add_command(_command)


# --- demo -------------------------------------------------------------------------------


@cli.command("demo", context_settings=CONTEXT_SETTINGS, epilog=EXIT_CODES_HELP + INTERRUPT_HELP)
@click.option("--storage", default=None, metavar="PATH|URI",
              help="Study storage: a path, or an s3:// or gs:// URI [default: ./.capgate].")
@click.option("-o", "--out", "outdir", default="reports/demo", show_default=True,
              type=click.Path(file_okay=False, path_type=str), help="Report folder.")
@click.option("--classification/--no-classification", default=True, show_default=True,
              help="Also run the classification slice (experiments/demo_classification.yaml).")
@click.option("--report/--no-report", default=True, show_default=True, help="Render the report at the end.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a spec value (both studies).")
@click.option("--max-concurrent", type=click.IntRange(1), default=None, help="At most N trials at once.")
@click.option("--budget-min", type=click.FloatRange(0), default=15.0, show_default=True,
              help="Time budget in minutes (0: none): a demo past it stops before its next grid or adaptive "
                   "round (exit 1); the same command resumes. It never skips a step.")
@click.option("--dry-run", is_flag=True, help="List the stages and runs of both demo studies; start nothing.")
def demo_cmd(storage: str | None, outdir: str, classification: bool, report: bool, overrides: tuple[str, ...],
             max_concurrent: int | None, budget_min: float, dry_run: bool) -> None:
    """Run the demo end to end on the synthetic tiny world.

    World, pretraining, the detection grid (experiments/demo.yaml), the classification slice
    (experiments/demo_classification.yaml), then the detection study's adaptive round (more seeds
    only where verdicts are open), the results tables and the report: the same runs on every machine.
    """
    from capgate.grid import Store, resolve_storage
    from capgate.grid.demo import plan_demo, run_demo

    if dry_run:
        from capgate.grid.adaptive import adaptive_settings, describe_settings

        for plan in plan_demo(classification, overrides):
            stored = Store(resolve_storage(storage), plan.study.study).done([r.run_id for r in plan.runs])
            click.echo(plan.describe(len(stored)))
            if plan.study.adaptive is not None:
                click.echo(describe_settings(adaptive_settings(plan.study.adaptive))
                           + f"; the rounds are part of the demo's fixed protocol (past --budget-min {budget_min:g} "
                             "the demo stops, resumable, and skips nothing)")
        return
    result = run_demo(storage=storage, outdir=outdir, classification=classification, report=report,
                      overrides=overrides, max_concurrent=max_concurrent, budget_min=budget_min)
    click.echo(result.summary())


def _walk(group: click.Group) -> list[click.Command]:
    out: list[click.Command] = []
    for cmd in group.commands.values():
        out.append(cmd)
        if isinstance(cmd, click.Group):
            out += _walk(cmd)
    return out


for _cmd in _walk(cli):  # -v/-q accepted after every subcommand too
    if not any(p.name in ("verbose", "quiet") for p in _cmd.params):
        _cmd.params.extend(_verbosity_params())


def _interrupted(exc: KeyboardInterrupt) -> None:
    click.echo(f"Error: {exc}" if str(exc) else "Interrupted.", err=True)
    sys.exit(130)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``capgate`` console script and ``python -m capgate``."""
    try:
        rv = cli.main(args=argv, prog_name="capgate", standalone_mode=False)
    except KeyboardInterrupt as exc:  # Ctrl-C: say how to resume, exit 130 like a shell
        _interrupted(exc)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__context__, KeyboardInterrupt):  # click turns Ctrl-C into Abort
            _interrupted(exc.__context__)
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
