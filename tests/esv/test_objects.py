"""Config objects known by digest: nothing is read until a document is needed, each document
is read once, and digests stand for content (key order aside, types kept)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from esv.objects import DigestedObjects, content_digest, digest_of
from esv.references import build_index, check_environment, summarise

DOCS: dict[str, Any] = {
    "a": {"host": "&{esv.h}", "port": {"$int": "&{esv.p}"}},
    "b": {"n": 1},
    "c": {"n": True},
}


class Reader:
    def __init__(self, documents: dict[str, Any]) -> None:
        self.documents = documents
        self.calls: list[list[str]] = []

    def __call__(self, ids: list[str]) -> dict[str, Any]:
        self.calls.append(list(ids))
        return {key: self.documents[key] for key in ids}


def digested(reader: Reader, **kw: Any) -> DigestedObjects:
    return DigestedObjects(
        reader.documents, reader, digests={k: content_digest(v) for k, v in DOCS.items()}, **kw
    )


def test_content_digest_is_of_content_not_key_order_and_keeps_types() -> None:
    assert content_digest({"a": 1, "b": [1, 2]}) == content_digest({"b": [1, 2], "a": 1})
    assert content_digest({"n": 1}) != content_digest({"n": True})
    assert content_digest({"n": 1}) != content_digest({"n": 1.0})
    assert content_digest([1, 2]) != content_digest([2, 1])


def test_ids_membership_and_digests_read_nothing() -> None:
    reader = Reader(DOCS)
    objects = digested(reader)
    assert list(objects) == ["a", "b", "c"] and len(objects) == 3
    assert "b" in objects and "z" not in objects
    assert objects.digest("b") == content_digest({"n": 1})
    assert dict(objects.digest_map()) == {k: content_digest(v) for k, v in DOCS.items()}
    assert reader.calls == []
    with pytest.raises(KeyError):
        objects.digest("z")


def test_a_document_is_read_once_and_prefetch_reads_many_in_one_call() -> None:
    reader = Reader(DOCS)
    objects = digested(reader)
    assert objects["b"] == {"n": 1}
    assert objects["b"] == {"n": 1}
    objects.prefetch(["a", "b", "c", "z"])
    assert reader.calls == [["b"], ["a", "c"]]
    with pytest.raises(KeyError):
        objects["z"]


def test_a_restricted_view_shares_what_was_read() -> None:
    reader = Reader(DOCS)
    objects = digested(reader)
    view = objects.restrict({"c", "a"})
    assert list(view) == ["a", "c"]  # the set's order, not the argument's
    assert "b" not in view
    assert view["a"] == DOCS["a"]
    assert objects["a"] == DOCS["a"]
    assert reader.calls == [["a"]]


def test_unknown_digests_are_made_from_the_document() -> None:
    reader = Reader(DOCS)
    objects = DigestedObjects(DOCS, reader, loaded={"b": DOCS["b"]})
    assert objects.digest("b") == content_digest(DOCS["b"])
    assert reader.calls == []
    assert objects.known("a") == (None, None)
    assert objects.digest_map()["c"] == content_digest(DOCS["c"])
    assert reader.calls == [["a", "c"]]
    assert digest_of(objects, "a") == digest_of(dict(DOCS), "a")


def test_a_summary_made_from_the_document_makes_its_digest_too() -> None:
    # A summary made now needs the document's canonical JSON, which is its digest's text.
    reader = Reader(DOCS)
    objects = DigestedObjects(reader.documents, reader)
    assert objects.known("b") == (None, None)
    assert objects.summary("b") == summarise(DOCS["b"])
    assert objects.summary("a") == summarise(DOCS["a"])
    assert objects.known("b") == (content_digest(DOCS["b"]), summarise(DOCS["b"]))
    assert objects.digest("a") == content_digest(DOCS["a"])
    assert reader.calls == [["b"], ["a"]]


def test_items_and_values_read_all_at_once() -> None:
    reader = Reader(DOCS)
    objects = digested(reader)
    assert dict(objects.items()) == DOCS
    assert list(objects.values()) == list(DOCS.values())
    assert reader.calls == [["a", "b", "c"]]


def test_a_loader_error_reaches_the_reader() -> None:
    def broken(ids: list[str]) -> dict[str, Any]:
        raise OSError("gone")

    objects = DigestedObjects(["a"], broken, digests={"a": "0" * 64})
    with pytest.raises(OSError, match="gone"):
        objects["a"]


def test_the_reference_index_reads_only_objects_whose_summary_is_unknown() -> None:
    reader = Reader(DOCS)
    known = {"a": summarise(DOCS["a"]), "b": summarise(DOCS["b"])}
    objects = digested(reader, summaries=known)
    index = build_index(objects)
    assert reader.calls == [["c"]]
    assert index.referencing(["esv-h"]) == {"a"}
    # Built again for the same set (or the same content): the index is reused, nothing read.
    assert build_index(objects.restrict(set(DOCS)), reuse=index) is index
    assert reader.calls == [["c"]]


def test_a_check_on_a_digested_set_matches_the_one_on_plain_documents() -> None:
    from esv.envfile import parse_environment

    env = parse_environment(
        "variables:\n  esv-p: x\n", name="dev", path=Path("dev.yaml"), relpath="dev.yaml"
    )
    plain = check_environment(DOCS, env)
    assert {p.esv_id for p in plain} == {"esv-h", "esv-p"}
    reader = Reader(DOCS)
    objects = digested(reader, summaries={k: summarise(v) for k, v in DOCS.items()})
    assert check_environment(objects, env, index=build_index(objects)) == plain
    # Only the object with a problem there (the undefined esv-h, the $int of "x") was read.
    assert reader.calls == [["a"]]
