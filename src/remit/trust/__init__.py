"""Verifiable authority: signed warrant chains, run keys and call proofs, offline checks."""
