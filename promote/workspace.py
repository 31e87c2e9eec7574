"""The workspace: the chain of environments, their files, and the config to promote."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from esv.envfile import EnvironmentFile, load_environment
from esv.placeholders import normalise_document
from promote.errors import BlockedError

__all__ = ["DEFAULT_CHAIN", "Workspace", "find_workspace", "load_workspace"]

DEFAULT_CHAIN = ("dev", "staging", "uat", "prod")


@dataclass(frozen=True)
class Workspace:
    """A loaded workspace: chain order, environment files, config objects by id."""

    root: Path
    chain: tuple[str, ...]
    environments: Mapping[str, EnvironmentFile]
    config: Mapping[str, Any]
    state_dir: Path

    def is_mutable(self, env: str) -> bool:
        """The env file's ``mutable``, else true for the first stage only (AIC semantics)."""
        declared = self.environments[env].mutable
        if declared is not None:
            return declared
        return env == self.chain[0]

    def lower(self, env: str) -> str | None:
        """The stage below ``env`` in the chain, ``None`` for the first."""
        index = self.chain.index(env)
        return self.chain[index - 1] if index > 0 else None

    def walk(self, to: str) -> tuple[str, ...]:
        """The chain from its first stage up to ``to``; BlockedError for an unknown env."""
        if to not in self.chain:
            raise BlockedError(
                f"unknown environment {to!r}; the chain is {' -> '.join(self.chain)}"
            )
        return self.chain[: self.chain.index(to) + 1]


def find_workspace(start: Path) -> Path:
    """``start`` or its nearest parent holding ``environments/``."""
    start = start.resolve()
    for candidate in (start, *start.parents):
        if (candidate / "environments").is_dir():
            return candidate
    raise BlockedError(f"no workspace found: neither {start} nor a parent holds environments/")


def load_workspace(root: Path | None = None, *, cwd: Path | None = None) -> Workspace:
    """Load and check a workspace (``root``, else found from ``cwd``)."""
    if root is None:
        root = find_workspace(cwd or Path.cwd())
    envs = {
        p.stem: load_environment(p, workspace=root)
        for p in sorted((root / "environments").glob("*.yaml"))
    }
    chain = tuple(name for name in DEFAULT_CHAIN if name in envs)
    config: dict[str, Any] = {}
    for path in sorted((root / "config").rglob("*.json")):
        object_id = path.relative_to(root / "config").as_posix()[: -len(".json")]
        config[object_id] = normalise_document(json.loads(path.read_text(encoding="utf-8")))
    return Workspace(root, chain, envs, config, root / ".promote")
