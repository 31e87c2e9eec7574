"""Shell completion from the workspace: environment names, config object ids, ESV ids.

Click completes commands and options itself (``eval "$(_PROMOTE_COMPLETE=bash_source
promote)"``); these callbacks add the values only the workspace knows. They read file names
and scan lines, never parse or resolve, and complete nothing rather than fail: a completion
must be instant and silent.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from click.shell_completion import CompletionItem

__all__ = ["complete_envs", "complete_esv_ids", "complete_object_ids", "env_option"]

FC = TypeVar("FC", bound=Callable[..., Any] | click.Command)

_ESV_LINE = re.compile(r"^\s{2}(esv-[a-z0-9_-]+)\s*:", re.MULTILINE)


def _root(ctx: click.Context) -> Path | None:
    """The workspace completion reads (``find_workspace`` from --workspace or here), or None."""
    from promote.cli import Context
    from promote.errors import BlockedError
    from promote.workspace import find_workspace

    # --workspace before the command is the group's parameter; after it, the callback of
    # the command's own --workspace records it in the Context object.
    options = ctx.find_object(Context)
    chosen = ctx.find_root().params.get("workspace") or (options and options.workspace_option)
    try:
        return find_workspace(Path(chosen) if chosen else Path.cwd())
    except BlockedError:
        return None


Complete = Callable[[click.Context, click.Parameter, str], list[CompletionItem]]


def _completing(values: Callable[[Path], set[str]]) -> Complete:
    """A completion callback offering ``values(workspace root)`` that start with what was typed
    (nothing outside a workspace)."""

    def complete(
        ctx: click.Context, _param: click.Parameter, incomplete: str
    ) -> list[CompletionItem]:
        root = _root(ctx)
        if root is None:
            return []
        return [CompletionItem(v) for v in sorted(values(root)) if v.startswith(incomplete)]

    complete.__doc__ = values.__doc__
    return complete


def _environments(root: Path) -> set[str]:
    """The environments of the workspace (``environments/<env>.yaml``)."""
    return {p.stem for p in (root / "environments").glob("*.yaml")}


def _object_ids(root: Path) -> set[str]:
    """The config objects of the workspace (``config/<object-id>.json``)."""
    config = root / "config"
    ids = set()
    for directory, _dirs, names in os.walk(config):
        for name in names:
            if name.endswith(".json"):
                relative = Path(directory, name).relative_to(config).as_posix()
                ids.add(relative[: -len(".json")])
    return ids


def _esv_ids(root: Path) -> set[str]:
    """The ESV ids the environment files define."""
    ids: set[str] = set()
    for path in (root / "environments").glob("*.yaml"):
        try:
            ids.update(_ESV_LINE.findall(path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError):
            continue
    return ids


complete_envs = _completing(_environments)
complete_object_ids = _completing(_object_ids)
complete_esv_ids = _completing(_esv_ids)


def env_option(
    *names: str, help: str, metavar: str | None = "ENV", **kwargs: Any
) -> Callable[[FC], FC]:
    """A ``click.option`` naming an environment of the workspace, completed from it
    (``names`` and ``kwargs`` as ``click.option`` takes them)."""
    return click.option(*names, metavar=metavar, shell_complete=complete_envs, help=help, **kwargs)
