"""Every ``capgate`` command the README shows in a ```bash block can work as written.

Many of them train for hours on data this machine does not have, so each is checked for what makes
a command fail at once: the command and every flag exist (click parses it: ``[--x]`` optional parts
included), a ``run-grid`` names every ``${VAR}`` its spec's dataset roots need on the same line (or
an ``export`` before it), and a ``check`` compares against a baseline that holds the study it
reads (a committed baseline's studies, or one written by an ``--update-baseline`` line before it).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import pytest

from capgate.cli import cli
from capgate.spec.load import read_yaml, study_from_dict
from helpers import readme_commands

REPO = Path(__file__).resolve().parents[1]


COMMANDS = readme_commands()


def test_the_readme_commands_are_found() -> None:
    names = [argv[0] for _, argv, _ in COMMANDS]
    assert len(COMMANDS) >= 30 and {"run-grid", "report", "check", "demo", "models", "data"} <= set(names)


def _resolve(argv: list[str]) -> tuple[click.Command, click.Context]:
    """The command ``argv`` names and its parsed context (values unchecked: they may be placeholders)."""
    cmd: click.Command = cli
    ctx, args, name = None, list(argv), "capgate"
    while isinstance(cmd, click.Group):
        if cmd.invoke_without_command and (not args or args[0].startswith("-")):
            break  # a group that runs itself (capgate models [--family ...]): its options are parsed below
        # the group's own settings (help option names): click caches a command's help option per context
        ctx = click.Context(cmd, info_name=name, parent=ctx, **cmd.context_settings)
        sub = cmd.get_command(ctx, args[0])
        if sub is None:
            raise click.UsageError(f"no such command {args[0]!r}")
        cmd, name, args = sub, args[0], args[1:]
    return cmd, cmd.make_context(name, args, parent=ctx, resilient_parsing=True)


@pytest.mark.parametrize(("line", "argv", "env"), COMMANDS, ids=[f"README:{c[0]}" for c in COMMANDS])
def test_each_command_and_flag_exists(line: int, argv: list[str], env: set[str]) -> None:
    try:
        _resolve(argv)
    except click.UsageError as exc:  # an unknown command or flag (values are not checked: placeholders)
        pytest.fail(f"README.md:{line}: capgate {' '.join(argv)}: {exc.format_message()}")


RUN_GRIDS = [c for c in COMMANDS if c[1][0] == "run-grid"]


@pytest.mark.parametrize(("line", "argv", "env"), RUN_GRIDS, ids=[f"README:{c[0]}" for c in RUN_GRIDS])
def test_each_run_grid_sets_the_variables_its_spec_needs(line: int, argv: list[str], env: set[str]) -> None:
    # `classes: from_data` (the study's or a train set's) reads the data at load; any class list plans the same
    # roots without it
    raw = read_yaml(REPO / argv[1])
    for node in (raw, *raw["train_sets"]):
        if node.get("classes") == "from_data":
            node["classes"] = ["any"]
    study = study_from_dict(raw, base_dir=(REPO / argv[1]).parent)
    refs = [d for ts in study.train_sets for d in ts.datasets] + [s.data for s in study.stages if s.data]
    needed = {v for ref in refs for v in re.findall(r"\$\{(\w+)\}", ref.root)}
    assert needed <= env, f"README.md:{line}: capgate {' '.join(argv)} also needs {sorted(needed - env)}"


def _study_of(results: str) -> str:
    path = results.rstrip("/")
    return path.rsplit("/", 2)[-2] if path.endswith((".parquet", ".csv")) else path.rsplit("/", 1)[-1]


def test_each_check_reads_a_baseline_of_its_own_studies() -> None:
    written: dict[str, set[str]] = {}
    checks = [c for c in COMMANDS if c[1][0] == "check"]
    assert len(checks) >= 3
    for line, argv, _ in checks:
        _, ctx = _resolve(argv)
        studies = {_study_of(r) for r in ctx.params["results"]}
        baseline = ctx.params["baseline"]
        if ctx.params.get("update_baseline"):
            written[baseline] = studies
            continue
        if baseline in written:
            held = written[baseline]
        else:
            assert (REPO / baseline).is_file(), f"README.md:{line}: baseline {baseline} is neither committed nor " \
                                                "written by an --update-baseline line before it"
            held = {c["study"] for c in json.loads((REPO / baseline).read_text())["cells"]}
        assert studies <= held, f"README.md:{line}: {baseline} holds {sorted(held)}, not {sorted(studies - held)}"
