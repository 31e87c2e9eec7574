"""Drift on a local tenant: changes made outside promote (its stored state edited directly)
are shown per stage in every plan format and in status, put back by a run, and block the
stage under ``on_drift: block`` until ``run --accept-drift``."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from promote.cli import cli
from promote.engine.diff import ABSENT
from promote.engine.drift import find_drift, mask_secret_paths
from promote.state.applied import Applied
from promote.tenants.base import SecretState, VariableState
from tests.promote.engine.workspaces import ENVIRON, default_envs, env_yaml, write_workspace


def promote(root: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, ["--workspace", str(root), *args], env=env or ENVIRON)


def db(root: Path, env: str) -> sqlite3.Connection:
    return sqlite3.connect(root / ".promote" / "tenants" / env / "tenant.sqlite3")


def console_edit(root: Path, env: str) -> None:
    """What a person in the admin console would do: change the email host of the config
    object, a variable, and write a new version of the secret."""
    with db(root, env) as conn:
        (text,) = conn.execute("SELECT json FROM config WHERE id = 'external.email'").fetchone()
        value = json.loads(text)
        value["host"] = "smtp.console-hotfix.example.com"
        conn.execute("UPDATE config SET json = ? WHERE id = 'external.email'", (json.dumps(value),))
        conn.execute("UPDATE variables SET value = '2525' WHERE id = 'esv-email-provider-port'")
        conn.execute(
            "INSERT INTO secret_versions VALUES "
            "('esv-email-provider-password', 2, 'console-Pa55', 'now', 'ENABLED')"
        )
        conn.execute(
            "UPDATE secrets SET active_version = 2, loaded_version = 2 "
            "WHERE id = 'esv-email-provider-password'"
        )


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    envs = default_envs(staging=env_yaml("staging", port="465", ssl="true", mutable=True))
    root = write_workspace(tmp_path / "ws", envs=envs)
    assert promote(root, "run", "--to", "staging").exit_code == 0
    return root


def test_no_drift_right_after_a_run(ws: Path) -> None:
    plan = json.loads(promote(ws, "plan", "--to", "staging", "--format", "json").stdout)
    assert [s["drift"] for s in plan["stages"]] == [[], []]
    assert [s["status"] for s in plan["stages"]] == ["in-sync", "in-sync"]


def test_console_edits_are_drift_in_every_format_and_a_run_puts_them_back(ws: Path) -> None:
    console_edit(ws, "staging")
    result = promote(ws, "plan", "--to", "staging", "--format", "json", "--detailed-exitcode")
    assert result.exit_code == 5, result.output
    dev, staging = json.loads(result.stdout)["stages"]
    assert dev["drift"] == [] and dev["status"] == "in-sync"
    assert staging["status"] == "changes"
    assert staging["drift"] == [
        {
            "kind": "config",
            "object": "external.email",
            "path": "host",
            "applied": "&{esv.email.provider.host}",
            "live": "smtp.console-hotfix.example.com",
        },
        {"kind": "esv", "id": "esv-email-provider-port", "applied": "465", "live": "2525"},
        {
            "kind": "esv",
            "id": "esv-email-provider-password",
            "secret": True,
            "applied_version": 1,
            "live_version": 2,
        },
    ]
    # what a run would do to put it back
    (config,) = staging["config_changes"]
    assert config["changes"] == [
        {
            "path": "host",
            "before": "smtp.console-hotfix.example.com",
            "after": "&{esv.email.provider.host}",
        }
    ]
    esvs = {c["id"]: c for c in staging["esv_changes"]}
    assert esvs["esv-email-provider-port"]["before"] == "2525"
    assert esvs["esv-email-provider-password"]["reason"].startswith("changed outside promote")

    text = promote(ws, "plan", "--to", "staging").stdout
    assert "  changed outside promote (since it last applied here; a run puts it back):\n" in text
    assert "    ! external.email host: '&{esv.email.provider.host}' -> " in text
    assert "    ! esv-email-provider-port: '465' -> '2525'\n" in text
    assert "! esv-email-provider-password (secret): a new version (2, promote wrote 1)" in text
    markdown = promote(ws, "plan", "--to", "staging", "--format", "markdown").stdout
    assert "**⚠️ Changed outside promote**" in markdown
    assert (
        "| `esv-email-provider-password` (secret) | version 1 | version 2 (value not shown) |"
        in markdown
    )
    for output in (result.stdout, text, markdown):
        assert "console-Pa55" not in output

    status = promote(ws, "status", "--format", "json")
    staging_status = json.loads(status.stdout)["environments"][1]
    assert staging_status["drift"] is True
    assert len(staging_status["drifted"]) == 3
    assert "changed outside promote: 3" in promote(ws, "status").stdout

    applied = promote(ws, "run", "--to", "staging")
    assert applied.exit_code == 0, applied.output
    assert applied.stdout == "dev: in sync (skipped)\nstaging: applied\n"
    again = json.loads(promote(ws, "plan", "--to", "staging", "--format", "json").stdout)
    assert [s["status"] for s in again["stages"]] == ["in-sync", "in-sync"]
    assert again["stages"][1]["drift"] == []


def test_on_drift_block_needs_accept_drift(ws: Path) -> None:
    path = ws / "environments" / "staging.yaml"
    path.write_text(path.read_text() + "on_drift: block\n")
    console_edit(ws, "staging")
    plan = promote(ws, "plan", "--to", "staging", "--format", "json")
    assert plan.exit_code == 3
    staging = json.loads(plan.stdout)["stages"][1]
    assert staging["status"] == "blocked" and len(staging["drift"]) == 3
    (error,) = staging["errors"]
    assert error["location"] == "environments/staging.yaml" and error["path"] == "on_drift"
    assert "promote run --accept-drift staging" in error["text"]
    blocked = promote(ws, "run", "--to", "staging")
    assert blocked.exit_code == 3
    with db(ws, "staging") as conn:  # nothing was put back
        assert conn.execute(
            "SELECT value FROM variables WHERE id = 'esv-email-provider-port'"
        ).fetchone() == ("2525",)
    wrong = promote(ws, "run", "--to", "staging", "--accept-drift", "nope")
    assert (
        wrong.exit_code == 3
        and "--accept-drift names environments not in the chain" in wrong.stderr
    )
    accepted = promote(ws, "run", "--to", "staging", "--accept-drift", "staging")
    assert accepted.exit_code == 0, accepted.output
    assert promote(ws, "plan", "--to", "staging", "--detailed-exitcode").exit_code == 0


def test_a_failed_stage_forgets_its_record_so_no_false_drift_is_told(ws: Path) -> None:
    assert (ws / ".promote" / "applied" / "staging.json").exists()
    from promote.state.applied import delete_applied
    from promote.state.local import LocalStore

    delete_applied(LocalStore(ws / ".promote"), "staging")
    console_edit(ws, "staging")
    staging = json.loads(promote(ws, "plan", "--to", "staging", "--format", "json").stdout)[
        "stages"
    ][1]
    assert staging["drift"] == []  # unknown without a record: shown as ordinary changes
    assert staging["status"] == "changes"


def test_records_hold_no_secret_value(ws: Path) -> None:
    for record in (ws / ".promote" / "applied").iterdir():
        text = record.read_text()
        for secret in ENVIRON.values():
            assert secret not in text
        assert record.stat().st_mode & 0o777 == 0o600


def test_secret_derived_values_of_resolved_config_are_recorded_as_fingerprints() -> None:
    value = {"host": "h", "auth": {"username": "u-SECRET", "password": "SECRET"}}
    masked, prints = mask_secret_paths(
        value, {"auth.password", "auth.username"}, lambda v: f"fp({v})"
    )
    assert masked == {"host": "h", "auth": {"username": "********", "password": "********"}}
    assert prints == {"auth.password": "fp(SECRET)", "auth.username": "fp(u-SECRET)"}
    applied = Applied(config={"external.email": masked}, secret_paths={"external.email": prints})
    live = {"external.email": {"host": "h", "auth": {"username": "u-OTHER"}}}  # no password back

    def matches(stored: str, text: str) -> bool:
        return stored == f"fp({text})"

    (drift,) = find_drift(applied, live, {}, {}, matches=matches)
    assert (drift.path, drift.applied, drift.live, drift.secret) == (
        "auth.username",
        "********",
        "********",
        True,
    )
    same = {"external.email": {"host": "h", "auth": {"username": "u-SECRET"}}}
    assert find_drift(applied, same, {}, {}, matches=matches) == []


def test_variables_and_secrets_deleted_outside_promote_are_drift() -> None:
    applied = Applied(variables={"esv-a": ("1", "int")}, secrets={"esv-s": 3})
    found = find_drift(applied, {}, {}, {}, matches=lambda s, v: None)
    assert [(d.id, d.live, d.live_version) for d in found] == [
        ("esv-a", ABSENT, None),
        ("esv-s", ABSENT, None),
    ]
    retyped = find_drift(
        applied,
        {},
        {"esv-a": VariableState("esv-a", "1", "string", True, True)},
        {"esv-s": SecretState("esv-s", 3, True, True)},
        matches=lambda s, v: None,
    )
    assert [(d.applied, d.live) for d in retyped] == [("1 (int)", "1 (string)")]
    assert "deleted outside promote" in found[1].describe()


def test_a_record_that_cannot_be_written_fails_the_stage_and_leaves_no_record(
    tmp_path: Path,
) -> None:
    import errno
    import os

    from promote.engine.apply import Ambient, run
    from promote.engine.session import Tenants
    from promote.errors import ApplyError
    from promote.files import StateFileError, atomic_write
    from promote.state.history import read_history
    from promote.state.local import LocalStore
    from promote.workspace import load_workspace

    def full_disk_for_records(path: Path, data: bytes) -> None:
        if "applied" in path.parts:
            raise StateFileError(path, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
        atomic_write(path, data)

    ws = load_workspace(write_workspace(tmp_path / "ws"))
    with Tenants(ws, environ=ENVIRON) as ts, pytest.raises(ApplyError) as caught:
        run(ws, "dev", ts, ambient=Ambient(environ=ENVIRON, write=full_disk_for_records))
    assert "No space left on device" in str(caught.value)
    assert caught.value.states["dev"].startswith("partially applied (ESVs written:")
    (entry,) = read_history(LocalStore(ws.state_dir))  # one entry: the failed stage's
    assert entry.failed
    assert not (ws.state_dir / "applied" / "dev.json").exists()
