"""`promote pull --env ENV` against each tenant kind: the local tenant, the AIC sandbox and
the Okta sandbox. Right after a pull, `plan --to ENV` shows ENV in sync, and the pull wrote
nothing to the tenant."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner, Result

from promote.cli import cli
from promote.sandbox import EnvSpec, SandboxServer
from tests.helpers.example import copy_example
from tests.helpers.leaks import assert_no_leak
from tests.promote.tenants import test_aic_run as aic
from tests.promote.tenants import test_okta_cli as okta


def promote(root: Path, *args: str, env: dict[str, str]) -> Result:
    return CliRunner().invoke(cli, ["--workspace", str(root), *args], env=env)


def stage(root: Path, env: str, environ: dict[str, str]) -> dict[str, object]:
    plan = promote(root, "plan", "--to", env, "--format", "json", env=environ)
    assert plan.exit_code == 0, plan.output
    stages = {s["env"]: s for s in json.loads(plan.stdout)["stages"]}
    return stages[env]


def forget(root: Path, env: str) -> None:
    """What a team that has only the tenant starts from: no config, an environment file
    with where the tenant is and nothing else (its secrets' sources kept)."""
    shutil.rmtree(root / "config")
    path = root / "environments" / f"{env}.yaml"
    text = path.read_text()
    head, _, rest = text.partition("variables:\n")
    _, _, secrets = rest.partition("secrets:\n")
    path.write_text(head + "secrets:\n" + secrets)


def test_pull_from_the_local_tenant(tmp_path: Path) -> None:
    root = copy_example(tmp_path / "ws")
    environ: dict[str, str] = {}
    assert promote(root, "run", "--to", "staging", env=environ).exit_code == 0
    wanted_config = {p.name: json.loads(p.read_text()) for p in (root / "config").rglob("*.json")}
    wanted_env = (root / "environments" / "staging.yaml").read_text()
    forget(root, "staging")
    tenant_db = sorted((root / ".promote").rglob("*.sqlite3"))
    before = {p: p.read_bytes() for p in tenant_db}

    result = promote(root, "pull", "--env", "staging", env=environ)
    assert result.exit_code == 0, result.output
    pulled = {p.name: json.loads(p.read_text()) for p in (root / "config").rglob("*.json")}
    assert pulled == wanted_config
    text = (root / "environments" / "staging.yaml").read_text()
    for line in wanted_env.splitlines():
        if line.startswith("  esv-") and "secret" not in line and "password" not in line:
            assert line in text
    assert "kept from environments/staging.yaml" in result.stdout
    status = stage(root, "staging", environ)
    assert status["status"] == "in-sync", status
    assert {p: p.read_bytes() for p in tenant_db} == before  # nothing written to the tenant
    again = promote(root, "pull", "--env", "staging", env=environ)
    assert "nothing changed" in again.stdout


def test_pull_from_an_aic_tenant(
    tmp_path: Path, start_sandboxes: Callable[..., SandboxServer]
) -> None:
    sandbox = start_sandboxes(list(aic.CHAIN), state=tmp_path / "sandbox", tokens=aic.TOKEN)
    root = aic.workspace(tmp_path / "ws", sandbox)
    assert aic.promote(root, "run", "--to", "staging").exit_code == 0
    # A secret promote never wrote, made in the console.
    api = sandbox.apis["staging"].tenant  # type: ignore[attr-defined]
    from esv import SecretValue
    from promote.tenants.base import EsvWrite

    api.write_esvs(
        [EsvWrite("esv-console-secret", "secret", "add", SecretValue("c0ns0le-only-value"))]
    )
    forget(root, "staging")
    writes_before = len(sandbox.writes())

    result = aic.promote(root, "pull", "--env", "staging")
    assert result.exit_code == 0, result.output
    assert len(sandbox.writes()) == writes_before  # the pull only read
    text = (root / "environments" / "staging.yaml").read_text()
    assert 'esv-email-provider-port: {value: "465", type: int}' in text
    assert "esv-console-secret: {env: ESV_CONSOLE_SECRET}" in text
    assert (
        json.loads((root / "config" / "external.email.json").read_text())
        == aic.held(sandbox, "staging")["external.email"]
    )
    plan = aic.promote(root, "plan", "--to", "staging")
    assert "ESV_CONSOLE_SECRET" in plan.output, plan.output
    with_value = aic.promote(
        root,
        "plan",
        "--to",
        "staging",
        "--format",
        "json",
        extra={"ESV_CONSOLE_SECRET": "c0ns0le-only-value"},
    )
    assert with_value.exit_code == 0, with_value.output
    (staging,) = [s for s in json.loads(with_value.stdout)["stages"] if s["env"] == "staging"]
    assert staging["config_changes"] == [], staging
    assert [c["id"] for c in staging["esv_changes"]] == ["esv-console-secret"], staging
    for text in (result.stdout, result.stderr, plan.output, with_value.output):
        assert_no_leak(text, ["c0ns0le-only-value", *aic.ENVIRON.values()], "pull output")


def test_pull_from_an_okta_org(
    tmp_path: Path, start_sandboxes: Callable[..., SandboxServer]
) -> None:
    sandbox = start_sandboxes(
        [EnvSpec("okta", "okta", mutable=True)], state=tmp_path / "sandbox", tokens=okta.TOKEN
    )
    root = tmp_path / "ws"
    (root / "environments").mkdir(parents=True)
    (root / "config").mkdir()
    (root / "promote.yaml").write_text("chain: [okta]\n")
    okta.write_okta_env(root, sandbox.url("okta"))
    (root / "config" / "external.email.json").write_text(json.dumps(okta.EMAIL, indent=2))
    assert okta.promote(root, "run", "--to", "okta").exit_code == 0
    shutil.rmtree(root / "config")
    writes_before = len(sandbox.writes())

    result = okta.promote(root, "pull", "--env", "okta")
    assert result.exit_code == 0, result.output
    assert len(sandbox.writes()) == writes_before
    assert "holds no ESVs" in result.stdout
    plan = okta.promote(root, "plan", "--to", "okta", "--format", "json")
    assert plan.exit_code == 0, plan.output
    (only,) = json.loads(plan.stdout)["stages"]
    assert only["status"] == "in-sync", only
