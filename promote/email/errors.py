"""Errors raised while sending email (all ``PromoteError``, exit code 1).

Each keeps ``host`` and ``port`` (or the endpoint) in attributes and names them in its text;
none ever contains a password, client secret or token::

    PromoteError
    ├── EmailError               a test email could not be sent
    │   ├── EmailAuthError       the server refused the credentials (SMTP AUTH, OAuth2 token)
    │   ├── EmailConnectError    the host cannot be reached (DNS, refused connection)
    │   ├── EmailTimeoutError    the server did not answer within the configured timeout
    │   ├── EmailTlsError        TLS failed: certificate, handshake, or STARTTLS not offered
    │   ├── EmailRejectedError   the server refused the message or a recipient
    │   └── EmailRateLimitError  the built-in outbox already sent 10 messages this minute
    └── VerifyError              an environment's ``verify.email_test`` gate failed
"""

from __future__ import annotations

from promote.errors import PromoteError

__all__ = [
    "EmailAuthError",
    "EmailConnectError",
    "EmailError",
    "EmailRateLimitError",
    "EmailRejectedError",
    "EmailTimeoutError",
    "EmailTlsError",
    "VerifyError",
]


class EmailError(PromoteError):
    """A test email could not be sent. ``server`` is ``host:port`` or an endpoint URL."""

    def __init__(
        self, server: str, message: str, *, hint: str | None = None, env: str | None = None
    ) -> None:
        text = f"{env}: " if env else ""
        text += f"{server}: {message}"
        if hint:
            text += f" ({hint})"
        super().__init__(text)
        self.server = server
        self.message = message
        self.hint = hint
        self.env = env

    def for_env(self, env: str) -> EmailError:
        """The same error (same class), naming the environment whose provider failed."""
        return type(self)(self.server, self.message, hint=self.hint, env=env)


class EmailAuthError(EmailError):
    """The server refused the credentials."""


class EmailConnectError(EmailError):
    """The host cannot be reached."""


class EmailTimeoutError(EmailError):
    """The server did not answer in time."""


class EmailTlsError(EmailError):
    """TLS failed, or STARTTLS was required and not offered."""


class EmailRejectedError(EmailError):
    """The server refused the message, the sender or a recipient."""


class EmailRateLimitError(EmailError):
    """The built-in provider's limit (10 messages a minute) is reached."""


class VerifyError(PromoteError):
    """An environment's verification gate failed; the walk stops there."""

    def __init__(self, env: str, gate: str, cause: str) -> None:
        super().__init__(f"verify gate {gate} failed for {env}: {cause}")
        self.env = env
        self.gate = gate
