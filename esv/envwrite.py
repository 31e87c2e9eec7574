"""Writing environment files (imports and pulls): text that :func:`esv.envfile.parse_environment`
reads back as exactly the data written.

:func:`render_environment` writes a whole new file; :func:`edit_environment` writes ESV entries
into an existing one line by line, keeping every other line and comment. Scalars are plain
where that is unambiguous, else double-quoted with escapes for what YAML would fold or refuse.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

from esv.envfile import Secret, Variable

__all__ = ["edit_environment", "render_environment", "secret_data", "variable_data"]

_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@/+()-]*(?: [A-Za-z0-9_.@/+()-]+)*")
# In block context a ':' that no space follows is part of a plain scalar (URLs stay readable).
_PLAIN_BLOCK = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@/+()-]*(?::[A-Za-z0-9_.@/+()-]+)*")
_PRINTABLE = re.compile("[\t\n\r\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _quote(text: str, *, force: bool = False, block: bool = False) -> str:
    """``text`` as a YAML scalar this module reads back as exactly ``text``: plain when that
    is unambiguous (and not ``force``), else double-quoted with escapes for what YAML would
    fold or refuse. ``block``: the scalar is a value in block context."""
    if not force and (_PLAIN.fullmatch(text) or (block and _PLAIN_BLOCK.fullmatch(text))):
        return text
    out = ['"']
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif _PRINTABLE.fullmatch(char) is None or char in "\u2028\u2029":
            code = ord(char)
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _flow(value: Mapping[str, str]) -> str:
    # A value is always quoted: "587" reads as the text it is, whatever YAML's typing.
    items = (f"{_quote(k)}: {_quote(v, force=k == 'value')}" for k, v in value.items())
    return "{" + ", ".join(items) + "}"


def _block(data: Mapping[str, Any], indent: int, flow_entries: bool) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    for key, value in data.items():
        head = f"{pad}{_quote(key)}:"
        if isinstance(value, str):
            lines.append(f"{head} {_quote(value, block=True)}")
        elif isinstance(value, list):
            if not value:
                lines.append(f"{head} []")
                continue
            lines.append(head)
            for item in value:
                if isinstance(item, dict):
                    lines.append(f"{pad}  - {_flow(item)}")
                else:
                    lines.append(f"{pad}  - {_quote(str(item), block=True)}")
        elif not value:
            lines.append(f"{head} {{}}")
        elif flow_entries and all(isinstance(v, str) for v in value.values()):
            lines.append(f"{head} {_flow(value)}")
        else:
            lines.append(head)
            lines.extend(_block(value, indent + 2, flow_entries=False))
    return lines


def variable_data(variable: Variable) -> str | dict[str, str]:
    """How an environment file writes ``variable``: bare text for a string, else
    ``{value, type}``."""
    if variable.type == "string":
        return variable.value
    return {"value": variable.value, "type": variable.type}


def secret_data(secret: Secret) -> dict[str, str]:
    """How an environment file writes ``secret``: its source (never an inline value) and
    the platform settings that differ from the defaults."""
    if secret.source.kind == "value":
        raise ValueError("inline secret values are never written by promote")
    out: dict[str, str] = {secret.source.kind: secret.source.ref}
    if secret.encoding != "generic":
        out["encoding"] = secret.encoding
    if not secret.use_in_placeholders:
        out["useInPlaceholders"] = "false"
    if secret.base64:
        out["base64"] = "true"
    return out


def render_environment(data: Mapping[str, Any], *, header: str = "") -> str:
    """The text of an environment file holding ``data`` (text, lists and mappings, in the
    order given): what :func:`parse_environment` reads back as the same data. Entries of
    ``variables`` and ``secrets`` are written on one line each (``{value: "587", type: int}``).
    ``header`` lines are written first, as comments."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    for key, value in data.items():
        if key in ("variables", "secrets") and isinstance(value, dict) and value:
            lines.append(f"{_quote(key)}:")
            lines.extend(_block(value, 2, flow_entries=True))
        else:
            lines.extend(_block({key: value}, 0, flow_entries=False))
    return "\n".join(lines) + "\n"


def _entry_line(esv_id: str, data: str | dict[str, str]) -> str:
    if isinstance(data, str):
        return f"  {_quote(esv_id)}: {_quote(data, block=True)}"
    return f"  {_quote(esv_id)}: {_flow(data)}"


def _section_bounds(lines: list[str], name: str) -> tuple[int, int] | None:
    """``(start, end)``: the line of top-level key ``name`` and the line after its block."""
    start = next((i for i, line in enumerate(lines) if re.match(rf"{name}\s*:", line)), None)
    if start is None:
        return None
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or lines[end][0] in " \t#"):
        end += 1
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1  # blank lines after the block belong to what follows
    return start, end


def _entry_key(line: str) -> str | None:
    match = re.match(r"  ([^\s#:][^:]*?|\"[^\"]*\"|'[^']*')\s*:(?:\s|$)", line)
    if match is None:
        return None
    return match.group(1).strip("\"'")


def edit_environment(
    text: str,
    section: str,
    entries: Mapping[str, str | dict[str, str]],
    remove: Collection[str] = (),
) -> str:
    """``text`` with each entry of ``entries`` (as :func:`variable_data` / :func:`secret_data`
    give them) written into top-level ``section`` (``variables`` or ``secrets``): an entry
    already there is replaced in place, a new one appended to the section, the section
    created when absent; the entries named in ``remove`` are dropped. Every other line
    (comments included) is kept as it was. ``ValueError`` when the section is written in
    flow style (``variables: {a: b}``)."""
    lines = text.splitlines()
    bounds = _section_bounds(lines, section)
    if bounds is None:
        lines.append(f"{section}:")
        bounds = (len(lines) - 1, len(lines))
    start, end = bounds
    written = lines[start].split(":", 1)[1].split(" #", 1)[0].strip()
    if written == "{}":
        lines[start] = f"{section}:"
    elif written:
        raise ValueError(f"{section}: is written in flow style")
    todo = dict(entries)
    block = lines[start + 1 : end]
    kept: list[str] = []
    index = 0
    while index < len(block):
        key = _entry_key(block[index])
        stop = index + 1
        if key is not None:  # an entry: its line and the more-indented lines under it
            while stop < len(block) and (block[stop].startswith("   ") or not block[stop].strip()):
                stop += 1
            while stop > index + 1 and not block[stop - 1].strip():
                stop -= 1
        if key is not None and key in todo:
            kept.append(_entry_line(key, todo.pop(key)))
        elif key is not None and key in remove:
            pass
        else:
            kept.extend(block[index:stop])
        index = stop
    kept.extend(_entry_line(key, data) for key, data in todo.items())
    return "\n".join([*lines[: start + 1], *kept, *lines[end:]]) + "\n"
