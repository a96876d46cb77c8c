"""Tests of remit.gate."""
