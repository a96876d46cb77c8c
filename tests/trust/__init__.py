"""Tests of remit.trust."""
