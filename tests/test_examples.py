"""Every example in examples/ runs, and so does the README's Python code."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from remit import Remit
from remit.cli import app
from remit.jobs.audit import audit_remit

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
runner = CliRunner()


def python(script: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(script)], cwd=cwd, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONPATH": ""})  # fmt: skip


def test_quickstart_runs(tmp_path: Path) -> None:
    r = python(EXAMPLES / "quickstart.py", tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("done {'words': 9, 'failed': {'text2': \"DENIED: word_count:")
    assert "calls spent: 2/10" in r.stdout
    assert "remit show run-" in r.stdout
    assert (tmp_path / "quickstart.db").is_file()


def test_idempotent_effect_pays_once_per_key(tmp_path: Path) -> None:
    r = python(EXAMPLES / "idempotent_effect.py", tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == (
        "done: 2 payments; the repeated call returned payment 1, the same as the first (1)"
    )


def test_routes_and_faults_route_around_a_broken_tool(tmp_path: Path) -> None:
    r = python(EXAMPLES / "routes_and_faults.py", tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "done 27"  # the right total, with the cheap feed down throughout
    assert lines[1] == (
        "4 faults injected, 1 retried, 3 rerouted, 1 circuit change(s); re-plans: 0"
    )
    shown = runner.invoke(
        app, ["show", lines[2].split()[4], "--journal", str(tmp_path / "routes.db")]
    )
    assert shown.exit_code == 0, shown.output
    assert "⚡ injected tool_error at tool quote_api" in shown.stdout
    assert "circuit of quote_api open" in shown.stdout


def test_the_examples_plan_and_routes_read_as_the_cli_reads_them() -> None:
    from remit.cli._failures import load_fault_plan, load_routes

    plan = load_fault_plan(EXAMPLES / "faults.toml")
    assert [(f.type, f.tool, f.times) for f in plan.faults] == [
        ("tool_error", "quote_api", 0),
        ("timeout", "quote_mirror", 1),
    ]
    routes = load_routes(EXAMPLES / "routes.toml")
    assert routes.to_dict() == {"quote": {"quote_api": 1.0, "quote_mirror": 3.0}}


def test_readme_python_blocks_run(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert blocks, "the README has no Python example"
    for i, code in enumerate(blocks):
        script = tmp_path / f"readme_{i}.py"
        script.write_text(code)
        r = python(script, tmp_path)
        assert r.returncode == 0, f"README python block {i} failed:\n{r.stderr}"
    assert "done {'words': 9" in r.stdout


def test_audit_toml_is_the_jobs_default_remit() -> None:
    from_file = Remit.load(EXAMPLES / "audit.toml", now=0)
    built = audit_remit()
    assert from_file.tools == built.tools
    assert from_file.budget == built.budget
    assert (from_file.depth, from_file.principal) == (built.depth, built.principal)
    assert from_file.deadline == 300.0  # "5m", as the code's default


def test_audit_toml_drives_the_main_job(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_text("x = 1  # TODO\n")
    r = CliRunner().invoke(app, ["run", "--job", "audit", "--remit", str(EXAMPLES / "audit.toml"),
                                 "--workspace", str(tmp_path), "-j", str(tmp_path / "j.db"),
                                 "-q"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "| 1 | 1 | 1 | 0 | 0 | 1 |" in (tmp_path / "out" / "audit.md").read_text()


def test_every_example_is_exercised() -> None:
    here = Path(__file__).read_text()
    for example in EXAMPLES.iterdir():
        if example.suffix in (".py", ".toml"):
            assert f'"{example.name}"' in here, f"{example.name} has no test"
