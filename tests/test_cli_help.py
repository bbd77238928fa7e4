"""Meta-test: every command and group of ``capgate`` (including ones added later) answers -h and
--help with exit code 0 and a usage line; hidden test-only commands are skipped."""

from __future__ import annotations

import click
import click.testing
import pytest

from capgate.cli import cli


def walk(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path under ``group``, the group itself first."""
    out = [path]
    for name, cmd in sorted(group.commands.items()):
        if cmd.hidden:
            continue
        if isinstance(cmd, click.Group):
            out += walk(cmd, (*path, name))
        else:
            out.append((*path, name))
    return out


COMMANDS = walk(cli)


def test_the_walk_finds_the_report_and_check_commands() -> None:
    assert ("report",) in COMMANDS and ("check",) in COMMANDS and () in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "capgate")
@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_every_command_has_help(path: tuple[str, ...], flag: str) -> None:
    result = click.testing.CliRunner().invoke(cli, [*path, flag], prog_name="capgate")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(" ".join(("Usage: capgate", *path)) + " ")
    assert "-h, --help" in result.output
