from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from esv.errors import ResolutionError
from esv.resolver import MAX_DEPTH, EsvValue, json_path, resolve, resolve_objects
from esv.secrets import MASK

VALUES = {
    "esv-host": EsvValue("esv-host", "smtp.example.com"),
    "esv-port": EsvValue("esv-port", "587", "int"),
    "esv-ssl": EsvValue("esv-ssl", "TRUE", "bool"),
    "esv-empty": EsvValue("esv-empty", ""),
    "esv-list": EsvValue("esv-list", "a,b", "list"),
    "esv-arr": EsvValue("esv-arr", '["x","y"]', "array"),
    "esv-obj": EsvValue("esv-obj", '{"en":"Hi"}', "object"),
    "esv-b64": EsvValue("esv-b64", "WyJhIl0="),
    "esv-password": EsvValue("esv-password", "hunter2-secret", secret=True),
    "esv-pin": EsvValue("esv-pin", "1234", secret=True),
}


def r(document: Any, values: dict[str, EsvValue] = VALUES) -> Any:
    return resolve(document, values, object_id="obj").value


def test_plain_and_embedded() -> None:
    assert r("&{esv.host}") == "smtp.example.com"
    assert r('"A" <x@&{esv.host}>') == '"A" <x@smtp.example.com>'
    assert r("&{esv.host}:&{esv.port}") == "smtp.example.com:587"


def test_defaults() -> None:
    assert r("&{esv.missing|fallback}") == "fallback"
    assert r("&{esv.missing|x|y}") == "x|y"
    assert r("&{esv.missing|&{esv.host}}") == "smtp.example.com"
    assert r("&{esv.missing|&{esv.other|deep}}") == "deep"
    assert r("&{esv.host|unused}") == "smtp.example.com"


def test_empty_string_esv_is_defined() -> None:
    assert r("&{esv.empty|default}") == ""


def test_typed_wrappers() -> None:
    doc = {
        "port": {"$int": "&{esv.port}"},
        "ssl": {"enable": {"$bool": "&{esv.ssl}"}},
        "hosts": {"$list": "&{esv.list}"},
        "arr": {"$array": "&{esv.arr}"},
        "obj": {"$object": "&{esv.obj}"},
        "s": {"$string": "&{esv.host}"},
        "n": {"$number": "&{esv.missing|1.5}"},
        "nested": {"$array": {"$base64:decode": "&{esv.b64}"}},
        "enc": {"$base64:encode": "&{esv.host}", "$charset": "utf-8"},
    }
    assert r(doc) == {
        "port": 587,
        "ssl": {"enable": True},
        "hosts": ["a", "b"],
        "arr": ["x", "y"],
        "obj": {"en": "Hi"},
        "s": "smtp.example.com",
        "n": 1.5,
        "nested": ["a"],
        "enc": "c210cC5leGFtcGxlLmNvbQ==",
    }


def test_non_esv_tokens_and_invalid_tokens_are_verbatim() -> None:
    doc = {"p": "&{sendgrid.api.key}", "q": "&{esv.my-var}", "r": "&{${installDir}}/x"}
    assert r(doc) == doc


def test_alias_is_resolved() -> None:
    assert r("&<esv.host>") == "smtp.example.com"


def test_other_dollar_objects_are_walked_not_converted() -> None:
    doc = {"$crypto": {"value": "&{esv.host}"}, "$purpose": {"name": "x"}}
    assert r(doc) == {"$crypto": {"value": "smtp.example.com"}, "$purpose": {"name": "x"}}


def test_every_problem_is_reported_once() -> None:
    doc = {
        "a": "&{esv.nope}",
        "b": [{"$int": "abc"}, {"$bool": "&{esv.host}"}],
        "c": {"$int": "&{esv.missing.too}"},
        "d": {"$array": "&{esv.obj}"},
    }
    with pytest.raises(ResolutionError) as caught:
        resolve(doc, VALUES, object_id="external.email")
    problems = caught.value.problems
    assert [(p.location, p.path) for p in problems] == [
        ("external.email", "a"),
        ("external.email", "b[0]"),
        ("external.email", "b[1]"),
        ("external.email", "c"),
        ("external.email", "d"),
    ]
    assert problems[0].esv_id == "esv-nope"
    assert "$bool" in problems[2].message and "esv-host" in problems[2].message
    assert "is not a JSON array" in problems[4].message
    assert caught.value.exit_code == 3


def test_conversion_error_of_secret_never_shows_it() -> None:
    with pytest.raises(ResolutionError) as caught:
        resolve({"x": {"$bool": "&{esv.password}"}}, VALUES, object_id="o")
    text = str(caught.value)
    assert "hunter2" not in text and "a secret value" in text and "esv-password" in text


def test_masking_substrings_and_whole_typed_values() -> None:
    doc = {
        "auth": {"password": "&{esv.password}", "username": "u"},
        "url": "smtp://u:&{esv.password}@&{esv.host}",
        "pin": {"$int": "&{esv.pin}"},
        "list": ["&{esv.missing|&{esv.pin}}", "plain"],
    }
    result = resolve(doc, VALUES, object_id="o")
    assert result.value["auth"]["password"] == "hunter2-secret"
    assert result.value["pin"] == 1234
    assert result.masked == {
        "auth": {"password": MASK, "username": "u"},
        "url": f"smtp://u:{MASK}@smtp.example.com",
        "pin": MASK,
        "list": [MASK, "plain"],
    }
    assert result.secret_paths == frozenset({"auth.password", "url", "pin", "list[0]"})
    assert "hunter2" not in repr(result)


def test_input_is_not_modified_and_unchanged_parts_are_shared() -> None:
    doc = {"a": {"big": list(range(10))}, "b": "&{esv.host}"}
    before = copy.deepcopy(doc)
    result = resolve(doc, VALUES, object_id="o")
    assert doc == before
    assert result.value["a"] is doc["a"]
    assert result.masked is result.value


def test_deep_nesting_is_a_clear_error() -> None:
    doc: Any = "&{esv.host}"
    for _ in range(10_000):
        doc = [doc]
    with pytest.raises(ResolutionError, match=f"deeper than {MAX_DEPTH}"):
        resolve(doc, VALUES, object_id="deep")


def test_resolve_objects_collects_across_objects() -> None:
    with pytest.raises(ResolutionError) as caught:
        resolve_objects({"a": "&{esv.x}", "b": "&{esv.y}", "c": "&{esv.host}"}, VALUES)
    assert [p.location for p in caught.value.problems] == ["a", "b"]
    done = resolve_objects({"c": "&{esv.host}"}, VALUES)
    assert done["c"].value == "smtp.example.com"


def test_json_path() -> None:
    assert json_path(["auth", "scope", 0]) == "auth.scope[0]"
    assert json_path([]) == ""
    assert json_path([0, "a"]) == "[0].a"
    assert json_path(["a.b", "c d"]) == '["a.b"]["c d"]'


def test_esv_value_repr_masks_secrets() -> None:
    assert "hunter2" not in repr(VALUES["esv-password"])
    assert "smtp.example.com" in repr(VALUES["esv-host"])


# -- properties ------------------------------------------------------------------------

json_leaves = st.none() | st.booleans() | st.integers() | st.text()
json_docs = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_docs)
def test_document_without_placeholder_is_returned_unchanged(doc: Any) -> None:
    if "&{" in json.dumps(doc) or "&<" in json.dumps(doc):
        return
    result = resolve(doc, VALUES, object_id="o")
    assert result.value == doc
    assert result.masked == doc
    assert not result.secret_paths


segment_ids = st.from_regex(r"\Aesv(\.[a-z0-9_]{1,6}){1,3}\Z", fullmatch=True)
safe_text = st.text(alphabet=st.characters(blacklist_characters="&{}|<>"), max_size=8)


@st.composite
def templates(draw: Any) -> tuple[str, dict[str, EsvValue]]:
    tokens = draw(st.lists(segment_ids, min_size=1, max_size=4))
    parts = []
    values = {}
    for token in tokens:
        parts.append(draw(safe_text))
        parts.append("&{" + token + "}")
        esv_id = token.replace(".", "-")
        secret = draw(st.booleans())
        text = draw(st.text(alphabet="abcdefgh0123456789", min_size=6, max_size=12))
        values[esv_id] = EsvValue(esv_id, "S3CR" + text if secret else text, secret=secret)
    parts.append(draw(safe_text))
    return "".join(parts), values


@settings(max_examples=200)
@given(templates())
def test_no_esv_placeholder_survives_when_all_defined(
    case: tuple[str, dict[str, EsvValue]],
) -> None:
    text, values = case
    result = resolve({"k": [text, {"$string": text}]}, values, object_id="o")
    assert "&{esv." not in json.dumps(result.value)


@settings(max_examples=200)
@given(templates())
def test_masking_never_lets_a_secret_through(case: tuple[str, dict[str, EsvValue]]) -> None:
    text, values = case
    result = resolve(
        {"k": [text, {"$string": text}], "d": f"&{{esv.zz|{text}}}"}, values, object_id="o"
    )
    masked = json.dumps(result.masked)
    for value in values.values():
        if value.secret:
            assert value.text not in masked


def test_conversions_of_stand_ins_are_not_checked_but_listed() -> None:
    stand_in = EsvValue("esv-secret-port", MASK, secret=True, stand_in=True)
    values = {**VALUES, "esv-secret-port": stand_in}
    assert "stand_in=True" in repr(stand_in) and MASK in repr(stand_in)
    document = {
        "port": {"$int": "&{esv.secret.port}"},
        "mixed": {"$int": "1&{esv.secret.port}"},
        "nested": {"$base64:encode": {"$string": "&{esv.secret.port}"}},
        "inside": {"$object": {"p": "&{esv.secret.port}"}},
        "known": {"$int": "&{esv.port}"},
        "plain": "&{esv.secret.port}",
    }
    resolved = resolve(document, values, object_id="obj")
    assert resolved.unknown_paths == frozenset({"port", "mixed", "nested", "inside"})
    assert resolved.value["port"] == {"$int": "&{esv.secret.port}"}  # left as written
    assert resolved.masked["port"] == MASK
    assert resolved.value["known"] == 587
    assert resolved.value["plain"] == MASK
    # the same text from a real secret is checked
    real = {**VALUES, "esv-secret-port": EsvValue("esv-secret-port", MASK, secret=True)}
    with pytest.raises(ResolutionError) as caught:
        resolve(document, real, object_id="obj")
    assert [p.path for p in caught.value.problems] == ["port", "mixed"]
    # a stand-in does not hide other problems of the same wrapper
    with pytest.raises(ResolutionError, match="ESV esv-nope is not defined"):
        resolve({"$int": "&{esv.secret.port}&{esv.nope}"}, values, object_id="obj")


def test_undefined_hints_name_the_file_and_invalid_ids_say_so() -> None:
    with pytest.raises(ResolutionError) as caught:
        resolve(
            {"a": "&{esv.nope}", "b": "&{esv.Upper}"},
            VALUES,
            object_id="obj",
            source="environments/uat.yaml",
        )
    assert [str(p) for p in caught.value.problems] == [
        "obj: a: &{esv.nope}: ESV esv-nope is not defined (define esv-nope under variables: or "
        "secrets: in environments/uat.yaml, or give a default: &{esv.nope|value})",
        "obj: b: &{esv.Upper}: esv-Upper is not a valid ESV id, so no ESV can define it "
        "(ESV ids match ^esv-[a-z0-9_-]{1,124}$: write the token in lower case (&{esv.a.b}), "
        "or give a default)",
    ]
    assert all(p.code == "missing-esv" for p in caught.value.problems)
    with pytest.raises(ResolutionError, match="in the environment file, or give a default"):
        resolve_objects({"o": "&{esv.nope}"}, VALUES)


def test_literal_conversions_count_as_values() -> None:
    with pytest.raises(ResolutionError) as caught:
        resolve({"a": {"$int": "abc"}}, VALUES, object_id="obj")
    assert str(caught.value).splitlines() == [
        "1 value cannot be resolved",
        '  - obj: a: $int of "abc": is not an int (fix the value)',
    ]
    with pytest.raises(ResolutionError, match="^2 values cannot be resolved"):
        resolve({"a": {"$int": "abc"}, "b": "&{esv.nope}"}, VALUES, object_id="obj")


def test_int_outside_java_integer_names_esv_object_and_path() -> None:
    values = {**VALUES, "esv-big": EsvValue("esv-big", "99999999999999999999", "number")}
    with pytest.raises(ResolutionError) as caught:
        resolve({"limits": {"max": {"$int": "&{esv.big}"}}}, values, object_id="obj")
    assert [str(p) for p in caught.value.problems] == [
        'obj: limits.max: $int of "99999999999999999999" (from esv-big): is outside '
        "-2147483648..2147483647, the range of an int (a Java Integer); $number and type "
        "number have no such limit (fix the ESV's value or the wrapper)"
    ]
    assert caught.value.problems[0].esv_id == "esv-big"
    got = resolve({"n": {"$number": "&{esv.big}"}}, values, object_id="obj").value
    assert got == {"n": 99999999999999999999}


def test_repeated_strings_and_wrappers_resolve_alike_in_every_object() -> None:
    """The per-call memo: hits give the same values, masks, secret paths and problems."""
    document = {
        "host": "&{esv.host}",
        "pw": "&{esv.password}",
        "url": "https://&{esv.host}/?p=&{esv.pin}",
        "port": {"$int": "&{esv.port}"},
        "pin": {"$int": "&{esv.pin}"},
        "list": {"$list": "&{esv.list}"},
        "bad": {"$int": "&{esv.host}"},
        "gone": "&{esv.nope}",
        "nested": [{"pw": "&{esv.password}", "list": {"$list": "&{esv.list}"}}],
    }
    objects = {f"o{i}": copy.deepcopy(document) for i in range(3)}
    with pytest.raises(ResolutionError) as caught:
        resolve_objects(objects, VALUES)
    assert [(p.location, p.path) for p in caught.value.problems] == [
        (f"o{i}", path) for i in range(3) for path in ("bad", "gone")
    ]
    clean = {
        i: {k: v for k, v in d.items() if k not in ("bad", "gone")} for i, d in objects.items()
    }
    first, *rest = resolve_objects(clean, VALUES).values()
    single = resolve(clean["o0"], VALUES, object_id="o0")
    for resolved in (*rest, single):
        assert resolved.value == first.value and resolved.masked == first.masked
        assert resolved.secret_paths == first.secret_paths
    assert first.secret_paths == frozenset({"pw", "url", "pin", "nested[0].pw"})
    assert first.masked["url"] == "https://smtp.example.com/?p=********"
    assert first.masked["pin"] == MASK and first.value["pin"] == 1234
    # lists from a wrapper are not shared between places
    lists = [r.value["list"] for r in (first, *rest)] + [first.value["nested"][0]["list"]]
    assert all(x == ["a", "b"] for x in lists)
    assert len({id(x) for x in lists}) == len(lists)
    assert "hunter2" not in json.dumps([first.masked, rest[0].masked])


def test_stand_ins_stay_secret_in_every_object() -> None:
    stand_in = EsvValue("esv-pw", MASK, secret=True, stand_in=True)
    values = {**VALUES, "esv-pw": stand_in}
    document = {"pw": "&{esv.pw}", "pin": {"$int": "&{esv.pw}"}, "at": "x&{esv.pw}"}
    results = resolve_objects({"a": document, "b": document}, values)
    for resolved in results.values():
        assert resolved.secret_paths == frozenset({"pw", "pin", "at"})
        assert resolved.unknown_paths == frozenset({"pin"})


_FRAGMENTS = [
    "text",
    " ",
    "&",
    "{",
    "}",
    "|",
    "&{esv.host}",
    "&{esv.port}",
    "&{esv.empty}",
    "&{esv.password}",
    "&{esv.missing}",
    "&{esv.missing|fallback}",
    "&{esv.missing|}",
    "&{esv.host|unused}",
    "&{esv.pin|1}",
    "&{esv.Host}",
    "&{plain.token}",
    "&{plain.token|d}",
    "&{esv.missing|&{esv.host}}",
    "&<esv.host>",
    "&{",
    "&{esv.host",
]


def _outcome(document: Any) -> Any:
    try:
        resolved = resolve_objects({"obj": document}, VALUES)["obj"]
    except ResolutionError as error:
        return ("problems", [(p.location, p.path, p.message) for p in error.problems])
    return (resolved.value, resolved.masked, resolved.secret_paths, resolved.unknown_paths)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_FRAGMENTS), min_size=1, max_size=6).map("".join))
def test_strings_resolved_in_one_scan_are_what_the_general_path_makes(text: str) -> None:
    import esv.resolver

    document = {"a": text, "b": [text, {"c": text}]}
    fast = _outcome(copy.deepcopy(document))
    real = esv.resolver._render_plain
    esv.resolver._render_plain = lambda text, values: None  # type: ignore[assignment]
    try:
        esv.resolver._PLANS.clear()
        general = _outcome(copy.deepcopy(document))
    finally:
        esv.resolver._render_plain = real
    assert fast == general
