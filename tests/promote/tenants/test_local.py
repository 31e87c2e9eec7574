"""The local tenant: the contract suite plus what only an SQLite file can get wrong."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from esv.errors import MISSING_ESV
from esv.secrets import SecretValue
from promote.errors import BlockedError, LockedError, PromoteError, TenantError
from promote.tenants.base import EsvWrite, LockState, Tenant
from promote.tenants.local import DB_NAME, LocalTenant
from tests.promote.tenants.contract import TenantContract

SECRET = "local-t3st-SECRET-value"


class TestLocalContract(TenantContract):
    def make_pair(self, tmp_path: Path) -> tuple[Tenant, Tenant]:
        return (
            LocalTenant("dev", tmp_path / "dev", mutable=True),
            LocalTenant("staging", tmp_path / "staging", mutable=False),
        )


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def dev(tmp_path: Path):
    tenant = LocalTenant("dev", tmp_path / "dev", mutable=True)
    tenant.put_config("seed", {})  # the state file exists from the first write on
    tenant.delete_config("seed")
    yield tenant
    tenant.close()


def created(env: str, state_dir: Path, *, mutable: bool = True) -> None:
    """Create ``env``'s state file in ``state_dir`` (a first write) and close it."""
    tenant = LocalTenant(env, state_dir, mutable=mutable)
    try:
        tenant.force_unlock()
    finally:
        tenant.close()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- the state file -------------------------------------------------------------------------


def test_state_file_and_wal_files_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        tenant = LocalTenant("dev", tmp_path / "dev", mutable=True)
        tenant.write_esvs([EsvWrite("esv-p", "secret", "add", SecretValue(SECRET))])
        tenant.put_config("external.email", {"host": "x"})
    finally:
        os.umask(old)
    db = tmp_path / "dev" / DB_NAME
    wal, shm = db.with_name(DB_NAME + "-wal"), db.with_name(DB_NAME + "-shm")
    assert tenant.path == db
    assert wal.exists() and shm.exists()
    assert {_mode(db), _mode(wal), _mode(shm)} == {0o600}
    assert _mode(tmp_path / "dev") == 0o700
    tenant.close()


def test_an_existing_state_file_with_open_mode_is_made_private(tmp_path: Path) -> None:
    created("dev", tmp_path)
    os.chmod(tmp_path / DB_NAME, 0o644)
    LocalTenant("dev", tmp_path, mutable=True).close()
    assert _mode(tmp_path / DB_NAME) == 0o600


def test_a_tenant_never_written_reads_as_empty_and_creates_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state" / "dev"
    tenant = LocalTenant("dev", state, mutable=True)
    assert tenant.list_config_ids() == set()
    assert tenant.read_config(["external.email"]) == {}
    assert tenant.list_variables() == {} and tenant.list_secrets() == {}
    assert tenant.secret_matches("esv-p", SecretValue(SECRET)) is False
    assert tenant.lock_state() == LockState(locked=False)
    assert tenant.restart_status() == "ready"
    assert tenant.reports() == []
    assert not (tmp_path / "state").exists()

    # another process writes first: the next read sees it
    other = LocalTenant("dev", state, mutable=True)
    other.put_config("external.email", {"host": "x"})
    other.close()
    assert tenant.read_config(["external.email"]) == {"external.email": {"host": "x"}}
    tenant.close()
    assert {_mode(state / DB_NAME), _mode(state)} == {0o600, 0o700}


def test_the_first_write_creates_the_state_file_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        tenant = LocalTenant("dev", tmp_path / "dev", mutable=True)
        assert not (tmp_path / "dev").exists()
        tenant.write_esvs([EsvWrite("esv-h", "variable", "add", "smtp")])
    finally:
        os.umask(old)
    assert tenant.list_variables()["esv-h"].value == "smtp"
    assert _mode(tenant.path) == 0o600 and _mode(tmp_path / "dev") == 0o700
    tenant.close()
    with pytest.raises(TenantError, match="the tenant is closed"):
        tenant.list_config_ids()


def test_state_dir_is_created_when_asked_for(tmp_path: Path) -> None:
    tenant = LocalTenant("dev", tmp_path / "dev", mutable=True)
    assert tenant.state_dir == tmp_path / "dev" and (tmp_path / "dev").is_dir()
    assert not tenant.path.exists()
    tenant.close()


def test_state_file_uses_wal(dev: LocalTenant) -> None:
    with sqlite3.connect(dev.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_state_survives_reopening(tmp_path: Path) -> None:
    clock = FakeClock()
    first = LocalTenant("dev", tmp_path, mutable=True, clock=clock)
    first.put_config("external.email", {"host": "&{esv.h}"})
    first.write_esvs([EsvWrite("esv-h", "variable", "add", "smtp")])
    first.close()
    again = LocalTenant("dev", tmp_path, mutable=True, clock=clock)
    assert again.read_config(["external.email"]) == {"external.email": {"host": "&{esv.h}"}}
    assert again.list_variables()["esv-h"].value == "smtp"
    again.close()


def test_state_of_another_environment_is_refused(tmp_path: Path) -> None:
    created("dev", tmp_path)
    with pytest.raises(TenantError) as caught:
        LocalTenant("staging", tmp_path, mutable=False)
    message = str(caught.value)
    assert "belongs to environment 'dev'" in message
    assert str(tmp_path / DB_NAME) in message
    assert "tenant.path" in message


def test_corrupt_state_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / DB_NAME).write_bytes(b"this is not a database, just text\n" * 200)
    with pytest.raises(TenantError) as caught:
        LocalTenant("dev", tmp_path, mutable=True)
    message = str(caught.value)
    assert message.startswith("dev: ")
    assert str(tmp_path / DB_NAME) in message
    assert "corrupt" in message
    assert "move it aside" in message
    assert caught.value.exit_code == 1


def test_a_foreign_sqlite_database_is_left_alone(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / DB_NAME) as conn:
        conn.execute("CREATE TABLE mine (x)")
    with pytest.raises(TenantError, match="not a promote state file"):
        LocalTenant("dev", tmp_path, mutable=True)
    with sqlite3.connect(tmp_path / DB_NAME) as conn:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master")]
    assert tables == ["mine"]


def test_state_dir_that_cannot_exist_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("a file, not a directory")
    tenant = LocalTenant("dev", tmp_path / "file" / "dev", mutable=True)
    assert tenant.list_config_ids() == set()  # reading creates nothing, so nothing fails
    with pytest.raises(TenantError) as caught:
        tenant.put_config("external.email", {"host": "x"})
    assert "cannot create the state file" in str(caught.value)
    assert "tenant.path" in str(caught.value)


def _unprivileged(action: Callable[[], str]) -> str:
    """Run ``action`` as an unprivileged user (forked + setuid when we are root)."""
    if os.geteuid() != 0:
        return action()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: drop root, run, report, exit without pytest's cleanup
        code = 0
        try:
            os.close(read)
            os.setgid(65534)
            os.setuid(65534)
            text = action()
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            text, code = f"unexpected {type(exc).__name__}: {exc}", 1
        os.write(write, text.encode())
        os._exit(code)
    os.close(write)
    deadline = time.monotonic() + 30
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0:
        if time.monotonic() > deadline:  # never hang the suite on a stuck child
            os.kill(pid, signal.SIGKILL)
            done = os.waitpid(pid, 0)
            break
        time.sleep(0.01)
    status = done[1]
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.close(read)
    text = b"".join(chunks).decode()
    assert os.waitstatus_to_exitcode(status) == 0, text
    return text


def _open_error(state_dir: Path) -> str:
    try:
        created("dev", state_dir)
    except TenantError as exc:
        return str(exc)
    return "no error"


@pytest.fixture
def shared_dir():
    """A directory an unprivileged user can reach (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="promote-local-"))
    os.chmod(path, 0o755)
    yield path
    for sub in path.rglob("*"):
        if sub.is_dir():
            os.chmod(sub, 0o700)
    shutil.rmtree(path)


def test_read_only_state_dir_is_a_clear_error(shared_dir: Path) -> None:
    empty = shared_dir / "empty"
    empty.mkdir(mode=0o555)
    message = _unprivileged(lambda: _open_error(empty))
    assert "cannot create the state file" in message
    assert str(empty / DB_NAME) in message


def test_state_made_read_only_after_creation_is_a_clear_error(shared_dir: Path) -> None:
    state = shared_dir / "dev"
    tenant = LocalTenant("dev", state, mutable=True)
    tenant.put_config("external.email", {"host": "x"})
    tenant.close()  # the last connection checkpoints and removes -wal/-shm
    os.chmod(state / DB_NAME, 0o644)  # readable, not writable, by others
    os.chmod(state, 0o555)

    def attempt() -> str:
        try:
            reopened = LocalTenant("dev", state, mutable=True)
        except TenantError as exc:
            return str(exc)
        try:
            reopened.put_config("external.email", {"host": "y"})
        except TenantError as exc:
            return str(exc)
        return "no error"

    try:
        message = _unprivileged(attempt)
    finally:
        os.chmod(state, 0o700)
    assert str(state / DB_NAME) in message
    assert "nothing was written" in message
    assert "readable and writable by you" in message
    with LocalTenantContext("dev", state) as again:
        assert again.read_config(["external.email"]) == {"external.email": {"host": "x"}}


def test_unreadable_state_file_is_a_clear_error(shared_dir: Path) -> None:
    os.chmod(shared_dir, 0o777)
    created("dev", shared_dir)
    os.chmod(shared_dir / DB_NAME, 0)
    message = _unprivileged(lambda: _open_error(shared_dir))
    assert "cannot open the state file" in message
    assert "readable and writable by you" in message


class LocalTenantContext:
    def __init__(self, env: str, state_dir: Path) -> None:
        self.tenant = LocalTenant(env, state_dir, mutable=True)

    def __enter__(self) -> LocalTenant:
        return self.tenant

    def __exit__(self, *exc: object) -> None:
        self.tenant.close()


def test_full_disk_is_a_clear_error_and_writes_nothing(dev: LocalTenant) -> None:
    dev.write_esvs([EsvWrite("esv-a", "variable", "add", "1")])
    conn = dev._db  # fault injection: cap the database at its current size
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")
    big = [EsvWrite(f"esv-big-{n}", "variable", "add", "x" * 5000) for n in range(20)]
    with pytest.raises(TenantError) as caught:
        dev.write_esvs([EsvWrite("esv-p", "secret", "add", SecretValue(SECRET)), *big])
    message = str(caught.value)
    assert "disk is full" in message and "nothing was written" in message
    assert SECRET not in message
    assert set(dev.list_variables()) == {"esv-a"}
    assert dev.list_secrets() == {}


def test_closed_tenant_says_so(tmp_path: Path) -> None:
    tenant = LocalTenant("dev", tmp_path, mutable=True)
    tenant.close()
    tenant.close()
    with pytest.raises(TenantError, match="closed"):
        tenant.list_config_ids()


# -- concurrency ----------------------------------------------------------------------------


def test_two_threads_compete_for_the_lock(tmp_path: Path) -> None:
    created("staging", tmp_path, mutable=False)
    barrier = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def contend(holder: str) -> None:
        tenant = LocalTenant("staging", tmp_path, mutable=False)
        try:
            barrier.wait()
            outcomes[holder] = tenant.lock(holder)
        except LockedError as exc:
            outcomes[holder] = exc
        finally:
            tenant.close()

    threads = [threading.Thread(target=contend, args=(h,)) for h in ("run-a", "run-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [h for h, o in outcomes.items() if isinstance(o, str)]
    losers = [o for o in outcomes.values() if isinstance(o, LockedError)]
    assert len(winners) == 1 and len(losers) == 1
    assert losers[0].holder == winners[0]
    assert losers[0].exit_code == 4


def test_a_lock_held_by_another_process_is_not_broken(tmp_path: Path) -> None:
    created("staging", tmp_path, mutable=False)
    script = (
        "import sys; from pathlib import Path; from promote.tenants.local import LocalTenant;"
        "t = LocalTenant('staging', Path(sys.argv[1]), mutable=False);"
        "print(t.lock('other-run')); t.close()"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, check=True
    )
    promotion_id = done.stdout.strip()
    tenant = LocalTenant("staging", tmp_path, mutable=False)
    # the process is gone; its lock stays until someone decides to break it
    assert tenant.lock_state().holder == "other-run"
    with pytest.raises(LockedError) as caught:
        tenant.lock("this-run")
    assert "other-run" in str(caught.value) and "force unlock" in str(caught.value)
    with pytest.raises(LockedError):
        tenant.unlock("this-run")
    assert tenant.force_unlock().holder == "other-run"
    assert tenant.lock("this-run") != promotion_id
    tenant.close()


def test_writers_wait_for_each_other_instead_of_failing(dev: LocalTenant) -> None:
    blocker = sqlite3.connect(dev.path, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.3, lambda: blocker.execute("COMMIT"))
    release.start()
    try:
        dev.put_config("external.email", {"host": "x"})  # waits ~0.3 s for the writer
    finally:
        release.join()
        blocker.close()
    assert dev.read_config(["external.email"]) == {"external.email": {"host": "x"}}


def test_a_writer_that_never_finishes_gives_a_clear_error(tmp_path: Path) -> None:
    tenant = LocalTenant("dev", tmp_path, mutable=True, busy_timeout=0.2)
    blocker = sqlite3.connect(tenant.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(TenantError) as caught:
            tenant.put_config("external.email", {"host": "x"})
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert "busy" in str(caught.value) and "nothing was written" in str(caught.value)
    tenant.close()


# -- restart --------------------------------------------------------------------------------


def test_restart_takes_its_time_and_loads_when_it_completes(tmp_path: Path) -> None:
    clock = FakeClock()
    tenant = LocalTenant("dev", tmp_path, mutable=True, restart_seconds=30, clock=clock)
    tenant.write_esvs(
        [
            EsvWrite("esv-v", "variable", "add", "1"),
            EsvWrite("esv-s", "secret", "add", SecretValue(SECRET)),
        ]
    )
    assert tenant.restart_status() == "ready"
    tenant.restart()
    clock.now += 29
    assert tenant.restart_status() == "restarting"
    assert tenant.list_variables()["esv-v"].loaded is False
    assert tenant.list_secrets()["esv-s"].loaded is False
    with pytest.raises(TenantError, match="restart is still loading"):
        tenant.write_esvs([EsvWrite("esv-v", "variable", "modify", "2")])
    clock.now += 1
    assert tenant.restart_status() == "ready"
    assert tenant.list_variables()["esv-v"].loaded is True
    assert tenant.list_secrets()["esv-s"].loaded is True
    tenant.write_esvs([EsvWrite("esv-v", "variable", "modify", "2")])
    assert tenant.list_variables()["esv-v"].loaded is False
    tenant.close()


def test_a_restart_due_while_writing_completes_before_the_write(tmp_path: Path) -> None:
    clock = FakeClock()
    tenant = LocalTenant("dev", tmp_path, mutable=True, restart_seconds=5, clock=clock)
    tenant.write_esvs([EsvWrite("esv-v", "variable", "add", "1")])
    tenant.restart()
    clock.now += 5
    tenant.write_esvs([EsvWrite("esv-w", "variable", "add", "1")])
    variables = tenant.list_variables()
    assert (variables["esv-v"].loaded, variables["esv-w"].loaded) == (True, False)
    tenant.close()


def test_timestamps_come_from_the_clock(tmp_path: Path) -> None:
    clock = FakeClock(0.0)
    upper = LocalTenant("staging", tmp_path / "s", mutable=False, clock=clock)
    lower = LocalTenant("dev", tmp_path / "d", mutable=True, clock=clock)
    report = upper.promote_from(lower, holder="h", description="empty")
    assert report.created == "1970-01-01T00:00:00.000Z"
    upper.close()
    lower.close()


# -- ESV writes -----------------------------------------------------------------------------


def test_a_variable_and_a_secret_cannot_share_an_id(dev: LocalTenant) -> None:
    dev.write_esvs([EsvWrite("esv-x", "variable", "add", "1")])
    with pytest.raises(TenantError) as caught:
        dev.write_esvs(
            [
                EsvWrite("esv-y", "variable", "add", "2"),
                EsvWrite("esv-x", "secret", "add", SecretValue(SECRET)),
            ]
        )
    assert "esv-x" in str(caught.value) and SECRET not in str(caught.value)
    assert set(dev.list_variables()) == {"esv-x"}
    assert dev.list_secrets() == {}


def test_invalid_writes_are_all_listed(dev: LocalTenant) -> None:
    with pytest.raises(TenantError) as caught:
        dev.write_esvs(
            [
                EsvWrite("esv-a", "variable", "add", None),
                EsvWrite("ESV-B", "variable", "add", "1"),
                EsvWrite("esv-c", "variable", "add", SecretValue(SECRET)),
                EsvWrite("esv-d", "secret", "add", SecretValue(SECRET)),
                EsvWrite("esv-d", "variable", "add", "1"),
                EsvWrite("esv-e", "variable", "add", "1", type="integer"),
            ]
        )
    message = str(caught.value)
    assert message.startswith("dev: 5 invalid ESV write(s); nothing was written")
    assert "'integer' is not an expressionType" in message
    for esv_id in ("esv-a", "ESV-B", "esv-c", "esv-d", "esv-e"):
        assert esv_id in message
    assert SECRET not in message


def test_one_batch_can_turn_a_variable_into_a_secret(dev: LocalTenant) -> None:
    dev.write_esvs([EsvWrite("esv-x", "variable", "add", "1")])
    dev.write_esvs(
        [
            EsvWrite("esv-x", "secret", "add", SecretValue(SECRET)),
            EsvWrite("esv-x", "variable", "delete"),
        ]
    )
    assert "esv-x" not in dev.list_variables()
    assert dev.list_secrets()["esv-x"].version == 1


def test_deleting_an_absent_esv_is_a_no_op(dev: LocalTenant) -> None:
    dev.write_esvs([EsvWrite("esv-a", "variable", "delete"), EsvWrite("esv-b", "secret", "delete")])
    assert dev.list_variables() == {} and dev.list_secrets() == {}


def test_a_deleted_secret_starts_again_at_version_one(dev: LocalTenant) -> None:
    dev.write_esvs([EsvWrite("esv-s", "secret", "add", SecretValue("one"))])
    dev.write_esvs([EsvWrite("esv-s", "secret", "modify", SecretValue("two"))])
    assert dev.list_secrets()["esv-s"].version == 2
    dev.write_esvs([EsvWrite("esv-s", "secret", "delete")])
    dev.write_esvs([EsvWrite("esv-s", "secret", "add", SecretValue("two"))])
    assert dev.list_secrets()["esv-s"].version == 1


def test_secret_is_loaded_only_at_its_active_version(dev: LocalTenant) -> None:
    dev.write_esvs([EsvWrite("esv-s", "secret", "add", SecretValue("one"))])
    dev.restart()
    assert dev.restart_status() == "ready"
    dev.write_esvs([EsvWrite("esv-s", "secret", "modify", SecretValue("one"))])
    assert dev.list_secrets()["esv-s"].loaded is True  # same value: nothing pending
    dev.write_esvs([EsvWrite("esv-s", "secret", "modify", SecretValue("two"))])
    assert dev.list_secrets()["esv-s"].loaded is False


def test_one_esv_reads_as_its_entry_in_the_listing(dev: LocalTenant) -> None:
    dev.write_esvs(
        [
            EsvWrite("esv-v", "variable", "add", "8080", type="number"),
            EsvWrite("esv-w", "variable", "add", "x"),
            EsvWrite("esv-s", "secret", "add", SecretValue("one")),
            EsvWrite("esv-t", "secret", "add", SecretValue("two")),
        ]
    )
    dev.restart()
    dev.write_esvs([EsvWrite("esv-s", "secret", "modify", SecretValue("three"))])
    variables, secrets = dev.list_variables(), dev.list_secrets()
    assert {i: dev.variable(i) for i in variables} == variables
    assert {i: dev.secret(i) for i in secrets} == secrets
    assert dev.variable("esv-v") == variables["esv-v"] and variables["esv-v"].type == "number"
    assert dev.secret("esv-s") == secrets["esv-s"] and secrets["esv-s"].version == 2
    assert dev.secret("esv-t") == secrets["esv-t"] and secrets["esv-t"].loaded
    # Absent, or of the other kind: none.
    assert dev.variable("esv-s") is None and dev.secret("esv-v") is None
    assert dev.variable("esv-nope") is None and dev.secret("esv-nope") is None


def test_secret_values_never_reach_errors_or_reprs(tmp_path: Path) -> None:
    seen: list[str] = []
    tenant = LocalTenant("dev", tmp_path, mutable=True)
    write = EsvWrite("esv-s", "secret", "add", SecretValue(SECRET))
    tenant.write_esvs([write])
    seen += [repr(write), repr(tenant), repr(tenant.list_secrets()), repr(tenant.reports())]
    failures: list[Callable[[], object]] = [
        lambda: tenant.write_esvs([EsvWrite("esv-s", "variable", "add", SECRET)]),
        lambda: tenant.write_esvs([write, EsvWrite("bad", "variable", "add", "x")]),
        lambda: tenant.put_config("x", {"v": SecretValue(SECRET)}),
    ]
    for failure in failures:
        with pytest.raises(PromoteError) as caught:
            failure()
        seen += [str(caught.value), repr(caught.value)]
    tenant.close()
    with pytest.raises(TenantError) as closed:
        tenant.secret_matches("esv-s", SecretValue(SECRET))
    seen.append(str(closed.value))
    assert all(SECRET not in text for text in seen)
    others = [p for p in tmp_path.rglob("*") if not p.name.startswith(DB_NAME)]
    assert others == []


# -- promotion ------------------------------------------------------------------------------


@pytest.fixture
def chain(tmp_path: Path):
    dev = LocalTenant("dev", tmp_path / "dev", mutable=True)
    staging = LocalTenant("staging", tmp_path / "staging", mutable=False)
    yield dev, staging
    dev.close()
    staging.close()


def test_promotion_under_a_lock_the_holder_already_has_keeps_it(chain) -> None:
    dev, staging = chain
    dev.put_config("a", {"x": 1})
    promotion_id = staging.lock("run-1")
    report = staging.promote_from(dev, holder="run-1", description="inside a run")
    assert report.extra["promotion_id"] == promotion_id
    assert staging.lock_state().holder == "run-1"
    staging.unlock("run-1")
    assert staging.lock_state().locked is False


def test_promotion_reports_keep_description_and_holder(chain) -> None:
    dev, staging = chain
    dev.put_config("a", {"x": 1})
    staging.promote_from(dev, holder="ci-42", description="release 7")
    (report,) = staging.reports()
    assert report.extra["description"] == "release 7"
    assert report.extra["holder"] == "ci-42"
    assert report.source == "dev" and report.env == "staging"


def test_reformatted_but_equal_json_is_not_modified(chain) -> None:
    dev, staging = chain
    dev.put_config("a", {"x": 1, "y": [1, 2]})
    staging.promote_from(dev, holder="h", description="")
    dev.put_config("a", {"y": [1, 2], "x": 1})
    report = staging.promote_from(dev, holder="h", description="")
    assert report.modified == ()
    dev.put_config("a", {"y": [1, 2], "x": True})
    assert staging.promote_from(dev, holder="h", description="").modified == ("a",)


def test_rollbacks_step_back_one_promotion_at_a_time(chain) -> None:
    dev, staging = chain
    states = []
    for n in range(3):
        dev.put_config("a", {"n": n})
        staging.promote_from(dev, holder="h", description=f"p{n}")
        states.append(staging.read_config(["a"]))
    staging.rollback(holder="h")
    assert staging.read_config(["a"]) == states[1]
    staging.rollback(holder="h")
    assert staging.read_config(["a"]) == states[0]
    staging.rollback(holder="h")
    assert staging.read_config(["a"]) == {}
    with pytest.raises(BlockedError, match="nothing to roll back"):
        staging.rollback(holder="h")
    types = [r.type for r in staging.reports()]
    assert types == ["promotion"] * 3 + ["rollback"] * 3


def test_rollback_is_refused_while_another_holder_has_the_lock(chain) -> None:
    dev, staging = chain
    dev.put_config("a", {"n": 1})
    staging.promote_from(dev, holder="h", description="")
    staging.lock("other")
    with pytest.raises(LockedError):
        staging.rollback(holder="h")
    assert staging.read_config(["a"]) == {"a": {"n": 1}}


def test_missing_esvs_carry_their_code(chain) -> None:
    dev, staging = chain
    dev.put_config("a", {"host": "&{esv.host}", "port": "&{esv.port|25}"})
    with pytest.raises(BlockedError) as caught:
        staging.promote_from(dev, holder="h", description="")
    assert [(p.esv_id, p.code) for p in caught.value.problems] == [("esv-host", MISSING_ESV)]


def test_cannot_promote_from_itself(chain) -> None:
    _, staging = chain
    with pytest.raises(BlockedError, match="from itself"):
        staging.promote_from(staging, holder="h", description="")


def test_a_failed_lower_read_leaves_the_lock_free(chain) -> None:
    dev, staging = chain
    dev.close()
    with pytest.raises(TenantError):
        staging.promote_from(dev, holder="h", description="")
    assert staging.lock_state().locked is False


def test_promotion_of_many_objects(chain) -> None:
    dev, staging = chain
    with dev._write("seed") as conn:  # bulk seed in one transaction for speed
        conn.executemany(
            "INSERT INTO config (id, json) VALUES (?, ?)",
            [(f"obj/{n}", f'{{"n": {n}}}') for n in range(3000)],
        )
    report = staging.promote_from(dev, holder="h", description="")
    assert len(report.added) == 3000
    assert len(staging.read_config([f"obj/{n}" for n in range(3000)])) == 3000


# -- config digests ------------------------------------------------------------------------


def test_a_hand_edit_of_an_object_clears_its_kept_digest(dev: LocalTenant) -> None:
    from esv.objects import content_digest

    dev.put_config("a", {"n": 1})
    dev.put_config("b", {"n": 2})
    with sqlite3.connect(dev.path) as conn:  # what editing the file by hand does
        conn.execute("UPDATE config SET json = '{\"n\": 9}' WHERE id = 'a'")
        conn.execute("INSERT INTO config (id, json) VALUES ('c', '{\"n\": 3}')")
        kept = dict(conn.execute("SELECT id, digest FROM config"))
    assert kept["a"] is None and kept["c"] is None
    assert kept["b"] == content_digest({"n": 2})
    assert dev.config_digests() == {
        "a": content_digest({"n": 9}),
        "b": content_digest({"n": 2}),
        "c": content_digest({"n": 3}),
    }


def test_kept_digests_follow_every_change_of_the_file(dev: LocalTenant) -> None:
    from esv.objects import content_digest

    dev.put_config("a", {"n": 1})
    dev.put_config("b", {"n": 2})
    assert dev.config_digests() == {"a": content_digest({"n": 1}), "b": content_digest({"n": 2})}
    kept = dev.path.with_name(DB_NAME + "-digests")
    assert kept.is_file() and stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert dev.config_digests() == {"a": content_digest({"n": 1}), "b": content_digest({"n": 2})}
    with sqlite3.connect(dev.path) as conn:  # what editing the file by hand does
        conn.execute("UPDATE config SET json = '{\"n\": 9}', digest = 'forged' WHERE id = 'a'")
        conn.execute("DELETE FROM config WHERE id = 'b'")
    assert dev.config_digests() == {"a": "forged"}  # a new token: read from the file again
    dev.put_config("c", {"n": 3})
    assert dev.config_digests() == {"a": "forged", "c": content_digest({"n": 3})}
    kept.write_bytes(b"not what promote writes")
    assert dev.config_digests() == {"a": "forged", "c": content_digest({"n": 3})}


def test_kept_digests_come_with_their_digest_of_all(dev: LocalTenant) -> None:
    import marshal

    from esv.objects import DigestMap, digest_of_set

    dev.put_config("a", {"n": 1})
    dev.put_config("b", {"n": 2})
    for _ in range(2):  # read from the file, then kept
        found = dev.config_digests()
        assert isinstance(found, DigestMap)
        assert found.set_digest == digest_of_set(dict(found))
    kept = dev.path.with_name(DB_NAME + "-digests")
    fmt, token, digests, _ = marshal.loads(kept.read_bytes())
    kept.write_bytes(marshal.dumps((fmt, token, digests)))  # as the format before kept it
    found = dev.config_digests()
    assert isinstance(found, DigestMap) and found.set_digest == digest_of_set(dict(found))
    assert len(marshal.loads(kept.read_bytes())) == 4  # written again, whole


def test_a_state_file_without_the_config_token_gains_it_when_opened(tmp_path: Path) -> None:
    from esv.objects import content_digest

    created("dev", tmp_path)
    with sqlite3.connect(tmp_path / DB_NAME) as conn:  # as promote made schema 2 before
        for event in ("insert", "update", "delete"):
            conn.execute(f"DROP TRIGGER config_token_{event}")
        conn.execute("DELETE FROM meta WHERE key = 'config_token'")
        conn.execute("INSERT INTO config (id, json, digest) VALUES ('a', '{}', ?)", ("d",))
    tenant = LocalTenant("dev", tmp_path, mutable=True)
    try:
        assert tenant.config_digests() == {"a": "d"}
        tenant.put_config("a", {"n": 1})
        assert tenant.config_digests() == {"a": content_digest({"n": 1})}
        with sqlite3.connect(tmp_path / DB_NAME) as conn:
            triggers = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
            assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
        assert {"config_token_insert", "config_token_update", "config_token_delete"} <= triggers
    finally:
        tenant.close()


def test_a_state_file_of_schema_1_gains_digests_when_opened(tmp_path: Path) -> None:
    from esv.objects import content_digest

    created("dev", tmp_path)
    with sqlite3.connect(tmp_path / DB_NAME) as conn:  # as promote 0.1 wrote it
        conn.execute("DROP TRIGGER config_digest_stale")
        conn.execute("ALTER TABLE config DROP COLUMN digest")
        conn.execute("INSERT INTO config (id, json) VALUES ('a', '{\"n\": 1, \"m\": [true]}')")
        conn.execute("PRAGMA user_version = 1")
    tenant = LocalTenant("dev", tmp_path, mutable=True)
    try:
        assert tenant.read_config(["a"]) == {"a": {"n": 1, "m": [True]}}
        with sqlite3.connect(tmp_path / DB_NAME) as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
            assert conn.execute("SELECT digest FROM config WHERE id = 'a'").fetchone()[0] == (
                content_digest({"m": [True], "n": 1})
            )
        tenant.put_config("a", {"n": 2})
        assert tenant.config_digests() == {"a": content_digest({"n": 2})}
    finally:
        tenant.close()


def test_reading_digests_of_a_tenant_never_written_creates_nothing(tmp_path: Path) -> None:
    tenant = LocalTenant("dev", tmp_path / "dev", mutable=True)
    assert tenant.config_digests() == {}
    assert not (tmp_path / "dev").exists()
    tenant.close()
