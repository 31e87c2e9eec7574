"""The ``okta`` tenant: an Okta org's custom email server as one environment's
``external.email`` (:class:`OktaTenant`), and :func:`open_okta`."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from email.utils import parseaddr
from pathlib import Path
from typing import Any, Literal

import httpx

from esv.secrets import SecretValue
from promote.errors import BlockedError, PromoteError, TenantError
from promote.http import RetryPolicy, StaticAuth
from promote.state.base import StateStore
from promote.state.document import tenant_document
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
from promote.tenants.okta.http import _API, _OktaHttp
from promote.tenants.okta.mapping import (
    _AUTH_METHODS,
    _OAUTH2,
    _WRITE_ONLY,
    DEFAULT_ALIAS,
    EMAIL_ID,
    _get_path,
    _local_part,
    _merged,
    check_okta_email,
    email_server_body,
    external_email_of,
)
from promote.tenants.okta.pacing import RateLimited
from promote.tenants.okta.records import _STATE_FILE, _Remembered, _StateFile

__all__ = ["OKTA_CAPABILITIES", "OktaTenant"]


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


class OktaTenant(RateLimited):
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


_NO_PROMOTIONS = (
    "{env}: Okta has no promotions; its email server is written directly by `promote run`"
)
