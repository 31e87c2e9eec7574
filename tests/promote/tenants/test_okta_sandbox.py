"""OktaTenant end to end against the sandbox server on 127.0.0.1 (real HTTP, real clock)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from esv.resolver import Resolved
from esv.secrets import SecretValue
from promote.email import VerifyContext, run_verify
from promote.errors import TenantError
from promote.sandbox.okta_api import OktaApi
from promote.sandbox.server import EnvSpec, SandboxServer
from promote.tenants.okta import EMAIL_ID, OktaTenant
from tests.helpers.email import basic_email, oauth_email

TOKEN = "okta-sandbox-T0KEN-42"
PASSWORD = "e2e-Smtp-Pa55word!"
API = "/api/v1/email-servers"
EMAIL = basic_email(PASSWORD, host="smtp.staging.example.com", ssl={"enable": False})


@pytest.fixture
def sandbox(tmp_path: Path, start_sandboxes: Callable[..., SandboxServer]) -> SandboxServer:
    return start_sandboxes(
        [EnvSpec("staging", "okta", mutable=True)], state=tmp_path / "sandbox", tokens=TOKEN
    )


def org(sandbox: SandboxServer) -> OktaApi:
    api = sandbox.apis["staging"]
    assert isinstance(api, OktaApi)
    return api


def open_tenant(sandbox: SandboxServer, tmp_path: Path, **kwargs: Any) -> OktaTenant:
    return OktaTenant(
        "staging",
        url=sandbox.url("staging"),
        token=SecretValue(TOKEN),
        state_dir=tmp_path / "workspace" / ".promote" / "tenants" / "staging",
        **kwargs,
    )


def run(sandbox: SandboxServer, tmp_path: Path, desired: Any, **kwargs: Any) -> None:
    """What the engine does for an Okta stage: diff live (write-only reconciled), then apply."""
    tenant = open_tenant(sandbox, tmp_path, **kwargs)
    try:
        current = tenant.read_config([EMAIL_ID]).get(EMAIL_ID)
        if desired is None:
            if current is not None:
                tenant.delete_config(EMAIL_ID)
            return
        if current is not None:
            current = tenant.reconcile_write_only(EMAIL_ID, desired, current)
        if current != desired:
            tenant.put_config(EMAIL_ID, desired)
    finally:
        tenant.close()


def writes(sandbox: SandboxServer) -> list[tuple[str, str]]:
    return [(r.method, r.path.replace(_server_id(sandbox), "ID")) for r in sandbox.writes()]


def _server_id(sandbox: SandboxServer) -> str:
    servers = [r.path for r in sandbox.requests if r.method == "PATCH"]
    return servers[0].rsplit("/", 1)[-1] if servers else "\0"


def test_first_run_creates_tests_and_enables_one_server(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    run(sandbox, tmp_path, EMAIL, test_to="ops@example.com")
    assert writes(sandbox) == [("POST", API), ("POST", f"{API}/ID/test"), ("PATCH", f"{API}/ID")]
    (message,) = org(sandbox).outbox()
    assert message["fromAddress"] == "noreply@example.com"
    assert message["toAddress"] == "ops@example.com"
    assert message["host"] == "smtp.staging.example.com"
    tenant = open_tenant(sandbox, tmp_path)
    live = {**EMAIL, "auth": {"enable": True, "username": "mailer"}}  # password: write-only
    assert tenant.read_config([EMAIL_ID]) == {EMAIL_ID: live}
    tenant.close()


def test_second_run_sends_nothing(sandbox: SandboxServer, tmp_path: Path) -> None:
    run(sandbox, tmp_path, EMAIL)
    sandbox.requests.clear()
    run(sandbox, tmp_path, EMAIL)
    assert sandbox.writes() == []
    org(sandbox).configure(list_shape="array")
    run(sandbox, tmp_path, EMAIL)
    assert sandbox.writes() == []
    assert len(org(sandbox).outbox()) == 1


def test_port_change_sends_one_patch(sandbox: SandboxServer, tmp_path: Path) -> None:
    run(sandbox, tmp_path, EMAIL)
    sandbox.requests.clear()
    run(sandbox, tmp_path, {**EMAIL, "port": 465})
    patches = [r for r in sandbox.writes() if r.method == "PATCH"]
    assert len(patches) == 1
    assert [r.method for r in sandbox.writes()] == ["PATCH", "POST"]
    tenant = open_tenant(sandbox, tmp_path)
    assert tenant.read_config([EMAIL_ID])[EMAIL_ID]["port"] == 465
    tenant.close()


def test_changed_password_is_sent_once(sandbox: SandboxServer, tmp_path: Path) -> None:
    run(sandbox, tmp_path, EMAIL)
    rotated = {**EMAIL, "auth": {**EMAIL["auth"], "password": "rotated-Pa55"}}  # type: ignore[dict-item]
    sandbox.requests.clear()
    run(sandbox, tmp_path, rotated)
    assert [r.method for r in sandbox.writes()] == ["PATCH", "POST"]
    sandbox.requests.clear()
    run(sandbox, tmp_path, rotated)
    assert sandbox.writes() == []


def test_a_429_with_a_reset_header_is_survived(sandbox: SandboxServer, tmp_path: Path) -> None:
    org(sandbox).configure(rate_window=2)  # long enough to be hit before it ends
    org(sandbox).exhaust_rate_limit()
    run(sandbox, tmp_path, EMAIL)
    statuses = [r.status for r in sandbox.requests]
    assert statuses[0] == 429 and 429 not in statuses[1:]
    assert len(org(sandbox).outbox()) == 1


def test_paces_by_remaining_requests_instead_of_hitting_429(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    org(sandbox).configure(rate_limit=3, rate_window=1)
    run(sandbox, tmp_path, EMAIL)
    assert [r.status for r in sandbox.requests if r.status == 429] == []
    assert len(sandbox.requests) == 5  # read, find, create, test, enable


def test_deleting_returns_the_org_to_built_in_email(sandbox: SandboxServer, tmp_path: Path) -> None:
    run(sandbox, tmp_path, EMAIL)
    sandbox.requests.clear()
    run(sandbox, tmp_path, None)
    assert [r.method for r in sandbox.writes()] == ["DELETE"]
    tenant = open_tenant(sandbox, tmp_path)
    assert tenant.list_config_ids() == set()
    tenant.close()


def test_failed_test_leaves_the_new_server_disabled(sandbox: SandboxServer, tmp_path: Path) -> None:
    with pytest.raises(TenantError, match="created disabled") as caught:
        run(sandbox, tmp_path, {**EMAIL, "host": "smtp.down.invalid"})
    assert "Could not connect to SMTP server smtp.down.invalid:587" in str(caught.value)
    assert PASSWORD not in str(caught.value) and TOKEN not in str(caught.value)
    tenant = open_tenant(sandbox, tmp_path)
    assert tenant.list_config_ids() == set()
    tenant.close()
    sandbox.requests.clear()
    run(sandbox, tmp_path, EMAIL)
    assert [r.method for r in sandbox.writes()] == ["PATCH", "POST", "PATCH"]
    assert len(org(sandbox).outbox()) == 1


def test_oauth2_server_round_trip(sandbox: SandboxServer, tmp_path: Path) -> None:
    oauth = oauth_email(PASSWORD)
    run(sandbox, tmp_path, oauth, token_type="bearer")
    sandbox.requests.clear()
    run(sandbox, tmp_path, oauth, token_type="bearer")
    assert sandbox.writes() == []
    run(sandbox, tmp_path, {**oauth, "port": 465}, token_type="bearer")
    assert [r.method for r in sandbox.writes()] == ["PATCH", "POST"]


def test_the_password_is_only_in_the_sandbox_database(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    run(sandbox, tmp_path, EMAIL)
    run(sandbox, tmp_path, {**EMAIL, "port": 465})
    org(sandbox).close()  # checkpoint the WAL so the database file holds what was written
    found_in_db = False
    for path in tmp_path.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if path.name.startswith("okta.sqlite3"):
            found_in_db = found_in_db or PASSWORD.encode() in data
            continue
        assert PASSWORD.encode() not in data, path
        assert TOKEN.encode() not in data, path
    assert found_in_db
    state = tmp_path / "workspace" / ".promote" / "tenants" / "staging" / "okta-email-server.json"
    assert "fingerprints" in json.loads(state.read_text())


def verify(tenant: OktaTenant, tmp_path: Path, to: str = "ops@example.com") -> str | None:
    """The engine's verify gate for this Okta environment, right after its apply."""
    env = SimpleNamespace(
        name="staging",
        relpath="environments/staging.yaml",
        tenant={"kind": "okta"},
        verify={"email_test": {"to": to}},
    )
    resolved = {EMAIL_ID: Resolved(EMAIL_ID, EMAIL, {**EMAIL, "auth": "********"})}
    ctx = VerifyContext(env=env, tenant=tenant, resolved=resolved, workspace=tmp_path)  # type: ignore[arg-type]
    return run_verify(ctx)


def test_one_test_message_per_applied_stage_with_a_verify_gate(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    tenant = open_tenant(sandbox, tmp_path, test_to="ops@example.com")
    try:
        tenant.put_config(EMAIL_ID, EMAIL)  # created disabled, tested, then enabled
        assert tenant.last_test == ("noreply@example.com", "ops@example.com")
        summary = verify(tenant, tmp_path)
        assert summary == (
            "verify email_test passed for staging (server test during apply): "
            "test email sent to ops@example.com by staging's tenant"
        )
        assert len(org(sandbox).outbox()) == 1
        tenant.put_config(EMAIL_ID, {**EMAIL, "port": 465})  # an update: tested once more
        verify(tenant, tmp_path)
        assert len(org(sandbox).outbox()) == 2
        tests = [r for r in sandbox.requests if r.path.endswith("/test")]
        assert len(tests) == 2
    finally:
        tenant.close()


def test_the_gate_sends_its_own_test_when_this_apply_sent_none(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    run(sandbox, tmp_path, EMAIL, test_to="ops@example.com")
    fresh = open_tenant(sandbox, tmp_path, test_to="ops@example.com")  # e.g. a recovering run
    try:
        assert fresh.last_test is None
        summary = verify(fresh, tmp_path)
        assert summary == (
            "verify email_test passed for staging: test email sent to ops@example.com by "
            "staging's tenant"
        )
        assert len(org(sandbox).outbox()) == 2
        fresh.put_config(EMAIL_ID, {**EMAIL, "port": 465})
        verify(fresh, tmp_path, to="someone-else@example.com")  # not what the apply tested
        assert [m["toAddress"] for m in org(sandbox).outbox()][-2:] == [
            "ops@example.com",
            "someone-else@example.com",
        ]
        fresh.delete_config(EMAIL_ID)
        assert fresh.last_test is None
    finally:
        fresh.close()


def test_reads_between_writes_share_one_list_and_one_state_load(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    run(sandbox, tmp_path, EMAIL)
    tenant = open_tenant(sandbox, tmp_path)
    state = tenant._state
    loads: list[object] = []
    original = state.load
    state.load = lambda: loads.append(1) or original()  # type: ignore[method-assign]
    try:
        sandbox.requests.clear()
        assert tenant.list_config_ids() == {EMAIL_ID}
        current = tenant.read_config([EMAIL_ID])[EMAIL_ID]
        assert tenant.reconcile_write_only(EMAIL_ID, EMAIL, current) == EMAIL
        assert [(r.method, r.path) for r in sandbox.requests] == [("GET", API)]
        assert len(loads) == 1
        tenant.put_config(EMAIL_ID, {**EMAIL, "port": 465})  # reads afresh, then writes
        assert [r.method for r in sandbox.requests].count("GET") == 2
        assert tenant.read_config([EMAIL_ID])[EMAIL_ID]["port"] == 465  # the write forgot it
        assert [r.method for r in sandbox.requests].count("GET") == 3
        assert len(loads) == 1  # what put_config saved is what the tenant remembers
    finally:
        tenant.close()
