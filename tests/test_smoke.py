"""The installed ``promote`` entry point on a copy of the shipped example workspace."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.example import REPO


def _entry_point() -> str:
    beside = Path(sys.executable).parent / "promote"
    found = str(beside) if beside.exists() else shutil.which("promote")
    if found is None:
        pytest.fail("the promote entry point is not installed (pip install -e .)")
    return found


def test_promote_run_to_staging_on_the_example(tmp_path: Path) -> None:
    workspace = tmp_path / "example"
    for part in ("environments", "config"):
        shutil.copytree(REPO / part, workspace / part)
    if (REPO / "promote.yaml").exists():
        shutil.copy(REPO / "promote.yaml", workspace / "promote.yaml")
    promote = _entry_point()
    # A fresh clone: no environment variables beyond PATH, no network.
    environ = {"PATH": "/usr/bin:/bin"}

    def call(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [promote, *args],
            cwd=workspace,
            env=environ,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    done = call("run", "--to", "staging")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "dev: applied\nstaging: applied\n"
    plan = call("plan", "--to", "staging", "--format", "json", "--detailed-exitcode")
    assert plan.returncode == 0, plan.stderr
    assert [s["status"] for s in json.loads(plan.stdout)["stages"]] == ["in-sync", "in-sync"]
