"""Read an fr-config-manager repository (SPEC 6).

Layout: ``esvs/variables/<id>.json`` and ``esvs/secrets/<id>.json`` (values as base64 or as
``${NAME}`` / ``${BASE64:NAME}`` references to the environment), ``email-provider/*.json``,
``email-templates/<name>/<name>.json`` with bodies in files beside it, and flat IDM config
(``<dir>/<name>.json`` whose ``_id`` is the name). Secret values are never read: each secret
becomes ``{env: NAME}``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from esv.conversions import TYPES, check_type
from esv.envfile import Variable
from esv.errors import EsvError
from esv.ids import is_valid_id
from esv.jsonfile import load_json
from promote.adopt.model import Collected, env_name, env_secret

__all__ = ["read_fr_config_manager"]

_REFERENCE = re.compile(r"(\\*)\$\{(BASE64:)?([^}]*)\}")
_WHOLE_REFERENCE = re.compile(r"\$\{(BASE64:)?([A-Za-z_][A-Za-z0-9_]*)\}")
_NOT_IMPORTED = {
    "realms": "AM realm config (journeys, services, applications) is not managed by promote",
}


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _json(path: Path, root: Path, found: Collected) -> Any:
    try:
        return load_json(path, relpath=_rel(path, root))
    except EsvError as error:
        found.problems.extend(error.problems)
        return None


def read_fr_config_manager(root: Path, *, env: str, environ: Mapping[str, str]) -> Collected:
    """Everything of ``root`` promote can place, for environment ``env``; variable values
    referenced as ``${NAME}`` come from ``environ``."""
    found = Collected(
        env, f"fr-config-manager repository {root}", "an fr-config-manager repository"
    )
    if not root.is_dir():
        found.problem(str(root), "", "is not a directory")
        return found
    _variables(root, found, environ)
    _secrets(root, found)
    found.check_env_names()
    for path in sorted((root / "email-provider").glob("*.json")):
        value = _json(path, root, found)
        if value is not None:
            object_id = value.get("_id") if isinstance(value, dict) else None
            _config(found, str(object_id or path.stem), value, _rel(path, root))
    _templates(root, found)
    _flat_config(root, found)
    return found


# -- ESVs --------------------------------------------------------------------------------


def _esv_files(root: Path, kind: str, found: Collected) -> list[tuple[Path, dict[str, Any]]]:
    out = []
    directory = root / "esvs" / kind
    for path in sorted(directory.glob("*")) if directory.is_dir() else []:
        if path.suffix != ".json" or not path.is_file():
            found.skipped.append(f"{_rel(path, root)}: not a JSON file")
            continue
        value = _json(path, root, found)
        if value is None:
            continue
        if not isinstance(value, dict):
            found.problem(_rel(path, root), "", "an ESV file must be a JSON object")
            continue
        esv_id = value.get("_id", path.stem)
        if esv_id != path.stem:
            found.warn(
                _rel(path, root),
                "_id",
                f"{esv_id!r} differs from the file name; {esv_id!r} is used",
            )
        out.append((path, value))
    return out


def _variables(root: Path, found: Collected, environ: Mapping[str, str]) -> None:
    for path, item in _esv_files(root, "variables", found):
        where = _rel(path, root)
        esv_id = str(item.get("_id", path.stem))
        kind = item.get("expressionType") or "string"
        if kind not in TYPES:
            found.problem(
                where,
                "expressionType",
                f"{kind!r} is not an ESV type",
                "allowed: " + ", ".join(TYPES),
            )
            continue
        if item.get("expressionType") == "":
            found.warn(
                where,
                "expressionType",
                "is empty (a variable from before expression types): imported as string",
            )
        raw = item.get("valueBase64")
        if not isinstance(raw, str):
            found.problem(where, "valueBase64", "is missing or not text")
            continue
        value = _variable_value(raw, where, found, environ)
        if value is None:
            continue
        why = check_type(kind, value)
        if why is not None:
            found.problem(
                where,
                "valueBase64",
                f"the value {why}",
                f"fix the value, or expressionType: {kind}",
            )
            continue
        found.add_variable(Variable(esv_id, value, kind), where)


def _variable_value(
    raw: str, where: str, found: Collected, environ: Mapping[str, str]
) -> str | None:
    """The decoded text of ``valueBase64`` as fr-config-manager pushes it: each ``${NAME}``
    replaced by the base64 of NAME's value, ``${BASE64:NAME}`` by NAME's value as is,
    ``\\${`` kept as ``${``; then the whole decoded."""
    missing: list[str] = []

    def replace(match: re.Match[str]) -> str:
        slashes, pre_encoded, name = match.groups()
        if slashes:
            return slashes[:-1] + match.group(0)[len(slashes) :]
        value = environ.get(name)
        if not value:
            missing.append(name)
            return ""
        return value if pre_encoded else base64.b64encode(value.encode()).decode()

    text = _REFERENCE.sub(replace, raw)
    if missing:
        for name in missing:
            found.problem(
                where,
                "valueBase64",
                f"${{{name}}} is not set (or empty) in --env-file or the environment",
                f"set {name}, or pass the .env file that holds it",
            )
        return None
    try:
        return base64.b64decode(text, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        found.problem(where, "valueBase64", "is not base64 text once references are replaced")
    return None


def _secrets(root: Path, found: Collected) -> None:
    for path, item in _esv_files(root, "secrets", found):
        where = _rel(path, root)
        esv_id = str(item.get("_id", path.stem))
        versions = item.get("versions")
        raw = item.get("valueBase64")
        if isinstance(versions, list) and versions:
            last = versions[-1]
            raw = last.get("valueBase64") if isinstance(last, dict) else None
        encoding = str(item.get("encoding") or "generic")
        in_placeholders = item.get("useInPlaceholders", True)
        if not isinstance(in_placeholders, bool):
            found.problem(where, "useInPlaceholders", "must be true or false")
            continue
        match = _WHOLE_REFERENCE.fullmatch(raw) if isinstance(raw, str) else None
        if match is not None:
            secret = env_secret(
                esv_id,
                encoding=encoding,
                in_placeholders=in_placeholders,
                name=match.group(2),
                base64=bool(match.group(1)),
            )
            found.add_secret(secret, where)
        else:
            # A literal value (or none) is never copied: the workspace reads it from the
            # environment under fr-config-manager's name for the id.
            note = (
                " (the value in the file was not copied: set it in the environment)" if raw else ""
            )
            secret = env_secret(esv_id, encoding=encoding, in_placeholders=in_placeholders)
            found.add_secret(secret, where, note=note)
        if encoding not in ("generic", "pem", "base64hmac", "base64aes"):
            found.problem(where, "encoding", f"{encoding!r} is not a secret encoding")


# -- config ------------------------------------------------------------------------------


def _config(found: Collected, object_id: str, value: Any, where: str) -> None:
    """Add a config object, its fr-config-manager ``${NAME}`` references made placeholders."""
    found.add_config(object_id, _references_to_placeholders(value, where, found), where)


def _references_to_placeholders(value: Any, where: str, found: Collected) -> Any:
    """fr-config-manager replaces ``${NAME}`` in config with NAME's value at push time. In
    promote a value that differs per environment is an ESV: ``${NAME}`` becomes the
    placeholder of the ESV read from NAME (a variable already imported with that name, else
    a secret ``{env: NAME}``: never a value copied into config). ``\\${`` becomes ``${``."""
    if isinstance(value, dict):
        return {k: _references_to_placeholders(v, where, found) for k, v in value.items()}
    if isinstance(value, list):
        return [_references_to_placeholders(v, where, found) for v in value]
    if not isinstance(value, str) or "${" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        slashes, _pre_encoded, name = match.groups()
        if slashes:
            return slashes[:-1] + match.group(0)[len(slashes) :]
        return (
            "&{" + _esv_for(name, where, found).replace("esv-", "esv.", 1).replace("-", ".") + "}"
        )

    return _REFERENCE.sub(replace, value)


def _esv_for(name: str, where: str, found: Collected) -> str:
    by_name = {env_name(esv_id): esv_id for esv_id in found.variables}
    by_name.update({s.source.ref: esv_id for esv_id, s in found.secrets.items()})
    if name in by_name:
        return by_name[name]
    slug = name.lower().replace("_", "-")
    esv_id = slug if slug.startswith("esv-") else f"esv-{slug}"
    if not is_valid_id(esv_id):
        found.problem(where, "", f"${{{name}}} cannot be named as an ESV")
        return esv_id
    found.add_secret(
        env_secret(esv_id, name=name),
        where,
        note=f" (config's ${{{name}}}; make it a variable if it is not secret)",
    )
    return esv_id


def _templates(root: Path, found: Collected) -> None:
    directory = root / "email-templates"
    for folder in sorted(directory.iterdir()) if directory.is_dir() else []:
        path = folder / f"{folder.name}.json"
        if not path.is_file():
            found.skipped.append(f"{_rel(folder, root)}: no {folder.name}.json")
            continue
        template = _json(path, root, found)
        if not isinstance(template, dict):
            if template is not None:
                found.problem(_rel(path, root), "", "an email template must be a JSON object")
            continue
        ok = True
        for key in ("html", "message"):
            for locale, body in (template.get(key) or {}).items():
                if isinstance(body, dict) and "file" in body:
                    text = _body(folder, body["file"], root, f"{key}.{locale}", found)
                    ok = ok and text is not None
                    template[key][locale] = text
        styles = template.get("styles")
        if isinstance(styles, dict) and "file" in styles:
            template["styles"] = _body(folder, styles["file"], root, "styles", found)
            ok = ok and template["styles"] is not None
        if ok:
            object_id = str(template.get("_id") or f"emailTemplate/{folder.name}")
            _config(found, object_id, template, _rel(path, root))


def _body(folder: Path, name: Any, root: Path, key: str, found: Collected) -> str | None:
    where = _rel(folder / f"{folder.name}.json", root)
    if not isinstance(name, str) or "/" in name or name.startswith("."):
        found.problem(where, f"{key}.file", "must name a file beside the template")
        return None
    try:
        return (folder / name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        found.problem(where, f"{key}.file", f"{name} cannot be read as UTF-8 text")
        return None


def _flat_config(root: Path, found: Collected) -> None:
    """IDM config kept one object per file, ``_id`` naming the file (``access-config/
    access.json``); everything else is listed as skipped, with why."""
    handled = {"esvs", "email-provider", "email-templates"}
    for top in sorted(root.iterdir()):
        if top.name.startswith(".") or top.name in handled:
            continue
        if top.name in _NOT_IMPORTED:
            found.skipped.append(f"{top.name}/: {_NOT_IMPORTED[top.name]}")
            continue
        files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
        for path in files:
            where = _rel(path, root)
            if path.suffix != ".json":
                found.skipped.append(f"{where}: not a JSON config object")
                continue
            value = _json(path, root, found)
            object_id = value.get("_id") if isinstance(value, dict) else None
            if isinstance(object_id, str) and object_id.rsplit("/", 1)[-1] == path.stem:
                _config(found, object_id, value, where)
            elif value is not None:
                found.skipped.append(
                    f"{where}: not an IDM config object (its _id does not name the file)"
                )
