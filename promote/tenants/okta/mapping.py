"""external.email <-> an Okta email server: what Okta can express (:func:`check_okta_email`),
the request body (:func:`email_server_body`) and the config a server amounts to
(:func:`external_email_of`)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection, Iterator, Mapping
from email.utils import parseaddr
from typing import Any

from esv.errors import Problem
from promote.tenants.base import (
    JSON,
)

__all__ = [
    "DEFAULT_ALIAS",
    "EMAIL_ID",
    "check_okta_email",
    "email_server_body",
    "external_email_of",
]


EMAIL_ID = "external.email"

DEFAULT_ALIAS = "promote"

_BASIC = "BASIC_SMTP_AUTH"

_OAUTH2 = "OAUTH2_CLIENT_CREDENTIALS"

_AUTH_METHODS = ("CLIENT_SECRET_BASIC", "CLIENT_SECRET_POST")

_OKTA_PORTS = frozenset({465, 587, 2587})

# The AIC external.email keys this module knows. Those Okta does not hold (TLS, timeouts,
# concurrency: Okta manages them) are remembered locally so they do not show as changes.
_KNOWN_KEYS = frozenset(
    {"_id", "type", "from", "debug", "starttls", "ssl", "threadPoolSize", "timeout"}
    | {"writetimeout", "connectiontimeout", "smtpProperties", "auth", "host", "port"}
)

_AUTH_KEYS = frozenset(
    {"enable", "type", "username", "password", "clientId", "clientSecret", "tokenEndpoint"}
    | {"scope", "scopeDelimiter", "grantType"}
)
# Write-only values: (path in external.email, Okta field).

_WRITE_ONLY = (("auth.password", "password"), ("auth.clientSecret", "clientSecret"))


def check_okta_email(resolved_external_email: JSON | None, *, location: str) -> list[Problem]:
    """Every reason the resolved ``external.email`` cannot become an Okta email server.

    ``None`` (no custom provider: Okta's built-in email) is fine. Errors name the JSON path and
    never a value; warnings flag settings Okta ignores or ports that need Okta support.
    """
    email = resolved_external_email
    if email is None:
        return []
    if not isinstance(email, dict):
        return [Problem(location, "", "must be a JSON object (the email provider settings)")]
    problems: list[Problem] = []

    def error(path: str, message: str, hint: str | None = None) -> None:
        problems.append(Problem(location, path, message, hint=hint))

    def warn(path: str, message: str, hint: str | None = None) -> None:
        problems.append(Problem(location, path, message, severity="warning", hint=hint))

    for path in _unresolved_paths(email, ""):
        error(
            path,
            "holds a placeholder Okta cannot resolve",
            "Okta has no ESVs or platform placeholders; define the value in the environment file",
        )
    kind = email.get("type", "smtp")
    if kind != "smtp":
        error(
            "type",
            "Okta email servers are SMTP servers; this provider type cannot be expressed",
            "use type smtp with host/port, or keep this environment on AIC",
        )
        return problems  # the rest describes a provider Okta cannot have
    if "mailEndpoint" in email:
        error("mailEndpoint", "Okta cannot send through Microsoft Graph", "remove it; use SMTP")
    _check_text(email, "host", "host", error)
    _check_port(email.get("port"), error, warn)
    _check_properties(email.get("smtpProperties", []), error)
    sender = email.get("from")
    if not isinstance(sender, str) or "@" not in parseaddr(sender)[1]:
        error(
            "from",
            'must be an email address ("Name" <address> allowed)',
            "Okta tests the server by sending from this address",
        )
    for key in sorted(set(email) - _KNOWN_KEYS - {"mailEndpoint"}):
        warn(key, "is not an Okta email server setting; ignored there")
    auth = email.get("auth")
    if not isinstance(auth, dict):
        error("auth", "must be an object with enable, username and a password or OAuth 2.0 client")
        return problems
    _check_auth(auth, error, warn)
    return problems


_Report = Callable[..., None]
"""Adds a problem: ``(path, message, hint=None)``."""


def _check_port(port: Any, error: _Report, warn: _Report) -> None:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        error("port", "must be an integer from 1 to 65535", 'use {"$int": "&{esv.…}"}')
    elif port not in _OKTA_PORTS:
        warn(
            "port",
            "Okta supports ports 465, 587 and 2587 by default",
            "other ports need Okta support",
        )


def _check_properties(properties: Any, error: _Report) -> None:
    if not isinstance(properties, list):
        error("smtpProperties", "must be an array", "remove it: Okta takes no SMTP properties")
        return
    for index, _ in enumerate(properties):
        error(
            f"smtpProperties[{index}]",
            "custom SMTP properties cannot be expressed on Okta",
            "remove it for Okta environments",
        )


def _check_auth(
    auth: Mapping[str, JSON],
    error: Callable[..., None],
    warn: Callable[..., None],
) -> None:
    if auth.get("enable") is not True:
        error("auth.enable", "must be true: an Okta custom server always authenticates")
    _check_text(auth, "username", "auth.username", error)
    kind = auth.get("type", "basic")
    if kind == "basic":
        _check_text(auth, "password", "auth.password", error)
    elif kind == "oauth2":
        for key in ("clientId", "clientSecret", "tokenEndpoint"):
            _check_text(auth, key, f"auth.{key}", error)
        endpoint = auth.get("tokenEndpoint")
        if isinstance(endpoint, str) and endpoint and not endpoint.startswith("https://"):
            warn("auth.tokenEndpoint", "is not an https URL; Okta expects one")
        scope = auth.get("scope")
        if (
            not isinstance(scope, list)
            or not scope
            or not all(isinstance(s, str) and s for s in scope)
        ):
            error("auth.scope", "must be a non-empty array of scope names")
        grant = auth.get("grantType", "client_credentials")
        if grant != "client_credentials":
            error("auth.grantType", "Okta supports only the client_credentials grant")
    else:
        error("auth.type", "must be basic or oauth2 on Okta")
    for key in sorted(set(auth) - _AUTH_KEYS):
        warn(f"auth.{key}", "is not an Okta email server setting; ignored there")


def _check_text(
    document: Mapping[str, JSON], key: str, path: str, error: Callable[..., None]
) -> None:
    value = document.get(key)
    if not isinstance(value, str) or not value.strip():
        error(path, "is required: a non-empty string")


def _unresolved_paths(value: JSON, path: str) -> Iterator[str]:
    if isinstance(value, str):
        if "&{" in value:
            yield path or "(value)"
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _unresolved_paths(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _unresolved_paths(item, f"{path}[{index}]")


def email_server_body(
    email: Mapping[str, JSON], *, alias: str, token_endpoint_auth_method: str
) -> dict[str, JSON]:
    """The Okta create body for a resolved, checked ``external.email`` (``enabled: true``)."""
    auth: Mapping[str, JSON] = email["auth"]
    body: dict[str, JSON] = {
        "alias": alias,
        "enabled": True,
        "host": email["host"],
        "port": email["port"],
        "username": auth["username"],
    }
    if auth.get("type", "basic") == "oauth2":
        body["authType"] = _OAUTH2
        body["clientId"] = auth["clientId"]
        body["clientSecret"] = auth["clientSecret"]
        body["tokenEndpoint"] = auth["tokenEndpoint"]
        body["tokenEndpointAuthMethod"] = token_endpoint_auth_method
        body["scopes"] = list(auth["scope"])
    else:
        body["authType"] = _BASIC
        body["password"] = auth["password"]
    return body


def external_email_of(server: Mapping[str, JSON]) -> dict[str, JSON]:
    """What an Okta email server says in AIC shape; write-only fields are absent."""
    auth: dict[str, JSON] = {"enable": True}
    kind = server.get("authType")
    if kind == _OAUTH2:
        auth["type"] = "oauth2"
    elif kind != _BASIC:
        auth["type"] = kind  # e.g. OAUTH2_JWT_BEARER_GRANT: shows as a change to be replaced
    if "username" in server:
        auth["username"] = server["username"]
    if kind == _OAUTH2:
        for key in ("clientId", "tokenEndpoint"):
            if key in server:
                auth[key] = server[key]
        if "scopes" in server:
            auth["scope"] = list(server["scopes"])
    email: dict[str, JSON] = {"auth": auth}
    for key in ("host", "port"):
        if key in server:
            email[key] = server[key]
    return email


def _leaf_paths(value: JSON, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from _leaf_paths(item, (*prefix, key))
    else:
        yield prefix


def _without(document: Mapping[str, JSON], paths: Collection[tuple[str, ...]]) -> dict[str, JSON]:
    """``document`` minus the given key paths (empty objects they leave are dropped)."""
    result: dict[str, JSON] = {}
    for key, value in document.items():
        if (key,) in paths:
            continue
        nested = {p[1:] for p in paths if len(p) > 1 and p[0] == key}
        if isinstance(value, dict) and nested:
            rest = _without(value, nested)
            if rest:
                result[key] = rest
        else:
            result[key] = copy.deepcopy(value)
    return result


def _merged(base: Mapping[str, JSON], top: Mapping[str, JSON]) -> dict[str, JSON]:
    """``base`` overlaid with ``top`` (objects merged key by key, ``top`` wins)."""
    result = copy.deepcopy(dict(base))
    for key, value in top.items():
        below = result.get(key)
        if isinstance(below, dict) and isinstance(value, dict):
            result[key] = _merged(below, value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def _local_part(email: Mapping[str, JSON]) -> dict[str, JSON]:
    """The part of ``external.email`` Okta does not hold (write-only values excluded)."""
    held = set(_leaf_paths(external_email_of(_server_shape(email))))
    held |= {tuple(path.split(".")) for path, _ in _WRITE_ONLY}
    return _without(email, held)


def _server_shape(email: Mapping[str, JSON]) -> dict[str, JSON]:
    return email_server_body(email, alias="", token_endpoint_auth_method=_AUTH_METHODS[0])


def _get_path(document: JSON, path: str) -> JSON:
    for key in path.split("."):
        if not isinstance(document, dict) or key not in document:
            return None
        document = document[key]
    return document
