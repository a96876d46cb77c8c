"""Runtime: opens the journal, keys and lease, wires the Gate and the engine, runs and resumes."""

from remit.runtime._runtime import Run, Runtime

__all__ = ["Run", "Runtime"]
