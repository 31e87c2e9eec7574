"""AicTenant and ServiceAccountAuth against httpx.MockTransport: exact requests and failures."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from esv.envfile import SecretSource
from esv.errors import MISSING_ESV
from esv.secrets import SecretValue
from promote.errors import BlockedError, ImmutableError, LockedError, PromoteError, TenantError
from promote.http import RetryPolicy, StaticAuth
from promote.state.fingerprints import Fingerprints
from promote.tenants.aic import AicTenant, ServiceAccountAuth, open_aic
from promote.tenants.base import EsvWrite, LockState

URL = "https://openam-acme-staging.forgeblocks.com"
SECRET = "aic-unit-Secret-991"
KEY = b"\x01" * 32
FINGERPRINTS = Fingerprints(lambda create: KEY)
"""The workspace's keyed fingerprints, as the factory gives them to the tenant."""


def b64u(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwk_text(key: rsa.RSAPrivateKey, *, primes: bool = True) -> str:
    n = key.private_numbers()
    fields = {
        "kty": "RSA",
        "kid": "k1",
        "n": b64u(n.public_numbers.n),
        "e": b64u(n.public_numbers.e),
        "d": b64u(n.d),
    }
    if primes:
        fields.update(p=b64u(n.p), q=b64u(n.q), dp=b64u(n.dmp1), dq=b64u(n.dmq1), qi=b64u(n.iqmp))
    return json.dumps(fields)


def unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class Api:
    """A scripted AIC: routes ``(METHOD, path)`` to handlers; records every request."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Callable[[httpx.Request], httpx.Response]] = {}
        self.requests: list[httpx.Request] = []

    def on(self, method: str, path: str, *responses: httpx.Response) -> None:
        queue = list(responses)
        self.routes[(method, path)] = lambda _: queue.pop(0) if len(queue) > 1 else queue[0]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        handler = self.routes.get((request.method, request.url.path))
        if handler is None:
            return httpx.Response(
                404, json={"code": 404, "message": f"unrouted {request.url.path}"}
            )
        return handler(request)

    def sent(self, method: str | None = None) -> list[tuple[str, str]]:
        return [
            (r.method, r.url.path + (f"?{r.url.query.decode()}" if r.url.query else ""))
            for r in self.requests
            if method is None or r.method == method
        ]


def tenant(api: Api, clock: Clock | None = None, **kwargs) -> AicTenant:
    clock = clock or Clock()
    kwargs.setdefault("mutable", True)
    return AicTenant(
        "staging",
        URL,
        auth=StaticAuth("Bearer t0k"),
        transport=httpx.MockTransport(api),
        sleep=clock.sleep,
        clock=clock,
        retry=RetryPolicy(base=0.01),
        poll_interval=1.0,
        fingerprints=FINGERPRINTS,
        **kwargs,
    )


def listing(items, cookie=None):
    return httpx.Response(
        200, json={"pagedResultsCookie": cookie, "remainingPagedResults": -1, "result": items}
    )


# -- auth -------------------------------------------------------------------------------


def test_service_account_exchanges_a_signed_jwt_and_refreshes_before_expiry(rsa_key):
    clock = Clock()
    issued = iter(["access-1", "access-2"])
    seen: list[dict[str, list[str]]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/am/oauth2/access_token"
        form = parse_qs(request.content.decode())
        seen.append(form)
        return httpx.Response(200, json={"access_token": next(issued), "expires_in": 899})

    auth = ServiceAccountAuth(
        URL,
        "sa-1234",
        SecretValue(jwk_text(rsa_key)),
        transport=httpx.MockTransport(handler),
        clock=clock,
    )
    assert auth.authorization() == "Bearer access-1"
    assert auth.authorization() == "Bearer access-1"  # cached
    form = seen[0]
    assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    assert form["client_id"] == ["service-account"]
    assert "fr:idc:esv:*" in form["scope"][0]
    header_b64, claims_b64, signature_b64 = form["assertion"][0].split(".")
    header = json.loads(unb64u(header_b64))
    claims = json.loads(unb64u(claims_b64))
    assert header == {"alg": "RS256", "typ": "JWT", "kid": "k1"}
    assert claims["iss"] == claims["sub"] == "sa-1234"
    assert claims["aud"] == URL + "/am/oauth2/access_token"
    assert claims["exp"] - claims["iat"] == 180 and claims["jti"]
    rsa_key.public_key().verify(
        unb64u(signature_b64),
        f"{header_b64}.{claims_b64}".encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    clock.now += 899 - 59  # inside the refresh margin
    assert auth.authorization() == "Bearer access-2"
    assert len(seen) == 2
    assert "sa-1234" not in repr(auth)


def test_service_account_jwk_without_primes_still_signs(rsa_key):
    auth = ServiceAccountAuth(URL, "sa", SecretValue(jwk_text(rsa_key, primes=False)))
    header_b64, claims_b64, sig = auth.assertion().split(".")
    rsa_key.public_key().verify(
        unb64u(sig), f"{header_b64}.{claims_b64}".encode(), padding.PKCS1v15(), hashes.SHA256()
    )


def test_bad_jwk_is_blocked_without_echoing_it():
    secret_jwk = '{"kty": "EC", "d": "super-private-material"}'
    with pytest.raises(BlockedError) as caught:
        ServiceAccountAuth(URL, "sa", SecretValue(secret_jwk))
    assert "super-private-material" not in str(caught.value)
    assert "RSA private key in JWK form" in str(caught.value)


def test_token_endpoint_refusal_is_a_scrubbed_tenant_error(rsa_key):
    def handler(request):
        return httpx.Response(
            400, json={"error": "invalid_grant", "error_description": "bad assertion"}
        )

    auth = ServiceAccountAuth(
        URL, "sa", SecretValue(jwk_text(rsa_key)), transport=httpx.MockTransport(handler)
    )
    with pytest.raises(TenantError) as caught:
        auth.authorization()
    assert caught.value.status == 400 and "invalid_grant" in str(caught.value)


def test_expired_token_is_refreshed_on_401(rsa_key):
    tokens = iter(["a1", "a2"])
    api = Api()

    def token(request):
        return httpx.Response(200, json={"access_token": next(tokens), "expires_in": 900})

    api.routes[("POST", "/am/oauth2/access_token")] = token
    calls: list[str] = []

    def startup(request):
        calls.append(request.headers["Authorization"])
        if request.headers["Authorization"] == "Bearer a1":
            return httpx.Response(401, json={"code": 401, "message": "expired"})
        return httpx.Response(200, json={"restartStatus": "ready"})

    api.routes[("GET", "/environment/startup")] = startup
    transport = httpx.MockTransport(api)
    auth = ServiceAccountAuth(URL, "sa", SecretValue(jwk_text(rsa_key)), transport=transport)
    t = AicTenant("dev", URL, auth=auth, mutable=True, transport=transport)
    assert t.restart_status() == "ready"
    assert calls == ["Bearer a1", "Bearer a2"]


def test_open_aic_reads_the_token_from_its_source_and_never_from_the_file(tmp_path: Path):
    env = SimpleNamespace(
        name="staging",
        relpath="environments/staging.yaml",
        tenant={
            "kind": "aic",
            "url": URL,
            "token": SecretSource("env", "STAGING_TOKEN"),
            "concurrency": 3,
        },
    )
    ws = SimpleNamespace(
        root=tmp_path,
        state_dir=tmp_path / ".promote",
        config={"external.email": {}, "emailTemplate/welcome": {}},
        is_mutable=lambda e: False,
        chain=("dev", "staging"),
        lower=lambda e: {"dev": None, "staging": "dev"}[e],
    )
    t = open_aic(env, workspace=ws, environ={"STAGING_TOKEN": "abc"})  # type: ignore[arg-type]
    assert (t.env, t.mutable, t.concurrency, t.lower) == ("staging", False, 3, "dev")
    assert t.state_dir == tmp_path / ".promote" / "tenants" / "staging"
    assert t.managed_config_ids == {"external.email", "emailTemplate/welcome"}
    assert "abc" not in repr(t)


def test_open_aic_without_credentials_is_blocked(tmp_path: Path):
    env = SimpleNamespace(
        name="uat", relpath="environments/uat.yaml", tenant={"kind": "aic", "url": URL}
    )
    ws = SimpleNamespace(root=tmp_path, config={}, is_mutable=lambda e: False)
    with pytest.raises(BlockedError, match="token"):
        open_aic(env, workspace=ws, environ={})  # type: ignore[arg-type]


# -- ESVs -------------------------------------------------------------------------------


def test_list_follows_the_paging_cookie_and_decodes_values():
    api = Api()
    pages = iter(
        [
            listing(
                [
                    {
                        "_id": "esv-a",
                        "valueBase64": base64.b64encode(b"NO").decode(),
                        "expressionType": "string",
                        "loaded": True,
                        "description": "promote:managed",
                    }
                ],
                cookie="c1",
            ),
            listing(
                [
                    {
                        "_id": "esv-b",
                        "valueBase64": base64.b64encode("é".encode()).decode(),
                        "expressionType": "",
                        "loaded": False,
                    }
                ]
            ),
        ]
    )
    api.routes[("GET", "/environment/variables")] = lambda r: next(pages)
    t = tenant(api)
    found = t.list_variables()
    assert (found["esv-a"].value, found["esv-a"].managed, found["esv-a"].loaded) == (
        "NO",
        True,
        True,
    )
    assert (found["esv-b"].value, found["esv-b"].type, found["esv-b"].managed) == (
        "é",
        "string",
        False,
    )
    assert api.sent() == [
        ("GET", "/environment/variables"),
        ("GET", "/environment/variables?_pagedResultsCookie=c1"),
    ]
    assert all(r.headers["Accept-API-Version"] == "protocol=1.0,resource=1.0" for r in api.requests)


def test_writes_only_what_is_asked_with_the_documented_bodies():
    api = Api()
    api.on(
        "GET",
        "/environment/variables",
        listing([{"_id": "esv-port", "valueBase64": "NTg3", "expressionType": "string"}]),
    )
    api.on(
        "GET",
        "/environment/secrets",
        listing(
            [
                {
                    "_id": "esv-old",
                    "activeVersion": "2",
                    "loadedVersion": "2",
                    "useInPlaceholders": True,
                }
            ]
        ),
    )
    ok = httpx.Response(200, json={})
    for method, path in [
        ("PUT", "/environment/variables/esv-host"),
        ("PUT", "/environment/variables/esv-port"),
        ("DELETE", "/environment/variables/esv-port"),
        ("PUT", "/environment/secrets/esv-new"),
        ("POST", "/environment/secrets/esv-old/versions"),
        ("POST", "/environment/secrets/esv-old"),
        ("DELETE", "/environment/secrets/esv-gone"),
    ]:
        api.on(method, path, ok)
    t = tenant(api, concurrency=3)
    t.write_esvs(
        [
            EsvWrite("esv-host", "variable", "add", "smtp.example.com"),
            EsvWrite("esv-port", "variable", "modify", "465", type="int"),  # type change
            EsvWrite("esv-new", "secret", "add", SecretValue(SECRET)),
            EsvWrite("esv-old", "secret", "modify", SecretValue(SECRET)),
            EsvWrite("esv-gone", "secret", "delete"),
        ]
    )
    bodies = {
        (r.method, r.url.path, r.url.query.decode()): json.loads(r.content) if r.content else None
        for r in api.requests
    }
    assert bodies[("PUT", "/environment/variables/esv-host", "")] == {
        "valueBase64": base64.b64encode(b"smtp.example.com").decode(),
        "expressionType": "string",
        "description": "promote:managed",
    }
    # changing the type: delete, then recreate (the platform refuses a type change)
    port = [(r.method) for r in api.requests if r.url.path == "/environment/variables/esv-port"]
    assert port == ["DELETE", "PUT"]
    created = bodies[("PUT", "/environment/secrets/esv-new", "")]
    assert created["encoding"] == "generic" and created["useInPlaceholders"] is True
    assert created["valueBase64"] == base64.b64encode(SECRET.encode()).decode()
    assert created["description"] == f"promote:{FINGERPRINTS.of(SECRET)}"
    assert created["description"].startswith("promote:fp2:")
    assert bodies[("POST", "/environment/secrets/esv-old/versions", "_action=create")] == {
        "valueBase64": base64.b64encode(SECRET.encode()).decode()
    }
    assert bodies[("POST", "/environment/secrets/esv-old", "_action=setDescription")][
        "description"
    ].startswith("promote:fp2:")


def test_secret_matches_uses_the_stored_fingerprint():
    fp = FINGERPRINTS.of(SECRET)
    api = Api()
    api.on(
        "GET",
        "/environment/secrets",
        listing(
            [
                {
                    "_id": "esv-ours",
                    "activeVersion": "1",
                    "loadedVersion": "",
                    "description": f"promote:{fp}",
                },
                {
                    "_id": "esv-old",
                    "activeVersion": "2",
                    "loadedVersion": "2",
                    # an unkeyed PBKDF2 fingerprint from before keyed fingerprints
                    "description": "promote:fp1:0707070707:9f86d081884c7d659a2feaa0c55ad015",
                },
                {
                    "_id": "esv-other-key",
                    "activeVersion": "1",
                    "loadedVersion": "1",
                    "description": "promote:" + Fingerprints(lambda c: b"k" * 32).of(SECRET),
                },
                {
                    "_id": "esv-theirs",
                    "activeVersion": "3",
                    "loadedVersion": "3",
                    "description": "made by hand",
                },
            ]
        ),
    )
    t = tenant(api)
    states = t.list_secrets()
    assert (states["esv-ours"].version, states["esv-ours"].loaded, states["esv-ours"].managed) == (
        1,
        False,
        True,
    )
    assert (states["esv-theirs"].loaded, states["esv-theirs"].managed) == (True, False)
    assert t.secret_matches("esv-ours", SecretValue(SECRET)) is True
    assert t.secret_matches("esv-ours", SecretValue("other")) is False
    assert t.secret_matches("esv-theirs", SecretValue(SECRET)) is None
    assert t.secret_matches("esv-old", SecretValue(SECRET)) is None  # rewritten once
    assert t.secret_matches("esv-other-key", SecretValue(SECRET)) is None
    assert t.secret_matches("esv-absent", SecretValue(SECRET)) is False
    assert len(api.requests) == 1  # one bulk read


def test_failed_writes_name_what_was_written_and_never_the_value():
    api = Api()
    api.on("GET", "/environment/variables", listing([]))
    api.on("GET", "/environment/secrets", listing([]))
    api.on("PUT", "/environment/variables/esv-a", httpx.Response(200, json={}))
    api.on(
        "PUT",
        "/environment/secrets/esv-s",
        httpx.Response(
            500, json={"code": 500, "message": "Failed to create secret", "valueBase64": "eA=="}
        ),
    )
    t = tenant(api, concurrency=1)
    with pytest.raises(TenantError) as caught:
        t.write_esvs(
            [
                EsvWrite("esv-a", "variable", "add", "x"),
                EsvWrite("esv-s", "secret", "add", SecretValue(SECRET)),
            ]
        )
    text = str(caught.value)
    assert "1 of 2 ESV writes failed" in text and "written: add variable esv-a" in text
    assert "esv-s" in text and "Failed to create secret" in text
    assert SECRET not in text and base64.b64encode(SECRET.encode()).decode() not in text


def test_invalid_ids_are_refused_before_any_request():
    api = Api()
    t = tenant(api)
    with pytest.raises(TenantError, match="nothing was written"):
        t.write_esvs(
            [
                EsvWrite("esv-ok", "variable", "add", "1"),
                EsvWrite("ESV.bad", "variable", "add", "2"),
            ]
        )
    assert api.requests == []


# -- config -----------------------------------------------------------------------------


def test_config_read_strips_ids_and_lists_only_managed_objects():
    api = Api()
    api.on(
        "GET",
        "/openidm/config",
        httpx.Response(
            200,
            json={
                "_id": "",
                "configurations": [
                    {"_id": "external.email"},
                    {"_id": "managed"},
                    {"_id": "emailTemplate/welcome"},
                ],
            },
        ),
    )
    api.on(
        "GET",
        "/openidm/config/external.email",
        httpx.Response(200, json={"_id": "external.email", "host": "h"}),
    )
    t = tenant(api, config_ids=("emailTemplate/welcome",))
    assert t.list_config_ids() == {"external.email", "emailTemplate/welcome"}
    assert t.read_config(["external.email", "emailTemplate/none"]) == {
        "external.email": {"host": "h"}
    }
    assert all(r.headers["Accept-API-Version"] == "resource=1.0" for r in api.requests)


def test_immutable_environment_refuses_config_writes_without_a_request():
    api = Api()
    t = tenant(api, mutable=False)
    with pytest.raises(ImmutableError, match="promotion"):
        t.put_config("external.email", {})
    with pytest.raises(ImmutableError):
        t.delete_config("external.email")
    assert api.requests == []


# -- restart ----------------------------------------------------------------------------


def test_restart_status_tolerates_transient_failures_within_its_budget():
    api = Api()
    api.on(
        "GET",
        "/environment/startup",
        httpx.Response(500, json={"code": 500, "message": "boom"}),
        httpx.Response(500, json={"code": 500, "message": "boom"}),
        httpx.Response(200, json={"restartStatus": "ready"}),
    )
    t = tenant(api, error_budget=2)
    assert [t.restart_status() for _ in range(3)] == ["restarting", "restarting", "ready"]


def test_restart_status_fails_once_the_budget_is_spent():
    api = Api()
    api.on(
        "GET", "/environment/startup", httpx.Response(500, json={"code": 500, "message": "boom"})
    )
    t = tenant(api, error_budget=1)
    assert t.restart_status() == "restarting"
    with pytest.raises(TenantError, match="boom"):
        t.restart_status()


def test_restart_status_401_is_not_transient():
    api = Api()
    api.on(
        "GET",
        "/environment/startup",
        httpx.Response(403, json={"code": 403, "message": "no scope"}),
    )
    with pytest.raises(TenantError, match="scope"):
        tenant(api).restart_status()


def test_restart_resumes_a_running_restart_instead_of_starting_another():
    api = Api()
    api.on("GET", "/environment/startup", httpx.Response(200, json={"restartStatus": "restarting"}))
    t = tenant(api)
    t.restart()
    assert api.sent("POST") == []


def test_ready_is_reported_only_once_nothing_is_pending():
    api = Api()
    api.on("GET", "/environment/startup", httpx.Response(200, json={"restartStatus": "ready"}))
    api.on(
        "POST", "/environment/startup", httpx.Response(200, json={"restartStatus": "restarting"})
    )
    api.on(
        "GET",
        "/environment/count",
        httpx.Response(200, json={"secrets": 0, "variables": 2}),
        httpx.Response(200, json={"secrets": 0, "variables": 0}),
    )
    t = tenant(api)
    t.restart()
    assert api.sent("POST") == [("POST", "/environment/startup?_action=restart")]
    assert t.restart_status() == "restarting"
    assert t.restart_status() == "ready"
    assert t.restart_status() == "ready"
    assert len([r for r in api.requests if r.url.path == "/environment/count"]) == 2


# -- promotion --------------------------------------------------------------------------


def promotion_api(*, lock_state="unlocked", promote_posts=None, report=None) -> Api:
    api = Api()
    state = {"result": lock_state}

    def lock(request):
        state["result"] = "locked"
        return httpx.Response(202, json={"promotionId": "p-1", "result": "locking"})

    def unlock(request):
        state["result"] = "unlocked"
        return httpx.Response(200, json={"result": "unlocked"})

    api.routes[("GET", "/environment/promotion/lock/state")] = lambda r: httpx.Response(
        200, json=dict(state, promotionId="p-x")
    )
    api.routes[("POST", "/environment/promotion/lock")] = lock
    api.routes[("DELETE", "/environment/promotion/lock/p-1")] = unlock
    api.on(
        "GET",
        "/environment/promotion/promote",
        httpx.Response(200, json={"status": "READY", "blockingError": False}),
    )
    reports_per_start(
        api,
        report
        or {"reportId": "r-1", "type": "promotion", "missingESVs": [], "createdDate": "2026"},
        promote_posts or (lambda r: httpx.Response(202, json={"result": "ok"})),
    )
    return api


def reports_per_start(
    api: Api, report: dict, promote: Callable[[httpx.Request], httpx.Response]
) -> list[dict]:
    """As AIC: no report before the first start; each start leaves a new report (its id
    suffixed ``-dry`` for a dry run, ``dryRun`` as requested). Returns the request bodies."""
    started: list[dict] = []

    def post(request: httpx.Request) -> httpx.Response:
        response = promote(request)
        if response.status_code == 202:
            started.append(json.loads(request.content))
        return response

    def last(request: httpx.Request) -> httpx.Response:
        if not started:
            return httpx.Response(404, json={"code": 404, "message": "No report"})
        dry = bool(started[-1].get("dryRun"))
        suffix = f"-dry{len(started)}" if dry else ""
        return httpx.Response(
            200, json={**report, "reportId": report["reportId"] + suffix, "dryRun": dry}
        )

    api.routes[("POST", "/environment/promotion/promote")] = post
    api.routes[("GET", "/environment/promotion/report")] = last
    return started


class Lower:
    env = "dev"

    def list_config_ids(self):
        return {"external.email"}

    def read_config(self, ids):
        return {
            "external.email": {"host": "&{esv.email.host}", "port": {"$int": "&{esv.email.port}"}}
        }


def test_held_lock_is_locked_error_and_sends_no_write():
    api = promotion_api(lock_state="locked")
    t = tenant(api, mutable=False)
    with pytest.raises(LockedError) as caught:
        t.promote_from(Lower(), holder="me", description="d")  # type: ignore[arg-type]
    assert caught.value.exit_code == 4
    assert api.sent("POST") == [] and api.sent("DELETE") == []


def test_lock_refused_with_409_is_locked_error():
    api = promotion_api()
    api.on(
        "POST",
        "/environment/promotion/lock",
        httpx.Response(409, json={"message": "A promotion is already running"}),
    )
    with pytest.raises(LockedError, match="already running"):
        tenant(api, mutable=False).promote_from(Lower(), holder="me", description="d")  # type: ignore[arg-type]


def test_missing_esvs_stop_after_the_dry_run_list_all_with_locations_and_unlock():
    api = promotion_api(
        report={
            "reportId": "r",
            "dryRun": True,
            "missingESVs": ["esv-email-port", "esv-email-host", "esv-not-in-dev-config"],
        }
    )
    t = tenant(api, mutable=False)
    with pytest.raises(BlockedError) as caught:
        t.promote_from(Lower(), holder="me", description="d")  # type: ignore[arg-type]
    where = {(p.location, p.path, p.esv_id, p.code) for p in caught.value.problems}
    assert where == {
        ("external.email", "host", "esv-email-host", MISSING_ESV),
        ("external.email", "port", "esv-email-port", MISSING_ESV),
        ("staging", "", "esv-not-in-dev-config", MISSING_ESV),
    }
    posts = [
        json.loads(r.content)
        for r in api.requests
        if r.method == "POST" and r.url.path.endswith("/promote")
    ]
    assert posts == [
        {
            "dryRun": True,
            "promoter": "me",
            "promotionDescription": "d",
            "unlockEnvironmentsAfterPromotion": False,
            "ignoreEncryptedSecrets": False,
        }
    ]
    assert ("DELETE", "/environment/promotion/lock/p-1") in api.sent()


def test_blocking_error_fails_and_still_unlocks():
    api = promotion_api()
    api.on(
        "GET",
        "/environment/promotion/promote",
        httpx.Response(200, json={"status": "READY"}),
        httpx.Response(200, json={"status": "RUNNING", "blockingError": True, "message": "broken"}),
    )
    t = tenant(api, mutable=False)
    with pytest.raises(TenantError, match="blocking error: broken"):
        t.promote_from(Lower(), holder="me", description="d")  # type: ignore[arg-type]
    assert ("DELETE", "/environment/promotion/lock/p-1") in api.sent()


def test_ctrl_c_during_a_promotion_still_unlocks():
    def interrupted(request):
        raise KeyboardInterrupt

    api = promotion_api(promote_posts=interrupted)
    t = tenant(api, mutable=False)
    with pytest.raises(KeyboardInterrupt):
        t.promote_from(Lower(), holder="me", description="d")  # type: ignore[arg-type]
    assert ("DELETE", "/environment/promotion/lock/p-1") in api.sent()


def test_promotion_polls_until_ready_and_reads_the_item_level_report():
    report = {
        "reportId": "r-9",
        "type": "promotion",
        "dryRun": False,
        "createdDate": "2026-01-01",
        "missingESVs": [],
        "report": {
            "IDMConfig": [
                {
                    "configItem": "Email",
                    "configChange": {
                        "added": [{"name": "external.email"}],
                        "modified": [],
                        "deleted": [],
                    },
                }
            ]
        },
    }
    api = promotion_api(report=report)
    api.on(
        "GET",
        "/environment/promotion/promote",
        httpx.Response(200, json={"status": "READY"}),  # before the lock
        httpx.Response(200, json={"status": "RUNNING"}),
        httpx.Response(503),
        httpx.Response(200, json={"status": "READY"}),
    )
    clock = Clock()
    t = tenant(api, clock, mutable=False)
    result = t.promote_from(Lower(), holder="me", description="d")  # type: ignore[arg-type]
    assert (result.id, result.added, result.source, result.env) == (
        "r-9",
        ("external.email",),
        "dev",
        "staging",
    )
    assert clock.slept and max(clock.slept) <= 1.0


def test_ctrl_c_during_concurrent_writes_cancels_what_was_not_sent():
    api = Api()
    api.on("GET", "/environment/variables", listing([]))
    sent: list[str] = []

    def put(request):
        sent.append(request.url.path)
        if request.url.path.endswith("esv-v0"):
            raise KeyboardInterrupt  # surfaces in the worker; the caller sees it from result()
        return httpx.Response(200, json={})

    for i in range(40):
        api.routes[("PUT", f"/environment/variables/esv-v{i}")] = put
    t = tenant(api, concurrency=2)
    with pytest.raises(KeyboardInterrupt):
        t.write_esvs([EsvWrite(f"esv-v{i}", "variable", "add", str(i)) for i in range(40)])
    assert len(sent) < 40


# -- the promotion lock a killed run leaves behind ---------------------------------------


class LockApi(Api):
    """A promotion API whose lock state follows lock/unlock; unlocking takes one poll."""

    def __init__(self, *, unlock_status: int = 200) -> None:
        super().__init__()
        self.state: dict[str, object] = {"result": "unlocked", "promotionId": None}
        self.seen_records: list[object] = []
        self.records: Path | None = None

        def lock(request):
            self.state.update(result="locked", promotionId="p-1")
            return httpx.Response(202, json={"promotionId": "p-1", "result": "locking"})

        def unlock(request):
            if unlock_status != 200:
                return httpx.Response(unlock_status, json={"message": "unlock broke"})
            self.state.update(result="unlocking")
            return httpx.Response(202, json={"result": "unlocking"})

        def state(request):
            body = httpx.Response(200, json=dict(self.state))
            if self.state["result"] == "unlocking":
                self.state["result"] = "unlocked"
            return body

        def promote(request):
            if self.records is not None:
                self.seen_records.append(json.loads(self.records.read_text())["locks"])
            return httpx.Response(202, json={"result": "ok"})

        self.routes[("GET", "/environment/promotion/lock/state")] = state
        self.routes[("POST", "/environment/promotion/lock")] = lock
        self.routes[("DELETE", "/environment/promotion/lock/p-1")] = unlock
        self.on(
            "GET", "/environment/promotion/promote", httpx.Response(200, json={"status": "READY"})
        )
        reports_per_start(self, {"reportId": "r-1", "missingESVs": []}, promote)


def test_the_lock_is_recorded_by_holder_while_held_and_forgotten_after_a_clean_release(
    tmp_path: Path,
):
    api = LockApi()
    api.records = tmp_path / "staging" / "promotion-locks.json"
    t = tenant(api, mutable=False, state_dir=tmp_path / "staging")
    t.promote_from(Lower(), holder="promote run r1", description="d")  # type: ignore[arg-type]
    assert api.seen_records == [{"promote run r1": "p-1"}] * 2  # dry run and promotion
    assert not api.records.exists()
    assert api.sent("DELETE") == [("DELETE", "/environment/promotion/lock/p-1")]


def test_a_lock_left_behind_is_released_by_holder_from_a_new_tenant(tmp_path: Path):
    api = LockApi(unlock_status=500)
    state_dir = tmp_path / "staging"
    with pytest.raises(TenantError, match="unlock broke"):
        tenant(api, mutable=False, state_dir=state_dir).promote_from(
            Lower(),  # type: ignore[arg-type]
            holder="promote run r1",
            description="d",
        )
    record = state_dir / "promotion-locks.json"
    assert json.loads(record.read_text())["locks"] == {"promote run r1": "p-1"}
    assert record.stat().st_mode & 0o777 == 0o600

    fixed = LockApi()
    fixed.state.update(result="locked", promotionId="p-1")
    again = tenant(fixed, mutable=False, state_dir=state_dir)
    assert again.lock_state() == LockState(locked=True, holder="promote run r1")
    again.unlock("someone else")  # no record for that holder: nothing sent
    assert fixed.sent("DELETE") == []
    again.unlock("promote run r1")
    assert fixed.sent("DELETE") == [("DELETE", "/environment/promotion/lock/p-1")]
    assert fixed.state["result"] == "unlocked" and not record.exists()
    again.unlock("promote run r1")  # released already: a no-op
    assert len(fixed.sent("DELETE")) == 1


def test_unlock_never_releases_a_lock_that_is_no_longer_ours(tmp_path: Path):
    state_dir = tmp_path / "staging"
    for now in ({"result": "locked", "promotionId": "p-other"}, {"result": "unlocked"}):
        api = LockApi()
        api.state = dict(now)
        t = tenant(api, mutable=False, state_dir=state_dir)
        t._locks.put("promote run r1", "p-1")
        t.unlock("promote run r1")
        assert api.sent("DELETE") == []
        assert api.state == now
        assert not (state_dir / "promotion-locks.json").exists()


def test_unlock_waits_for_a_lock_still_being_taken(tmp_path: Path):
    api = LockApi()
    states = iter(["locking", "locked"])

    def state(request):
        if api.state["result"] == "locking":
            api.state["result"] = next(states)
        if api.state["result"] == "unlocking":
            api.state["result"] = "unlocked"
        return httpx.Response(200, json=dict(api.state))

    api.routes[("GET", "/environment/promotion/lock/state")] = state
    api.state.update(result="locking", promotionId="p-1")
    t = tenant(api, mutable=False, state_dir=tmp_path)
    t._locks.put("h", "p-1")
    t.unlock("h")
    assert api.sent("DELETE") == [("DELETE", "/environment/promotion/lock/p-1")]
    assert api.state["result"] == "unlocked"


def test_a_lock_that_cannot_be_recorded_is_released_before_anything_runs(tmp_path: Path):
    blocker = tmp_path / "staging"
    blocker.write_text("not a directory")
    api = LockApi()
    t = tenant(api, mutable=False, state_dir=blocker)
    with pytest.raises(
        PromoteError,
        match="cannot record staging.s promotion lock .*released and nothing was changed",
    ):
        t.promote_from(Lower(), holder="h", description="d")  # type: ignore[arg-type]
    assert api.sent("POST") == [("POST", "/environment/promotion/lock")]
    assert api.sent("DELETE") == [("DELETE", "/environment/promotion/lock/p-1")]
    assert api.state["result"] == "unlocked"


def test_an_unreadable_lock_record_names_the_file_and_the_way_out(tmp_path: Path):
    (tmp_path / "promotion-locks.json").write_text("{not json")
    t = tenant(LockApi(), mutable=False, state_dir=tmp_path)
    with pytest.raises(PromoteError, match=r"promotion-locks.json: cannot read .*delete the file"):
        t.unlock("h")


def test_without_a_state_dir_the_record_lives_in_the_tenant(tmp_path: Path):
    api = LockApi(unlock_status=500)
    t = tenant(api, mutable=False)
    with pytest.raises(TenantError):
        t.promote_from(Lower(), holder="h", description="d")  # type: ignore[arg-type]
    assert t.lock_state().holder == "h"
    api.routes[("DELETE", "/environment/promotion/lock/p-1")] = lambda r: (
        api.state.update(result="unlocked") or httpx.Response(200, json={"result": "unlocked"})
    )
    t.unlock("h")
    assert api.state["result"] == "unlocked"
    assert list(tmp_path.iterdir()) == []


def test_an_unreachable_tenant_fails_after_the_clients_own_retries_only():
    attempts: list[str] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        attempts.append(request.url.path)
        raise httpx.ConnectError("[Errno 111] Connection refused")

    clock = Clock()
    t = AicTenant(
        "staging",
        URL,
        auth=StaticAuth("Bearer t0k"),
        mutable=False,
        transport=httpx.MockTransport(refuse),
        sleep=clock.sleep,
        clock=clock,
        poll_interval=5.0,
    )
    with pytest.raises(TenantError) as caught:
        t.lock_state()
    assert attempts == ["/environment/promotion/lock/state"] * RetryPolicy().attempts
    assert sum(clock.slept) <= 0.5 + 1 + 2 + 4  # the client's backoff, nothing stacked on it
    assert caught.value.url == URL + ":443"
    assert str(caught.value).startswith(f"staging ({URL}:443): GET /environment/promotion/")
    attempts.clear()
    with pytest.raises(TenantError):
        t.restart_status()  # not read as "restarting" until the poll budget is spent
    assert attempts == ["/environment/startup"] * RetryPolicy().attempts


def test_promotion_polls_retry_500s_within_the_error_budget_only():
    api = Api()
    boom = httpx.Response(500, json={"code": 500, "message": "boom"})
    api.on("GET", "/environment/promotion/lock/state", boom, boom, boom)
    t = tenant(api, error_budget=2)
    with pytest.raises(TenantError, match="boom"):
        t.lock_state()
    assert len(api.requests) == 3  # 1 + a budget of 2, each sent once by the client


def test_config_written_by_promote_stays_managed_until_deleted(tmp_path: Path):
    api = Api()
    configurations = {"configurations": [{"_id": i} for i in ("ui/theme", "emailTemplate/a")]}
    api.on("GET", "/openidm/config", httpx.Response(200, json=configurations))
    api.on("PUT", "/openidm/config/emailTemplate/a", httpx.Response(200, json={}))
    api.on("DELETE", "/openidm/config/emailTemplate/a", httpx.Response(200, json={}))
    t = tenant(api, state_dir=tmp_path / "dev")
    assert t.list_config_ids() == set()  # the platform's objects are not promote's
    t.put_config("emailTemplate/a", {"x": 1})
    again = tenant(api, state_dir=tmp_path / "dev")  # a later run: the record is durable
    assert again.list_config_ids() == {"emailTemplate/a"}
    record = tmp_path / "dev" / "managed-config.json"
    assert record.stat().st_mode & 0o777 == 0o600
    again.delete_config("emailTemplate/a")
    assert json.loads(record.read_text())["ids"] == []
    record.write_text("{not json")
    with pytest.raises(PromoteError, match="managed-config.json: cannot read"):
        again.list_config_ids()


def test_a_new_report_that_is_not_the_kind_started_fails_the_promotion_and_unlocks():
    api = promotion_api()
    always_dry = {"reportId": "r-dry", "dryRun": True, "missingESVs": []}
    posts = 0

    def last(request):
        return httpx.Response(200, json={**always_dry, "reportId": f"r-{posts}"})

    def post(request):
        nonlocal posts
        posts += 1
        return httpx.Response(202, json={"result": "ok"})

    api.routes[("GET", "/environment/promotion/report")] = last
    api.routes[("POST", "/environment/promotion/promote")] = post
    t = tenant(api, mutable=False)
    with pytest.raises(TenantError, match="is a dry run, but a promotion was started"):
        t.promote_from(Lower(), holder="me", description="d")  # type: ignore[arg-type]
    assert ("DELETE", "/environment/promotion/lock/p-1") in api.sent()


def test_a_status_that_never_leaves_the_old_ready_times_out_naming_it():
    api = promotion_api(promote_posts=lambda r: httpx.Response(202, json={"result": "ok"}))
    api.routes[("GET", "/environment/promotion/report")] = lambda r: httpx.Response(
        200, json={"reportId": "old", "dryRun": True, "missingESVs": []}
    )
    clock = Clock()
    t = tenant(api, clock, mutable=False, promotion_timeout=30)
    with pytest.raises(TenantError, match="never left the status it had before the start"):
        t.promote_from(Lower(), holder="me", description="d")  # type: ignore[arg-type]
    assert ("DELETE", "/environment/promotion/lock/p-1") in api.sent()


EXPECTED_API_VERSION = {
    "/environment/promotion": "protocol=1.0,resource=1.0",
    "/environment/": "protocol=1.0,resource=1.0",
    "/openidm/": "resource=1.0",
}


def test_every_request_of_a_promotion_and_restart_carries_its_families_api_version(
    tmp_path: Path,
):
    from promote.sandbox.aic_api import AicApi
    from promote.sandbox.routes import SandboxRequest
    from promote.tenants.local import LocalTenant

    apis = {
        "dev.example.com": AicApi(LocalTenant("dev", tmp_path / "dev", mutable=True)),
        "staging.example.com": AicApi(
            LocalTenant("staging", tmp_path / "staging", mutable=False),
            lower=LocalTenant("dev", tmp_path / "dev", mutable=True),
        ),
    }
    seen: list[tuple[str, str, str | None, int]] = []

    def bridge(request: httpx.Request) -> httpx.Response:
        # The sandbox's own API objects, reached through MockTransport instead of a socket.
        body = request.content
        answer = apis[request.url.host].handle(
            SandboxRequest(
                request.method,
                request.url.path,
                parse_qs(request.url.query.decode()),
                {k.lower(): v for k, v in request.headers.items()},
                body,
                json.loads(body) if body else None,
            )
        )
        assert answer is not None, request.url.path
        header = request.headers.get("Accept-API-Version")
        seen.append((request.method, request.url.path, header, answer.status))
        return httpx.Response(answer.status, json=answer.json)

    def aic(env: str, mutable: bool, lower: str | None = None) -> AicTenant:
        return AicTenant(
            env,
            f"https://{env}.example.com",
            auth=StaticAuth("Bearer t0k"),
            mutable=mutable,
            lower=lower,
            transport=httpx.MockTransport(bridge),
            poll_interval=0.0,
            sleep=lambda _: None,
        )

    dev, staging = aic("dev", True), aic("staging", False, lower="dev")
    writes = [
        EsvWrite("esv-email-host", "variable", "add", "smtp.example.com"),
        EsvWrite("esv-email-port", "variable", "add", "465", type="int"),
        EsvWrite("esv-email-password", "secret", "add", SecretValue(SECRET)),
    ]
    for env in (dev, staging):
        env.write_esvs(writes)
        env.restart()
        while env.restart_status() != "ready":
            pass
    config = {"host": "&{esv.email.host}", "port": {"$int": "&{esv.email.port}"}}
    dev.put_config("external.email", config)
    report = staging.promote_from(dev, holder="me", description="d")
    staging.send_test_email(from_address="a@example.com", to_address="b@example.com")
    staging.reports()
    rolled_back = staging.rollback(holder="me")
    # AIC's reports do not name the lower environment: the tenant's own lower is the source
    assert (rolled_back.type, rolled_back.source) == ("rollback", "dev")
    reports = staging.reports()
    assert [(r.type, r.source) for r in reports if not r.dry_run] == [
        ("promotion", "dev"),
        ("rollback", "dev"),
    ]
    assert report.source == "dev"
    assert report.added == ("external.email",)
    assert staging.read_config(staging.list_config_ids()) == {}  # rolled back
    assert len(seen) > 40
    for method, path, header, status in seen:
        family = next(f for f in EXPECTED_API_VERSION if path.startswith(f))
        assert header == EXPECTED_API_VERSION[family], (method, path, header)
        assert status != 400, (method, path)  # 404 only: no report before the first
    for api in apis.values():
        api.close()
    dev.close()
    staging.close()
