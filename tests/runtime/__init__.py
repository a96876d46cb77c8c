"""Tests of remit.runtime."""
