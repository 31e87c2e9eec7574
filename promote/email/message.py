"""The test email: the same subject and body as the AIC admin console's "Send Test Email"."""

from __future__ import annotations

import email.utils
import uuid
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8

from promote.email.model import TEST_BODY, TEST_SUBJECT, Address

__all__ = ["test_message"]


def test_message(sender: Address, to: Address, *, now: float | None = None) -> EmailMessage:
    """A plain-text test message from ``sender`` to ``to``.

    International addresses get the SMTPUTF8 policy (raw UTF-8 headers); the Message-ID is
    built without a DNS lookup.
    """
    policy = SMTPUTF8 if sender.international or to.international else SMTP
    message = EmailMessage(policy=policy)
    message["From"] = str(sender)
    message["To"] = str(to)
    message["Subject"] = TEST_SUBJECT
    message["Date"] = email.utils.formatdate(now, localtime=False)
    domain = sender.domain if sender.domain.isascii() else "promote.invalid"
    message["Message-ID"] = f"<{uuid.uuid4().hex}@{domain}>"
    message.set_content(TEST_BODY)
    return message
