"""The differ: per-path structural changes, cheap equality first."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from promote.engine.diff import ABSENT, PathChange, diff_object, diff_objects


def test_equal_objects_give_no_diff() -> None:
    assert diff_object("a", {"x": [1, {"y": 2}]}, {"x": [1, {"y": 2}]}) is None


def test_key_order_alone_is_no_change() -> None:
    assert diff_object("a", {"x": 1, "y": 2}, {"y": 2, "x": 1}) is None


def test_true_and_one_differ() -> None:
    found = diff_object("a", {"enable": True}, {"enable": 1})
    assert found is not None
    assert found.changes == (PathChange("enable", True, 1),)


def test_paths_are_dotted_with_indexes_and_sorted() -> None:
    before = {"auth": {"user": "a"}, "list": [1, 2, 3], "deep": {"l": [{"h": 1}]}}
    after = {"auth": {"user": "b", "new": 1}, "list": [1, 3], "deep": {"l": [{"h": 2}]}}
    found = diff_object("obj", before, after)
    assert found is not None and found.action == "modify"
    assert [(c.path, c.before, c.after) for c in found.changes] == [
        ("auth.new", ABSENT, 1),
        ("auth.user", "a", "b"),
        ("deep.l[0].h", 1, 2),
        ("list[1]", 2, ABSENT),  # the item removed, not every later item shifted
    ]


def test_keys_that_are_not_words_are_quoted() -> None:
    found = diff_object("o", {"mail.smtp.auth": "a"}, {"mail.smtp.auth": "b"})
    assert found is not None
    assert found.changes[0].path == '["mail.smtp.auth"]'


def test_added_and_deleted_objects_list_top_level_keys() -> None:
    found = diff_objects({"gone": {"a": 1}}, {"new": {"b": [1]}, "scalar": 5})
    assert [(d.object, d.action) for d in found] == [
        ("gone", "delete"),
        ("new", "add"),
        ("scalar", "add"),
    ]
    assert found[0].changes == (PathChange("a", 1, ABSENT),)
    assert found[1].changes == (PathChange("b", ABSENT, [1]),)
    assert found[2].changes == (PathChange("", ABSENT, 5),)


def test_array_indexes_sort_numerically() -> None:
    before = {"l": list(range(12))}
    after = {"l": [*range(9), 90, 100, 110]}
    found = diff_object("o", before, after)
    assert found is not None
    assert [c.path for c in found.changes] == ["l[9]", "l[10]", "l[11]"]


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text("ab", max_size=2),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text("xyz", max_size=2), inner, max_size=3)
    ),
    max_leaves=12,
)


def _at(tree: object, parts: tuple[str | int, ...]) -> object:
    node = tree
    for part in parts:
        try:
            node = node[part]  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            return ABSENT
    return node


_object_pairs = settings(max_examples=300, deadline=None)(
    given(
        before=st.dictionaries(st.text("pq", max_size=2), _json, max_size=4),
        after=st.dictionaries(st.text("pq", max_size=2), _json, max_size=4),
    )
)
"""Two small JSON objects with overlapping keys: every kind of change between them."""


@_object_pairs
def test_diff_is_none_exactly_when_equal_and_every_change_is_real(before, after) -> None:
    found = diff_object("o", before, after)
    if found is None:
        assert json.dumps(before, sort_keys=True) == json.dumps(after, sort_keys=True)
        return
    assert json.dumps(before, sort_keys=True) != json.dumps(after, sort_keys=True)
    assert found.changes
    for change in found.changes:
        assert change.before is ABSENT or _at(before, change.parts) == change.before
        assert change.after is ABSENT or _at(after, change.parts) == change.after
        assert change.before is not ABSENT or change.after is not ABSENT


def _deepdiff_changes(before: object, after: object) -> set[tuple[str, str, str]]:
    """What one whole-object DeepDiff reports (the differ's reference semantics): a change
    of items DeepDiff paired at different places (after a removal) as what went and what
    came, since no one path holds both values."""
    from deepdiff import DeepDiff
    from deepdiff.helper import notpresent

    from esv.resolver import json_path

    found = set()
    tree = DeepDiff(before, after, view="tree", threshold_to_diff_deeper=0)
    for levels in tree.values():
        for level in levels:
            parts = tuple(level.path(output_format="list"))
            moved = tuple(level.path(output_format="list", use_t2=True))
            old = "ABSENT" if level.t1 is notpresent else json.dumps(level.t1)
            new = "ABSENT" if level.t2 is notpresent else json.dumps(level.t2)
            if "ABSENT" not in (old, new) and moved != parts:
                found.add((json_path(parts), old, "ABSENT"))
                found.add((json_path(moved), "ABSENT", new))
                continue
            found.add((json_path(parts), old, new))
    return found


@_object_pairs
def test_diff_reports_what_one_whole_object_deepdiff_reports(before, after) -> None:
    found = diff_object("o", before, after)
    changes = {
        (
            c.path,
            "ABSENT" if c.before is ABSENT else json.dumps(c.before),
            "ABSENT" if c.after is ABSENT else json.dumps(c.after),
        )
        for c in (found.changes if found else ())
    }
    assert changes == _deepdiff_changes(before, after)


def test_an_item_deepdiff_pairs_at_another_place_is_shown_as_gone_and_come() -> None:
    # DeepDiff pairs before[2] with after[1] once before[0] is gone: no one path holds both.
    found = diff_object("o", {"l": [1, None, None]}, {"l": [None, False]})
    assert found is not None
    assert [(c.path, c.before, c.after) for c in found.changes] == [
        ("l[0]", 1, ABSENT),
        ("l[1]", ABSENT, False),
        ("l[2]", None, ABSENT),
    ]
