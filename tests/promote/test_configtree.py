"""Reading config/ with the cache of digests: a file unchanged since it was read is not read
again; any change, a fresh write, or a cache that cannot be trusted means it is read."""

from __future__ import annotations

import json
import os
from array import array
from pathlib import Path
from typing import Any

import pytest

from esv.errors import WorkspaceFileError
from esv.objects import content_digest, digest_of_set
from esv.references import summarise
from promote.configtree import cache_path, read_config_tree
from promote.workspace import load_workspace
from tests.promote.engine.workspaces import write_workspace

OBJECTS: dict[str, Any] = {
    "external.email": {"host": "&{esv.email.provider.host}", "port": {"$int": "&{esv.p|25}"}},
    "emailTemplate/welcome": {"subject": {"en": "Hi &{esv.brand|Acme}"}},
    "obj/a": {"n": 1},
}


def workspace(tmp_path: Path) -> Path:
    return write_workspace(tmp_path / "ws", config=OBJECTS)


def remembered(root: Path) -> None:
    """Load the config, learn every digest and summary, and write the cache (what a plan does)."""
    tree = read_config_tree(root, [])
    for key in tree:
        tree.digest(key)
        tree.summary(key)
    tree.remember()


def test_an_unchanged_file_is_not_read_again(
    tmp_path: Path, trusted_config_files: None, config_reads: list[str]
) -> None:
    root = workspace(tmp_path)
    remembered(root)
    assert len(config_reads) == 3
    config_reads.clear()
    tree = read_config_tree(root, [])
    assert config_reads == []
    assert list(tree) == ["emailTemplate/welcome", "external.email", "obj/a"]
    assert tree.digest("obj/a") == content_digest({"n": 1})
    assert tree.summary("external.email") == summarise(OBJECTS["external.email"])
    assert config_reads == []
    assert tree["obj/a"] == {"n": 1}  # read when asked for, checked unchanged
    assert config_reads == ["config/obj/a.json"]


def test_a_changed_file_is_read_again_even_with_the_same_size(
    tmp_path: Path, trusted_config_files: None, config_reads: list[str]
) -> None:
    root = workspace(tmp_path)
    remembered(root)
    path = root / "config" / "obj" / "a.json"
    before = path.stat()
    path.write_text(path.read_text().replace("1", "2"))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # even the same mtime
    assert path.stat().st_size == before.st_size
    config_reads.clear()
    tree = read_config_tree(root, [])
    assert config_reads == ["config/obj/a.json"]
    assert tree.digest("obj/a") == content_digest({"n": 2})


def test_added_and_deleted_files_are_seen(
    tmp_path: Path, trusted_config_files: None, config_reads: list[str]
) -> None:
    root = workspace(tmp_path)
    remembered(root)
    (root / "config" / "obj" / "a.json").unlink()
    (root / "config" / "obj" / "b.json").write_text('{"n": 3}')
    config_reads.clear()
    tree = read_config_tree(root, [])
    assert config_reads == ["config/obj/b.json"]
    assert list(tree) == ["emailTemplate/welcome", "external.email", "obj/b"]


def test_a_file_written_just_now_is_not_trusted_to_the_cache(
    tmp_path: Path, config_reads: list[str]
) -> None:
    root = workspace(tmp_path)
    remembered(root)  # every file was written within the last two seconds
    config_reads.clear()
    read_config_tree(root, [])
    assert len(config_reads) == 3


def test_a_file_changed_after_it_was_listed_is_an_error_naming_it(
    tmp_path: Path, trusted_config_files: None
) -> None:
    root = workspace(tmp_path)
    remembered(root)
    tree = read_config_tree(root, [])
    (root / "config" / "obj" / "a.json").write_text('{"n": 99}')
    with pytest.raises(WorkspaceFileError) as caught:
        tree["obj/a"]
    assert [(p.location, p.message) for p in caught.value.problems] == [
        ("config/obj/a.json", "changed while promote was reading the workspace; run again")
    ]


def test_invalid_json_is_reported_every_time(tmp_path: Path, trusted_config_files: None) -> None:
    root = workspace(tmp_path)
    (root / "config" / "broken.json").write_text("{nope")
    for _ in range(2):
        problems: list[Any] = []
        tree = read_config_tree(root, problems)
        tree.remember()
        assert [p.location for p in problems] == ["config/broken.json"]
        assert "broken" not in tree


@pytest.mark.parametrize("damage", [b"", b"not marshal at all", b"\xe3\x00\x00"])
def test_a_damaged_cache_is_ignored_and_replaced(
    tmp_path: Path, trusted_config_files: None, config_reads: list[str], damage: bytes
) -> None:
    root = workspace(tmp_path)
    remembered(root)
    path = cache_path(root.resolve())
    assert path is not None and path.is_file()
    path.write_bytes(damage)
    config_reads.clear()
    remembered(root)
    assert len(config_reads) == 3
    config_reads.clear()
    read_config_tree(root, [])
    assert config_reads == []


def test_the_cache_of_another_workspace_is_not_used(
    tmp_path: Path, trusted_config_files: None, config_reads: list[str]
) -> None:
    first = workspace(tmp_path)
    second = write_workspace(tmp_path / "other", config=OBJECTS)
    remembered(first)
    config_reads.clear()
    read_config_tree(second.resolve(), [])
    assert len(config_reads) == 3
    # Even the first workspace's file, copied to where the second's would be.
    source, target = cache_path(first.resolve()), cache_path(second.resolve())
    assert source is not None and target is not None and source != target
    target.write_bytes(source.read_bytes())
    config_reads.clear()
    read_config_tree(second.resolve(), [])
    assert len(config_reads) == 3


def test_the_cache_file_is_private_and_an_unwritable_place_is_no_error(
    tmp_path: Path,
    trusted_config_files: None,
    monkeypatch: pytest.MonkeyPatch,
    config_reads: list[str],
) -> None:
    root = workspace(tmp_path)
    remembered(root)
    path = cache_path(root.resolve())
    assert path is not None
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache directory would be")
    monkeypatch.setenv("PROMOTE_CACHE_DIR", str(blocked))
    config_reads.clear()
    remembered(root)  # nothing written, nothing raised
    assert len(config_reads) == 3 and blocked.read_text().startswith("a file")


def test_where_the_cache_lives(tmp_path: Path) -> None:
    root = Path("/w/s")
    assert cache_path(root, {"PROMOTE_CACHE_DIR": "/c"}) == Path(
        "/c/config",
        cache_path(root, {"PROMOTE_CACHE_DIR": "/c"}).name,  # type: ignore[union-attr]
    )
    assert str(cache_path(root, {"XDG_CACHE_HOME": "/x", "HOME": "/h"})).startswith(
        "/x/promote/config/"
    )
    assert str(cache_path(root, {"XDG_CACHE_HOME": "relative", "HOME": "/h"})).startswith(
        "/h/.cache/promote/config/"
    )
    assert cache_path(root, {}) is None
    assert cache_path(Path("/w/s"), {"HOME": "/h"}) != cache_path(Path("/w/t"), {"HOME": "/h"})


def test_without_a_place_for_the_cache_everything_is_read(
    tmp_path: Path,
    trusted_config_files: None,
    monkeypatch: pytest.MonkeyPatch,
    config_reads: list[str],
) -> None:
    for name in ("PROMOTE_CACHE_DIR", "XDG_CACHE_HOME", "HOME"):
        monkeypatch.delenv(name, raising=False)
    root = workspace(tmp_path)
    remembered(root)
    config_reads.clear()
    ws = load_workspace(root)
    assert dict(ws.config) == OBJECTS
    assert len(config_reads) == 3


def test_the_cache_holds_no_config_value_beyond_what_a_check_reads(
    tmp_path: Path, trusted_config_files: None
) -> None:
    root = workspace(tmp_path)
    (root / "config" / "plain.json").write_text(json.dumps({"literal": "not-in-the-cache-4411"}))
    remembered(root)
    path = cache_path(root.resolve())
    assert path is not None
    assert b"not-in-the-cache-4411" not in path.read_bytes()


def test_a_cached_file_made_invalid_is_reported_and_its_cached_digest_not_used(
    tmp_path: Path, trusted_config_files: None
) -> None:
    root = workspace(tmp_path)
    remembered(root)
    (root / "config" / "obj" / "a.json").write_text("{nope")
    problems: list[Any] = []
    tree = read_config_tree(root, problems)
    assert [p.location for p in problems] == ["config/obj/a.json"]
    assert "obj/a" not in tree and "obj/a" not in dict(tree.digest_map())
    tree.remember()
    problems.clear()
    assert "obj/a" not in read_config_tree(root, problems) and len(problems) == 1


def test_files_added_and_removed_since_the_cache_was_written(
    tmp_path: Path, trusted_config_files: None, config_reads: list[str]
) -> None:
    root = workspace(tmp_path)
    remembered(root)
    (root / "config" / "obj" / "a.json").unlink()
    (root / "config" / "obj" / "b.json").write_text(json.dumps({"n": 2}))
    config_reads.clear()
    tree = read_config_tree(root, [])
    assert config_reads == ["config/obj/b.json"]
    assert list(tree) == ["emailTemplate/welcome", "external.email", "obj/b"]
    assert dict(tree.digest_map()) == {
        key: content_digest(value)
        for key, value in {**OBJECTS, "obj/b": {"n": 2}}.items()
        if key != "obj/a"
    }
    for key in tree:
        tree.summary(key)
    tree.remember()
    config_reads.clear()
    assert list(read_config_tree(root, [])) == list(tree) and config_reads == []


def _reference_ids(config: Path) -> list[str]:
    """What the walk must find, the plain way: every regular ``*.json`` file (links
    followed) outside hidden entries, in the order of its path parts."""

    def walk(directory: Path, prefix: str) -> list[str]:
        found: list[str] = []
        for entry in sorted(directory.iterdir(), key=lambda p: p.name):
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                found += walk(entry, f"{prefix}{entry.name}/")
            elif entry.name.endswith(".json") and entry.is_file():
                found.append(prefix + entry.name[: -len(".json")])
        return found

    return walk(config, "")


def test_the_walk_finds_every_json_file_in_path_order_and_nothing_else(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    config = root / "config"
    for relpath in [
        "flat/b.json",
        "flat/a.json",
        "flat/a-b.json",
        "mixed/z.json",
        "mixed/m/inner.json",
        "mixed/a.json",
        "mixed/m.json",
        "mixed/notes.md",
        "mixed/script.js",
        "mixed/.hidden.json",
        ".git/config.json",
        "dir.json/inside.json",
        "deep/er/est/x.json",
    ]:
        path = config / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")
    (config / "flat" / "broken.json").symlink_to(config / "nowhere.json")
    (config / "flat" / "linked.json").symlink_to(config / "flat" / "a.json")
    (config / "linkdir").symlink_to(config / "deep")
    (config / "fifo").mkdir()
    (config / "fifo" / "a.json").write_text("{}")
    os.mkfifo(config / "fifo" / "fifo.json")  # in a directory of files alone

    ids = list(read_config_tree(root, []))

    assert ids == _reference_ids(config)
    assert "mixed/m" in ids and "mixed/m/inner" in ids and "dir.json/inside" in ids
    assert "linkdir/er/est/x" in ids and "flat/linked" in ids
    assert not {"flat/broken", "fifo/fifo", "mixed/.hidden", ".git/config"} & set(ids)


def test_the_digest_of_all_is_kept_with_the_cache_and_made_anew_after_a_change(
    tmp_path: Path, trusted_config_files: None, config_reads: list[str]
) -> None:
    root = workspace(tmp_path)
    expected = digest_of_set({key: content_digest(value) for key, value in OBJECTS.items()})
    assert read_config_tree(root, []).set_digest() == expected  # made from the files
    remembered(root)
    config_reads.clear()
    assert read_config_tree(root, []).set_digest() == expected and config_reads == []
    (root / "config" / "obj" / "a.json").write_text('{"n": 2}')
    os.utime(root / "config" / "obj" / "a.json", (1, 1))  # old enough to trust
    changed = {**OBJECTS, "obj/a": {"n": 2}}
    expected = digest_of_set({key: content_digest(value) for key, value in changed.items()})
    assert read_config_tree(root, []).set_digest() == expected
    remembered(root)
    assert read_config_tree(root, []).set_digest() == expected


@pytest.mark.parametrize("damage", ["rows", "table", "signatures", "digests"])
def test_a_cache_whose_parts_do_not_agree_is_not_trusted_and_is_replaced(
    tmp_path: Path, trusted_config_files: None, config_reads: list[str], damage: str
) -> None:
    import marshal

    root = workspace(tmp_path)
    remembered(root)
    path = cache_path(root.resolve())
    assert path is not None
    header, keys, signatures, digests, rows, table, set_digest = marshal.loads(path.read_bytes())
    if damage == "rows":
        packed = array("I", rows)
        rows = array("I", [len(table) + 5] * len(packed)).tobytes()  # rows that do not exist
    elif damage == "table":
        table = [("not", "a summary") for _ in table]
    elif damage == "signatures":
        signatures = b"[not, json"
    else:
        digests = digests.rsplit("\0", 1)[0]  # one digest fewer than files
    path.write_bytes(marshal.dumps((header, keys, signatures, digests, rows, table, set_digest)))
    config_reads.clear()
    tree = read_config_tree(root, [])
    # The cache is not trusted: the files are read again.
    assert sorted(config_reads) == sorted(f"config/{key}.json" for key in OBJECTS)
    assert tree.summary("external.email") == summarise(OBJECTS["external.email"])
    assert tree.digest("obj/a") == content_digest({"n": 1})
    assert tree.set_digest() == digest_of_set(
        {key: content_digest(value) for key, value in OBJECTS.items()}
    )
    remembered(root)
    config_reads.clear()
    assert list(read_config_tree(root, [])) == list(tree) and config_reads == []
