"""The workspace: the chain of environments, their files, and the config to promote.

Layout (SPEC 1)::

    promote.yaml               optional: chain: [dev, staging, uat, prod]
    environments/<env>.yaml    one file per environment
    config/<object-id>.json    config with placeholders (``config/emailTemplate/welcome.json``
                               is object ``emailTemplate/welcome``)
    .promote/                  local state (git-ignored)
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from esv.envfile import EnvironmentFile, YamlMemo, load_environment, parse_yaml
from esv.errors import EsvError, Problem
from esv.jsonfile import read_text
from promote.configtree import ConfigTree, cache_path, read_config_tree
from promote.errors import BlockedError
from promote.files import SHARED, atomic_write
from promote.state.settings import StateSettings, parse_state
from promote.yamlcache import YamlCache

__all__ = [
    "DEFAULT_CHAIN",
    "SETTINGS_FILE",
    "Workspace",
    "WorkspaceError",
    "find_workspace",
    "init_workspace",
    "load_workspace",
]

DEFAULT_CHAIN = ("dev", "staging", "uat", "prod")
"""The chain when ``promote.yaml`` does not set one (restricted to existing files)."""

SETTINGS_FILE = "promote.yaml"
_SETTINGS_KEYS = ("chain", "state")


class WorkspaceError(EsvError):
    """The workspace has problems (all of them listed); exit code 3, nothing was changed."""


@dataclass(frozen=True)
class Workspace:
    """A loaded workspace: chain order, environment files, config objects by id.

    ``config`` maps object id to parsed JSON with ``&<esv.x>`` aliases normalised.
    """

    root: Path
    chain: tuple[str, ...]
    environments: Mapping[str, EnvironmentFile]
    config: Mapping[str, Any]
    state_dir: Path
    state: StateSettings = StateSettings()
    """``promote.yaml``'s ``state:``: where the state store is (local ``.promote/`` by default)."""
    broken: Mapping[str, tuple[Problem, ...]] = field(default_factory=dict)
    """Environments of the chain whose file has problems, with them (only when loaded with
    ``partial=True``; such an environment is in ``chain`` but not in ``environments``)."""

    def remember_config(self) -> None:
        """Keep what was learnt of ``config`` (each file's digest) for the next command."""
        if isinstance(self.config, ConfigTree):
            self.config.remember()

    def is_mutable(self, env: str) -> bool:
        """The env file's ``mutable``, else true for the first stage only (AIC semantics)."""
        found = self.environments.get(env)
        declared = found.mutable if found is not None else None
        if declared is not None:
            return declared
        return env == self.chain[0]

    def lower(self, env: str) -> str | None:
        """The stage below ``env`` in the chain, ``None`` for the first."""
        index = self._index(env)
        return self.chain[index - 1] if index > 0 else None

    def walk(self, to: str) -> tuple[str, ...]:
        """The chain from its first stage up to ``to``; BlockedError naming the chain if unknown."""
        return self.chain[: self._index(to) + 1]

    def _index(self, env: str) -> int:
        if env not in self.chain:
            close = difflib.get_close_matches(env, self.chain, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise BlockedError(
                f"unknown environment {env!r}{hint}; the chain is {' -> '.join(self.chain)}"
            )
        return self.chain.index(env)


def find_workspace(start: Path) -> Path:
    """``start`` or its nearest parent holding ``environments/``; BlockedError if none."""
    start = start.resolve()
    for candidate in (start, *start.parents):
        if (candidate / "environments").is_dir():
            return candidate
    raise BlockedError(
        f"no workspace: neither {start} nor a parent holds environments/ "
        "(run `promote init` to create one, or pass --workspace DIR)"
    )


def _chain(
    root: Path,
    names: list[str],
    problems: list[Problem],
    state: list[StateSettings],
    memo: YamlMemo,
) -> tuple[str, ...] | None:
    """The chain from promote.yaml, else the default order of the files that exist;
    ``None`` when promote.yaml cannot say (its problems are added). Its ``state:`` block is
    appended to ``state``."""
    settings_path = root / SETTINGS_FILE
    if not settings_path.exists():
        return tuple(name for name in DEFAULT_CHAIN if name in names)
    try:
        text = read_text(settings_path, relpath=SETTINGS_FILE)
        settings = memo.get(text)
        if settings is None:
            settings = parse_yaml(text, relpath=SETTINGS_FILE)
    except EsvError as error:
        problems.extend(error.problems)
        return None
    if settings is None:
        settings = {}
    if not isinstance(settings, dict):
        problems.append(Problem(SETTINGS_FILE, "", "the top level must be a mapping"))
        return None
    before = len(problems)
    for key in settings:
        if key not in _SETTINGS_KEYS:
            close = difflib.get_close_matches(key, _SETTINGS_KEYS, n=1)
            hint = f"did you mean {close[0]!r}?" if close else "allowed: chain, state"
            problems.append(Problem(SETTINGS_FILE, key, "unknown key", hint=hint))
    state.append(parse_state(settings.get("state"), file=SETTINGS_FILE, problems=problems))
    if len(problems) == before:  # kept only once checked: a refused credential never is
        memo.put(text, settings)
    if "chain" not in settings:
        return tuple(name for name in DEFAULT_CHAIN if name in names)
    chain = settings["chain"]
    if not isinstance(chain, list) or not chain or not all(isinstance(n, str) for n in chain):
        problems.append(
            Problem(SETTINGS_FILE, "chain", "must be a non-empty list of environment names")
        )
        return None
    seen: set[str] = set()
    for name in chain:
        if name in seen:
            problems.append(Problem(SETTINGS_FILE, "chain", f"{name!r} appears twice"))
        seen.add(name)
        if name not in names:
            problems.append(
                Problem(
                    SETTINGS_FILE,
                    "chain",
                    f"{name!r} has no environment file",
                    hint=f"create environments/{name}.yaml or remove it from the chain",
                )
            )
    return tuple(dict.fromkeys(chain))


def load_workspace(
    root: Path | None = None, *, cwd: Path | None = None, partial: bool = False
) -> Workspace:
    """Load and check a workspace: ``root``, else the one found from ``cwd``.

    Raises :class:`WorkspaceError` (exit 3) listing every problem of every file: environment
    files, ``promote.yaml`` (chain), and config JSON. With ``partial``, problems of an
    environment file of the chain are kept in ``Workspace.broken`` instead (a plan blocks
    that stage and plans the others); the rest still raise.
    """
    if root is None:
        root = find_workspace(cwd or Path.cwd())
    root = root.resolve()
    env_dir = root / "environments"
    if not env_dir.is_dir():
        raise BlockedError(f"{root} is not a workspace: it has no environments/ directory")
    problems: list[Problem] = []
    names = _environment_names(env_dir, problems)
    state: list[StateSettings] = []
    parsed = YamlCache(cache_path(root, kind="yaml"))  # YAML files read before: not parsed
    chain = _chain(root, names, problems, state, parsed)
    environments, broken = _environments(root, names, chain, problems, partial=partial, memo=parsed)
    parsed.save()
    if not names and not problems:
        problems.append(Problem("environments", "", "holds no environment files (<env>.yaml)"))
    config = read_config_tree(root, problems)
    if problems:
        count = len(problems)
        raise WorkspaceError(
            f"workspace {root}: {count} problem{'s' if count > 1 else ''}", problems
        )
    chain = chain or ()
    ordered = {name: environments[name] for name in chain if name in environments}
    settings = state[0] if state else StateSettings()
    return Workspace(root, chain, ordered, config, root / ".promote", settings, broken)


def _environment_names(env_dir: Path, problems: list[Problem]) -> list[str]:
    """The environments ``env_dir`` holds a file for, sorted (a ``.yml`` file is a problem)."""
    names: list[str] = []
    for path in sorted(p for p in env_dir.iterdir() if not p.name.startswith(".")):
        if path.suffix == ".yaml" and path.is_file():
            names.append(path.stem)
        elif path.suffix == ".yml":
            problems.append(
                Problem(f"environments/{path.name}", "", "environment files end in .yaml")
            )
    return names


def _environments(
    root: Path,
    names: list[str],
    chain: tuple[str, ...] | None,
    problems: list[Problem],
    *,
    partial: bool,
    memo: YamlMemo,
) -> tuple[dict[str, EnvironmentFile], dict[str, tuple[Problem, ...]]]:
    """Each environment file, loaded and checked; problems go to ``problems``, or (with
    ``partial``, for an environment of the chain) to the second mapping. ``chain``: ``None``
    when ``promote.yaml`` cannot say."""
    environments: dict[str, EnvironmentFile] = {}
    broken: dict[str, tuple[Problem, ...]] = {}
    for name in names:
        if chain is not None and name not in chain:
            shown = " -> ".join(chain) or "empty"
            problems.append(
                Problem(
                    f"environments/{name}.yaml",
                    "",
                    f"environment {name!r} is not in the chain ({shown})",
                    hint=f"add it to chain: in {SETTINGS_FILE}, or remove the file",
                )
            )
        try:
            environments[name] = load_environment(
                root / "environments" / f"{name}.yaml", workspace=root, memo=memo
            )
        except EsvError as error:
            if partial and chain is not None and name in chain:
                broken[name] = tuple(error.problems)
            else:
                problems.extend(error.problems)
    return environments, broken


# -- scaffolding (``promote init``) -----------------------------------------------------

_SCAFFOLD_ENV = """\
description: {description}
tenant:
  kind: local                 # local (embedded) | aic | okta; aic/okta need url and token
{mutable}protected: {protected}
variables:
  esv-email-provider-host: smtp.{name}.example.com
  esv-email-provider-port: {{value: "587", type: int}}
  esv-email-provider-use-ssl: {{value: "false", type: bool}}
  esv-email-provider-username: {name}-mailer
  esv-email-provider-from-email: noreply@{name}.example.com
secrets:
  esv-email-provider-password: {{env: {upper}_SMTP_PASSWORD}}   # or {{file: path}}
"""

_SCAFFOLD_EMAIL = """\
{
  "auth": {
    "enable": true,
    "password": "&{esv.email.provider.password}",
    "username": "&{esv.email.provider.username}"
  },
  "connectiontimeout": 30000,
  "debug": false,
  "from": "\\"Example\\" <&{esv.email.provider.from.email}>",
  "host": "&{esv.email.provider.host}",
  "port": { "$int": "&{esv.email.provider.port}" },
  "smtpProperties": [],
  "ssl": { "enable": { "$bool": "&{esv.email.provider.use.ssl}" } },
  "starttls": { "enable": true },
  "threadPoolSize": 20,
  "timeout": 30000,
  "writetimeout": 30000
}
"""


def _scaffold_files() -> dict[str, str]:
    files = {
        SETTINGS_FILE: "# The chain configuration is promoted through, lowest first.\n"
        f"chain: [{', '.join(DEFAULT_CHAIN)}]\n",
        ".gitignore": ".promote/\nsecrets/\n",
        "config/external.email.json": _SCAFFOLD_EMAIL,
    }
    for index, name in enumerate(DEFAULT_CHAIN):
        files[f"environments/{name}.yaml"] = _SCAFFOLD_ENV.format(
            name=name,
            upper=name.upper(),
            description=f"{name} tenant",
            mutable="mutable: true\n" if index == 0 else "",
            protected="true" if name in ("uat", "prod") else "false",
        )
    return files


def init_workspace(root: Path) -> list[str]:
    """Create a workspace in ``root`` (created if needed): the default chain's environment
    files, ``promote.yaml``, an email-provider config with placeholders, ``.gitignore``.

    Refuses (BlockedError, nothing written) when any of those files already exists.
    Returns the paths written, relative to ``root``.
    """
    files = _scaffold_files()
    existing = [rel for rel in files if (root / rel).exists()]
    if existing:
        raise BlockedError(
            f"{root} already holds {', '.join(existing)}; nothing was written "
            "(init only creates a new workspace)"
        )
    for rel, text in files.items():
        # The mode any new file gets (0666 less the umask: 0644 with umask 022): workspace
        # files are shared in version control, not private like promote's state files.
        atomic_write(root / rel, text.encode(), mode=SHARED)
    return list(files)
