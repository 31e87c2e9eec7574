"""Read frodo exports (SPEC 6): ``*.variable.json``, ``*.secret.json``, ``*.idm.json``,
``*.emailTemplate.json`` / ``*.template.email.json``, and single-file ``all*.json`` exports.

A file holds ``meta`` and one or more of ``variable``/``variables``, ``secret``/``secrets``,
``idm``, ``emailTemplate``, or ``global`` holding those. Secret values are never exported
usably (``activeValue`` is an IDM ``$crypto`` object): each secret becomes ``{env: NAME}``.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Any

from esv.conversions import TYPES, check_type
from esv.envfile import SECRET_ENCODINGS, Variable
from esv.errors import EsvError
from esv.jsonfile import load_json
from promote.adopt.model import Collected, env_secret

__all__ = ["read_frodo"]

_FILE_PREFIX = "file://"


def read_frodo(path: Path, *, env: str) -> Collected:
    """Everything promote can place from the frodo export file or directory ``path``."""
    found = Collected(env, f"frodo export {path}", "frodo exports")
    if path.is_file():
        files, top = [path], path.parent
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        top = path
    else:
        found.problem(str(path), "", "does not exist")
        return found
    for file in files:
        where = file.relative_to(top).as_posix()
        if file.suffix != ".json":
            # Scripts frodo extracted beside their objects are read through file:// references.
            if not any(file.name.endswith(s) for s in (".js", ".groovy")):
                found.skipped.append(f"{where}: not a frodo export (JSON)")
            continue
        try:
            document = load_json(file, relpath=where)
        except EsvError as error:
            found.problems.extend(error.problems)
            continue
        if not isinstance(document, dict):
            found.problem(where, "", "a frodo export must be a JSON object")
            continue
        _document(document, file, where, found)
    found.check_env_names()
    return found


def _document(document: dict[str, Any], file: Path, where: str, found: Collected) -> None:
    for key, section in document.items():
        if key == "meta":
            continue
        if not isinstance(section, dict):
            found.skipped.append(f"{where}: {key}: not an object frodo writes")
        elif key in ("variable", "variables"):
            for esv_id, item in sorted(section.items()):
                _variable(esv_id, item, f"{where}: {key}.{esv_id}", found)
        elif key in ("secret", "secrets"):
            for esv_id, item in sorted(section.items()):
                _secret(esv_id, item, f"{where}: {key}.{esv_id}", found)
        elif key == "idm":
            for object_id, item in sorted(section.items()):
                _config(str(object_id), item, file, f"{where}: idm.{object_id}", found)
        elif key == "emailTemplate":
            for name, item in sorted(section.items()):
                object_id = item.get("_id") if isinstance(item, dict) else None
                _config(
                    str(object_id or f"emailTemplate/{name}"),
                    item,
                    file,
                    f"{where}: {key}.{name}",
                    found,
                )
        elif key == "global":
            _document(section, file, where, found)
        elif key == "realm":
            found.skipped.append(f"{where}: realm: AM realm config is not managed by promote")
        else:
            found.skipped.append(
                f"{where}: {key}: frodo's {key} export is not config promote manages"
            )


def _variable(esv_id: str, item: Any, where: str, found: Collected) -> None:
    if not isinstance(item, dict):
        found.problem(where, "", "must be an object")
        return
    kind = item.get("expressionType") or "string"
    if kind not in TYPES:
        found.problem(
            where, "expressionType", f"{kind!r} is not an ESV type", "allowed: " + ", ".join(TYPES)
        )
        return
    if "value" in item:
        value = item["value"]
        if not isinstance(value, str):
            found.problem(where, "value", "must be text")
            return
    elif isinstance(item.get("valueBase64"), str):
        try:
            value = base64.b64decode(item["valueBase64"], validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            found.problem(where, "valueBase64", "is not base64 of UTF-8 text")
            return
    else:
        found.problem(
            where, "", "has neither value nor valueBase64", "export it again with its value"
        )
        return
    why = check_type(kind, value)
    if why is not None:
        found.problem(
            where, "value", f"the value {why}", f"fix the value, or expressionType: {kind}"
        )
        return
    found.add_variable(Variable(str(item.get("_id", esv_id)), value, kind), where)


def _secret(esv_id: str, item: Any, where: str, found: Collected) -> None:
    if not isinstance(item, dict):
        found.problem(where, "", "must be an object")
        return
    encoding = str(item.get("encoding") or "generic")
    if encoding not in SECRET_ENCODINGS:
        found.problem(where, "encoding", f"{encoding!r} is not a secret encoding")
        return
    in_placeholders = item.get("useInPlaceholders", True)
    if not isinstance(in_placeholders, bool):
        found.problem(where, "useInPlaceholders", "must be true or false")
        return
    # activeValue, when exported, is encrypted with the source tenant's keys: never copied.
    secret = env_secret(
        str(item.get("_id", esv_id)), encoding=encoding, in_placeholders=in_placeholders
    )
    found.add_secret(
        secret, where, note=" (frodo exports no secret value: set it in the environment)"
    )


def _config(object_id: str, item: Any, file: Path, where: str, found: Collected) -> None:
    if not isinstance(item, dict):
        found.problem(where, "", "a config object must be a JSON object")
        return
    inlined = _inline_scripts(item, file.parent, where, found)
    if inlined is not None:
        found.add_config(str(item.get("_id") or object_id), inlined, where)


def _inline_scripts(value: Any, folder: Path, where: str, found: Collected) -> Any:
    """``value`` with frodo's extracted scripts (``"file://x.script.js"``) read back in, as
    ``frodo import`` does; None (with a problem) when one cannot be read."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            inner = _inline_scripts(item, folder, where, found)
            if inner is None and item is not None:
                return None
            out[key] = inner
        return out
    if isinstance(value, list):
        items = [_inline_scripts(item, folder, where, found) for item in value]
        if any(new is None and old is not None for new, old in zip(items, value, strict=True)):
            return None
        return items
    if isinstance(value, str) and value.startswith(_FILE_PREFIX):
        relative = value[len(_FILE_PREFIX) :]
        target = (folder / relative).resolve()
        if folder.resolve() not in target.parents:
            found.problem(where, "", f"{value} points outside the export")
            return None
        try:
            return target.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            found.problem(
                where,
                "",
                f"{value} cannot be read",
                "export with the scripts, or without --extract",
            )
            return None
    return value
