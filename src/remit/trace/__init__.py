"""Views over the journal: the task tree of a run (``remit show``).

>>> from remit.trace import load, render      # doctest: +SKIP
>>> tree = load(runtime.store, run.id)         # doctest: +SKIP
>>> tree.root.status, tree.counts()            # doctest: +SKIP
"""

from remit.trace.tree import DeniedCall, RunTree, TaskView, build, load, render

__all__ = ["DeniedCall", "RunTree", "TaskView", "build", "load", "render"]
