"""Where a run's tasks work: in the driver's process (the default), or on a Ray cluster.

The engine keeps the tree in the driver; an executor runs each task's phases (atomize,
then execute or plan; aggregate). :class:`RayExecutor` hands them to Ray actors, each
with a Gate of its own over a journal and a ledger every process reaches (PostgreSQL),
each checking the signed dispatch it is handed before it acts (see
:mod:`remit.trust.dispatch`). Ray is an optional extra, imported on first use.

>>> from remit.executors import RayExecutor
>>> RayExecutor(workers=4).batch
64
"""

from remit.executors._ray import RayExecutor, RayRun
from remit.executors._worker import Recipe, TaskSpec, Worker

__all__ = ["RayExecutor", "RayRun", "Recipe", "TaskSpec", "Worker"]
