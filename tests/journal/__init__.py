"""Tests of remit.journal."""
