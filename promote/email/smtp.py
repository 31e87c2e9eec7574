"""Send a message through an SMTP server with the standard library's client.

What :func:`send_smtp` guarantees:

- ``ssl.enable`` connects with implicit TLS (``SMTP_SSL``); ``starttls.enable`` upgrades the
  connection and is *required*: a server that does not offer STARTTLS is an error, never a
  silent downgrade to plain text.
- Certificates are verified (``ssl.create_default_context()``) unless the caller passes its
  own context (tests pass one trusting their own CA).
- AUTH (``LOGIN``/``PLAIN``/``CRAM-MD5``) when ``auth.enable``; refused credentials are an
  :class:`EmailAuthError`.
- ``connectiontimeout`` bounds the connection, then the shorter of ``timeout`` and
  ``writetimeout`` bounds every read and write (a socket has one timeout); 0 means none.
- Non-ASCII domains are sent IDNA-encoded (``xn--``); one that cannot be encoded is refused
  before connecting. A non-ASCII local part is sent with SMTPUTF8, and only when
  ``mail.mime.allowutf8``.

Every error names ``host:port`` and never the password.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from typing import cast

from promote.email.errors import (
    EmailAuthError,
    EmailConnectError,
    EmailError,
    EmailRejectedError,
    EmailTimeoutError,
    EmailTlsError,
)
from promote.email.message import ADDRESS_HEADERS, ascii_domains
from promote.email.model import SmtpProvider

__all__ = ["send_smtp"]


def send_smtp(
    provider: SmtpProvider,
    message: EmailMessage,
    *,
    context: ssl.SSLContext | None = None,
) -> None:
    """Deliver ``message`` through ``provider``; raises an :class:`EmailError` subclass."""
    server = provider.server
    try:
        message = ascii_domains(message)
    except ValueError as error:
        raise EmailRejectedError(server, str(error), hint="check the address") from None
    context = context or ssl.create_default_context()
    try:
        client = _connect(provider, context)
    except TimeoutError as error:
        raise EmailTimeoutError(
            server, f"no answer within {provider.connection_timeout} s while connecting"
        ) from error
    except ssl.SSLError as error:
        raise EmailTlsError(server, f"TLS handshake failed: {_reason(error)}") from error
    except (OSError, smtplib.SMTPException) as error:
        if _timed_out(error):
            raise EmailTimeoutError(
                server, f"no greeting within {provider.connection_timeout} s"
            ) from error
        raise EmailConnectError(
            server, f"cannot connect: {_reason(error)}", hint="check host and port"
        ) from error
    try:
        with client:
            _session(client, provider, message, context, server)
    except EmailError:
        raise
    except TimeoutError as error:
        raise EmailTimeoutError(server, "the server stopped answering (timeout)") from error
    except ssl.SSLError as error:
        raise EmailTlsError(server, f"TLS failed: {_reason(error)}") from error
    except smtplib.SMTPServerDisconnected as error:
        if _timed_out(error):
            raise EmailTimeoutError(server, "the server stopped answering (timeout)") from error
        raise EmailConnectError(server, f"the server closed the connection: {error}") from error
    except (OSError, smtplib.SMTPException) as error:
        raise EmailError(server, f"sending failed: {_reason(error)}") from error


def _connect(provider: SmtpProvider, context: ssl.SSLContext) -> smtplib.SMTP:
    # smtplib's stubs say float, but None (no timeout, IDM's 0) is what socket accepts.
    timeout = cast(float, provider.connection_timeout)
    if provider.ssl:
        return smtplib.SMTP_SSL(provider.host, provider.port, timeout=timeout, context=context)
    return smtplib.SMTP(provider.host, provider.port, timeout=timeout)


def _io_timeout(provider: SmtpProvider) -> float | None:
    limits = [t for t in (provider.timeout, provider.write_timeout) if t is not None]
    return min(limits) if limits else None


def _session(
    client: smtplib.SMTP,
    provider: SmtpProvider,
    message: EmailMessage,
    context: ssl.SSLContext,
    server: str,
) -> None:
    if client.sock is not None:
        client.sock.settimeout(_io_timeout(provider))
    client.ehlo()
    if provider.starttls and not provider.ssl:
        if not client.has_extn("starttls"):
            raise EmailTlsError(
                server,
                "starttls.enable is true but the server does not offer STARTTLS; "
                "refusing to send in clear text",
                hint="fix the server, or use ssl.enable with its implicit-TLS port",
            )
        try:
            client.starttls(context=context)
        except ssl.SSLError as error:
            raise EmailTlsError(server, f"STARTTLS failed: {_reason(error)}") from error
        client.ehlo()
    if provider.auth:
        _login(client, provider, server)
    if _international(message):
        if not provider.allow_utf8:
            raise EmailRejectedError(
                server,
                "an address has a non-ASCII local part and mail.mime.allowutf8 is not true",
            )
        if not client.has_extn("smtputf8"):
            raise EmailRejectedError(
                server, "an address is international but the server does not offer SMTPUTF8"
            )
    try:
        refused = client.send_message(message)  # adds SMTPUTF8 itself for international addresses
    except smtplib.SMTPRecipientsRefused as error:
        codes = "; ".join(f"{to}: {code}" for to, (code, _) in error.recipients.items())
        raise EmailRejectedError(server, f"every recipient was refused ({codes})") from error
    except smtplib.SMTPSenderRefused as error:
        raise EmailRejectedError(
            server, f"the sender was refused: {error.smtp_code} {_text(error.smtp_error)}"
        ) from error
    except smtplib.SMTPDataError as error:
        raise EmailRejectedError(
            server, f"the message was refused: {error.smtp_code} {_text(error.smtp_error)}"
        ) from error
    if refused:
        names = ", ".join(sorted(refused))
        raise EmailRejectedError(server, f"recipients refused: {names}")


def _login(client: smtplib.SMTP, provider: SmtpProvider, server: str) -> None:
    if not client.has_extn("auth"):
        secure = (
            "" if (provider.ssl or provider.starttls) else " (many servers offer it only over TLS)"
        )
        raise EmailAuthError(
            server,
            f"auth.enable is true but the server does not offer AUTH{secure}",
            hint="enable starttls or ssl, or set auth.enable to false",
        )
    password = provider.password.reveal() if provider.password else ""
    try:
        client.login(provider.username, password)
    except smtplib.SMTPAuthenticationError as error:
        raise EmailAuthError(
            server,
            f"the server refused the credentials of user {provider.user!r}: "
            f"{error.smtp_code} {_text(error.smtp_error)}",
            hint="check the username and the password ESV of this environment",
        ) from None
    except smtplib.SMTPServerDisconnected:
        raise  # a timeout or a dropped connection, not a refusal: mapped by the caller
    except smtplib.SMTPException as error:
        raise EmailAuthError(server, f"AUTH failed: {_reason(error)}") from None


def _timed_out(error: BaseException) -> bool:
    """smtplib reports a read timeout as ``SMTPServerDisconnected`` caused by it."""
    return isinstance(error, TimeoutError) or isinstance(error.__context__, TimeoutError)


def _international(message: EmailMessage) -> bool:
    """An address has a non-ASCII local part (domains are already IDNA-encoded)."""
    return any(
        not address.username.isascii()
        for name in ADDRESS_HEADERS
        for address in getattr(message.get(name), "addresses", ())
    )


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _reason(error: BaseException) -> str:
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"certificate not trusted ({error.verify_message})"
    if isinstance(error, ssl.SSLError):
        return error.reason or str(error)
    if isinstance(error, smtplib.SMTPResponseException):
        return f"{error.smtp_code} {_text(error.smtp_error)}"
    return str(error) or type(error).__name__
