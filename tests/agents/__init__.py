"""Tests of remit.agents."""
