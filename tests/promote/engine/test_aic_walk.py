"""The same walk against AIC tenants: the sandbox's REST API on 127.0.0.1, through the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from promote.cli import cli
from promote.sandbox.server import SandboxServer, start_sandbox
from tests.promote.engine.workspaces import ENVIRON, SECRET, env_yaml, write_workspace

TOKEN = "sandbox-t0ken-value"


@pytest.fixture
def sandbox(tmp_path: Path, start_sandboxes: Callable[..., SandboxServer]) -> SandboxServer:
    return start_sandboxes(["dev", "staging"], state=tmp_path / "sandbox", tokens=TOKEN)


def aic_env(name: str, url: str, **kw: object) -> str:
    text = env_yaml(name, **kw)  # type: ignore[arg-type]
    local = "tenant:\n  kind: local\n"
    aic = f"tenant:\n  kind: aic\n  url: {url}\n  token: {{env: AIC_TOKEN}}\n"
    return text.replace(local, aic)


def test_run_to_staging_on_aic_tenants(sandbox: SandboxServer, tmp_path: Path) -> None:
    envs = {
        "dev": aic_env("dev", sandbox.url("dev")),
        "staging": aic_env("staging", sandbox.url("staging"), port="465", ssl="true"),
    }
    root = write_workspace(tmp_path / "ws", envs=envs)
    environ = {**ENVIRON, "AIC_TOKEN": TOKEN}
    runner = CliRunner()
    args = ["--workspace", str(root)]

    plan = runner.invoke(cli, [*args, "plan", "--to", "staging", "--format", "json"], env=environ)
    assert plan.exit_code == 0, plan.stderr
    stages = json.loads(plan.stdout)["stages"]
    assert [(s["env"], s["status"], s["via"]) for s in stages] == [
        ("dev", "changes", "direct"),
        ("staging", "changes", "promotion"),
    ]

    result = runner.invoke(cli, [*args, "run", "--to", "staging"], env=environ)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "dev: applied\nstaging: applied\n"

    again = runner.invoke(
        cli, [*args, "plan", "--to", "staging", "--detailed-exitcode"], env=environ
    )
    assert again.exit_code == 0, again.stdout + again.stderr
    assert "Summary: 0 with changes, 2 in sync, 0 blocked." in again.stdout
    for text in (plan.stdout, plan.stderr, result.stdout, result.stderr, again.stdout):
        assert SECRET not in text and TOKEN not in text


def test_walk_into_an_okta_org_sends_resolved_config(tmp_path: Path) -> None:
    from promote.sandbox.server import EnvSpec

    server = start_sandbox(
        ["dev", EnvSpec("okta", "okta", mutable=True)], tmp_path / "sandbox", tokens=TOKEN
    )
    try:
        # No 'mutable:' although above dev: Okta has no promotions, config goes in directly.
        okta = aic_env("okta", server.url("okta")).replace("kind: aic", "kind: okta")
        envs = {"dev": env_yaml("dev"), "okta": okta}
        root = write_workspace(tmp_path / "ws", envs=envs, chain=["dev", "okta"])
        environ = {**ENVIRON, "AIC_TOKEN": TOKEN, "OKTA_SMTP_PASSWORD": SECRET + "-okta"}
        runner = CliRunner()
        args = ["--workspace", str(root)]
        plan = runner.invoke(cli, [*args, "plan", "--to", "okta", "--format", "json"], env=environ)
        assert plan.exit_code == 0, plan.stdout + plan.stderr
        okta_stage = json.loads(plan.stdout)["stages"][1]
        assert (okta_stage["status"], okta_stage["via"]) == ("changes", "direct")
        assert okta_stage["esv_changes"] == [] and okta_stage["restart"] is False
        (change,) = okta_stage["config_changes"]
        assert change["object"] == "external.email"
        assert SECRET not in plan.stdout
        result = runner.invoke(cli, [*args, "run", "--to", "okta"], env=environ)
        assert result.exit_code == 0, result.stderr
        assert result.stdout == "dev: applied\nokta: applied\n"
        again = runner.invoke(cli, [*args, "plan", "--to", "okta", "--format", "json"], env=environ)
        assert [s["status"] for s in json.loads(again.stdout)["stages"]] == ["in-sync", "in-sync"]

        # A rotated password: Okta never returns it, so the plan says it will be set.
        rotated = {**environ, "OKTA_SMTP_PASSWORD": "rotated-" + SECRET}
        for fmt, line in (
            ("text", "        auth.password: will be set\n"),
            ("markdown", "| `auth.password` | – | will be set |"),
        ):
            shown = runner.invoke(
                cli, [*args, "plan", "--to", "okta", "--format", fmt], env=rotated
            )
            assert shown.exit_code == 0, shown.stderr
            assert line in shown.stdout and "********" not in shown.stdout
            assert SECRET not in shown.stdout + shown.stderr
        as_json = runner.invoke(
            cli, [*args, "plan", "--to", "okta", "--format", "json"], env=rotated
        )
        (change,) = json.loads(as_json.stdout)["stages"][1]["config_changes"]
        assert change["changes"] == [{"path": "auth.password", "after": "********"}]
        assert SECRET not in as_json.stdout
    finally:
        server.stop()


def test_failed_esv_write_names_the_environment_and_its_url_once(tmp_path: Path) -> None:
    rule = "400:1:PUT /dev/environment/variables/esv-email-provider-host"
    server = start_sandbox(["dev", "staging"], tmp_path / "sandbox", tokens=TOKEN, failures=[rule])
    try:
        envs = {
            "dev": aic_env("dev", server.url("dev")),
            "staging": aic_env("staging", server.url("staging"), port="465", ssl="true"),
        }
        root = write_workspace(tmp_path / "ws", envs=envs)
        environ = {**ENVIRON, "AIC_TOKEN": TOKEN}
        result = CliRunner().invoke(
            cli, ["--workspace", str(root), "run", "--to", "staging"], env=environ
        )
    finally:
        server.stop()
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"error: dev ({server.url('dev')}) failed: 1 of 6 ESV writes failed; written: "
        "add variable esv-email-provider-from, add variable esv-email-provider-port, "
        "add variable esv-email-provider-use-ssl, add variable esv-email-provider-username, "
        "add secret esv-email-provider-password; failed:\n"
        "  add variable esv-email-provider-host: PUT /environment/variables/"
        "esv-email-provider-host -> 400: injected failure (400) "
        '[{"code": 400, "message": "injected failure (400)"}]\n'
        "run again to finish (writes are idempotent)\n"
        "  dev: partially applied (some ESV writes may have been made, as the error lists; "
        "failed during writing ESVs)\n"
        "  staging: untouched\n"
    )
    assert SECRET not in result.stderr and TOKEN not in result.stderr
