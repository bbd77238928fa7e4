"""Build hook only (all metadata lives in pyproject.toml): ship the repository's ``templates/``
folder inside the package as ``capgate/templates/``, so an installed wheel renders reports.

Editable installs read ``templates/`` straight from the checkout (``capgate.report.templates_dir``).
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

TEMPLATES = Path(__file__).resolve().parent / "templates"


class BuildPyWithTemplates(build_py):
    """``build_py`` that also copies ``templates/**`` to ``<build_lib>/capgate/templates/``."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        dest = Path(self.build_lib) / "capgate" / "templates"
        for src in sorted(TEMPLATES.rglob("*")):
            if src.is_file() and "__pycache__" not in src.parts:
                out = dest / src.relative_to(TEMPLATES)
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, out)


setup(cmdclass={"build_py": BuildPyWithTemplates})
