"""A plan compares content digests first: from a tenant that keeps them it reads only the
objects that differ, from the workspace only the files that changed since the last plan, and
it says exactly what a plan that reads everything says."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import pytest

from promote.engine.apply import Ambient, run
from promote.engine.plan import build_plan
from promote.engine.render import plan_to_json, render_plan
from promote.engine.session import Tenants
from promote.engine.stage_plan import read_held
from promote.errors import TenantError
from promote.state.applied import Applied, read_applied, write_applied
from promote.state.fingerprints import Fingerprints
from promote.state.local import LocalStore
from promote.tenants.base import Tenant
from promote.tenants.factory import open_tenant
from promote.workspace import Workspace, load_workspace
from tests.promote.engine.workspaces import (
    EMAIL,
    ENVIRON,
    WELCOME,
    default_envs,
    env_yaml,
    set_config,
    write_workspace,
)

FINGERPRINTS = Fingerprints(lambda create: b"k" * 32)
OBJECTS = {f"obj/{n:03d}": {"n": n, "url": f"https://&{{esv.brand|acme}}/{n}"} for n in range(40)}


class Recording:
    """A real tenant whose config reads are recorded; ``digests=False`` hides that it keeps
    digests, so the plan reads everything as it does from a REST tenant."""

    def __init__(self, tenant: Tenant, reads: list[str], *, digests: bool) -> None:
        self._tenant = tenant
        self._reads = reads
        self.capabilities = dataclasses.replace(tenant.capabilities, config_digests=digests)

    def read_config(self, ids: Collection[str]) -> dict[str, Any]:
        self._reads.extend(ids)
        return self._tenant.read_config(ids)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tenant, name)


def tenants(workspace: Workspace, reads: list[str], *, digests: bool = True) -> Tenants:
    store = LocalStore(workspace.state_dir)

    def opener(ws: Workspace, env: str, environ: Mapping[str, str]) -> Any:
        tenant = open_tenant(ws.environments[env], workspace=ws, environ=environ)
        return Recording(tenant, reads, digests=digests)

    return Tenants(workspace, environ=ENVIRON, opener=opener, store=store)


def plan(root: Path, reads: list[str], *, digests: bool = True) -> dict[str, Any]:
    workspace = load_workspace(root)
    with tenants(workspace, reads, digests=digests) as ts:
        built = build_plan(
            workspace,
            "staging",
            ts,
            environ=ENVIRON,
            store=LocalStore(workspace.state_dir),
            fingerprints=FINGERPRINTS,
        )
    return {
        "json": plan_to_json(built),
        "text": render_plan(built, "text"),
        "markdown": render_plan(built, "markdown"),
    }


@pytest.fixture
def root(tmp_path: Path, trusted_config_files: None) -> Path:
    """dev -> staging, both applied: the email provider, a template and 40 small objects."""
    envs = default_envs(staging=env_yaml("staging", port="465", ssl="true", mutable=True))
    config = {"external.email": EMAIL, "emailTemplate/welcome": WELCOME, **OBJECTS}
    root = write_workspace(tmp_path / "ws", envs=envs, config=config)
    workspace = load_workspace(root)
    with Tenants(workspace, environ=ENVIRON, store=LocalStore(workspace.state_dir)) as ts:
        run(workspace, "staging", ts, ambient=Ambient(environ=ENVIRON))
    return root


def test_only_the_changed_objects_are_read_from_the_tenants(root: Path) -> None:
    set_config(root, "obj/003", {**OBJECTS["obj/003"], "n": 33})
    set_config(root, "obj/017", {"n": 17})
    reads: list[str] = []
    found = plan(root, reads)
    stages = found["json"]["stages"]
    assert [[c["object"] for c in s["config_changes"]] for s in stages] == [
        ["obj/003", "obj/017"],
        ["obj/003", "obj/017"],
    ]
    assert sorted(reads) == ["obj/003", "obj/003", "obj/017", "obj/017"]


def test_only_the_changed_files_are_read_from_the_workspace(
    root: Path, config_reads: list[str]
) -> None:
    plan(root, [])  # the first plan learns every file's digest
    set_config(root, "obj/003", {**OBJECTS["obj/003"], "n": 33})
    config_reads.clear()
    plan(root, [])
    # The changed file, and the email objects (their checks resolve them on every plan).
    assert sorted(config_reads) == [
        "config/emailTemplate/welcome.json",
        "config/external.email.json",
        "config/obj/003.json",
    ]


@pytest.mark.parametrize(
    "change",
    ["nothing", "a config file", "a deleted file", "an added file", "a variable", "drift"],
)
def test_the_plan_is_the_one_that_reads_everything(root: Path, change: str) -> None:
    if change == "a config file":
        set_config(root, "obj/005", {"n": "five", "url": "&{esv.email.provider.host}"})
    elif change == "a deleted file":
        (root / "config" / "obj" / "006.json").unlink()
    elif change == "an added file":
        set_config(root, "obj/new", {"n": 1})
    elif change == "a variable":
        path = root / "environments" / "dev.yaml"
        path.write_text(path.read_text().replace("smtp.dev.example.com", "smtp.new.example"))
    elif change == "drift":
        tenant_db = root / ".promote" / "tenants" / "staging" / "tenant.sqlite3"
        with sqlite3.connect(tenant_db) as conn:
            conn.execute("UPDATE config SET json = '{\"n\": 7}' WHERE id = 'obj/007'")
    cold = plan(root, [])  # no cache yet: every file read
    warm = plan(root, [])  # the cache vouches for the files
    everything: list[str] = []
    full = plan(root, everything, digests=False)
    assert len(everything) >= 2 * len(OBJECTS)  # the slow path did read it all
    assert cold == warm == full
    if change == "drift":
        (_, staging) = full["json"]["stages"]
        assert [d["object"] for d in staging["drift"]] == ["obj/007"]


def test_an_object_changed_while_the_plan_reads_is_an_error_naming_it(root: Path) -> None:
    workspace = load_workspace(root)
    with tenants(workspace, []) as ts:
        held = read_held(ts["staging"], workspace.config, env="staging")
        tenant_db = root / ".promote" / "tenants" / "staging" / "tenant.sqlite3"
        with sqlite3.connect(tenant_db) as conn:
            conn.execute("UPDATE config SET json = '{\"n\": 0}' WHERE id = 'obj/000'")
        assert held.config["obj/001"] == OBJECTS["obj/001"]
        with pytest.raises(TenantError) as caught:
            held.config["obj/000"]
    assert str(caught.value) == (
        "staging: config object 'obj/000' changed while promote was reading the tenant; plan again"
    )


def test_the_record_of_what_was_applied_keeps_each_objects_digest(root: Path) -> None:
    from esv.objects import content_digest

    store = LocalStore(load_workspace(root).state_dir)
    applied = read_applied(store, "staging")
    assert applied is not None
    assert applied.digests["obj/001"] == content_digest(OBJECTS["obj/001"])
    assert applied.config["obj/001"] == OBJECTS["obj/001"]
    raw = json.loads(store.read_record("applied/staging.json") or b"")
    assert raw["format"] == "promote.applied/3"
    assert json.loads(raw["config"]["obj/001"]) == OBJECTS["obj/001"]


def test_a_record_of_the_first_format_still_tells_drift(root: Path) -> None:
    store = LocalStore(load_workspace(root).state_dir)
    applied = read_applied(store, "staging")
    assert applied is not None
    first = {
        "format": "promote.applied/1",
        "config": dict(applied.config.items()),
        "secret_paths": {},
        "variables": {k: list(v) for k, v in applied.variables.items()},
        "secrets": dict(applied.secrets),
    }
    store.write_record("applied/staging.json", json.dumps(first).encode())
    old = read_applied(store, "staging")
    assert old is not None and old.digests == {} and old.config == applied.config
    tenant_db = root / ".promote" / "tenants" / "staging" / "tenant.sqlite3"
    with sqlite3.connect(tenant_db) as conn:
        conn.execute("UPDATE config SET json = '{\"n\": 7}' WHERE id = 'obj/007'")
    (_, staging) = plan(root, [])["json"]["stages"]
    assert {d["object"] for d in staging["drift"]} == {"obj/007"}
    write_applied(store, "staging", Applied(config={}, digests={}))  # keeps reading fine
    assert read_applied(store, "staging") == Applied(config={}, digests={})


def test_drift_reads_the_records_digests_only_when_the_digests_of_all_differ(
    root: Path,
) -> None:
    from promote.errors import PromoteError

    store = LocalStore(load_workspace(root).state_dir)
    raw = store.read_record("applied/staging.json") or b""
    start, end = raw.rindex(b',"digests":{'), raw.rindex(b',"config":{')
    store.write_record("applied/staging.json", raw[:start] + b',"digests":{"x":1}' + raw[end:])
    (_, staging) = plan(root, [])["json"]["stages"]  # the digests of all agree: not read
    assert staging["drift"] == [] and staging["status"] == "in-sync"
    tenant_db = root / ".promote" / "tenants" / "staging" / "tenant.sqlite3"
    with sqlite3.connect(tenant_db) as conn:
        conn.execute("UPDATE config SET json = '{\"n\": 7}' WHERE id = 'obj/007'")
    with pytest.raises(PromoteError, match=r"applied/staging.json .* damaged: its digests"):
        plan(root, [])
