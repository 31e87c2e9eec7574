"""Shell completion: environment names, object ids and ESV ids come from the workspace, the
way bash, zsh and fish ask for them (Click's completion protocol, in a real process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROMOTE = Path(sys.executable).parent / "promote"


@pytest.fixture
def ws(example: Path) -> Path:
    return example


def complete(words: str, cwd: Path, shell: str = "bash") -> list[str]:
    parts = words.split(" ")
    env = {
        **os.environ,
        "_PROMOTE_COMPLETE": f"{shell}_complete",
        "COMP_WORDS": words,
        # fish passes the incomplete word itself; bash and zsh its index.
        "COMP_CWORD": parts[-1] if shell == "fish" else str(len(parts) - 1),
    }
    done = subprocess.run(
        [str(PROMOTE)], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    if shell in ("bash", "fish"):  # "type,value" lines
        return [line.split(",", 1)[1] for line in done.stdout.splitlines() if "," in line]
    return done.stdout.splitlines()


def test_environment_names_complete(ws: Path) -> None:
    assert complete("promote plan --to ", ws) == ["dev", "prod", "staging", "uat"]
    assert complete("promote run --approve u", ws) == ["uat"]
    assert complete("promote rollback --env p", ws) == ["prod"]
    assert complete("promote resolve --env s", ws / "config") == ["staging"]  # from a subfolder


def test_object_ids_and_esv_ids_complete(ws: Path) -> None:
    assert complete("promote resolve --env dev e", ws) == [
        "emailTemplate/welcome",
        "external.email",
    ]
    ids = complete("promote esv usage esv-email-provider-p", ws)
    assert ids == ["esv-email-provider-password", "esv-email-provider-port"]


def test_workspace_given_on_the_command_line_is_used(ws: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert complete("promote plan --to ", elsewhere) == []  # no workspace here: nothing
    assert complete(f"promote -w {ws} plan --to d", elsewhere) == ["dev"]
    assert complete(f"promote plan --workspace {ws} --to d", elsewhere) == ["dev"]


def test_zsh_and_fish_get_the_same_values(ws: Path) -> None:
    assert "staging" in "\n".join(complete("promote plan --to st", ws, "zsh"))
    assert "staging" in "\n".join(complete("promote plan --to st", ws, "fish"))
