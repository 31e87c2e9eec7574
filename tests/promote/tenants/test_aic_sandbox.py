"""AicTenant against the sandbox over loopback HTTP: promotion behaviour of a real AIC that
the scripted tests cannot show (stale statuses, encrypted secrets)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from promote.errors import BlockedError
from promote.http import RetryPolicy, StaticAuth
from promote.sandbox import SandboxServer
from promote.tenants.aic import AicTenant

TOKEN = "sandbox-unit-token"
EMAIL = {"host": "smtp.example.com", "port": 587, "from": "noreply@example.com"}


@pytest.fixture
def server(tmp_path: Path, start_sandboxes: Callable[..., SandboxServer]) -> SandboxServer:
    return start_sandboxes(["dev", "staging"], state=tmp_path / "sandbox", tokens=TOKEN)


@pytest.fixture
def pair(server: SandboxServer, tmp_path: Path) -> Iterator[tuple[AicTenant, AicTenant]]:
    dev, staging = aic(server, "dev", tmp_path), aic(server, "staging", tmp_path)
    yield dev, staging
    dev.close()
    staging.close()


def aic(server: SandboxServer, env: str, tmp_path: Path) -> AicTenant:
    return AicTenant(
        env,
        server.url(env),
        auth=StaticAuth(f"Bearer {TOKEN}"),
        mutable=env == "dev",
        config_ids=("external.email",),
        state_dir=tmp_path / "state" / env,
        poll_interval=0.01,
        retry=RetryPolicy(base=0.01),
    )


def status_polls(server: SandboxServer) -> list[int]:
    return [
        r.status
        for r in server.requests
        if (r.method, r.env, r.path) == ("GET", "staging", "/environment/promotion/promote")
    ]


@pytest.mark.parametrize("stale", [1, 4])
def test_a_stale_ready_status_after_the_start_is_not_taken_for_the_result(
    server: SandboxServer, pair: tuple[AicTenant, AicTenant], stale: int
):
    server.apis["staging"].stale_polls = stale  # type: ignore[attr-defined]
    dev, staging = pair
    dev.put_config("external.email", EMAIL)
    report = staging.promote_from(dev, holder="me", description="first")
    assert (report.added, report.dry_run) == (("external.email",), False)
    assert staging.read_config(["external.email"]) == {"external.email": EMAIL}
    assert not staging.lock_state().locked
    # before each start, `stale` old READYs, RUNNING, READY: for the dry run and the promotion
    assert len(status_polls(server)) >= 2 * (stale + 3)

    dev.put_config("external.email", {**EMAIL, "port": 465})
    server.requests.clear()
    second = staging.promote_from(dev, holder="me", description="second")
    assert (second.modified, second.dry_run) == (("external.email",), False)
    assert second.id != report.id
    assert staging.read_config(["external.email"])["external.email"]["port"] == 465
    dry = staging.promote_from(dev, holder="me", description="dry", dry_run=True)
    assert dry.dry_run and dry.id != second.id


LDAP = {
    "connectorRef": {"connectorName": "LDAPConnector"},
    "configurationProperties": {
        "host": "ldap.example.com",
        "credentials": {"$crypto": {"type": "x-simple-encryption", "value": {"data": "AAAA"}}},
    },
}


def test_encrypted_secrets_found_by_the_dry_run_block_the_promotion_and_unlock(
    server: SandboxServer, pair: tuple[AicTenant, AicTenant]
):
    dev, staging = pair
    dev.put_config("external.email", EMAIL)
    dev.put_config("provisioner.openicf/ldap", LDAP)
    with pytest.raises(BlockedError) as caught:
        staging.promote_from(dev, holder="me", description="with a crypto blob")
    assert caught.value.exit_code == 3
    message = str(caught.value)
    assert (
        "1 encrypted secret(s) (provisioner.openicf/ldap: configurationProperties.credentials)"
        in (message)
    )
    assert "provisioner.openicf/ldap: configurationProperties.credentials" in message
    assert "nothing was changed" in message and "ESV secret" in message
    assert staging.read_config(["external.email", "provisioner.openicf/ldap"]) == {}
    assert not staging.lock_state().locked
    starts = [
        r
        for r in server.requests
        if (r.method, r.env, r.path) == ("POST", "staging", "/environment/promotion/promote")
    ]
    assert len(starts) == 1  # the dry run only
