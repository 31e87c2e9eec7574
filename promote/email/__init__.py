"""Email: validate each environment's provider and templates, send test emails, verify gates.

Validation (:func:`check_email`) is pure: resolved config in, :class:`~esv.errors.Problem`
list out. Sending goes over SMTP (stdlib), Microsoft Graph (httpx) or a local tenant's
built-in outbox (:func:`send_test_email`). :func:`run_verify` is the ``verify`` gate the
engine runs after an environment's apply and restart.
"""

from __future__ import annotations

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
