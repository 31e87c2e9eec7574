"""HttpClient: retries, 429, auth refresh and error mapping against httpx.MockTransport."""

from __future__ import annotations

import email.utils
import json

import httpx
import pytest

from promote.errors import TenantError
from promote.http import HttpClient, RetryPolicy, StaticAuth, display_url, scrub


class Recorder:
    """A MockTransport handler that replays scripted responses and records requests."""

    def __init__(self, *responses: httpx.Response | Exception) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        item = self.responses.pop(0) if len(self.responses) > 1 else self.responses[0]
        if isinstance(item, Exception):
            raise item
        return item


def make_client(handler, **kwargs) -> tuple[HttpClient, list[float]]:
    sleeps: list[float] = []
    kwargs.setdefault("auth", StaticAuth("Bearer tok-123"))
    kwargs.setdefault("rand", lambda: 1.0)
    client = HttpClient(
        "https://tenant.example.com",
        env="staging",
        transport=httpx.MockTransport(handler),
        sleep=sleeps.append,
        clock=lambda: 1_000_000.0,
        **kwargs,
    )
    return client, sleeps


def test_sends_api_version_per_request_and_auth_header():
    rec = Recorder(httpx.Response(200, json={"ok": True}))
    client, _ = make_client(rec)
    assert client.get_json("/environment/variables", api_version="resource=1.0") == {"ok": True}
    client.request("GET", "/openidm/config/x")
    first, second = rec.requests
    assert first.headers["Accept-API-Version"] == "resource=1.0"
    assert first.headers["Authorization"] == "Bearer tok-123"
    assert "Accept-API-Version" not in second.headers


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "HEAD"])
def test_idempotent_methods_retry_transient_statuses_with_backoff(method):
    rec = Recorder(httpx.Response(503), httpx.Response(502), httpx.Response(200))
    client, sleeps = make_client(rec)
    assert client.request(method, "/x").status_code == 200
    assert len(rec.requests) == 3
    assert sleeps == [0.5, 1.0]  # base * 2**n, jitter factor 1.0 with rand()=1


def test_backoff_is_jittered_down_to_half():
    rec = Recorder(httpx.Response(504), httpx.Response(200))
    client, sleeps = make_client(rec, rand=lambda: 0.0)
    client.request("GET", "/x")
    assert sleeps == [0.25]


def test_post_is_not_retried_on_transient_status():
    rec = Recorder(httpx.Response(503, json={"code": 503, "message": "busy"}))
    client, sleeps = make_client(rec)
    with pytest.raises(TenantError) as caught:
        client.request("POST", "/environment/startup", params={"_action": "restart"})
    assert len(rec.requests) == 1 and sleeps == []
    error = caught.value
    assert (error.method, error.path, error.status, error.env) == (
        "POST",
        "/environment/startup",
        503,
        "staging",
    )
    assert "busy" in str(error)


def test_connection_errors_retried_for_get_then_mapped():
    rec = Recorder(httpx.ConnectError("refused"))
    client, sleeps = make_client(rec, retry=RetryPolicy(attempts=3))
    with pytest.raises(TenantError) as caught:
        client.request("GET", "/environment/startup")
    assert len(rec.requests) == 3 and len(sleeps) == 2
    assert caught.value.status is None
    assert "ConnectError" in str(caught.value) and "3 attempts" in str(caught.value)


def test_connection_error_on_post_fails_at_once():
    rec = Recorder(httpx.ReadTimeout("slow"))
    client, sleeps = make_client(rec)
    with pytest.raises(TenantError, match="ReadTimeout"):
        client.request("POST", "/x", json_body={})
    assert len(rec.requests) == 1 and sleeps == []


def test_timeouts_are_retried_for_put():
    rec = Recorder(httpx.ReadTimeout("slow"), httpx.Response(200))
    client, sleeps = make_client(rec)
    assert client.request("PUT", "/x", json_body={"a": 1}).status_code == 200
    assert len(sleeps) == 1


def test_429_honours_retry_after_seconds_for_post():
    rec = Recorder(httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(200))
    client, sleeps = make_client(rec)
    assert client.request("POST", "/x", json_body={"a": 1}).status_code == 200
    assert sleeps == [7.0]
    assert [json.loads(r.content) for r in rec.requests] == [{"a": 1}, {"a": 1}]


def test_429_honours_retry_after_http_date():
    when = email.utils.formatdate(1_000_000.0 + 12, usegmt=True)
    rec = Recorder(httpx.Response(429, headers={"Retry-After": when}), httpx.Response(200))
    client, sleeps = make_client(rec)
    client.request("GET", "/x")
    assert sleeps == [12.0]


def test_429_without_retry_after_backs_off_and_gives_up_after_budget():
    rec = Recorder(httpx.Response(429, json={"message": "too many"}))
    client, sleeps = make_client(rec, retry=RetryPolicy(rate_limit_attempts=3))
    with pytest.raises(TenantError) as caught:
        client.request("GET", "/x")
    assert caught.value.status == 429 and len(rec.requests) == 3 and len(sleeps) == 2


def test_429_with_absurd_retry_after_fails_instead_of_hanging():
    rec = Recorder(httpx.Response(429, headers={"Retry-After": "86400"}))
    client, sleeps = make_client(rec)
    with pytest.raises(TenantError):
        client.request("GET", "/x")
    assert sleeps == []


def test_401_invalidates_auth_once_and_resends():
    class Rotating:
        def __init__(self):
            self.tokens = iter(["Bearer old", "Bearer new"])
            self.current = next(self.tokens)
            self.invalidated = 0

        def authorization(self):
            return self.current

        def invalidate(self):
            self.invalidated += 1
            self.current = next(self.tokens)

    auth = Rotating()
    rec = Recorder(httpx.Response(401), httpx.Response(200))
    client, _ = make_client(rec, auth=auth)
    client.request("POST", "/x", json_body={})
    assert [r.headers["Authorization"] for r in rec.requests] == ["Bearer old", "Bearer new"]
    assert auth.invalidated == 1


def test_401_twice_is_an_error_with_a_hint():
    rec = Recorder(httpx.Response(401, json={"code": 401, "message": "Access Denied"}))
    client, _ = make_client(rec)
    with pytest.raises(TenantError, match="Access Denied.*access token was refused"):
        client.request("GET", "/x")
    assert len(rec.requests) == 2


def test_ok_statuses_are_returned():
    rec = Recorder(httpx.Response(404, json={"code": 404, "message": "nope"}))
    client, _ = make_client(rec)
    assert client.request("GET", "/x", ok=(404,)).status_code == 404


def test_error_excerpt_scrubs_secrets_and_tokens():
    body = json.dumps(
        {
            "message": "bad request with Bearer eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl",
            "valueBase64": "c3VwZXJzZWNyZXQ=",
            "password": "hunter2",
            "clientSecret": "cs-value",
            "echo": "Authorization: SSWS 00abcdefSECRET",
        }
    )
    rec = Recorder(httpx.Response(400, content=body.encode()))
    client, _ = make_client(rec)
    with pytest.raises(TenantError) as caught:
        client.request("PUT", "/environment/variables/esv-x", json_body={})
    text = str(caught.value) + repr(caught.value) + (caught.value.body or "")
    for leaked in ("c3VwZXJzZWNyZXQ=", "hunter2", "cs-value", "00abcdefSECRET", "c2lnbmF0dXJl"):
        assert leaked not in text
    assert caught.value.status == 400 and caught.value.path == "/environment/variables/esv-x"


def test_excerpt_is_bounded():
    rec = Recorder(httpx.Response(500, content=b"x" * 5000))
    client, _ = make_client(rec)
    with pytest.raises(TenantError) as caught:
        client.request("GET", "/x", ok=())
    assert caught.value.body is not None and len(caught.value.body) == 300


def test_on_response_hook_sees_every_response():
    seen: list[str] = []
    rec = Recorder(
        httpx.Response(429, headers={"Retry-After": "0", "X-Rate-Limit-Remaining": "0"}),
        httpx.Response(200, headers={"X-Rate-Limit-Remaining": "9"}),
    )
    client, _ = make_client(
        rec, on_response=lambda r: seen.append(r.headers["X-Rate-Limit-Remaining"])
    )
    client.request("GET", "/x")
    assert seen == ["0", "9"]


def test_non_json_body_is_a_tenant_error():
    rec = Recorder(httpx.Response(200, content=b"<html>"))
    client, _ = make_client(rec)
    with pytest.raises(TenantError, match="not JSON"):
        client.get_json("/x")


def test_form_bodies_and_scrub_of_form_fields():
    rec = Recorder(httpx.Response(200, json={}))
    client, _ = make_client(rec, auth=None)
    client.request(
        "POST", "/token", form={"assertion": "abc", "grant_type": "g"}, authenticate=False
    )
    assert b"assertion=abc" in rec.requests[0].content
    assert "Authorization" not in rec.requests[0].headers
    assert scrub("assertion=abc&grant_type=g&client_secret=zzz") == (
        "assertion=***&grant_type=g&client_secret=***"
    )


def test_static_auth_repr_hides_token():
    assert "tok" not in repr(StaticAuth("Bearer tok"))


def test_every_error_names_the_tenants_base_url_with_its_port():
    refused = Recorder(httpx.ConnectError("[Errno 111] Connection refused"))
    client, _ = make_client(refused)
    with pytest.raises(TenantError) as caught:
        client.get_json("/environment/promotion/lock/state")
    assert caught.value.url == "https://tenant.example.com:443"
    assert str(caught.value).startswith(
        "staging (https://tenant.example.com:443): GET /environment/promotion/lock/state: "
        "ConnectError"
    )
    status, _ = make_client(Recorder(httpx.Response(400, json={"message": "no"})))
    with pytest.raises(TenantError) as caught:
        status.request("PUT", "/openidm/config/x")
    assert caught.value.url == "https://tenant.example.com:443" and caught.value.status == 400
    not_json, _ = make_client(Recorder(httpx.Response(200, text="<html>")))
    with pytest.raises(TenantError) as caught:
        not_json.get_json("/x")
    assert "(https://tenant.example.com:443)" in str(caught.value)


@pytest.mark.parametrize(
    ("base", "shown"),
    [
        ("http://127.0.0.1:8123/dev/", "http://127.0.0.1:8123/dev"),
        ("https://openam-acme-dev.forgeblocks.com", "https://openam-acme-dev.forgeblocks.com:443"),
        ("http://example.com/okta", "http://example.com:80/okta"),
        ("https://[::1]:8443", "https://[::1]:8443"),
    ],
)
def test_display_url_spells_out_scheme_host_port_and_prefix(base, shown):
    assert display_url(base) == shown
    assert HttpClient(base).display_url == shown


def test_tenant_error_without_env_still_names_the_url():
    error = TenantError("boom", url="http://127.0.0.1:1/dev", method="GET", path="/x")
    assert str(error) == "http://127.0.0.1:1/dev: GET /x: boom"
    assert str(TenantError("boom", env="dev")) == "dev: boom"
