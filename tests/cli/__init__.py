"""Tests of remit.cli."""
