"""Tenants of a workspace, opened on first use and closed together.

A run to ``staging`` never opens ``prod``'s tenant (whose credentials may be absent);
recovering an unfinished run may need more environments than the run asked for.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType

from promote.state.base import StateStore
from promote.state.fingerprints import Fingerprints, fingerprints_for
from promote.tenants.base import Tenant
from promote.tenants.factory import open_tenant
from promote.workspace import Workspace

__all__ = ["Opener", "Tenants", "tenant_fingerprints"]

Opener = Callable[[Workspace, str, Mapping[str, str]], Tenant]
"""Open the tenant of one environment: ``(workspace, env, environ) -> Tenant``."""


def _opener(store: StateStore | None, fingerprints: Fingerprints | None) -> Opener:
    def open_with_factory(workspace: Workspace, env: str, environ: Mapping[str, str]) -> Tenant:
        return open_tenant(
            workspace.environments[env],
            workspace=workspace,
            environ=environ,
            store=store,
            fingerprints=fingerprints,
        )

    return open_with_factory


class Tenants(Mapping[str, Tenant]):
    """A lazy mapping env -> open tenant, for the environments of one workspace."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        environ: Mapping[str, str] = os.environ,
        opener: Opener | None = None,
        store: StateStore | None = None,
    ) -> None:
        """``store``: the workspace's state store, where tenants keep their records and
        whose fingerprint key (or ``PROMOTE_FINGERPRINT_KEY`` in ``environ``) fingerprints
        secrets; ``opener``: how each tenant is opened (default: the factory)."""
        self._workspace = workspace
        self._environ = environ
        self.store = store
        self.fingerprints = None if store is None else fingerprints_for(store, environ)
        """The workspace's secret fingerprints (``None`` without a store)."""
        self._opener = opener or _opener(store, self.fingerprints)
        self._open: dict[str, Tenant] = {}

    def __getitem__(self, env: str) -> Tenant:
        if env not in self._workspace.environments:
            raise KeyError(env)
        if env not in self._open:
            self._open[env] = self._opener(self._workspace, env, self._environ)
        return self._open[env]

    def __contains__(self, env: object) -> bool:
        # Without opening the tenant (Mapping's default would open it to find out).
        return env in self._workspace.environments

    def __iter__(self) -> Iterator[str]:
        return iter(self._workspace.chain)

    def __len__(self) -> int:
        return len(self._workspace.chain)

    def close(self) -> None:
        """Close every tenant opened so far."""
        opened, self._open = self._open, {}
        for tenant in opened.values():
            tenant.close()

    def __enter__(self) -> Tenants:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


def tenant_fingerprints(tenants: Mapping[str, Tenant]) -> Fingerprints | None:
    """The secret fingerprints ``tenants`` were opened with (a :class:`Tenants` with a state
    store), so that a plan and the tenants agree; ``None`` for any other mapping."""
    found = getattr(tenants, "fingerprints", None)
    return found if isinstance(found, Fingerprints) else None
