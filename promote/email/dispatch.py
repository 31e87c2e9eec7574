"""Send the test email through whatever provider an environment has.

Three ways, picked by what is available:

1. a tenant that can send a test itself (``capabilities.sends_test_email``:
   :class:`~promote.tenants.base.EmailTestable` — Okta's test endpoint, AIC's
   ``external/email``) — used for ``--live`` and for ``verify`` gates;
2. a resolved ``external.email`` — sent by promote over SMTP or Microsoft Graph;
3. no ``external.email`` on a tenant whose built-in provider is an outbox
   (``capabilities.builtin_email == "outbox"``: local tenants) — written into it.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from esv.errors import Problem
from promote.email.checks import check_recipient
from promote.email.graph import send_graph
from promote.email.message import test_message
from promote.email.model import GraphProvider, parse_address, provider_from_config
from promote.email.outbox import Outbox
from promote.email.smtp import send_smtp
from promote.errors import BlockedError
from promote.tenants.base import EmailTestable, email_outbox

if TYPE_CHECKING:
    import httpx

    from promote.tenants.base import Tenant

__all__ = ["DEFAULT_TRANSPORTS", "EmailTestable", "Transports", "outbox_of", "send_test_email"]


@dataclass(frozen=True)
class Transports:
    """How promote reaches mail servers: defaults verify certificates; tests inject."""

    tls: ssl.SSLContext | None = None
    """SMTP TLS context (default: ``ssl.create_default_context()``)."""
    http: httpx.BaseTransport | None = None
    """Graph transport (default: httpx's network transport)."""
    http_verify: ssl.SSLContext | bool = True
    clock: Callable[[], float] | None = None
    """Clock of the outbox's rate limit (default ``time.time``)."""


DEFAULT_TRANSPORTS = Transports()
"""Certificate-verifying network access, the system clock."""


def outbox_of(
    tenant: Tenant, *, env: str, clock: Callable[[], float] | None = None
) -> Outbox | None:
    """The built-in provider's outbox of a tenant whose ``capabilities.builtin_email`` is
    ``outbox`` (in its :meth:`~promote.tenants.base.EmailOutbox.outbox_dir`), else None (an
    Okta or AIC tenant's built-in provider is the platform's own)."""
    directory = email_outbox(tenant)
    if directory is None:
        return None
    if clock is None:
        return Outbox(directory, env=env)
    return Outbox(directory, env=env, clock=clock)


def send_test_email(
    config: Mapping[str, Any] | None,
    *,
    env: str,
    to: str,
    sender: str | None = None,
    masked: Mapping[str, Any] | None = None,
    outbox: Outbox | None = None,
    transports: Transports = DEFAULT_TRANSPORTS,
) -> str:
    """Send the test email to ``to`` through ``config`` (resolved ``external.email``), or
    through ``outbox`` when ``config`` is ``None`` (the built-in provider).

    ``sender`` overrides the config's ``from``; ``masked`` is ``Resolved.masked`` of the
    config, so that messages show secret-derived parts as ``********``. Returns a one-line
    summary. Raises
    ``BlockedError`` (exit 3) when the addresses cannot be sent through this provider and an
    :class:`~promote.email.errors.EmailError` (exit 1) when sending fails.
    """
    where = f"{env}: test email"
    problems = check_recipient(to, config, location=where, path="to", env=env)
    if problems:
        raise BlockedError(f"{env}: cannot send the test email; nothing was sent", problems)
    recipient = parse_address(to)
    assert recipient is not None  # checked above
    if config is None:
        if outbox is None:
            raise BlockedError(
                f"{env} has no external.email: it runs on its tenant's built-in provider, "
                "which promote reaches only when it is an outbox (local tenants); nothing was sent "
                "(use --live to let the tenant send its own test)"
            )
        from_address = parse_address(outbox.sender)
        assert from_address is not None
        path = outbox.deliver(test_message(from_address, recipient))
        return f"test email to {recipient.address} written to {path} ({env}'s built-in provider)"
    provider = provider_from_config(config, masked)
    from_text = sender or (str(provider.sender) if provider.sender else "")
    from_address = parse_address(from_text) if from_text else None
    if from_address is None:
        raise BlockedError(
            f"{env}: cannot send the test email; nothing was sent",
            [
                Problem(
                    "external.email",
                    "from",
                    "has no valid sender address" if from_text else "is not set",
                    hint="set from in config/external.email.json, or pass --from",
                )
            ],
        )
    problems = check_recipient(from_address.address, config, location=where, path="from", env=env)
    if problems:
        raise BlockedError(f"{env}: cannot send the test email; nothing was sent", problems)
    message = test_message(from_address, recipient)
    if isinstance(provider, GraphProvider):
        send_graph(provider, message, transport=transports.http, verify=transports.http_verify)
    else:
        send_smtp(provider, message, context=transports.tls)
    encoded = recipient.ascii_domain().address  # check_recipient: the domain encodes
    shown = (
        recipient.address if encoded == recipient.address else f"{recipient.address} (as {encoded})"
    )
    return f"test email sent to {shown} via {provider.describe()} ({env})"
