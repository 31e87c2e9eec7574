"""The ``aic`` tenant: one PingOne Advanced Identity Cloud environment behind the Tenant
protocol, composed of its parts (config, ESVs, restart, promotion), and :func:`open_aic`."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from esv.errors import Problem
from esv.secrets import SecretValue
from promote.errors import BlockedError
from promote.http import Auth, HttpClient, RetryPolicy, StaticAuth
from promote.state.base import StateStore
from promote.state.document import tenant_document
from promote.state.fingerprints import Fingerprints
from promote.tenants.base import (
    Capabilities,
)

if TYPE_CHECKING:
    from esv.envfile import EnvironmentFile
    from promote.workspace import Workspace
from promote.tenants.aic.auth import DEFAULT_SCOPE, ServiceAccountAuth
from promote.tenants.aic.common import _IDM_API
from promote.tenants.aic.config import ALWAYS_MANAGED_CONFIG, ConfigObjects
from promote.tenants.aic.esvs import Esvs
from promote.tenants.aic.promotion import Promotions
from promote.tenants.aic.records import CONFIG_FILE, LOCKS_FILE, ConfigRecord, LockRecords
from promote.tenants.aic.restart import Restarts

__all__ = ["AicTenant", "open_aic"]


class AicTenant(ConfigObjects, Esvs, Restarts, Promotions):
    """One AIC environment (``https://<tenant-env-fqdn>``) behind the Tenant protocol.

    ``records`` (the workspace's state store), else ``state_dir`` (``.promote/tenants/<env>``),
    keeps ``promotion-locks.json``: the promotion id
    of each lock this tenant took, by holder, so that :meth:`unlock` can release a lock left
    by a run that was killed mid-promotion; and ``managed-config.json``: the config ids
    promote wrote or promoted here, so that objects removed from the workspace are deleted.
    Without one both records live in memory only.

    ``lower``: the name of the environment this one is promoted from (the stage below it in
    the workspace's chain). AIC promotes only between fixed pairs and its reports do not name
    the lower environment, so this name is the ``source`` of :meth:`rollback` and
    :meth:`reports`; ``None`` (no stage below) leaves it ``None``.
    """

    capabilities = Capabilities(
        sends_test_email=True, atomic_esv_writes=False, concurrent_reads=True
    )
    last_test: tuple[str, str] | None = None
    """Always None: writing ``external.email`` sends no test message."""

    def __init__(
        self,
        env: str,
        url: str,
        *,
        auth: Auth,
        mutable: bool,
        lower: str | None = None,
        config_ids: Collection[str] = (),
        concurrency: int = 8,
        state_dir: Path | None = None,
        records: StateStore | None = None,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
        poll_interval: float = 5.0,
        promotion_timeout: float = 1800.0,
        error_budget: int = 5,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        fingerprints: Fingerprints | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.env = env
        self.url = url.rstrip("/")
        self.mutable = mutable
        self.lower = lower
        self.concurrency = concurrency
        self.managed_config_ids = frozenset(config_ids) | frozenset(ALWAYS_MANAGED_CONFIG)
        self.state_dir = state_dir
        self._locks = LockRecords(
            tenant_document(env, LOCKS_FILE, store=records, state_dir=state_dir), env
        )
        self._written = ConfigRecord(
            tenant_document(env, CONFIG_FILE, store=records, state_dir=state_dir), env
        )
        self._http = HttpClient(
            self.url,
            env=env,
            auth=auth,
            transport=transport,
            retry=retry,
            max_connections=max(concurrency, 4),
            sleep=sleep,
            clock=clock,
        )
        self._auth = auth
        self._sleep = sleep
        self._clock = clock
        self._fingerprints = fingerprints or Fingerprints.ephemeral()
        self._poll = poll_interval
        self._promotion_timeout = promotion_timeout
        self._budget = error_budget
        self._poll_failures = 0
        self._awaiting_restart = False
        self._variables: dict[str, dict[str, Any]] | None = None
        self._secrets: dict[str, dict[str, Any]] | None = None

    def __repr__(self) -> str:
        return f"AicTenant({self.env!r}, {self.url!r})"

    def send_test_email(self, *, from_address: str, to_address: str) -> None:
        """Send a test email through the tenant's configured provider."""
        self._http.request(
            "POST",
            "/openidm/external/email",
            api_version=_IDM_API,
            params={"_action": "send"},
            json_body={
                "from": from_address,
                "to": to_address,
                "subject": "Test Provider Email",
                "body": "This is a test email using your configured provider settings.",
                "type": "text/plain",
            },
        )

    def close(self) -> None:
        """Close the connection pools (the tenant's and its token endpoint's)."""
        self._http.close()
        close_auth = getattr(self._auth, "close", None)
        if callable(close_auth):
            close_auth()


def open_aic(
    env: EnvironmentFile,
    *,
    workspace: Workspace,
    environ: Mapping[str, str],
    store: StateStore | None = None,
    fingerprints: Fingerprints | None = None,
) -> AicTenant:
    """The :class:`AicTenant` for an environment file whose tenant kind is ``aic``.

    ``tenant.url`` is required; auth is ``tenant.token`` (a bearer access token) or
    ``tenant.service_account: {id, jwk}``. Optional: ``concurrency`` (requests in flight
    when writing ESVs and reading config, default 8). Its ``lower`` is the stage below it in
    the workspace's chain.
    """
    spec = env.tenant
    url = spec.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise BlockedError(
            f"{env.relpath}: tenant.url: an aic tenant needs its url (https://<tenant-env-fqdn>)",
            [Problem(env.relpath, "tenant.url", "missing or not an http(s) URL")],
        )
    auth = _auth(env, url, workspace, environ)
    return AicTenant(
        env.name,
        url,
        auth=auth,
        mutable=workspace.is_mutable(env.name),
        lower=workspace.lower(env.name) if env.name in workspace.chain else None,
        config_ids=tuple(workspace.config),
        concurrency=int(spec.get("concurrency", 8)),
        state_dir=workspace.state_dir / "tenants" / env.name,
        records=store,
        fingerprints=fingerprints,
    )


def _auth(env: EnvironmentFile, url: str, workspace: Workspace, environ: Mapping[str, str]) -> Auth:
    """``tenant.token`` (a bearer access token) or ``tenant.service_account: {id, jwk}``."""
    from promote.tenants.credentials import read_credential

    spec = env.tenant
    where = f"{env.relpath}: tenant"

    def secret(source: Any, key: str) -> SecretValue:
        if isinstance(source, str):
            return SecretValue(source)
        return read_credential(env, key, source, workspace=workspace.root, environ=environ)

    if spec.get("token") is not None:
        return StaticAuth("Bearer " + secret(spec["token"], "token").reveal())
    if isinstance(spec.get("service_account"), Mapping):
        account = spec["service_account"]
        if account.get("id") is None or account.get("jwk") is None:
            raise BlockedError(
                f"{where}.service_account needs both id and jwk",
                [Problem(env.relpath, "tenant.service_account", "needs id and jwk")],
            )
        return ServiceAccountAuth(
            url,
            secret(account["id"], "service_account.id").reveal(),
            secret(account["jwk"], "service_account.jwk"),
            scope=str(account.get("scope") or DEFAULT_SCOPE),
            env=env.name,
        )
    raise BlockedError(
        f"{where}: an aic tenant needs token: {{env: VAR}} or service_account: {{id, jwk}}",
        [Problem(env.relpath, "tenant", "no token and no service_account")],
    )
