"""Which ESVs each config object references, where, and whether that environment has them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from esv.conversions import wrapper_of
from esv.envfile import EnvironmentFile
from esv.errors import Problem
from esv.placeholders import Placeholder, Segment, parse
from esv.resolver import json_path

__all__ = ["Reference", "check_environment", "index_references"]


@dataclass(frozen=True)
class Reference:
    """One ``&{esv.x}`` in one config object: JSON path, ESV id, defaulted, enclosing wrapper."""

    object_id: str
    path: str
    esv_id: str
    defaulted: bool
    wrapper: str | None


def _segments_refs(
    segments: tuple[Segment, ...], object_id: str, path: str, wrapper: str | None
) -> list[Reference]:
    found: list[Reference] = []
    for segment in segments:
        if isinstance(segment, Placeholder):
            if segment.esv_id is not None:
                found.append(
                    Reference(object_id, path, segment.esv_id, segment.default is not None, wrapper)
                )
            if segment.default is not None:
                found.extend(_segments_refs(segment.default, object_id, path, wrapper))
    return found


def index_references(objects: Mapping[str, Any]) -> list[Reference]:
    """Every ESV reference of every object, in object then document order."""
    found: list[Reference] = []
    for object_id, document in objects.items():
        stack: list[tuple[Any, tuple[str | int, ...], str | None]] = [(document, (), None)]
        while stack:
            node, parts, wrapper = stack.pop()
            if isinstance(node, str):
                if "&" in node:
                    found.extend(_segments_refs(parse(node), object_id, json_path(parts), wrapper))
            elif isinstance(node, dict):
                typed = wrapper_of(node)
                if typed is not None:
                    stack.append((typed[1], parts, typed[0]))
                    continue
                for key, value in reversed(list(node.items())):
                    stack.append((value, (*parts, key), None))
            elif isinstance(node, list):
                for index in range(len(node) - 1, -1, -1):
                    stack.append((node[index], (*parts, index), None))
    return found


def check_environment(objects: Mapping[str, Any], env: EnvironmentFile) -> list[Problem]:
    """Referenced vs defined for one environment: missing ESVs (errors), unused (warnings)."""
    defined = set(env.variables) | set(env.secrets)
    problems: list[Problem] = []
    used: set[str] = set()
    for ref in index_references(objects):
        used.add(ref.esv_id)
        if ref.esv_id not in defined and not ref.defaulted:
            problems.append(
                Problem(
                    ref.object_id,
                    ref.path,
                    f"ESV {ref.esv_id} is not defined in {env.relpath}",
                    esv_id=ref.esv_id,
                )
            )
    for esv_id in sorted(defined - used):
        problems.append(
            Problem(
                env.relpath,
                esv_id,
                "defined but not referenced by any config object",
                severity="warning",
                esv_id=esv_id,
            )
        )
    return problems
