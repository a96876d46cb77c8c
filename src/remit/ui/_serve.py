"""Serving the web view: where it binds, who may see it, and the server loop.

No authentication is needed on the loopback interface only: anyone who can reach
127.0.0.1 is already on the machine as a user. Any other address needs ``--token``,
and every request then has to carry it (``_app.TokenGuard``).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Final

from remit.errors import InvalidInput, MissingExtra

MISSING: Final = "the web view needs Starlette and uvicorn: pip install 'remit[ui]'"


def require_ui() -> None:
    """Raise :class:`~remit.errors.MissingExtra` unless the server can be imported."""
    try:
        import starlette  # noqa: F401  # pyright: ignore[reportUnusedImport]
        import uvicorn  # noqa: F401  # pyright: ignore[reportUnusedImport]
    except ImportError:
        raise MissingExtra(MISSING) from None


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine's loopback interface only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port`` (0: a free port the OS picks)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise InvalidInput(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.listen(128)
    return sock


def serve(
    journal: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    token: str | None = None,
    ready: Callable[[str], None] | None = None,
) -> None:
    """Serve the web view of ``journal`` until interrupted; ``ready(url)`` once it listens.

    Refuses (``INVALID_INPUT``) a host other than loopback without a token.
    """
    require_ui()
    if not is_loopback(host) and not token:
        raise InvalidInput(
            f"--host {host} is not a loopback address: the view has no accounts, so it "
            "serves other machines only with --token SECRET (every request must carry it)"
        )
    import uvicorn

    from remit.ui._app import create_app

    app = create_app(journal, token=token)
    sock = bind(host, port)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{sock.getsockname()[1]}/" + (f"?token={token}" if token else "")
    config = uvicorn.Config(app, log_level="warning", access_log=False,
                            timeout_graceful_shutdown=1, lifespan="on")  # fmt: skip
    server = uvicorn.Server(config)
    if ready is not None:
        ready(url)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
