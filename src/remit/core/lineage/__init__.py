"""Result lineage: what every result of a run was derived from, read from its journal
rows alone (pure: no I/O), and invalidating a result so that exactly its dependents run
again (see docs/lineage.md).

``_ids``: step ids across generations; ``_graph``: the DAG (:class:`Lineage`);
``_invalidation``: the journal row that invalidates a result, and what it leaves
current (:func:`generations`).
"""

from remit.core.lineage._graph import Edge, Lineage, Row
from remit.core.lineage._ids import (
    GEN,
    StepRef,
    at_generation,
    base_id,
    generation_of,
    is_history,
    parse,
)
from remit.core.lineage._invalidation import (
    KIND,
    Invalidation,
    generations,
    invalidation_id,
    invalidations,
    plan_invalidation,
)

__all__ = [
    "GEN",
    "KIND",
    "Edge",
    "Invalidation",
    "Lineage",
    "Row",
    "StepRef",
    "at_generation",
    "base_id",
    "generation_of",
    "generations",
    "invalidation_id",
    "invalidations",
    "is_history",
    "parse",
    "plan_invalidation",
]
