"""The web view of runs (``remit ui``): a page that shows a run while it works, reading
the journal alone, so a live run, a finished one and one killed mid-way look alike.

Its server is Starlette under uvicorn, an optional extra (``pip install 'remit[ui]'``):
they are imported on first use, and their absence is one clear error
(:class:`~remit.errors.MissingExtra`). The page is plain HTML, CSS and JavaScript in
``static/``, shipped in the package: no CDN, no build step.

A module per idea: ``_reader`` (read-only queries and the fingerprint live updates
poll), ``_views`` (the JSON the page is sent, and diffs: pure), ``_app`` (routes, the
event stream, answers to approvals), ``_serve`` (binding, the token rule, uvicorn).
"""

from __future__ import annotations

from remit.ui._serve import MISSING, is_loopback, require_ui, serve

__all__ = ["MISSING", "is_loopback", "require_ui", "serve"]
