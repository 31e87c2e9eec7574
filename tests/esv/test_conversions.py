from __future__ import annotations

import pytest

from esv.conversions import TYPES, ConversionError, as_text, check_type, convert, wrapper_of


@pytest.mark.parametrize(
    ("wrapper", "text", "expected"),
    [
        ("$string", "x", "x"),
        ("$int", "587", 587),
        ("$int", "-3", -3),
        ("$number", "1.5", 1.5),
        ("$number", "10", 10),
        ("$number", "1e3", 1000.0),
        ("$bool", "TRUE", True),
        ("$bool", "False", False),
        ("$list", "a, b,c", ["a", "b", "c"]),
        ("$list", "", []),
        ("$array", '["a", 1]', ["a", 1]),
        ("$object", '{"en": "x"}', {"en": "x"}),
        ("$base64:decode", "aGVsbG8=", "hello"),
        ("$base64:encode", "hello", "aGVsbG8="),
    ],
)
def test_convert(wrapper: str, text: str, expected: object) -> None:
    assert convert(wrapper, text) == expected


@pytest.mark.parametrize(
    ("wrapper", "text"),
    [
        ("$int", "abc"),
        ("$int", "5.0"),
        ("$int", " 5"),
        ("$int", "5_000"),
        ("$number", "nan"),
        ("$number", "inf"),
        ("$bool", "yes"),
        ("$bool", "1"),
        ("$array", '{"a": 1}'),
        ("$array", "[1,"),
        ("$object", "[]"),
        ("$base64:decode", "not base64!"),
        ("$base64:decode", "//79"),
    ],
)
def test_convert_refuses(wrapper: str, text: str) -> None:
    with pytest.raises(ConversionError):
        convert(wrapper, text)


def test_charset() -> None:
    assert convert("$base64:encode", "é", "latin-1") == "6Q=="
    assert convert("$base64:decode", "6Q==", "latin-1") == "é"
    with pytest.raises(ConversionError, match="charset"):
        convert("$base64:encode", "x", "no-such-charset")


@pytest.mark.parametrize(
    ("type_", "good", "bad"),
    [
        ("int", "465", "58x"),
        ("number", "1.10", "1.1.1"),
        ("bool", "true", "yes"),
        ("array", "[]", "a,b"),
        ("object", "{}", "[]"),
        ("keyvaluelist", '{"k": "v"}', "k=v"),
        ("base64encodedinlined", "aGVsbG8=", "hello!"),
    ],
)
def test_check_type(type_: str, good: str, bad: str) -> None:
    assert check_type(type_, good) is None
    assert check_type(type_, bad)


def test_string_and_list_accept_any_text() -> None:
    for type_ in ("string", "list"):
        assert check_type(type_, "anything, at all") is None
    assert set(TYPES) >= {"string", "keyvaluelist", "base64encodedinlined"}
    assert check_type("float", "1")


def test_wrapper_of() -> None:
    assert wrapper_of({"$int": "x"}) == ("$int", "x", None)
    assert wrapper_of({"$base64:decode": "x", "$charset": "utf-8"}) == (
        "$base64:decode",
        "x",
        "utf-8",
    )
    assert wrapper_of({"$int": "x", "$charset": "utf-8"}) is None
    assert wrapper_of({"$crypto": {}}) is None
    assert wrapper_of({"a": 1}) is None


def test_as_text() -> None:
    assert as_text(True) == "true"
    assert as_text(5) == "5"
    assert as_text(["a"]) == '["a"]'
    assert as_text(None) == "null"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2147483647", 2147483647),
        ("-2147483648", -2147483648),
        ("+0002147483647", 2147483647),
        ("0000000000000000000000001", 1),
    ],
)
def test_int_range_edges(text: str, expected: int) -> None:
    assert convert("$int", text) == expected
    assert check_type("int", text) is None


@pytest.mark.parametrize(
    "text", ["2147483648", "-2147483649", "99999999999999999999", "9" * 5000, "-0" + "9" * 11]
)
def test_int_is_a_java_integer(text: str) -> None:
    with pytest.raises(ConversionError, match=r"is outside -2147483648\.\.2147483647"):
        convert("$int", text)
    assert "the range of an int (a Java Integer)" in str(check_type("int", text))
    if len(text) < 100:  # $number has no such limit
        assert convert("$number", text) == int(text)
        assert check_type("number", text) is None


def test_numbers_json_cannot_hold_are_errors_not_crashes() -> None:
    with pytest.raises(ConversionError, match="more than 4300 digits"):
        convert("$number", "9" * 5000)
    assert check_type("number", "9" * 5000) == "has more than 4300 digits"
    for text in ("1e999", "-1e999"):
        with pytest.raises(ConversionError, match="beyond the range of a number"):
            convert("$number", text)
