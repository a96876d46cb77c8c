"""Pure values, no I/O: the remit and its narrowing, tasks and plans, the ledger, schema checks."""
