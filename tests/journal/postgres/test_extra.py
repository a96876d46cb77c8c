"""Without psycopg, a postgresql:// journal is one clear MissingExtra, and nothing else
changes (SQLite journals open as before). Needs no server."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
sys.modules["psycopg"] = None  # as if the extra were not installed
from remit.errors import MissingExtra
from remit.journal import open_journal
open_journal(":memory:").close()
try:
    open_journal("postgresql://nobody@127.0.0.1:1/none")
except MissingExtra as e:
    print(e.code, e.message)
"""


def test_a_postgresql_url_without_psycopg_says_what_to_install() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=60, check=True)  # fmt: skip
    assert done.stdout.startswith("MISSING_EXTRA"), done.stdout + done.stderr
    assert "pip install 'remit[postgres]'" in done.stdout
