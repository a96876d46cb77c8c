"""A remit file: the remit, and beside it the MCP servers whose tools it names; the
servers never enter the remit (they are wiring, not authority)."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

from remit.core.remit import Remit, RemitFile
from remit.core.remit import _file as file_module
from remit.errors import RemitFormatError

TOML = """
depth = 1
[budget]
calls = 5
[tools."calc.add"]
a = { between = [0, 9] }
[mcp.calc]
command = ["python", "server.py"]
timeout = 5
env = { COUNTER_LOG = "/tmp/x" }
[mcp.time]
url = "http://127.0.0.1:9/mcp"
"""


def test_a_file_holds_a_remit_and_its_servers(tmp_path: Path) -> None:
    p = tmp_path / "r.toml"
    p.write_text(TOML)
    f = RemitFile.load(p)
    assert sorted(f.remit.tools) == ["calc.add"] and f.remit.budget.calls == 5
    assert dict(f.mcp["calc"]) == {
        "command": ["python", "server.py"], "timeout": 5, "env": {"COUNTER_LOG": "/tmp/x"},
    }  # fmt: skip
    assert f.mcp["time"]["url"] == "http://127.0.0.1:9/mcp"
    # the remit read alone is the same remit, and its record names no server
    assert Remit.load(p) == f.remit
    assert "mcp" not in f.remit.to_dict()


def test_json_files_take_the_same_shape(tmp_path: Path) -> None:
    p = tmp_path / "r.json"
    p.write_text('{"tools": {"t.x": {}}, "mcp": {"t": {"url": "https://example.org/mcp"}}}')
    assert list(RemitFile.load(p).mcp) == ["t"]


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("[mcp]\ncalc = 3", "mcp.calc: expected a table, got int"),
        ("[mcp.calc]\ntimeout = 3", "mcp.calc: give either command (stdio) or url"),
        ('[mcp.calc]\ncommand = "x"\nurl = "http://h"', "mcp.calc: give either command"),
        ("[mcp.calc]\ncommand = []", "mcp.calc.command: expected a command line or a list"),
        ('[mcp.calc]\nurl = "ftp://h"', "mcp.calc.url: expected an http:// or https:// URL"),
        ('[mcp.calc]\ncommand = "x"\nenv = { A = 1 }', "mcp.calc.env: expected a table of str"),
        ('[mcp.calc]\ncommand = "x"\ntimeout = 0', "mcp.calc.timeout: expected a positive"),
        ('[mcp.calc]\ncommand = "x"\nport = 3', "mcp.calc.port: unknown field"),
        ('[mcp."a.b"]\ncommand = "x"', "mcp.a.b: a server name must be non-empty, without dots"),
    ],
)
def test_a_malformed_server_names_where(tmp_path: Path, section: str, message: str) -> None:
    p = tmp_path / "r.toml"
    p.write_text(section)
    with pytest.raises(RemitFormatError) as e:
        RemitFile.load(p)
    assert e.value.message.startswith(f"{p}: "), e.value.message
    assert message in e.value.message, e.value.message


def test_the_remits_own_errors_still_name_the_file(tmp_path: Path) -> None:
    p = tmp_path / "r.toml"
    p.write_text("[budget]\ncalls = -3\n[mcp.t]\nurl = 'http://h'")
    with pytest.raises(RemitFormatError, match=r"r.toml: remit.budget.calls"):
        RemitFile.load(p)
    p.write_text("nonsense = [")
    with pytest.raises(RemitFormatError, match=r"r.toml: remit: invalid TOML"):
        RemitFile.load(p)


def test_module_examples() -> None:
    result = doctest.testmod(file_module)
    assert result.attempted > 0 and result.failed == 0
