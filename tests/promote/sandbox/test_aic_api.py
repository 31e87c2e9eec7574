"""AicApi speaks the documented AIC shapes and error bodies (over real loopback HTTP)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from promote.sandbox import SandboxServer

TOKEN = "api-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Accept-API-Version": "protocol=1.0,resource=1.0"}


@pytest.fixture
def srv(tmp_path: Path, start_sandboxes: Callable[..., SandboxServer]) -> SandboxServer:
    return start_sandboxes(["dev", "staging"], state=tmp_path / "state", tokens=TOKEN)


@pytest.fixture
def dev(srv: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.url("dev"), headers=HEADERS) as c:
        yield c


@pytest.fixture
def staging(srv: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.url("staging"), headers=HEADERS) as c:
        yield c


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_variable_upsert_rules(dev: httpx.Client):
    untyped = dev.put("/environment/variables/esv-a", json={"valueBase64": b64("1")})
    assert untyped.status_code == 400
    assert untyped.json() == {
        "code": 400,
        "message": "Variable type required; expressionType cannot be empty when creating new "
        "variables",
    }
    created = dev.put(
        "/environment/variables/esv-a",
        json={"valueBase64": b64("1"), "expressionType": "int", "description": "d"},
    )
    assert created.status_code == 200
    assert created.json() == {
        "_id": "esv-a",
        "description": "d",
        "expressionType": "int",
        "loaded": False,
        "valueBase64": b64("1"),
    }
    retype = dev.put(
        "/environment/variables/esv-a", json={"valueBase64": b64("x"), "expressionType": "string"}
    )
    assert retype.json()["message"] == "Changing the type of an existing variable is not permitted"
    bad_id = dev.put(
        "/environment/variables/esv-A", json={"valueBase64": b64("1"), "expressionType": "int"}
    )
    assert bad_id.status_code == 400 and "^esv-[a-z0-9_-]{1,124}$" in bad_id.json()["message"]
    bad_b64 = dev.put(
        "/environment/variables/esv-b", json={"valueBase64": "***", "expressionType": "string"}
    )
    assert bad_b64.status_code == 400
    assert (
        dev.post(
            "/environment/variables/esv-a",
            params={"_action": "setDescription"},
            json={"description": "new"},
        ).status_code
        == 200
    )
    assert dev.get("/environment/variables/esv-a").json()["description"] == "new"
    assert dev.delete("/environment/variables/esv-a").json()["_id"] == "esv-a"
    gone = dev.get("/environment/variables/esv-a")
    assert gone.status_code == 404 and gone.json() == {
        "code": 404,
        "message": "The variable does not exist",
    }


def test_secrets_create_once_then_versions(dev: httpx.Client):
    body = {
        "valueBase64": b64("pw1"),
        "encoding": "generic",
        "useInPlaceholders": True,
        "description": "s",
    }
    assert (
        dev.put("/environment/secrets/esv-s", json={**body, "useInPlaceholders": None}).status_code
        == 400
    )
    first = dev.put("/environment/secrets/esv-s", json=body).json()
    assert (first["activeVersion"], first["loadedVersion"], first["encoding"], first["loaded"]) == (
        "1",
        "",
        "generic",
        False,
    )
    assert "valueBase64" not in first
    again = dev.put("/environment/secrets/esv-s", json=body)
    assert again.json()["message"] == "Failed to create secret, the secret already exists"
    same = dev.post(
        "/environment/secrets/esv-s/versions",
        params={"_action": "create"},
        json={"valueBase64": b64("pw1")},
    )
    assert same.json()["version"] == "1"  # the same value adds no version
    new = dev.post(
        "/environment/secrets/esv-s/versions",
        params={"_action": "create"},
        json={"valueBase64": b64("pw2")},
    )
    assert new.json() == {"loaded": False, "status": "ENABLED", "version": "2"}
    assert [v["version"] for v in dev.get("/environment/secrets/esv-s/versions").json()] == [
        "2",
        "1",
    ]
    listed = dev.get("/environment/secrets").json()
    assert listed["pagedResultsCookie"] is None and [s["_id"] for s in listed["result"]] == [
        "esv-s"
    ]
    assert "pw" not in json.dumps(listed)
    absent = dev.post(
        "/environment/secrets/esv-none/versions",
        params={"_action": "create"},
        json={"valueBase64": b64("x")},
    )
    assert absent.json() == {
        "code": 404,
        "message": "The secret does not exist or does not have a version",
    }


def test_restart_loads_pending_esvs(dev: httpx.Client):
    dev.put("/environment/variables/esv-a", json={"valueBase64": b64("1"), "expressionType": "int"})
    assert dev.get("/environment/count", params={"_onlyPending": "true"}).json() == {
        "secrets": 0,
        "variables": 1,
    }
    assert dev.post("/environment/startup", params={"_action": "restart"}).json() == {
        "restartStatus": "restarting"
    }
    assert dev.get("/environment/startup").json() == {"restartStatus": "ready"}
    assert dev.get("/environment/variables/esv-a").json()["loaded"] is True


def test_paging_with_page_size_and_cookie(dev: httpx.Client):
    for i in range(5):
        dev.put(
            f"/environment/variables/esv-v{i}",
            json={"valueBase64": b64(str(i)), "expressionType": "string"},
        )
    first = dev.get("/environment/variables", params={"_pageSize": "2"}).json()
    assert [v["_id"] for v in first["result"]] == ["esv-v0", "esv-v1"] and first[
        "pagedResultsCookie"
    ]
    rest = dev.get(
        "/environment/variables",
        params={"_pageSize": "100", "_pagedResultsCookie": first["pagedResultsCookie"]},
    ).json()
    assert [v["_id"] for v in rest["result"]] == ["esv-v2", "esv-v3", "esv-v4"] and rest[
        "pagedResultsCookie"
    ] is None
    assert dev.get("/environment/variables", params={"_pageSize": "1000"}).status_code == 400


def test_config_endpoints_and_immutability(dev: httpx.Client, staging: httpx.Client):
    missing = dev.get("/openidm/config/external.email")
    assert missing.status_code == 404 and missing.json()["reason"] == "Not Found"
    put = dev.put("/openidm/config/emailTemplate/welcome", json={"_id": "ignored", "enabled": True})
    assert put.json() == {"_id": "emailTemplate/welcome", "enabled": True}
    assert dev.get("/openidm/config").json()["configurations"][0]["_id"] == "emailTemplate/welcome"
    refused = staging.put("/openidm/config/external.email", json={"host": "x"})
    assert refused.status_code == 403 and "promot" in refused.json()["message"]


def test_esv_api_is_blocked_while_locked(srv: SandboxServer, staging: httpx.Client):
    srv.apis["staging"].tenant.lock("other")  # type: ignore[attr-defined]
    refused = staging.put(
        "/environment/variables/esv-a", json={"valueBase64": b64("1"), "expressionType": "int"}
    )
    assert refused.status_code == 409
    state = staging.get("/environment/promotion/lock/state").json()
    assert state["result"] == "locked" and state["promotionId"] is None
    assert staging.post("/environment/promotion/lock").status_code == 409


def test_promotion_flow_over_the_api(dev: httpx.Client, staging: httpx.Client):
    dev.put("/openidm/config/external.email", json={"host": "&{esv.email.host}"})
    assert dev.post("/environment/promotion/lock").status_code == 400  # dev has no lower env
    assert staging.post("/environment/promotion/promote", json={"dryRun": True}).status_code == 409
    lock = staging.post("/environment/promotion/lock")
    assert lock.status_code == 202 and lock.json()["result"] == "locking"
    promotion_id = lock.json()["promotionId"]
    assert staging.get("/environment/promotion/lock/state").json()["promotionId"] == promotion_id
    assert (
        staging.post(
            "/environment/promotion/promote", json={"dryRun": True, "promoter": "me"}
        ).status_code
        == 202
    )
    assert staging.get("/environment/promotion/promote").json()["status"] == "RUNNING"
    status = staging.get("/environment/promotion/promote").json()
    assert (status["status"], status["missingESVs"]) == ("READY", ["esv-email-host"])
    report = staging.get("/environment/promotion/report").json()
    assert report["dryRun"] is True and report["missingESVs"] == ["esv-email-host"]
    assert (
        staging.delete(f"/environment/promotion/lock/{promotion_id}").json()["result"] == "unlocked"
    )
    staging.put(
        "/environment/variables/esv-email-host",
        json={"valueBase64": b64("h"), "expressionType": "string"},
    )
    promotion_id = staging.post("/environment/promotion/lock").json()["promotionId"]
    staging.post("/environment/promotion/promote", json={"dryRun": False, "promoter": "me"})
    report = staging.get("/environment/promotion/report").json()
    changes = report["report"]["IDMConfig"][0]["configChange"]
    assert [i["name"] for i in changes["added"]] == ["external.email"]
    assert staging.get("/openidm/config/external.email").json()["host"] == "&{esv.email.host}"
    metas = staging.get("/environment/promotion/reports").json()
    assert [m["reportId"] for m in metas] == [report["reportId"]]
    assert (
        staging.get(f"/environment/promotion/report/{report['reportId']}").json()["reportId"]
        == report["reportId"]
    )
    staging.delete(f"/environment/promotion/lock/{promotion_id}")


def test_send_email_needs_a_provider_and_lands_in_the_outbox(srv: SandboxServer, dev: httpx.Client):
    mail = {"to": "ops@example.com", "subject": "s", "body": "b"}
    assert (
        dev.post("/openidm/external/email", params={"_action": "send"}, json=mail).status_code
        == 400
    )
    dev.put("/openidm/config/external.email", json={"host": "smtp.example.com"})
    sent = dev.post("/openidm/external/email", params={"_action": "send"}, json=mail)
    assert sent.json() == {"status": "OK", "message": "Email sent"}
    outbox = Path(srv.apis["dev"].tenant.state_dir) / "outbox.jsonl"  # type: ignore[attr-defined]
    assert json.loads(outbox.read_text())["to"] == "ops@example.com"


@pytest.mark.parametrize(
    ("method", "path", "header", "status"),
    [
        ("GET", "/environment/variables", None, 200),  # no header: v1, as on the platform
        ("GET", "/environment/variables", "protocol=1.0,resource=1.0", 200),
        ("GET", "/environment/variables", "resource=2.0", 200),
        ("GET", "/environment/variables", "protocol=2.0,resource=3.0", 400),
        ("GET", "/environment/startup", "resource=9.9", 400),
        ("GET", "/environment/promotion/promote", None, 400),
        ("GET", "/environment/promotion/promote", "resource=1.0", 400),
        ("GET", "/environment/promotion/promote", "protocol=1.0,resource=1.0", 200),
        ("GET", "/environment/promotion/lock/state", "protocol=1.0,resource=2.0", 400),
        ("GET", "/openidm/config", None, 400),
        ("GET", "/openidm/config", "resource=2.0", 400),
        ("GET", "/openidm/config", "resource=1.0", 200),
        ("POST", "/openidm/external/email?_action=send", "protocol=1.0,resource=9", 400),
    ],
)
def test_accept_api_version_is_checked_per_endpoint_family(
    srv: SandboxServer, method: str, path: str, header: str | None, status: int
):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    if header is not None:
        headers["Accept-API-Version"] = header
    response = httpx.request(method, srv.url("staging") + path, headers=headers, json={})
    assert response.status_code == status, response.text
    if status == 400:
        body = response.json()
        assert body["code"] == 400 and "Accept-API-Version" in body["message"]
        assert "send " in body["message"]
        if path.startswith("/openidm"):
            assert body["reason"] == "Bad Request"


def test_the_v2_variable_list_omits_values(srv: SandboxServer, dev: httpx.Client):
    dev.put("/environment/variables/esv-a", json={"valueBase64": b64("1"), "expressionType": "int"})
    v2 = dev.get("/environment/variables", headers={"Accept-API-Version": "resource=2.0"})
    assert v2.json()["result"] == [
        {"_id": "esv-a", "description": "", "expressionType": "int", "loaded": False}
    ]


def test_a_request_for_one_esv_never_lists_them_all(
    srv: SandboxServer, dev: httpx.Client, monkeypatch: pytest.MonkeyPatch
):
    # A tenant answers one ESV's request in the same time whatever it holds: the sandbox
    # reads that ESV by its id (listing all of them per write made a 500-ESV run quadratic).
    tenant = srv.apis["dev"].tenant

    def listed() -> None:
        raise AssertionError("listed every ESV for a request about one")

    monkeypatch.setattr(tenant, "list_variables", listed)
    monkeypatch.setattr(tenant, "list_secrets", listed)
    variable, secret = "/environment/variables/esv-v", "/environment/secrets/esv-s"
    describe = {"_action": "setDescription"}
    answers = [
        dev.put(variable, json={"valueBase64": b64("1"), "expressionType": "int"}),
        dev.put(variable, json={"valueBase64": b64("2")}),
        dev.get(variable),
        dev.post(variable, params=describe, json={"description": "v"}),
        dev.put(
            secret,
            json={"valueBase64": b64("pw1"), "encoding": "generic", "useInPlaceholders": True},
        ),
        dev.post(
            f"{secret}/versions", params={"_action": "create"}, json={"valueBase64": b64("pw2")}
        ),
        dev.get(f"{secret}/versions"),
        dev.get(secret),
        dev.post(secret, params=describe, json={"description": "s"}),
        dev.delete(variable),
        dev.delete(secret),
    ]
    assert [a.status_code for a in answers] == [200] * len(answers), [a.text for a in answers]
    assert dev.get(variable).status_code == 404 and dev.get(secret).status_code == 404
