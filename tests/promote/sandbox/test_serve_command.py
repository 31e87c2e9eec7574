"""`promote sandbox serve`: through CliRunner, and as a real process stopped with Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from click.testing import CliRunner

from promote.cli import cli


def test_serve_prints_each_environment_url_and_stops(tmp_path: Path):
    result = CliRunner().invoke(
        cli,
        [
            "sandbox",
            "serve",
            "--env",
            "dev",
            "--env",
            "staging",
            "--state",
            str(tmp_path),
            "--duration",
            "0.1",
        ],
        env={"PROMOTE_SANDBOX_TOKEN": "cli-token"},
    )
    assert result.exit_code == 0, result.stderr
    assert re.search(r"dev\s+http://127\.0\.0\.1:\d+/dev  \(aic, mutable\)", result.stdout)
    assert "staging" in result.stdout and "promoted from dev" in result.stdout
    assert "cli-token" not in result.stdout + result.stderr
    assert "stopped after 0 requests" in result.stdout


def test_serve_without_a_token_is_blocked(tmp_path: Path):
    result = CliRunner().invoke(
        cli,
        ["sandbox", "serve", "--env", "dev", "--state", str(tmp_path)],
        env={"PROMOTE_SANDBOX_TOKEN": ""},
    )
    assert result.exit_code == 3
    assert "PROMOTE_SANDBOX_TOKEN" in result.stderr


def test_serve_rejects_an_unknown_kind_and_a_bad_failure_rule(tmp_path: Path):
    env = {"PROMOTE_SANDBOX_TOKEN": "t"}
    bad_kind = CliRunner().invoke(
        cli, ["sandbox", "serve", "--env", "dev:ldap", "--state", str(tmp_path)], env=env
    )
    assert bad_kind.exit_code == 3 and "aic, okta" in bad_kind.stderr
    bad_fail = CliRunner().invoke(
        cli, ["sandbox", "serve", "--env", "dev", "--fail", "x", "--state", str(tmp_path)], env=env
    )
    assert bad_fail.exit_code == 3 and "STATUS:COUNT:REGEX" in bad_fail.stderr


def test_real_process_serves_until_ctrl_c(tmp_path: Path):
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("promote")),
            "sandbox",
            "serve",
            "--env",
            "dev",
            "--state",
            str(tmp_path),
            "--fail",
            "503:1:startup",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PROMOTE_SANDBOX_TOKEN": "proc-token"},
    )
    try:
        assert process.stdout is not None
        url = None
        for _ in range(5):
            line = process.stdout.readline()
            found = re.search(r"(http://127\.0\.0\.1:\d+/dev)", line)
            if found and "dev " in line:
                url = found.group(1)
                break
        assert url, "no URL printed"
        headers = {"Authorization": "Bearer proc-token"}
        assert httpx.get(url + "/environment/startup", headers=headers).status_code == 503
        assert httpx.get(url + "/environment/startup", headers=headers).json() == {
            "restartStatus": "ready"
        }
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert "stopped after 2 requests" in out
