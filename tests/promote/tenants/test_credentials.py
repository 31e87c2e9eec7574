"""read_credential: a tenant's secret, or an error naming the file and key that point at it."""

from __future__ import annotations

from pathlib import Path

import pytest

from esv.envfile import EnvironmentFile, SecretSource, load_environment
from esv.errors import EnvironmentFileError
from promote.tenants.credentials import read_credential


def _env(root: Path) -> EnvironmentFile:
    path = root / "environments" / "dev.yaml"
    path.parent.mkdir(parents=True)
    path.write_text("tenant: {kind: aic, url: 'https://t.example.com', token: {env: DEV_TOKEN}}\n")
    return load_environment(path, workspace=root)


def test_reads_the_source(tmp_path: Path) -> None:
    env = _env(tmp_path)
    source = env.tenant["token"]
    assert isinstance(source, SecretSource)
    value = read_credential(
        env, "token", source, workspace=tmp_path, environ={"DEV_TOKEN": "env-token-value"}
    )
    assert value.reveal() == "env-token-value"


def test_an_unreadable_source_names_the_file_and_key(tmp_path: Path) -> None:
    env = _env(tmp_path)
    source = env.tenant["token"]
    assert isinstance(source, SecretSource)
    with pytest.raises(EnvironmentFileError) as caught:
        read_credential(env, "service_account.jwk", source, workspace=tmp_path, environ={})
    [problem] = caught.value.problems
    assert (problem.location, problem.path) == (
        "environments/dev.yaml",
        "tenant.service_account.jwk",
    )
    assert problem.message == "environment variable DEV_TOKEN is not set"
    assert problem.hint == "set it, or point tenant.service_account.jwk at another source"
