"""The email provider as promote sends with it: addresses and the two provider kinds.

``external.email`` arrives as resolved JSON (placeholders already replaced with one
environment's values). :mod:`promote.email.checks` says whether it is valid;
:func:`provider_from_config` turns a valid one into a :class:`SmtpProvider` or
:class:`GraphProvider`. Passwords and client secrets are held as
:class:`~esv.secrets.SecretValue` so no record can print them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from esv.secrets import SecretValue

__all__ = [
    "DEFAULT_TIMEOUT_MS",
    "TEST_BODY",
    "TEST_SUBJECT",
    "Address",
    "GraphProvider",
    "Provider",
    "SmtpProvider",
    "idna_domain",
    "idna_reason",
    "parse_address",
    "provider_from_config",
    "smtp_properties",
]

TEST_SUBJECT = "Test Provider Email"
"""Subject of the AIC admin console's "Send Test Email"."""
TEST_BODY = "This is a test email using your configured provider settings."
"""Body of the AIC admin console's "Send Test Email"."""

DEFAULT_TIMEOUT_MS = 300_000
"""IDM's default for ``connectiontimeout``, ``timeout`` and ``writetimeout``."""

_LOCAL = r'[^\s@<>"(),;:\\\[\]]+'
_LABEL = r"[^\s@<>\"(),;:\\\[\].]+"
_ADDR = rf"(?P<local>{_LOCAL})@(?P<domain>{_LABEL}(?:\.{_LABEL})*)"
_PLAIN = re.compile(rf"^{_ADDR}$")
_NAMED = re.compile(rf'^(?:"(?P<quoted>[^"\\]*)"|(?P<bare>[^"<>@]*?))\s*<{_ADDR}>$')


@dataclass(frozen=True)
class Address:
    """An email address, with the display name of ``"Name" <addr>`` when given."""

    local: str
    domain: str
    name: str | None = None

    @property
    def address(self) -> str:
        """``local@domain`` without the display name."""
        return f"{self.local}@{self.domain}"

    @property
    def international(self) -> bool:
        """True when the LOCAL part has non-ASCII characters: only SMTPUTF8 can carry it.

        A non-ASCII domain alone is not international in this sense: it is sent
        IDNA-encoded (:meth:`ascii_domain`), which every server understands.
        """
        return not self.local.isascii()

    @property
    def ascii(self) -> bool:
        """True when the whole address is ASCII (what a built-in provider accepts)."""
        return self.address.isascii()

    def ascii_domain(self) -> Address:
        """This address with its domain IDNA-encoded: ``bücher.example`` → ``xn--bcher-kva...``.

        Raises ``ValueError`` saying why when the domain cannot be encoded (an empty or
        over-long label, a character IDNA forbids).
        """
        return Address(self.local, idna_domain(self.domain), self.name)

    def __str__(self) -> str:
        if self.name:
            return f'"{self.name}" <{self.address}>'
        return self.address


def idna_domain(domain: str) -> str:
    """``domain`` IDNA-encoded (the ``idna`` codec); ASCII domains come back unchanged.

    Raises ``ValueError`` saying why when it cannot be encoded; the text never quotes the
    domain (it may derive from a secret), so callers add the context they may show.
    """
    if domain.isascii():
        return domain
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError as error:
        raise ValueError(f"cannot be IDNA-encoded: {_reason(error)}") from None


def idna_reason(domain: str) -> str | None:
    """Why ``domain`` cannot be IDNA-encoded, without quoting any of it; ``None`` if it can."""
    if domain.isascii():
        return None
    try:
        domain.encode("idna")
    except UnicodeError as error:
        return _reason(error)
    return None


def _reason(error: BaseException) -> str:
    """The codec's complaint in words that never echo the domain (it may derive from a secret)."""
    if "label" in str(error):
        return "a label is empty or longer than 63 characters once encoded"
    return "it has a character IDNA does not allow"


def parse_address(text: str) -> Address | None:
    """``addr@domain`` or ``"Name" <addr@domain>`` (or ``Name <addr>``); ``None`` if invalid."""
    text = text.strip()
    plain = _PLAIN.match(text)
    if plain:
        return Address(plain["local"], plain["domain"])
    named = _NAMED.match(text)
    if named:
        name = named["quoted"] if named["quoted"] is not None else named["bare"].strip()
        return Address(named["local"], named["domain"], name or None)
    return None


def smtp_properties(config: Mapping[str, Any]) -> dict[str, str]:
    """``smtpProperties`` (``["key=value", ...]``) as a dict; malformed entries are skipped."""
    result: dict[str, str] = {}
    for entry in config.get("smtpProperties") or ():
        if isinstance(entry, str) and "=" in entry:
            key, _, value = entry.partition("=")
            result[key.strip()] = value.strip()
    return result


@dataclass(frozen=True)
class SmtpProvider:
    """An SMTP server as ``external.email`` describes it. Timeouts in seconds, None = none."""

    host: str = field(repr=False)
    port: int
    sender: Address | None = None
    auth: bool = False
    username: str = field(default="", repr=False)
    password: SecretValue | None = field(default=None, repr=False)
    starttls: bool = False
    ssl: bool = False
    connection_timeout: float | None = DEFAULT_TIMEOUT_MS / 1000
    timeout: float | None = DEFAULT_TIMEOUT_MS / 1000
    write_timeout: float | None = DEFAULT_TIMEOUT_MS / 1000
    properties: Mapping[str, str] = field(default_factory=dict)
    shown_server: str | None = None
    """``host:port`` as messages show it: secret-derived parts masked (default: as is)."""
    shown_username: str | None = None

    kind = "smtp"

    @property
    def server(self) -> str:
        """``host:port`` for messages (masked where it comes from a secret)."""
        return self.shown_server or f"{self.host}:{self.port}"

    @property
    def user(self) -> str:
        """The username for messages (masked where it comes from a secret)."""
        return self.username if self.shown_username is None else self.shown_username

    @property
    def allow_utf8(self) -> bool:
        """``mail.mime.allowutf8=true`` is set: non-ASCII local parts may be sent."""
        return self.properties.get("mail.mime.allowutf8", "").lower() == "true"

    def describe(self) -> str:
        """``smtp smtp.example.com:587 (STARTTLS)`` — never credentials."""
        security = "SSL" if self.ssl else "STARTTLS" if self.starttls else "no TLS"
        return f"smtp {self.server} ({security})"


@dataclass(frozen=True)
class GraphProvider:
    """Microsoft Graph ``sendMail`` with an OAuth2 client-credentials token."""

    mail_endpoint: str = field(repr=False)
    token_endpoint: str = field(repr=False)
    client_id: str = field(repr=False)
    client_secret: SecretValue = field(repr=False)
    scope: tuple[str, ...]
    sender: Address | None = None
    scope_delimiter: str = " "
    connection_timeout: float | None = DEFAULT_TIMEOUT_MS / 1000
    timeout: float | None = DEFAULT_TIMEOUT_MS / 1000

    shown: Mapping[str, str] = field(default_factory=dict)
    """``mailEndpoint``, ``tokenEndpoint``, ``clientId`` as messages show them (masked
    where secret-derived); missing keys show the value itself."""

    kind = "msgraph"
    allow_utf8 = False

    def show(self, key: str) -> str:
        """``mailEndpoint``, ``tokenEndpoint`` or ``clientId`` for messages."""
        actual = {
            "mailEndpoint": self.mail_endpoint,
            "tokenEndpoint": self.token_endpoint,
            "clientId": self.client_id,
        }[key]
        return self.shown.get(key, actual)

    def describe(self) -> str:
        """``msgraph https://graph.microsoft.com/...`` — never credentials."""
        return f"msgraph {self.show('mailEndpoint')}"


Provider = SmtpProvider | GraphProvider


def _seconds(config: Mapping[str, Any], key: str) -> float | None:
    millis = config.get(key, DEFAULT_TIMEOUT_MS)
    if not isinstance(millis, int) or isinstance(millis, bool) or millis <= 0:
        return None  # 0 disables the timeout (IDM semantics); invalid values are checks' job
    return millis / 1000


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def provider_from_config(
    config: Mapping[str, Any], masked: Mapping[str, Any] | None = None
) -> Provider:
    """A provider record from a resolved ``external.email`` that passed the checks.

    ``masked`` is the same config with secret-derived parts masked (``Resolved.masked``);
    the record's messages show those. Raises ``ValueError`` on the shapes the checks reject
    (callers check first).
    """
    shown = masked if masked is not None else config
    shown_auth = shown.get("auth")
    shown_auth = shown_auth if isinstance(shown_auth, Mapping) else {}
    sender = parse_address(config["from"]) if isinstance(config.get("from"), str) else None
    auth = config.get("auth")
    auth = auth if isinstance(auth, Mapping) else {}
    if config.get("type", "smtp") == "msgraph":
        scope = auth.get("scope")
        if not isinstance(scope, list):
            raise ValueError("auth.scope is not an array")
        return GraphProvider(
            mail_endpoint=_text(config.get("mailEndpoint")),
            token_endpoint=_text(auth.get("tokenEndpoint")),
            client_id=_text(auth.get("clientId")),
            client_secret=SecretValue(_text(auth.get("clientSecret"))),
            scope=tuple(str(item) for item in scope),
            shown={
                "mailEndpoint": _text(shown.get("mailEndpoint")),
                "tokenEndpoint": _text(shown_auth.get("tokenEndpoint")),
                "clientId": _text(shown_auth.get("clientId")),
            },
            sender=sender,
            scope_delimiter=_text(auth.get("scopeDelimiter")) or " ",
            connection_timeout=_seconds(config, "connectiontimeout"),
            timeout=_seconds(config, "timeout"),
        )
    port = config.get("port")
    if not isinstance(port, int) or isinstance(port, bool):
        raise ValueError("port is not an integer")
    password = auth.get("password")
    return SmtpProvider(
        host=_text(config.get("host")),
        port=port,
        sender=sender,
        auth=auth.get("enable") is True,
        username=_text(auth.get("username")),
        password=SecretValue(password) if isinstance(password, str) and password else None,
        starttls=_enabled(config.get("starttls")),
        ssl=_enabled(config.get("ssl")),
        connection_timeout=_seconds(config, "connectiontimeout"),
        timeout=_seconds(config, "timeout"),
        write_timeout=_seconds(config, "writetimeout"),
        properties=smtp_properties(config),
        shown_server=f"{_text(shown.get('host'))}:{shown.get('port')}",
        shown_username=_text(shown_auth.get("username")),
    )


def _enabled(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get("enable") is True
