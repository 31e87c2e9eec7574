"""End to end through the CLI on local tenants: plan, run, status, history, rollback.

Every test asserts the exit code and what went to stdout and stderr.
"""

from __future__ import annotations

import io
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from promote.cli import Context, cli, pass_context
from promote.state.journal import run_lock, unfinished_runs
from promote.state.local import LocalStore
from promote.tenants.local import LocalTenant
from tests.promote.engine.workspaces import (
    ENVIRON,
    SECRET,
    WELCOME,
    default_envs,
    env_yaml,
    faulty_opener,
    set_config,
    write_workspace,
)


def promote(root: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    runner = CliRunner()
    return runner.invoke(cli, ["--workspace", str(root), *args], env=env or ENVIRON)


def tenant(root: Path, env: str) -> LocalTenant:
    return LocalTenant(env, root / ".promote" / "tenants" / env, mutable=env == "dev")


def held_config(root: Path, env: str) -> dict[str, Any]:
    t = tenant(root, env)
    try:
        return t.read_config(sorted(t.list_config_ids()))
    finally:
        t.close()


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return write_workspace(tmp_path / "ws")


# -- plan -------------------------------------------------------------------------------


def test_plan_text_shows_every_stage_of_the_walk_in_order(ws: Path) -> None:
    result = promote(ws, "plan", "--to", "staging")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert out.index("dev <- config: changes") < out.index("staging <- dev: changes")
    assert "prod" not in out
    assert "+ external.email" in out
    assert "+ esv-email-provider-password (secret)" in out
    assert "Summary: 2 with changes, 0 in sync, 0 blocked." in out
    assert result.stderr == ""


def test_plan_json_is_spec_4_2(ws: Path) -> None:
    result = promote(ws, "plan", "--to", "prod", "--format", "json")
    assert result.exit_code == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["format"] == "promote.plan/1"
    assert plan["to"] == "prod"
    stages = plan["stages"]
    assert [(s["env"], s["source"], s["status"]) for s in stages] == [
        ("dev", "config", "changes"),
        ("staging", "dev", "changes"),
        ("prod", "staging", "changes"),
    ]
    dev = stages[0]
    assert dev["missing_esvs"] == [] and dev["errors"] == []
    assert dev["restart"] is True
    (email,) = dev["config_changes"]
    assert email["object"] == "external.email" and email["action"] == "add"
    paths = {c["path"]: c for c in email["changes"]}
    assert "before" not in paths["host"]
    assert paths["host"]["after"] == "&{esv.email.provider.host}"
    secret = [c for c in dev["esv_changes"] if c["kind"] == "secret"]
    assert secret == [
        {"id": "esv-email-provider-password", "kind": "secret", "action": "add", "type": "string"}
    ]
    assert SECRET not in result.stdout


def test_plan_markdown_has_a_summary_table_and_collapsed_details(ws: Path) -> None:
    result = promote(ws, "plan", "--to", "staging", "--format", "markdown")
    assert result.exit_code == 0, result.stderr
    md = result.stdout
    assert "| Environment | Source | Status |" in md
    assert "| `dev` | `config` | 🟡 changes |" in md
    assert md.count("<details>") == 2 and md.count("</details>") == 2
    assert "`host`" in md


def test_plan_out_writes_the_file_and_says_so_on_stderr(ws: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    result = promote(ws, "plan", "--to", "staging", "--format", "json", "--out", str(out))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert f"plan written to {out}" in result.stderr
    assert json.loads(out.read_text())["to"] == "staging"


def test_detailed_exitcode_is_5_with_changes_and_0_without(ws: Path) -> None:
    assert promote(ws, "plan", "--to", "staging", "--detailed-exitcode").exit_code == 5
    assert promote(ws, "run", "--to", "staging").exit_code == 0
    result = promote(ws, "plan", "--to", "staging", "--detailed-exitcode")
    assert result.exit_code == 0
    assert "Summary: 0 with changes, 2 in sync, 0 blocked." in result.stdout


def test_plan_changes_nothing(ws: Path) -> None:
    promote(ws, "plan", "--to", "prod")
    assert held_config(ws, "dev") == {}
    assert not (ws / ".promote" / "history.jsonl").exists()


def test_plan_status_and_history_on_a_fresh_workspace_create_only_the_fingerprint_key(
    ws: Path,
) -> None:
    env = {**ENVIRON, "PROD_SMTP_PASSWORD": "p"}
    for fmt in ("text", "markdown", "json"):
        result = promote(ws, "plan", "--to", "prod", "--format", fmt, env=env)
        assert result.exit_code == 0, result.stderr
        assert result.stderr == "" and "staging" in result.stdout
    result = promote(ws, "status", env=env)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.startswith("dev: differs from config (external.email)\n")
    result = promote(ws, "history", env=env)
    assert (result.exit_code, result.stdout, result.stderr) == (0, "no history yet\n", "")
    # The plan pins the secrets it would write with keyed fingerprints (SPEC 4.4): the key is
    # the one thing created; no tenant files, no other directories.
    assert [p.name for p in (ws / ".promote").iterdir()] == ["fingerprint.key"]
    assert (ws / ".promote" / "fingerprint.key").stat().st_mode & 0o777 == 0o600

    # with some environments written, looking at the others still creates nothing there
    assert promote(ws, "run", "--to", "dev", env=env).exit_code == 0
    promote(ws, "plan", "--to", "prod", env=env)
    promote(ws, "status", env=env)
    assert sorted(p.name for p in (ws / ".promote" / "tenants").iterdir()) == ["dev"]


# -- run --------------------------------------------------------------------------------


def test_run_to_staging_applies_dev_then_staging_and_leaves_prod(ws: Path) -> None:
    result = promote(ws, "run", "--to", "staging")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "dev: applied\nstaging: applied\n"
    assert held_config(ws, "dev")["external.email"]["host"] == "&{esv.email.provider.host}"
    assert held_config(ws, "staging") == held_config(ws, "dev")
    assert held_config(ws, "prod") == {}
    staging = tenant(ws, "staging")
    variables = staging.list_variables()
    staging.close()
    assert variables["esv-email-provider-host"].value == "smtp.staging.example.com"
    assert all(v.loaded for v in variables.values())


def test_run_again_skips_stages_in_sync(ws: Path) -> None:
    promote(ws, "run", "--to", "staging")
    result = promote(ws, "run", "--to", "staging")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "dev: in sync (skipped)\nstaging: in sync (skipped)\n"


def test_a_changed_value_of_one_environment_applies_only_that_stage(ws: Path) -> None:
    promote(ws, "run", "--to", "staging")
    (ws / "environments" / "staging.yaml").write_text(
        env_yaml("staging", host="smtp2.staging.example.com", port="465", ssl="true")
    )
    plan = json.loads(promote(ws, "plan", "--to", "staging", "--format", "json").stdout)
    assert [s["status"] for s in plan["stages"]] == ["in-sync", "changes"]
    assert plan["stages"][1]["esv_changes"] == [
        {
            "id": "esv-email-provider-host",
            "kind": "variable",
            "action": "modify",
            "type": "string",
            "before": "smtp.staging.example.com",
            "after": "smtp2.staging.example.com",
        }
    ]
    assert plan["stages"][1]["config_changes"] == []
    effective = plan["stages"][1]["effective_changes"]
    assert effective[0]["changes"] == [
        {"path": "host", "before": "smtp.staging.example.com", "after": "smtp2.staging.example.com"}
    ]
    result = promote(ws, "run", "--to", "staging")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "dev: in sync (skipped)\nstaging: applied\n"


def test_a_config_change_walks_up_by_promotion(ws: Path) -> None:
    promote(ws, "run", "--to", "staging")
    set_config(ws, "emailTemplate/welcome", WELCOME)
    result = promote(ws, "plan", "--to", "staging")
    assert "config (by promotion from dev): 1 to add" in result.stdout
    result = promote(ws, "run", "--to", "staging")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "dev: applied\nstaging: applied\n"
    assert "emailTemplate/welcome" in held_config(ws, "staging")
    staging = tenant(ws, "staging")
    reports = staging.reports()
    staging.close()
    assert [r.type for r in reports] == ["promotion", "promotion"]


def test_protected_environment_needs_approval_and_nothing_changes(ws: Path) -> None:
    result = promote(ws, "run", "--to", "prod")
    assert result.exit_code == 3
    assert result.stdout == ""
    assert "prod needs approval" in result.stderr and "--approve prod" in result.stderr
    assert "nothing was changed" in result.stderr
    assert held_config(ws, "dev") == {}
    plan = promote(ws, "plan", "--to", "prod").stdout
    assert "prod <- staging: changes (protected: run needs --approve prod)" in plan
    result = promote(ws, "run", "--to", "prod", "--approve", "prod")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "dev: applied\nstaging: applied\nprod: applied\n"
    assert "prod <- staging: in-sync\n" in promote(ws, "plan", "--to", "prod").stdout


def test_unknown_to_is_refused_naming_the_chain(ws: Path) -> None:
    for command in ("plan", "run"):
        result = promote(ws, command, "--to", "qa")
        assert result.exit_code == 3
        assert "unknown environment 'qa'" in result.stderr
        assert "dev -> staging -> prod" in result.stderr
        assert result.stdout == ""


def test_approve_of_an_environment_outside_the_chain_is_refused(ws: Path) -> None:
    result = promote(ws, "run", "--to", "staging", "--approve", "qa")
    assert result.exit_code == 3
    assert "--approve names environments not in the chain: qa" in result.stderr
    assert held_config(ws, "dev") == {}


def test_environment_file_outside_the_chain_is_an_error(tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "ws", chain=["dev", "staging"])
    result = promote(root, "plan", "--to", "staging")
    assert result.exit_code == 3
    assert "prod" in result.stderr
    assert result.stdout == ""


def test_chain_with_duplicates_is_an_error(tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "ws", chain=["dev", "staging", "dev", "prod"])
    result = promote(root, "run", "--to", "staging")
    assert result.exit_code == 3
    assert "dev" in result.stderr and "chain" in result.stderr
    assert not (root / ".promote" / "tenants").exists()


def test_missing_esv_blocks_every_stage_before_anything_changes(ws: Path) -> None:
    email = json.loads((ws / "config" / "external.email.json").read_text())
    email["replyTo"] = "&{esv.email.reply.to}"
    set_config(ws, "external.email", email)
    (ws / "environments" / "dev.yaml").write_text(
        env_yaml("dev", extra_variables={"esv-email-reply-to": "r@dev.example.com"})
    )
    result = promote(ws, "plan", "--to", "staging", "--format", "json")
    assert result.exit_code == 3
    plan = json.loads(result.stdout)
    assert [s["status"] for s in plan["stages"]] == ["changes", "blocked"]
    assert plan["stages"][1]["missing_esvs"] == ["esv-email-reply-to"]
    assert "esv-email-reply-to" in result.stderr
    result = promote(ws, "run", "--to", "staging")
    assert result.exit_code == 3
    assert "blocked by checks in staging; nothing was changed" in result.stderr
    assert "external.email" in result.stderr and "replyTo" in result.stderr
    assert held_config(ws, "dev") == {}


def test_unreadable_secret_is_named_by_source_not_value(ws: Path) -> None:
    environ = {k: v for k, v in ENVIRON.items() if k != "STAGING_SMTP_PASSWORD"}
    result = promote(ws, "run", "--to", "staging", env=environ)
    assert result.exit_code == 3
    assert "STAGING_SMTP_PASSWORD" in result.stderr
    assert "esv-email-provider-password" in result.stderr
    assert SECRET not in result.stderr + result.stdout
    assert held_config(ws, "dev") == {}


def _hook(argv: list[str], timeout: float = 30) -> str:
    return f"restart:\n  command: {json.dumps(argv)}\n  timeout: {timeout}\n"


def test_failing_restart_hook_stops_the_walk_and_names_each_state(tmp_path: Path) -> None:
    hook = _hook([sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"])
    root = write_workspace(
        tmp_path / "ws",
        envs=default_envs(staging=env_yaml("staging", port="465", ssl="true", restart=hook)),
    )
    result = promote(root, "run", "--to", "prod", "--approve", "prod")
    assert result.exit_code == 1
    assert result.stdout == ""
    # The environment is named once: not again at the head of the hook's own message.
    assert result.stderr == (
        f"error: staging failed: restart hook {sys.executable} exited with status 3: boom\n"
        "  dev: applied\n"
        "  staging: partially applied (ESVs written: esv-email-provider-from, "
        "esv-email-provider-host, esv-email-provider-port, esv-email-provider-use-ssl, "
        "esv-email-provider-username, esv-email-provider-password; config promoted; "
        "failed during the restart)\n"
        "  prod: untouched\n"
    )
    assert held_config(root, "prod") == {}

    # What the failed stage wrote is in the history, marked failed ...
    records = json.loads(promote(root, "history", "--env", "staging", "--format", "json").stdout)
    (failed,) = records["records"]
    assert failed["failed"] is True and failed["restarted"] is False
    assert failed["config_added"] == ["external.email"]
    assert "modify secret esv-email-provider-password" not in failed["esvs"]
    assert "add secret esv-email-provider-password" in failed["esvs"] and len(failed["esvs"]) == 6
    assert failed["notes"] == [
        "partially applied (ESVs written: esv-email-provider-from, esv-email-provider-host, "
        "esv-email-provider-port, esv-email-provider-use-ssl, esv-email-provider-username, "
        "esv-email-provider-password; config promoted; failed during the restart)"
    ]
    # ... said once: "(failed)" on the record's line, how far it got in its note.
    history = promote(root, "history", "--env", "staging")
    assert history.exit_code == 0 and history.stderr == ""
    assert history.stdout == (
        f"{failed['time']}  staging  promote (failed) from dev  run {failed['run_id']}: "
        "config +1 ~0 -0, 6 ESV changes\n"
        f"    ESVs: {', '.join(failed['esvs'])}\n"
        f"    {failed['notes'][0]}\n"
    )
    status = promote(root, "status")
    assert status.exit_code == 0 and status.stderr == ""
    staging = status.stdout.split("staging: ", 1)[1].split("prod: ", 1)[0]
    assert staging == (
        "in sync with dev\n"
        "  pending ESVs (not loaded until a restart): esv-email-provider-from, "
        "esv-email-provider-host, esv-email-provider-password, esv-email-provider-port, "
        "esv-email-provider-use-ssl, esv-email-provider-username\n"
        f"  last promote (failed): {failed['time']} from dev (run {failed['run_id']}; "
        "config +1 ~0 -0, 6 ESV changes)\n"
    )
    assert "drift" not in status.stdout
    # ... and the run that finishes the stage records the restart it did.
    (root / "environments" / "staging.yaml").write_text(env_yaml("staging", port="465", ssl="true"))
    result = promote(root, "run", "--to", "staging")
    assert result.exit_code == 0, result.stderr
    records = json.loads(promote(root, "history", "--env", "staging", "--format", "json").stdout)
    first, second = records["records"]
    assert first == failed
    assert second["failed"] is False and second["restarted"] is True and second["esvs"] == []
    assert SECRET not in (root / ".promote" / "history.jsonl").read_text()


def test_restart_hook_timing_out_is_a_failure(tmp_path: Path) -> None:
    hook = _hook([sys.executable, "-c", "import time; time.sleep(10)"], timeout=0.5)
    root = write_workspace(tmp_path / "ws", envs=default_envs(dev=env_yaml("dev", restart=hook)))
    result = promote(root, "run", "--to", "staging")
    assert result.exit_code == 1
    assert "did not finish within 0.5s" in result.stderr
    assert "  dev: partially applied (ESVs written:" in result.stderr
    assert "  staging: untouched" in result.stderr


def test_a_second_run_while_one_holds_the_lock_exits_4(ws: Path) -> None:
    with run_lock(LocalStore(ws / ".promote"), env="staging"):
        result = promote(ws, "run", "--to", "staging")
        plan = promote(ws, "plan", "--to", "staging")
    assert plan.exit_code == 0
    assert plan.stderr == "note: another promote run is in progress in this workspace\n"
    assert result.exit_code == 4
    assert "locked by another promote run" in result.stderr
    assert "nothing" not in result.stdout
    assert held_config(ws, "dev") == {}


def test_state_dir_that_is_not_a_directory_is_a_clear_error(ws: Path) -> None:
    (ws / ".promote").write_text("not a directory")
    result = promote(ws, "run", "--to", "staging")
    assert result.exit_code == 1
    assert "cannot create" in result.stderr and ".promote" in result.stderr
    assert "Traceback" not in result.stderr


# -- run --plan -------------------------------------------------------------------------


def test_run_plan_applies_the_saved_plan(ws: Path, tmp_path: Path) -> None:
    saved = tmp_path / "plan.json"
    promote(ws, "plan", "--to", "staging", "--format", "json", "--out", str(saved))
    result = promote(ws, "run", "--plan", str(saved))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "dev: applied\nstaging: applied\n"


def test_run_plan_refuses_when_a_tenant_changed(ws: Path, tmp_path: Path) -> None:
    saved = tmp_path / "plan.json"
    promote(ws, "plan", "--to", "staging", "--format", "json", "--out", str(saved))
    promote(ws, "run", "--to", "dev")
    result = promote(ws, "run", "--plan", str(saved))
    assert result.exit_code == 3
    assert "the plan is stale" in result.stderr
    assert "dev: the tenant changed since the plan was made" in result.stderr
    assert held_config(ws, "staging") == {}


def test_run_plan_refuses_when_a_secret_changed(ws: Path, tmp_path: Path) -> None:
    saved = tmp_path / "plan.json"
    promote(ws, "plan", "--to", "dev", "--format", "json", "--out", str(saved))
    environ = {**ENVIRON, "DEV_SMTP_PASSWORD": SECRET + "-rotated"}
    result = promote(ws, "run", "--plan", str(saved), env=environ)
    assert result.exit_code == 3
    assert (
        "dev: the workspace (config/, its environment file or a secret's value) changed"
        in result.stderr
    )
    assert SECRET not in result.stderr


def test_run_plan_with_a_file_that_is_not_a_plan(ws: Path, tmp_path: Path) -> None:
    bad = tmp_path / "plan.json"
    bad.write_text("{not json")
    result = promote(ws, "run", "--plan", str(bad))
    assert result.exit_code == 3
    assert "is not a JSON plan" in result.stderr
    bad.write_text(
        '{"format": "promote.plan/1", "to": "staging",'
        ' "stages": [{"env": "dev", "fingerprint": 5}, "x"]}'
    )
    result = promote(ws, "run", "--plan", str(bad))
    assert result.exit_code == 3
    assert "the plan is stale" in result.stderr
    assert "the plan walks dev but the chain now walks dev, staging" in result.stderr
    bad.write_text('{"format": "other"}')
    result = promote(ws, "run", "--plan", str(bad))
    assert result.exit_code == 3
    assert "not a promote plan" in result.stderr


def test_run_without_to_or_plan_is_a_usage_error(ws: Path) -> None:
    result = promote(ws, "run")
    assert result.exit_code == 2
    assert "give --to ENV or --plan FILE" in result.stderr
    assert promote(ws, "plan", "--to", "dev", "--format", "xml").exit_code == 2


# -- status, history, rollback ------------------------------------------------------------


def test_status_history_and_rollback(ws: Path) -> None:
    result = promote(ws, "status")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        "dev: differs from config (external.email)\n"
        "  never promoted by promote\n"
        "staging: same as dev, but dev is not in sync with the stages below it\n"
        "  never promoted by promote\n"
        "prod: same as staging, but staging is not in sync with the stages below it\n"
        "  never promoted by promote\n"
    )
    assert result.stderr == ""

    promote(ws, "run", "--to", "staging")
    set_config(ws, "emailTemplate/welcome", WELCOME)
    promote(ws, "run", "--to", "staging")
    result = promote(ws, "status")
    assert result.exit_code == 0
    assert "staging: in sync with dev" in result.stdout
    assert "prod: differs from staging" in result.stdout
    assert "drift" not in result.stdout

    result = promote(ws, "rollback", "--env", "staging")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("staging: rolled back (config +0 ~0 -1")
    assert "emailTemplate/welcome" not in held_config(ws, "staging")

    result = promote(ws, "history", "--env", "staging", "--format", "json")
    assert result.exit_code == 0
    records = json.loads(result.stdout)["records"]
    assert [r["action"] for r in records] == ["promote", "promote", "rollback"]
    assert records[-1]["config_deleted"] == ["emailTemplate/welcome"]
    text = promote(ws, "history").stdout
    assert text.count(" dev  promote from config") == 2
    assert "staging  rollback" in text

    status = json.loads(promote(ws, "status", "--format", "json").stdout)
    staging = status["environments"][1]
    assert staging["in_sync"] is False and staging["differing"] == ["emailTemplate/welcome"]
    assert staging["drift"] is False


def test_status_reports_drift_and_pending_esvs(ws: Path) -> None:
    promote(ws, "run", "--to", "staging")
    t = tenant(ws, "dev")
    t.put_config("external.email", {"host": "changed by hand"})
    from esv.secrets import SecretValue
    from promote.tenants.base import EsvWrite

    t.write_esvs([EsvWrite("esv-email-provider-password", "secret", "modify", SecretValue("x"))])
    t.close()
    result = promote(ws, "status")
    assert result.exit_code == 0
    # SPEC 4.5: what changed outside promote, compared with the record of what it applied.
    assert "  changed outside promote: " in result.stdout
    assert "    ! external.email host: '&{esv.email.provider.host}' -> 'changed by hand'\n" in (
        result.stdout
    )
    assert "    ! external.email port: " in result.stdout
    assert "    ! esv-email-provider-password (secret): a new version (2, promote wrote 1)" in (
        result.stdout
    )
    assert "pending ESVs (not loaded until a restart): esv-email-provider-password" in (
        result.stdout
    )


def test_history_of_unknown_environment_and_empty_history(ws: Path) -> None:
    result = promote(ws, "history", "--env", "qa")
    assert result.exit_code == 3
    assert "unknown environment 'qa'" in result.stderr
    result = promote(ws, "history")
    assert result.exit_code == 0
    assert result.stdout == "no history yet\n"


def test_rollback_of_unknown_environment_is_refused(ws: Path) -> None:
    result = promote(ws, "rollback", "--env", "qa")
    assert result.exit_code == 3
    assert "unknown environment 'qa'; the chain is dev -> staging -> prod" in result.stderr
    assert result.stdout == ""


def test_rollback_without_a_promotion_fails_clearly(ws: Path) -> None:
    result = promote(ws, "rollback", "--env", "staging")
    assert result.exit_code == 3
    assert "Traceback" not in result.stderr
    assert result.stderr == (
        "error: staging: nothing to roll back: no promotion into this environment that has "
        "not been rolled back already; nothing was changed\n"
    )


def test_rollback_of_a_protected_environment_with_nothing_to_undo_asks_nothing(
    ws: Path,
) -> None:
    promote(ws, "run", "--to", "prod", "--approve", "prod")
    assert promote(ws, "rollback", "--env", "prod", "--approve", "prod").exit_code == 0
    result = promote(ws, "rollback", "--env", "prod")
    assert result.exit_code == 3
    assert "nothing to roll back" in result.stderr
    assert "needs approval" not in result.stderr


def test_rollback_approve_names_are_checked(ws: Path) -> None:
    promote(ws, "run", "--to", "prod", "--approve", "prod")
    result = promote(ws, "rollback", "--env", "prod", "--approve", "prdo")
    assert result.exit_code == 3
    assert result.stderr.startswith(
        "error: --approve names environments not in the chain: prdo; the chain is "
    )


# -- real file-system faults (a subprocess: the installed entry point) ---------------------


def _entry_point() -> str:
    return str(Path(sys.executable).parent / "promote")


@pytest.fixture
def shared_ws() -> Iterator[Path]:
    """A workspace an unprivileged user can reach (pytest's tmp_path is private to root)."""
    base = Path(tempfile.mkdtemp(prefix="promote-engine-"))
    os.chmod(base, 0o755)
    root = write_workspace(base / "ws")
    for path in [root, *root.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    yield root
    for path in base.rglob("*"):
        if path.is_dir():
            os.chmod(path, 0o755)
    shutil.rmtree(base)


def _as_nobody(root: Path, *args: str) -> dict[str, Any]:
    """``promote`` run by an unprivileged user: forked, setuid when we are root (exec is
    not possible: the interpreter lives under root's private home)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: drop root, run the CLI, report, exit without pytest's cleanup
        try:
            os.close(read)
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
            result = promote(root, *args)
            report = {"code": result.exit_code, "out": result.stdout, "err": result.stderr}
        except BaseException as error:  # noqa: BLE001 - reported to the parent
            report = {"code": -1, "out": "", "err": f"unexpected {error!r}"}
        os.write(write, json.dumps(report).encode())
        os._exit(0)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.close(read)
    os.waitpid(pid, 0)
    return dict(json.loads(b"".join(chunks)))


def test_read_only_state_dir_is_a_clear_error_and_nothing_changes(shared_ws: Path) -> None:
    (shared_ws / ".promote").mkdir(mode=0o555)
    done = _as_nobody(shared_ws, "run", "--to", "staging")
    assert done["code"] == 1, done["err"]
    assert done["out"] == ""
    assert done["err"] == (
        f"error: cannot create {shared_ws / '.promote' / 'run.lock'}: Permission denied; "
        "nothing was changed; check that the directory is writable and the disk has free space\n"
    )
    assert list((shared_ws / ".promote").iterdir()) == []


def _no_file_growth() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


def test_writes_that_fail_like_a_full_disk_give_a_clear_error(ws: Path) -> None:
    done = subprocess.run(
        [_entry_point(), "--workspace", str(ws), "run", "--to", "staging"],
        env={**ENVIRON, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        preexec_fn=_no_file_growth,
    )
    # The first write is the fingerprint key, made while planning (the plan pins the secrets
    # it would write), before any change.
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == (
        f"error: cannot create {ws / '.promote' / 'fingerprint.key'}: File too large; nothing "
        "was changed; check that the directory is writable and the disk has free space\n"
    )
    assert not (ws / ".promote" / "tenants").exists()


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_approval_is_asked_and_progress_shown_only_on_a_terminal() -> None:
    from promote.cli.engine_cmds import _ambient

    both = _ambient(_Stream(True), _Stream(True))
    assert both.confirm is not None and both.progress is not None
    piped_in = _ambient(_Stream(False), _Stream(True))
    assert piped_in.confirm is None and piped_in.progress is not None
    piped_err = _ambient(_Stream(True), _Stream(False))
    assert piped_err.confirm is None and piped_err.progress is None


def test_ctrl_c_during_a_run_exits_130_and_the_next_run_finishes_it(tmp_path: Path) -> None:
    interrupt = "import os, signal, time; os.kill(os.getppid(), signal.SIGINT); time.sleep(10)"
    hook = _hook([sys.executable, "-c", interrupt])
    root = write_workspace(
        tmp_path / "ws",
        envs=default_envs(staging=env_yaml("staging", port="465", ssl="true", restart=hook)),
    )
    result = promote(root, "run", "--to", "staging")
    assert result.exit_code == 130, result.stderr
    assert result.stdout == ""
    assert "interrupted\n  dev: applied\n  staging: partially applied (" in result.stderr
    assert "; interrupted during the restart)" in result.stderr
    assert "failed during" not in result.stderr
    assert "the next 'promote run' finishes this run" in result.stderr
    (journal,) = unfinished_runs(LocalStore(root / ".promote"))

    (root / "environments" / "staging.yaml").write_text(env_yaml("staging", port="465", ssl="true"))
    result = promote(root, "run", "--to", "staging")
    assert result.exit_code == 0, result.stderr
    assert "found unfinished run" in result.stderr
    assert "stopped in staging at step restart" in result.stderr
    assert "finished it (applied: staging)" in result.stderr
    assert result.stdout == (
        f"dev: in sync (skipped)\nstaging: finished (run {journal.run_id} recovered)\n"
    )


def test_status_of_a_tenant_that_cannot_be_opened_does_not_hide_the_others(
    tmp_path: Path,
) -> None:
    prod = env_yaml("prod", port="465", ssl="true", protected=True).replace(
        "tenant:\n  kind: local\n",
        "tenant:\n  kind: aic\n  url: http://127.0.0.1:9\n  token: {env: PROD_TOKEN}\n",
    )
    root = write_workspace(tmp_path / "ws", envs=default_envs(prod=prod))
    promote(root, "run", "--to", "staging")
    result = promote(root, "status")
    assert result.exit_code == 1
    assert "dev: in sync with config" in result.stdout
    assert "staging: in sync with dev" in result.stdout
    assert "prod: cannot be read: " in result.stdout and "PROD_TOKEN" in result.stdout
    assert result.stderr == (
        "error: could not read prod; the status above is incomplete for them "
        "(see each one's note)\n"
    )
    json_result = promote(root, "status", "--format", "json")
    assert json_result.exit_code == 1
    data = json.loads(json_result.stdout)
    assert data["environments"][2]["in_sync"] is None
    assert data["environments"][2]["readable"] is False
    assert data["environments"][1]["readable"] is True
    assert "PROD_TOKEN" in data["environments"][2]["note"]


def test_status_prints_an_unreadable_tenants_error_once(tmp_path: Path) -> None:
    staging = env_yaml("staging", port="465", ssl="true").replace(
        "tenant:\n  kind: local\n",
        "tenant:\n  kind: aic\n  url: http://127.0.0.1:9\n  token: {env: STAGING_T}\n",
    )
    root = write_workspace(tmp_path / "ws", envs=default_envs(staging=staging))
    result = promote(root, "status")
    assert result.exit_code == 1
    # The whole error on staging's line; prod, compared with staging, refers to it.
    assert result.stdout == (
        "dev: differs from config (external.email)\n"
        "  never promoted by promote\n"
        "staging: cannot be read: environments/staging.yaml: 1 problem - "
        "environments/staging.yaml: tenant.token: environment variable STAGING_T is not set "
        "(set it, or point tenant.token at another source)\n"
        "  never promoted by promote\n"
        "prod: cannot compare: staging cannot be read (above)\n"
        "  never promoted by promote\n"
    )
    assert result.stderr == (
        "error: could not read staging; the status above is incomplete for them "
        "(see each one's note)\n"
    )


def test_status_exits_1_when_no_tenant_can_be_read_after_printing_every_one(
    tmp_path: Path,
) -> None:
    def aic(name: str, protected: bool = False) -> str:
        return env_yaml(name, port="465", ssl="true", protected=protected).replace(
            "tenant:\n  kind: local\n",
            "tenant:\n  kind: aic\n  url: http://127.0.0.1:9\n"
            f"  token: {{env: {name.upper()}_T}}\n",
        )

    envs = default_envs(
        dev=aic("dev"),
        staging=aic("staging"),
        prod=aic("prod", protected=True),
    )
    root = write_workspace(tmp_path / "ws", envs=envs)
    result = promote(root, "status")
    assert result.exit_code == 1
    for env in ("dev", "staging", "prod"):
        assert f"{env}: cannot be read: " in result.stdout
    assert result.stderr == (
        "error: could not read dev, staging, prod; the status above is incomplete for them "
        "(see each one's note)\n"
    )


def test_history_and_status_note_a_cut_off_history_line_on_stderr(ws: Path) -> None:
    promote(ws, "run", "--to", "dev")
    history = ws / ".promote" / "history.jsonl"
    with history.open("a") as file:
        file.write('{"time": "2030-')
    note = f"note: {history}: line 2 is incomplete (a write was cut off); skipped\n"
    result = promote(ws, "history")
    assert result.exit_code == 0
    assert result.stderr == note
    assert " dev  promote from config" in result.stdout
    result = promote(ws, "status")
    assert result.exit_code == 0
    assert result.stderr == note
    assert "dev: in sync with config" in result.stdout


# -- an unexpected error inside a tenant (a bug, an OSError) --------------------------------


def _run_with_faulty_staging(root: Path, *, debug: bool) -> Result:
    """``promote run --to prod --approve prod`` (the command's own body and the one error
    handler) with staging's tenant raising ValueError("secret-text") mid-write."""
    from promote.cli import handle_errors
    from promote.cli.engine_cmds import _run

    opener = faulty_opener("staging", "promote_from", ValueError("secret-text"))

    @click.command()
    @pass_context
    def faulty_run(ctx: Context) -> None:
        handle_errors(ctx, lambda: _run(ctx, "prod", ("prod",), None, opener=opener))

    return CliRunner().invoke(faulty_run, [], obj=Context(root, debug), env=ENVIRON)


def test_unexpected_error_mid_run_prints_every_state_and_no_value(ws: Path) -> None:
    result = _run_with_faulty_staging(ws, debug=False)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(
        "error: staging failed: internal error (ValueError); this is a bug in promote (rerun "
        "with --debug for the traceback and report it); the next 'promote run' finishes this "
        "run\n  dev: applied\n  staging: partially applied (ESVs written: "
    )
    assert result.stderr.endswith("; failed during the config step)\n  prod: untouched\n")
    assert "secret-text" not in result.output
    assert "Traceback" not in result.stderr

    debug = _run_with_faulty_staging(ws, debug=True)
    assert debug.exit_code == 1
    assert "ValueError: secret-text" in debug.stderr  # --debug: the original traceback
    assert "direct cause of the following exception" in debug.stderr
    assert "found unfinished run" in debug.stderr  # the first run's journal was kept

    first, _ = unfinished_runs(
        LocalStore(ws / ".promote")
    )  # oldest first, as the next run finishes them
    result = promote(ws, "run", "--to", "prod", "--approve", "prod")
    assert result.exit_code == 0, result.stderr
    assert "finished it (applied: staging, prod)" in result.stderr
    assert result.stdout == (
        f"dev: in sync (skipped)\nstaging: finished (run {first.run_id} recovered)\n"
        f"prod: finished (run {first.run_id} recovered)\n"
    )


def test_rollback_of_the_mutable_first_stage_says_direct_writes_keep_no_rollback_point(
    ws: Path,
) -> None:
    promote(ws, "run", "--to", "staging")
    assert " dev  promote from config" in promote(ws, "history").stdout
    before = held_config(ws, "dev")
    result = promote(ws, "rollback", "--env", "dev")
    assert result.exit_code == 3
    assert result.stdout == ""
    assert result.stderr == (
        "error: cannot roll back dev: direct writes keep no rollback point. dev receives config "
        "directly (mutable); revert config/ and run again, or roll back the stage above "
        "(promote rollback --env staging); nothing was changed\n"
    )
    assert held_config(ws, "dev") == before
    assert "rollback" not in promote(ws, "history").stdout


def test_rollback_of_a_mutable_last_stage_names_its_source(tmp_path: Path) -> None:
    envs = default_envs(prod=env_yaml("prod", port="465", ssl="true", mutable=True))
    root = write_workspace(tmp_path / "ws", envs=envs)
    result = promote(root, "rollback", "--env", "prod")
    assert result.exit_code == 3
    assert result.stdout == ""
    assert result.stderr == (
        "error: cannot roll back prod: direct writes keep no rollback point. prod receives "
        "staging's config directly (mutable); revert config/ and run again; nothing was changed\n"
    )


def test_the_approval_prompt_shows_the_summary_on_stderr_before_asking() -> None:
    from promote.cli.engine_cmds import _confirm

    @click.command()
    def ask() -> None:
        question = "prod <- staging (protected):\n  restart: yes\nok?"
        click.echo(f"answer: {_confirm(question)}")

    result = CliRunner().invoke(ask, [], input="y\n")
    assert result.exit_code == 0
    assert result.stderr == "prod <- staging (protected):\n  restart: yes\nok? [y/N]: y\n"  # echoed
    assert result.stdout == "answer: True\n"


def test_plan_of_a_secret_rotation_shows_the_effective_change_masked(ws: Path) -> None:
    promote(ws, "run", "--to", "dev")
    rotated = {**ENVIRON, "DEV_SMTP_PASSWORD": SECRET + "-rotated"}
    text = promote(ws, "plan", "--to", "dev", env=rotated)
    assert text.exit_code == 0, text.stderr
    assert "~ esv-email-provider-password (secret) changed" in text.stdout
    effective = text.stdout.split("effective values")[1]
    assert "external.email" in effective
    assert "auth.password: changed (value not shown)" in effective
    markdown = promote(ws, "plan", "--to", "dev", "--format", "markdown", env=rotated)
    assert "| `auth.password` | (not shown) | changed (value not shown) |" in markdown.stdout
    data = json.loads(promote(ws, "plan", "--to", "dev", "--format", "json", env=rotated).stdout)
    (stage,) = data["stages"]
    assert stage["config_changes"] == []
    assert stage["effective_changes"] == [
        {
            "object": "external.email",
            "action": "modify",
            "changes": [{"path": "auth.password", "before": "********", "after": "********"}],
        }
    ]
    for result in (text, markdown):
        assert SECRET not in result.output


def test_rollback_of_a_protected_environment_needs_approval_and_shows_what_it_restores(
    ws: Path,
) -> None:
    promote(ws, "run", "--to", "prod", "--approve", "prod")
    set_config(ws, "emailTemplate/welcome", WELCOME)
    promote(ws, "run", "--to", "prod", "--approve", "prod")
    before = held_config(ws, "prod")
    result = promote(ws, "rollback", "--env", "prod")
    assert result.exit_code == 3
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0].startswith("prod: rolling back its last promotion from staging (report ")
    assert lines[1:] == [
        "  restores: nothing",
        "  deletes: emailTemplate/welcome",
        "  ESVs are not rolled back: prod keeps the ESV values it holds now (change them in "
        "its environment file and run again if needed)",
        "error: prod is protected: rolling it back needs approval; review what it restores, "
        "then run again with --approve prod; nothing was changed",
    ]
    assert held_config(ws, "prod") == before
    assert "rollback" not in promote(ws, "history").stdout

    result = promote(ws, "rollback", "--env", "prod", "--approve", "prod")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "prod: rolled back (config +0 ~0 -1)\n"
    assert "  deletes: emailTemplate/welcome" in result.stderr
    assert "emailTemplate/welcome" not in held_config(ws, "prod")
    # The next rollback undoes the first promotion, which added external.email: prod is not
    # mutable, so it would be left without an email provider.
    result = promote(ws, "rollback", "--env", "prod", "--approve", "prod")
    assert result.exit_code == 0, result.stderr
    assert "  deletes: external.email\n" in result.stderr
    assert (
        "  warning: prod would be left without external.email; it is not mutable, so the "
        "built-in email provider cannot serve it: it sends no email until its next promotion\n"
    ) in result.stderr
    assert SECRET not in result.output


def test_rollback_asks_a_person_with_what_it_restores(ws: Path) -> None:
    from promote.engine.apply import Ambient, rollback
    from promote.engine.session import Tenants
    from promote.errors import BlockedError
    from promote.workspace import load_workspace

    promote(ws, "run", "--to", "prod", "--approve", "prod")
    workspace = load_workspace(ws)
    asked: list[str] = []
    notes: list[str] = []
    refuse = Ambient(environ=ENVIRON, confirm=lambda q: asked.append(q) or False)
    with Tenants(workspace, environ=ENVIRON) as ts, pytest.raises(BlockedError) as caught:
        rollback(workspace, "prod", ts, ambient=refuse, notes=notes)
    assert str(caught.value) == "prod was not rolled back (not approved); nothing was changed"
    (question,) = asked
    assert "  deletes: external.email\n" in question and "ESVs are not rolled back" in question
    assert "  warning: prod would be left without external.email" in question
    assert question.endswith("\nprod is protected; roll it back?")
    assert notes == []  # shown in the question instead
    assert "external.email" in held_config(ws, "prod")
    agree = Ambient(environ=ENVIRON, confirm=lambda q: True)
    with Tenants(workspace, environ=ENVIRON) as ts:
        record = rollback(workspace, "prod", ts, ambient=agree)
    assert record.config_deleted == ("external.email",)
    assert held_config(ws, "prod") == {}
