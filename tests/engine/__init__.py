"""Tests of remit.engine."""
