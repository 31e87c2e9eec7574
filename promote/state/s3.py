"""The S3 state store: one bucket (and prefix) shared by every machine that runs promote for
a chain — AWS S3, MinIO, Ceph, R2, moto. The only module that imports boto3.

Keys under ``<prefix>``::

    lock.json                     the run lock: created with If-None-Match: *, deleted with
                                  If-Match: <its ETag>
    runs/<run-id>.json            run journals, updated with If-Match: <ETag> (compare-and-swap)
    history/<ns>-<digest>.json    one immutable object per history entry; <ns> (nanoseconds
                                  since the epoch, 20 digits) orders them by time
    records/<name>                records of what was applied
    fingerprint.key               the fingerprint key, created with If-None-Match: *

Credentials come from the standard AWS chain (environment, profile, instance role); they are
never read from ``promote.yaml`` and never appear in a message.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, TypeVar

import boto3
import botocore.config
import botocore.exceptions

from promote.errors import BlockedError, LockedError
from promote.state.base import (
    KEY_BYTES,
    ConflictError,
    HistoryEntry,
    LockInfo,
    StateStoreError,
    Versioned,
)

__all__ = ["S3Store"]

_T = TypeVar("_T")
_READERS = 8
"""Objects read at once when listing history or journals."""
_DENIED = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "AllAccessDisabled",
    "403",
}
_CONFLICT = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}
_MISSING = {"NoSuchKey", "404", "NotFound"}


class _MissingError(StateStoreError):
    """A conditional request named an object that is gone."""


class S3Store:
    """State in ``s3://<bucket>/<prefix>``; see the module docstring."""

    kind = "s3"

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        client: Any = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint_url = endpoint_url
        self._clock = clock
        self._client = client if client is not None else _client(endpoint_url, region)

    def describe(self) -> str:
        """``s3://bucket/prefix`` (and the endpoint when it is not AWS)."""
        where = f"s3://{self.bucket}/{self.prefix}"
        return f"{where} at {self.endpoint_url}" if self.endpoint_url else where

    def _key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def _call(self, action: str, call: Callable[[], _T]) -> _T:
        """``call()``, its failures as :class:`StateStoreError` for people (never with a
        credential: the messages are ours, with the service's error code)."""
        try:
            return call()
        except botocore.exceptions.NoCredentialsError:
            raise StateStoreError(
                self.describe(),
                f"cannot {action}: no AWS credentials found; set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run where an instance role applies",
            ) from None
        except (
            botocore.exceptions.EndpointConnectionError,
            botocore.exceptions.ConnectTimeoutError,
            botocore.exceptions.ReadTimeoutError,
            botocore.exceptions.ConnectionClosedError,
        ):
            raise StateStoreError(
                self.describe(),
                f"cannot {action}: the store cannot be reached; check state.endpoint_url and "
                "the network, then run again",
            ) from None
        except botocore.exceptions.ClientError as error:
            raise self._client_error(action, error) from None
        except botocore.exceptions.BotoCoreError as error:
            raise StateStoreError(
                self.describe(), f"cannot {action}: {type(error).__name__}"
            ) from None

    def _client_error(self, action: str, error: Any) -> StateStoreError:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in _CONFLICT:
            return ConflictError(
                self.describe(), f"cannot {action}: it was changed by another run ({code})"
            )
        if code in _MISSING:
            return _MissingError(self.describe(), f"cannot {action}: it is gone ({code})")
        if code == "NoSuchBucket":
            return StateStoreError(
                self.describe(),
                f"cannot {action}: bucket {self.bucket!r} does not exist; create it or fix "
                "state.bucket in promote.yaml",
            )
        if code in _DENIED:
            return StateStoreError(
                self.describe(),
                f"cannot {action}: access denied ({code}); check the AWS credentials in use "
                "and that the bucket policy allows s3:GetObject, s3:PutObject, "
                "s3:DeleteObject and s3:ListBucket on the prefix (docs/state.md)",
            )
        return StateStoreError(self.describe(), f"cannot {action}: {code or 'error'}")

    def _get(self, name: str, action: str) -> Versioned | None:
        def call() -> Versioned | None:
            try:
                found = self._client.get_object(Bucket=self.bucket, Key=self._key(name))
            except botocore.exceptions.ClientError as error:
                if str(error.response.get("Error", {}).get("Code", "")) in _MISSING:
                    return None
                raise
            return Versioned(found["Body"].read(), str(found["ETag"]))

        return self._call(action, call)

    def _put(self, name: str, data: bytes, action: str, **condition: str) -> str:
        def call() -> str:
            sent = self._client.put_object(
                Bucket=self.bucket, Key=self._key(name), Body=data, **condition
            )
            return str(sent["ETag"])

        return self._call(action, call)

    def _delete(self, name: str, action: str, **condition: str) -> None:
        self._call(
            action,
            lambda: self._client.delete_object(
                Bucket=self.bucket, Key=self._key(name), **condition
            ),
        )

    def _list(self, under: str, action: str) -> list[str]:
        """Names (without the prefix) of every object under ``under``, in key order."""

        def call() -> list[str]:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._key(under)
            )
            keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
            return sorted(key[len(self.prefix) :] for key in keys)

        return self._call(action, call)

    def check(self) -> None:
        """``HeadBucket``: the bucket exists and these credentials may use it."""

        def call() -> None:
            try:
                self._client.head_bucket(Bucket=self.bucket)
            except botocore.exceptions.ClientError as error:
                code = str(error.response.get("Error", {}).get("Code", ""))
                if code in ("404", "NoSuchBucket", "NotFound"):
                    error.response["Error"]["Code"] = "NoSuchBucket"
                raise

        self._call("open it", call)

    # -- the run lock -------------------------------------------------------------------

    def acquire_lock(self, lock: LockInfo, *, env: str) -> LockInfo:
        """``PutObject lock.json`` with ``If-None-Match: *``: one creator wins."""
        try:
            version = self._put("lock.json", lock.to_bytes(), "take the run lock", IfNoneMatch="*")
        except ConflictError:
            holder = self.read_lock()
            raise LockedError(
                env,
                f"another promote run ({holder.describe() if holder else 'holder unknown'})",
                f"the run lock in {self.describe()} is held; if that run is gone, remove it "
                f"with: promote state unlock {holder.id if holder else '<LOCK_ID>'}",
            ) from None
        return replace(lock, version=version)

    def release_lock(self, lock: LockInfo) -> None:
        """``DeleteObject lock.json`` with ``If-Match`` the ETag we created it with."""
        try:
            self._delete("lock.json", "release the run lock", IfMatch=lock.version)
        except (ConflictError, _MissingError):
            pass  # force-unlocked (and maybe taken by another run) since: not ours any more

    def read_lock(self) -> LockInfo | None:
        """The holder recorded in ``lock.json``."""
        found = self._get("lock.json", "read the run lock")
        if found is None:
            return None
        holder = LockInfo.from_bytes(found.data, found.version)
        return holder or LockInfo(
            "unknown", "unknown", 0, "unknown", "run", "unknown", found.version
        )

    def force_unlock(self, lock_id: str) -> LockInfo:
        """Delete ``lock.json`` if its id is ``lock_id`` (conditional on its ETag)."""
        holder = self.read_lock()
        if holder is None:
            raise BlockedError(f"no run lock is held in {self.describe()}; nothing to unlock")
        if holder.id != lock_id:
            raise BlockedError(
                f"the run lock in {self.describe()} has id {holder.id}, not {lock_id}: it is "
                f"held by {holder.describe()}; nothing was unlocked"
            )
        try:
            self._delete("lock.json", "remove the run lock", IfMatch=holder.version)
        except (ConflictError, _MissingError):
            raise BlockedError(
                f"the run lock in {self.describe()} changed while it was being removed; "
                "run 'promote state show' and try again"
            ) from None
        return holder

    # -- journals -------------------------------------------------------------------------

    def list_journals(self) -> list[str]:
        """Run ids under ``runs/``."""
        names = self._list("runs/", "list run journals")
        return [n[len("runs/") : -len(".json")] for n in names if n.endswith(".json")]

    def read_journal(self, run_id: str) -> Versioned | None:
        """``runs/<run_id>.json`` with its ETag."""
        return self._get(f"runs/{run_id}.json", f"read the journal of run {run_id}")

    def read_journal_end(self, run_id: str, size: int) -> bytes | None:
        """``runs/<run_id>.json`` from ``size`` bytes before its end (``Range: bytes=-size``)."""
        key = self._key(f"runs/{run_id}.json")

        def call() -> bytes | None:
            try:
                found = self._client.get_object(Bucket=self.bucket, Key=key, Range=f"bytes=-{size}")
            except botocore.exceptions.ClientError as error:
                code = str(error.response.get("Error", {}).get("Code", ""))
                if code in _MISSING:
                    return None
                if code == "InvalidRange":  # an empty object has no last bytes
                    return b""
                raise
            return bytes(found["Body"].read())

        return self._call(f"read the end of the journal of run {run_id}", call)

    def write_journal(self, run_id: str, data: bytes, *, expected: str | None) -> str:
        """``If-Match: expected`` (or ``If-None-Match: *`` for a new journal)."""
        condition = {"IfMatch": expected} if expected is not None else {"IfNoneMatch": "*"}
        return self._put(
            f"runs/{run_id}.json", data, f"write the journal of run {run_id}", **condition
        )

    def delete_journal(self, run_id: str) -> None:
        """``DeleteObject runs/<run_id>.json``."""
        self._delete(f"runs/{run_id}.json", f"delete the journal of run {run_id}")

    # -- history --------------------------------------------------------------------------

    def append_history(self, data: bytes, *, copied_at: int | None = None) -> None:
        """A new object ``history/<ns>-<digest>.json``, created with ``If-None-Match: *``
        (the same entry copied twice at the same time is one object)."""
        digest = hashlib.sha256(data.rstrip(b"\n")).hexdigest()[:32]
        at = copied_at if copied_at is not None else self._clock()
        try:
            self._put(
                f"history/{at:020d}-{digest}.json",
                data.rstrip(b"\n") + b"\n",
                "add a history entry",
                IfNoneMatch="*",
            )
        except ConflictError:
            pass  # the very same entry at the very same time: already added

    def read_history(self) -> list[HistoryEntry]:
        """Every ``history/`` object in key (time) order."""
        names = self._list("history/", "list the history")
        found = self._read_many(names, "read the history")
        return [
            HistoryEntry(f"s3://{self.bucket}/{self.prefix}{name}", data.rstrip(b"\n"))
            for name, data in zip(names, found, strict=True)
            if data is not None
        ]

    def _read_many(self, names: list[str], action: str) -> list[bytes | None]:
        def one(name: str) -> bytes | None:
            found = self._get(name, action)
            return None if found is None else found.data

        if len(names) < 2:
            return [one(name) for name in names]
        with ThreadPoolExecutor(max_workers=_READERS) as pool:
            return list(pool.map(one, names))

    # -- records and the key --------------------------------------------------------------

    def read_record(self, name: str) -> bytes | None:
        """``records/<name>``."""
        found = self._get(f"records/{name}", f"read the record {name}")
        return None if found is None else found.data

    def write_record(self, name: str, data: bytes) -> None:
        """``PutObject records/<name>`` (S3 replaces an object in one step)."""
        self._put(f"records/{name}", data, f"write the record {name}")

    def delete_record(self, name: str) -> None:
        """``DeleteObject records/<name>``."""
        self._delete(f"records/{name}", f"delete the record {name}")

    def list_records(self) -> list[str]:
        """Names under ``records/``."""
        return [n[len("records/") :] for n in self._list("records/", "list the records")]

    def fingerprint_key(
        self, *, create: bool = True, proposed: bytes | None = None
    ) -> bytes | None:
        """``fingerprint.key``; created with ``If-None-Match: *`` so that of two runners
        creating it at once, both end up with the one that was stored first."""
        found = self._get("fingerprint.key", "read the fingerprint key")
        if found is None and create:
            key = (proposed or secrets.token_bytes(KEY_BYTES)).hex().encode()
            try:
                self._put("fingerprint.key", key, "create the fingerprint key", IfNoneMatch="*")
                found = Versioned(key, "")
            except ConflictError:
                found = self._get("fingerprint.key", "read the fingerprint key")
        if found is None:
            return None
        try:
            return bytes.fromhex(found.data.decode().strip())
        except (UnicodeDecodeError, ValueError):
            raise StateStoreError(
                self.describe(),
                "fingerprint.key is not a fingerprint key (hex text); delete it (secrets are "
                "then rewritten once by the next run) or restore it",
            ) from None

    def close(self) -> None:
        """Close the client's connections."""
        close = getattr(self._client, "close", None)
        if close is not None:
            close()


def _client(endpoint_url: str | None, region: str | None) -> Any:
    """An S3 client from the standard AWS credential chain. Path-style addressing when an
    endpoint is given (MinIO, Ceph, moto need it); checksums only where S3 requires them (R2
    and older MinIO refuse the newer default); few retries, so an unreachable store fails in
    seconds, before any tenant is touched."""
    config = botocore.config.Config(
        connect_timeout=5,
        read_timeout=30,
        retries={"max_attempts": 3, "mode": "standard"},
        s3={"addressing_style": "path"} if endpoint_url else None,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    session = boto3.session.Session()
    return session.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)
