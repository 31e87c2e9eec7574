"""The record of what was applied: its objects come last and are parsed only when read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from esv.objects import content_digest, digest_of_set
from promote.errors import PromoteError
from promote.state.applied import Applied, read_applied, write_applied
from promote.state.local import LocalStore

OBJECTS = {"obj/a": {"n": 1, "s": "&{esv.x}"}, "obj/b": {"n": 2}, "config": {"k": "v"}}


def record(**kw: object) -> Applied:
    fields: dict[str, object] = {
        "config": OBJECTS,
        "variables": {"esv-x": ("1", "int")},
        "secrets": {"esv-s": 3},
        "digests": {k: content_digest(v) for k, v in OBJECTS.items() if k != "obj/b"},
        "secret_paths": {"obj/b": {"n": "fingerprint"}, "config": {"k": "other"}},
    }
    fields.update(kw)
    return Applied(**fields)  # type: ignore[arg-type]


def test_the_objects_come_last_and_every_id_is_known_before_they_are_parsed(
    tmp_path: Path,
) -> None:
    store = LocalStore(tmp_path)
    write_applied(store, "dev", record())
    raw = store.read_record("applied/dev.json") or b""
    assert list(json.loads(raw)) == [
        "format",
        "secret_paths",
        "variables",
        "secrets",
        "undigested",
        "set_digest",
        "digests",
        "config",
    ]
    # Damage only the objects: the rest still reads, and so do their ids.
    start = raw.rindex(b',"config":{')
    store.write_record("applied/dev.json", raw[:start] + b',"config":{"obj/a":1}}\n')
    applied = read_applied(store, "dev")
    assert applied is not None
    assert sorted(applied.config) == ["config", "obj/a", "obj/b"]
    assert "obj/b" in applied.config and len(applied.config) == 3
    assert applied.variables == {"esv-x": ("1", "int")} and applied.secrets == {"esv-s": 3}
    assert applied.secret_paths["config"] == {"k": "other"}
    with pytest.raises(PromoteError, match=r"applied/dev.json in the state store is damaged"):
        applied.config["obj/a"]


def test_a_record_reads_back_as_written(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    write_applied(store, "dev", record())
    applied = read_applied(store, "dev")
    assert applied == record()
    assert applied is not None and dict(applied.config.items()) == OBJECTS
    write_applied(store, "dev", applied)  # written again from what was read: the same bytes
    first = store.read_record("applied/dev.json")
    write_applied(store, "dev", record())
    assert store.read_record("applied/dev.json") == first


def test_a_record_with_its_objects_first_is_still_read(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    old = {
        "format": "promote.applied/2",
        "config": {k: json.dumps(v) for k, v in OBJECTS.items()},
        "secret_paths": {"config": {"k": "other"}},
        "variables": {},
        "secrets": {},
        "digests": {"obj/a": content_digest(OBJECTS["obj/a"])},
    }
    store.write_record("applied/dev.json", json.dumps(old, separators=(",", ":")).encode())
    applied = read_applied(store, "dev")
    assert applied is not None
    assert dict(applied.config.items()) == OBJECTS
    assert applied.secret_paths == {"config": {"k": "other"}}


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b'{"format":"promote.applied/2","undigested":[],"config":{}}',  # no variables
        b'{"format":"promote.applied/9","variables":{},"undigested":[],"config":{}}',
    ],
)
def test_an_unreadable_record_is_no_record(tmp_path: Path, raw: bytes) -> None:
    store = LocalStore(tmp_path)
    store.write_record("applied/dev.json", raw)
    applied = read_applied(store, "dev")
    assert applied is None or dict(applied.config) == {}


def test_objects_other_than_the_ids_the_record_lists_are_damage(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    raw = b'{"format":"promote.applied/2","variables":{},"undigested":["b"],"config":{"a":"{}"}}'
    store.write_record("applied/dev.json", raw)
    applied = read_applied(store, "dev")
    assert applied is not None and list(applied.config) == ["b"]
    with pytest.raises(PromoteError, match="damaged"):
        applied.config["b"]


def test_the_digests_come_before_the_objects_and_are_parsed_only_when_read(
    tmp_path: Path,
) -> None:
    store = LocalStore(tmp_path)
    write_applied(store, "dev", record(config={"a": {"n": 1}}, digests={"a": "d1"}))
    raw = store.read_record("applied/dev.json") or b""
    assert json.loads(raw)["set_digest"] == digest_of_set({"a": "d1"})
    start, end = raw.rindex(b',"digests":{'), raw.rindex(b',"config":{')
    store.write_record("applied/dev.json", raw[:start] + b',"digests":{"a":1}' + raw[end:])
    applied = read_applied(store, "dev")  # the fields read without the digests
    assert applied is not None and applied.set_digest == digest_of_set({"a": "d1"})
    assert applied.variables == {"esv-x": ("1", "int")} and applied.secrets == {"esv-s": 3}
    with pytest.raises(PromoteError, match=r"applied/dev.json .* damaged: its digests"):
        dict(applied.digests)
    with pytest.raises(PromoteError, match="damaged"):
        list(applied.config)  # its ids are the digests'


def test_the_digest_of_all_is_kept_only_when_every_object_has_its_digest(
    tmp_path: Path,
) -> None:
    store = LocalStore(tmp_path)
    write_applied(store, "dev", record())  # obj/b is masked: it has no digest
    applied = read_applied(store, "dev")
    assert applied is not None and applied.set_digest is None
    raw = json.loads(store.read_record("applied/dev.json") or b"")
    assert raw["set_digest"] is None and raw["undigested"] == ["obj/b"]
    digests = {k: content_digest(v) for k, v in OBJECTS.items()}
    write_applied(store, "dev", record(digests=digests, secret_paths={}))
    applied = read_applied(store, "dev")
    assert applied is not None and applied.set_digest == digest_of_set(digests)
    # A record that claims a digest of all with an object undigested is not believed.
    raw = json.loads(store.read_record("applied/dev.json") or b"")
    raw["undigested"], raw["digests"] = ["obj/b"], {"obj/a": digests["obj/a"]}
    store.write_record("applied/dev.json", json.dumps(raw, separators=(",", ":")).encode())
    applied = read_applied(store, "dev")
    assert applied is not None and applied.set_digest is None


def test_a_record_of_format_2_with_its_objects_last_is_still_read(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    digests = {"obj/a": content_digest(OBJECTS["obj/a"])}
    old = {
        "format": "promote.applied/2",
        "secret_paths": {},
        "variables": {"esv-x": ["1", "int"]},
        "secrets": {},
        "digests": digests,
        "undigested": ["obj/b", "config"],
        "config": {k: json.dumps(v) for k, v in OBJECTS.items()},
    }
    store.write_record("applied/dev.json", json.dumps(old, separators=(",", ":")).encode())
    applied = read_applied(store, "dev")
    assert applied is not None and applied.digests == digests and applied.set_digest is None
    assert list(applied.config) == ["obj/a", "obj/b", "config"]
    assert dict(applied.config.items()) == OBJECTS
