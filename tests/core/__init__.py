"""Tests of remit.core."""
