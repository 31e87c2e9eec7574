"""SPEC 4.3: plans are reproducible (byte-identical across processes and machines) and
complete (every stage of the walk, problems of one environment block only it; stdout stays
one JSON object). And ``run --plan`` both ways: an unchanged plan applies, any change since
(tenant, value, file) is refused."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from promote.cli import cli
from tests.promote.engine.workspaces import (
    ENVIRON,
    SECRET,
    default_envs,
    env_yaml,
    set_config,
    write_workspace,
)

PROMOTE = str(Path(sys.executable).parent / "promote")
KEY = {"PROMOTE_FINGERPRINT_KEY": "shared-ci-fingerprint-key-000111222"}


def promote(root: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, ["--workspace", str(root), *args], env=env or ENVIRON)


def process(root: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [PROMOTE, *args], cwd=root, env={"PATH": "/usr/bin:/bin", **env}, capture_output=True
    )


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_byte_identical_across_processes_and_machines(tmp_path: Path, fmt: str) -> None:
    first = write_workspace(tmp_path / "laptop" / "ws")
    assert promote(first, "run", "--to", "dev", env={**ENVIRON, **KEY}).exit_code == 0
    other = tmp_path / "ci-runner-17" / "checkout"  # another machine: another path
    shutil.copytree(first, other)
    env = {**ENVIRON, **KEY}
    plans = [
        process(root, "plan", "--to", "prod", "--format", fmt, env=env)
        for root in (first, first, other)
    ]
    assert [p.returncode for p in plans] == [0, 0, 0], plans[0].stderr
    assert plans[0].stdout == plans[1].stdout == plans[2].stdout
    text = plans[0].stdout.decode()
    assert str(tmp_path) not in text and "salt" not in text and "created" not in text
    if fmt == "json":
        stages = json.loads(text)["stages"]
        assert [s["status"] for s in stages] == ["in-sync", "changes", "changes"]


def test_the_store_key_makes_plans_reproducible_too(tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "ws")
    outs = [process(root, "plan", "--to", "staging", "--format", "json", env=ENVIRON) for _ in "ab"]
    assert outs[0].returncode == 0 and outs[0].stdout == outs[1].stdout


def _saved(root: Path, tmp_path: Path) -> Path:
    out = tmp_path / "plan.json"
    made = promote(root, "plan", "--to", "staging", "--format", "json", "--out", str(out))
    assert made.exit_code == 0, made.output
    return out


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = write_workspace(tmp_path / "ws")
    assert promote(root, "run", "--to", "dev").exit_code == 0
    return root


def test_an_unchanged_saved_plan_is_applied(ws: Path, tmp_path: Path) -> None:
    out = _saved(ws, tmp_path)
    result = promote(ws, "run", "--plan", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout == "dev: in sync (skipped)\nstaging: applied\n"


@pytest.mark.parametrize("change", ["tenant", "secret value", "variable", "config file"])
def test_a_saved_plan_is_refused_after_any_change(ws: Path, tmp_path: Path, change: str) -> None:
    out = _saved(ws, tmp_path)
    env = dict(ENVIRON)
    if change == "tenant":
        sqlite = ws / ".promote" / "tenants" / "dev" / "tenant.sqlite3"
        import sqlite3

        with sqlite3.connect(sqlite) as conn:
            conn.execute("UPDATE variables SET value = 'x' WHERE id = 'esv-email-provider-host'")
    elif change == "secret value":
        env["STAGING_SMTP_PASSWORD"] = SECRET + "-rotated-since"
    elif change == "variable":
        path = ws / "environments" / "staging.yaml"
        path.write_text(path.read_text().replace("smtp.staging.example.com", "smtp.new.example"))
    else:
        email = json.loads((ws / "config" / "external.email.json").read_text())
        set_config(ws, "external.email", {**email, "starttls": {"enable": True}})
    result = promote(ws, "run", "--plan", str(out), env=env)
    assert result.exit_code == 3, result.output
    assert "the plan is stale" in result.stderr and "nothing was changed" in result.stderr
    assert SECRET not in result.output


def _json_plan(root: Path, to: str = "prod", env: dict[str, str] | None = None) -> tuple[int, dict]:  # type: ignore[type-arg]
    result = promote(root, "plan", "--to", to, "--format", "json", env=env)
    return result.exit_code, json.loads(result.stdout)


def _stage(plan: dict, env: str) -> dict:  # type: ignore[type-arg]
    (found,) = [s for s in plan["stages"] if s["env"] == env]
    return found  # type: ignore[no-any-return]


def test_a_mistyped_typed_esv_blocks_only_its_stage(tmp_path: Path) -> None:
    staging = env_yaml("staging", port="58x", ssl="true")
    root = write_workspace(tmp_path / "ws", envs=default_envs(staging=staging))
    code, plan = _json_plan(root, env={**ENVIRON, "PROD_SMTP_PASSWORD": "p"})
    assert code == 3
    assert [(s["env"], s["status"]) for s in plan["stages"]] == [
        ("dev", "changes"),
        ("staging", "blocked"),
        ("prod", "changes"),
    ]
    (error,) = _stage(plan, "staging")["errors"]
    assert error["location"] == "environments/staging.yaml"
    assert error["path"] == "variables.esv-email-provider-port"
    assert "58x" in error["text"] and "int" in error["text"]


def test_an_unset_secret_source_and_an_unknown_kind_block_their_stages(tmp_path: Path) -> None:
    prod = env_yaml("prod", port="465", ssl="true").replace("kind: local", "kind: nope")
    root = write_workspace(tmp_path / "ws", envs=default_envs(prod=prod))
    env = {k: v for k, v in ENVIRON.items() if k != "STAGING_SMTP_PASSWORD"}
    code, plan = _json_plan(root, env=env)
    assert code == 3
    assert [s["status"] for s in plan["stages"]] == ["changes", "blocked", "blocked"]
    (unset,) = _stage(plan, "staging")["errors"]
    assert unset["location"] == "environments/staging.yaml"
    assert unset["path"] == "secrets.esv-email-provider-password"
    assert "STAGING_SMTP_PASSWORD" in unset["text"]
    kinds = _stage(plan, "prod")["errors"]
    assert [(e["location"], e["path"]) for e in kinds][0] == (
        "environments/prod.yaml",
        "tenant.kind",
    )


def test_an_unreachable_tenant_blocks_its_stage(tmp_path: Path) -> None:
    staging = (
        "tenant:\n  kind: aic\n  url: http://127.0.0.1:9\n  token: {env: STAGING_TOKEN}\n"
        + env_yaml("staging", port="465", ssl="true").split("protected: false\n", 1)[1]
    )
    envs = {"dev": env_yaml("dev"), "staging": staging}
    root = write_workspace(tmp_path / "ws", envs=envs, chain=["dev", "staging"])
    code, plan = _json_plan(root, "staging", env={**ENVIRON, "STAGING_TOKEN": "t0k3n-unseen"})
    assert code == 3
    assert [s["status"] for s in plan["stages"]] == ["changes", "blocked"]
    (error,) = _stage(plan, "staging")["errors"]
    assert (error["location"], error["path"]) == ("environments/staging.yaml", "tenant")
    assert "cannot be opened or read" in error["text"] and "t0k3n-unseen" not in error["text"]


@pytest.mark.parametrize("problem", ["config JSON", "promote.yaml", "unknown --to"])
def test_a_whole_workspace_problem_is_still_one_json_object(tmp_path: Path, problem: str) -> None:
    root = write_workspace(tmp_path / "ws")
    to = "prod"
    if problem == "config JSON":
        (root / "config" / "broken.json").write_text("{not json")
    elif problem == "promote.yaml":
        (root / "promote.yaml").write_text("chain: [dev, nowhere]\n")
    else:
        to = "prdo"
    result = promote(root, "plan", "--to", to, "--format", "json")
    assert result.exit_code == 3
    data = json.loads(result.stdout)
    assert data["format"] == "promote.plan/1" and data["to"] == to and data["stages"] == []
    assert data["errors"] and all(e["text"] for e in data["errors"])
    assert result.stderr.startswith("error: ")
