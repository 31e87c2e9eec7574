"""``.env`` files as fr-config-manager reads them: ``NAME=value`` per line, ``#`` comments."""

from __future__ import annotations

import re
from pathlib import Path

from esv.errors import Problem

__all__ = ["read_dotenv"]

_LINE = re.compile(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}


def _unquote(raw: str) -> str:
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] == "'":
        return raw[1:-1]
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(0)), raw[1:-1])
    # An unquoted value ends at a comment that follows whitespace.
    return re.split(r"\s+#", raw, maxsplit=1)[0].strip()


def read_dotenv(path: Path, *, shown: str) -> tuple[dict[str, str], list[Problem]]:
    """The variables of a ``.env`` file, and a problem per line it cannot read (naming the
    line, never its text: a line may hold a secret)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return {}, [Problem(shown, "", "is not UTF-8 text")]
    except OSError as error:
        return {}, [Problem(shown, "", f"cannot be read: {error.strerror}")]
    values: dict[str, str] = {}
    problems: list[Problem] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _LINE.fullmatch(stripped)
        if match is None:
            problems.append(
                Problem(shown, f"line {number}", "is not NAME=value", hint="fix or remove the line")
            )
            continue
        values[match.group(1)] = _unquote(match.group(2))
    return values, problems
