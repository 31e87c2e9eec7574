"""ESV value types (``expressionType``) and the typed wrappers that convert text in config.

Both the environment-file check (``type: int`` with value ``"58x"``) and the resolver's
wrappers (``{"$int": "&{esv.x}"}``) use the same parsers, so a value accepted by one is
accepted by the other.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import json
import math
import re
import sys
from typing import Any

__all__ = [
    "INT_MAX",
    "INT_MIN",
    "TYPES",
    "WRAPPERS",
    "WRAPPER_FOR_TYPE",
    "ConversionError",
    "as_text",
    "check_type",
    "convert",
    "innermost_text",
    "wrapper_of",
]

TYPES: tuple[str, ...] = (
    "string",
    "int",
    "number",
    "bool",
    "list",
    "array",
    "object",
    "base64encodedinlined",
    "keyvaluelist",
)
"""ESV ``expressionType`` values."""

WRAPPERS: frozenset[str] = frozenset(
    {
        "$string",
        "$int",
        "$number",
        "$bool",
        "$list",
        "$array",
        "$object",
        "$base64:decode",
        "$base64:encode",
    }
)
"""Typed wrapper keys: a single-key object replaced by its converted value."""

_CHARSET_WRAPPERS = frozenset({"$base64:decode", "$base64:encode"})

WRAPPER_FOR_TYPE: dict[str, frozenset[str]] = {
    "string": frozenset({"$string"}),
    "int": frozenset({"$int"}),
    "number": frozenset({"$number", "$int"}),
    "bool": frozenset({"$bool"}),
    "list": frozenset({"$list"}),
    "array": frozenset({"$array"}),
    "object": frozenset({"$object"}),
    "keyvaluelist": frozenset({"$object"}),
    "base64encodedinlined": frozenset({"$base64:decode"}),
}
"""Wrappers that match an ESV's declared type (anything else is a mismatch warning)."""

_INT = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


class ConversionError(ValueError):
    """Text that cannot be read as the requested type; the message names the type only."""


def _json(text: str, kind: type, noun: str) -> Any:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise ConversionError(f"is not a JSON {noun}") from None
    if not isinstance(value, kind):
        raise ConversionError(f"is not a JSON {noun}")
    return value


INT_MIN = -(2**31)
INT_MAX = 2**31 - 1
"""The platform's ``$int`` (and ``type: int``) is a Java Integer: 32 bits, signed."""


def _int(text: str) -> int:
    if _INT.fullmatch(text) is None:
        raise ConversionError("is not an int")
    if len(text) > 12:  # any int in range has at most 10 digits, a sign and leading zeros
        stripped = text.lstrip("+-").lstrip("0")
        if len(stripped) > 10:
            raise ConversionError(_OUT_OF_RANGE)
    value = int(text)
    if not INT_MIN <= value <= INT_MAX:
        raise ConversionError(_OUT_OF_RANGE)
    return value


_MAX_DIGITS = sys.get_int_max_str_digits() or 4300

_OUT_OF_RANGE = (
    f"is outside {INT_MIN}..{INT_MAX}, the range of an int (a Java Integer); "
    "$number and type number have no such limit"
)


def _number(text: str) -> int | float:
    if _NUMBER.fullmatch(text) is None:
        raise ConversionError("is not a number")
    if _INT.fullmatch(text):
        try:
            return int(text)
        except ValueError:  # beyond Python's digit limit for int(): JSON could not hold it
            raise ConversionError(f"has more than {_MAX_DIGITS} digits") from None
    value = float(text)
    if value in (math.inf, -math.inf):  # JSON has no Infinity
        raise ConversionError("is beyond the range of a number (about 1.8e308)")
    return value


def _bool(text: str) -> bool:
    lowered = text.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    raise ConversionError("is not a bool (true or false, any case)")


def _list(text: str) -> list[str]:
    if text == "":
        return []
    return [item.strip() for item in text.split(",")]


def _codec(charset: str | None) -> str:
    name = charset or "utf-8"
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise ConversionError(f"names an unknown $charset {name!r}") from None


def _b64decode(text: str, charset: str | None) -> str:
    codec = _codec(charset)
    if _BASE64.fullmatch(text) is None:
        raise ConversionError("is not valid base64")
    try:
        return base64.b64decode(text, validate=True).decode(codec)
    except (binascii.Error, UnicodeDecodeError):
        raise ConversionError(f"is not base64 of {codec} text") from None


def _b64encode(text: str, charset: str | None) -> str:
    codec = _codec(charset)
    try:
        return base64.b64encode(text.encode(codec)).decode("ascii")
    except UnicodeEncodeError:
        raise ConversionError(f"cannot be encoded as {codec}") from None


def as_text(value: Any) -> str:
    """The text a nested wrapper's result is read as by the wrapper around it."""
    if isinstance(value, str):
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, separators=(",", ":"))


def convert(wrapper: str, text: str, charset: str | None = None) -> Any:
    """The value ``{wrapper: text}`` stands for. Raises :class:`ConversionError`."""
    if wrapper == "$string":
        return text
    if wrapper == "$int":
        return _int(text)
    if wrapper == "$bool":
        return _bool(text)
    if wrapper == "$number":
        return _number(text)
    if wrapper == "$list":
        return _list(text)
    if wrapper == "$array":
        return _json(text, list, "array")
    if wrapper == "$object":
        return _json(text, dict, "object")
    if wrapper == "$base64:decode":
        return _b64decode(text, charset)
    if wrapper == "$base64:encode":
        return _b64encode(text, charset)
    raise ConversionError(f"unknown wrapper {wrapper}")


def check_type(expression_type: str, text: str) -> str | None:
    """``None`` when ``text`` is a valid value of ``expression_type``, else why not."""
    try:
        if expression_type == "string" or expression_type == "list":
            return None
        if expression_type == "int":
            _int(text)
        elif expression_type == "number":
            _number(text)
        elif expression_type == "bool":
            _bool(text)
        elif expression_type == "array":
            _json(text, list, "array")
        elif expression_type in ("object", "keyvaluelist"):
            _json(text, dict, "object")
        elif expression_type == "base64encodedinlined":
            if _BASE64.fullmatch(text) is None:
                raise ConversionError("is not valid base64")
        else:
            return f"has unknown type {expression_type!r}"
    except ConversionError as error:
        return str(error)
    return None


def wrapper_of(node: dict[str, Any]) -> tuple[str, Any, str | None] | None:
    """``(wrapper, inner, charset)`` when ``node`` is a typed wrapper object, else None.

    A wrapper is a single-key object whose key is in :data:`WRAPPERS`; the base64 wrappers
    may carry a ``$charset`` sibling.
    """
    size = len(node)
    if size == 1:
        ((key, inner),) = node.items()
        if key in WRAPPERS:
            return key, inner, None
        return None
    if size == 2 and "$charset" in node:
        for key, inner in node.items():
            if key in _CHARSET_WRAPPERS:
                charset = node["$charset"]
                return key, inner, charset if isinstance(charset, str) else None
    return None


def innermost_text(node: Any) -> str:
    """The text at the bottom of nested wrappers (``""`` when there is none)."""
    while isinstance(node, dict):
        typed = wrapper_of(node)
        if typed is None:
            return ""
        node = typed[1]
    return node if isinstance(node, str) else ""
