"""promote.files: the one atomic, durable writer."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from promote.files import SHARED, StateFileError, atomic_write, read_text


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_writes_creates_parents_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "state.json"
    atomic_write(target, b"one")
    atomic_write(target, b"two")
    assert target.read_bytes() == b"two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["state.json"]


def test_private_by_default_and_shared_follows_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "private", b"x")
        atomic_write(tmp_path / "shared", b"x", mode=SHARED)
        atomic_write(tmp_path / "d" / "f", b"x", dir_mode=0o700)
    finally:
        os.umask(old)
    assert _mode(tmp_path / "private") == 0o600
    assert _mode(tmp_path / "shared") == 0o644
    assert _mode(tmp_path / "d") == 0o700


def test_large_data_is_written_whole(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024)
    atomic_write(tmp_path / "big", data)
    assert (tmp_path / "big").read_bytes() == data


def test_failure_names_the_file_and_keeps_the_old_content(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    atomic_write(target, b"old")
    os.chmod(tmp_path, 0o500)
    try:
        if os.access(tmp_path, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        with pytest.raises(StateFileError) as caught:
            atomic_write(target, b"new")
    finally:
        os.chmod(tmp_path, 0o700)
    assert str(target) in str(caught.value)
    assert "Permission denied" in str(caught.value)
    assert caught.value.os_error.errno == caught.value.errno
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_a_failure_after_the_temp_file_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "dir-in-the-way"
    target.mkdir()
    (target / "child").write_text("keeps it non-empty")
    with pytest.raises(StateFileError) as caught:
        atomic_write(target, b"new")  # os.replace cannot put a file over a directory
    assert str(target) in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir-in-the-way"]


def test_parent_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(StateFileError, match="cannot write"):
        atomic_write(tmp_path / "file" / "child", b"new")


def test_read_text(tmp_path: Path) -> None:
    assert read_text(tmp_path / "absent") is None
    (tmp_path / "present").write_text("hello", encoding="utf-8")
    assert read_text(tmp_path / "present") == "hello"
    with pytest.raises(StateFileError, match="cannot read"):
        read_text(tmp_path)  # a directory
