"""The layer rules bite: `lint-imports` (run by `make lint`) refuses an import that runs
back up a layer, and an I/O library imported by a pure layer.

Each case lints a copy of the package with one import added, against the contracts in
pyproject.toml; the unchanged copy is linted too, so a failure is the added import's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint(tmp_path: Path, file: str = "", line: str = "") -> subprocess.CompletedProcess[str]:
    """Lint a copy of ``src/remit`` with ``line`` appended to ``file`` (relative to it)."""
    src = tmp_path / "src"
    shutil.copytree(
        ROOT / "src" / "remit", src / "remit", ignore=shutil.ignore_patterns("__pycache__")
    )
    if file:
        path = src / "remit" / file
        path.write_text(path.read_text() + f"\n{line}  # noqa\n")
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", str(ROOT / "pyproject.toml")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(autouse=True)
def _needs_lint_imports() -> None:
    if not LINT_IMPORTS.exists():
        pytest.fail(f"{LINT_IMPORTS} is missing: install the dev extras", pytrace=False)


def test_the_package_as_it_is_keeps_every_contract(tmp_path: Path) -> None:
    done = lint(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("file", "line", "refusal"),
    [
        (
            "journal/__init__.py",
            "from remit.engine import Engine",
            "remit.journal is not allowed to import remit.engine",
        ),
        ("core/__init__.py", "import remit.gate", "remit.core is not allowed to import remit.gate"),
        ("core/__init__.py", "import sqlite3", "remit.core is not allowed to import sqlite3"),
        ("models/scripted.py", "import remit.trust", "remit.models is not allowed to import"),
        (
            "engine/__init__.py",
            "import remit.journal.sqlite",
            "remit.engine is not allowed to import remit.journal",
        ),
        (
            "tools/__init__.py",
            "import remit.policy",
            "remit.tools is not allowed to import remit.policy",
        ),
    ],
)
def test_an_import_against_the_layers_is_refused(
    tmp_path: Path, file: str, line: str, refusal: str
) -> None:
    done = lint(tmp_path, file, line)
    assert done.returncode != 0
    assert refusal in done.stdout.replace("\n", " "), done.stdout
