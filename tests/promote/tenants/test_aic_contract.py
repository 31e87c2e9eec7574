"""The Tenant contract, run against AicTenant talking to the sandbox over loopback HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest

from promote.http import RetryPolicy, StaticAuth
from promote.sandbox import SandboxServer, start_sandbox
from promote.tenants.aic import AicTenant
from tests.promote.tenants.contract import TenantContract

TOKEN = "contract-token"


def aic_tenant(server: SandboxServer, env: str, *, mutable: bool, **kwargs) -> AicTenant:
    return AicTenant(
        env,
        server.url(env),
        auth=StaticAuth(f"Bearer {TOKEN}"),
        mutable=mutable,
        config_ids=TenantContract.object_ids,
        poll_interval=0.01,
        retry=RetryPolicy(base=0.01),
        **kwargs,
    )


class TestAicContract(TenantContract):
    # Writes go out one request per ESV: not atomic on failure (ids are checked up front).
    atomic_esv_writes = False

    @pytest.fixture(autouse=True)
    def sandbox(self, tmp_path: Path):
        self.server = start_sandbox(["dev", "staging"], tmp_path / "sandbox", tokens=TOKEN)
        yield self.server
        self.server.stop()

    def make_pair(self, tmp_path: Path):
        return (
            aic_tenant(self.server, "dev", mutable=True),
            aic_tenant(self.server, "staging", mutable=False),
        )

    def take_lock(self, tenant, holder: str) -> None:
        self.server.apis[tenant.env].tenant.lock(holder)  # type: ignore[attr-defined]

    def release_lock(self, tenant, holder: str) -> None:
        self.server.apis[tenant.env].tenant.unlock(holder)  # type: ignore[attr-defined]
