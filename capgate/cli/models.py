"""``capgate models``: the capacity ladder or the standard models as a table or JSON, and
``capgate models check-weights`` (a weights file's load report and top-5 ImageNet classes).

Thin click commands over :mod:`capgate.models` (imported lazily: torch loads only when a command
runs); registered in :mod:`capgate.cli` with one line.
"""

from __future__ import annotations

import json

import click

from capgate.models.ladder import family_names, standard_names

__all__ = ["models_cmd"]

_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
_EXIT_CODES = "Exit codes: 0 success, 1 failure, 2 unusable input."


@click.group("models", context_settings=_SETTINGS, epilog=_EXIT_CODES, invoke_without_command=True)
@click.option("--standard", is_flag=True,
              help="List the standard full-size models (own heads, 1000 classes) instead of the ladder.")
@click.option("--family", type=click.Choice(family_names()), default=None,
              help="Only this family's rungs (default: every registered family).")
@click.option("--resolution", type=click.IntRange(32, 4096), default=None,
              help="Input size in pixels for MACs and latency.  [default: 128; 224 with --standard]")
@click.option("--task", type=click.Choice(["detection", "classification"]), default="detection",
              show_default=True, help="Profile the FCOS detector or the classifier (ladder only).")
@click.option("--num-classes", type=click.IntRange(1), default=None,
              help="Classes of the head (default: 1 for detection, 10 for classification, 1000 with --standard).")
@click.option("--latency/--no-latency", default=True, show_default=True,
              help="Measure CPU latency (batch 1, 1 thread, median of 10 after 3 warm-ups).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object per rung) instead of a table.")
@click.pass_context
def models_cmd(ctx: click.Context, standard: bool, family: str | None, resolution: int | None, task: str,
               num_classes: int | None, latency: bool, as_json: bool) -> None:
    """Print the capacity ladder (or --standard models): exact parameters, FP32 bytes, MACs, latency.

    MACs = FLOPs / 2 of one image at --resolution, counted by torch's FlopCounterMode: convolutions
    and matrix products only (the convention is printed with every table). --json adds each
    rung's family rule (scaling) and upstream builder call (builder), or each standard model's
    constructor.
    """
    if ctx.invoked_subcommand is not None:
        return
    from capgate.cli.support import _say_models_start
    from capgate.models.table import format_ladder_table, ladder_table, standard_table

    if standard:
        if family is not None or task != "detection":
            raise click.UsageError("--standard lists classifiers with their own heads; drop --family and --task")
        rows = standard_table(resolution=resolution or 224, num_classes=num_classes or 1000, latency=latency)
    else:
        _say_models_start(family, task, resolution or 128, latency)
        rows = ladder_table(family, task=task, resolution=resolution or 128, num_classes=num_classes,
                            latency=latency)
    click.echo(json.dumps(rows, indent=2) if as_json else format_ladder_table(rows))


@models_cmd.command("check-weights", context_settings=_SETTINGS, epilog=_EXIT_CODES)
@click.argument("model", type=click.Choice(standard_names()), metavar="MODEL")
@click.argument("file", type=click.Path(dir_okay=False, path_type=str))
@click.option("--image", "images", multiple=True, type=click.Path(dir_okay=False, path_type=str),
              help="A photograph to classify (repeatable): its top-5 ImageNet class indices are printed.")
@click.option("--match", type=click.Choice(["auto", "name", "structure"]), default="auto", show_default=True,
              help="How file tensors find the model's: by name, by structure (order and shape), or names then "
                   "structure.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def check_weights_cmd(model: str, file: str, images: tuple[str, ...], match: str, as_json: bool) -> None:
    """Load a weights FILE into the standard MODEL (1000 classes) and classify photographs.

    Prints the load report (the rule that matched: name or structure; tensors loaded, skipped,
    missing) and each image's five most probable ImageNet class indices. MODEL is one of the
    standard models (capgate models --standard).
    """
    from capgate.models.weights_check import check_weights

    out = check_weights(model, file, images, match=match)
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    load = out["load"]
    click.echo(f"{out['model']} <- {out['file']} (sha256 {out['sha256'][:16]})")
    click.echo(f"rule: {load['rule_detail']}")
    click.echo(f"loaded {load['loaded']}/{load['total']}, skipped {len(load['skipped'])}, missing "
               f"{len(load['missing'])}, mismatched {len(load['mismatched'])}, reinitialized "
               f"{len(load['reinitialized'])}")
    for what in ("skipped", "missing", "reinitialized"):
        if load[what]:
            click.echo(f"  {what}: {', '.join(load[what][:8])}{' ...' if len(load[what]) > 8 else ''}")
    if not out["head_loaded"]:
        click.echo("warning: the file has no ImageNet head for this model; the top-5 below are meaningless")
    for row in out["images"]:
        click.echo(f"{row['path']}: top5 {' '.join(str(i) for i in row['top5'])}")
