"""The sandbox token endpoint: JWT-bearer grant for service accounts, checked strictly."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from esv.secrets import SecretValue
from promote.errors import TenantError
from promote.sandbox import SandboxServer, start_sandbox
from promote.tenants.aic import AicTenant, ServiceAccountAuth


def b64u(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwks(key: rsa.RSAPrivateKey) -> tuple[dict[str, str], str]:
    n = key.private_numbers()
    public = {"kty": "RSA", "n": b64u(n.public_numbers.n), "e": b64u(n.public_numbers.e)}
    private = {**public, "d": b64u(n.d), "p": b64u(n.p), "q": b64u(n.q)}
    return public, json.dumps(private)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[SandboxServer]:
    public, _ = jwks(KEY)
    srv = start_sandbox(
        ["dev", "staging"], tmp_path, tokens="static", service_accounts={"sa-1": public}
    )
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def opened() -> Iterator[list]:
    OPENED.clear()
    yield OPENED
    for thing in OPENED:
        thing.close()


OPENED: list = []


def auth(
    server: SandboxServer, env: str, key: rsa.RSAPrivateKey, account: str = "sa-1", **kw
) -> ServiceAccountAuth:
    made = ServiceAccountAuth(server.url(env), account, SecretValue(jwks(key)[1]), **kw)
    OPENED.append(made)
    return made


def test_service_account_gets_a_token_that_works_for_its_environment_only(server: SandboxServer):
    header = auth(server, "dev", KEY).authorization()
    assert (
        httpx.get(
            server.url("dev") + "/environment/startup", headers={"Authorization": header}
        ).status_code
        == 200
    )
    assert (
        httpx.get(
            server.url("staging") + "/environment/startup", headers={"Authorization": header}
        ).status_code
        == 401
    )
    tenant = AicTenant("dev", server.url("dev"), auth=auth(server, "dev", KEY), mutable=True)
    OPENED.append(tenant)
    assert tenant.restart_status() == "ready"


@pytest.mark.parametrize(
    ("key", "account", "expected"),
    [(OTHER, "sa-1", "signature"), (KEY, "sa-unknown", "unknown service account")],
)
def test_wrong_key_or_account_is_refused(server: SandboxServer, key, account, expected):
    with pytest.raises(TenantError) as caught:
        auth(server, "dev", key, account).authorization()
    assert caught.value.status == 400 and expected in str(caught.value)


def test_expired_assertion_and_wrong_audience_are_refused(server: SandboxServer):
    stale = auth(server, "dev", KEY, clock=lambda: 1_000_000.0)
    with pytest.raises(TenantError, match="expired"):
        stale.authorization()
    misdirected = auth(server, "dev", KEY)
    misdirected.token_url = server.url("staging") + "/am/oauth2/access_token"
    with pytest.raises(TenantError, match="aud"):
        misdirected.authorization()


def test_tokens_expire_and_the_client_fetches_a_new_one(tmp_path: Path):
    public, private = jwks(KEY)
    with start_sandbox(
        ["dev"], tmp_path, service_accounts={"sa-1": public}, token_lifetime=1
    ) as srv:
        tenant = AicTenant(
            "dev",
            srv.url("dev"),
            auth=ServiceAccountAuth(srv.url("dev"), "sa-1", SecretValue(private)),
            mutable=True,
        )
        OPENED.append(tenant)
        assert tenant.restart_status() == "ready"
        assert tenant.restart_status() == "ready"
        grants = [r for r in srv.requests if r.path == "/am/oauth2/access_token"]
        assert len(grants) >= 2  # lifetime under the refresh margin: a new token per request


def test_other_grants_are_refused(server: SandboxServer):
    response = httpx.post(
        server.url("dev") + "/am/oauth2/access_token", data={"grant_type": "password"}
    )
    assert response.status_code == 400 and response.json()["error"] == "unsupported_grant_type"
