from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from esv.envfile import EnvironmentFile, parse_environment
from esv.errors import MISSING_ESV, ResolutionError
from esv.references import Reference, check_environment, index_references
from esv.resolver import EsvValue, resolve

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
