"""The Tenant contract suite against OktaTenant over the sandbox server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from esv.secrets import SecretValue
from promote.sandbox.server import EnvSpec, SandboxServer, start_sandbox
from promote.tenants.base import Tenant
from promote.tenants.okta import OktaTenant
from tests.promote.tenants.contract import TenantContract

TOKEN = "contract-okta-token"


class TestOktaContract(TenantContract):
    """Okta holds only external.email, has no ESVs, promotions or restarts."""

    @pytest.fixture(autouse=True)
    def sandbox(self, tmp_path: Path) -> Iterator[SandboxServer]:
        specs = [EnvSpec("lower", "okta", mutable=True), EnvSpec("upper", "okta", mutable=True)]
        server = start_sandbox(specs, tmp_path / "sandbox", tokens=TOKEN)
        self.server = server
        yield server
        server.stop()

    def make_pair(self, tmp_path: Path) -> tuple[Tenant, Tenant]:
        def tenant(env: str) -> OktaTenant:
            return OktaTenant(
                env,
                url=self.server.url(env),
                token=SecretValue(TOKEN),
                state_dir=tmp_path / ".promote" / "tenants" / env,
            )

        return tenant("lower"), tenant("upper")

    def sample_object(self, object_id: str, n: int, *, placeholders: bool = True) -> Any:
        return {
            "host": f"smtp{n}.example.com",
            "port": 587,
            "from": "ops@example.com",
            "auth": {"enable": True, "username": f"user{n}", "password": f"pw-{n}-secret"},
        }

    def test_config_round_trip(self, pair: tuple[Tenant, Tenant]) -> None:
        # Okta never returns the password: the round trip holds after reconcile_write_only.
        lower, _ = pair
        for n in (1, 2):
            value = self.sample_object("external.email", n)
            lower.put_config("external.email", value)
            assert "external.email" in lower.list_config_ids()
            live = lower.read_config(["external.email", "never/there"])["external.email"]
            assert "password" not in live["auth"]
            assert lower.reconcile_write_only("external.email", value, live) == value
        lower.delete_config("external.email")
        assert lower.list_config_ids() == set()
        assert lower.read_config(["external.email"]) == {}
        lower.delete_config("external.email")  # absent: no-op

    def test_immutable_environment_refuses_direct_config_writes(
        self, pair: tuple[Tenant, Tenant]
    ) -> None:
        pytest.skip("Okta has no promotions: its email server is always written directly")
