"""One contract for every state store: the local backend and S3 (moto's real S3 API)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from promote.errors import BlockedError, LockedError
from promote.state.base import ConflictError, StateStore, new_lock
from promote.state.history import HistoryRecord, append_history, read_history
from promote.state.journal import Journal, prune_finished, run_lock, unfinished_runs
from promote.state.local import LocalStore
from tests.helpers.s3 import S3Server


@pytest.fixture(params=["local", "s3"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    """A factory of stores that share one place (two handles = two machines)."""
    if request.param == "local":
        yield lambda: LocalStore(tmp_path / ".promote")
        return
    server: S3Server = request.getfixturevalue("s3_server")
    bucket = server.new_bucket()
    from promote.state.s3 import S3Store

    yield lambda: S3Store(bucket, prefix="chain-a/", client=server.client())


def _record(run_id: str, env: str = "dev", time: str = "2026-01-02T03:04:05+00:00"):
    return HistoryRecord(time=time, run_id=run_id, env=env, action="promote", source="config")


def test_the_store_follows_the_protocol(make_store) -> None:
    store = make_store()
    assert isinstance(store, StateStore)
    store.check()


def test_one_holder_at_a_time_and_the_second_is_named(make_store) -> None:
    first, second = make_store(), make_store()
    with run_lock(first, env="staging", run_id="r-1", run="run to staging") as held:
        with pytest.raises(LockedError) as caught, run_lock(second, env="staging", run_id="r-2"):
            pass
        assert caught.value.exit_code == 4
        assert "r-1" in str(caught.value) and "run to staging" in str(caught.value)
        holder = second.read_lock()
        assert holder is not None and holder.id == held.id and holder.run_id == "r-1"
    assert second.read_lock() is None
    with run_lock(second, env="staging", run_id="r-3"):
        pass


def test_concurrent_acquires_have_exactly_one_winner(make_store) -> None:
    stores = [make_store() for _ in range(6)]
    barrier = threading.Barrier(len(stores))
    outcomes: list[str] = []

    def take(store: StateStore, n: int) -> None:
        barrier.wait()
        try:
            store.acquire_lock(new_lock(f"r{n}", "run", "now"), env="dev")
            outcomes.append("won")
        except LockedError:
            outcomes.append("locked")

    threads = [threading.Thread(target=take, args=(s, n)) for n, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["locked"] * 5 + ["won"]


def test_journal_compare_and_swap(make_store) -> None:
    mine, theirs = make_store(), make_store()
    journal = Journal.start(mine, run_id="r1", to="staging", stages=["dev"], approved=[])
    journal.step("dev", "esvs", ["esv-a"])
    stale = Journal.load(theirs, "r1")
    assert stale is not None and stale.describe().endswith("stopped in dev at step esvs")
    journal.stage_done("dev")  # moves the version on
    with pytest.raises(ConflictError):
        stale.finish("done")
    with pytest.raises(ConflictError):  # a new journal never replaces an existing one
        theirs.write_journal("r1", b"{}", expected=None)
    assert [j.run_id for j in unfinished_runs(theirs)] == ["r1"]
    journal.finish("done")
    assert unfinished_runs(theirs) == []


def test_the_end_of_a_journal_is_read_alone(make_store) -> None:
    store = make_store()
    assert store.read_journal_end("nope", 4) is None
    store.write_journal("r1", b"0123456789", expected=None)
    assert store.read_journal_end("r1", 4) == b"6789"
    assert store.read_journal_end("r1", 100) == b"0123456789"


def test_prune_keeps_unfinished_journals(make_store) -> None:
    store = make_store()
    for n in range(5):
        journal = Journal.start(store, run_id=f"r{n}", to="dev", stages=["dev"], approved=[])
        if n != 1:
            journal.finish("done")
    assert prune_finished(store, keep=2) == 2
    assert store.list_journals() == ["r1", "r3", "r4"]


def test_history_is_appended_in_order_and_read_by_another_handle(make_store) -> None:
    writer, reader = make_store(), make_store()
    assert read_history(reader) == []
    for n in range(5):
        append_history(writer, _record(f"r{n}", env="dev" if n % 2 else "staging"))
    assert [r.run_id for r in read_history(reader)] == ["r0", "r1", "r2", "r3", "r4"]
    assert [r.run_id for r in read_history(reader, env="dev")] == ["r1", "r3"]


def test_records_round_trip(make_store) -> None:
    store, other = make_store(), make_store()
    assert store.read_record("applied/dev.json") is None
    store.write_record("applied/dev.json", b'{"a": 1}\n')
    store.write_record("applied/dev.json", b'{"a": 2}\n')
    store.write_record("tenants/prod/okta.json", b"{}\n")
    assert other.read_record("applied/dev.json") == b'{"a": 2}\n'
    assert other.list_records() == ["applied/dev.json", "tenants/prod/okta.json"]
    other.delete_record("applied/dev.json")
    other.delete_record("applied/dev.json")  # absent: no-op
    assert store.read_record("applied/dev.json") is None


def test_fingerprint_key_is_created_once_and_shared(make_store) -> None:
    first, second = make_store(), make_store()
    assert first.fingerprint_key(create=False) is None
    keys: list[bytes | None] = []
    barrier = threading.Barrier(4)

    def create(store: StateStore) -> None:
        barrier.wait()
        keys.append(store.fingerprint_key())

    threads = [threading.Thread(target=create, args=(s,)) for s in (first, second) * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(keys)) == 1 and keys[0] is not None and len(keys[0]) == 32
    assert second.fingerprint_key(proposed=b"x" * 32) == keys[0]


def test_force_unlock_needs_the_exact_id(make_store) -> None:
    store = make_store()
    with pytest.raises(BlockedError, match="nothing to unlock"):
        store.force_unlock("nope")


def test_local_lock_file_keeps_the_holder_while_held(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    with run_lock(store, env="dev", run_id="r9", run="run to dev"):
        data = json.loads((tmp_path / "run.lock").read_text())
        assert data["run_id"] == "r9" and data["format"] == "promote.lock/1"
        with pytest.raises(BlockedError, match="held by a live process"):
            LocalStore(tmp_path).force_unlock(data["id"])
    assert (tmp_path / "run.lock").read_text() == ""
