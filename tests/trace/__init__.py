"""Tests of remit.trace."""
