"""One config object walked the way a reference check reads it: the strings that can hold a
placeholder and the typed wrappers (:func:`walk_nodes`), and every problem one environment
finds there (:class:`ObjectCheck`): ESVs not defined, tokens that are not placeholders,
non-text ESVs used as text, wrappers whose known text cannot convert."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any

from esv.conversions import (
    WRAPPER_FOR_TYPE,
    ConversionError,
    as_text,
    convert,
    innermost_text,
    wrapper_of,
)
from esv.envfile import EnvironmentFile, Variable
from esv.errors import MISSING_ESV, Problem
from esv.ids import is_valid_id
from esv.placeholders import Placeholder, Segment, invalid_tokens, parse
from esv.resolver import json_path

__all__ = ["ObjectCheck", "nested_placeholders", "walk_nodes"]

_TYPED_WRAPPERS = frozenset({"$string", "$int", "$number", "$bool", "$list", "$array", "$object"})


_Node = tuple[Any, str, str | None]


def walk_nodes(document: Any) -> Iterator[_Node]:
    """``(node, path, wrapper)`` in document order for the nodes a check reads: strings
    holding ``&`` (others hold no placeholder and no invalid token) and typed wrapper objects.

    ``path`` is the node's JSON path (:func:`esv.resolver.json_path`); ``wrapper`` is the key
    of the wrapper directly around the node, or ``None``. Iterative, so any depth is fine.
    """
    stack: list[_Node] = [(document, "", None)]
    while stack:
        node, path, wrapper = stack.pop()
        if isinstance(node, str):
            if "&" in node:
                yield node, path, wrapper
        elif isinstance(node, dict):
            typed = wrapper_of(node)
            if typed is not None:
                yield node, path, wrapper
                stack.append((typed[1], path, typed[0]))
                continue
            for key, value in reversed(node.items()):
                if isinstance(value, str) and "&" not in value:
                    continue
                if isinstance(value, str | dict | list):
                    step = _key_step(key)
                    if not path and step[0] == ".":
                        step = step[1:]
                    stack.append((value, path + step, None))
        elif isinstance(node, list):
            for index in range(len(node) - 1, -1, -1):
                value = node[index]
                if isinstance(value, str) and "&" not in value:
                    continue
                if isinstance(value, str | dict | list):
                    stack.append((value, f"{path}[{index}]", None))


@lru_cache(maxsize=65536)
def _key_step(key: str) -> str:
    """What ``key`` adds to a JSON path: ``.key``, or ``["a.b"]`` when not a plain word."""
    step = json_path((key,))
    return step if step.startswith("[") else "." + step


def nested_placeholders(segments: Sequence[Segment]) -> Iterator[Placeholder]:
    for segment in segments:
        if isinstance(segment, Placeholder):
            yield segment
            if segment.default is not None:
                yield from nested_placeholders(segment.default)


class _Unknown:
    """A value that cannot be known statically (it derives from a secret, or is missing)."""


_UNKNOWN = _Unknown()


class ObjectCheck:
    """One environment's check over all objects."""

    def __init__(
        self, variables: Mapping[str, Variable], secrets: Mapping[str, object], relpath: str
    ) -> None:
        self.variables = variables
        self.secrets = secrets
        self.relpath = relpath
        self.problems: list[Problem] = []
        self.used: set[str] = set()

    @classmethod
    def of(cls, env: EnvironmentFile) -> ObjectCheck:
        return cls(env.variables, env.secrets, env.relpath)

    def check(self, object_id: str, document: Any) -> None:
        """Every problem of one object, in document order (unused ESVs aside)."""
        for node, path, wrapper in walk_nodes(document):
            if not isinstance(node, str):
                if wrapper is None:
                    self.wrapped(node, object_id, path)
                continue
            segments = parse(node)
            self.invalid(node, object_id, path)
            self.missing(segments, object_id, path)
            if wrapper is None:
                self.bare(segments, object_id, path)

    def missing(self, segments: Sequence[Segment], object_id: str, path: str) -> None:
        """Errors for undefined ESVs without default; defaults are checked only when used."""
        for segment in segments:
            if not isinstance(segment, Placeholder) or segment.esv_id is None:
                continue
            esv_id = segment.esv_id
            self.used.add(esv_id)
            if esv_id in self.variables or esv_id in self.secrets:
                if segment.default is not None:
                    inner = nested_placeholders(segment.default)
                    self.used.update(p.esv_id for p in inner if p.esv_id)
                continue
            if segment.default is not None:
                self.missing(segment.default, object_id, path)
                continue
            hint = f"add it under variables: or secrets: in {self.relpath}, or give a default"
            if not is_valid_id(esv_id):
                hint = f"{esv_id} is not a valid ESV id; ESV tokens are lower case: esv.a.b"
            self.problems.append(
                Problem(
                    object_id,
                    path,
                    f"{segment.raw}: ESV {esv_id} is not defined in {self.relpath}",
                    esv_id=esv_id,
                    hint=hint,
                    code=MISSING_ESV,
                )
            )

    def text(self, segments: Sequence[Segment]) -> str | _Unknown:
        """The resolved text when it needs no secret and nothing is missing."""
        parts: list[str] = []
        for segment in segments:
            if isinstance(segment, str):
                parts.append(segment)
            elif segment.esv_id is None:
                parts.append(segment.raw)
            elif segment.esv_id in self.variables:
                parts.append(self.variables[segment.esv_id].value)
            elif segment.esv_id in self.secrets:
                return _UNKNOWN
            elif segment.default is not None:
                inner = self.text(segment.default)
                if isinstance(inner, _Unknown):
                    return inner
                parts.append(inner)
            else:
                return _UNKNOWN
        return "".join(parts)

    def wrapped(self, node: dict[str, Any], object_id: str, path: str) -> Any:
        """The wrapper's value when statically known; conversion errors and type warnings."""
        typed = wrapper_of(node)
        assert typed is not None
        key, inner, charset = typed
        text: Any
        if isinstance(inner, str):
            segments = parse(inner)
            self.mismatch(key, segments, object_id, path)
            text = self.text(segments)
        elif isinstance(inner, dict) and wrapper_of(inner) is not None:
            text = self.wrapped(inner, object_id, path)
            if not isinstance(text, _Unknown):
                text = as_text(text)
        else:
            return _UNKNOWN
        if isinstance(text, _Unknown):
            return text
        try:
            return convert(key, text, charset)
        except ConversionError as error:
            ids = [p.esv_id for p in nested_placeholders(parse(innermost_text(inner)))]
            source = f" (from {', '.join(i for i in ids if i)})" if any(ids) else ""
            self.problems.append(
                Problem(
                    object_id,
                    path,
                    f"{key} of {json.dumps(text)}{source}: {error}",
                    esv_id=next((i for i in ids if i), None),
                    hint=f"fix the value in {self.relpath} or the wrapper",
                )
            )
            return _UNKNOWN

    def mismatch(
        self, wrapper: str, segments: Sequence[Segment], object_id: str, path: str
    ) -> None:
        """Warn when a lone placeholder's declared type does not match its wrapper."""
        if wrapper not in _TYPED_WRAPPERS or len(segments) != 1:
            return
        segment = segments[0]
        if not isinstance(segment, Placeholder) or segment.esv_id is None:
            return
        variable = self.variables.get(segment.esv_id)
        if variable is None or wrapper in WRAPPER_FOR_TYPE.get(variable.type, frozenset()):
            return
        self.problems.append(
            Problem(
                object_id,
                path,
                f"{wrapper} over {variable.id}, which {self.relpath} declares {variable.type}",
                severity="warning",
                esv_id=variable.id,
                hint="make the wrapper and the ESV's type agree",
            )
        )

    def bare(self, segments: Sequence[Segment], object_id: str, path: str) -> None:
        """Warn when a non-string ESV is the whole value of a string without a wrapper."""
        if len(segments) != 1 or not isinstance(segments[0], Placeholder):
            return
        segment = segments[0]
        variable = self.variables.get(segment.esv_id or "")
        if variable is None or variable.type == "string":
            return
        wrapper = sorted(WRAPPER_FOR_TYPE[variable.type])[0]
        self.problems.append(
            Problem(
                object_id,
                path,
                f"{variable.id} is declared {variable.type} but used as text",
                severity="warning",
                esv_id=variable.id,
                hint=f'wrap it: {{"{wrapper}": "{segment.raw}"}}',
            )
        )

    def invalid(self, text: str, object_id: str, path: str) -> None:
        for token in invalid_tokens(text):
            self.problems.append(
                Problem(
                    object_id,
                    path,
                    f"{token} is not a placeholder and is left as written",
                    severity="warning",
                    hint="placeholder tokens use only letters, digits, _ and . (&{esv.a.b})",
                )
            )
