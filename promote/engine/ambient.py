"""What a run takes from its surroundings (:class:`Ambient`) and what every plan of one run
is made with (:class:`Planning`: the state store, the workspace's secret fingerprints, the
environments whose drift is accepted)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from typing import TYPE_CHECKING

from promote.clock import WallClock, utc_now
from promote.engine.hooks import PostHook
from promote.engine.plan import Plan, build_plan
from promote.engine.session import tenant_fingerprints
from promote.files import Appender, Writer, append_line, atomic_write
from promote.state.base import StateStore
from promote.state.factory import open_store
from promote.state.fingerprints import Fingerprints, fingerprints_for
from promote.tenants.base import Tenant
from promote.workspace import Workspace

if TYPE_CHECKING:
    from promote.email import Transports

__all__ = [
    "Ambient",
    "DEFAULT_RESTART_TIMEOUT",
    "POLL_SECONDS",
    "Planning",
    "Step",
    "fingerprints_of",
    "new_run_id",
    "open_run_store",
    "plan_for",
]


DEFAULT_RESTART_TIMEOUT = 600.0
"""Seconds to wait for a restart to be ready when ``tenant.restart_timeout`` is not set."""

POLL_SECONDS = 2.0

Step = Callable[[str, str], None]
"""Called before each step with ``(env, step)``; tests raise from it to simulate a crash."""


@dataclass(frozen=True)
class Ambient:
    """Everything a run takes from its surroundings; tests pass their own."""

    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    clock: Callable[[], float] = time.monotonic
    """Measures waits (monotonic seconds)."""
    wall_clock: WallClock = utc_now
    """The time of run ids, journals, history records and plans."""
    sleep: Callable[[float], None] = time.sleep
    confirm: Callable[[str], bool] | None = None
    """Asks a person (a TTY) to approve a protected environment; ``None``: nobody to ask."""
    progress: Callable[[str], None] | None = None
    """Receives progress lines during long waits (the CLI shows them on a TTY only)."""
    before_step: Step | None = None
    write: Writer = atomic_write
    """Writes the local store's files; tests pass one that fails like a full disk."""
    append: Appender = append_line
    """Appends the local store's history lines; tests pass one that fails like a full disk."""
    post: PostHook | None = None
    poll_seconds: float = POLL_SECONDS
    transports: Transports | None = None
    """How verify gates reach mail servers (``None``: the network, verifying certificates)."""


def new_run_id(clock: WallClock) -> str:
    stamp = clock().astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{uuid.uuid4().hex[:8]}"


def open_run_store(workspace: Workspace, ambient: Ambient) -> StateStore:
    return open_store(workspace, write=ambient.write, append=ambient.append)


@dataclass(frozen=True)
class Planning:
    """What every plan of one run is made with."""

    store: StateStore
    fingerprints: Fingerprints
    accept_drift: tuple[str, ...]


def fingerprints_of(
    tenants: Mapping[str, Tenant], store: StateStore, ambient: Ambient
) -> Fingerprints:
    return tenant_fingerprints(tenants) or fingerprints_for(store, ambient.environ)


def plan_for(
    workspace: Workspace,
    to: str,
    tenants: Mapping[str, Tenant],
    ambient: Ambient,
    planning: Planning,
) -> Plan:
    return build_plan(
        workspace,
        to,
        tenants,
        environ=ambient.environ,
        store=planning.store,
        fingerprints=planning.fingerprints,
        accept_drift=planning.accept_drift,
    )
