"""What every command shares: the app, the consoles, one-line errors, the journal option."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Generator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from remit.errors import EffectUncertain, RemitError, RunInterrupted
from remit.journal import JournalStore, is_journal_url, open_journal

app = typer.Typer(
    name="remit",
    help="Run recursive agent work under a remit: narrowing authority, a durable journal, "
    "resume after kill -9.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

out = Console(highlight=False)

err = Console(stderr=True, highlight=False)

DEFAULT_JOURNAL = "remit.db"

# text, not a Path: a Path would fold the // of a postgresql:// URL
JournalOpt = Annotated[
    str,
    typer.Option(
        "--journal", "-j", help="The journal: a SQLite file, or a postgresql://user@host/db URL."
    ),
]


ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="The model: 'local' (the embedded one, the default), a .gguf file, or an "
        "OpenAI-compatible URL http://host:port/v1#model-name.",
        show_default=False,
    ),
]


def die(message: str, code: int = 2) -> NoReturn:
    err.print(Text(f"remit: error: {message}", style="red"), soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def user_errors() -> Generator[None]:
    """Bad input of any kind ends as one line on stderr and exit code 2."""
    try:
        yield
    except EffectUncertain as e:
        die(f"[{e.code}] {e.message}", 3)
    except RemitError as e:
        die(f"[{e.code}] {e.message}")
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        die(f"[OS_ERROR] {where}{e.strerror or e}")


def interrupted(e: KeyboardInterrupt, resume: str) -> NoReturn:
    """A run stopped by a signal: say how to carry it on; 130 (SIGINT) or 143 (SIGTERM)."""
    code = 143 if isinstance(e, RunInterrupted) and e.signal_name == "SIGTERM" else 130
    why = f" on {e.signal_name}" if isinstance(e, RunInterrupted) and e.signal_name else ""
    die(f"interrupted{why}; finished steps are in the journal: {resume}", code)


def open_existing(journal: str) -> JournalStore:
    if not is_journal_url(journal) and not Path(journal).exists():
        die(f"[JOURNAL] no journal at {journal}; pass --journal PATH (runs create one)")
    return open_journal(journal)


T = TypeVar("T")


def read_view(journal: str, make: Callable[[JournalStore], T]) -> T:
    """``make(store)`` on ``journal``, opened for it and closed after; a missing journal
    or a failure is one line naming it (``user_errors``)."""
    with user_errors():
        store = open_existing(journal)
        try:
            return make(store)
        finally:
            store.close()


def write_json(view: Any) -> None:
    """A view as ``--json`` prints it: plain, since rich would wrap long strings at the
    terminal's width."""
    sys.stdout.write(json.dumps(view, indent=2, ensure_ascii=False) + "\n")


def show_hint(run_id: str, journal: str) -> str:
    flag = "" if journal == DEFAULT_JOURNAL else f" --journal {journal}"
    return f"remit show {run_id}{flag}"


def importable_cwd() -> None:
    # `--agent mymodule:Agent` should find mymodule.py in the current directory, as
    # `python -m` would
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)


def approval_hint(run_id: str, journal: str) -> Callable[[str, Any], None]:

    def hint(step_id: str, node: Any) -> None:
        approval_wait(run_id, step_id, journal, f"task {node.id}")

    return hint


def approval_wait(run_id: str, step_id: str, journal: str, who: str) -> None:
    """Tell the person on stderr that ``who`` waits for an answer, and how to give it."""
    flag = "" if journal == DEFAULT_JOURNAL else f" --journal {journal}"
    step = step_id.removesuffix("~approval")
    err.print(
        f"waiting for a person: {who} asks to make call {step}\n"
        f"  remit approve {run_id} {step}{flag}   |   remit deny {run_id} {step}{flag}",
        soft_wrap=True,
    )
