"""Every hint in the library's messages names something that exists.

The messages are every string constant of every module of ``capgate`` except docstrings (error
texts are often assembled away from their ``raise``: a ProblemLog entry, a list of hints). A command named in backticks (`capgate run-grid SPEC`) must be
a command of the click CLI, and each ``--flag`` in those backticks an option of that command; any
other ``--flag`` a message mentions must be an option of some command; a ``*.md`` file it points to
must exist in the repository.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import click
import pytest

from capgate.cli import cli

REPO = Path(__file__).resolve().parents[1]


def messages() -> list[tuple[str, int, str]]:
    """``(file, line, text)`` of every string constant that is not a docstring."""
    out = []
    for path in sorted((REPO / "capgate").rglob("*.py")):
        tree = ast.parse(path.read_text())
        docstrings = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
                first = node.body[0]
                if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                    docstrings.add(id(first.value))
        for n in ast.walk(tree):
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings:
                out.append((str(path.relative_to(REPO)), n.lineno, n.value))
    return out


#: Flags another branch adds (the real-data work adds ``data verify --drop-invalid``); the lead
#: removes an entry when that branch is merged, and a stale entry fails the test below.
KNOWN_MISSING_FLAGS: set[str] = set()


def commands(group: click.Group = cli, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], set[str]]:
    """Command path -> its option names (``--x`` and ``--no-x`` spellings)."""
    out: dict[tuple[str, ...], set[str]] = {}
    for name, cmd in group.commands.items():
        opts = {o for p in cmd.params if isinstance(p, click.Option) for o in (*p.opts, *p.secondary_opts)}
        out[(*path, name)] = opts | {"--help", "-h"}
        if isinstance(cmd, click.Group):
            out.update(commands(cmd, (*path, name)))
    return out


COMMANDS = commands()
ALL_FLAGS = set().union(*COMMANDS.values()) | {o for p in cli.params for o in getattr(p, "opts", [])}
MESSAGES = messages()


def test_messages_are_found() -> None:
    assert len(MESSAGES) > 100
    assert any("`capgate demo`" in text for _, _, text in MESSAGES)


@pytest.mark.parametrize(("where", "line", "text"), [m for m in MESSAGES if "`capgate " in m[2]],
                         ids=lambda x: str(x)[:40])
def test_backticked_commands_and_their_flags_exist(where: str, line: int, text: str) -> None:
    for quoted in re.findall(r"`(capgate [^`]*)`", text):
        words = quoted.split()[1:]
        path: tuple[str, ...] = ()
        while words and (*path, words[0]) in COMMANDS:
            path = (*path, words.pop(0))
        assert path, f"{where}:{line} names `{quoted}`, but capgate has no such command"
        for flag in re.findall(r"(?<![\w-])--?[a-zA-Z][\w-]*", " ".join(words)):
            assert flag in COMMANDS[path], f"{where}:{line}: `{quoted}`: {' '.join(path)} has no option {flag}"


@pytest.mark.parametrize(("where", "line", "text"), [m for m in MESSAGES if re.search(r"(?<![\w-])--[a-z]", m[2])],
                         ids=lambda x: str(x)[:40])
def test_every_flag_a_message_mentions_exists(where: str, line: int, text: str) -> None:
    for flag in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text):
        assert flag in ALL_FLAGS | KNOWN_MISSING_FLAGS, f"{where}:{line} mentions {flag}, which no capgate command has"


def test_known_missing_flags_are_still_missing() -> None:
    mentioned = {f for _, _, t in MESSAGES for f in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", t)}
    for flag in KNOWN_MISSING_FLAGS:
        assert flag in mentioned and flag not in ALL_FLAGS, f"remove {flag} from KNOWN_MISSING_FLAGS"


@pytest.mark.parametrize(("where", "line", "text"), [m for m in MESSAGES if ".md" in m[2]], ids=lambda x: str(x)[:40])
def test_documents_a_message_points_to_exist(where: str, line: int, text: str) -> None:
    for doc in re.findall(r"[\w./-]+\.md\b", text):
        assert (REPO / doc).is_file(), f"{where}:{line} points to {doc}, which is not in the repository"


def test_no_bare_command_hints() -> None:
    """A message that tells the user to run capgate spells the command in backticks (so the
    tests above check it)."""
    bare = [(w, n, t) for w, n, t in MESSAGES
            if re.search(r"\b(?:run|rerun|use|try|see)\s+capgate\s+[a-z]", t)]
    assert not bare, bare
