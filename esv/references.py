"""Which ESVs each config object references, where, and whether an environment has them.

:func:`index_references` answers *where is each ESV used* (``esv usage``, the engine's
preflight); :func:`check_environment` answers *can this environment run this config*
(``esv check``, ``validate``) without reading any secret value.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from esv.conversions import (
    WRAPPER_FOR_TYPE,
    ConversionError,
    as_text,
    convert,
    innermost_text,
    wrapper_of,
)
from esv.envfile import EnvironmentFile
from esv.errors import MISSING_ESV, Problem
from esv.ids import is_valid_id
from esv.placeholders import Placeholder, Segment, invalid_tokens, parse
from esv.resolver import json_path

__all__ = ["Reference", "check_environment", "index_references"]

_TYPED_WRAPPERS = frozenset({"$string", "$int", "$number", "$bool", "$list", "$array", "$object"})


@dataclass(frozen=True)
class Reference:
    """One ``&{esv.x}`` in one config object.

    ``path`` is the JSON path of the string (of the wrapper object when wrapped);
    ``defaulted`` is true when the placeholder has a ``|default``; ``wrapper`` is the
    innermost typed wrapper around it (``$int``) or ``None``. Placeholders inside a default
    are listed too, with their own ``defaulted``.
    """

    object_id: str
    path: str
    esv_id: str
    defaulted: bool
    wrapper: str | None


_Node = tuple[Any, tuple[str | int, ...], str | None]


def _nodes(document: Any) -> Iterator[tuple[str, Any, tuple[str | int, ...], str | None]]:
    """``(kind, node, path, wrapper)`` in document order; kind is ``string`` or ``wrapper``.

    Iterative, so any depth is fine.
    """
    stack: list[_Node] = [(document, (), None)]
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


def _placeholders(segments: Sequence[Segment]) -> Iterator[Placeholder]:
    for segment in segments:
        if isinstance(segment, Placeholder):
            yield segment
            if segment.default is not None:
                yield from _placeholders(segment.default)


def index_references(objects: Mapping[str, Any]) -> list[Reference]:
    """Every ESV reference of every object, in object then document order."""
    found: list[Reference] = []
    for object_id, document in objects.items():
        for kind, node, parts, wrapper in _nodes(document):
            if kind != "string" or "&" not in node:
                continue
            path = json_path(parts)
            for placeholder in _placeholders(parse(node)):
                if placeholder.esv_id is not None:
                    found.append(
                        Reference(
                            object_id,
                            path,
                            placeholder.esv_id,
                            placeholder.default is not None,
                            wrapper,
                        )
                    )
    return found


class _Unknown:
    """A value that cannot be known statically (it derives from a secret, or is missing)."""


_UNKNOWN = _Unknown()


class _Check:
    """One environment's check over all objects."""

    def __init__(self, env: EnvironmentFile) -> None:
        self.env = env
        self.problems: list[Problem] = []
        self.used: set[str] = set()

    def missing(self, segments: Sequence[Segment], object_id: str, path: str) -> None:
        """Errors for undefined ESVs without default; defaults are checked only when used."""
        env = self.env
        for segment in segments:
            if not isinstance(segment, Placeholder) or segment.esv_id is None:
                continue
            esv_id = segment.esv_id
            self.used.add(esv_id)
            if esv_id in env.variables or esv_id in env.secrets:
                if segment.default is not None:
                    self.used.update(p.esv_id for p in _placeholders(segment.default) if p.esv_id)
                continue
            if segment.default is not None:
                self.missing(segment.default, object_id, path)
                continue
            hint = f"add it under variables: or secrets: in {env.relpath}, or give a default"
            if not is_valid_id(esv_id):
                hint = f"{esv_id} is not a valid ESV id; ESV tokens are lower case: esv.a.b"
            self.problems.append(
                Problem(
                    object_id,
                    path,
                    f"{segment.raw}: ESV {esv_id} is not defined in {env.relpath}",
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
            elif segment.esv_id in self.env.variables:
                parts.append(self.env.variables[segment.esv_id].value)
            elif segment.esv_id in self.env.secrets:
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
            ids = [p.esv_id for p in _placeholders(parse(innermost_text(inner)))]
            source = f" (from {', '.join(i for i in ids if i)})" if any(ids) else ""
            self.problems.append(
                Problem(
                    object_id,
                    path,
                    f"{key} of {json.dumps(text)}{source}: {error}",
                    esv_id=next((i for i in ids if i), None),
                    hint=f"fix the value in {self.env.relpath} or the wrapper",
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
        variable = self.env.variables.get(segment.esv_id)
        if variable is None or wrapper in WRAPPER_FOR_TYPE.get(variable.type, frozenset()):
            return
        self.problems.append(
            Problem(
                object_id,
                path,
                f"{wrapper} over {variable.id}, which {self.env.relpath} declares {variable.type}",
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
        variable = self.env.variables.get(segment.esv_id or "")
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


def check_environment(objects: Mapping[str, Any], env: EnvironmentFile) -> list[Problem]:
    """Referenced vs defined for one environment, without reading secrets.

    Errors: an ESV referenced without default that ``env`` does not define; a wrapper whose
    statically known text cannot convert (``$int`` of ``abc``). Warnings: a wrapper that differs
    from the ESV's declared type, a non-string ESV used as bare text, text after ``&{`` that
    is not a placeholder, and ESVs ``env`` defines that no object references.
    """
    check = _Check(env)
    for object_id, document in objects.items():
        for kind, node, parts, wrapper in _nodes(document):
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
    defined = [*env.variables, *env.secrets]
    for esv_id in defined:
        if esv_id not in check.used:
            kind = "variables" if esv_id in env.variables else "secrets"
            check.problems.append(
                Problem(
                    env.relpath,
                    f"{kind}.{esv_id}",
                    "is defined but no config object references it",
                    severity="warning",
                    esv_id=esv_id,
                )
            )
    return check.problems
