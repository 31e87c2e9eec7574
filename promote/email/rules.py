"""The rules one email object is checked against, with one environment's resolved values
(see :mod:`promote.email.checks`): ``external.email`` as SMTP or Microsoft Graph (its keys,
auth, port, TLS, properties, URLs, literal secrets) and an ``emailTemplate/*`` (locales,
sender), and whether an address can be sent to through a provider.

A literal password is detected without the unresolved config: a non-empty ``auth.password``
(or ``auth.clientSecret``) whose JSON path is not in ``Resolved.secret_paths`` did not come
from an ESV secret, so it is either written in ``config/`` or comes from a plain variable;
both are warned about. Platform tokens (``&{sendgrid.api.key}``) and ``$purpose`` objects are
not literals.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from esv.errors import Problem, Severity
from promote.email.model import Address, idna_reason, parse_address, smtp_properties

if TYPE_CHECKING:
    from esv.resolver import Resolved
    from promote.tenants.base import Capabilities

__all__ = ["ObjectCheck", "international_refusal"]

_LANGUAGE_TAG = re.compile(
    r"^[A-Za-z]{2,3}(?:-[A-Za-z]{4})?(?:-(?:[A-Za-z]{2}|[0-9]{3}))?"
    r"(?:-(?:[A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*$"
)
_TIMEOUTS = ("connectiontimeout", "timeout", "writetimeout")
_SMTP_ONLY = ("host", "port", "starttls", "ssl", "smtpProperties", "debug")
# The keys of each provider shape (SMTP and Microsoft Graph), top level and under ``auth``.
_COMMON_KEYS = ("_id", "type", "from", "auth", "threadPoolSize", *_TIMEOUTS)
_SHAPE_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "smtp": ((*_COMMON_KEYS, *_SMTP_ONLY), ("enable", "type", "username", "password")),
    "msgraph": (
        (*_COMMON_KEYS, "mailEndpoint"),
        ("enable", "type", "clientId", "clientSecret", "tokenEndpoint", "scope")
        + ("scopeDelimiter", "grantType"),
    ),
}
_SHAPE_NAMES = {"smtp": "an SMTP provider", "msgraph": 'a "msgraph" provider'}
_PATH_PART = re.compile(r"\[\d+\]|[^.\[\]]+")
_UTF8_HINT = (
    'add "mail.mime.allowutf8=true" to smtpProperties, if the SMTP server supports SMTPUTF8'
)


def international_refusal(
    address: Address, config: Mapping[str, Any] | None, *, env: str, shown: str | None = None
) -> tuple[str, str] | None:
    """Why ``address`` cannot be sent through ``config``, or ``None`` if it can.

    The built-in provider refuses every non-ASCII address. Through ``external.email`` a
    non-ASCII domain is sent IDNA-encoded (refused only when it cannot be encoded); a
    non-ASCII local part needs SMTP with ``mail.mime.allowutf8=true``. ``shown`` is how
    messages quote the address (masked when secret-derived).
    """
    if address.ascii:
        return None
    quoted = shown or repr(address.address)
    what = f"{quoted} is an international (non-ASCII) address"
    if config is None:
        return (
            f"{what}, and {env}'s built-in email provider does not support those",
            "configure external.email with an SMTP server that supports SMTPUTF8",
        )
    reason = idna_reason(address.domain)
    if reason:
        return (
            f"the domain of {quoted} cannot be IDNA-encoded ({reason})",
            "check the domain's spelling",
        )
    if not address.international:
        return None  # only the domain is non-ASCII: it goes out as xn--
    if config.get("type", "smtp") == "msgraph":
        return (f"{what}, which needs an SMTP provider, not msgraph", _UTF8_HINT)
    if smtp_properties(config).get("mail.mime.allowutf8", "").lower() != "true":
        return (f"{what}, which needs mail.mime.allowutf8=true", _UTF8_HINT)
    return None


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _url_problem(value: Any) -> str | None:
    """Why ``value`` is not an http(s) URL, or ``None``."""
    if not isinstance(value, str) or not value:
        return "is missing or not a string"
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "is not an http(s) URL"
    return None


def _did_you_mean(key: str, known: Sequence[str], prefix: str) -> str:
    """A hint naming the known key closest to ``key`` (case ignored), or all of them."""
    by_folded = {k.casefold(): k for k in known if not k.startswith("_")}
    close = difflib.get_close_matches(key.casefold(), list(by_folded), n=1, cutoff=0.6)
    if close:
        return f"did you mean {prefix}{by_folded[close[0]]}?"
    return f"known keys: {', '.join(prefix + k for k in sorted(by_folded))}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ObjectCheck:
    """Collects the problems of one resolved object; quotes only masked values."""

    def __init__(self, resolved: Resolved, *, env: str, location: str) -> None:
        self.object_id = resolved.object_id
        self.value = resolved.value
        self.masked = resolved.masked
        self.secret_paths = resolved.secret_paths
        self.env = env
        self.location = location
        self.problems: list[Problem] = []

    # -- helpers ------------------------------------------------------------------------
    def add(
        self, path: str, message: str, hint: str | None = None, severity: Severity = "error"
    ) -> None:
        self.problems.append(
            Problem(
                self.object_id,
                path,
                message,
                severity=severity,
                hint=hint,
            )
        )

    def warn(self, path: str, message: str, hint: str | None = None) -> None:
        self.add(path, message, hint, severity="warning")

    def shown(self, path: str) -> str:
        """The masked value at ``path`` (``auth.scope``, ``smtpProperties[2]``) as JSON text.

        A secret-derived container is masked as a whole (``"********"``); the walk stops
        there and shows that.
        """
        node: Any = self.masked
        for part in _PATH_PART.findall(path):
            if isinstance(node, str):
                break
            if part.startswith("["):
                index = int(part[1:-1])
                node = node[index] if isinstance(node, list) and index < len(node) else None
            else:
                node = node.get(part) if isinstance(node, Mapping) else None
        return _show(node)

    def refusal(self, address: Address, provider: Mapping[str, Any] | None, path: str) -> None:
        """An error when ``address`` (at ``path``) cannot be sent through ``provider``."""
        refusal = international_refusal(address, provider, env=self.env, shown=self.shown(path))
        if refusal:
            self.add(path, refusal[0], refusal[1])

    @staticmethod
    def get(config: Mapping[str, Any], path: str) -> Any:
        node: Any = config
        for key in path.split("."):
            node = node.get(key) if isinstance(node, Mapping) else None
        return node

    def require(
        self, config: Mapping[str, Any], path: str, test: Callable[[Any], bool], what: str
    ) -> Any:
        """The value at ``path`` when it passes ``test``; else an error, and ``None``."""
        value = self.get(config, path)
        if value is None:
            self.add(path, f"is missing; it must be {what}")
            return None
        if not test(value):
            self.add(path, f"is {self.shown(path)}; it must be {what}")
            return None
        return value

    def optional(
        self, config: Mapping[str, Any], path: str, test: Callable[[Any], bool], what: str
    ) -> Any:
        if self.get(config, path) is None:
            return None
        return self.require(config, path, test, what)

    def non_empty_string(self, config: Mapping[str, Any], path: str, hint: str = "") -> Any:
        value = self.get(config, path)
        if not isinstance(value, str) or not value.strip():
            shown = "missing" if value is None else f"{self.shown(path)}"
            self.add(path, f"is {shown}; it must be a non-empty string", hint or None)
            return None
        return value

    def literal_secret(self, config: Mapping[str, Any], path: str) -> None:
        """Warn when a password or client secret does not come from an ESV secret."""
        value = self.get(config, path)
        if not isinstance(value, str) or not value or path in self.secret_paths:
            return
        if "&{" in value:  # a platform token the tenant resolves itself
            return
        self.warn(
            path,
            "is not taken from an ESV secret: a literal credential in promotable config "
            "reaches every environment and every copy of the repository",
            'use a placeholder such as "&{esv.email.provider.password}" and define that '
            "ESV under secrets: in each environment file",
        )

    # -- external.email -------------------------------------------------------------------
    def check_provider(self, capabilities: Capabilities) -> Mapping[str, Any] | None:
        """Check ``external.email``; returns the config when it is an object."""
        config = self.value
        if not isinstance(config, Mapping):
            self.add("", f"is {_show(self.masked)}; external.email must be a JSON object")
            return None
        kind = config.get("type", "smtp")
        if kind == "msgraph":
            self.check_graph(config, capabilities)
        elif kind == "smtp":
            self.check_smtp(config, capabilities)
        else:
            self.add("type", f'is {self.shown("type")}; it must be "smtp" or "msgraph"')
            return config
        self.check_common(config)
        self.check_keys(config, kind)
        return config

    def check_keys(self, config: Mapping[str, Any], kind: str) -> None:
        """Warn about each top-level and ``auth`` key that the ``kind`` shape does not have.

        A warning, not an error: the platform may accept keys promote does not know (Graph
        takes IDM's external REST properties). A key of the other shape is named as such
        (``msgraph``'s ignored SMTP keys are warned about by :meth:`check_graph`); any other
        gets a did-you-mean when a known key is close (``hots`` -> ``host``).
        """
        other = "msgraph" if kind == "smtp" else "smtp"
        auth = config.get("auth")
        for prefix, keys, index in (("", config, 0), ("auth.", auth, 1)):
            if not isinstance(keys, Mapping):
                continue
            known = _SHAPE_KEYS[kind][index]
            foreign = _SHAPE_KEYS[other][index]
            for key in keys:
                if not isinstance(key, str) or key in known:
                    continue
                path = f"{prefix}{key}"
                if key in foreign:
                    if kind == "smtp" or index == 1:
                        self.warn(
                            path,
                            f"is a key of {_SHAPE_NAMES[other]}; {_SHAPE_NAMES[kind]} ignores it",
                            "remove it, or set type to the provider it belongs to",
                        )
                    continue
                self.warn(
                    path,
                    f"is not a key promote knows for {_SHAPE_NAMES[kind]}; "
                    "the platform may ignore it",
                    _did_you_mean(key, known, prefix),
                )

    def check_common(self, config: Mapping[str, Any]) -> None:
        for key in _TIMEOUTS:
            self.optional(
                config,
                key,
                lambda v: _is_int(v) and v >= 0,
                "an integer number of milliseconds ≥ 0 (0 disables the timeout)",
            )
        self.optional(config, "threadPoolSize", lambda v: _is_int(v) and v >= 1, "an integer ≥ 1")
        sender = config.get("from")
        if sender is None or sender == "":
            self.warn(
                "from",
                "is not set: messages are sent only when a template or the request gives a "
                "sender, and `promote email test` needs --from",
                'set from to "name@example.com" or "\\"Name\\" <name@example.com>"',
            )
            return
        if not isinstance(sender, str) or (address := parse_address(sender)) is None:
            self.add(
                "from",
                f'is {self.shown("from")}; it must be an address or "Name" <address>',
            )
            return
        self.refusal(address, config, "from")

    def check_smtp(self, config: Mapping[str, Any], capabilities: Capabilities) -> None:
        host = self.non_empty_string(config, "host", "the SMTP server's hostname or IP address")
        if isinstance(host, str) and any(c.isspace() for c in host):
            self.add("host", f"is {self.shown('host')}; a hostname has no spaces")
        port = self.get(config, "port")
        if isinstance(port, str) and port.strip().isdigit():
            self.add(
                "port",
                f"is the string {self.shown('port')}; it must be an integer",
                'wrap the placeholder: {"$int": "&{esv.email.provider.port}"}',
            )
        elif self.require(config, "port", lambda v: _is_int(v) and 1 <= v <= 65535, "1–65535"):
            if port == 25:
                self.warn(
                    "port",
                    "is 25: many ISPs block or flag mail sent on port 25",
                    "use 587 (STARTTLS) or 465 (SSL)",
                )
            ports = capabilities.email_ports
            if ports is not None and port not in ports:
                allowed = ", ".join(str(p) for p in ports)
                self.warn(
                    "port",
                    f"is {port}: this tenant's email server supports ports {allowed} "
                    "unless its vendor's support enables others",
                )
        self.optional(config, "debug", lambda v: isinstance(v, bool), "true or false")
        self.check_auth(config)
        tls = {}
        for key in ("starttls", "ssl"):
            if self.get(config, key) is None:
                continue
            if self.require(config, key, lambda v: isinstance(v, Mapping), '{"enable": bool}'):
                tls[key] = self.require(
                    config, f"{key}.enable", lambda v: isinstance(v, bool), "true or false"
                )
        if tls.get("starttls") is True and tls.get("ssl") is True:
            self.warn(
                "ssl.enable",
                "and starttls.enable are both true: SSL connects with TLS at once (port 465), "
                "STARTTLS upgrades a plain connection (port 587); one is enough",
                "turn one of them off",
            )
        self.check_properties(config)

    def check_auth(self, config: Mapping[str, Any]) -> None:
        auth = self.require(
            config,
            "auth",
            lambda v: isinstance(v, Mapping),
            'an object such as {"enable": false}',
        )
        if auth is None:
            return
        enabled = self.require(
            config, "auth.enable", lambda v: isinstance(v, bool), "true or false"
        )
        kind = config.get("auth", {}).get("type", "basic")
        if kind != "basic":
            self.add(
                "auth.type",
                f'is {self.shown("auth.type")}; an SMTP provider authenticates with "basic"',
                'oauth2 is for type "msgraph"',
            )
        if enabled:
            self.non_empty_string(config, "auth.username")
            self.non_empty_string(
                config, "auth.password", "reference an ESV secret: &{esv.email.provider.password}"
            )
            self.literal_secret(config, "auth.password")

    def check_properties(self, config: Mapping[str, Any]) -> None:
        entries = config.get("smtpProperties")
        if entries is None:
            return
        if not isinstance(entries, list):
            self.add("smtpProperties", 'must be an array of "key=value" strings')
            return
        for index, entry in enumerate(entries):
            path = f"smtpProperties[{index}]"
            key = entry.partition("=")[0].strip() if isinstance(entry, str) else ""
            if not isinstance(entry, str) or "=" not in entry or not key or " " in key:
                self.add(
                    path,
                    f'is {self.shown(path)}; it must be a "key=value" string',
                    'for example "mail.mime.allowutf8=true"',
                )
            elif key == "mail.mime.allowutf8" and entry.partition("=")[2].strip().lower() not in (
                "true",
                "false",
            ):
                self.add(path, f"is {self.shown(path)}; mail.mime.allowutf8 must be true or false")

    def check_graph(self, config: Mapping[str, Any], capabilities: Capabilities) -> None:
        if not capabilities.graph_email:
            self.add(
                "type",
                'is "msgraph"; this tenant\'s custom email server is SMTP only',
                "use an SMTP provider for this environment",
            )
        self.check_url(config, "mailEndpoint")
        auth = self.require(config, "auth", lambda v: isinstance(v, Mapping), "an object")
        if auth is None:
            return
        self.require(config, "auth.type", lambda v: v == "oauth2", '"oauth2" (msgraph needs it)')
        self.non_empty_string(config, "auth.clientId")
        self.non_empty_string(
            config, "auth.clientSecret", "reference an ESV secret: &{esv.email.graph.secret}"
        )
        self.literal_secret(config, "auth.clientSecret")
        self.check_url(config, "auth.tokenEndpoint")
        self.require(
            config,
            "auth.scope",
            lambda v: isinstance(v, list) and bool(v) and all(isinstance(s, str) and s for s in v),
            'a non-empty array of scopes, e.g. ["https://graph.microsoft.com/.default"]',
        )
        self.optional(
            config,
            "auth.grantType",
            lambda v: v == "client_credentials",
            '"client_credentials" (the only grant msgraph supports)',
        )
        for key in _SMTP_ONLY:
            if key in config:
                self.warn(key, 'is ignored by type "msgraph" (SMTP only)', "remove it")

    def check_url(self, config: Mapping[str, Any], path: str) -> None:
        value = self.get(config, path)
        problem = _url_problem(value)
        if problem:
            shown = "" if value is None else f" ({self.shown(path)})"
            self.add(path, f"{problem}{shown}; it must be an https URL")
            return
        host = urlsplit(value).hostname or ""
        if value.startswith("http:") and not _is_loopback(host):
            self.warn(path, "uses http: credentials and tokens would cross the network in clear")

    # -- emailTemplate/* ------------------------------------------------------------------
    def check_template(self, provider: Mapping[str, Any] | None) -> None:
        template = self.value
        if not isinstance(template, Mapping):
            self.add("", "an email template must be a JSON object")
            return
        default = self.require(
            template,
            "defaultLocale",
            lambda v: isinstance(v, str) and bool(_LANGUAGE_TAG.match(v)),
            'a language tag such as "en" or "fr-CA"',
        )
        for key in ("subject", "message", "html"):
            texts = template.get(key)
            if texts is None and key == "html":
                continue
            if not isinstance(texts, Mapping):
                self.add(key, 'must be an object keyed by locale, e.g. {"en": "..."}')
                continue
            for locale, text in texts.items():
                if not _LANGUAGE_TAG.match(locale):
                    hint = f'use "{locale.replace("_", "-")}"' if "_" in locale else None
                    self.add(f"{key}.{locale}", "is not keyed by a language tag", hint)
                elif not isinstance(text, str):
                    self.add(f"{key}.{locale}", "must be a string")
            if default and key != "html" and default not in texts:
                self.add(
                    key,
                    f"has no text for defaultLocale {default!r}",
                    f"add {key}.{default}, or change defaultLocale",
                )
        sender = template.get("from")
        if sender in (None, ""):
            return
        address = parse_address(sender) if isinstance(sender, str) else None
        if address is None:
            self.add("from", f'is {self.shown("from")}; it must be an address or "Name" <address>')
            return
        # The built-in provider replaces every sender with its own, so only a custom one counts.
        if provider is not None:
            self.refusal(address, provider, "from")
