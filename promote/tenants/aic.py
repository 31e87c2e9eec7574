"""The ``aic`` tenant: a PingOne Advanced Identity Cloud environment over its REST API.

ESVs are read in one bulk read per kind, compared locally by the engine and written with
bounded concurrency (only what changed). A secret's value can never be read back, so promote
stores a keyed fingerprint of the value it wrote in the secret's description
(``promote:fp2:<key-id>:<hmac-hex>``, :mod:`promote.state.fingerprints`: HMAC-SHA256 with
the workspace's fingerprint key, so a reader of the description cannot test a guessed value)
and compares against that; an older unkeyed ``promote:fp1:`` fingerprint, or one made with
another key, cannot be compared and the secret is written again. Config of immutable
environments changes only through the promotion API, called on the upper environment (pull
model): lock, dry run, stop on missing ESVs, promote, report, unlock (also on failure and
Ctrl-C).
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from esv.errors import MISSING_ESV, Problem
from esv.ids import is_valid_id
from esv.references import index_references
from esv.secrets import SecretValue
from promote.errors import BlockedError, ImmutableError, LockedError, PromoteError, TenantError
from promote.http import TRANSIENT_STATUSES as TRANSIENT
from promote.http import Auth, HttpClient, RetryPolicy, StaticAuth
from promote.state.base import StateStore
from promote.state.document import Document, tenant_document
from promote.state.fingerprints import Fingerprints
from promote.tenants.base import (
    JSON,
    Capabilities,
    EsvWrite,
    LockState,
    PromotionReport,
    RestartStatus,
    SecretState,
    Tenant,
    VariableState,
)

if TYPE_CHECKING:
    from esv.envfile import EnvironmentFile
    from promote.workspace import Workspace

__all__ = [
    "DEFAULT_SCOPE",
    "MANAGED_MARKER",
    "AicTenant",
    "ServiceAccountAuth",
    "open_aic",
]

MANAGED_MARKER = "promote:"
"""Prefix of the description of every ESV promote wrote; only those are ever deleted."""
_VARIABLE_DESCRIPTION = "promote:managed"
_FINGERPRINT_PREFIX = "promote:"
DEFAULT_SCOPE = "fr:am:* fr:idm:* fr:idc:esv:* fr:idc:promotion:*"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"

_ESV_API = "protocol=1.0,resource=1.0"
_PROMOTION_API = "protocol=1.0,resource=1.0"
_IDM_API = "resource=1.0"
_ALWAYS_MANAGED_CONFIG = ("external.email",)
_UNLOCKED = "unlocked"
_LOCKS_FILE = "promotion-locks.json"
_LOCKS_FORMAT = "promote.aic-promotion-locks/1"
_CONFIG_FILE = "managed-config.json"
_CONFIG_FORMAT = "promote.aic-managed-config/1"


class ServiceAccountAuth:
    """Access tokens for an AIC service account by the JWT-bearer grant, refreshed early.

    Signs an RS256 JWT (``iss`` = ``sub`` = the account id, ``aud`` = the token endpoint,
    3 minutes' life, random ``jti``) with the account's private JWK and exchanges it at
    ``<url>/am/oauth2/access_token``. A token is reused until ``refresh_margin`` seconds
    before it expires. Thread-safe.
    """

    def __init__(
        self,
        url: str,
        account_id: str,
        jwk: SecretValue,
        *,
        scope: str = DEFAULT_SCOPE,
        env: str | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        refresh_margin: float = 60.0,
    ) -> None:
        self.token_url = url.rstrip("/") + "/am/oauth2/access_token"
        self._account_id = account_id
        self._key = _private_key(jwk, env)
        self._kid = _jwk_field(jwk, "kid")
        self._scope = scope
        self._clock = clock
        self._margin = refresh_margin
        self._http = HttpClient(url, env=env, transport=transport, clock=clock, sleep=sleep)
        self._lock = threading.Lock()
        self._token: SecretValue | None = None
        self._expires = 0.0

    def authorization(self) -> str:
        """``Bearer <access token>``, exchanging a fresh assertion when needed."""
        with self._lock:
            if self._token is None or self._clock() >= self._expires - self._margin:
                self._fetch()
            assert self._token is not None
            return "Bearer " + self._token.reveal()

    def invalidate(self) -> None:
        """Drop the cached token; the next request exchanges a new assertion."""
        with self._lock:
            self._token = None

    def assertion(self) -> str:
        """A freshly signed JWT-bearer assertion (compact serialisation)."""
        now = int(self._clock())
        header: dict[str, Any] = {"alg": "RS256", "typ": "JWT"}
        if self._kid:
            header["kid"] = self._kid
        claims = {
            "iss": self._account_id,
            "sub": self._account_id,
            "aud": self.token_url,
            "iat": now,
            "exp": now + 180,
            "jti": str(uuid.uuid4()),
        }
        signing_input = (
            _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())
        )
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + _b64url(signature)

    def _fetch(self) -> None:
        path = "/am/oauth2/access_token"
        response = self._http.request(
            "POST",
            path,
            form={
                "grant_type": JWT_BEARER,
                "client_id": "service-account",
                "assertion": self.assertion(),
                "scope": self._scope,
            },
            authenticate=False,
        )
        body = self._http.json_of(response)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise TenantError(
                "the token endpoint answered without an access_token",
                env=self._http.env,
                url=self._http.display_url,
                method="POST",
                path=path,
                status=response.status_code,
            )
        expires_in = body.get("expires_in", 900)
        self._token = SecretValue(token)
        self._expires = self._clock() + float(expires_in if expires_in is not None else 900)

    def close(self) -> None:
        """Close the token endpoint's connection pool."""
        self._http.close()

    def __repr__(self) -> str:
        return f"ServiceAccountAuth({self.token_url!r}, account=***)"


class _LockRecords:
    """``{holder: promotionId}`` of the promotion locks a tenant took and has not released.

    Kept in ``promotion-locks.json`` (a 0600 file under ``.promote/tenants/<env>``, replaced
    atomically and fsynced, or an object of the shared state store) before the promotion goes
    on, so a run killed mid-promotion leaves its lock's id behind for the run that recovers
    it, on any machine that shares the store; in memory when there is neither.
    """

    def __init__(self, document: Document | None, env: str) -> None:
        self.path = document
        self._env = env
        self._memory: dict[str, str] = {}
        self._mutex = threading.Lock()

    def get(self, holder: str) -> str | None:
        """The promotion id recorded for ``holder``."""
        with self._mutex:
            return self._read().get(holder)

    def holder_of(self, promotion_id: str) -> str | None:
        """The holder recorded for ``promotion_id``."""
        with self._mutex:
            found = [h for h, p in self._read().items() if p == promotion_id]
        return found[0] if found else None

    def put(self, holder: str, promotion_id: str) -> None:
        """Record ``holder``'s lock (durably, before returning)."""
        with self._mutex:
            records = self._read()
            records[holder] = promotion_id
            self._write(records)

    def remove(self, holder: str) -> None:
        """Forget ``holder``'s lock (absent: no-op)."""
        with self._mutex:
            records = self._read()
            if records.pop(holder, None) is not None:
                self._write(records)

    def _read(self) -> dict[str, str]:
        if self.path is None:
            return dict(self._memory)
        try:
            raw = self.path.read()
            if raw is None:
                return {}
            data = json.loads(raw)
        except (OSError, ValueError) as error:
            raise PromoteError(
                f"{self.path.where}: cannot read {self._env}'s promotion lock record "
                f"({type(error).__name__}); if no promotion is running, release the lock in "
                "the AIC admin console and delete the file"
            ) from None
        locks = data.get("locks") if isinstance(data, dict) else None
        if not isinstance(locks, dict):
            return {}
        return {str(h): str(p) for h, p in locks.items() if isinstance(p, str) and p}

    def _write(self, records: Mapping[str, str]) -> None:
        if self.path is None:
            self._memory = dict(records)
            return
        if not records:
            try:
                self.path.delete()
            except OSError as error:
                raise self._unwritable(error) from None
            return
        try:
            _write_json(self.path, {"format": _LOCKS_FORMAT, "locks": dict(records)})
        except OSError as error:
            raise self._unwritable(error) from None

    def _unwritable(self, error: OSError) -> PromoteError:
        assert self.path is not None
        return PromoteError(
            f"{self.path.where}: cannot record {self._env}'s promotion lock "
            f"({error.strerror or type(error).__name__}); check that .promote/ is writable"
        )


class _ConfigRecord:
    """Ids of the config objects promote wrote to (or promoted into) one tenant.

    Kept in ``managed-config.json`` (a 0600 file under ``.promote/tenants/<env>``, or an
    object of the shared state store), so an object removed from the workspace is still known
    as promote's and is deleted, while the platform's own objects (never written by promote)
    are never offered for deletion. The ids a promotion replaced are kept as ``previous`` for
    a rollback. In memory when there is no place to keep it.
    """

    def __init__(self, document: Document | None, env: str) -> None:
        self.path = document
        self._env = env
        self._memory: dict[str, list[str]] = {"ids": [], "previous": []}
        self._mutex = threading.Lock()

    def ids(self) -> set[str]:
        """The recorded ids."""
        with self._mutex:
            return set(self._read()["ids"])

    def add(self, object_id: str) -> None:
        """Record ``object_id`` (durably, before returning)."""
        self._update(lambda ids, previous: (ids | {object_id}, previous))

    def discard(self, object_id: str) -> None:
        """Forget ``object_id``."""
        self._update(lambda ids, previous: (ids - {object_id}, previous))

    def replace(self, object_ids: Collection[str]) -> None:
        """After a promotion: exactly ``object_ids``; the ids before become ``previous``."""
        self._update(lambda ids, previous: (set(object_ids), ids))

    def restore_previous(self) -> None:
        """After a rollback: the ids before the last promotion come back."""
        self._update(lambda ids, previous: (ids | previous, previous))

    def _update(self, change: Callable[[set[str], set[str]], tuple[set[str], set[str]]]) -> None:
        with self._mutex:
            record = self._read()
            ids, previous = change(set(record["ids"]), set(record["previous"]))
            new = {"ids": sorted(ids), "previous": sorted(previous)}
            if new != record:
                self._write(new)

    def _read(self) -> dict[str, list[str]]:
        if self.path is None:
            return {k: list(v) for k, v in self._memory.items()}
        try:
            raw = self.path.read()
            if raw is None:
                return {"ids": [], "previous": []}
            data = json.loads(raw)
        except (OSError, ValueError) as error:
            raise PromoteError(
                f"{self.path.where}: cannot read the config ids promote manages on {self._env} "
                f"({type(error).__name__}); fix or delete the file (deleting it means objects "
                "removed from the workspace are no longer deleted from this tenant)"
            ) from None
        data = data if isinstance(data, dict) else {}
        return {
            key: sorted(str(i) for i in data.get(key) or [] if isinstance(i, str))
            for key in ("ids", "previous")
        }

    def _write(self, record: dict[str, list[str]]) -> None:
        if self.path is None:
            self._memory = record
            return
        try:
            _write_json(self.path, {"format": _CONFIG_FORMAT, **record})
        except OSError as error:
            raise PromoteError(
                f"{self.path.where}: cannot record the config ids promote manages on {self._env} "
                f"({error.strerror or type(error).__name__}); check that .promote/ is writable"
            ) from None


def _write_json(document: Document, data: Any) -> None:
    """``data`` as JSON in ``document`` (a 0600 file, or a store record); an ``OSError`` when a
    file cannot be written (the callers word the message)."""
    document.write((json.dumps(data, indent=2) + "\n").encode())


class AicTenant:
    """One AIC environment (``https://<tenant-env-fqdn>``) behind the Tenant protocol.

    ``records`` (the workspace's state store), else ``state_dir`` (``.promote/tenants/<env>``),
    keeps ``promotion-locks.json``: the promotion id
    of each lock this tenant took, by holder, so that :meth:`unlock` can release a lock left
    by a run that was killed mid-promotion; and ``managed-config.json``: the config ids
    promote wrote or promoted here, so that objects removed from the workspace are deleted.
    Without one both records live in memory only.

    ``lower``: the name of the environment this one is promoted from (the stage below it in
    the workspace's chain). AIC promotes only between fixed pairs and its reports do not name
    the lower environment, so this name is the ``source`` of :meth:`rollback` and
    :meth:`reports`; ``None`` (no stage below) leaves it ``None``.
    """

    capabilities = Capabilities(sends_test_email=True, atomic_esv_writes=False)
    last_test: tuple[str, str] | None = None
    """Always None: writing ``external.email`` sends no test message."""

    def __init__(
        self,
        env: str,
        url: str,
        *,
        auth: Auth,
        mutable: bool,
        lower: str | None = None,
        config_ids: Collection[str] = (),
        concurrency: int = 8,
        state_dir: Path | None = None,
        records: StateStore | None = None,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
        poll_interval: float = 5.0,
        promotion_timeout: float = 1800.0,
        error_budget: int = 5,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        fingerprints: Fingerprints | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.env = env
        self.url = url.rstrip("/")
        self.mutable = mutable
        self.lower = lower
        self.concurrency = concurrency
        self.managed_config_ids = frozenset(config_ids) | frozenset(_ALWAYS_MANAGED_CONFIG)
        self.state_dir = state_dir
        self._locks = _LockRecords(
            tenant_document(env, _LOCKS_FILE, store=records, state_dir=state_dir), env
        )
        self._written = _ConfigRecord(
            tenant_document(env, _CONFIG_FILE, store=records, state_dir=state_dir), env
        )
        self._http = HttpClient(
            self.url,
            env=env,
            auth=auth,
            transport=transport,
            retry=retry,
            max_connections=max(concurrency, 4),
            sleep=sleep,
            clock=clock,
        )
        self._auth = auth
        self._sleep = sleep
        self._clock = clock
        self._fingerprints = fingerprints or Fingerprints.ephemeral()
        self._poll = poll_interval
        self._promotion_timeout = promotion_timeout
        self._budget = error_budget
        self._poll_failures = 0
        self._awaiting_restart = False
        self._variables: dict[str, dict[str, Any]] | None = None
        self._secrets: dict[str, dict[str, Any]] | None = None

    def __repr__(self) -> str:
        return f"AicTenant({self.env!r}, {self.url!r})"

    # -- config -------------------------------------------------------------------------
    def list_config_ids(self) -> set[str]:
        """The managed ids this tenant holds: the workspace's config, ``external.email`` and
        every id promote wrote or promoted here (still managed once removed from the
        workspace, so that it is deleted). The platform's own objects are never listed."""
        body = self._http.get_json("/openidm/config", api_version=_IDM_API)
        held = {
            item["_id"]
            for item in (body or {}).get("configurations", [])
            if isinstance(item, dict) and isinstance(item.get("_id"), str)
        }
        return held & (self.managed_config_ids | self._written.ids())

    def read_config(self, ids: Collection[str]) -> dict[str, JSON]:
        """``GET /openidm/config/{id}`` for each id (concurrently); absent ids omitted."""

        def read(object_id: str) -> tuple[str, JSON | None]:
            response = self._http.request(
                "GET", _config_path(object_id), api_version=_IDM_API, ok=(404,)
            )
            if response.status_code == 404:
                return object_id, None
            value = self._http.json_of(response)
            if isinstance(value, dict):
                value = {k: v for k, v in value.items() if k not in ("_id", "_rev")}
            return object_id, value

        found = self._map(read, sorted(ids))
        return {object_id: value for object_id, value in found if value is not None}

    def put_config(self, object_id: str, value: JSON) -> None:
        """``PUT /openidm/config/{id}``; ``ImmutableError`` for an immutable environment."""
        self._refuse_if_immutable("PUT", object_id)
        self._written.add(object_id)  # before the write: a crash after it still tracks the id
        self._http.request("PUT", _config_path(object_id), api_version=_IDM_API, json_body=value)

    def delete_config(self, object_id: str) -> None:
        """``DELETE /openidm/config/{id}`` (absent: no-op); immutable as for put."""
        self._refuse_if_immutable("DELETE", object_id)
        self._http.request("DELETE", _config_path(object_id), api_version=_IDM_API, ok=(404,))
        self._written.discard(object_id)

    def reconcile_write_only(self, object_id: str, desired: JSON, current: JSON) -> JSON:
        """AIC returns config as written: nothing to reconcile."""
        return current

    # -- ESVs ---------------------------------------------------------------------------
    def list_variables(self) -> dict[str, VariableState]:
        """Every variable, values decoded (one bulk read, following the paging cookie)."""
        raw = {item["_id"]: item for item in self._list("/environment/variables")}
        self._variables = raw
        return {
            esv_id: VariableState(
                id=esv_id,
                value=_decode(item.get("valueBase64")),
                type=str(item.get("expressionType") or "string"),
                loaded=bool(item.get("loaded", False)),
                managed=_is_managed(item),
            )
            for esv_id, item in raw.items()
        }

    def list_secrets(self) -> dict[str, SecretState]:
        """Every secret's metadata (one bulk read); pending = active version not loaded."""
        raw = {item["_id"]: item for item in self._list("/environment/secrets")}
        self._secrets = raw
        return {esv_id: _secret_state(item) for esv_id, item in raw.items()}

    def secret_matches(self, esv_id: str, value: SecretValue) -> bool | None:
        """Compare ``value`` with the fingerprint promote stored; None without one."""
        if self._secrets is None:
            self.list_secrets()
        assert self._secrets is not None
        item = self._secrets.get(esv_id)
        if item is None:
            return False
        description = str(item.get("description") or "")
        if not description.startswith(_FINGERPRINT_PREFIX):
            return None
        return self._fingerprints.matches(description[len(_FINGERPRINT_PREFIX) :], value)

    def write_esvs(self, writes: Sequence[EsvWrite]) -> None:
        """Apply writes with ``concurrency`` requests in flight; raise naming what was written.

        Variables: ``PUT`` (upsert with ``expressionType``; a type change deletes and
        recreates). Secrets: ``PUT`` once to create (generic, usable in placeholders), new
        values as new versions. Deletes: ``DELETE`` (absent: no-op).
        """
        if not writes:
            return
        invalid = sorted({w.id for w in writes if not is_valid_id(w.id)})
        if invalid:
            raise TenantError(
                f"{len(invalid)} invalid ESV id(s), nothing was written: "
                + ", ".join(repr(i) for i in invalid)
                + " (ids must match ^esv-[a-z0-9_-]{1,124}$)",
                env=self.env,
                url=self._http.display_url,
            )
        if self._variables is None and any(w.kind == "variable" for w in writes):
            self.list_variables()
        if self._secrets is None and any(w.kind == "secret" for w in writes):
            self.list_secrets()
        variables = dict(self._variables or {})
        secrets = dict(self._secrets or {})

        def apply(write: EsvWrite) -> tuple[EsvWrite, PromoteError | None]:
            try:
                if write.kind == "variable":
                    self._write_variable(write, variables.get(write.id))
                else:
                    self._write_secret(write, write.id in secrets)
            except PromoteError as error:
                return write, error
            return write, None

        try:
            results = self._map(apply, list(writes))
        finally:
            self._variables = None
            self._secrets = None
        failed = [(w, e) for w, e in results if e is not None]
        if failed:
            done = [f"{w.action} {w.kind} {w.id}" for w, e in results if e is None]
            lines = [f"{w.action} {w.kind} {w.id}: {e}" for w, e in failed]
            written = ", ".join(done) if done else "none"
            raise TenantError(
                f"{len(failed)} of {len(writes)} ESV writes failed; written: {written}; "
                "failed:\n  "
                + "\n  ".join(lines)
                + "\nrun again to finish (writes are idempotent)",
                env=self.env,
                url=self._http.display_url,
                status=failed[0][1].status if isinstance(failed[0][1], TenantError) else None,
            )

    # -- restart ------------------------------------------------------------------------
    def restart(self) -> None:
        """Start a restart, or keep waiting for one already running; returns at once."""
        try:
            running = self._read_restart_status() == "restarting"
        except TenantError as error:
            if not _transient(error):
                raise
            running = False  # cannot tell: asking for a restart is safe either way
        self._awaiting_restart = True
        if running:
            return
        self._http.request(
            "POST", "/environment/startup", api_version=_ESV_API, params={"_action": "restart"}
        )

    def restart_status(self) -> RestartStatus:
        """``ready`` or ``restarting``.

        Up to ``error_budget`` consecutive 500s read as ``restarting`` (a 500 while the
        platform restarts must not fail the run); failures the HTTP client already retried
        (connection errors, timeouts, 502-504) fail at once. After :meth:`restart`, ``ready``
        is reported only once no ESV is pending, so a status read just before the platform
        flips to ``restarting`` cannot end the wait early.
        """
        try:
            status = self._read_restart_status()
            if status == "ready" and self._awaiting_restart:
                counts = self._http.get_json(
                    "/environment/count", api_version=_ESV_API, params={"_onlyPending": "true"}
                )
                pending = sum(int(v) for v in (counts or {}).values() if isinstance(v, int))
                if pending:
                    status = "restarting"
                else:
                    self._awaiting_restart = False
        except TenantError as error:
            if _transient(error) and self._poll_failures < self._budget:
                self._poll_failures += 1
                return "restarting"
            raise
        self._poll_failures = 0
        return status

    def _read_restart_status(self) -> RestartStatus:
        body = self._http.get_json("/environment/startup", api_version=_ESV_API)
        return "ready" if (body or {}).get("restartStatus") == "ready" else "restarting"

    # -- promotion ----------------------------------------------------------------------
    def lock_state(self) -> LockState:
        """Whether a promotion lock is held on this environment, and by whom: the holder
        promote recorded for its promotion id, else the promoter or the promotion id."""
        state = self._lock_state()
        result = state.get("result")
        return LockState(locked=result != _UNLOCKED, holder=self._holder_of(state))

    def unlock(self, holder: str) -> None:
        """Release the lock ``holder`` took (recorded by promotion id), if AIC still holds it.

        No record for ``holder``: no-op. The lock state no longer showing that promotion id
        (released, or someone else's lock now): the record is dropped and nothing is sent.
        Otherwise ``DELETE /environment/promotion/lock/{promotionId}`` and poll until unlocked.
        """
        promotion_id = self._locks.get(holder)
        if promotion_id is None:
            return
        state = self._lock_state()
        result = state.get("result", _UNLOCKED)
        if result == _UNLOCKED or _promotion_id(state) != promotion_id:
            self._locks.remove(holder)
            return
        if result == "locking":
            self._wait_lock("locked")
        if result != "unlocking":
            self._http.request(
                "DELETE",
                f"/environment/promotion/lock/{promotion_id}",
                api_version=_PROMOTION_API,
                ok=(404,),
            )
        self._wait_lock(_UNLOCKED)
        self._locks.remove(holder)

    def promote_from(
        self, lower: Tenant, *, holder: str, description: str, dry_run: bool = False
    ) -> PromotionReport:
        """Promote ``lower`` into this (upper) environment through the promotion API.

        Lock, dry run, stop on missing ESVs or encrypted secrets (one ``BlockedError``
        listing all of them; nothing promoted), promote, read the report, unlock; the lock is
        released on every path, Ctrl-C included.
        """
        request = {
            "promoter": holder,
            "promotionDescription": description,
            "unlockEnvironmentsAfterPromotion": False,
            "ignoreEncryptedSecrets": False,
        }
        with self._locked(holder):
            status, report = self._run_promotion({"dryRun": True, **request})
            self._refuse_blocked(status, report, lower)
            if not dry_run:
                # The lower environment is locked too: what it holds now is what arrives.
                carried = lower.list_config_ids()
                status, report = self._run_promotion({"dryRun": False, **request})
                self._refuse_blocked(status, report, lower)
                self._written.replace(carried)
        return _promotion_report(report, env=self.env, source=lower.env)

    def _refuse_blocked(
        self, status: Mapping[str, Any], report: Mapping[str, Any], lower: Tenant
    ) -> None:
        """``BlockedError`` listing every missing ESV (with where the lower config uses it)
        and every encrypted secret the platform found in the incoming config."""
        missing = sorted({str(x) for x in report.get("missingESVs") or []})
        encrypted = sorted(
            {str(x) for found in (status, report) for x in found.get("encryptedSecrets") or []}
        )
        if not missing and not encrypted:
            return
        problems = self._missing_problems(missing, lower) if missing else []
        problems += [
            Problem(
                self.env,
                "",
                f"encrypted secret in the promoted config: {secret}",
                hint=f"an encrypted value cannot be decrypted in {self.env}: store it as an ESV "
                "secret and reference it with a placeholder (&{esv.x})",
            )
            for secret in encrypted
        ]
        reasons = []
        if missing:
            reasons.append(f"{len(missing)} ESV(s) missing ({', '.join(missing)})")
        if encrypted:
            reasons.append(f"{len(encrypted)} encrypted secret(s) ({', '.join(encrypted)})")
        raise BlockedError(
            f"{self.env}: cannot promote from {lower.env}: {'; '.join(reasons)}; "
            "nothing was changed",
            problems,
        )

    def _missing_problems(self, missing: Sequence[str], lower: Tenant) -> list[Problem]:
        problems = []
        try:
            incoming = lower.read_config(lower.list_config_ids())
        except PromoteError:
            incoming = {}
        used = [r for r in index_references(incoming) if r.esv_id in missing and not r.defaulted]
        hint = f"define it in the {self.env} environment file, or give the placeholder a default"
        for ref in used:
            problems.append(
                Problem(
                    ref.object_id,
                    ref.path,
                    f"{ref.esv_id} is not defined in {self.env}",
                    esv_id=ref.esv_id,
                    hint=hint,
                    code=MISSING_ESV,
                )
            )
        located = {ref.esv_id for ref in used}
        problems += [
            Problem(
                self.env,
                "",
                f"{esv_id} is not defined in {self.env}",
                esv_id=esv_id,
                hint=hint,
                code=MISSING_ESV,
            )
            for esv_id in missing
            if esv_id not in located
        ]
        return problems

    def rollback(self, *, holder: str) -> PromotionReport:
        """Roll back this environment's last promotion through the rollback endpoint."""
        with self._locked(holder):
            _, report = self._run_promotion(
                {
                    "promoter": holder,
                    "promotionDescription": f"rollback by {holder}",
                    "unlockEnvironmentsAfterPromotion": False,
                },
                path="/environment/promotion/rollback",
                refused=(400,),
            )
            self._written.restore_previous()
        return _promotion_report(report, env=self.env, source=self.lower)

    def reports(self) -> list[PromotionReport]:
        """Every promotion and rollback report, oldest first; ``source`` is :attr:`lower`."""
        metas = self._http.get_json("/environment/promotion/reports", api_version=_PROMOTION_API)
        ids = [m["reportId"] for m in metas or [] if isinstance(m, dict) and m.get("reportId")]
        bodies = self._map(
            lambda report_id: self._http.get_json(
                f"/environment/promotion/report/{report_id}", api_version=_PROMOTION_API
            ),
            ids,
        )
        found = [_promotion_report(b, env=self.env, source=self.lower) for b in bodies if b]
        return sorted(found, key=lambda r: r.created)

    # -- email --------------------------------------------------------------------------
    def send_test_email(self, *, from_address: str, to_address: str) -> None:
        """Send a test email through the tenant's configured provider."""
        self._http.request(
            "POST",
            "/openidm/external/email",
            api_version=_IDM_API,
            params={"_action": "send"},
            json_body={
                "from": from_address,
                "to": to_address,
                "subject": "Test Provider Email",
                "body": "This is a test email using your configured provider settings.",
                "type": "text/plain",
            },
        )

    def close(self) -> None:
        """Close the connection pools (the tenant's and its token endpoint's)."""
        self._http.close()
        close_auth = getattr(self._auth, "close", None)
        if callable(close_auth):
            close_auth()

    # -- helpers ------------------------------------------------------------------------
    def _map(self, call: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        """``call`` over ``items`` with at most ``concurrency`` in flight, results in order.

        On Ctrl-C (or any escaping error) requests not yet sent are cancelled; those in
        flight finish, so the tenant is never left with a half-sent request.
        """
        if self.concurrency == 1 or len(items) <= 1:
            return [call(item) for item in items]
        pool = ThreadPoolExecutor(max_workers=min(self.concurrency, len(items)))
        try:
            futures = [pool.submit(call, item) for item in items]
            return [future.result() for future in futures]
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            pool.shutdown(wait=True)

    def _list(self, path: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cookie: str | None = None
        while True:
            params = {"_pagedResultsCookie": cookie} if cookie else None
            body = self._http.get_json(path, api_version=_ESV_API, params=params)
            if not isinstance(body, dict) or not isinstance(body.get("result"), list):
                raise TenantError(
                    "expected a list envelope with 'result'",
                    env=self.env,
                    method="GET",
                    path=path,
                    url=self._http.display_url,
                )
            items.extend(x for x in body["result"] if isinstance(x, dict) and "_id" in x)
            next_cookie = body.get("pagedResultsCookie")
            if not next_cookie or next_cookie == cookie:
                return items
            cookie = str(next_cookie)

    def _write_variable(self, write: EsvWrite, current: Mapping[str, Any] | None) -> None:
        path = f"/environment/variables/{write.id}"
        if write.action == "delete":
            self._http.request("DELETE", path, api_version=_ESV_API, ok=(404,))
            return
        if isinstance(write.value, SecretValue):
            raise TenantError(
                f"{write.id}: a secret value cannot be written as a variable",
                env=self.env,
                url=self._http.display_url,
            )
        old_type = str((current or {}).get("expressionType") or "")
        if current is not None and old_type and old_type != write.type:
            # The platform refuses to change a variable's type; delete and recreate instead.
            self._http.request("DELETE", path, api_version=_ESV_API, ok=(404,))
        body = {
            "valueBase64": _encode(write.value or ""),
            "expressionType": write.type,
            "description": _VARIABLE_DESCRIPTION,
        }
        self._http.request("PUT", path, api_version=_ESV_API, json_body=body)

    def _write_secret(self, write: EsvWrite, exists: bool) -> None:
        path = f"/environment/secrets/{write.id}"
        if write.action == "delete":
            self._http.request("DELETE", path, api_version=_ESV_API, ok=(404,))
            return
        value = write.value
        if not isinstance(value, SecretValue):
            value = SecretValue(value or "")
        description = f"{_FINGERPRINT_PREFIX}{self._fingerprints.of(value)}"
        encoded = _encode(value.reveal())
        if not exists:
            body = {
                "valueBase64": encoded,
                "encoding": "generic",
                "useInPlaceholders": True,
                "description": description,
            }
            self._http.request("PUT", path, api_version=_ESV_API, json_body=body)
            return
        self._http.request(
            "POST",
            f"{path}/versions",
            api_version=_ESV_API,
            params={"_action": "create"},
            json_body={"valueBase64": encoded},
        )
        self._http.request(
            "POST",
            path,
            api_version=_ESV_API,
            params={"_action": "setDescription"},
            json_body={"description": description},
        )

    def _refuse_if_immutable(self, method: str, object_id: str) -> None:
        if not self.mutable:
            raise ImmutableError(
                f"{self.env} is immutable: its config changes only by promotion from the "
                "stage below (run `promote run --to " + self.env + "`)",
                env=self.env,
                url=self._http.display_url,
                method=method,
                path=_config_path(object_id),
            )

    def _lock_state(self) -> dict[str, Any]:
        body = self._get_polled("/environment/promotion/lock/state")
        return body if isinstance(body, dict) else {}

    def _holder_of(self, state: Mapping[str, Any]) -> str | None:
        promotion_id = _promotion_id(state)
        recorded = self._locks.holder_of(promotion_id) if promotion_id else None
        return recorded or _holder(state)

    @contextmanager
    def _locked(self, holder: str) -> Iterator[str]:
        """Hold the promotion lock for the block, its id recorded for ``holder`` until a
        clean release (so that a killed run's lock can be released by :meth:`unlock`)."""
        state = self._lock_state()
        if state.get("result", _UNLOCKED) != _UNLOCKED:
            detail = str(state.get("description") or f"lock state {state.get('result')}")
            raise LockedError(self.env, self._holder_of(state), detail)
        status = self._get_polled("/environment/promotion/promote") or {}
        if str(status.get("status", "")).upper() == "RUNNING":
            raise LockedError(self.env, status.get("promotionId"), "a promotion is running")
        response = self._http.request(
            "POST", "/environment/promotion/lock", api_version=_PROMOTION_API, ok=(409,)
        )
        body = self._http.json_of(response) or {}
        if response.status_code == 409:
            raise LockedError(self.env, None, str(body.get("message") or "lock refused"))
        promotion_id = str(body.get("promotionId") or "")
        try:
            if promotion_id:
                self._locks.put(holder, promotion_id)
        except PromoteError as error:
            self._unlock(promotion_id, quiet=True)
            raise PromoteError(
                f"{error}; the promotion lock was released and nothing was changed"
            ) from None
        except BaseException:
            self._unlock(promotion_id, quiet=True)
            raise
        failed = True
        try:
            self._wait_lock("locked")
            yield promotion_id
            failed = False
        finally:
            if self._unlock(promotion_id, quiet=failed):
                try:
                    self._locks.remove(holder)
                except PromoteError:
                    pass  # a stale record is harmless: unlock() checks the lock state first

    def _unlock(self, promotion_id: str, *, quiet: bool) -> bool:
        """Release the lock; True once AIC reports it unlocked (``quiet``: failures → False)."""
        try:
            self._http.request(
                "DELETE",
                f"/environment/promotion/lock/{promotion_id}",
                api_version=_PROMOTION_API,
            )
            self._wait_lock(_UNLOCKED)
        except PromoteError:
            if not quiet:
                raise
            return False
        return True

    def _wait_lock(self, wanted: str) -> None:
        deadline = self._clock() + self._promotion_timeout
        delays = self._delays()
        while True:
            state = self._lock_state()
            result = state.get("result")
            if result == wanted:
                return
            if result == "error":
                raise TenantError(
                    f"locking failed: {state.get('description') or 'lock state error'}",
                    env=self.env,
                    url=self._http.display_url,
                    method="GET",
                    path="/environment/promotion/lock/state",
                )
            if self._clock() >= deadline:
                raise TenantError(
                    f"lock did not reach {wanted!r} within {self._promotion_timeout:.0f}s "
                    f"(still {result!r})",
                    env=self.env,
                    url=self._http.display_url,
                )
            self._sleep(next(delays))

    def _run_promotion(
        self,
        body: Mapping[str, Any],
        *,
        path: str = "/environment/promotion/promote",
        refused: Collection[int] = (),
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Start a promotion, dry run or rollback and wait for it: ``(status, report)``.

        AIC reports ``READY`` right after the lock and after every earlier run, so ``READY``
        alone proves nothing: the status and the last report id are read before the start,
        and the wait ends only at ``READY`` with a report whose id is new (after ``RUNNING``
        or a changed ``promotionId``/``timeStamp``, or a report that appeared between two
        polls). That report's ``dryRun`` must match the request.
        """
        status_path = "/environment/promotion/promote"
        before = self._get_polled(status_path) or {}
        old_report = _report_id(self._report_or_none())
        response = self._http.request(
            "POST", path, api_version=_PROMOTION_API, json_body=dict(body), ok=refused
        )
        if response.status_code in refused:
            error = self._http.error("POST", path, response)
            raise BlockedError(f"{self.env}: the platform refused: {error}")
        wanted_dry_run = bool(body.get("dryRun", False))
        deadline = self._clock() + self._promotion_timeout
        delays = self._delays()
        moved = False
        while True:
            status = self._get_polled(status_path) or {}
            if status.get("blockingError"):
                raise self._promotion_error(
                    f"promotion failed with a blocking error: {status.get('message')}; the "
                    "platform may keep the environment locked - check the promotion report"
                )
            state = str(status.get("status", "")).upper()
            if state in ("ERROR", "FAILED"):
                raise self._promotion_error(f"promotion failed: {status.get('message')}")
            moved = moved or state == "RUNNING" or _marks(status) != _marks(before)
            if state == "READY":
                report = self._report_or_none()
                report_id = _report_id(report)
                if report is not None and report_id and report_id != old_report:
                    if bool(report.get("dryRun", False)) != wanted_dry_run:
                        raise self._promotion_error(
                            f"the new report {report_id} is "
                            f"{'a dry run' if report.get('dryRun') else 'not a dry run'}, "
                            f"but {'a dry run' if wanted_dry_run else 'a promotion'} was "
                            "started; check the promotion reports in the admin console"
                        )
                    return status, report
            if self._clock() >= deadline:
                stale = "" if moved else " (never left the status it had before the start)"
                raise TenantError(
                    f"promotion still {state or 'unknown'}{stale} and no new report after "
                    f"{self._promotion_timeout:.0f}s",
                    env=self.env,
                    url=self._http.display_url,
                )
            self._sleep(next(delays))

    def _promotion_error(self, message: str) -> TenantError:
        return TenantError(
            message,
            env=self.env,
            method="GET",
            path="/environment/promotion/promote",
            url=self._http.display_url,
        )

    def _delays(self) -> Iterator[float]:
        """Poll delays: quick at first (short operations finish fast), then every
        ``poll_interval`` seconds."""
        delay = min(0.25, self._poll)
        while True:
            yield delay
            delay = min(delay * 2, self._poll)

    def _report_or_none(self) -> dict[str, Any] | None:
        """The last report (``GET /environment/promotion/report``); ``None`` before any."""
        path = "/environment/promotion/report"
        response = self._http.request("GET", path, api_version=_PROMOTION_API, ok=(404,))
        if response.status_code == 404:
            return None
        body = self._http.json_of(response)
        return body if isinstance(body, dict) else None

    def _get_polled(self, path: str) -> Any:
        """GET while polling: 500s are retried within the error budget (failures the
        client already retried - connection errors, timeouts, 502-504, 429 - are not)."""
        failures = 0
        while True:
            try:
                return self._http.get_json(path, api_version=_PROMOTION_API)
            except TenantError as error:
                failures += 1
                if not _transient(error) or failures > self._budget:
                    raise
                self._sleep(min(self._poll, float(failures)))


def open_aic(
    env: EnvironmentFile,
    *,
    workspace: Workspace,
    environ: Mapping[str, str],
    store: StateStore | None = None,
    fingerprints: Fingerprints | None = None,
) -> AicTenant:
    """The :class:`AicTenant` for an environment file whose tenant kind is ``aic``.

    ``tenant.url`` is required; auth is ``tenant.token`` (a bearer access token) or
    ``tenant.service_account: {id, jwk}``. Optional: ``concurrency`` (requests in flight
    when writing ESVs and reading config, default 8). Its ``lower`` is the stage below it in
    the workspace's chain.
    """
    from promote.tenants.credentials import read_credential

    spec = env.tenant
    where = f"{env.relpath}: tenant"
    url = spec.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise BlockedError(
            f"{where}.url: an aic tenant needs its url (https://<tenant-env-fqdn>)",
            [Problem(env.relpath, "tenant.url", "missing or not an http(s) URL")],
        )

    def secret(source: Any, key: str) -> SecretValue:
        if isinstance(source, str):
            return SecretValue(source)
        return read_credential(env, key, source, workspace=workspace.root, environ=environ)

    auth: Auth
    if spec.get("token") is not None:
        auth = StaticAuth("Bearer " + secret(spec["token"], "token").reveal())
    elif isinstance(spec.get("service_account"), Mapping):
        account = spec["service_account"]
        if account.get("id") is None or account.get("jwk") is None:
            raise BlockedError(
                f"{where}.service_account needs both id and jwk",
                [Problem(env.relpath, "tenant.service_account", "needs id and jwk")],
            )
        auth = ServiceAccountAuth(
            url,
            secret(account["id"], "service_account.id").reveal(),
            secret(account["jwk"], "service_account.jwk"),
            scope=str(account.get("scope") or DEFAULT_SCOPE),
            env=env.name,
        )
    else:
        raise BlockedError(
            f"{where}: an aic tenant needs token: {{env: VAR}} or service_account: {{id, jwk}}",
            [Problem(env.relpath, "tenant", "no token and no service_account")],
        )
    return AicTenant(
        env.name,
        url,
        auth=auth,
        mutable=workspace.is_mutable(env.name),
        lower=workspace.lower(env.name) if env.name in workspace.chain else None,
        config_ids=tuple(workspace.config),
        concurrency=int(spec.get("concurrency", 8)),
        state_dir=workspace.state_dir / "tenants" / env.name,
        records=store,
        fingerprints=fingerprints,
    )


def _config_path(object_id: str) -> str:
    return f"/openidm/config/{object_id}"


def _encode(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


def _decode(value: Any) -> str:
    if not isinstance(value, str):
        return ""
    return base64.b64decode(value).decode("utf-8", errors="replace")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_int(text: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")


def _jwk_field(jwk: SecretValue, name: str) -> str | None:
    try:
        value = json.loads(jwk.reveal()).get(name)
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _private_key(jwk: SecretValue, env: str | None) -> rsa.RSAPrivateKey:
    """The RSA private key of a JWK (``kty: RSA`` with ``n, e, d``; primes recovered if absent)."""
    try:
        fields = json.loads(jwk.reveal())
        if not isinstance(fields, dict) or fields.get("kty") != "RSA":
            raise ValueError("not an RSA JWK")
        n, e, d = (_b64url_int(fields[k]) for k in ("n", "e", "d"))
        if all(k in fields for k in ("p", "q")):
            p, q = _b64url_int(fields["p"]), _b64url_int(fields["q"])
        else:
            p, q = rsa.rsa_recover_prime_factors(n, e, d)
        numbers = rsa.RSAPrivateNumbers(
            p,
            q,
            d,
            rsa.rsa_crt_dmp1(d, p),
            rsa.rsa_crt_dmq1(d, q),
            rsa.rsa_crt_iqmp(p, q),
            rsa.RSAPublicNumbers(e, n),
        )
        return numbers.private_key()
    except (ValueError, KeyError, TypeError):
        # Never echo the key material; say only what is wrong with its shape.
        raise BlockedError(
            f"{env or 'aic'}: tenant.service_account.jwk is not an RSA private key in JWK form "
            "(expected a JSON object with kty RSA, n, e, d); download it again from the "
            "service account page"
        ) from None


def _is_managed(item: Mapping[str, Any]) -> bool:
    return str(item.get("description") or "").startswith(MANAGED_MARKER)


def _secret_state(item: Mapping[str, Any]) -> SecretState:
    active = str(item.get("activeVersion") or "")
    loaded_version = str(item.get("loadedVersion") or "")
    if item.get("useInPlaceholders", True):
        loaded = bool(active) and active == loaded_version
    else:
        loaded = True
    return SecretState(
        id=str(item["_id"]),
        version=int(active) if active.isdigit() else 0,
        loaded=loaded,
        managed=_is_managed(item),
    )


def _transient(error: TenantError) -> bool:
    """A failure status seen while polling that :class:`HttpClient` did not retry (a 500).

    Connection errors, timeouts, 502/503/504 and 429 were already retried by the client;
    retrying them again here would multiply its attempts (an unreachable tenant would take
    minutes to fail).
    """
    return error.status is not None and error.status >= 500 and error.status not in TRANSIENT


def _report_id(report: Mapping[str, Any] | None) -> str | None:
    found = (report or {}).get("reportId")
    return str(found) if found else None


def _marks(status: Mapping[str, Any]) -> tuple[str, str]:
    """What changes when a new promotion starts: its id and the status time stamp."""
    return str(status.get("promotionId") or ""), str(status.get("timeStamp") or "")


def _promotion_id(state: Mapping[str, Any]) -> str | None:
    """The promotion id a lock state names (top level, else the upper environment's)."""
    upper = state.get("upperEnv")
    found = state.get("promotionId") or (
        upper.get("promotionId") if isinstance(upper, dict) else None
    )
    return str(found) if found else None


def _holder(state: Mapping[str, Any]) -> str | None:
    holder = state.get("promoter") or state.get("promotionId")
    return str(holder) if holder else None


def _promotion_report(body: Mapping[str, Any], *, env: str, source: str | None) -> PromotionReport:
    changes: dict[str, list[str]] = {"added": [], "modified": [], "deleted": []}
    for section in (body.get("report") or {}).values():
        for entry in section if isinstance(section, list) else []:
            change = entry.get("configChange") or {} if isinstance(entry, dict) else {}
            for change_kind, names in changes.items():
                for thing in change.get(change_kind) or []:
                    names.append(str(thing.get("name") if isinstance(thing, dict) else thing))
    kind: Literal["promotion", "rollback"] = (
        "rollback" if body.get("type") == "rollback" else "promotion"
    )
    return PromotionReport(
        id=str(body.get("reportId") or body.get("promotionId") or ""),
        type=kind,
        env=env,
        source=source,
        created=str(body.get("createdDate") or ""),
        added=tuple(changes["added"]),
        modified=tuple(changes["modified"]),
        deleted=tuple(changes["deleted"]),
        dry_run=bool(body.get("dryRun", False)),
        missing_esvs=tuple(str(x) for x in body.get("missingESVs") or []),
        extra={
            k: body[k]
            for k in ("promoter", "promotionDescription", "reportName", "promotionId")
            if k in body
        },
    )
