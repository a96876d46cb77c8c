"""``remit runs --json`` and ``remit show --json`` are machine-readable: real output of
real runs (done, failed, denied, re-planned, faulted) validates against the JSON Schemas
in docs/schemas/, and a schema that the output broke would fail here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from typer.testing import CliRunner

from remit import Agent, Remit, Runtime, tool
from remit.cli import app
from remit.errors import DeniedError
from tests.faults.scenarios import BY_NAME, run_scenario

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def schema(name: str) -> dict[str, Any]:
    data = json.loads((ROOT / "docs" / "schemas" / name).read_text())
    jsonschema.Draft202012Validator.check_schema(data)
    return data


@tool
def secret(x: int) -> int:
    return x


class Denied(Agent):
    tools = [secret]

    async def execute(self, ctx: Any) -> Any:
        try:
            await ctx.call("secret", x=1)
        except DeniedError as e:
            return e.code


@pytest.fixture(scope="module")
def journals(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    tmp = tmp_path_factory.mktemp("views")
    # a run whose every route failed: re-planned, escalated, faults and reroutes drawn
    run_scenario(BY_NAME["compound_every_route_down"], "routed", tmp)
    run_scenario(BY_NAME["fanout_circuit_opens"], "routed", tmp)
    rt = Runtime(journal=tmp / "denied.db", agent=Denied(), durability="normal")
    rt.run("g", remit=Remit(tools={"calculator": {}}), run_id="denied")
    rt.close()
    return sorted(tmp.glob("*.db"))


def test_runs_json_validates(journals: list[Path]) -> None:
    for j in journals:
        r = runner.invoke(app, ["runs", "--journal", str(j), "--json"])
        assert r.exit_code == 0, r.output
        data = json.loads(r.output)
        jsonschema.validate(data, schema("runs.json"))
        assert len(data["runs"]) == 1


def test_show_json_validates_and_carries_what_happened(journals: list[Path]) -> None:
    seen: dict[str, Any] = {}
    for j in journals:
        [run] = json.loads(runner.invoke(app, ["runs", "--journal", str(j), "--json"]).output)[
            "runs"
        ]
        r = runner.invoke(app, ["show", run["id"], "--journal", str(j), "--json", "--all"])
        assert r.exit_code == 0, r.output
        data = json.loads(r.output)
        jsonschema.validate(data, schema("show.json"))
        seen[run["id"]] = data
    failed = seen["compound-every-route-down-routed"]
    assert failed["run"]["status"] == "failed"
    kids = failed["tree"]["children"]
    assert any(k.get("attempt") == 1 for k in kids)  # the re-planned branch
    kinds = {e["kind"] for k in kids for e in k["events"]}
    assert {"fault", "reroute", "escalate"} <= kinds
    assert seen["denied"]["tree"]["denied"][0]["code"] == "DENIED"


def test_a_schema_the_output_broke_fails(journals: list[Path]) -> None:
    strict = schema("runs.json")
    strict["properties"]["runs"]["items"]["properties"]["state"] = {"enum": ["running"]}
    data = json.loads(runner.invoke(app, ["runs", "--journal", str(journals[0]), "--json"]).output)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, strict)
