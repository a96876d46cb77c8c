"""Tests of remit.tools."""
