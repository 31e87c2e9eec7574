from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import astuple, replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from esv.conversions import wrapper_of
from esv.envfile import EnvironmentFile, Secret, SecretSource, Variable, parse_environment
from esv.errors import MISSING_ESV, Problem, ResolutionError
from esv.jsonfile import canonical_bytes
from esv.placeholders import parse
from esv.references import (
    Reference,
    build_index,
    check_environment,
    index_references,
)
from esv.refsummary import summarise
from esv.refwalk import ObjectCheck
from esv.resolver import EsvValue, json_path, resolve

CONFIG = {
    "external.email": {
        "host": "&{esv.email.provider.host}",
        "port": {"$int": "&{esv.email.provider.port}"},
        "auth": {"password": "&{esv.email.provider.password}"},
        "from": "&{esv.from|noreply@&{esv.domain|example.com}}",
        "other": "&{sendgrid.api.key}",
    },
    "emailTemplate/welcome": {"subject": {"en": "Hi from &{esv.brand}"}},
}


def env(text: str) -> EnvironmentFile:
    return parse_environment(
        text, name="uat", path=Path("uat.yaml"), relpath="environments/uat.yaml"
    )


FULL = """
variables:
  esv-email-provider-host: smtp.example.com
  esv-email-provider-port: {value: "465", type: int}
  esv-brand: Acme
secrets:
  esv-email-provider-password: {env: PW}
"""


def test_index_references() -> None:
    refs = index_references(CONFIG)
    assert refs == [
        Reference("external.email", "host", "esv-email-provider-host", False, None),
        Reference("external.email", "port", "esv-email-provider-port", False, "$int"),
        Reference("external.email", "auth.password", "esv-email-provider-password", False, None),
        Reference("external.email", "from", "esv-from", True, None),
        Reference("external.email", "from", "esv-domain", True, None),
        Reference("emailTemplate/welcome", "subject.en", "esv-brand", False, None),
    ]


def test_index_handles_any_depth() -> None:
    doc: object = "&{esv.deep}"
    for _ in range(10_000):
        doc = {"a": doc}
    (ref,) = index_references({"deep": doc})
    assert ref.esv_id == "esv-deep" and ref.path.count("a") == 10_000


def test_complete_environment_has_no_problem() -> None:
    assert check_environment(CONFIG, env(FULL)) == []


def test_missing_without_default_is_an_error() -> None:
    found = check_environment(CONFIG, env("variables: {esv-brand: x}"))
    errors = [p for p in found if p.severity == "error"]
    assert [(p.location, p.path, p.esv_id) for p in errors] == [
        ("external.email", "host", "esv-email-provider-host"),
        ("external.email", "port", "esv-email-provider-port"),
        ("external.email", "auth.password", "esv-email-provider-password"),
    ]
    assert "is not defined in environments/uat.yaml" in errors[0].message
    assert {p.code for p in errors} == {MISSING_ESV}


def test_defaults_used_only_when_needed() -> None:
    found = check_environment({"o": "&{esv.a|&{esv.b}}"}, env("variables: {esv-c: x}"))
    assert [p.esv_id for p in found if p.severity == "error"] == ["esv-b"]
    found = check_environment({"o": "&{esv.a|&{esv.b}}"}, env("variables: {esv-a: x}"))
    assert found == []


def test_wrapper_conversion_error_and_type_mismatch() -> None:
    config = {
        "o": {
            "a": {"$int": "&{esv.port}"},
            "b": {"$bool": "&{esv.flag}"},
            "c": {"$int": "&{esv.text}"},
            "d": {"$array": {"$base64:decode": "&{esv.b64}"}},
            "e": {"$int": "&{esv.secret}"},
            "f": "&{esv.port}",
        }
    }
    found = check_environment(
        config,
        env(
            """
variables:
  esv-port: {value: "58x", type: string}
  esv-flag: {value: "true", type: bool}
  esv-text: {value: "587"}
  esv-b64: {value: "bm90IGpzb24=", type: base64encodedinlined}
secrets:
  esv-secret: {env: S}
"""
        ),
    )
    shown = [(p.severity, p.path, p.message) for p in found]
    assert ("error", "a", '$int of "58x" (from esv-port): is not an int') in shown
    assert (
        "warning",
        "c",
        "$int over esv-text, which environments/uat.yaml declares string",
    ) in shown
    assert ("error", "d", '$array of "not json" (from esv-b64): is not a JSON array') in shown
    assert not [p for p in found if p.path in ("b", "e")]
    assert all(p.code is None for p in found)


def test_bare_non_string_and_invalid_tokens_and_unused_warn() -> None:
    config = {"o": {"port": "&{esv.port}", "x": "&{esv.my-var} &{${installDir}}"}}
    found = check_environment(
        config, env("variables:\n  esv-port: {value: '1', type: int}\n  esv-spare: x\n")
    )
    assert all(p.severity == "warning" for p in found)
    messages = [p.message for p in found]
    assert "esv-port is declared int but used as text" in messages
    assert "&{esv.my-var} is not a placeholder and is left as written" in messages
    assert "&{${installDir}} is not a placeholder and is left as written" in messages
    assert "is defined but no config object references it" in messages


# -- property: the static check and the resolver agree about missing ESVs -------------

NAMES = ["a", "b", "c", "d"]
token = st.sampled_from(NAMES).map(lambda n: "&{esv." + n + "}")
defaulted = st.tuples(st.sampled_from(NAMES), token | st.just("x")).map(
    lambda t: "&{esv." + t[0] + "|" + t[1] + "}"
)
strings = st.lists(token | defaulted | st.just("lit"), min_size=1, max_size=4).map("".join)


@settings(max_examples=200)
@given(st.lists(strings, min_size=1, max_size=4), st.sets(st.sampled_from(NAMES)))
def test_check_and_resolve_agree(texts: list[str], defined: set[str]) -> None:
    file = env("variables:\n" + "".join(f"  esv-{n}: v{n}\n" for n in sorted(defined)))
    config = {"o": texts}
    errors = [p for p in check_environment(config, file) if p.severity == "error"]
    values = {v.id: EsvValue(v.id, v.value) for v in file.variables.values()}
    try:
        resolve(config["o"], values, object_id="o")
    except ResolutionError as error:
        assert {p.esv_id for p in error.problems} == {p.esv_id for p in errors}
    else:
        assert errors == []


# -- the index: one per config, any number of environments, the same problems --------------


def test_one_index_serves_every_environment() -> None:
    index = build_index(CONFIG)
    assert index.esv_ids == {
        "esv-email-provider-host",
        "esv-email-provider-port",
        "esv-email-provider-password",
        "esv-from",
        "esv-domain",
        "esv-brand",
    }
    assert len(index) == 2
    for text in (FULL, "variables: {esv-brand: x}", "variables: {esv-spare: x}"):
        file = env(text)
        assert check_environment(CONFIG, file, index=index) == check_environment(CONFIG, file)
    assert index.referencing(["esv-brand", "esv-domain"]) == {
        "emailTemplate/welcome",
        "external.email",
    }
    assert index.referencing(["esv-unknown"]) == set()


def test_index_reuse_reads_only_what_differs() -> None:
    index = build_index(CONFIG)
    assert build_index(dict(CONFIG), reuse=index) is index
    changed = {**CONFIG, "emailTemplate/welcome": {"subject": "&{esv.other}"}}
    again = build_index(changed, reuse=index)
    assert again is not index
    assert again.esv_ids == (index.esv_ids - {"esv-brand"}) | {"esv-other"}
    subset = {"emailTemplate/welcome": CONFIG["emailTemplate/welcome"]}
    assert build_index(subset, reuse=index).esv_ids == {"esv-brand"}


def test_objects_with_equal_summaries_share_one_and_are_found_in_order() -> None:
    objects = {
        "a": {"host": "&{esv.h}"},
        "b": {"x": 1},
        "c": {"other": "&{esv.h}"},  # a summary equal to a's: the check reads it once
        "d": {"port": {"$int": "&{esv.p}"}},
    }
    index = build_index(objects)
    assert index._sums[0] is index._sums[2]
    assert len({id(summary) for summary in index._sums}) == 3
    assert index.positions(index._by_esv["esv-h"]) == [0, 2]
    assert index.positions([]) == []
    assert index.referencing(["esv-h", "esv-p"]) == {"a", "c", "d"}
    # Reused for one changed object: its new summary joins the instance already there.
    again = build_index({**objects, "b": {"y": "&{esv.h}"}}, reuse=index)
    assert again._sums[1] is again._sums[0] is index._sums[0]
    assert again.referencing(["esv-h"]) == {"a", "b", "c"}


def test_index_of_other_objects_is_refused() -> None:
    with pytest.raises(ValueError, match="other config objects"):
        check_environment({"o": "x"}, env(FULL), index=build_index(CONFIG))


def _walk(document: Any) -> Iterator[tuple[str, Any, tuple[str | int, ...], str | None]]:
    """Every node, as the check walked them before the index (the oracle's walk)."""
    stack: list[tuple[Any, tuple[str | int, ...], str | None]] = [(document, (), None)]
    while stack:
        node, parts, wrapper = stack.pop()
        if isinstance(node, str):
            yield "string", node, parts, wrapper
        elif isinstance(node, dict):
            typed = wrapper_of(node)
            if typed is not None:
                yield "wrapper", node, parts, wrapper
                stack.append((typed[1], parts, typed[0]))
                continue
            for key, value in reversed(list(node.items())):
                stack.append((value, (*parts, key), None))
        elif isinstance(node, list):
            for index in range(len(node) - 1, -1, -1):
                stack.append((node[index], (*parts, index), None))


def _oracle(objects: Mapping[str, Any], file: EnvironmentFile) -> list[Problem]:
    """The check without an index: every string of every object, in order."""
    check = ObjectCheck.of(file)
    for object_id, document in objects.items():
        for kind, node, parts, wrapper in _walk(document):
            path = json_path(parts)
            if kind == "wrapper":
                if wrapper is None:
                    check.wrapped(node, object_id, path)
                continue
            if "&" not in node:
                continue
            segments = parse(node)
            check.invalid(node, object_id, path)
            check.missing(segments, object_id, path)
            if wrapper is None:
                check.bare(segments, object_id, path)
    for esv_id in [*file.variables, *file.secrets]:
        if esv_id not in check.used:
            kind = "variables" if esv_id in file.variables else "secrets"
            check.problems.append(
                Problem(
                    file.relpath,
                    f"{kind}.{esv_id}",
                    "is defined but no config object references it",
                    severity="warning",
                    esv_id=esv_id,
                )
            )
    return check.problems


IDS = ["a", "b", "c", "d", "e"]
esv_token = st.sampled_from(IDS).map(lambda n: "&{esv." + n + "}")
piece = st.one_of(
    esv_token,
    st.tuples(st.sampled_from(IDS), esv_token | st.sampled_from(["7", "x", "true", ""])).map(
        lambda t: "&{esv." + t[0] + "|" + t[1] + "}"
    ),
    st.sampled_from(
        ["lit", "1", "&{esv.my-var}", "&{${dir}}", "&{platform.key}", "& ", "&<esv.a>"]
    ),
)
text = st.lists(piece, min_size=1, max_size=3).map("".join)
wrapper_key = st.sampled_from(
    ["$string", "$int", "$number", "$bool", "$list", "$array", "$object", "$base64:decode"]
)
leaf = text | st.sampled_from(["plain", 5, True, None])
wrapped = st.recursive(
    st.tuples(wrapper_key, text | st.sampled_from(["abc", "12", '["x"]'])),
    lambda inner: st.tuples(wrapper_key, inner),
    max_leaves=3,
).map(lambda t: _unfold(t))
keys = st.sampled_from(["k", "a.b", "", "x y", "$int", "n1"])
document = st.recursive(
    leaf | wrapped,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(keys, children, max_size=3)
        | st.tuples(wrapper_key, children).map(lambda t: {t[0]: t[1]})
    ),
    max_leaves=8,
)


def _unfold(pair: tuple[str, Any]) -> dict[str, Any]:
    key, inner = pair
    return {key: _unfold(inner) if isinstance(inner, tuple) else inner}


variable = st.tuples(
    st.sampled_from(["string", "int", "bool", "list", "number"]),
    st.sampled_from(["7", "x", "true", "a,b", '["x"]', "1.5"]),
)
environment = st.dictionaries(
    st.sampled_from([*IDS, "spare"]), variable | st.just(None), max_size=6
).map(
    lambda chosen: replace(
        env(""),
        variables={f"esv-{n}": Variable(f"esv-{n}", v[1], v[0]) for n, v in chosen.items() if v},
        secrets={
            f"esv-{n}": Secret(f"esv-{n}", SecretSource("env", "S"))
            for n, v in chosen.items()
            if v is None
        },
    )
)
configs = st.dictionaries(st.sampled_from(["o1", "o2", "o3", "o4"]), document, max_size=4)


@settings(max_examples=300, deadline=None)
@given(configs, configs, st.lists(environment, min_size=1, max_size=3))
def test_indexed_check_is_the_walk_of_every_string(
    objects: dict[str, Any], other: dict[str, Any], files: list[EnvironmentFile]
) -> None:
    index = build_index(objects)
    # Reused from an index of other objects: only the objects that differ are read again.
    mixed = {**other, **{key: value for key, value in objects.items() if key in other}}
    partial = build_index(objects, reuse=build_index(mixed))
    for file in files:
        expected = _oracle(objects, file)
        assert check_environment(objects, file) == expected
        assert check_environment(objects, file, index=index) == expected
        assert check_environment(objects, file, index=partial) == expected


plain = st.recursive(
    st.sampled_from(["plain", "a$b", "$", "x&", 5, True, None, 1.5]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=3),
    max_leaves=8,
)


@settings(max_examples=400, deadline=None)
@given(document | plain)
def test_a_summary_told_from_the_canonical_json_is_the_walks(document: Any) -> None:
    told = summarise(document, canonical_bytes(document))
    assert astuple(told) == astuple(summarise(document))


def test_a_summary_is_told_from_the_text_when_nothing_in_it_can_matter() -> None:
    # No "&" and no string starting with "$" (a wrapper's key): nothing to find, no walk.
    for document in [{"a": {"b": ["x", 1]}}, {"k": "a$b"}, {"k": "price: 5$"}, [], "x"]:
        told = summarise(document, canonical_bytes(document))
        assert astuple(told) == ((), (), (), False, (), ())
    # Otherwise the document is walked: what the text shows is only a first look.
    assert summarise({"k": "&{esv.a}"}, canonical_bytes({"k": "&{esv.a}"})).ids == ("esv-a",)
    assert summarise({"$int": "abc"}, canonical_bytes({"$int": "abc"})).fixed
