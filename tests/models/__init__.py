"""Tests of remit.models: the adapters against real servers on 127.0.0.1, the embedded model."""
