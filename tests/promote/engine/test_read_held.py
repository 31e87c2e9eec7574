"""A plan reads a REST tenant's lock, config and ESVs at once (one round trip, not four);
other tenants are read one call after another, on the planning thread."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from promote.engine.stage_plan import read_held
from promote.errors import LockedError
from promote.tenants.aic import AicTenant
from promote.tenants.base import Capabilities, LockState, SecretState, VariableState
from promote.tenants.local import LOCAL_CAPABILITIES


class ReadsOnly:
    """The reads ``read_held`` makes, each waiting until ``together`` of them are in flight."""

    def __init__(self, *, concurrent: bool, together: int, locked: bool = False) -> None:
        self.capabilities = Capabilities(concurrent_reads=concurrent)
        self._barrier = threading.Barrier(together, timeout=5)
        self.threads: set[int] = set()
        self._locked = locked

    def _wait(self) -> None:
        self.threads.add(threading.get_ident())
        self._barrier.wait()

    def lock_state(self) -> LockState:
        self._wait()
        return LockState(self._locked, "someone else" if self._locked else None)

    def list_config_ids(self) -> set[str]:
        self._wait()
        return {"external.email"}

    def read_config(self, ids: Any) -> dict[str, Any]:
        return {"external.email": {"host": "h"}}

    def list_variables(self) -> dict[str, VariableState]:
        self._wait()
        return {"esv-a": VariableState("esv-a", "1", "string", loaded=True)}

    def list_secrets(self) -> dict[str, SecretState]:
        self._wait()
        return {"esv-s": SecretState("esv-s", 1, loaded=True)}


def test_a_rest_tenant_is_read_all_at_once() -> None:
    tenant = ReadsOnly(concurrent=True, together=4)  # a sequential read would time out
    held = read_held(tenant, {"external.email": {}}, env="dev")  # type: ignore[arg-type]
    assert held.config == {"external.email": {"host": "h"}}
    assert list(held.variables) == ["esv-a"] and list(held.secrets) == ["esv-s"]
    assert len(tenant.threads) >= 3


def test_a_held_lock_still_stops_the_stage() -> None:
    tenant = ReadsOnly(concurrent=True, together=4, locked=True)
    with pytest.raises(LockedError, match="someone else"):
        read_held(tenant, {}, env="dev")  # type: ignore[arg-type]


def test_other_tenants_are_read_in_turn_on_this_thread() -> None:
    tenant = ReadsOnly(concurrent=False, together=1)
    held = read_held(tenant, {}, env="dev")  # type: ignore[arg-type]
    assert list(held.variables) == ["esv-a"]
    assert tenant.threads == {threading.get_ident()}


def test_which_tenants_read_concurrently() -> None:
    assert AicTenant.capabilities.concurrent_reads is True
    assert LOCAL_CAPABILITIES.concurrent_reads is False  # one SQLite connection
