from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from esv.errors import EsvError
from promote.errors import BlockedError
from promote.workspace import find_workspace, init_workspace, load_workspace

ENV = "variables: {esv-a: x}\n"


def make(root: Path, envs: tuple[str, ...] = ("dev", "staging", "uat", "prod")) -> Path:
    (root / "environments").mkdir(parents=True)
    for name in envs:
        (root / "environments" / f"{name}.yaml").write_text(ENV)
    (root / "config" / "emailTemplate").mkdir(parents=True)
    (root / "config" / "external.email.json").write_text('{"host": "&<esv.a>"}')
    (root / "config" / "emailTemplate" / "welcome.json").write_text('{"subject": {"en": "x"}}')
    return root


def problems_of(root: Path) -> list[str]:
    with pytest.raises(EsvError) as caught:
        load_workspace(root)
    assert caught.value.exit_code == 3
    return [str(p) for p in caught.value.problems]


def test_default_chain_config_ids_and_aliases(tmp_path: Path) -> None:
    ws = load_workspace(make(tmp_path, ("prod", "dev", "staging")))
    assert ws.chain == ("dev", "staging", "prod")
    assert list(ws.environments) == ["dev", "staging", "prod"]
    assert ws.config == {
        "emailTemplate/welcome": {"subject": {"en": "x"}},
        "external.email": {"host": "&{esv.a}"},
    }
    assert ws.state_dir == tmp_path.resolve() / ".promote"


def test_chain_navigation_and_mutability(tmp_path: Path) -> None:
    root = make(tmp_path)
    (root / "environments" / "uat.yaml").write_text("mutable: true\n" + ENV)
    ws = load_workspace(root)
    assert ws.walk("uat") == ("dev", "staging", "uat")
    assert ws.lower("staging") == "dev" and ws.lower("dev") is None
    assert [ws.is_mutable(e) for e in ws.chain] == [True, False, True, False]
    with pytest.raises(BlockedError) as caught:
        ws.walk("prd")
    assert str(caught.value) == (
        "unknown environment 'prd' (did you mean 'prod'?); "
        "the chain is dev -> staging -> uat -> prod"
    )
    with pytest.raises(BlockedError) as caught:
        ws.lower("nope")
    assert str(caught.value) == (
        "unknown environment 'nope'; the chain is dev -> staging -> uat -> prod"
    )


def test_chain_from_promote_yaml(tmp_path: Path) -> None:
    root = make(tmp_path, ("sandbox", "live"))
    (root / "promote.yaml").write_text("chain: [sandbox, live]\n")
    assert load_workspace(root).chain == ("sandbox", "live")


def test_chain_problems_all_at_once(tmp_path: Path) -> None:
    root = make(tmp_path, ("dev", "qa", "prod"))
    (root / "promote.yaml").write_text("chain: [dev, prod, dev, uat]\nchian: x\n")
    assert problems_of(root) == [
        "promote.yaml: chian: unknown key (did you mean 'chain'?)",
        "promote.yaml: chain: 'dev' appears twice",
        "promote.yaml: chain: 'uat' has no environment file "
        "(create environments/uat.yaml or remove it from the chain)",
        "environments/qa.yaml: environment 'qa' is not in the chain (dev -> prod -> uat) "
        "(add it to chain: in promote.yaml, or remove the file)",
    ]


def test_file_outside_default_chain_is_an_error(tmp_path: Path) -> None:
    root = make(tmp_path, ("dev", "qa"))
    (root / "environments" / "x.yml").write_text(ENV)
    found = problems_of(root)
    assert "environments/x.yml: environment files end in .yaml" in found
    assert any("environment 'qa' is not in the chain (dev)" in p for p in found)


def test_every_bad_file_reported_together(tmp_path: Path) -> None:
    root = make(tmp_path)
    (root / "environments" / "dev.yaml").write_text("varaibles: {}\n")
    (root / "environments" / "uat.yaml").write_text("[1, 2]\n")
    (root / "config" / "bad.json").write_text('{"a": }')
    (root / "config" / "deep.json").write_text("[" * 10_000 + "]" * 10_000)
    found = problems_of(root)
    assert found == [
        "environments/dev.yaml: varaibles: unknown key (did you mean 'variables'?)",
        "environments/uat.yaml: the top level must be a mapping, not a list",
        "config/bad.json: invalid JSON: Expecting value at line 1, column 7",
        "config/deep.json: objects and arrays nest deeper than 256 levels; "
        "config objects are never this deep, check the file",
    ]


def test_find_workspace(tmp_path: Path) -> None:
    root = make(tmp_path / "ws")
    deep = root / "config" / "emailTemplate"
    assert find_workspace(deep) == root.resolve()
    assert load_workspace(cwd=deep).root == root.resolve()
    with pytest.raises(BlockedError, match="no workspace"):
        find_workspace(tmp_path)
    with pytest.raises(BlockedError, match="has no environments/"):
        load_workspace(tmp_path)


def test_empty_environments_dir(tmp_path: Path) -> None:
    (tmp_path / "environments").mkdir()
    assert problems_of(tmp_path) == ["environments: holds no environment files (<env>.yaml)"]


def test_init_workspace(tmp_path: Path) -> None:
    written = init_workspace(tmp_path / "new")
    assert "environments/dev.yaml" in written and "config/external.email.json" in written
    ws = load_workspace(tmp_path / "new")
    assert ws.chain == ("dev", "staging", "uat", "prod")
    assert ws.environments["prod"].protected and not ws.environments["dev"].protected
    assert json.loads((tmp_path / "new" / "config" / "external.email.json").read_text())
    assert not list((tmp_path / "new").rglob("*.tmp"))
    (tmp_path / "other" / "environments").mkdir(parents=True)
    (tmp_path / "other" / "environments" / "dev.yaml").write_text("keep: me\n")
    with pytest.raises(BlockedError, match="nothing was written"):
        init_workspace(tmp_path / "other")
    assert (tmp_path / "other" / "environments" / "dev.yaml").read_text() == "keep: me\n"
    assert not (tmp_path / "other" / "config").exists()
    shutil.rmtree(tmp_path / "other")


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640)])
def test_init_files_get_normal_permissions(tmp_path: Path, umask: int, mode: int) -> None:
    previous = os.umask(umask)
    try:
        written = init_workspace(tmp_path / "new")
    finally:
        os.umask(previous)
    for rel in written:
        assert stat.S_IMODE((tmp_path / "new" / rel).stat().st_mode) == mode, rel
    assert not list((tmp_path / "new").rglob("*.tmp"))
