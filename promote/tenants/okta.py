"""An Okta org as a tenant: its one custom email server (``/api/v1/email-servers``).

Okta has no ESVs, no placeholders and no promotions. The engine sends the environment's
resolved ``external.email`` (AIC shape); this module maps it to an Okta email server:

- ``auth.type`` basic (default) → ``BASIC_SMTP_AUTH``: host, port, username, password;
- ``auth.type`` oauth2 → ``OAUTH2_CLIENT_CREDENTIALS``: host, port, username, clientId,
  clientSecret, tokenEndpoint, tokenEndpointAuthMethod (tenant setting), scopes;

always with the tenant's ``alias`` and ``enabled: true``. :func:`check_okta_email` names every
field that Okta cannot express (MS Graph, custom ``smtpProperties``, disabled auth, ...).

Okta never returns ``password`` or ``clientSecret``, and it does not hold the AIC-only fields
(``from``, timeouts, ``starttls``...). What promote last wrote is remembered under the tenant's
state directory (or the shared state store): the AIC-only fields as written, and a keyed
fingerprint of each write-only value (:mod:`promote.state.fingerprints`; never the value).
:meth:`OktaTenant.read_config` merges the live server with the remembered fields;
:meth:`OktaTenant.reconcile_write_only` fills a write-only value in only when its fingerprint
matches, so an unchanged secret is neither a change nor re-sent.

Writes create the server disabled, test it (``POST .../{id}/test``) and only then enable it;
updates send only the changed fields (``authType`` always for OAuth 2.0) and test again.
Requests are paced by ``X-Rate-Limit-Remaining`` / ``X-Rate-Limit-Reset``; a 429 waits for the
reset and is sent again.
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from typing import Any, Literal

import httpx

from esv.envfile import EnvironmentFile, SecretSource
from esv.errors import EnvironmentFileError, Problem
from esv.secrets import SecretValue
from promote.errors import BlockedError, PromoteError, TenantError
from promote.files import StateFileError
from promote.http import HttpClient, RetryPolicy, StaticAuth, scrub
from promote.state.base import StateStore
from promote.state.document import Document, tenant_document
from promote.state.fingerprints import Fingerprints
from promote.tenants.base import (
    JSON,
    Capabilities,
    EsvWrite,
    LockState,
    PromotionReport,
    SecretState,
    Tenant,
    VariableState,
)
from promote.tenants.credentials import read_credential
from promote.workspace import Workspace

__all__ = [
    "DEFAULT_ALIAS",
    "EMAIL_ID",
    "OKTA_CAPABILITIES",
    "OktaTenant",
    "check_okta_email",
    "email_server_body",
    "external_email_of",
    "open_okta",
]

EMAIL_ID = "external.email"
DEFAULT_ALIAS = "promote"
OKTA_CAPABILITIES = Capabilities(
    esvs=False,
    placeholders=False,
    promotion=False,
    restart=False,
    config_ids=(EMAIL_ID,),
    email_ports=(465, 587, 2587),
    graph_email=False,
    builtin_email="platform",
    sends_test_email=True,
)

_API = "/api/v1/email-servers"
_BASIC = "BASIC_SMTP_AUTH"
_OAUTH2 = "OAUTH2_CLIENT_CREDENTIALS"
_AUTH_METHODS = ("CLIENT_SECRET_BASIC", "CLIENT_SECRET_POST")
_OKTA_PORTS = frozenset({465, 587, 2587})
_STATE_FILE = "okta-email-server.json"
_STATE_FORMAT = "promote.okta-email-server/1"
_EXCERPT_CHARS = 300

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


# -- mapping ----------------------------------------------------------------------------


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
    port = email.get("port")
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        error("port", "must be an integer from 1 to 65535", 'use {"$int": "&{esv.…}"}')
    elif port not in _OKTA_PORTS:
        warn(
            "port",
            "Okta supports ports 465, 587 and 2587 by default",
            "other ports need Okta support",
        )
    properties = email.get("smtpProperties", [])
    if not isinstance(properties, list):
        error("smtpProperties", "must be an array", "remove it: Okta takes no SMTP properties")
    else:
        for index, _ in enumerate(properties):
            error(
                f"smtpProperties[{index}]",
                "custom SMTP properties cannot be expressed on Okta",
                "remove it for Okta environments",
            )
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


# -- remembered state -------------------------------------------------------------------


@dataclass(frozen=True)
class _Remembered:
    """What promote last wrote to the server: AIC-only fields and write-only fingerprints."""

    server_id: str
    local: Mapping[str, JSON] = field(default_factory=dict)
    fingerprints: Mapping[str, str] = field(default_factory=dict)


class _StateFile:
    """``okta-email-server.json``: a 0600 file in the tenant's state dir, replaced atomically,
    or a record of the shared state store (Okta keeps no place for it)."""

    def __init__(self, document: Document) -> None:
        self.path = document

    def load(self) -> _Remembered | None:
        data = self._read()
        if data is None or not isinstance(data.get("server_id"), str):
            return None
        return _Remembered(
            server_id=data["server_id"],
            local=data.get("local") or {},
            fingerprints=data.get("fingerprints") or {},
        )

    def save(self, remembered: _Remembered) -> None:
        data = {
            "format": _STATE_FORMAT,
            "server_id": remembered.server_id,
            "local": remembered.local,
            "fingerprints": dict(remembered.fingerprints),
        }
        self._write(json.dumps(data, indent=2, sort_keys=True) + "\n")

    def forget(self) -> None:
        self.path.delete()

    def _read(self) -> dict[str, Any] | None:
        try:
            raw = self.path.read()
            if raw is None:
                return None
            data = json.loads(raw)
        except (OSError, ValueError) as error:
            raise PromoteError(
                f"{self.path.where}: cannot read the Okta tenant state ({type(error).__name__});"
                " delete the file: the next plan then shows write-only values as 'will be set'"
            ) from None
        return data if isinstance(data, dict) else None

    def _write(self, text: str) -> None:
        try:
            self.path.write(text.encode())
        except OSError as error:
            raise StateFileError(Path(self.path.where), error) from None


# -- HTTP -------------------------------------------------------------------------------


class _OktaHttp(HttpClient):
    """The shared client with Okta's error objects: ``errorCode: errorSummary (errorId)``."""

    def __init__(self, base_url: str, *, hidden: Callable[[], Collection[str]], **kw: Any) -> None:
        super().__init__(base_url, **kw)
        self._hidden = hidden

    def error(self, method: str, path: str, response: httpx.Response) -> TenantError:
        """Okta's error object as one line plus causes; other bodies as status and excerpt."""
        message = _okta_message(response)
        excerpt = None
        if message is None:
            message = response.reason_phrase or "unexpected response"
            excerpt = self._hide(response.text)[:_EXCERPT_CHARS] if response.text else None
        return TenantError(
            self._hide(message) + _HINTS.get(response.status_code, ""),
            env=self.env,
            method=method,
            path=path,
            status=response.status_code,
            body=excerpt,
        )

    def _hide(self, text: str) -> str:
        text = scrub(text)
        for value in self._hidden():
            if value:
                text = text.replace(value, "********")
        return text


def _okta_message(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("errorCode"), str):
        return None
    text = f"{body['errorCode']}: {body.get('errorSummary') or 'no summary'}"
    if body.get("errorId"):
        text += f" ({body['errorId']})"
    causes = [
        str(cause.get("errorSummary"))
        for cause in body.get("errorCauses") or []
        if isinstance(cause, dict) and cause.get("errorSummary")
    ]
    if causes:
        text += "; causes: " + "; ".join(causes)
    return text


_HINTS = {
    400: " (Okta refused the email server settings: fix the fields named in"
    " config/external.email.json"
    " or the environment's values)",
    401: " (the token was refused: check tenant.token, and tenant.token_type: ssws for an API"
    " token, bearer for an OAuth access token)",
    403: " (the token needs the okta.emailServers.manage scope, or an admin's API token)",
    404: " (the email server is gone: run plan again)",
    429: " (Okta's rate limit: try again after the reset)",
}


# -- the tenant -------------------------------------------------------------------------


class OktaTenant:
    """An Okta org's custom email server as the ``external.email`` of one environment."""

    capabilities = OKTA_CAPABILITIES

    def __init__(
        self,
        env: str,
        *,
        url: str,
        token: SecretValue,
        state_dir: Path,
        records: StateStore | None = None,
        fingerprints: Fingerprints | None = None,
        token_type: str = "ssws",
        alias: str = DEFAULT_ALIAS,
        token_endpoint_auth_method: str = _AUTH_METHODS[0],
        test_to: str | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        pace_below: int = 1,
        max_wait: float = 120.0,
        rate_limit_attempts: int = 5,
    ) -> None:
        self.env = env
        self.url = url.rstrip("/")
        self.alias = alias
        self.state_dir = state_dir
        self.test_to = test_to
        self.last_test: tuple[str, str] | None = None
        """``(from, to)`` of the test message the latest :meth:`put_config` had Okta send
        through the server (None before, after a failed put and after a delete): the verify
        gate does not send the same test a second time."""
        self._token = token
        self._method = token_endpoint_auth_method
        document = tenant_document(env, _STATE_FILE, store=records, state_dir=state_dir)
        assert document is not None
        self._state = _StateFile(document)
        self._fingerprints = fingerprints or Fingerprints.ephemeral()
        self._clock = clock
        self._sleep = sleep
        self._pace_below = pace_below
        self._max_wait = max_wait
        self._attempts = rate_limit_attempts
        self._remaining: int | None = None
        self._reset: float | None = None
        self._sent_secrets: list[str] = []
        self._servers: list[Any] | None = None
        """The org's email server list as last read; any write forgets it (a plan stage
        reads it once; a write always starts from a fresh read)."""
        self._remembered: tuple[_Remembered | None] | None = None
        """The state file as last loaded or saved (``None``: not read yet)."""
        scheme = "SSWS" if token_type == "ssws" else "Bearer"
        self._http = _OktaHttp(
            self.url,
            env=env,
            auth=StaticAuth(f"{scheme} {token.reveal()}"),
            transport=transport,
            headers={"Accept": "application/json"},
            retry=RetryPolicy(rate_limit_attempts=1),
            on_response=self._note_rate_limit,
            sleep=sleep,
            clock=clock,
            hidden=lambda: [self._token.reveal(), *self._sent_secrets],
        )

    def __repr__(self) -> str:
        return f"OktaTenant(env={self.env!r}, url={self.url!r}, alias={self.alias!r})"

    # -- config ---------------------------------------------------------------------------

    def list_config_ids(self) -> set[str]:
        """``{"external.email"}`` when the org has an enabled custom server with our alias."""
        server = self._find_server()
        return {EMAIL_ID} if server is not None and server.get("enabled") else set()

    def read_config(self, ids: Collection[str]) -> dict[str, JSON]:
        """The enabled server in AIC shape, merged with the AIC-only fields promote wrote."""
        if EMAIL_ID not in ids:
            return {}
        server = self._find_server()
        if server is None or not server.get("enabled"):
            return {}
        live = external_email_of(server)
        remembered = self._load_state()
        if remembered is not None and remembered.server_id == server.get("id"):
            live = _merged(remembered.local, live)
        return {EMAIL_ID: live}

    def reconcile_write_only(self, object_id: str, desired: JSON, current: JSON) -> JSON:
        """``current`` plus each write-only value of ``desired`` whose fingerprint matches
        the one kept when promote last sent it to this server; otherwise unchanged."""
        if object_id != EMAIL_ID or not isinstance(desired, dict) or not isinstance(current, dict):
            return current
        remembered = self._load_state()
        if remembered is None or not remembered.fingerprints:
            return current
        server = self._find_server()
        if server is None or server.get("id") != remembered.server_id:
            return current
        result = copy.deepcopy(current)
        for path, _ in _WRITE_ONLY:
            value = _get_path(desired, path)
            stored = remembered.fingerprints.get(path)
            if not isinstance(value, str) or stored is None or _get_path(result, path) is not None:
                continue
            if self._fingerprints.matches(stored, value):
                parent, key = path.rsplit(".", 1)
                target = _get_path(result, parent)
                if isinstance(target, dict):
                    target[key] = value
        return result

    def put_config(self, object_id: str, value: JSON) -> None:
        """Create or update the server, then test it; a new server is enabled after its test.

        ``BlockedError`` when the value cannot be expressed on Okta (nothing sent);
        ``TenantError`` when Okta refuses a request or the test fails (the message says what
        the server was left as).
        """
        self.last_test = None
        self._only_email(object_id)
        problems = [p for p in check_okta_email(value, location=EMAIL_ID) if p.severity == "error"]
        if problems:
            raise BlockedError(f"{self.env}: external.email cannot be set on Okta", problems)
        body = email_server_body(value, alias=self.alias, token_endpoint_auth_method=self._method)
        self._sent_secrets = [body[k] for _, k in _WRITE_ONLY if isinstance(body.get(k), str)]
        server = self._find_server(fresh=True)
        remembered = self._load_state()
        if remembered is not None and (server is None or server.get("id") != remembered.server_id):
            remembered = None
        if server is None:
            body["enabled"] = False
            created = self._json(self._request("POST", _API, json_body=body, ok=(201,)))
            server_id = str(created["id"])
            self._remember(server_id, value)
            enable = True
        else:
            server_id = str(server["id"])
            changes = self._changes(server, body, remembered)
            enable = not server.get("enabled")
            if changes:
                self._request("PATCH", f"{_API}/{server_id}", json_body=changes)
            self._remember(server_id, value)
        tested = self._test(server_id, value, state="created, disabled" if enable else "updated")
        if enable:
            self._request("PATCH", f"{_API}/{server_id}", json_body=self._enable_body(body))
        self.last_test = tested

    def delete_config(self, object_id: str) -> None:
        """Delete our custom server (Okta's built-in email takes over); absent: no-op."""
        self.last_test = None
        self._only_email(object_id)
        server = self._find_server(strict=False, fresh=True)
        if server is not None:
            self._request("DELETE", f"{_API}/{server['id']}", ok=(204, 404))
        self._remembered = None
        self._state.forget()
        self._remembered = (None,)

    # -- email test -----------------------------------------------------------------------

    def send_test_email(self, *, from_address: str, to_address: str) -> None:
        """Ask Okta to send a test message through our custom server (``POST .../test``)."""
        server = self._find_server(fresh=True)
        if server is None:
            raise TenantError(
                f"no custom email server with alias {self.alias!r} on this org;"
                " run `promote run` to create it first",
                env=self.env,
            )
        self._request(
            "POST",
            f"{_API}/{server['id']}/test",
            json_body={"fromAddress": from_address, "toAddress": to_address},
            ok=(204,),
        )

    # -- ESVs, restart, promotion: Okta has none ------------------------------------------

    def list_variables(self) -> dict[str, VariableState]:
        """Okta has no ESVs: always empty."""
        return {}

    def list_secrets(self) -> dict[str, SecretState]:
        """Okta has no ESVs: always empty."""
        return {}

    def secret_matches(self, esv_id: str, value: SecretValue) -> bool | None:
        """Okta has no ESVs: cannot tell."""
        return None

    def write_esvs(self, writes: Sequence[EsvWrite]) -> None:
        """Okta has no ESVs: writing any is an error (values are resolved before sending)."""
        if writes:
            raise TenantError(
                f"Okta has no ESVs; {len(writes)} ESV write(s) cannot be applied"
                " (values are resolved into external.email before it is sent)",
                env=self.env,
            )

    def restart(self) -> None:
        """Nothing to restart on Okta."""

    def restart_status(self) -> Literal["ready", "restarting"]:
        """Always ``ready``."""
        return "ready"

    def lock_state(self) -> LockState:
        """Okta has no promotion lock."""
        return LockState(locked=False)

    def unlock(self, holder: str) -> None:
        """Okta has no promotion lock: nothing to release, nothing is sent."""

    def promote_from(
        self, lower: Tenant, *, holder: str, description: str, dry_run: bool = False
    ) -> PromotionReport:
        """Okta has no promotions: always a ``PromoteError``."""
        raise PromoteError(_NO_PROMOTIONS.format(env=self.env))

    def rollback(self, *, holder: str) -> PromotionReport:
        """Okta has no promotions to roll back: always a ``PromoteError``."""
        raise PromoteError(_NO_PROMOTIONS.format(env=self.env))

    def reports(self) -> list[PromotionReport]:
        """Okta keeps no promotion reports."""
        return []

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    # -- helpers --------------------------------------------------------------------------

    def _only_email(self, object_id: str) -> None:
        if object_id != EMAIL_ID:
            raise TenantError(
                f"an Okta org holds only external.email, not {object_id!r};"
                " remove it from this environment's walk",
                env=self.env,
            )

    def _find_server(self, *, strict: bool = True, fresh: bool = False) -> dict[str, JSON] | None:
        """Our server in the org's list: the list read since the last write, unless ``fresh``."""
        servers = self._servers
        if fresh or servers is None:
            listed = self._json(self._request("GET", _API))
            found = listed.get("email-servers") if isinstance(listed, dict) else listed
            if not isinstance(found, list):
                raise TenantError(
                    "the email server list is neither an array nor an object with 'email-servers'",
                    env=self.env,
                    method="GET",
                    path=_API,
                )
            servers = self._servers = found
        ours = [s for s in servers if isinstance(s, dict) and s.get("alias") == self.alias]
        if ours:
            return ours[0]
        others = [str(s.get("alias")) for s in servers if isinstance(s, dict)]
        if others and strict:
            raise TenantError(
                f"the org already has a custom email server {others[0]!r} and Okta allows only"
                f" one; set tenant.alias: {others[0]} to manage it, or delete it in Okta",
                env=self.env,
            )
        return None

    def _changes(
        self,
        server: Mapping[str, JSON],
        body: Mapping[str, JSON],
        remembered: _Remembered | None,
    ) -> dict[str, JSON]:
        """The PATCH body: changed fields; write-only ones unless their fingerprint matches."""
        switching = server.get("authType") != body["authType"]
        changes: dict[str, JSON] = {}
        for key, wanted in body.items():
            if key == "enabled":
                continue  # enabling waits for a passing test
            if key in {"password", "clientSecret"}:
                path = f"auth.{key}"
                known = remembered.fingerprints.get(path) if remembered else None
                same = known is not None and self._fingerprints.matches(known, str(wanted))
                if switching or not same:
                    changes[key] = wanted
            elif switching or server.get(key) != wanted:
                changes[key] = wanted
        if changes and body["authType"] == _OAUTH2:
            changes["authType"] = _OAUTH2  # Okta requires it on every OAuth 2.0 update
        return changes

    def _enable_body(self, body: Mapping[str, JSON]) -> dict[str, JSON]:
        enable: dict[str, JSON] = {"enabled": True}
        if body["authType"] == _OAUTH2:
            enable["authType"] = _OAUTH2
        return enable

    def _remember(self, server_id: str, value: Mapping[str, JSON]) -> None:
        fingerprints = {
            path: self._fingerprints.of(secret)
            for path, _ in _WRITE_ONLY
            if isinstance(secret := _get_path(value, path), str)
        }
        remembered = _Remembered(server_id, _local_part(value), fingerprints)
        self._remembered = None
        self._state.save(remembered)
        self._remembered = (remembered,)

    def _load_state(self) -> _Remembered | None:
        """The state file's record, read once until promote writes it."""
        if self._remembered is None:
            self._remembered = (self._state.load(),)
        return self._remembered[0]

    def _test(self, server_id: str, value: Mapping[str, JSON], *, state: str) -> tuple[str, str]:
        """Have Okta send the test message through the server; ``(from, to)`` once sent."""
        sender = parseaddr(str(value["from"]))[1]
        to = self.test_to or sender
        try:
            self._request(
                "POST",
                f"{_API}/{server_id}/test",
                json_body={"fromAddress": sender, "toAddress": to},
                ok=(204,),
            )
        except TenantError as error:
            left = (
                "it was created disabled: Okta still sends with its built-in email"
                if state.startswith("created")
                else "the server holds the new settings"
            )
            raise TenantError(
                f"the test email through server {server_id} failed ({left}); {error}",
                env=self.env,
            ) from None
        return sender, to

    def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: JSON = None,
        ok: Collection[int] = (),
    ) -> httpx.Response:
        """One request, paced by the rate-limit headers; a 429 waits for the reset. Anything
        but a GET forgets the server list read so far."""
        if method != "GET":
            self._servers = None
        for attempt in range(1, self._attempts + 1):
            self._pace()
            response = self._http.request(method, path, json_body=json_body, ok=(*ok, 429))
            if response.status_code != 429:
                return response
            wait = self._wait_for_reset(response, attempt)
            if attempt == self._attempts or wait > self._max_wait:
                raise self._http.error(method, path, response)
            self._sleep(wait)
            self._remaining = None
        raise AssertionError("unreachable")  # pragma: no cover

    def _pace(self) -> None:
        if self._remaining is None or self._reset is None:
            return
        if self._remaining > self._pace_below:
            return
        wait = self._reset - self._clock()
        if wait > 0:
            self._sleep(min(wait, self._max_wait))
        self._remaining = None

    def _note_rate_limit(self, response: httpx.Response) -> None:
        remaining = response.headers.get("X-Rate-Limit-Remaining")
        reset = response.headers.get("X-Rate-Limit-Reset")
        try:
            self._remaining = int(remaining) if remaining is not None else None
            self._reset = float(reset) if reset is not None else None
        except ValueError:
            self._remaining = self._reset = None

    def _wait_for_reset(self, response: httpx.Response, attempt: int) -> float:
        reset = response.headers.get("X-Rate-Limit-Reset")
        retry_after = response.headers.get("Retry-After")
        try:
            if reset is not None:
                return max(0.0, float(reset) - self._clock())
            if retry_after is not None:
                return max(0.0, float(retry_after))
        except ValueError:
            pass
        return float(2 ** (attempt - 1))

    def _json(self, response: httpx.Response) -> Any:
        return self._http.json_of(response)


_NO_PROMOTIONS = (
    "{env}: Okta has no promotions; its email server is written directly by `promote run`"
)


# -- factory ----------------------------------------------------------------------------


def open_okta(
    env: EnvironmentFile,
    *,
    workspace: Workspace,
    environ: Mapping[str, str] = os.environ,
    transport: httpx.BaseTransport | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    store: StateStore | None = None,
    fingerprints: Fingerprints | None = None,
) -> OktaTenant:
    """The Okta tenant of ``env`` (``tenant: {kind: okta, url, token, token_type, alias}``);
    what it remembers of the server goes to ``store`` when given (the shared state store).

    Raises ``EnvironmentFileError`` naming every bad tenant key, and the esv error for an
    unreadable token (by its source, never its value).
    """
    tenant = env.tenant
    problems: list[Problem] = []

    def bad(key: str, message: str) -> None:
        problems.append(Problem(env.relpath, f"tenant.{key}", message))

    url = tenant.get("url")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        bad("url", "must be the org's URL, e.g. https://acme.okta.com")
    token = tenant.get("token")
    if not isinstance(token, SecretSource):
        bad("token", "must name where the API token is: {env: OKTA_TOKEN} or {file: path}")
    token_type = tenant.get("token_type", "ssws")
    if token_type not in ("ssws", "bearer"):
        bad("token_type", "must be ssws (API token) or bearer (OAuth access token)")
    alias = tenant.get("alias", DEFAULT_ALIAS)
    if not isinstance(alias, str) or not alias.strip():
        bad("alias", "must be a non-empty string")
    method = tenant.get("token_endpoint_auth_method", _AUTH_METHODS[0])
    if method not in _AUTH_METHODS:
        bad("token_endpoint_auth_method", "must be CLIENT_SECRET_BASIC or CLIENT_SECRET_POST")
    email_test = env.verify.get("email_test") if isinstance(env.verify, Mapping) else None
    test_to = email_test.get("to") if isinstance(email_test, Mapping) else None
    if problems:
        raise EnvironmentFileError(env.relpath, problems)
    assert isinstance(token, SecretSource) and isinstance(url, str)
    secret = read_credential(env, "token", token, workspace=workspace.root, environ=environ)
    return OktaTenant(
        env.name,
        url=url,
        token=secret,
        state_dir=workspace.state_dir / "tenants" / env.name,
        records=store,
        fingerprints=fingerprints,
        token_type=str(token_type),
        alias=str(alias),
        token_endpoint_auth_method=str(method),
        test_to=test_to if isinstance(test_to, str) else None,
        transport=transport,
        clock=clock,
        sleep=sleep,
    )
