"""The public API of ``capgate`` resolves every name it lists, lazily."""

from __future__ import annotations

import subprocess
import sys

import capgate


def test_every_public_name_resolves() -> None:
    for name in capgate.__all__:
        assert getattr(capgate, name) is not None, name


def test_import_capgate_loads_neither_torch_nor_ray() -> None:
    code = "import sys, capgate; capgate.analyze; print('torch' in sys.modules, 'ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False False"
