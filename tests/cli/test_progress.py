"""``remit run`` and ``remit resume`` show live progress on a terminal (tasks done,
running, waiting, spend against the root budget, elapsed), and nothing with ``--quiet``
or when stderr is not a terminal. The terminal is a real pseudo-terminal (``pty``)."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from remit.journal import SQLiteJournal
from tests.ui.ui_agent import remit

UI_TESTS = Path(__file__).parent.parent / "ui"
SRC = Path(__file__).parent.parent.parent / "src"
#: rich's styles, cursor moves and line clearing
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _command(tmp_path: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "remit.cli", *args, "--journal", str(tmp_path / "j.db")]


def _run_args(tmp_path: Path, inputs: dict[str, object]) -> list[str]:
    remit_file = tmp_path / "remit.toml"
    remit_file.write_text(remit().to_toml())
    return ["run", "a tree", "--agent", "ui_agent:AGENT", "--remit", str(remit_file),
            "--run-id", "p", "--inputs", json.dumps(inputs)]  # fmt: skip


def _env() -> dict[str, str]:
    path = os.pathsep.join([str(SRC), str(UI_TESTS)])
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "CI", "TERM")}
    return {**env, "PYTHONPATH": path, "TERM": "xterm-256color", "COLUMNS": "140"}


def _in_a_terminal(cmd: list[str], timeout: float = 60) -> tuple[int, str]:
    """Run ``cmd`` with stdout and stderr on a pseudo-terminal, killed after ``timeout``
    seconds if it has not ended; its exit code and what it wrote."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
                            env=_env(), close_fds=True)  # fmt: skip
    os.close(slave)
    chunks: list[bytes] = []
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # the terminal closed: the process is gone
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
    finally:
        if proc.poll() is None:
            proc.kill()
        code = proc.wait(timeout=30)
        os.close(master)
    return code, _ANSI.sub("", b"".join(chunks).decode(errors="replace"))


def _progress_shown(text: str) -> bool:
    return bool(re.search(r"\d+/\d+ tasks · \d+ running · \d+ waiting", text)) and bool(
        re.search(r"spent \d+/5,000 calls · [\d.]+\s?m?s", text)
    )


def test_run_shows_progress_on_a_terminal_and_nothing_when_quiet_or_piped(
    tmp_path: Path,
) -> None:
    args = _run_args(tmp_path, {"width": 4, "leaves": 10, "ask": False})
    code, text = _in_a_terminal(_command(tmp_path, *args))
    assert code == 0, text
    assert _progress_shown(text), text
    code, text = _in_a_terminal(_command(tmp_path, *args[:-4], "--run-id", "q", "--quiet",
                                         "--inputs", args[-1]))  # fmt: skip
    assert code == 0 and not _progress_shown(text) and text.strip() == "q done", text
    piped = subprocess.run(_command(tmp_path, *args[:-4], "--run-id", "r", "--inputs", args[-1]),
                           env=_env(), capture_output=True, text=True, timeout=60)  # fmt: skip
    assert piped.returncode == 0 and not _progress_shown(piped.stderr + piped.stdout)


@pytest.mark.approval
def test_resume_shows_progress_and_who_awaits_a_person(tmp_path: Path) -> None:
    first = subprocess.Popen(
        _command(tmp_path, *_run_args(tmp_path, {"width": 2, "leaves": 3}), "--quiet"),
        env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    journal = tmp_path / "j.db"
    try:
        end = time.monotonic() + 60
        while time.monotonic() < end:
            if journal.exists():
                with SQLiteJournal(journal) as store:
                    if any(s.kind == "approval" for s in store.steps("p")):
                        break
            time.sleep(0.05)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    # resumed on a terminal: it waits for the person, and says so (killed after 4 s)
    code, text = _in_a_terminal(_command(tmp_path, "resume", "p"), timeout=4)
    assert code == -signal.SIGKILL
    assert _progress_shown(text) and "1 await a person" in text, text
    assert "from the journal" in text  # what the killed process finished is replayed
