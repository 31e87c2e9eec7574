"""The test email: the same subject and body as the AIC admin console's "Send Test Email"."""

from __future__ import annotations

import copy
import email.utils
import uuid
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8

from promote.email.model import TEST_BODY, TEST_SUBJECT, Address, idna_domain

__all__ = ["ADDRESS_HEADERS", "ascii_domains", "test_message"]

ADDRESS_HEADERS = ("From", "Sender", "Reply-To", "To", "Cc", "Bcc")
"""The headers whose addresses :func:`ascii_domains` rewrites."""


def test_message(sender: Address, to: Address, *, now: float | None = None) -> EmailMessage:
    """A plain-text test message from ``sender`` to ``to``.

    A non-ASCII local part gets the SMTPUTF8 policy (raw UTF-8 headers); a non-ASCII domain
    is kept as given (:func:`ascii_domains` encodes it when the message is sent). The
    Message-ID is built without a DNS lookup.
    """
    policy = SMTPUTF8 if sender.international or to.international else SMTP
    message = EmailMessage(policy=policy)
    message["From"] = str(sender)
    message["To"] = str(to)
    message["Subject"] = TEST_SUBJECT
    message["Date"] = email.utils.formatdate(now, localtime=False)
    try:
        domain = idna_domain(sender.domain)
    except ValueError:
        domain = "promote.invalid"
    message["Message-ID"] = f"<{uuid.uuid4().hex}@{domain}>"
    message.set_content(TEST_BODY)
    return message


def ascii_domains(message: EmailMessage) -> EmailMessage:
    """A copy of ``message`` with every address's domain IDNA-encoded (``xn--``).

    Only the domains change: a non-ASCII local part stays (it needs SMTPUTF8). Raises
    ``ValueError`` naming the header when a domain cannot be encoded; the text never quotes
    the address.
    """
    result = copy.deepcopy(message)
    for name in ADDRESS_HEADERS:
        header = result.get(name)
        addresses = getattr(header, "addresses", ())
        if all(address.domain.isascii() for address in addresses):
            continue
        encoded = []
        for address in addresses:
            try:
                domain = idna_domain(address.domain)
            except ValueError as error:
                raise ValueError(f"the domain of an address in {name} {error}") from None
            encoded.append(HeaderAddress(address.display_name, address.username, domain))
        result.replace_header(name, encoded)  # keeps the header's place
    return result
