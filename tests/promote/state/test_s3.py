"""The S3 backend's own behaviour: a dead holder's lock, errors for people, prefixes."""

from __future__ import annotations

import pytest

from promote.errors import BlockedError, LockedError
from promote.state.base import StateStoreError, new_lock
from promote.state.s3 import S3Store
from tests.helpers.s3 import ACCESS_KEY, SECRET_KEY, S3Server, moto_process


def test_a_dead_holders_lock_stays_until_unlocked_by_its_exact_id(s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket()
    dead = S3Store(bucket, client=s3_server.client())
    held = dead.acquire_lock(
        new_lock("r-dead", "run to prod", "2026-01-01T00:00:00+00:00"), env="prod"
    )
    other = S3Store(bucket, client=s3_server.client())
    with pytest.raises(LockedError, match=f"promote state unlock {held.id}"):
        other.acquire_lock(new_lock("r-2", "run to prod", "now"), env="prod")
    with pytest.raises(BlockedError, match=f"has id {held.id}, not wrong"):
        other.force_unlock("wrong")
    assert other.force_unlock(held.id).run_id == "r-dead"
    assert other.read_lock() is None
    dead.release_lock(held)  # the dead run coming back does not remove anyone else's lock
    taken = other.acquire_lock(new_lock("r-3", "run", "now"), env="prod")
    dead.release_lock(held)
    assert other.read_lock() is not None and other.read_lock().id == taken.id  # type: ignore[union-attr]


def test_prefixes_keep_chains_apart(s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket()
    a = S3Store(bucket, prefix="email/", client=s3_server.client())
    b = S3Store(bucket, prefix="branding/", client=s3_server.client())
    a.acquire_lock(new_lock("r1", "run", "now"), env="dev")
    b.acquire_lock(new_lock("r2", "run", "now"), env="dev")  # another chain: not blocked
    keys = [o["Key"] for o in s3_server.client().list_objects_v2(Bucket=bucket)["Contents"]]
    assert sorted(keys) == ["branding/lock.json", "email/lock.json"]


def test_missing_bucket_is_named(s3_server: S3Server) -> None:
    store = S3Store("no-such-bucket-here", client=s3_server.client())
    with pytest.raises(StateStoreError, match="bucket 'no-such-bucket-here' does not exist"):
        store.check()


def test_unreachable_store_fails_fast_with_a_clear_message(monkeypatch) -> None:
    with moto_process() as server:
        endpoint = server.endpoint
    for key, value in S3Server(endpoint).environ().items():
        monkeypatch.setenv(key, value)
    store = S3Store("bucket", endpoint_url=endpoint)
    with pytest.raises(StateStoreError, match="cannot be reached") as caught:
        store.check()
    assert caught.value.exit_code == 1


def test_refused_credentials_are_named_without_the_credentials(monkeypatch) -> None:
    with moto_process(auth=True) as server:
        for key, value in server.environ().items():
            monkeypatch.setenv(key, value)
        store = S3Store("bucket", endpoint_url=server.endpoint)
        with pytest.raises(StateStoreError, match="access denied") as caught:
            store.read_lock()
    assert ACCESS_KEY not in str(caught.value) and SECRET_KEY not in str(caught.value)
