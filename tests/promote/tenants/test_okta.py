"""OktaTenant against httpx.MockTransport handlers: mapping, diffs, errors, rate limits."""

from __future__ import annotations

import json
import stat
import string
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from esv.envfile import EnvironmentFile, SecretSource
from esv.errors import EnvironmentFileError
from esv.secrets import SecretValue
from promote.errors import BlockedError, PromoteError, TenantError
from promote.tenants.base import EsvWrite, Tenant
from promote.tenants.okta import (
    OKTA_CAPABILITIES,
    OktaTenant,
    check_okta_email,
    email_server_body,
    external_email_of,
    open_okta,
)
from promote.workspace import Workspace
from tests.helpers.email import basic_email, oauth_email

PASSWORD = "s3cret-Pa55word"
TOKEN = "00TOKEN-abcdefghijklmnop"
API = "/api/v1/email-servers"

BASIC = basic_email(PASSWORD, connectiontimeout=300000)
OAUTH = oauth_email("client-Secret-1")
LIVE = {
    "id": "ces1",
    "alias": "promote",
    "enabled": True,
    "authType": "BASIC_SMTP_AUTH",
    "host": "smtp.example.com",
    "port": 587,
    "username": "mailer",
}


class Clock:
    """A fake clock; ``sleep`` advances it and records each wait."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class FakeOkta:
    """A scripted Okta: a server list, queued responses, and every request it saw."""

    def __init__(self, servers: list[dict[str, Any]] | None = None, bare: bool = False) -> None:
        self.servers = servers if servers is not None else []
        self.bare = bare
        self.queue: list[httpx.Response] = []
        self.requests: list[httpx.Request] = []
        self.test_status = 204

    def bodies(self, method: str) -> list[Any]:
        return [json.loads(r.content) for r in self.requests if r.method == method]

    def writes(self) -> list[tuple[str, str]]:
        return [(r.method, r.url.path) for r in self.requests if r.method != "GET"]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.queue:
            return self.queue.pop(0)
        path = request.url.path
        if request.method == "GET" and path == API:
            listed = [dict(s) for s in self.servers]
            return httpx.Response(200, json=listed if self.bare else {"email-servers": listed})
        if request.method == "POST" and path == API:
            body = json.loads(request.content)
            server = {k: v for k, v in body.items() if k not in {"password", "clientSecret"}}
            server["id"] = f"ces{len(self.servers) + 1}"
            self.servers.append(server)
            return httpx.Response(201, json=server)
        if request.method == "POST" and path.endswith("/test"):
            return httpx.Response(self.test_status)
        server_id = path.rsplit("/", 1)[-1]
        found = [s for s in self.servers if s["id"] == server_id]
        if not found:
            return okta_error(404, "E0000007", f"Not found: {server_id}")
        if request.method == "PATCH":
            body = json.loads(request.content)
            found[0].update(
                {k: v for k, v in body.items() if k not in {"password", "clientSecret"}}
            )
            return httpx.Response(200, json=found[0])
        if request.method == "DELETE":
            self.servers.remove(found[0])
            return httpx.Response(204)
        return httpx.Response(200, json=found[0])


def okta_error(
    status: int,
    code: str,
    summary: str,
    causes: tuple[str, ...] = (),
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    body = {
        "errorCode": code,
        "errorSummary": summary,
        "errorLink": code,
        "errorId": "oaeABC123",
        "errorCauses": [{"errorSummary": c} for c in causes],
    }
    return httpx.Response(status, json=body, headers=headers)


def make_tenant(
    fake: Callable[[httpx.Request], httpx.Response],
    tmp_path: Path,
    clock: Clock | None = None,
    **kwargs: Any,
) -> OktaTenant:
    clock = clock or Clock()
    return OktaTenant(
        "staging",
        url="https://acme.okta.example",
        token=SecretValue(TOKEN),
        state_dir=tmp_path / "state",
        transport=httpx.MockTransport(fake),
        clock=clock,
        sleep=clock.sleep,
        **kwargs,
    )


def plan_view(tenant: OktaTenant, desired: dict[str, Any]) -> Any:
    """What the engine compares: the live config with write-only values reconciled."""
    current = tenant.read_config(["external.email"]).get("external.email")
    return tenant.reconcile_write_only("external.email", desired, current)


# -- protocol shape ------------------------------------------------------------------------


def test_is_a_tenant_with_okta_capabilities(tmp_path: Path) -> None:
    tenant = make_tenant(FakeOkta(), tmp_path)
    assert isinstance(tenant, Tenant)
    assert tenant.capabilities == OKTA_CAPABILITIES
    assert not tenant.capabilities.esvs and tenant.capabilities.config_ids == ("external.email",)
    assert TOKEN not in repr(tenant)


def test_no_esvs_no_restart_no_promotions(tmp_path: Path) -> None:
    tenant = make_tenant(FakeOkta(), tmp_path)
    assert tenant.list_variables() == {} and tenant.list_secrets() == {}
    assert tenant.secret_matches("esv-x", SecretValue("v")) is None
    tenant.write_esvs([])
    with pytest.raises(TenantError, match="Okta has no ESVs"):
        tenant.write_esvs([EsvWrite("esv-x", "variable", "add", "v")])
    tenant.restart()
    assert tenant.restart_status() == "ready"
    assert not tenant.lock_state().locked
    assert tenant.reports() == []
    with pytest.raises(PromoteError, match="Okta has no promotions"):
        tenant.promote_from(tenant, holder="me", description="x")
    with pytest.raises(PromoteError, match="Okta has no promotions"):
        tenant.rollback(holder="me")


def test_unlock_is_a_no_op_that_sends_nothing(tmp_path: Path) -> None:
    fake = FakeOkta()
    tenant = make_tenant(fake, tmp_path)
    tenant.unlock("promote run 20260101-killed")
    assert fake.requests == []
    assert not tenant.lock_state().locked
    assert not (tmp_path / "state").exists()


# -- mapping -------------------------------------------------------------------------------


def test_basic_maps_to_basic_smtp_auth_and_back() -> None:
    body = email_server_body(BASIC, alias="promote", token_endpoint_auth_method="X")
    assert body == {
        "alias": "promote",
        "enabled": True,
        "authType": "BASIC_SMTP_AUTH",
        "host": "smtp.example.com",
        "port": 587,
        "username": "mailer",
        "password": PASSWORD,
    }
    assert external_email_of({**body, "id": "ces1"}) == {
        "host": "smtp.example.com",
        "port": 587,
        "auth": {"enable": True, "username": "mailer"},
    }


def test_oauth2_maps_to_client_credentials_and_back() -> None:
    body = email_server_body(OAUTH, alias="a", token_endpoint_auth_method="CLIENT_SECRET_POST")
    assert body["authType"] == "OAUTH2_CLIENT_CREDENTIALS"
    assert body["scopes"] == ["https://outlook.office365.com/.default"]
    assert body["tokenEndpointAuthMethod"] == "CLIENT_SECRET_POST"
    assert body["clientSecret"] == "client-Secret-1" and "password" not in body
    back = external_email_of({k: v for k, v in body.items() if k != "clientSecret"})
    assert back["auth"] == {k: v for k, v in OAUTH["auth"].items() if k != "clientSecret"}  # type: ignore[attr-defined]


def test_check_accepts_basic_oauth_and_absence() -> None:
    assert check_okta_email(None, location="external.email") == []
    assert check_okta_email(BASIC, location="external.email") == []
    assert check_okta_email(OAUTH, location="external.email") == []


def test_check_refuses_microsoft_graph_with_one_error() -> None:
    graph = {"type": "msgraph", "mailEndpoint": "https://graph.microsoft.com/x", "auth": {}}
    problems = check_okta_email(graph, location="external.email")
    assert [(p.path, p.severity) for p in problems] == [("type", "error")]


def test_check_names_every_field_okta_cannot_express() -> None:
    email = {
        "mailEndpoint": "https://graph.microsoft.com/v1.0/users/x/sendMail",
        "port": "587",
        "smtpProperties": ["mail.mime.allowutf8=true"],
        "from": "not an address",
        "color": "blue",
        "auth": {"enable": False, "type": "oauth2", "grantType": "password", "scope": []},
    }
    problems = check_okta_email(email, location="external.email")
    errors = {p.path for p in problems if p.severity == "error"}
    warnings = {p.path for p in problems if p.severity == "warning"}
    assert errors == {
        "mailEndpoint",
        "host",
        "port",
        "smtpProperties[0]",
        "from",
        "auth.enable",
        "auth.username",
        "auth.clientId",
        "auth.clientSecret",
        "auth.tokenEndpoint",
        "auth.scope",
        "auth.grantType",
    }
    assert warnings == {"color"}
    assert all(p.location == "external.email" for p in problems)


def test_check_flags_unresolved_placeholders_and_odd_ports_without_values() -> None:
    email = {**BASIC, "host": "&{email.host}", "port": 25}
    email["auth"] = {**BASIC["auth"], "password": f"&{{esv.pw}}{PASSWORD}"}  # type: ignore[dict-item]
    problems = check_okta_email(email, location="config/external.email.json")
    assert {(p.path, p.severity) for p in problems} == {
        ("host", "error"),
        ("auth.password", "error"),
        ("port", "warning"),
    }
    assert not any(PASSWORD in str(p) for p in problems)


# -- list shapes, reading ------------------------------------------------------------------


@pytest.mark.parametrize("bare", [False, True])
def test_reads_both_list_shapes(tmp_path: Path, bare: bool) -> None:
    tenant = make_tenant(FakeOkta([dict(LIVE)], bare=bare), tmp_path)
    assert tenant.list_config_ids() == {"external.email"}
    assert tenant.read_config(["external.email"]) == {
        "external.email": {
            "host": "smtp.example.com",
            "port": 587,
            "auth": {"enable": True, "username": "mailer"},
        }
    }
    assert tenant.read_config(["emailTemplate/welcome"]) == {}


def test_disabled_or_absent_server_means_built_in_email(tmp_path: Path) -> None:
    assert make_tenant(FakeOkta([]), tmp_path).read_config(["external.email"]) == {}
    disabled = make_tenant(FakeOkta([{**LIVE, "enabled": False}]), tmp_path)
    assert disabled.list_config_ids() == set()
    assert disabled.read_config(["external.email"]) == {}


def test_another_alias_blocks_with_a_clear_message(tmp_path: Path) -> None:
    tenant = make_tenant(FakeOkta([{**LIVE, "alias": "Corp SMTP"}]), tmp_path)
    with pytest.raises(TenantError, match="alias: Corp SMTP"):
        tenant.read_config(["external.email"])
    tenant.delete_config("external.email")  # not ours: left alone


def test_unexpected_list_shape_is_an_error(tmp_path: Path) -> None:
    fake = FakeOkta()
    fake.queue.append(httpx.Response(200, json={"servers": []}))
    with pytest.raises(TenantError, match="neither an array"):
        make_tenant(fake, tmp_path).list_config_ids()


# -- writing -------------------------------------------------------------------------------


def test_create_posts_disabled_tests_then_enables(tmp_path: Path) -> None:
    fake = FakeOkta()
    tenant = make_tenant(fake, tmp_path, test_to="ops@example.com")
    tenant.put_config("external.email", BASIC)
    assert fake.writes() == [
        ("POST", API),
        ("POST", f"{API}/ces1/test"),
        ("PATCH", f"{API}/ces1"),
    ]
    created, test = fake.bodies("POST")
    expected = email_server_body(BASIC, alias="promote", token_endpoint_auth_method="")
    assert created == {**expected, "enabled": False}
    assert test == {"fromAddress": "noreply@example.com", "toAddress": "ops@example.com"}
    assert tenant.last_test == ("noreply@example.com", "ops@example.com")
    assert fake.bodies("PATCH") == [{"enabled": True}]
    assert all(r.headers["Authorization"] == f"SSWS {TOKEN}" for r in fake.requests)


def test_second_put_of_the_same_config_is_no_change(tmp_path: Path) -> None:
    fake = FakeOkta()
    tenant = make_tenant(fake, tmp_path)
    tenant.put_config("external.email", BASIC)
    assert plan_view(tenant, BASIC) == BASIC
    state = (tmp_path / "state" / "okta-email-server.json").read_text()
    assert PASSWORD not in state
    mode = stat.S_IMODE((tmp_path / "state" / "okta-email-server.json").stat().st_mode)
    assert mode == 0o600


def test_changed_or_unknown_password_is_not_filled_in(tmp_path: Path) -> None:
    fake = FakeOkta()
    tenant = make_tenant(fake, tmp_path)
    tenant.put_config("external.email", BASIC)
    changed = {**BASIC, "auth": {**BASIC["auth"], "password": "another"}}  # type: ignore[dict-item]
    assert "password" not in plan_view(tenant, changed)["auth"]
    fresh = make_tenant(FakeOkta([dict(LIVE)]), tmp_path / "elsewhere")
    assert "password" not in plan_view(fresh, BASIC)["auth"]


def test_port_change_sends_one_patch_without_the_password(tmp_path: Path) -> None:
    fake = FakeOkta()
    tenant = make_tenant(fake, tmp_path)
    tenant.put_config("external.email", BASIC)
    fake.requests.clear()
    tenant.put_config("external.email", {**BASIC, "port": 465})
    assert fake.writes() == [("PATCH", f"{API}/ces1"), ("POST", f"{API}/ces1/test")]
    assert fake.bodies("PATCH") == [{"port": 465}]


def test_password_change_is_sent(tmp_path: Path) -> None:
    fake = FakeOkta()
    tenant = make_tenant(fake, tmp_path)
    tenant.put_config("external.email", BASIC)
    fake.requests.clear()
    changed = {**BASIC, "auth": {**BASIC["auth"], "password": "another-one"}}  # type: ignore[dict-item]
    tenant.put_config("external.email", changed)
    assert fake.bodies("PATCH") == [{"password": "another-one"}]
    assert plan_view(tenant, changed) == changed


def test_oauth2_update_always_carries_auth_type(tmp_path: Path) -> None:
    fake = FakeOkta()
    tenant = make_tenant(fake, tmp_path, token_type="bearer")
    tenant.put_config("external.email", OAUTH)
    assert fake.bodies("PATCH") == [{"enabled": True, "authType": "OAUTH2_CLIENT_CREDENTIALS"}]
    fake.requests.clear()
    scoped = {**OAUTH, "auth": {**OAUTH["auth"], "scope": ["a", "b"]}}  # type: ignore[dict-item]
    tenant.put_config("external.email", scoped)
    assert fake.bodies("PATCH") == [{"scopes": ["a", "b"], "authType": "OAUTH2_CLIENT_CREDENTIALS"}]
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in fake.requests)
    assert plan_view(tenant, scoped) == scoped


def test_switching_auth_type_sends_every_field(tmp_path: Path) -> None:
    fake = FakeOkta()
    tenant = make_tenant(fake, tmp_path)
    tenant.put_config("external.email", BASIC)
    fake.requests.clear()
    tenant.put_config("external.email", OAUTH)
    (patch,) = fake.bodies("PATCH")
    assert patch["authType"] == "OAUTH2_CLIENT_CREDENTIALS"
    assert {"clientId", "clientSecret", "tokenEndpoint", "scopes", "host"} <= set(patch)


def test_existing_disabled_server_is_updated_tested_then_enabled(tmp_path: Path) -> None:
    fake = FakeOkta([{**LIVE, "enabled": False, "port": 465}])
    tenant = make_tenant(fake, tmp_path)
    tenant.put_config("external.email", BASIC)
    assert fake.writes() == [
        ("PATCH", f"{API}/ces1"),
        ("POST", f"{API}/ces1/test"),
        ("PATCH", f"{API}/ces1"),
    ]
    assert fake.bodies("PATCH") == [{"port": 587, "password": PASSWORD}, {"enabled": True}]


def test_failed_test_on_create_leaves_the_server_disabled(tmp_path: Path) -> None:
    fake = FakeOkta()
    fake.test_status = 400
    tenant = make_tenant(fake, tmp_path)
    tenant.last_test = ("noreply@example.com", "noreply@example.com")  # an earlier apply's
    with pytest.raises(TenantError, match="created disabled") as caught:
        tenant.put_config("external.email", BASIC)
    assert tenant.last_test is None  # the verify gate must send its own test
    assert PASSWORD not in str(caught.value)
    assert [w for w in fake.writes() if w[0] == "PATCH"] == []
    assert tenant.read_config(["external.email"]) == {}


def test_inexpressible_config_is_blocked_before_any_request(tmp_path: Path) -> None:
    fake = FakeOkta()
    tenant = make_tenant(fake, tmp_path)
    with pytest.raises(BlockedError) as caught:
        tenant.put_config("external.email", {**BASIC, "type": "msgraph"})
    assert caught.value.exit_code == 3 and "type" in str(caught.value)
    assert fake.requests == []
    with pytest.raises(TenantError, match="only external.email"):
        tenant.put_config("emailTemplate/welcome", {})


def test_delete_removes_the_server_and_forgets(tmp_path: Path) -> None:
    fake = FakeOkta()
    tenant = make_tenant(fake, tmp_path)
    tenant.put_config("external.email", BASIC)
    tenant.delete_config("external.email")
    assert ("DELETE", f"{API}/ces1") in fake.writes()
    assert fake.servers == []
    assert not (tmp_path / "state" / "okta-email-server.json").exists()
    fake.requests.clear()
    tenant.delete_config("external.email")
    assert fake.writes() == []


def test_send_test_email(tmp_path: Path) -> None:
    fake = FakeOkta([dict(LIVE)])
    tenant = make_tenant(fake, tmp_path)
    tenant.send_test_email(from_address="a@example.com", to_address="b@example.com")
    assert fake.bodies("POST") == [{"fromAddress": "a@example.com", "toAddress": "b@example.com"}]
    with pytest.raises(TenantError, match="no custom email server"):
        make_tenant(FakeOkta(), tmp_path).send_test_email(from_address="a@x.y", to_address="b@x.y")


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "summary", "hint"),
    [
        (400, "E0000001", "Api validation failed: port", "Okta refused"),
        (401, "E0000011", "Invalid token provided", "token_type"),
        (403, "E0000006", "You do not have permission", "okta.emailServers.manage"),
        (404, "E0000007", "Not found: Resource not found: ces1 (EmailServer)", "run plan again"),
    ],
)
def test_okta_error_objects_are_surfaced(
    tmp_path: Path, status: int, code: str, summary: str, hint: str
) -> None:
    fake = FakeOkta([dict(LIVE)])
    fake.queue += [
        httpx.Response(200, json={"email-servers": [LIVE]}),
        okta_error(status, code, summary, ("port: must be one of 465, 587, 2587",)),
    ]
    if status == 401:  # the shared client asks for a fresh token once, then sends again
        fake.queue.append(fake.queue[-1])
    tenant = make_tenant(fake, tmp_path)
    with pytest.raises(TenantError) as caught:
        tenant.put_config("external.email", {**BASIC, "port": 2525})
    error = caught.value
    assert error.status == status and error.method == "PATCH" and error.path == f"{API}/ces1"
    assert f"{code}: {summary} (oaeABC123)" in str(error)
    assert "causes: port: must be one of 465, 587, 2587" in str(error)
    assert hint in str(error)
    assert TOKEN not in str(error) and PASSWORD not in str(error)


def test_secret_echoed_by_okta_is_masked(tmp_path: Path) -> None:
    fake = FakeOkta()
    fake.queue.append(httpx.Response(200, json=[]))
    fake.queue.append(okta_error(400, "E0000001", f"bad password {PASSWORD} for {TOKEN}"))
    with pytest.raises(TenantError) as caught:
        make_tenant(fake, tmp_path).put_config("external.email", BASIC)
    assert PASSWORD not in str(caught.value) and TOKEN not in str(caught.value)
    assert "********" in str(caught.value)


def test_non_json_error_body(tmp_path: Path) -> None:
    fake = FakeOkta()
    fake.queue.append(httpx.Response(400, text="<html>bad gateway config</html>"))
    with pytest.raises(TenantError) as caught:
        make_tenant(fake, tmp_path).list_config_ids()
    assert caught.value.status == 400


def test_server_errors_retry_get_only(tmp_path: Path) -> None:
    fake = FakeOkta([dict(LIVE)])
    fake.queue.append(httpx.Response(503))
    tenant = make_tenant(fake, tmp_path)
    assert tenant.list_config_ids() == {"external.email"}
    assert [r.method for r in fake.requests] == ["GET", "GET"]
    fake.requests.clear()
    fake.queue += [httpx.Response(200, json=[LIVE]), httpx.Response(503)]
    with pytest.raises(TenantError) as caught:
        tenant.send_test_email(from_address="a@x.io", to_address="b@x.io")
    assert caught.value.status == 503
    assert [r.method for r in fake.requests] == ["GET", "POST"]


# -- rate limits ---------------------------------------------------------------------------


def test_429_waits_until_the_reset_then_retries_even_a_post(tmp_path: Path) -> None:
    clock = Clock()
    fake = FakeOkta()
    reset = str(int(clock.now) + 7)
    fake.queue += [
        httpx.Response(200, json=[]),
        okta_error(
            429,
            "E0000047",
            "API call exceeded rate limit due to too many requests.",
            headers={"X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": reset},
        ),
    ]
    tenant = make_tenant(fake, tmp_path, clock)
    tenant.put_config("external.email", BASIC)
    assert clock.sleeps == [7.0]
    assert [(r.method, r.url.path) for r in fake.requests][:3] == [
        ("GET", API),
        ("POST", API),
        ("POST", API),
    ]
    assert len(fake.servers) == 1


def test_429_that_never_ends_is_an_error_with_the_okta_code(tmp_path: Path) -> None:
    clock = Clock()
    fake = FakeOkta()
    limited = okta_error(
        429, "E0000047", "API call exceeded rate limit.", headers={"Retry-After": "1"}
    )
    fake.queue += [limited] * 5
    with pytest.raises(TenantError, match="E0000047") as caught:
        make_tenant(fake, tmp_path, clock).list_config_ids()
    assert caught.value.status == 429
    assert clock.sleeps == [1.0, 1.0, 1.0, 1.0]


def test_429_with_a_far_reset_fails_at_once(tmp_path: Path) -> None:
    clock = Clock()
    fake = FakeOkta()
    reset = {"X-Rate-Limit-Reset": str(int(clock.now) + 3600)}
    fake.queue.append(okta_error(429, "E0000047", "rate limit", headers=reset))
    with pytest.raises(TenantError, match="E0000047"):
        make_tenant(fake, tmp_path, clock).list_config_ids()
    assert clock.sleeps == []


def test_paces_before_a_429_when_remaining_runs_out(tmp_path: Path) -> None:
    clock = Clock()
    fake = FakeOkta()
    headers = {"X-Rate-Limit-Limit": "100", "X-Rate-Limit-Reset": str(int(clock.now) + 30)}
    fake.queue += [
        httpx.Response(200, json=[], headers={**headers, "X-Rate-Limit-Remaining": "50"}),
        httpx.Response(200, json=[], headers={**headers, "X-Rate-Limit-Remaining": "1"}),
        httpx.Response(200, json=[], headers={**headers, "X-Rate-Limit-Remaining": "99"}),
    ]
    tenant = make_tenant(fake, tmp_path, clock)

    def read() -> None:  # one request each time (list_config_ids reuses the list until a write)
        tenant._find_server(fresh=True)

    read()
    assert clock.sleeps == []
    read()
    assert clock.sleeps == []
    read()
    assert clock.sleeps == [30.0]
    read()
    assert clock.sleeps == [30.0]


# -- factory -------------------------------------------------------------------------------


def environment(tmp_path: Path, tenant: dict[str, Any], verify: dict[str, Any] | None = None):
    return EnvironmentFile(
        name="staging",
        path=tmp_path / "environments" / "staging.yaml",
        relpath="environments/staging.yaml",
        description="",
        tenant=tenant,
        mutable=None,
        protected=False,
        verify=verify or {},
        restart=None,
        variables={},
        secrets={},
        warnings=(),
    )


def workspace(tmp_path: Path) -> Workspace:
    return Workspace(
        root=tmp_path,
        chain=("staging",),
        environments={},
        config={},
        state_dir=tmp_path / ".promote",
    )


def test_open_okta_reads_the_token_and_settings(tmp_path: Path) -> None:
    env = environment(
        tmp_path,
        {
            "kind": "okta",
            "url": "https://acme.okta.example/",
            "token": SecretSource("env", "OKTA_TOKEN"),
            "token_type": "bearer",
            "alias": "Acme SMTP",
        },
        {"email_test": {"to": "ops@example.com"}},
    )
    fake = FakeOkta()
    tenant = open_okta(
        env,
        workspace=workspace(tmp_path),
        environ={"OKTA_TOKEN": TOKEN},
        transport=httpx.MockTransport(fake),
    )
    assert tenant.alias == "Acme SMTP" and tenant.test_to == "ops@example.com"
    assert tenant.state_dir == tmp_path / ".promote" / "tenants" / "staging"
    tenant.list_config_ids()
    assert fake.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert str(fake.requests[0].url) == "https://acme.okta.example/api/v1/email-servers"


def test_open_okta_names_every_bad_key(tmp_path: Path) -> None:
    env = environment(
        tmp_path, {"kind": "okta", "url": "acme", "token": "inline", "token_type": "jwt"}
    )
    with pytest.raises(EnvironmentFileError) as caught:
        open_okta(env, workspace=workspace(tmp_path), environ={})
    assert {p.path for p in caught.value.problems} == {
        "tenant.url",
        "tenant.token",
        "tenant.token_type",
    }


def test_open_okta_missing_token_names_the_source(tmp_path: Path) -> None:
    env = environment(
        tmp_path,
        {"kind": "okta", "url": "https://a.okta.example", "token": SecretSource("env", "NOPE")},
    )
    with pytest.raises(EnvironmentFileError, match="environment variable NOPE"):
        open_okta(env, workspace=workspace(tmp_path), environ={})


def test_open_okta_checks_alias_and_token_endpoint_auth_method(tmp_path: Path) -> None:
    env = environment(
        tmp_path,
        {
            "kind": "okta",
            "url": "https://a.okta.example",
            "token": SecretSource("env", "T"),
            "alias": " ",
            "token_endpoint_auth_method": "PRIVATE_KEY_JWT",
        },
    )
    with pytest.raises(EnvironmentFileError) as caught:
        open_okta(env, workspace=workspace(tmp_path), environ={"T": TOKEN})
    assert {p.path for p in caught.value.problems} == {
        "tenant.alias",
        "tenant.token_endpoint_auth_method",
    }


def test_corrupt_state_file_is_named(tmp_path: Path) -> None:
    fake = FakeOkta()
    tenant = make_tenant(fake, tmp_path)
    tenant.put_config("external.email", BASIC)
    (tmp_path / "state" / "okta-email-server.json").write_text("{not json")
    later = make_tenant(fake, tmp_path)  # the next plan reads the file (this one remembers)
    with pytest.raises(PromoteError, match="okta-email-server.json: cannot read"):
        later.read_config(["external.email"])


def test_reconcile_leaves_other_objects_alone(tmp_path: Path) -> None:
    tenant = make_tenant(FakeOkta(), tmp_path)
    assert tenant.reconcile_write_only("emailTemplate/x", {"a": 1}, {"b": 2}) == {"b": 2}


def test_429_without_usable_headers_backs_off(tmp_path: Path) -> None:
    clock = Clock()
    fake = FakeOkta()
    fake.queue += [
        okta_error(429, "E0000047", "rate limit", headers={"X-Rate-Limit-Reset": "soon"}),
        okta_error(429, "E0000047", "rate limit"),
    ]
    assert make_tenant(fake, tmp_path, clock).list_config_ids() == set()
    assert clock.sleeps == [1.0, 2.0]


def test_disabled_oauth2_server_without_changes_is_only_tested_and_enabled(
    tmp_path: Path,
) -> None:
    fake = FakeOkta()
    tenant = make_tenant(fake, tmp_path)
    tenant.put_config("external.email", OAUTH)
    fake.servers[0]["enabled"] = False
    fake.requests.clear()
    tenant.put_config("external.email", OAUTH)
    assert fake.writes() == [("POST", f"{API}/ces1/test"), ("PATCH", f"{API}/ces1")]
    assert fake.bodies("PATCH") == [{"enabled": True, "authType": "OAUTH2_CLIENT_CREDENTIALS"}]


_text = st.text(alphabet=string.ascii_letters + string.digits + "-.", min_size=1, max_size=12)
_email_configs = st.fixed_dictionaries(
    {
        "host": _text,
        "port": st.sampled_from([465, 587, 2587]),
        "from": st.builds(lambda u: f"{u}@example.com", _text),
        "auth": st.one_of(
            st.fixed_dictionaries(
                {"enable": st.just(True), "username": _text, "password": _text},
                optional={"type": st.just("basic")},
            ),
            st.fixed_dictionaries(
                {
                    "enable": st.just(True),
                    "type": st.just("oauth2"),
                    "username": _text,
                    "clientId": _text,
                    "clientSecret": _text,
                    "tokenEndpoint": st.builds(lambda h: f"https://{h}/token", _text),
                    "scope": st.lists(_text, min_size=1, max_size=3),
                },
                optional={"scopeDelimiter": st.just(" ")},
            ),
        ),
    },
    optional={
        "type": st.just("smtp"),
        "debug": st.booleans(),
        "starttls": st.fixed_dictionaries({"enable": st.booleans()}),
        "ssl": st.fixed_dictionaries({"enable": st.booleans()}),
        "timeout": st.integers(0, 600000),
        "threadPoolSize": st.integers(1, 50),
        "smtpProperties": st.just([]),
    },
)


@settings(max_examples=25, deadline=None)
@given(_email_configs)
def test_any_expressible_config_reads_back_equal_after_a_write(email: dict[str, Any]) -> None:
    assert [p for p in check_okta_email(email, location="x") if p.severity == "error"] == []
    with tempfile.TemporaryDirectory() as directory:
        fake = FakeOkta()
        tenant = make_tenant(fake, Path(directory))
        tenant.put_config("external.email", email)
        assert plan_view(tenant, email) == email
