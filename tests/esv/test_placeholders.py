from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from esv.placeholders import Placeholder, invalid_tokens, normalise, normalise_document, parse


def _only(text: str) -> Placeholder:
    (segment,) = parse(text)
    assert isinstance(segment, Placeholder)
    return segment


def test_plain_text_is_one_literal() -> None:
    assert parse("hello") == ("hello",)
    assert parse("") == ()
    assert parse("a & b &") == ("a & b &",)


def test_single_placeholder() -> None:
    p = _only("&{esv.email.provider.host}")
    assert p.token == "esv.email.provider.host"
    assert p.esv_id == "esv-email-provider-host"
    assert p.default is None
    assert p.raw == "&{esv.email.provider.host}"


def test_embedded_and_multiple() -> None:
    segments = parse('"Acme" <&{esv.from}> and &{esv.b}!')
    assert segments[0] == '"Acme" <'
    assert isinstance(segments[1], Placeholder) and segments[1].esv_id == "esv-from"
    assert segments[2] == "> and "
    assert isinstance(segments[3], Placeholder) and segments[3].esv_id == "esv-b"
    assert segments[4] == "!"


def test_default_only_first_bar_splits_and_may_hold_placeholders() -> None:
    p = _only("&{esv.a|x|y}")
    assert p.default == ("x|y",)
    p = _only("&{esv.a|pre-&{esv.b|&{esv.c}}-post}")
    assert p.default is not None
    inner = p.default[1]
    assert isinstance(inner, Placeholder) and inner.esv_id == "esv-b"
    assert p.raw == "&{esv.a|pre-&{esv.b|&{esv.c}}-post}"


def test_default_braces_must_balance() -> None:
    p = _only("&{esv.a|{json}}")
    assert p.default == ("{json}",)
    assert parse("&{esv.a|{unbalanced}") == ("&{esv.a|{unbalanced}",)


def test_empty_default() -> None:
    assert _only("&{esv.a|}").default == ()


def test_platform_tokens_are_not_esv_references() -> None:
    p = _only("&{sendgrid.api.key}")
    assert p.esv_id is None
    assert _only("&{esv}").esv_id is None


def test_invalid_tokens_stay_literal_and_are_reported() -> None:
    for text in ["&{esv.my-var}", "&{${installDir}}", "&{esv.' + a + '}", "&{}", "&{esv.a"]:
        assert parse(text) == (text,)
        assert invalid_tokens(text), text
    assert invalid_tokens("&{esv.a} &{esv.b|c}") == []
    assert invalid_tokens("x &{esv.my-var} y") == ["&{esv.my-var}"]


def test_alias_is_read_and_written_back_in_brace_form() -> None:
    p = _only("&<esv.a.b>")
    assert p.esv_id == "esv-a-b"
    assert p.raw == "&{esv.a.b}"
    assert normalise("x &<esv.a|d> y") == "x &{esv.a|d} y"
    assert normalise("&<notesv>") == "&<notesv>"
    assert normalise_document({"k": ["&<esv.a>", 1]}) == {"k": ["&{esv.a}", 1]}


@given(st.text())
def test_parse_reassembles_the_text_when_no_alias(text: str) -> None:
    if "&<" in text:
        return
    joined = "".join(s if isinstance(s, str) else s.raw for s in parse(text))
    assert joined == text


_PIECES = st.sampled_from(
    ["&{", "&<", "}", ">", "{", "|", "&", "esv.", "a", "b.c", "_1", " ", "x-y", "&{esv.a}", "é"]
)


@given(st.lists(_PIECES, max_size=12).map("".join) | st.text())
def test_the_fast_parser_agrees_with_the_full_one(text: str) -> None:
    from esv.placeholders import _parse_full, _parse_plain

    if "&" not in text:
        return
    fast = _parse_plain(text)
    assert fast is None or fast == _parse_full(text)
    assert parse(text) == _parse_full(text)


def test_the_fast_parser_takes_plain_placeholders_and_leaves_the_rest() -> None:
    from esv.placeholders import _parse_plain

    assert _parse_plain("https://&{esv.h}/p?x=&{esv.q|d|e}&{esv.e|}") == (
        "https://",
        Placeholder("esv.h", None, "&{esv.h}", "esv-h"),
        "/p?x=",
        Placeholder("esv.q", ("d|e",), "&{esv.q|d|e}", "esv-q"),
        Placeholder("esv.e", (), "&{esv.e|}", "esv-e"),
    )
    for text in ("&{esv.a|&{esv.b}}", "&<esv.a>", "a & b &{esv.c}", "&{esv.a|{x}}", "&{bad-id}"):
        assert _parse_plain(text) is None
