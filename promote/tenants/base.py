"""The one interface the engine talks to: a tenant environment.

Implementations: ``local`` (embedded, SQLite under ``.promote/``), ``aic`` (PingOne AIC
REST), ``okta`` (Email Servers API). The engine never imports an implementation; it gets a
:class:`Tenant` from :func:`promote.tenants.open_tenant`.

Config values are plain JSON (dicts, lists, str, int, float, bool, None). Config holds ESV
placeholders as written (``&{esv.x}``) on tenants whose ``capabilities.placeholders`` is
true; the engine resolves config before writing it to a tenant without placeholders (Okta).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, cast, runtime_checkable

from esv.secrets import SecretValue

__all__ = [
    "JSON",
    "BuiltinEmail",
    "Capabilities",
    "EmailOutbox",
    "EmailTestable",
    "EsvWrite",
    "KeepsDigests",
    "LockState",
    "PromotionReport",
    "SecretState",
    "Tenant",
    "VariableState",
    "config_digests",
    "email_outbox",
    "email_testable",
]

JSON = Any
"""A parsed JSON value: dict, list, str, int, float, bool or None."""

RestartStatus = Literal["ready", "restarting"]

BuiltinEmail = Literal["outbox", "test-only", "platform"]
"""What sends an environment's email when its config has no ``external.email``."""


@dataclass(frozen=True)
class Capabilities:
    """What a tenant can do; the engine adapts its walk to these, never to a tenant's kind."""

    esvs: bool = True
    """Holds ESV variables and secrets (false for Okta: values are resolved before sending)."""
    placeholders: bool = True
    """Config is stored with placeholders; false means the engine sends resolved config."""
    promotion: bool = True
    """An immutable environment receives config by :meth:`Tenant.promote_from`."""
    restart: bool = True
    """ESV changes take effect only after :meth:`Tenant.restart`."""
    config_ids: tuple[str, ...] | None = None
    """The only config object ids this tenant can hold (Okta: ``("external.email",)``)."""
    atomic_esv_writes: bool = True
    """:meth:`Tenant.write_esvs` is all-or-nothing; false (AIC: one request per ESV) means a
    failed batch may have written some ESVs, which the engine then reports."""
    email_ports: tuple[int, ...] | None = None
    """The SMTP ports ``external.email`` may use (Okta: 465, 587, 2587); None: any port."""
    graph_email: bool = True
    """``external.email`` may be Microsoft Graph (``type: msgraph``); false: SMTP only."""
    builtin_email: BuiltinEmail = "test-only"
    """What runs without ``external.email``: ``outbox`` — a built-in provider for testing that
    writes messages into the tenant's :meth:`EmailOutbox.outbox_dir` (mutable environments
    only); ``test-only`` — the platform's testing provider, which promote cannot reach
    (mutable environments only); ``platform`` — the platform's own email, fine anywhere but
    not testable."""
    sends_test_email: bool = False
    """The tenant sends a test email through its own provider: it is :class:`EmailTestable`."""
    concurrent_reads: bool = False
    """``list_config_ids``, ``read_config``, ``list_variables`` and ``list_secrets`` may run
    at once from several threads (a REST tenant: the reads of a plan overlap their latency)."""
    config_digests: bool = False
    """The tenant keeps the content digest of each config object it stores: it is
    :class:`KeepsDigests`, and a plan reads only the objects whose digest differs."""


@dataclass(frozen=True)
class VariableState:
    """An ESV variable as the tenant holds it. ``value`` is the decoded text."""

    id: str
    value: str
    type: str
    loaded: bool
    managed: bool = True
    """Created by promote; only managed ESVs are ever deleted by a run."""


@dataclass(frozen=True)
class SecretState:
    """An ESV secret's metadata; its value is never readable."""

    id: str
    version: int
    loaded: bool
    managed: bool = True
    encoding: str = "generic"
    """The platform's ``encoding`` (``generic``, ``pem``, ``base64hmac``, ``base64aes``)."""
    use_in_placeholders: bool = True
    """The platform's ``useInPlaceholders``: false keeps it out of config placeholders."""


@dataclass(frozen=True)
class EsvWrite:
    """One ESV change to apply. ``value`` is ``None`` for deletes."""

    id: str
    kind: Literal["variable", "secret"]
    action: Literal["add", "modify", "delete"]
    value: str | SecretValue | None = None
    type: str = "string"
    encoding: str = "generic"
    """Secrets: the ``encoding`` a new secret is created with (fixed from then on)."""
    use_in_placeholders: bool = True
    """Secrets: ``useInPlaceholders`` of a new secret (fixed from then on)."""


@dataclass(frozen=True)
class LockState:
    """Whether the environment's promotion lock is held, and by whom."""

    locked: bool
    holder: str | None = None


@dataclass(frozen=True)
class PromotionReport:
    """What a promotion or rollback did, item by item (AIC reports are item-level)."""

    id: str
    type: Literal["promotion", "rollback"]
    env: str
    source: str | None
    created: str
    added: tuple[str, ...] = ()
    modified: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    dry_run: bool = False
    missing_esvs: tuple[str, ...] = ()
    extra: Mapping[str, JSON] = field(default_factory=dict)


@runtime_checkable
class Tenant(Protocol):
    """A tenant environment. Every method may raise ``promote.errors.TenantError``."""

    env: str
    """The environment's name in the workspace (``staging``)."""
    capabilities: Capabilities

    # -- config -----------------------------------------------------------------------
    def list_config_ids(self) -> set[str]:
        """Ids of the config objects this tenant holds that promote manages."""
        ...

    def read_config(self, ids: Collection[str]) -> dict[str, JSON]:
        """The given config objects as stored; ids the tenant does not hold are omitted."""
        ...

    def put_config(self, object_id: str, value: JSON) -> None:
        """Create or replace one config object. Raises ``ImmutableError`` when the
        environment is immutable (its config changes only by promotion)."""
        ...

    def delete_config(self, object_id: str) -> None:
        """Delete one config object (absent: no-op). ``ImmutableError`` as for put."""
        ...

    def reconcile_write_only(self, object_id: str, desired: JSON, current: JSON) -> JSON:
        """``current`` with write-only fields (never returned by the tenant) filled in from
        ``desired`` where the tenant knows they are unchanged; identity for most tenants."""
        ...

    # -- ESVs -------------------------------------------------------------------------
    def list_variables(self) -> dict[str, VariableState]:
        """Every ESV variable, with decoded values (one bulk read)."""
        ...

    def list_secrets(self) -> dict[str, SecretState]:
        """Every ESV secret's metadata (one bulk read); never values."""
        ...

    def secret_matches(self, esv_id: str, value: SecretValue) -> bool | None:
        """Whether the secret's active version holds ``value``: True, False, or None when
        the tenant cannot tell (then the engine treats it as changed). May be called from
        several threads at once (the plan compares a stage's secrets concurrently)."""
        ...

    def write_esvs(self, writes: Sequence[EsvWrite]) -> None:
        """Apply ESV writes: variables upsert, secrets create or add a version, deletes.
        Written ESVs are ``loaded: false`` until :meth:`restart`. All-or-nothing where the
        tenant allows; otherwise raises ``TenantError`` naming what was written."""
        ...

    # -- restart ----------------------------------------------------------------------
    def restart(self) -> None:
        """Start loading pending ESVs (AIC: restart services). Returns at once."""
        ...

    def restart_status(self) -> RestartStatus:
        """``ready`` or ``restarting``."""
        ...

    # -- promotion --------------------------------------------------------------------
    def lock_state(self) -> LockState:
        """Whether another promotion holds this environment's lock."""
        ...

    def unlock(self, holder: str) -> None:
        """Release the promotion lock if ``holder`` holds it (no-op otherwise): what a run
        killed mid-promotion left behind is released by the run that recovers it."""
        ...

    def promote_from(
        self, lower: Tenant, *, holder: str, description: str, dry_run: bool = False
    ) -> PromotionReport:
        """Make this environment's config equal the lower environment's, taking and releasing
        the promotion lock (``LockedError`` when someone else holds it), keeping the previous
        config for :meth:`rollback`. Raises ``BlockedError`` listing missing ESVs."""
        ...

    def rollback(self, *, holder: str) -> PromotionReport:
        """Restore the config this environment had before its last promotion."""
        ...

    def reports(self) -> list[PromotionReport]:
        """Promotion and rollback reports, oldest first."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...


@runtime_checkable
class EmailTestable(Protocol):
    """A tenant whose ``capabilities.sends_test_email`` is true: it sends a test email
    through its own provider (Okta's test endpoint, AIC's ``external/email``)."""

    last_test: tuple[str, str] | None
    """``(from, to)`` of a test message the tenant's latest config write already had sent
    (Okta tests a server before enabling it), else None: a verify gate asking for the same
    test passes without a second message."""

    def send_test_email(self, *, from_address: str, to_address: str) -> None:
        """Send the platform's test email; raises ``PromoteError`` when it cannot."""
        ...


@runtime_checkable
class KeepsDigests(Protocol):
    """A tenant whose ``capabilities.config_digests`` is true."""

    def config_digests(self) -> dict[str, str]:
        """Object id -> :func:`esv.objects.content_digest` of every config object held (an
        :class:`esv.objects.DigestMap` when their digest of all is kept with them)."""
        ...


def config_digests(tenant: Tenant) -> dict[str, str] | None:
    """The digests of ``tenant``'s config objects, when its capabilities say it keeps them."""
    if not tenant.capabilities.config_digests:
        return None
    return cast(KeepsDigests, tenant).config_digests()


@runtime_checkable
class EmailOutbox(Protocol):
    """A tenant whose ``capabilities.builtin_email`` is ``outbox``."""

    def outbox_dir(self) -> Path:
        """The directory the built-in provider writes messages into (created when asked)."""
        ...


def email_testable(tenant: Tenant) -> EmailTestable | None:
    """``tenant`` as :class:`EmailTestable` when its capabilities say it sends test emails."""
    return cast(EmailTestable, tenant) if tenant.capabilities.sends_test_email else None


def email_outbox(tenant: Tenant) -> Path | None:
    """The built-in provider's outbox directory when the tenant's capabilities say it has one."""
    if tenant.capabilities.builtin_email != "outbox":
        return None
    return cast(EmailOutbox, tenant).outbox_dir()
