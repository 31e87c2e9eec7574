"""Email: validate each environment's provider and templates, send test emails, verify gates.

Validation (:func:`check_email`) is pure: resolved config in, :class:`~esv.errors.Problem`
list out. Sending goes over SMTP (stdlib), Microsoft Graph (httpx) or a local tenant's
built-in outbox (:func:`send_test_email`). :func:`run_verify` is the ``verify`` gate the
engine runs after an environment's apply and restart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from esv.lazy import lazy_exports

if TYPE_CHECKING:  # at run time each name loads on first use (see __getattr__)
    from promote.email.checks import EMAIL_OBJECT, check_email, check_recipient, email_problems
    from promote.email.dispatch import EmailTestable, Transports, outbox_of, send_test_email
    from promote.email.errors import (
        EmailAuthError,
        EmailConnectError,
        EmailError,
        EmailRateLimitError,
        EmailRejectedError,
        EmailTimeoutError,
        EmailTlsError,
        VerifyError,
    )
    from promote.email.model import (
        TEST_BODY,
        TEST_SUBJECT,
        Address,
        GraphProvider,
        SmtpProvider,
        parse_address,
        provider_from_config,
    )
    from promote.email.outbox import Outbox
    from promote.email.verify import VerifyContext, run_verify

__all__ = [
    "EMAIL_OBJECT",
    "TEST_BODY",
    "TEST_SUBJECT",
    "Address",
    "EmailAuthError",
    "EmailConnectError",
    "EmailError",
    "EmailRateLimitError",
    "EmailRejectedError",
    "EmailTestable",
    "EmailTimeoutError",
    "EmailTlsError",
    "GraphProvider",
    "Outbox",
    "SmtpProvider",
    "Transports",
    "VerifyContext",
    "VerifyError",
    "check_email",
    "check_recipient",
    "email_problems",
    "outbox_of",
    "parse_address",
    "provider_from_config",
    "run_verify",
    "send_test_email",
]

_EXPORTS = {
    "EMAIL_OBJECT": "promote.email.checks",
    "check_email": "promote.email.checks",
    "check_recipient": "promote.email.checks",
    "email_problems": "promote.email.checks",
    "EmailTestable": "promote.email.dispatch",
    "Transports": "promote.email.dispatch",
    "outbox_of": "promote.email.dispatch",
    "send_test_email": "promote.email.dispatch",
    "EmailAuthError": "promote.email.errors",
    "EmailConnectError": "promote.email.errors",
    "EmailError": "promote.email.errors",
    "EmailRateLimitError": "promote.email.errors",
    "EmailRejectedError": "promote.email.errors",
    "EmailTimeoutError": "promote.email.errors",
    "EmailTlsError": "promote.email.errors",
    "VerifyError": "promote.email.errors",
    "TEST_BODY": "promote.email.model",
    "TEST_SUBJECT": "promote.email.model",
    "Address": "promote.email.model",
    "GraphProvider": "promote.email.model",
    "SmtpProvider": "promote.email.model",
    "parse_address": "promote.email.model",
    "provider_from_config": "promote.email.model",
    "Outbox": "promote.email.outbox",
    "VerifyContext": "promote.email.verify",
    "run_verify": "promote.email.verify",
}
"""Where each public name lives: the checks (which a plan needs) load without the senders
(SMTP, Microsoft Graph and httpx), which only ``email test`` and verify gates need."""


__getattr__ = lazy_exports(__name__, _EXPORTS, globals())
