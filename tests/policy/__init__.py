"""Tests of remit.policy."""
