"""What the sandbox server hands to an environment's API, and what it gets back."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["Api", "SandboxRequest", "SandboxResponse", "error", "match"]


@dataclass(frozen=True)
class SandboxRequest:
    """One HTTP request, its path relative to the environment's prefix (``/environment/...``)."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    """Lower-case header names."""
    body: bytes = b""
    json: Any = None
    """The parsed JSON body, ``None`` when the body is empty or not JSON."""

    def param(self, name: str, default: str | None = None) -> str | None:
        """The first value of query parameter ``name``."""
        values = self.query.get(name)
        return values[0] if values else default


@dataclass(frozen=True)
class SandboxResponse:
    """A JSON response; ``json`` ``None`` sends an empty body."""

    status: int
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


class Api(Protocol):
    """An environment's API: answers a request, or ``None`` when no route matches (404)."""

    def handle(self, request: SandboxRequest) -> SandboxResponse | None:
        """Answer ``request``."""
        ...

    def close(self) -> None:
        """Release files and connections."""
        ...


def match(pattern: str, path: str) -> dict[str, str] | None:
    """Match ``path`` against ``pattern`` with ``{name}`` (one segment) and ``{name+}`` (rest)."""
    regex = re.sub(r"\{(\w+)\+\}", r"(?P<\1>.+)", pattern)
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", regex)
    found = re.fullmatch(regex, path)
    return found.groupdict() if found else None


def error(code: int, message: str, **extra: Any) -> SandboxResponse:
    """An AIC-shaped error body ``{"code", "message"}`` with HTTP status ``code``."""
    return SandboxResponse(code, {"code": code, "message": message, **extra})
