"""A promotion killed with the lock held, released by ``AicTenant.unlock`` against the sandbox.

The killed run is a real process: it takes the lock through the tenant and exits (``os._exit``,
so no ``finally`` runs) while the dry run is polled. A new tenant in this process, reading the
same state directory, then finds the lock by its holder and releases it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from esv.secrets import SecretValue
from promote.http import RetryPolicy, StaticAuth
from promote.sandbox import SandboxServer, start_sandbox
from promote.tenants.aic import AicTenant
from promote.tenants.base import EsvWrite

TOKEN = "recovery-token"
HOLDER = "promote run 20260101-killed"

# Takes the lock, records it, and dies at the first poll of the dry run.
KILLED_RUN = """
import os, sys
from pathlib import Path
from promote.http import StaticAuth
from promote.tenants.aic import AicTenant

base, token, state_dir, holder = sys.argv[1:]
def tenant(env, **kw):
    return AicTenant(env, f"{base}/{env}", auth=StaticAuth("Bearer " + token), **kw)
upper = tenant("staging", mutable=False, state_dir=Path(state_dir), sleep=lambda s: os._exit(9))
upper.promote_from(tenant("dev", mutable=True), holder=holder, description="killed")
sys.exit(0)
"""


OPENED: list[AicTenant] = []


@pytest.fixture(autouse=True)
def close_tenants() -> Iterator[None]:
    yield
    while OPENED:
        OPENED.pop().close()


def aic(server: SandboxServer, env: str, state_dir: Path | None = None) -> AicTenant:
    tenant = AicTenant(
        env,
        server.url(env),
        auth=StaticAuth(f"Bearer {TOKEN}"),
        mutable=env == "dev",
        state_dir=state_dir,
        poll_interval=0.01,
        retry=RetryPolicy(base=0.01),
    )
    OPENED.append(tenant)
    return tenant


def kill_mid_promotion(server: SandboxServer, state_dir: Path) -> None:
    base = f"http://127.0.0.1:{server.port}"
    child = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, base, TOKEN, str(state_dir), HOLDER],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == 9, child.stderr


def test_a_killed_runs_lock_is_released_by_its_holder_from_a_new_tenant(tmp_path: Path):
    state_dir = tmp_path / ".promote" / "tenants" / "staging"
    with start_sandbox(["dev", "staging"], tmp_path / "sandbox", tokens=TOKEN) as server:
        dev = aic(server, "dev")
        dev.put_config("external.email", {"host": "smtp.example.com"})
        kill_mid_promotion(server, state_dir)

        record = json.loads((state_dir / "promotion-locks.json").read_text())
        promotion_id = record["locks"][HOLDER]
        staging = aic(server, "staging", state_dir)
        assert staging.lock_state().locked and staging.lock_state().holder == HOLDER
        assert dev.lock_state().locked  # the promotion API locks both environments

        staging.unlock("promote run someone-else")  # not the holder: nothing happens
        assert staging.lock_state().locked
        staging.unlock(HOLDER)
        assert not staging.lock_state().locked and not dev.lock_state().locked
        assert not (state_dir / "promotion-locks.json").exists()
        deletes = [r.path for r in server.writes("staging") if r.method == "DELETE"]
        assert deletes == [f"/environment/promotion/lock/{promotion_id}"]

        # Unlocked for real: ESV writes are accepted again and a promotion goes through.
        dev.write_esvs([EsvWrite("esv-x", "secret", "add", SecretValue("v"))])
        report = staging.promote_from(dev, holder="promote run next", description="after")
        assert report.source == "dev"
        assert staging.read_config({"external.email"}) == {
            "external.email": {"host": "smtp.example.com"}
        }
        assert not staging.lock_state().locked


def test_the_lock_survives_a_sandbox_restart_and_is_still_releasable(tmp_path: Path):
    state_dir = tmp_path / ".promote" / "tenants" / "staging"
    with start_sandbox(["dev", "staging", "uat"], tmp_path / "sandbox", tokens=TOKEN) as server:
        kill_mid_promotion(server, state_dir)
    with start_sandbox(["dev", "staging", "uat"], tmp_path / "sandbox", tokens=TOKEN) as server:
        staging, uat = aic(server, "staging", state_dir), aic(server, "uat")
        assert staging.lock_state().holder == HOLDER
        # uat's API did not take staging's lock: it reports it locked by another promotion.
        assert uat.lock_state().locked and uat.lock_state().holder is None
        staging.unlock(HOLDER)
        assert not staging.lock_state().locked and not uat.lock_state().locked
