"""Tests of remit.jobs."""
