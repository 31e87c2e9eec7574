"""Journals, the workspace run lock, and atomic state files."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from promote.errors import LockedError
from promote.files import StateFileError, atomic_write, read_text
from promote.state.base import Versioned
from promote.state.journal import (
    Journal,
    prune_finished,
    run_in_progress,
    run_lock,
    unfinished_runs,
)
from promote.state.local import LocalStore


def test_run_lock_admits_one_holder(tmp_path: Path) -> None:
    with run_lock(LocalStore(tmp_path), env="staging"):
        with pytest.raises(LockedError) as caught, run_lock(LocalStore(tmp_path), env="staging"):
            pass
        assert caught.value.exit_code == 4
        assert "another promote run (pid" in str(caught.value)
    with run_lock(LocalStore(tmp_path), env="staging"):  # released
        assert run_in_progress(LocalStore(tmp_path))
    assert not run_in_progress(LocalStore(tmp_path))


def test_journal_records_steps_and_unfinished_runs_are_found(tmp_path: Path) -> None:
    journal = Journal.start(
        LocalStore(tmp_path), run_id="r1", to="staging", stages=["dev"], approved=[]
    )
    journal.step("dev", "esvs", ["esv-a"])
    assert [j.run_id for j in unfinished_runs(LocalStore(tmp_path))] == ["r1"]
    loaded = Journal.load(journal.store, journal.run_id)
    assert loaded is not None
    assert loaded.describe().endswith("stopped in dev at step esvs")
    journal.stage_done("dev")
    journal.finish("done")
    assert unfinished_runs(LocalStore(tmp_path)) == []


def test_finding_unfinished_runs_parses_only_the_journals_that_may_be(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    import promote.state.journal

    store = LocalStore(tmp_path)
    for run_id in ("r1", "r2", "r3"):
        journal = Journal.start(store, run_id=run_id, to="staging", stages=["dev"], approved=[])
        journal.stage_done("dev")  # a stage's own status: "done", indented deeper
        if run_id != "r2":
            journal.finish("done")
    compact = tmp_path / "runs" / "r4.json"  # not as promote writes it: parsed to tell
    data = json.loads((tmp_path / "runs" / "r2.json").read_text())
    compact.write_text(json.dumps({**data, "id": "r4"}, separators=(",", ":")))
    parsed: list[bytes] = []
    real = promote.state.journal.loads

    def counting(text: bytes) -> object:
        parsed.append(text)
        return real(text)

    monkeypatch.setattr(promote.state.journal, "loads", counting)
    assert [j.run_id for j in unfinished_runs(store)] == ["r2", "r4"]
    assert len(parsed) == 2
    parsed.clear()
    assert prune_finished(store, keep=1) == 1  # r1 went, r3 stays
    assert sorted(p.stem for p in (tmp_path / "runs").iterdir()) == ["r2", "r3", "r4"]
    assert len(parsed) == 3  # the finished ones, and the one written otherwise


def test_finding_unfinished_runs_reads_only_the_end_of_a_finished_journal(
    tmp_path: Path,
) -> None:
    read_whole: list[str] = []

    class Counting(LocalStore):
        def read_journal(self, run_id: str) -> Versioned | None:
            read_whole.append(run_id)
            return super().read_journal(run_id)

    store = Counting(tmp_path)
    for run_id in ("r1", "r2", "r3"):
        journal = Journal.start(store, run_id=run_id, to="staging", stages=["dev"], approved=[])
        journal.step("dev", "config", [f"obj/{n:06d}" for n in range(2000)])  # 50 KB
        if run_id != "r2":
            journal.finish("done")
    read_whole.clear()
    assert [j.run_id for j in unfinished_runs(store)] == ["r2"]
    assert read_whole == ["r2"]


def test_unreadable_journal_files_are_ignored(tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "x.json").write_text("{broken")
    assert unfinished_runs(LocalStore(tmp_path)) == []


def test_atomic_write_keeps_old_content_when_the_write_fails(tmp_path: Path) -> None:
    target = tmp_path / "f.json"
    atomic_write(target, b"old")
    assert target.stat().st_mode & 0o777 == 0o600
    with pytest.raises(StateFileError) as caught:
        atomic_write(target / "child", b"new")  # parent is a file
    assert "cannot write" in str(caught.value)
    assert read_text(target) == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_state_file_error_names_the_cause() -> None:
    error = StateFileError(
        Path("/x/.promote/runs/r.json"), OSError(errno.ENOSPC, "No space left on device")
    )
    assert str(error) == (
        "cannot write /x/.promote/runs/r.json: No space left on device; check that the "
        "directory is writable and the disk has free space"
    )


def test_prune_keeps_the_newest_finished_and_every_unfinished_journal(tmp_path: Path) -> None:
    for n in range(5):
        journal = Journal.start(
            LocalStore(tmp_path), run_id=f"r{n}", to="dev", stages=["dev"], approved=[]
        )
        if n != 1:
            journal.finish("done")
    assert prune_finished(LocalStore(tmp_path), keep=2) == 2
    assert sorted(p.stem for p in (tmp_path / "runs").iterdir()) == ["r1", "r3", "r4"]
