"""The parsed YAML of a workspace kept between commands: a file read before is not parsed
again (and ``yaml`` is never imported), any change is; a file with an inline secret value
is never kept; a cache that cannot be trusted is ignored."""

from __future__ import annotations

import json
import marshal
import subprocess
import sys
from pathlib import Path

import pytest

import esv.envfile
from promote.configtree import cache_path
from promote.workspace import load_workspace
from tests.promote.engine.workspaces import default_envs, env_yaml, write_workspace

SECRET = "Inl1ne-yaml-SECRET-4471"


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The relpaths of the YAML texts parsed, in order."""
    seen: list[str] = []
    real = esv.envfile._parse_yaml

    def counting(text: str, relpath: str) -> object:
        seen.append(relpath)
        return real(text, relpath)

    monkeypatch.setattr(esv.envfile, "_parse_yaml", counting)
    return seen


def workspace(tmp_path: Path, **envs: str) -> Path:
    root = write_workspace(
        tmp_path / "ws", envs=default_envs(**envs), chain=["dev", "staging", "prod"]
    )
    return root


def test_a_file_read_before_is_not_parsed_again_and_a_changed_one_is(
    tmp_path: Path, parses: list[str]
) -> None:
    root = workspace(tmp_path)
    first = load_workspace(root)
    assert sorted(parses) == [
        "environments/dev.yaml",
        "environments/prod.yaml",
        "environments/staging.yaml",
        "promote.yaml",
    ]
    parses.clear()
    again = load_workspace(root)
    assert parses == [] and again.environments == first.environments
    assert again.chain == first.chain
    dev = root / "environments" / "dev.yaml"
    dev.write_text(dev.read_text().replace("smtp.dev.example.com", "smtp.new.example"))
    changed = load_workspace(root)
    assert parses == ["environments/dev.yaml"]
    assert changed.environments["dev"].variables["esv-email-provider-host"].value == (
        "smtp.new.example"
    )


def test_a_file_with_an_inline_secret_is_never_kept(tmp_path: Path, parses: list[str]) -> None:
    inline = env_yaml("staging", password=json.dumps({"value": SECRET}))
    root = workspace(tmp_path, staging=inline)
    load_workspace(root)
    parses.clear()
    loaded = load_workspace(root)
    assert parses == ["environments/staging.yaml"]  # parsed every time
    assert loaded.environments["staging"].secrets["esv-email-provider-password"].source.kind == (
        "value"
    )
    path = cache_path(root.resolve(), kind="yaml")
    assert path is not None and path.is_file()
    assert SECRET.encode() not in path.read_bytes()
    assert b"smtp.dev.example.com" in path.read_bytes()  # the others are kept


def test_a_credential_refused_in_promote_yaml_is_never_kept(
    tmp_path: Path, parses: list[str]
) -> None:
    from esv.errors import EsvError

    root = workspace(tmp_path)
    settings = root / "promote.yaml"
    settings.write_text(settings.read_text() + f"state:\n  secret_access_key: {SECRET}\n")
    for _ in range(2):
        with pytest.raises(EsvError) as caught:
            load_workspace(root)
        assert any(p.path == "state.secret_access_key" for p in caught.value.problems)
        assert SECRET not in str(caught.value)
    assert parses.count("promote.yaml") == 2  # parsed, and reported, every time
    path = cache_path(root.resolve(), kind="yaml")
    assert path is not None and path.is_file()  # the environment files are kept
    assert SECRET.encode() not in path.read_bytes()


def test_a_file_with_problems_is_not_kept_and_still_reported(
    tmp_path: Path, parses: list[str]
) -> None:
    from esv.errors import EsvError

    root = workspace(tmp_path, dev="variables: [not, a, mapping]\n")
    for _ in range(2):
        with pytest.raises(EsvError) as caught:
            load_workspace(root)
        assert any(p.location == "environments/dev.yaml" for p in caught.value.problems)
    assert parses.count("environments/dev.yaml") == 2


@pytest.mark.parametrize("damage", ["bytes", "header", "entries"])
def test_a_cache_that_cannot_be_trusted_is_ignored_and_replaced(
    tmp_path: Path, parses: list[str], damage: str
) -> None:
    root = workspace(tmp_path)
    load_workspace(root)
    path = cache_path(root.resolve(), kind="yaml")
    assert path is not None
    header, kept = marshal.loads(path.read_bytes())
    if damage == "bytes":
        path.write_bytes(b"\x00 not marshal")
    elif damage == "header":  # another PyYAML: the same file, another size
        origin, mtime, size = header[3]
        path.write_bytes(marshal.dumps(((*header[:3], (origin, mtime, size + 1)), kept)))
    else:
        path.write_bytes(marshal.dumps((header, {key: ["not a mapping"] for key in kept})))
    parses.clear()
    load_workspace(root)
    assert len(parses) == 4  # every file parsed again
    parses.clear()
    load_workspace(root)
    assert parses == []  # and the cache written anew


def test_a_command_whose_files_were_read_before_never_imports_yaml(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    code = (
        "import sys\nfrom pathlib import Path\nfrom promote.workspace import load_workspace\n"
        f"load_workspace(Path({str(root)!r}))\nprint('yaml' in sys.modules)"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(2)
    ]
    assert runs == ["True", "False"]
