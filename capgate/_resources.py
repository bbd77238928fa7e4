"""The folders capgate ships beside its code: ``templates/``, ``experiments/`` and ``analysis/``.

In the repository they are top-level folders (the project's layout); the wheel ships them as the
packages ``capgate._templates``, ``capgate._experiments`` and ``capgate._analysis`` through
setuptools' ``package-dir`` mapping (see ``pyproject.toml``). :func:`shipped` returns the
checkout's folder when capgate runs from a source tree, else the installed package's.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from capgate.errors import CapgateError

__all__ = ["SHIPPED", "shipped"]

#: folder name in the repository -> package name inside the wheel
SHIPPED = {"templates": "capgate._templates", "experiments": "capgate._experiments",
           "analysis": "capgate._analysis"}


def shipped(folder: str) -> Path:
    """The shipped folder ``folder`` (one of :data:`SHIPPED`) as a filesystem path."""
    if folder not in SHIPPED:
        raise ValueError(f"unknown shipped folder {folder!r}; valid: {', '.join(SHIPPED)}")
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / folder).is_dir():
        return checkout / folder
    # The shipped folders hold no __init__.py: they are namespace packages, found by the import
    # system like any other (the wheel's, or an editable install's mapping to the checkout).
    try:
        spec = importlib.util.find_spec(SHIPPED[folder])
    except ModuleNotFoundError:
        spec = None
    for location in (spec.submodule_search_locations or []) if spec else []:
        if Path(location).is_dir():
            return Path(location)
    raise CapgateError(f"capgate's {folder}/ folder is not installed (package {SHIPPED[folder]}); "
                       f"reinstall capgate from its wheel, or run pip install -e . in the checkout")
