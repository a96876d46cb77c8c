"""The digest job: a model-driven task tree that reads documents and writes a digest.

``remit run --job digest`` runs :class:`~remit.agents._model.ModelAgent` on the embedded
model (SmolLM2-135M, in-process on the CPU; ``--model URL_OR_PATH`` swaps in any
other) over the top-level files of the workspace, and writes ``out/digest.md``:

- the atomizer estimates the number of tool calls; the planner picks files from the
  directory's listing and plans one step per call (reads, then a write after them);
  the plan is checked and repaired before it is journaled;
- each step runs as a child task whose remit grants exactly its one call;
- each read is summarized in a sentence by the executor and checked by the verifier
  (a quote that must really be in the file); the write step asks the aggregator for an
  overview and writes the report.

The default remit (:func:`digest_remit`) grants ``list_dir`` of the target only,
``read_file`` only for text documents at the top of the target (``*.md``, ``*.txt``,
``*.rst``), and ``write_file`` only inside the report's directory. What a small model
gets wrong — reading ``Makefile``, writing over a listed file — is denied by the Gate,
journaled with its reason, and listed in the report.

>>> digest_goal({"target": "docs", "report": "out/digest.md"})
'Read the documents in docs/ and write a digest to out/digest.md'
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from remit.core.remit import Budget, Remit

__all__ = ["DEFAULT_INPUTS", "DOCUMENTS", "digest_check", "digest_goal", "digest_remit"]

#: what ``remit run --job digest`` works on unless ``--inputs`` says otherwise
DEFAULT_INPUTS: Mapping[str, Any] = {"target": ".", "report": "out/digest.md", "every_file": True}

#: the files the default remit lets a step read: text documents, by extension
DOCUMENTS = r"[^/]+\.(md|txt|rst)"


def _dir(path: str) -> str:
    return posixpath.normpath(path.strip() or ".").rstrip("/") or "."


def digest_goal(inputs: Mapping[str, Any]) -> str:
    """The root goal for ``inputs`` (what the atomizer and the planner read)."""
    target = _dir(str(inputs.get("target", DEFAULT_INPUTS["target"])))
    where = "at the top of this project" if target == "." else f"in {target}/"
    report = inputs.get("report", DEFAULT_INPUTS["report"])
    return f"Read the documents {where} and write a digest to {report}"


def digest_check(inputs: Mapping[str, Any], workspace: str | os.PathLike[str]) -> str | None:
    """Why the job cannot start on ``inputs`` in ``workspace`` (None if it can)."""
    data = {**DEFAULT_INPUTS, **inputs}
    target, report = data.get("target"), data.get("report")
    if not isinstance(target, str) or not target:
        return "inputs.target must be a directory path relative to the workspace"
    if not isinstance(report, str) or not report or report.endswith("/"):
        return "inputs.report must be a file path relative to the workspace"
    if not (Path(workspace) / target).is_dir():
        return (
            f"the digest target {target!r} is not a directory in the workspace "
            f"{str(Path(workspace).resolve())!r}; choose another with "
            '--inputs \'{"target": "DIR"}\' or --workspace'
        )
    return None


def digest_remit(
    inputs: Mapping[str, Any] | None = None,
    *,
    calls: int = 80,
    deadline: str = "5m",
) -> Remit:
    """The job's default remit: list the target, read its top-level documents, write
    only inside the report's directory; 80 calls, 5 minutes, one level of delegation.

    >>> r = digest_remit()
    >>> r.check("read_file", {"path": "README.md"}).allowed, r.check(
    ...     "read_file", {"path": "Makefile"}).allowed
    (True, False)
    """
    data = {**DEFAULT_INPUTS, **(inputs or {})}
    target = _dir(str(data["target"]))
    docs = DOCUMENTS if target == "." else re.escape(target) + "/" + DOCUMENTS
    out = posixpath.dirname(str(data["report"])) or "."
    return Remit(
        tools={
            "list_dir": {"path": {"equals": target}},
            "read_file": {"path": [{"within": target + "/"}, {"matches": docs}]},
            "write_file": {"path": {"within": out.rstrip("/") + "/"}},
        },
        budget=Budget(calls=calls),
        deadline=deadline,
        depth=1,
    )
