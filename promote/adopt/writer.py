"""Turn what an import or a pull collected into workspace files, and write them all or none.

Every file is first written into a temporary directory inside the workspace; only when all
are written are they moved into place, each replaced file kept aside until the last move
succeeded, so a failure leaves the workspace exactly as it was.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from esv.envfile import parse_environment, read_yaml
from esv.envwrite import edit_environment, render_environment, secret_data, variable_data
from esv.errors import EsvError, Problem
from esv.jsonfile import canonical_bytes, dump_pretty, load_json
from promote.adopt.model import Collected
from promote.errors import BlockedError
from promote.files import SHARED, StateFileError
from promote.workspace import DEFAULT_CHAIN, SETTINGS_FILE

__all__ = ["FileChange", "ImportProblems", "plan_changes", "write_changes"]

Status = Literal["new", "updated", "changed", "unchanged"]
"""``updated``: only added to (new ESVs in an environment file); ``changed``: what the file
holds would be replaced, which needs ``--force``."""


class ImportProblems(EsvError):
    """The input cannot be imported (every problem listed); nothing was written (exit 3)."""


@dataclass(frozen=True)
class FileChange:
    """One workspace file an import writes: its path relative to the workspace, its bytes,
    and whether it is new, changes what is there, or is already exactly that."""

    path: str
    data: bytes
    status: Status
    replaced: tuple[str, ...] = ()
    """ESVs of an environment file whose entry would be replaced."""


def _status(target: Path, data: bytes, *, same: bool | None = None) -> Status:
    if not target.exists():
        return "new"
    if same is None:
        same = target.read_bytes() == data
    return "unchanged" if same else "changed"


def _config_change(root: Path, object_id: str, value: Any) -> FileChange:
    path = f"config/{object_id}.json"
    data = (dump_pretty(value) + "\n").encode()
    target = root / path
    same = None
    if target.is_file():
        # Same content in another layout is the same object: a user's formatting is kept.
        try:
            same = canonical_bytes(load_json(target, relpath=path)) == canonical_bytes(value)
        except EsvError:
            same = False
    return FileChange(path, data, _status(target, data, same=same))


def _new_environment(found: Collected) -> str:
    data = {
        "description": f"{found.env}: imported from {found.label or found.origin}",
        "tenant": {"kind": "local"},
        "variables": {k: variable_data(v) for k, v in sorted(found.variables.items())},
        "secrets": {k: secret_data(s) for k, s in sorted(found.secrets.items())},
    }
    header = (
        "Written by promote from what was imported. Set tenant: to where this environment\n"
        "lives (kind: aic or okta, url, token: {env: NAME}) before running against it."
    )
    return render_environment(data, header=header)


def _environment_change(root: Path, found: Collected) -> FileChange:
    """The environment file: a new one, or the one there with the collected variables and
    secrets written into it line by line (its other lines and comments kept). Replacing an
    ESV it already holds with something else is an overwrite; adding one is not."""
    relpath = f"environments/{found.env}.yaml"
    target = root / relpath
    if not target.is_file():
        text = _new_environment(found)
        parse_environment(text, name=found.env, path=target, relpath=relpath)
        return FileChange(relpath, text.encode(), "new")
    old_text = target.read_text(encoding="utf-8")
    old = parse_environment(old_text, name=found.env, path=target, relpath=relpath)
    variables = {
        k: variable_data(v) for k, v in sorted(found.variables.items()) if old.variables.get(k) != v
    }
    secrets = {
        k: secret_data(s) for k, s in sorted(found.secrets.items()) if old.secrets.get(k) != s
    }
    replaced = sorted({*variables, *secrets} & {*old.variables, *old.secrets})
    try:
        text = edit_environment(old_text, "variables", variables, remove=secrets)
        text = edit_environment(text, "secrets", secrets, remove=variables)
    except ValueError as error:
        raise ImportProblems(
            f"cannot write into {relpath}",
            [
                Problem(
                    relpath,
                    str(error).split(":")[0],
                    "is written on one line (flow style)",
                    hint="write it as a block, one ESV per line, then try again",
                )
            ],
        ) from None
    parse_environment(text, name=found.env, path=target, relpath=relpath)
    if text == old_text:
        return FileChange(relpath, text.encode(), "unchanged")
    return FileChange(relpath, text.encode(), "changed" if replaced else "updated", tuple(replaced))


def plan_changes(root: Path, found: Collected) -> list[FileChange]:
    """The files ``found`` becomes in the workspace at ``root`` (which may not exist yet).
    Raises :class:`ImportProblems` listing every problem of the input or the workspace."""
    problems = list(found.problems)
    changes = [_config_change(root, k, v) for k, v in sorted(found.config.items())]
    relpath = f"environments/{found.env}.yaml"
    try:
        changes.append(_environment_change(root, found))
    except EsvError as error:
        problems.extend(error.problems or [Problem(relpath, "", str(error))])
    changes += _workspace_files(root, found.env, problems)
    if problems:
        count = len(problems)
        raise ImportProblems(
            f"{found.origin}: {count} problem{'s' if count > 1 else ''}; nothing was written",
            problems,
        )
    return changes


def _workspace_files(root: Path, env: str, problems: list[Problem]) -> list[FileChange]:
    """``promote.yaml`` and ``.gitignore`` for a new workspace; a check that ``env`` fits
    the chain of an existing one."""
    env_dir = root / "environments"
    names = sorted(p.stem for p in env_dir.glob("*.yaml")) if env_dir.is_dir() else []
    settings = root / SETTINGS_FILE
    changes: list[FileChange] = []
    if settings.is_file():
        try:
            data = read_yaml(settings, relpath=SETTINGS_FILE)
        except EsvError as error:
            problems.extend(error.problems)
            return changes
        chain = data.get("chain") if isinstance(data, dict) else None
        if isinstance(chain, list) and env not in chain:
            problems.append(
                Problem(
                    SETTINGS_FILE,
                    "chain",
                    f"{env!r} is not in the chain ({' -> '.join(map(str, chain))})",
                    hint=f"add {env} to chain: where it belongs, then import again",
                )
            )
    elif env not in DEFAULT_CHAIN or any(n not in DEFAULT_CHAIN for n in names):
        # The chain needs naming: the default order of the files there, this one last.
        chain = [n for n in DEFAULT_CHAIN if n in names] + sorted(
            n for n in names if n not in DEFAULT_CHAIN
        )
        chain = [n for n in chain if n != env] + [env]
        text = (
            "# The chain configuration is promoted through, lowest first.\n"
            f"chain: [{', '.join(chain)}]\n"
        )
        changes.append(FileChange(SETTINGS_FILE, text.encode(), _status(settings, text.encode())))
    ignore = root / ".gitignore"
    if not ignore.exists():
        changes.append(FileChange(".gitignore", b".promote/\nsecrets/\n", "new"))
    return changes


def write_changes(root: Path, changes: Sequence[FileChange], *, force: bool) -> None:
    """Write every new or changed file, or none. A file that exists with other content is
    overwritten only with ``force`` (else :class:`BlockedError` listing them, exit 3)."""
    differing = [
        c.path + (f" ({', '.join(c.replaced)})" if c.replaced else "")
        for c in changes
        if c.status == "changed"
    ]
    if differing and not force:
        raise BlockedError(
            "these files exist with other content; nothing was written (rerun with --force "
            "to overwrite them):\n" + "\n".join(f"  - {path}" for path in differing)
        )
    todo = [c for c in changes if c.status != "unchanged"]
    if not todo:
        return
    try:
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".promote-import-", dir=root))
    except OSError as error:
        raise StateFileError(root, error) from None
    try:
        _stage(staging, todo, root)
        _move_into_place(staging, todo, root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _stage(staging: Path, todo: Sequence[FileChange], root: Path) -> None:
    """Write every file into ``staging`` (durably), nothing in the workspace yet."""
    for index, change in enumerate(todo):
        try:
            fd = os.open(staging / f"new-{index}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, SHARED)
            with os.fdopen(fd, "wb") as handle:
                handle.write(change.data)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as error:
            raise StateFileError(
                root / change.path, error, consequence="nothing was changed"
            ) from None


def _move_into_place(staging: Path, todo: Sequence[FileChange], root: Path) -> None:
    """Move each staged file over its target, the target kept aside; on any failure put
    back what was moved, so the workspace is as it was."""
    moved: list[tuple[Path, Path | None]] = []
    for index, change in enumerate(todo):
        target = root / change.path
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            backup = None
            if target.exists():
                backup = staging / f"old-{index}"
                os.replace(target, backup)
            moved.append((target, backup))
            os.replace(staging / f"new-{index}", target)
        except OSError as error:
            for done, kept in reversed(moved):
                try:
                    if kept is not None:
                        os.replace(kept, done)
                    else:
                        done.unlink(missing_ok=True)
                except OSError:
                    pass
            raise StateFileError(target, error, consequence="nothing was changed") from None
