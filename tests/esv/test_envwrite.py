"""Writing environment files (imports and pulls): rendered or edited text reads back as
exactly the data written; secrets' platform settings and base64 sources."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from esv.envfile import Secret, SecretSource, Variable, parse_environment, read_secrets
from esv.envwrite import edit_environment, render_environment, secret_data, variable_data
from esv.errors import EnvironmentFileError

# Any text a variable may hold: every Unicode scalar value but the lone surrogates.
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
IDS = st.from_regex(r"esv-[a-z0-9_-]{1,20}", fullmatch=True)
TYPED = st.sampled_from(["string", "int", "bool"]).flatmap(
    lambda kind: st.builds(
        lambda value: (value, kind),
        TEXT
        if kind == "string"
        else st.sampled_from(["0", "587", "-3"] if kind == "int" else ["true", "False"]),
    )
)


def parse(text: str):  # type: ignore[no-untyped-def]
    return parse_environment(text, name="dev", path=Path("dev.yaml"), relpath="dev.yaml")


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(IDS, TYPED, max_size=6), TEXT)
def test_a_rendered_file_reads_back_as_the_same_values(
    values: dict[str, tuple[str, str]], description: str
) -> None:
    variables = {k: variable_data(Variable(k, v, t)) for k, (v, t) in values.items()}
    text = render_environment(
        {"description": description, "tenant": {"kind": "local"}, "variables": variables}
    )
    parsed = parse(text)
    assert parsed.description == description
    assert {k: (v.value, v.type) for k, v in parsed.variables.items()} == values


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(IDS, TYPED, max_size=6), st.dictionaries(IDS, TYPED, max_size=6))
def test_an_edited_file_reads_back_with_old_and_new_values(
    old: dict[str, tuple[str, str]], new: dict[str, tuple[str, str]]
) -> None:
    text = render_environment(
        {"variables": {k: variable_data(Variable(k, v, t)) for k, (v, t) in old.items()}},
        header="a comment the edit keeps",
    )
    edited = edit_environment(
        text, "variables", {k: variable_data(Variable(k, v, t)) for k, (v, t) in new.items()}
    )
    assert edited.startswith("# a comment the edit keeps\n")
    parsed = parse(edited)
    assert {k: (v.value, v.type) for k, v in parsed.variables.items()} == {**old, **new}


def test_an_edit_keeps_every_other_line() -> None:
    text = (
        "# staging\n"
        "tenant:\n  kind: local   # embedded\n"
        "variables:\n"
        "  esv-a: one   # keep this note\n"
        "  esv-b:\n    value: '2'\n    type: int\n"
        "  # a comment between entries\n"
        "  esv-c: three\n"
        "\n"
        "secrets: {}\n"
    )
    edited = edit_environment(text, "variables", {"esv-b": {"value": "5", "type": "int"}})
    edited = edit_environment(edited, "secrets", {"esv-s": {"env": "S"}}, remove=["esv-c"])
    assert edited == (
        "# staging\n"
        "tenant:\n  kind: local   # embedded\n"
        "variables:\n"
        "  esv-a: one   # keep this note\n"
        '  esv-b: {value: "5", type: int}\n'
        "  # a comment between entries\n"
        "  esv-c: three\n"
        "\n"
        "secrets:\n"
        "  esv-s: {env: S}\n"
    )
    with pytest.raises(ValueError, match="flow style"):
        edit_environment("variables: {esv-a: b}\n", "variables", {"esv-c": "d"})


def test_secret_settings_are_read_and_written() -> None:
    secret = Secret("esv-key", SecretSource("env", "KEY"), "pem", False, True)
    text = render_environment({"secrets": {"esv-key": secret_data(secret)}})
    flow = "{env: KEY, encoding: pem, useInPlaceholders: false, base64: true}"
    assert text == f"secrets:\n  esv-key: {flow}\n"
    assert parse(text).secrets["esv-key"] == secret
    with pytest.raises(EnvironmentFileError) as caught:
        parse("secrets:\n  esv-key: {env: KEY, encoding: rsa, useInPlaceholders: maybe}\n")
    text = str(caught.value)
    assert 'secrets.esv-key.encoding: "rsa" is not a secret encoding' in text
    assert "secrets.esv-key.useInPlaceholders: 'maybe' must be true or false" in text
    with pytest.raises(ValueError, match="never written"):
        secret_data(Secret("esv-x", SecretSource("value", "")))


def test_a_base64_source_is_decoded_and_a_bad_one_named(tmp_path: Path) -> None:
    env = parse("secrets:\n  esv-a: {env: A, base64: true}\n  esv-b: {env: B, base64: true}\n")
    value = "s3cret with spaces"
    encoded = base64.b64encode(value.encode()).decode()
    with pytest.raises(EnvironmentFileError) as caught:
        read_secrets(env, workspace=tmp_path, environ={"A": encoded, "B": "not base64!"})
    assert "environment variable B is not base64 text" in str(caught.value)
    assert "not base64!" not in str(caught.value)
    got = read_secrets(env, workspace=tmp_path, environ={"A": encoded, "B": encoded})
    assert got["esv-a"].reveal() == value


def test_a_secret_kept_out_of_placeholders_cannot_be_referenced() -> None:
    from esv.encrypted import encrypted_values
    from esv.references import check_environment

    env = parse(
        "secrets:\n"
        "  esv-label-key: {env: K, encoding: pem, useInPlaceholders: false}\n"
        "  esv-unused-label: {env: U, useInPlaceholders: false}\n"
    )
    problems = check_environment({"external.email": {"key": "&{esv.label.key}"}}, env)
    (problem,) = problems  # the unused label secret is not "unused": labels use it
    assert problem.severity == "error"
    assert "useInPlaceholders: false, yet config references it (external.email)" in str(problem)
    (warning,) = encrypted_values({"external.email": {"auth": {"password": {"$crypto": {}}}}})
    assert str(warning).startswith("external.email: auth.password: holds a value IDM encrypted")
    assert '"&{esv.email.provider.password}"' in str(warning)
