"""Verification gates run after an environment's apply and restart (``verify:`` in its file).

The one gate today is ``email_test: {to: ADDRESS}``: the test email goes out through the
environment's provider — the tenant's own test when its capabilities say it sends one
(:class:`~promote.tenants.base.EmailTestable`), else the resolved ``external.email`` over SMTP
or Graph, else the tenant's built-in outbox. A failure raises
:class:`~promote.email.errors.VerifyError` (exit 1), which stops the walk. A tenant whose apply
already had its server send this very test (Okta tests a server before enabling it; its
``last_test`` is ``(from, to)``) passes without a second message. Without ``external.email``
a tenant whose built-in email is the platform's own (Okta) has nothing promote can test.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from promote.email.checks import EMAIL_OBJECT
from promote.email.dispatch import Transports, outbox_of, send_test_email
from promote.email.errors import VerifyError
from promote.email.model import parse_address
from promote.errors import PromoteError
from promote.tenants.base import email_testable

if TYPE_CHECKING:
    from esv.envfile import EnvironmentFile
    from esv.resolver import Resolved
    from promote.tenants.base import Tenant
    from promote.workspace import Workspace

__all__ = ["GATES", "VerifyContext", "run_verify"]

GATES = ("email_test",)
"""The gate names ``verify:`` may hold."""


@dataclass(frozen=True)
class VerifyContext:
    """What a gate needs: the environment, its tenant, its resolved config, the workspace."""

    env: EnvironmentFile
    tenant: Tenant
    resolved: Mapping[str, Resolved]
    workspace: Workspace
    transports: Transports = field(default_factory=Transports)
    """How to reach mail servers (tests inject TLS contexts and HTTP transports)."""


def run_verify(ctx: VerifyContext) -> str | None:
    """Run ``ctx.env.verify``'s gates; a one-line summary, or None when there is no gate.

    Raises :class:`VerifyError` (exit 1) naming the environment when a gate fails or is
    written wrongly.
    """
    name = ctx.env.name
    gates = dict(ctx.env.verify or {})
    if not gates:
        return None
    unknown = sorted(set(gates) - set(GATES))
    if unknown:
        raise VerifyError(name, ", ".join(unknown), f"unknown gate; known: {', '.join(GATES)}")
    spec = gates["email_test"]
    to = spec.get("to") if isinstance(spec, Mapping) else None
    if not isinstance(to, str) or parse_address(to) is None:
        raise VerifyError(
            name,
            "email_test",
            f"{ctx.env.relpath}: verify.email_test.to must be an email address",
        )
    if EMAIL_OBJECT not in ctx.resolved and ctx.tenant.capabilities.builtin_email == "platform":
        # The platform's own email (Okta without a custom server) has no test endpoint.
        return (
            f"verify email_test skipped for {name}: the platform's built-in email cannot be tested"
        )
    testable = email_testable(ctx.tenant)
    if testable is not None and testable.last_test == (_sender(ctx), to):
        return (
            f"verify email_test passed for {name} (server test during apply): "
            f"test email sent to {to} by {name}'s tenant"
        )
    try:
        summary = _email_test(ctx, to)
    except PromoteError as error:
        raise VerifyError(name, "email_test", str(error)) from error
    return f"verify email_test passed for {name}: {summary}"


def _sender(ctx: VerifyContext) -> str:
    """The bare address of the resolved ``external.email``'s ``from`` ("" without one)."""
    email = ctx.resolved.get(EMAIL_OBJECT)
    config: Any = email.value if email is not None else None
    sender = config.get("from", "") if isinstance(config, Mapping) else ""
    address = parse_address(sender) if isinstance(sender, str) and sender else None
    return address.address if address else ""


def _email_test(ctx: VerifyContext, to: str) -> str:
    name = ctx.env.name
    email = ctx.resolved.get(EMAIL_OBJECT)
    config: Any = email.value if email is not None else None
    testable = email_testable(ctx.tenant)
    if testable is not None:
        testable.send_test_email(from_address=_sender(ctx), to_address=to)
        return f"test email sent to {to} by {name}'s tenant"
    outbox = outbox_of(ctx.tenant, env=name, clock=ctx.transports.clock)
    masked = email.masked if email is not None and isinstance(email.masked, Mapping) else None
    return send_test_email(
        config, env=name, to=to, masked=masked, outbox=outbox, transports=ctx.transports
    )
