"""The sandbox server on loopback: routing, auth, knobs (latency, failures, rate limit), log."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from promote.errors import BlockedError
from promote.sandbox import SandboxServer, start_sandbox
from promote.sandbox.server import EnvSpec, parse_failure

TOKEN = "srv-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def server(tmp_path: Path, start_sandboxes: Callable[..., SandboxServer]) -> SandboxServer:
    return start_sandboxes(["dev", "staging"], state=tmp_path / "state", tokens=TOKEN)


def get(server: SandboxServer, env: str, path: str, **kwargs) -> httpx.Response:
    kwargs.setdefault("headers", AUTH)
    return httpx.get(server.url(env) + path, **kwargs)


def test_serves_each_environment_under_its_prefix(server: SandboxServer):
    assert server.url("dev").startswith("http://127.0.0.1:")
    response = get(server, "dev", "/environment/startup")
    assert response.status_code == 200 and response.json() == {"restartStatus": "ready"}
    missing = httpx.get(f"http://127.0.0.1:{server.port}/qa/environment/startup", headers=AUTH)
    assert missing.status_code == 404 and "dev" in missing.json()["message"]
    assert get(server, "dev", "/nowhere").status_code == 404


def test_requests_need_the_token(server: SandboxServer):
    assert get(server, "dev", "/environment/startup", headers={}).status_code == 401
    wrong = get(server, "dev", "/environment/startup", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json()["message"] == "Access Denied"
    ssws = get(server, "dev", "/environment/startup", headers={"Authorization": f"SSWS {TOKEN}"})
    assert ssws.status_code == 200


def test_per_environment_tokens(tmp_path: Path):
    with start_sandbox(["dev", "prod"], tmp_path, tokens={"dev": "a", "prod": "b"}) as srv:
        assert (
            get(
                srv, "dev", "/environment/startup", headers={"Authorization": "Bearer a"}
            ).status_code
            == 200
        )
        assert (
            get(
                srv, "prod", "/environment/startup", headers={"Authorization": "Bearer a"}
            ).status_code
            == 401
        )


def test_injected_failures_hit_only_matching_requests_count_times(server: SandboxServer):
    server.failures.append(parse_failure("503:2:GET /staging/environment/startup"))
    assert get(server, "dev", "/environment/startup").status_code == 200
    statuses = [get(server, "staging", "/environment/startup").status_code for _ in range(3)]
    assert statuses == [503, 503, 200]


def test_bad_failure_rule_is_blocked():
    with pytest.raises(BlockedError, match="STATUS:COUNT:REGEX"):
        parse_failure("oops")


def test_rate_limit_answers_429_with_retry_after(tmp_path: Path):
    with start_sandbox(["dev"], tmp_path, tokens=TOKEN, rate_limit=5) as srv:
        with httpx.Client(headers=AUTH) as client:
            responses = [client.get(srv.url("dev") + "/environment/startup") for _ in range(12)]
    limited = [r for r in responses if r.status_code == 429]
    assert limited, [r.status_code for r in responses]
    assert all(int(r.headers["Retry-After"]) >= 1 for r in limited)
    assert responses[0].status_code == 200


def test_added_latency_delays_every_answer(tmp_path: Path):
    with start_sandbox(["dev"], tmp_path, tokens=TOKEN, latency_ms=60) as srv:
        started = time.monotonic()
        get(srv, "dev", "/environment/startup")
        assert time.monotonic() - started >= 0.06


def test_request_log_and_writes(server: SandboxServer):
    get(server, "dev", "/environment/variables")
    httpx.put(
        server.url("dev") + "/environment/variables/esv-x",
        headers=AUTH,
        json={"valueBase64": "eA==", "expressionType": "string"},
    )
    assert [(r.method, r.env, r.path, r.status) for r in server.requests] == [
        ("GET", "dev", "/environment/variables", 200),
        ("PUT", "dev", "/environment/variables/esv-x", 200),
    ]
    assert [r.method for r in server.writes("dev")] == ["PUT"]
    assert server.writes("staging") == []


def test_invalid_json_is_a_400(server: SandboxServer):
    response = httpx.put(
        server.url("dev") + "/environment/variables/esv-x",
        headers={**AUTH, "Content-Type": "application/json"},
        content=b"{not json",
    )
    assert response.status_code == 400


def test_environment_names_are_checked(tmp_path: Path):
    with pytest.raises(BlockedError):
        start_sandbox(["dev", "dev"], tmp_path)
    with pytest.raises(BlockedError):
        start_sandbox([], tmp_path)
    with pytest.raises(BlockedError, match="unknown kind"):
        start_sandbox([EnvSpec("x", "ldap")], tmp_path)


def test_state_survives_a_restart_of_the_sandbox(tmp_path: Path):
    with start_sandbox(["dev"], tmp_path, tokens=TOKEN) as srv:
        httpx.put(
            srv.url("dev") + "/environment/variables/esv-keep",
            headers=AUTH,
            json={"valueBase64": "eA==", "expressionType": "string", "description": "kept"},
        )
    with start_sandbox(["dev"], tmp_path, tokens=TOKEN) as srv:
        body = get(srv, "dev", "/environment/variables/esv-keep").json()
    assert body["description"] == "kept" and body["valueBase64"] == "eA=="


def test_peak_in_flight_counts_requests_answered_at_once(tmp_path: Path):
    import concurrent.futures

    with start_sandbox(["dev"], tmp_path, tokens=TOKEN, latency_ms=50) as srv:
        get(srv, "dev", "/environment/startup")
        assert srv.peak_in_flight == 1
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda _: get(srv, "dev", "/environment/startup"), range(4)))
        assert srv.peak_in_flight >= 2
