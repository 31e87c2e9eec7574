"""The sandbox's Okta Email Servers API, request by request."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from promote.sandbox.okta_api import DB_FILE, OktaApi
from promote.sandbox.routes import SandboxRequest, SandboxResponse
from tests.helpers.email import okta_server

API = "/api/v1/email-servers"
PASSWORD = "sandbox-Pa55word"
BASIC = okta_server(PASSWORD)
OAUTH = {
    "alias": "promote",
    "enabled": True,
    "authType": "OAUTH2_CLIENT_CREDENTIALS",
    "host": "smtp.office365.com",
    "port": 587,
    "username": "noreply@example.com",
    "clientId": "client",
    "clientSecret": "client-Secret",
    "tokenEndpoint": "https://login.example.com/token",
    "tokenEndpointAuthMethod": "CLIENT_SECRET_POST",
    "scopes": ["https://outlook.office365.com/.default"],
}


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.5

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def api(tmp_path: Path, clock: Clock):
    api = OktaApi(tmp_path / "okta", clock=clock)
    yield api
    api.close()


def call(
    api: OktaApi, method: str, path: str, body: Any = None, token: str = "SSWS t0ken"
) -> SandboxResponse:
    raw = json.dumps(body).encode() if body is not None else b""
    headers = {"authorization": token} if token else {}
    response = api.handle(SandboxRequest(method, path, {}, headers, raw, body))
    assert response is not None
    return response


def created(api: OktaApi, body: dict[str, Any] = BASIC) -> str:
    response = call(api, "POST", API, body)
    assert response.status == 201, response.json
    return str(response.json["id"])


def test_other_paths_are_not_ours(api: OktaApi) -> None:
    assert api.handle(SandboxRequest("GET", "/environment/variables", {}, {})) is None


def test_create_get_list_never_return_write_only_fields(api: OktaApi) -> None:
    server_id = created(api)
    expected = {"id": server_id, **{k: v for k, v in BASIC.items() if k != "password"}}
    assert call(api, "GET", f"{API}/{server_id}").json == expected
    assert call(api, "GET", API).json == {"email-servers": [expected]}
    api.configure(list_shape="array")
    assert call(api, "GET", API).json == [expected]


def test_oauth2_server_hides_the_client_secret(api: OktaApi) -> None:
    server_id = created(api, OAUTH)
    shown = call(api, "GET", f"{API}/{server_id}").json
    assert "clientSecret" not in shown and shown["scopes"] == OAUTH["scopes"]


def test_one_custom_server_per_org(api: OktaApi) -> None:
    created(api)
    response = call(api, "POST", API, {**BASIC, "alias": "second"})
    assert response.status == 400 and response.json["errorCode"] == "E0000001"
    assert "Only one custom email server" in response.json["errorCauses"][0]["errorSummary"]


def test_create_validation_lists_every_cause_without_values(api: OktaApi) -> None:
    response = call(api, "POST", API, {"authType": "BASIC_SMTP_AUTH", "port": "587x"})
    assert response.status == 400
    body = response.json
    assert body["errorCode"] == "E0000001" and body["errorLink"] == "E0000001"
    assert body["errorSummary"] == "Api validation failed: emailServer"
    assert body["errorId"].startswith("oae")
    causes = {c["errorSummary"] for c in body["errorCauses"]}
    assert causes == {
        "alias: is required",
        "enabled: is required",
        "host: is required",
        "port: invalid value",
        "username: is required",
        "password: is required",
    }
    bad = call(api, "POST", API, {**OAUTH, "tokenEndpointAuthMethod": "NONE"})
    assert bad.json["errorCauses"] == [{"errorSummary": "tokenEndpointAuthMethod: invalid value"}]


def test_patch_updates_and_keeps_the_password_hidden(api: OktaApi) -> None:
    server_id = created(api)
    response = call(api, "PATCH", f"{API}/{server_id}", {"port": 465, "password": "new-one"})
    assert response.status == 200 and response.json["port"] == 465
    assert "password" not in response.json


def test_patch_of_an_oauth2_server_needs_auth_type(api: OktaApi) -> None:
    server_id = created(api, OAUTH)
    refused = call(api, "PATCH", f"{API}/{server_id}", {"port": 465})
    assert refused.status == 400
    assert "authType" in refused.json["errorCauses"][0]["errorSummary"]
    ok = call(
        api, "PATCH", f"{API}/{server_id}", {"port": 465, "authType": "OAUTH2_CLIENT_CREDENTIALS"}
    )
    assert ok.status == 200 and ok.json["port"] == 465


def test_patch_switching_auth_type_needs_the_new_fields(api: OktaApi) -> None:
    server_id = created(api)
    refused = call(api, "PATCH", f"{API}/{server_id}", {"authType": "OAUTH2_CLIENT_CREDENTIALS"})
    assert refused.status == 400
    switched = {k: v for k, v in OAUTH.items() if k not in {"alias", "enabled"}}
    ok = call(api, "PATCH", f"{API}/{server_id}", switched)
    assert ok.status == 200 and ok.json["authType"] == "OAUTH2_CLIENT_CREDENTIALS"


def test_unknown_server_is_404_and_delete_is_204(api: OktaApi) -> None:
    for method in ("GET", "PATCH", "DELETE"):
        response = call(api, method, f"{API}/nope", {} if method == "PATCH" else None)
        assert response.status == 404 and response.json["errorCode"] == "E0000007"
    assert call(api, "POST", f"{API}/nope/test", {}).status == 404
    server_id = created(api)
    assert call(api, "DELETE", f"{API}/{server_id}").status == 204
    assert call(api, "GET", API).json == {"email-servers": []}


def test_method_not_allowed(api: OktaApi) -> None:
    response = call(api, "PUT", API, {})
    assert response.status == 405 and response.json["errorCode"] == "E0000022"


def test_test_endpoint_records_the_message(api: OktaApi, clock: Clock) -> None:
    server_id = created(api)
    body = {"fromAddress": "noreply@example.com", "toAddress": "ops@example.com"}
    assert call(api, "POST", f"{API}/{server_id}/test", body).status == 204
    assert api.outbox() == [
        {
            "server_id": server_id,
            "fromAddress": "noreply@example.com",
            "toAddress": "ops@example.com",
            "host": "smtp.example.com",
            "port": 587,
            "sent_at": clock.now,
        }
    ]
    refused = call(api, "POST", f"{API}/{server_id}/test", {"fromAddress": "x"})
    assert refused.status == 400
    assert {c["errorSummary"] for c in refused.json["errorCauses"]} == {
        "fromAddress: must be an email address",
        "toAddress: must be an email address",
    }


def test_test_through_an_unreachable_host_fails(api: OktaApi) -> None:
    server_id = created(api, {**BASIC, "host": "smtp.down.invalid"})
    body = {"fromAddress": "noreply@example.com", "toAddress": "ops@example.com"}
    response = call(api, "POST", f"{API}/{server_id}/test", body)
    assert response.status == 400
    assert "Could not connect" in response.json["errorCauses"][0]["errorSummary"]
    assert api.outbox() == []


def test_needs_a_token(api: OktaApi) -> None:
    response = call(api, "GET", API, token="")
    assert response.status == 401 and response.json["errorCode"] == "E0000011"
    assert call(api, "GET", API, token="Bearer abc").status == 200


def test_rate_limit_headers_and_429_until_the_reset(api: OktaApi, clock: Clock) -> None:
    api.configure(rate_limit=2, rate_window=60)
    first = call(api, "GET", API)
    reset = str(1_700_000_060)
    assert first.headers == {
        "X-Rate-Limit-Limit": "2",
        "X-Rate-Limit-Remaining": "1",
        "X-Rate-Limit-Reset": reset,
    }
    assert call(api, "GET", API).headers["X-Rate-Limit-Remaining"] == "0"
    limited = call(api, "GET", API)
    assert limited.status == 429 and limited.json["errorCode"] == "E0000047"
    assert limited.headers["X-Rate-Limit-Reset"] == reset
    clock.now = 1_700_000_060.0
    assert call(api, "GET", API).status == 200


def test_exhausted_by_other_clients(api: OktaApi, clock: Clock) -> None:
    api.exhaust_rate_limit()
    assert call(api, "GET", API).status == 429
    clock.now += 60
    assert call(api, "GET", API).status == 200


def test_state_persists_in_sqlite_with_private_mode(tmp_path: Path, clock: Clock) -> None:
    first = OktaApi(tmp_path / "okta", clock=clock)
    server_id = created(first)
    first.close()
    second = OktaApi(tmp_path / "okta", clock=clock)
    try:
        assert call(second, "GET", f"{API}/{server_id}").status == 200
    finally:
        second.close()
    assert stat.S_IMODE((tmp_path / "okta" / DB_FILE).stat().st_mode) == 0o600
