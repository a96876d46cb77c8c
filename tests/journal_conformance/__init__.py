"""The journal conformance suite: the spec every ``JournalStore`` backend must pass."""
