"""The web view's server: a Starlette app over one journal (JSON API, live updates by
server-sent events, a person's answers to approvals, the static page).

Routes:

- ``GET /`` the page; ``/static/...`` its script and style (shipped in the package);
- ``GET /api/runs`` the runs; ``GET /api/runs/{run}`` a run's snapshot (rows of its
  tree, budget, approvals); ``GET /api/runs/{run}/task?id=T`` a task's detail;
  ``GET /api/runs/{run}/search?q=S`` step ids, tools and tasks that match;
- ``GET /api/runs/{run}/events`` server-sent events: a ``snapshot`` first, then a
  ``patch`` (only the rows that changed) whenever the journal changes;
- ``POST /api/runs/{run}/approvals`` ``{"step", "approved", "reason", "by"}``: the
  answer, written by :func:`remit.gate.approvals.answer` as ``remit approve|deny`` does.

Live updates poll, they are not pushed by the run: the run may be another process, a
resumed one, or none. Each run's :meth:`~JournalReader.fingerprint` is read every
``poll`` seconds per watching page; the tree is rebuilt only when it changed, once for
all pages watching (the cache), and each page is sent its own diff.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import os
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from remit.errors import RemitError
from remit.gate import approvals
from remit.journal import open_journal
from remit.ui._reader import JournalReader
from remit.ui._views import detail, diff, snapshot

STATIC: Final = Path(__file__).parent / "static"
#: seconds between looks at a watched run's fingerprint
POLL_S: Final = 0.25
#: ticks a stream lives (about 30 minutes); the browser's EventSource then reconnects,
#: which bounds the loop and frees what a vanished page held
STREAM_TICKS: Final = 7200
#: a comment line every this many idle ticks keeps proxies open and finds a closed page
KEEPALIVE_TICKS: Final = 40
TOKEN_COOKIE: Final = "remit_token"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
                   Awaitable[None]]  # fmt: skip


def _json(data: Any, status: int = 200) -> Response:
    body = json.dumps(data, ensure_ascii=False, default=str, allow_nan=False)
    return Response(body, status, media_type="application/json")


def _error(e: RemitError) -> Response:
    status = {"RUN_NOT_FOUND": 404, "NO_APPROVAL": 404, "ALREADY_ANSWERED": 409}.get(e.code, 400)
    return _json({"code": e.code, "message": e.message}, status)


class Snapshots:
    """Each watched run's latest snapshot, rebuilt only when its fingerprint changes."""

    def __init__(self, reader: JournalReader) -> None:
        self.reader = reader
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}
        self._trees: dict[str, Any] = {}

    def get(self, run_id: str) -> dict[str, Any]:
        """The run's snapshot as of now (the same object while nothing changed)."""
        with self._lock:  # one rebuild at a time, however many pages watch
            fp = self.reader.fingerprint(run_id)
            hit = self._cache.get(run_id)
            if hit is not None and hit[0] == fp:
                return hit[1]
            run, state = self.reader.run(run_id)
            snap = snapshot(run, state, self.reader.steps(run_id))
            self._cache[run_id] = (fp, snap)
            return snap


class TokenGuard:
    """With a token, every request must carry it: the header ``X-Remit-Token``, the
    query ``?token=`` (the URL ``remit ui`` prints) or the cookie the page then gets."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        cookie = SimpleCookie(headers.get("cookie", ""))
        given = (
            headers.get("x-remit-token")
            or (query.get("token") or [""])[0]
            or (cookie[TOKEN_COOKIE].value if TOKEN_COOKIE in cookie else "")
        )
        if not _same(given, self.token):
            await _json({"code": "TOKEN", "message": "a valid token is required"}, 401)(
                scope, receive, send
            )
            return
        await self.app(scope, receive, send)


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def create_app(journal: Path, *, token: str | None = None, poll: float = POLL_S) -> Any:
    """The ASGI app serving ``journal`` (read-only, but for a person's answers)."""
    reader = JournalReader(journal)
    snaps = Snapshots(reader)

    async def page(request: Request) -> Response:
        resp = FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})
        if token is not None:
            resp.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
        return resp

    async def runs(request: Request) -> Response:
        rows = await asyncio.to_thread(reader.runs, 200)
        return _json({
            "journal": str(journal),
            "runs": [
                {"id": r.run_id, "goal": r.goal, "agent": r.agent, "status": r.status,
                 "state": state, "created_at": r.created_at, "updated_at": r.updated_at}
                for r, state in rows
            ],
        })  # fmt: skip

    async def run(request: Request) -> Response:
        try:
            snap = await asyncio.to_thread(snaps.get, request.path_params["run"])
        except RemitError as e:
            return _error(e)
        return _json(snap)

    async def task(request: Request) -> Response:
        run_id, task_id = request.path_params["run"], request.query_params.get("id", "")

        def read() -> dict[str, Any] | None:
            return detail(reader.tree(run_id), task_id, reader.steps(run_id, task_id))

        try:
            view = await asyncio.to_thread(read)
        except RemitError as e:
            return _error(e)
        if view is None:
            return _json({"code": "NO_TASK", "message": f"run {run_id} has no task {task_id}"},
                         404)  # fmt: skip
        return _json(view)

    async def search(request: Request) -> Response:
        run_id, text = request.path_params["run"], request.query_params.get("q", "").strip()
        if not text:
            return _json({"steps": [], "tasks": []})
        try:
            steps = await asyncio.to_thread(reader.search, run_id, text)
            snap = await asyncio.to_thread(snaps.get, run_id)
        except RemitError as e:
            return _error(e)
        low = text.lower()
        tasks = [n["id"] for n in snap["nodes"]
                 if low in n["id"].lower() or low in str(n["key"]).lower()
                 or low in n["goal"].lower()][:50]  # fmt: skip
        return _json({"steps": steps, "tasks": tasks})

    async def events(request: Request) -> Response:
        run_id = request.path_params["run"]
        try:
            first = await asyncio.to_thread(snaps.get, run_id)
        except RemitError as e:
            return _error(e)

        async def stream() -> AsyncIterator[str]:
            last = first
            yield _event("snapshot", first)
            idle = 0
            for _ in range(STREAM_TICKS):
                await asyncio.sleep(poll)
                if await request.is_disconnected():
                    return
                snap = await asyncio.to_thread(snaps.get, run_id)
                change = None if snap is last else diff(last, snap)
                last = snap
                if change is not None:
                    idle = 0
                    yield _event("patch", change)
                else:
                    idle += 1
                    if idle % KEEPALIVE_TICKS == 0:
                        yield ": idle\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store"})  # fmt: skip

    async def answer(request: Request) -> Response:
        if not _same_origin(request):
            return _json({"code": "ORIGIN", "message": "answers come from this page only"}, 403)
        if request.headers.get("content-type", "").split(";")[0] != "application/json":
            return _json({"code": "INVALID_INPUT", "message": "send JSON"}, 415)
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("step"), str):
            hint = 'send {"step": ..., "approved": true|false, "reason": ...}'
            return _json({"code": "INVALID_INPUT", "message": hint}, 400)
        run_id: str = request.path_params["run"]
        step: str = body["step"]
        approved = body.get("approved") is True
        reason = str(body.get("reason") or "")[:2000]
        by = str(body.get("by") or os.environ.get("USER", "") or "someone")[:200] + " (web)"

        def write() -> dict[str, Any]:
            # a store of its own: the same write `remit approve|deny` makes
            store = open_journal(journal)
            try:
                rec = approvals.answer(store, run_id, step, approved=approved, by=by,
                                       reason=reason)  # fmt: skip
            finally:
                store.close()
            return {"approval": rec.step_id, "approved": approved, "by": by, "reason": reason}

        try:
            return _json(await asyncio.to_thread(write))
        except RemitError as e:
            return _error(e)

    routes = [
        Route("/", page),
        Route("/api/runs", runs),
        Route("/api/runs/{run}", run),
        Route("/api/runs/{run}/task", task),
        Route("/api/runs/{run}/search", search),
        Route("/api/runs/{run}/events", events),
        Route("/api/runs/{run}/approvals", answer, methods=["POST"]),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> AsyncGenerator[None]:
        yield
        reader.close()

    app: Any = Starlette(routes=routes, lifespan=lifespan)
    return TokenGuard(app, token) if token is not None else app


def _event(name: str, data: Any) -> str:
    text = json.dumps(data, ensure_ascii=False, default=str, allow_nan=False)
    return f"event: {name}\ndata: {text}\n\n"


def _same_origin(request: Request) -> bool:
    """A browser names the page a request comes from: another site may not answer (a
    form or script on any page could otherwise post to a port on 127.0.0.1)."""
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not a browser's cross-site request (curl, tests)
    return urlsplit(origin).netloc == request.headers.get("host", "")
