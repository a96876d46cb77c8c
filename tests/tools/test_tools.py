"""Tools: @tool validation and schema, the workspace-confined file tools, the calculator."""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from remit import tool
from remit.errors import DeniedError, InvalidInput, ToolArgumentError, UnknownToolError
from remit.tools import Tool, ToolRegistry, calculator, files

# --- @tool ---------------------------------------------------------------------------------


def test_tool_defaults_describe_a_pure_tool() -> None:
    @tool
    def add(a: int, b: int = 1) -> int:
        """Add two integers."""
        return a + b

    assert isinstance(add, Tool)
    assert (add.name, add.effect, add.idempotent, add.is_async) == ("add", False, True, False)
    assert (add.timeout, add.retries, add.cost_usd, add.thread) == (None, 2, 0.0, False)
    assert add.description == "Add two integers."
    assert add(2, b=3) == 5  # a direct call bypasses the Gate


def test_tool_options_are_kept() -> None:
    @tool(effect=True, idempotent=False, timeout=1.5, retries=0, cost_usd=0.02, name="send")
    async def send_mail(to: str, idempotency_key: str) -> str:
        return to

    assert (send_mail.name, send_mail.effect, send_mail.idempotent) == ("send", True, False)
    assert (send_mail.timeout, send_mail.retries, send_mail.cost_usd) == (1.5, 0, 0.02)
    assert send_mail.is_async and send_mail.takes_key


def test_validate_coerces_and_fills_defaults() -> None:
    @tool
    def f(n: int, ratio: float = 0.5, tags: list[str] | None = None) -> None: ...

    assert f.validate({"n": "3"}) == {"n": 3, "ratio": 0.5, "tags": None}
    assert f.validate({"n": 1, "tags": ["a"]})["tags"] == ["a"]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ({}, "n: Field required"),
        ({"n": "three"}, "n: "),
        ({"n": 1, "extra": 2}, "extra: Extra inputs are not permitted"),
        ({"n": 1, "ratio": "x"}, "ratio: "),
    ],
)
def test_validate_errors_name_the_argument(args: dict[str, Any], named: str) -> None:
    @tool
    def f(n: int, ratio: float = 0.5) -> None: ...

    with pytest.raises(ToolArgumentError) as info:
        f.validate(args)
    assert info.value.code == "TOOL_ARGUMENTS"
    assert "tool f" in info.value.message
    assert named in info.value.message


def test_tools_of_one_name_but_different_parameters_validate_each_by_its_own() -> None:
    """Argument models are shared only between tools with the very same signature."""

    def count(n: int) -> int:
        return n

    first = Tool(count)

    def count(n: str) -> str:  # the same name, on purpose
        return n

    second = Tool(count)
    assert first.validate({"n": "3"}) == {"n": 3}
    assert second.validate({"n": "3"}) == {"n": "3"}
    with pytest.raises(ToolArgumentError, match="n"):
        first.validate({"n": "three"})
    again = Tool(first.fn)
    assert again.validate({"n": "4"}) == {"n": 4}


def test_idempotency_key_is_not_an_argument_the_caller_may_pass() -> None:
    @tool(effect=True)
    def put(path: str, idempotency_key: str) -> None: ...

    assert put.takes_key
    assert put.validate({"path": "a"}) == {"path": "a"}
    with pytest.raises(ToolArgumentError, match="idempotency_key"):
        put.validate({"path": "a", "idempotency_key": "forged"})


def test_var_args_are_refused() -> None:
    with pytest.raises(TypeError, match=r"\*args/\*\*kwargs"):

        @tool
        def f(*xs: int) -> None: ...

    with pytest.raises(TypeError, match=r"\*args/\*\*kwargs"):

        @tool
        def g(**kw: int) -> None: ...


def test_schema_is_an_openai_function_description() -> None:
    @tool
    def search(query: str, limit: int = 10, idempotency_key: str = "") -> list[str]:
        """Search the index."""
        return []

    s = search.schema()
    assert s["type"] == "function"
    fn = s["function"]
    assert fn["name"] == "search"
    assert fn["description"] == "Search the index."
    params = fn["parameters"]
    assert params["type"] == "object"
    assert set(params["properties"]) == {"query", "limit"}
    assert params["properties"]["query"]["type"] == "string"
    assert params["properties"]["limit"]["type"] == "integer"
    assert params["properties"]["limit"]["default"] == 10
    assert params["required"] == ["query"]
    assert params.get("additionalProperties") is False
    assert "title" not in params


def test_registry_knows_by_name_and_refuses_clashes() -> None:
    @tool
    def a() -> None: ...

    reg = ToolRegistry([a, calculator])
    assert reg.get("a") is a and "calculator" in reg and reg.names() == ["a", "calculator"]
    reg.add(a)  # the same tool again is fine
    with pytest.raises(UnknownToolError, match=r"unknown tool 'b' \(known tools: a, calculator\)"):
        reg.get("b")

    @tool(name="a")
    def other() -> None: ...

    with pytest.raises(ValueError, match="two different tools are named 'a'"):
        reg.add(other)
    with pytest.raises(TypeError, match="@tool"):
        reg.add(lambda: None)  # type: ignore[arg-type]


# --- file tools ---------------------------------------------------------------------------


@pytest.fixture
def fs(tmp_path: Path) -> tuple[Path, Path, dict[str, Tool]]:
    """(workspace, a directory outside it, the file tools by name)."""
    ws = tmp_path / "ws"
    outside = tmp_path / "outside"
    ws.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    return ws, outside, {t.name: t for t in files(ws)}


def test_file_tools_are_the_documented_three(fs: tuple[Path, Path, dict[str, Tool]]) -> None:
    _, _, tools = fs
    assert sorted(tools) == ["list_dir", "read_file", "write_file"]
    assert not tools["read_file"].effect and not tools["list_dir"].effect
    assert tools["write_file"].effect and tools["write_file"].idempotent


def test_read_file_reads_inside_the_workspace(fs: tuple[Path, Path, dict[str, Tool]]) -> None:
    ws, _, tools = fs
    (ws / "src").mkdir()
    (ws / "src" / "a.py").write_text("print('hi')\n")
    assert tools["read_file"](path="src/a.py") == "print('hi')\n"
    assert tools["read_file"](path="./src/../src/a.py") == "print('hi')\n"
    with pytest.raises(InvalidInput, match="not a file"):
        tools["read_file"](path="src")
    with pytest.raises(InvalidInput, match="not a file"):
        tools["read_file"](path="missing.txt")


@pytest.mark.parametrize("path", ["../outside/secret.txt", "src/../../outside/secret.txt", ".."])
def test_dotdot_escapes_are_refused(fs: tuple[Path, Path, dict[str, Tool]], path: str) -> None:
    _, _, tools = fs
    for name, args in (("read_file", {}), ("list_dir", {}), ("write_file", {"text": "x"})):
        with pytest.raises(DeniedError, match="outside the workspace"):
            tools[name](path=path, **args)


def test_absolute_paths_are_refused(fs: tuple[Path, Path, dict[str, Tool]]) -> None:
    ws, outside, tools = fs
    (ws / "in.txt").write_text("in")
    for path in (str(outside / "secret.txt"), str(ws / "in.txt"), "/etc/passwd"):
        with pytest.raises(DeniedError, match="absolute"):
            tools["read_file"](path=path)
    with pytest.raises(DeniedError, match="absolute"):
        tools["write_file"](path=str(outside / "new.txt"), text="x")
    assert not (outside / "new.txt").exists()


@pytest.mark.parametrize("path", ["", "a\x00b"])
def test_empty_or_nul_paths_are_refused(fs: tuple[Path, Path, dict[str, Tool]], path: str) -> None:
    _, _, tools = fs
    with pytest.raises(DeniedError):
        tools["read_file"](path=path)


def test_symlinks_pointing_out_are_refused(fs: tuple[Path, Path, dict[str, Tool]]) -> None:
    ws, outside, tools = fs
    (ws / "link.txt").symlink_to(outside / "secret.txt")
    (ws / "dirlink").symlink_to(outside, target_is_directory=True)
    (ws / "dangling").symlink_to(outside / "not-yet.txt")
    with pytest.raises(DeniedError, match="outside the workspace"):
        tools["read_file"](path="link.txt")
    with pytest.raises(DeniedError, match="outside the workspace"):
        tools["read_file"](path="dirlink/secret.txt")
    with pytest.raises(DeniedError, match="outside the workspace"):
        tools["list_dir"](path="dirlink")
    with pytest.raises(DeniedError, match="outside the workspace"):
        tools["write_file"](path="link.txt", text="overwritten")
    with pytest.raises(DeniedError, match="outside the workspace"):
        tools["write_file"](path="dirlink/new.txt", text="x")
    with pytest.raises(DeniedError, match="outside the workspace"):
        tools["write_file"](path="dangling", text="x")
    assert (outside / "secret.txt").read_text() == "secret"
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


def test_symlinks_are_not_followed_even_inside_the_workspace(
    fs: tuple[Path, Path, dict[str, Tool]],
) -> None:
    """A remit's path constraints judge the path as written: within("src/") must not
    reach ../secret.txt through src/link.txt, so links are refused outright."""
    ws, _, tools = fs
    (ws / "real.txt").write_text("real")
    (ws / "sub").mkdir(exist_ok=True)
    (ws / "sub" / "alias.txt").symlink_to(ws / "real.txt")
    with pytest.raises(DeniedError, match="symbolic link"):
        tools["read_file"](path="sub/alias.txt")
    with pytest.raises(DeniedError, match="symbolic link"):
        tools["write_file"](path="sub/alias.txt", text="x")
    assert (ws / "real.txt").read_text() == "real"


def test_write_file_does_not_follow_a_planted_temp_symlink_out(
    fs: tuple[Path, Path, dict[str, Tool]],
) -> None:
    """A hostile workspace (a cloned repository, say) may hold a symlink where
    write_file puts its temporary file; the write must still stay inside."""
    ws, outside, tools = fs
    (ws / ".report.md.remit-tmp").symlink_to(outside / "victim.txt")
    with contextlib.suppress(DeniedError):  # refusing is fine; writing outside is not
        tools["write_file"](path="report.md", text="pwned")
    assert not (outside / "victim.txt").exists(), "write_file wrote outside the workspace"
    if (ws / "report.md").exists():
        assert not (ws / "report.md").is_symlink()


@pytest.mark.parametrize("path", [".", "sub/.."])
def test_write_file_to_the_workspace_root_writes_nothing_outside(
    fs: tuple[Path, Path, dict[str, Tool]], path: str
) -> None:
    ws, _, tools = fs
    before = sorted(p.name for p in ws.parent.iterdir())
    with pytest.raises((DeniedError, InvalidInput)):
        tools["write_file"](path=path, text="escaped")
    assert sorted(p.name for p in ws.parent.iterdir()) == before, "a file appeared outside"


def test_write_file_creates_parents_and_reports(fs: tuple[Path, Path, dict[str, Tool]]) -> None:
    ws, _, tools = fs
    out = tools["write_file"](path="out/deep/report.md", text="héllo")
    assert out == "wrote 6 bytes to out/deep/report.md"
    assert (ws / "out/deep/report.md").read_text(encoding="utf-8") == "héllo"


def test_write_file_is_idempotent(fs: tuple[Path, Path, dict[str, Tool]]) -> None:
    ws, _, tools = fs
    first = tools["write_file"](path="a.txt", text="same")
    second = tools["write_file"](path="a.txt", text="same")
    assert first == second
    assert (ws / "a.txt").read_text() == "same"
    assert sorted(p.name for p in ws.iterdir()) == ["a.txt"]  # no temp file left behind


def test_write_file_is_atomic(
    fs: tuple[Path, Path, dict[str, Tool]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that fails before it completes leaves the old file whole."""
    ws, _, tools = fs
    tools["write_file"](path="a.txt", text="old content")
    seen: list[str] = []

    def failing_replace(src: Any, dst: Any) -> None:
        # at the moment of the switch the old file is still intact, the new text is whole
        seen.append(Path(dst).read_text())
        seen.append(Path(src).read_text())
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        tools["write_file"](path="a.txt", text="new content")
    assert seen == ["old content", "new content"]
    assert (ws / "a.txt").read_text() == "old content"
    monkeypatch.undo()
    tools["write_file"](path="a.txt", text="new content")
    assert (ws / "a.txt").read_text() == "new content"


def test_write_file_creates_files_with_the_usual_permissions(
    fs: tuple[Path, Path, dict[str, Tool]],
) -> None:
    """A written file is an ordinary file: mode 0o666 less the umask, as open() makes
    it, not a private temporary file's 0o600."""
    ws, _, tools = fs
    umask = os.umask(0o022)
    try:
        tools["write_file"](path="report.md", text="x")
        (ws / "plain.md").write_text("x")
    finally:
        os.umask(umask)
    mode = (ws / "report.md").stat().st_mode & 0o777
    assert mode == (ws / "plain.md").stat().st_mode & 0o777 == 0o644


def test_write_file_keeps_the_mode_of_the_file_it_replaces(
    fs: tuple[Path, Path, dict[str, Tool]],
) -> None:
    ws, _, tools = fs
    script = ws / "run.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    tools["write_file"](path="run.sh", text="#!/bin/sh\necho hi\n")
    assert script.read_text().endswith("echo hi\n")
    assert script.stat().st_mode & 0o777 == 0o755


def test_list_dir_lists_names_kinds_and_sizes(fs: tuple[Path, Path, dict[str, Tool]]) -> None:
    ws, _, tools = fs
    (ws / "b.txt").write_text("12345")
    (ws / "a").mkdir()
    (ws / "a" / "x").write_text("x")
    assert tools["list_dir"]() == [
        {"name": "a", "dir": True, "size": 0},
        {"name": "b.txt", "dir": False, "size": 5},
    ]
    assert tools["list_dir"](path="a") == [{"name": "x", "dir": False, "size": 1}]
    with pytest.raises(InvalidInput, match="not a directory"):
        tools["list_dir"](path="b.txt")


def test_list_dir_does_not_follow_symlinks_to_report(
    fs: tuple[Path, Path, dict[str, Tool]],
) -> None:
    ws, outside, tools = fs
    (ws / "out").symlink_to(outside, target_is_directory=True)
    entries = tools["list_dir"]()
    assert entries == [{"name": "out", "dir": False, "size": len(os.readlink(ws / "out"))}]


def test_read_file_refuses_huge_files(fs: tuple[Path, Path, dict[str, Tool]]) -> None:
    ws, _, tools = fs
    (ws / "big.bin").write_bytes(b"a" * 1_000_001)
    with pytest.raises(InvalidInput, match="larger than"):
        tools["read_file"](path="big.bin")


# --- calculator ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("2 * (3 + 4)", 14),
        ("7 // 2", 3),
        ("7 % 4", 3),
        ("-3 + +2", -1),
        ("2 ** 10", 1024),
        ("1 / 4", 0.25),
        ("abs(-2) + max(1, 5, 3) - min(4, 2)", 5),
        ("round(2.567, 2)", 2.57),
        ("sqrt(16)", 4.0),
        ("2 ** -2", 0.25),
    ],
)
def test_calculator_does_arithmetic(expression: str, value: float) -> None:
    assert calculator(expression) == value


@pytest.mark.parametrize(
    "expression",
    [
        "x",
        "x + 1",
        "(1).real",
        "abs.__class__",
        "().__class__.__bases__",
        "__import__('os').system('true')",
        "open('/etc/passwd')",
        "print(1)",
        "max(1, key=abs)",
        "(lambda: 1)()",
        "[1, 2]",
        "'a' * 3",
        "True + 1",
        "1 if 1 else 2",
        "1 < 2",
        "sqrt",
    ],
)
def test_calculator_refuses_names_attributes_and_calls(expression: str) -> None:
    with pytest.raises(InvalidInput, match="calculator"):
        calculator(expression)


@pytest.mark.parametrize("expression", ["9 ** 1001", "2 ** -5000", "9 ** 9 ** 9", "10 ** 10 ** 4"])
def test_calculator_refuses_huge_exponents(expression: str) -> None:
    with pytest.raises(InvalidInput, match="exponent"):
        calculator(expression)


@pytest.mark.parametrize(
    "expression", ["1 / 0", "5 % 0", "sqrt(-1)", "log(0)", "exp(1000)", "1 +", "2 ** 0.5 ** (", ""]
)
def test_calculator_turns_math_errors_into_invalid_input(expression: str) -> None:
    with pytest.raises(InvalidInput, match="calculator"):
        calculator(expression)


@pytest.mark.parametrize("expression", ["max()", "round(1.5, 2.5)", "sqrt(1, 2)", "abs()"])
def test_calculator_refuses_malformed_calls_with_invalid_input(expression: str) -> None:
    """A wrong call to an allowed function is bad input, not a crash of the tool."""
    with pytest.raises(InvalidInput, match="calculator"):
        calculator(expression)


def test_calculator_refuses_long_expressions() -> None:
    with pytest.raises(InvalidInput, match="longer than 1000"):
        calculator("1+" * 600 + "1")


def _limit_memory() -> None:  # pragma: no cover - runs in the child process
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def test_calculator_refuses_nested_powers_that_would_exhaust_the_machine() -> None:
    """Each exponent is small, but together they make a number of 10**9 digits."""
    code = (
        "from remit.tools import calculator\n"
        "from remit.errors import InvalidInput\n"
        "try:\n"
        "    calculator('((10 ** 1000) ** 1000) ** 1000')\n"
        "except InvalidInput:\n"
        "    print('refused')\n"
    )
    try:
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=5,
            preexec_fn=_limit_memory,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("calculator kept computing a 10**9-digit number for 5 s instead of refusing")
    assert out.stdout.strip() == "refused", out.stderr[-500:]
