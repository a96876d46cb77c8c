"""Tests of failures: the error taxonomy, routing, fault injection, the scenario suite."""
