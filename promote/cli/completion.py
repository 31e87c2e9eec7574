"""Shell completion from the workspace: environment names, config object ids, ESV ids.

Click completes commands and options itself (``eval "$(_PROMOTE_COMPLETE=bash_source
promote)"``); these callbacks add the values only the workspace knows. They read file names
and scan lines, never parse or resolve, and complete nothing rather than fail: a completion
must be instant and silent.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import click
from click.shell_completion import CompletionItem

__all__ = ["complete_envs", "complete_esv_ids", "complete_object_ids"]

_ESV_LINE = re.compile(r"^\s{2}(esv-[a-z0-9_-]+)\s*:", re.MULTILINE)


def _root(ctx: click.Context) -> Path | None:
    from promote.cli import Context

    # --workspace before the command is the group's parameter; after it, the callback of
    # the command's own --workspace records it in the Context object.
    options = ctx.find_object(Context)
    chosen = ctx.find_root().params.get("workspace") or (options and options.workspace_option)
    start = Path(chosen) if chosen else Path.cwd()
    for candidate in (start, *start.resolve().parents):
        if (candidate / "environments").is_dir():
            return candidate
    return None


def _items(values: set[str], incomplete: str) -> list[CompletionItem]:
    return [CompletionItem(v) for v in sorted(values) if v.startswith(incomplete)]


def complete_envs(
    ctx: click.Context, _param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """The environments of the workspace (``environments/<env>.yaml``)."""
    root = _root(ctx)
    if root is None:
        return []
    return _items({p.stem for p in (root / "environments").glob("*.yaml")}, incomplete)


def complete_object_ids(
    ctx: click.Context, _param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """The config objects of the workspace (``config/<object-id>.json``)."""
    root = _root(ctx)
    if root is None:
        return []
    config = root / "config"
    ids = set()
    for directory, _dirs, names in os.walk(config):
        for name in names:
            if name.endswith(".json"):
                relative = Path(directory, name).relative_to(config).as_posix()
                ids.add(relative[: -len(".json")])
    return _items(ids, incomplete)


def complete_esv_ids(
    ctx: click.Context, _param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """The ESV ids the environment files define."""
    root = _root(ctx)
    if root is None:
        return []
    ids: set[str] = set()
    for path in (root / "environments").glob("*.yaml"):
        try:
            ids.update(_ESV_LINE.findall(path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError):
            continue
    return _items(ids, incomplete)
