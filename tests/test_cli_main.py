"""The CLI's entry point: version, verbosity flags and the exit-code contract of capgate.cli.main."""

from __future__ import annotations

import logging

import click
import click.testing
import pytest

from capgate import __version__
from capgate.cli import cli
from capgate.errors import CapgateError, InputError
from helpers import run_main



def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"capgate, version {__version__}"


def test_help_short_and_long(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(["-h"]) == 0
    short = capsys.readouterr().out
    assert run_main(["--help"]) == 0
    assert capsys.readouterr().out == short
    assert "Exit codes: 0 success, 1 failure, 2 unusable input." in short


def test_unknown_command_is_unusable_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(["no-such-command"]) == 2
    assert "No such command 'no-such-command'" in capsys.readouterr().err


@pytest.mark.parametrize(("error", "code"), [(CapgateError("boom"), 1), (InputError("bad spec x.yaml"), 2)])
def test_library_errors_become_messages_and_exit_codes(
    error: CapgateError, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    @cli.command("_raise-for-test", hidden=True)
    def _raise() -> None:
        raise error

    try:
        assert run_main(["_raise-for-test"]) == code
        assert capsys.readouterr().err == f"Error: {error}\n"
    finally:
        cli.commands.pop("_raise-for-test")


def test_verbosity_flags_set_the_log_level() -> None:
    @cli.command("_level-for-test", hidden=True)
    def _level() -> None:
        click.echo(logging.getLevelName(logging.getLogger().level))

    try:
        for flags, level in ([], "INFO"), (["-v"], "DEBUG"), (["-q"], "WARNING"), (["-v", "-q"], "INFO"):
            runner = click.testing.CliRunner()
            result = runner.invoke(cli, [*flags, "_level-for-test"])
            assert result.exit_code == 0, result.output
            assert result.output.strip() == level
    finally:
        cli.commands.pop("_level-for-test")
