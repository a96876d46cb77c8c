"""What the web view's tests share: a real ``remit ui`` process, a real run process of
the test agent, and Debian's Chromium driven headless by Playwright's Python client.

Playwright's own browser download cannot be reached here, so it is launched with
``executable_path`` set to Debian's binary. Without Chromium or Playwright the browser
tests skip saying what to install, except under CI (``CI=true``), where they fail:
CI installs both (``make test``), so their absence there is a broken set-up.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
SRC = HERE.parent.parent / "src"
INSTALL = (
    "the browser tests need Debian's Chromium and Playwright's Python client: "
    "apt-get install -y chromium && pip install playwright (`make test` installs both "
    "when run as root)"
)


def _env() -> dict[str, str]:
    path = os.pathsep.join([str(SRC), str(HERE), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path}


def _missing(what: str) -> None:
    message = f"{what} is missing; {INSTALL}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium binary (skips, or under CI fails, when it is not installed)."""
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None
    )
    if found is None:
        _missing("chromium")
    assert found is not None
    return found


@pytest.fixture
def browser(chromium_path: str) -> Iterator[Any]:
    """A headless Chromium for one test (``browser.new_page()``). Not shared wider:
    Playwright's sync API holds an event loop on this thread while it runs, and the
    tests after it call ``asyncio.run``."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright Python package")
        raise
    with sync_playwright() as p:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start
        b = p.chromium.launch(executable_path=chromium_path, headless=True,
                              args=["--no-sandbox", "--disable-gpu"])  # fmt: skip
        yield b
        b.close()


class UiServer:
    """``remit ui --journal J`` as a process of its own, on a free port of 127.0.0.1."""

    def __init__(self, journal: Path, log: Path) -> None:
        self.log = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "remit.cli", "ui", "--journal", str(journal)],
            env=_env(), stdout=subprocess.PIPE, stderr=self.log, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # the URL, printed once it listens
        if "http://127.0.0.1:" not in line:
            self.stop()
            raise AssertionError(f"remit ui did not start: {line!r}; see {log}")
        self.url = line[line.index("http://") :].strip()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture
def ui_server(tmp_path: Path) -> Iterator[Callable[[Path], UiServer]]:
    """``ui_server(journal)``: a started ``remit ui``, stopped when the test ends."""
    made: list[UiServer] = []

    def start(journal: Path) -> UiServer:
        made.append(UiServer(journal, tmp_path / f"ui-{len(made)}.log"))
        return made[-1]

    yield start
    for s in made:
        s.stop()


def start_run(tmp_path: Path, journal: Path, run_id: str, inputs: dict[str, Any],
              deadline: str = "10m", *command: str) -> subprocess.Popen[str]:  # fmt: skip
    """``remit run`` of the test agent, as a process of its own (``command``: instead of
    ``run``, e.g. ``resume``)."""
    from tests.ui.ui_agent import remit

    remit_file = tmp_path / "remit.toml"
    remit_file.write_text(remit(deadline).to_toml())
    args = list(command) or [
        "run", "a live tree", "--agent", "ui_agent:AGENT", "--remit", str(remit_file),
        "--run-id", run_id, "--inputs", json.dumps(inputs), "--durability", "normal",
    ]  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "remit.cli", *args, "--journal", str(journal), "--quiet"],
        cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def wait_for(check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Poll ``check`` until it returns something true (bounded); fail naming ``what``."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            got = check()
        except Exception:
            got = None
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
