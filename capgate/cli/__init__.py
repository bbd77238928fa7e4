"""The command line: thin click commands over the library (:mod:`capgate.cli.app`) and the helpers
that are more than parsing (:mod:`capgate.cli.support`). ``capgate.cli:main`` is the entry point."""

from __future__ import annotations

from capgate.cli.app import cli, main

__all__ = ["cli", "main"]
