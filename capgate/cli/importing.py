"""``capgate import``: results of runs tracked elsewhere (an MLflow server, a W&B export) written as a
results table that ``capgate report`` and ``capgate check`` read as they read capgate's own."""

from __future__ import annotations

import click

from capgate.cli.results import MAP_HELP, SHIFT_LABELS_HELP
from capgate.cli.support import CONTEXT_SETTINGS, EXIT_CODES_HELP

__all__ = ["import_group"]


def _common(f):
    f = click.option("--study", default=None, help="Study name of every row when the runs name none "
                                                    "[default: the experiment, project or file name].")(f)
    f = click.option("--shift-labels", "shift_labels", multiple=True, metavar="LABEL[,LABEL]",
                     help=SHIFT_LABELS_HELP)(f)
    f = click.option("--map", "mapping", multiple=True, metavar="COLUMN=SOURCE", help=MAP_HELP)(f)
    return click.option("-o", "--out", required=True, type=click.Path(dir_okay=False, path_type=str),
                        help="Results table to write: *.parquet or *.csv.")(f)


def _finish(raw, mapping: tuple[str, ...], shift_labels: tuple[str, ...], source: str, study: str, out: str) -> None:
    from capgate.analysis.columns import check_shift_labels, parse_mapping
    from capgate.importers import to_results, write_results

    mapped = to_results(raw, parse_mapping(mapping), source=source, study=study,
                        shift_labels=check_shift_labels(shift_labels))
    for note in mapped.notes:
        click.echo(f"{source}: {note}", err=True)
    t = mapped.table
    write_results(t, out)
    click.echo(f"{len(t)} rows ({t['run_id'].nunique()} runs x {t['eval_set'].nunique()} eval sets, "
               f"{int((t['status'] == 'ok').sum())} ok) written to {out}")


@click.group("import", context_settings=CONTEXT_SETTINGS, epilog=EXIT_CODES_HELP)
def import_group() -> None:
    """Results of runs tracked elsewhere (MLflow, W&B) as a results table for report and check."""


@import_group.command("mlflow", context_settings=CONTEXT_SETTINGS, epilog=EXIT_CODES_HELP)
@click.argument("uri")
@click.option("--experiment", required=True, help="The MLflow experiment whose runs are read.")
@_common
def import_mlflow_cmd(uri: str, experiment: str, out: str, mapping: tuple[str, ...], shift_labels: tuple[str, ...],
                      study: str | None) -> None:
    """Read every run of an MLflow experiment from the tracking server at URI (http://host:port).

    Params are the run's design (backbone, params, init, train_set, seed, ...); metrics named
    <eval set>/<metric> become one row per eval set; FINISHED runs are ok, FAILED failed, others left out."""
    from capgate.importers.mlflow import read_mlflow_runs

    _finish(read_mlflow_runs(uri, experiment), mapping, shift_labels, f"{uri} ({experiment})", study or experiment,
            out)


@import_group.command("wandb", context_settings=CONTEXT_SETTINGS, epilog=EXIT_CODES_HELP)
@click.argument("export", type=click.Path(dir_okay=False, path_type=str))
@_common
def import_wandb_cmd(export: str, out: str, mapping: tuple[str, ...], shift_labels: tuple[str, ...],
                     study: str | None) -> None:
    """Read a W&B runs export: the runs table's CSV, or api.runs() dumped to JSON or CSV
    ({id, name, state, config, summary} per run)."""
    from capgate.analysis.columns import parse_mapping
    from capgate.analysis.load import table_name
    from capgate.importers.wandb import read_wandb_export

    _finish(read_wandb_export(export, parse_mapping(mapping)), mapping, shift_labels, export,
            study or table_name(export), out)
