"""Building plans: statuses, ESV and config diffs, masking, fingerprints. Nothing changes."""

from __future__ import annotations

import copy
import threading
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from esv import MASK
from esv.errors import MISSING_ESV
from esv.secrets import SecretValue
from promote.engine.apply import Ambient, run
from promote.engine.diff import ABSENT
from promote.engine.plan import build_plan, compare_secrets
from promote.engine.session import Opener, Tenants
from promote.errors import TenantError
from promote.state.fingerprints import Fingerprints
from promote.tenants.base import (
    Capabilities,
    EsvWrite,
    LockState,
    PromotionReport,
    SecretState,
    Tenant,
    VariableState,
)
from promote.tenants.factory import open_tenant
from promote.workspace import Workspace, load_workspace
from tests.promote.engine.workspaces import (
    EMAIL,
    ENVIRON,
    SECRET,
    WELCOME,
    default_envs,
    env_yaml,
    set_config,
    write_workspace,
)

FINGERPRINTS = Fingerprints(lambda create: b"k" * 32)
"""The workspace's keyed secret fingerprints (a fixed key)."""


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return load_workspace(write_workspace(tmp_path / "ws"))


def plan_of(workspace: Workspace, to: str, environ: Mapping[str, str] = ENVIRON, **kw: Any):  # type: ignore[no-untyped-def]
    with Tenants(workspace, environ=environ, **kw) as ts:
        return build_plan(workspace, to, ts, environ=environ, fingerprints=FINGERPRINTS)


def apply(workspace: Workspace, to: str) -> None:
    with Tenants(workspace, environ=ENVIRON) as ts:
        run(workspace, to, ts, approve=workspace.chain, ambient=Ambient(environ=ENVIRON))


def test_fresh_workspace_plans_config_arriving_at_every_stage(ws: Workspace) -> None:
    plan = plan_of(ws, "prod")
    assert [(s.env, s.source, s.status, s.via) for s in plan.stages] == [
        ("dev", "config", "changes", "direct"),
        ("staging", "dev", "changes", "promotion"),
        ("prod", "staging", "changes", "promotion"),
    ]
    assert all(s.config_changes[0].object == "external.email" for s in plan.stages)
    assert plan.stage("prod").protected and not plan.stage("staging").protected
    assert plan.pending and not plan.blocked


def test_plan_is_deterministic_for_the_same_state_and_key(ws: Workspace) -> None:
    first, second = plan_of(ws, "staging"), plan_of(ws, "staging")
    assert [s.tenant_fingerprint for s in first.stages] == [
        s.tenant_fingerprint for s in second.stages
    ]
    assert [s.inputs_fingerprint for s in first.stages] == [
        s.inputs_fingerprint for s in second.stages
    ]


def test_rotated_secret_is_a_modify_without_either_value(ws: Workspace) -> None:
    apply(ws, "staging")
    environ = {**ENVIRON, "STAGING_SMTP_PASSWORD": "rotated-value"}
    plan = plan_of(ws, "staging", environ)
    dev, staging = plan.stages
    assert dev.status == "in-sync"
    (change,) = staging.esv_changes
    assert (change.id, change.kind, change.action) == (
        "esv-email-provider-password",
        "secret",
        "modify",
    )
    assert change.before is None and change.after is None
    assert "rotated-value" not in repr(plan) and SECRET not in repr(plan)
    assert staging.restart
    # The object using the secret runs a new value there: an effective change, masked.
    (effective,) = staging.effective_changes
    assert effective.object == "external.email" and effective.action == "modify"
    assert [(c.path, c.before, c.after, c.secret) for c in effective.changes] == [
        ("auth.password", MASK, MASK, "changed")
    ]


def test_a_rotated_secret_inside_a_longer_string_and_a_typed_wrapper(ws: Workspace) -> None:
    set_config(
        ws.root,
        "external.email",
        {**EMAIL, "smtpProperties": ["pw=&{esv.email.provider.password}"]},
    )
    set_config(ws.root, "emailTemplate/welcome", {**WELCOME, "enabled": {"$bool": "&{esv.flag}"}})
    for env in ("dev", "staging"):
        text = env_yaml(env, port="465", ssl="true") + "  esv-flag: {env: FLAG}\n"
        (ws.root / "environments" / f"{env}.yaml").write_text(text)
    workspace = load_workspace(ws.root)
    environ = {**ENVIRON, "FLAG": "true"}
    with Tenants(workspace, environ=environ) as ts:
        run(workspace, "staging", ts, ambient=Ambient(environ=environ))
    assert all(s.status == "in-sync" for s in plan_of(workspace, "staging", environ).stages)

    rotated = {**environ, "STAGING_SMTP_PASSWORD": "rotated-value"}
    (effective,) = plan_of(workspace, "staging", rotated).stage("staging").effective_changes
    assert [(c.path, c.before, c.after, c.secret) for c in effective.changes] == [
        ("auth.password", MASK, MASK, "changed"),
        ("smtpProperties[0]", f"pw={MASK}", f"pw={MASK}", "changed"),
    ]
    # A typed wrapper over a secret cannot be resolved with masked values: what the tenant
    # runs there cannot be told (before_unknown), and it is listed whatever changed.
    plan = plan_of(workspace, "staging", {**rotated, "FLAG": "false"})
    diffs = {d.object: d for d in plan.stage("staging").effective_changes}
    assert sorted(diffs) == ["emailTemplate/welcome", "external.email"]
    (enabled,) = [c for c in diffs["emailTemplate/welcome"].changes if c.path == "enabled"]
    assert enabled.before_unknown and enabled.after == MASK
    assert "rotated-value" not in repr(plan)


def test_deleted_variable_is_deleted_only_when_managed(ws: Workspace) -> None:
    apply(ws, "dev")
    (ws.root / "environments" / "dev.yaml").write_text(
        env_yaml("dev", extra_variables={"esv-extra": "x"})
    )
    apply(load_workspace(ws.root), "dev")
    (ws.root / "environments" / "dev.yaml").write_text(env_yaml("dev"))
    plan = plan_of(load_workspace(ws.root), "dev")
    assert [(c.id, c.action) for c in plan.stages[0].esv_changes] == [("esv-extra", "delete")]


def test_config_modify_lists_each_changed_path(ws: Workspace) -> None:
    apply(ws, "staging")
    email = copy.deepcopy(load_workspace(ws.root).config["external.email"])
    email["starttls"]["enable"] = True
    email["smtpProperties"] = ["mail.smtp.x=1"]
    set_config(ws.root, "external.email", email)
    plan = plan_of(load_workspace(ws.root), "staging")
    for stage in plan.stages:
        (diff,) = stage.config_changes
        assert diff.action == "modify"
        assert [(c.path, c.before, c.after) for c in diff.changes][:1] == [
            ("smtpProperties[0]", diff.changes[0].before, "mail.smtp.x=1")
        ]
        assert ("starttls.enable", False, True) in [
            (c.path, c.before, c.after) for c in diff.changes
        ]


def test_immutable_first_stage_is_blocked(tmp_path: Path) -> None:
    envs = default_envs(dev=env_yaml("dev", mutable=False))
    workspace = load_workspace(write_workspace(tmp_path / "ws", envs=envs))
    plan = plan_of(workspace, "dev")
    (stage,) = plan.stages
    assert stage.status == "blocked"
    assert "must be mutable" in str(stage.errors[0])


def test_missing_esvs_are_the_problems_coded_missing_esv(tmp_path: Path) -> None:
    email = {**EMAIL, "host": "&{esv.not.there}", "port": {"$int": "&{esv.email.provider.from}"}}
    root = write_workspace(tmp_path / "ws", config={"external.email": email})
    (stage,) = plan_of(load_workspace(root), "dev").stages
    assert stage.status == "blocked"
    assert stage.missing_esvs == ("esv-not-there",)
    found = [(p.esv_id, p.path, p.code) for p in stage.errors]
    assert found == [
        ("esv-not-there", "host", MISSING_ESV),
        ("esv-email-provider-from", "port", None),
    ]  # each once: the resolver's second report of the missing ESV is left out


def test_unloaded_esvs_need_a_restart(ws: Workspace) -> None:
    apply(ws, "dev")
    with Tenants(ws, environ=ENVIRON) as ts:
        ts["dev"].write_esvs([EsvWrite("esv-email-provider-host", "variable", "modify", "h")])
    plan = plan_of(ws, "dev")
    stage = plan.stages[0]
    assert stage.unloaded == ("esv-email-provider-host",)
    assert stage.restart and stage.status == "changes"


class ResolvedTenant:
    """A tenant that stores resolved config only (like Okta), held in memory."""

    env = "dev"
    capabilities = Capabilities(
        esvs=False,
        placeholders=False,
        promotion=False,
        restart=False,
        config_ids=("external.email",),
    )

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def list_config_ids(self) -> set[str]:
        return set(self.config)

    def read_config(self, ids: Collection[str]) -> dict[str, Any]:
        return {k: copy.deepcopy(v) for k, v in self.config.items() if k in ids}

    def put_config(self, object_id: str, value: Any) -> None:
        self.config[object_id] = copy.deepcopy(value)

    def delete_config(self, object_id: str) -> None:
        self.config.pop(object_id, None)

    def reconcile_write_only(self, object_id: str, desired: Any, current: Any) -> Any:
        return current

    def list_variables(self) -> dict[str, VariableState]:
        return {}

    def list_secrets(self) -> dict[str, SecretState]:
        return {}

    def secret_matches(self, esv_id: str, value: SecretValue) -> bool | None:
        return None

    def write_esvs(self, writes: Sequence[EsvWrite]) -> None:
        raise AssertionError("no ESVs here")

    def restart(self) -> None: ...

    def restart_status(self) -> str:
        return "ready"

    def lock_state(self) -> LockState:
        return LockState(False)

    def unlock(self, holder: str) -> None: ...

    def promote_from(self, lower: Tenant, **kw: Any) -> PromotionReport:
        raise AssertionError("no promotions here")

    def rollback(self, *, holder: str) -> PromotionReport:
        raise AssertionError("no rollbacks here")

    def reports(self) -> list[PromotionReport]:
        return []

    def close(self) -> None: ...


def test_tenant_without_placeholders_gets_resolved_config_with_secrets_masked(
    ws: Workspace,
) -> None:
    held = {"external.email": {"host": "old.example.com", "auth": {"username": "u"}}}
    fake = ResolvedTenant(held)

    def opener(workspace: Workspace, env: str, environ: Mapping[str, str]) -> Tenant:
        return fake  # type: ignore[return-value]

    plan = plan_of(ws, "dev", opener=opener)
    (stage,) = plan.stages
    assert stage.esv_changes == () and not stage.restart
    (diff,) = stage.config_changes
    changes = {c.path: c for c in diff.changes}
    assert changes["host"].after == "smtp.dev.example.com"
    assert changes["port"].after == 587
    assert (changes["auth.password"].before, changes["auth.password"].after) == (ABSENT, MASK)
    assert changes["auth.password"].secret == "set" and changes["host"].secret is None
    assert SECRET not in repr(plan.stages)
    assert stage.config_writes["external.email"]["auth"]["password"] == SECRET

    with Tenants(ws, environ=ENVIRON, opener=opener) as ts:
        run(ws, "dev", ts, ambient=Ambient(environ=ENVIRON))
    assert fake.config["external.email"]["auth"]["password"] == SECRET
    plan = plan_of(ws, "dev", opener=opener)
    assert plan.stages[0].status == "in-sync"
    fake.config["external.email"]["auth"]["password"] = "other"
    (diff,) = plan_of(ws, "dev", opener=opener).stages[0].config_changes
    assert [(c.path, c.before, c.after, c.secret) for c in diff.changes] == [
        ("auth.password", MASK, MASK, "changed")
    ]


def _fake_staging(fake: ResolvedTenant) -> Opener:
    def opener(workspace: Workspace, env: str, environ: Mapping[str, str]) -> Tenant:
        if env == "staging":
            return fake  # type: ignore[return-value]
        return open_tenant(workspace.environments[env], workspace=workspace, environ=environ)

    return opener


def test_tenant_without_promotion_receives_config_directly_above_the_first_stage(
    ws: Workspace,
) -> None:
    assert ws.environments["staging"].mutable is None  # no 'mutable:' in the file
    fake = ResolvedTenant({})
    plan = plan_of(ws, "staging", opener=_fake_staging(fake))
    staging = plan.stage("staging")
    assert (staging.status, staging.via, staging.mutable) == ("changes", "direct", True)
    assert staging.errors == ()
    with Tenants(ws, environ=ENVIRON, opener=_fake_staging(fake)) as ts:
        result = run(ws, "staging", ts, ambient=Ambient(environ=ENVIRON))
    assert result.applied == ("dev", "staging")
    assert fake.config["external.email"]["host"] == "smtp.staging.example.com"


def test_tenant_without_promotion_cannot_be_declared_immutable(tmp_path: Path) -> None:
    envs = default_envs(staging=env_yaml("staging", mutable=False))
    workspace = load_workspace(write_workspace(tmp_path / "ws", envs=envs))
    plan = plan_of(workspace, "staging", opener=_fake_staging(ResolvedTenant({})))
    staging = plan.stage("staging")
    assert staging.status == "blocked"
    (problem,) = staging.errors
    assert (problem.location, problem.path) == ("environments/staging.yaml", "mutable")
    assert "cannot receive promotions" in problem.message
    assert problem.hint == "remove 'mutable: false' from this file"


class ComparingTenant:
    """Only ``secret_matches``: answers by id, after waiting for a partner call."""

    def __init__(self, parties: int) -> None:
        self.barrier = threading.Barrier(parties, timeout=10)
        self.seen: list[str] = []

    def secret_matches(self, esv_id: str, value: SecretValue) -> bool | None:
        self.barrier.wait()  # breaks (BrokenBarrierError) unless calls overlap
        self.seen.append(esv_id)
        if esv_id == "esv-boom":
            raise TenantError("cannot read esv-boom", env="dev")
        return {"esv-a": True, "esv-b": False}.get(esv_id)


def test_secrets_are_compared_concurrently_and_reported_in_order() -> None:
    secrets = {key: SecretValue(f"value of {key}") for key in ("esv-c", "esv-a", "esv-b", "esv-d")}
    tenant = ComparingTenant(parties=4)
    found = compare_secrets(tenant, secrets, workers=4)  # type: ignore[arg-type]
    assert list(found.items()) == [
        ("esv-c", None),
        ("esv-a", True),
        ("esv-b", False),
        ("esv-d", None),
    ]
    assert sorted(tenant.seen) == sorted(secrets)


def test_a_failing_comparison_is_raised() -> None:
    secrets = {key: SecretValue("x") for key in ("esv-a", "esv-boom")}
    with pytest.raises(TenantError, match="esv-boom"):
        compare_secrets(ComparingTenant(parties=2), secrets, workers=2)  # type: ignore[arg-type]


def test_one_worker_compares_in_order_on_the_calling_thread() -> None:
    tenant = ComparingTenant(parties=1)
    secrets = {key: SecretValue("x") for key in ("esv-b", "esv-a")}
    assert compare_secrets(tenant, secrets, workers=1) == {"esv-b": False, "esv-a": True}  # type: ignore[arg-type]
    assert tenant.seen == ["esv-b", "esv-a"]


def _rendered(plan: Any) -> tuple[str, str, dict[str, Any]]:
    import json

    from promote.engine.render import render_plan

    return (
        render_plan(plan, "text"),
        render_plan(plan, "markdown"),
        json.loads(render_plan(plan, "json")),
    )


@pytest.mark.parametrize(
    "held",
    [{}, {"external.email": {"host": "old.example.com"}}],
    ids=["first create", "added sub-object"],
)
def test_an_added_object_holding_a_secret_lists_it_as_will_be_set(
    ws: Workspace, held: dict[str, Any]
) -> None:
    fake = ResolvedTenant(copy.deepcopy(held))

    def opener(workspace: Workspace, env: str, environ: Mapping[str, str]) -> Tenant:
        return fake  # type: ignore[return-value]

    plan = plan_of(ws, "dev", opener=opener)
    (diff,) = plan.stages[0].config_changes
    changes = {c.path: c for c in diff.changes}
    assert "auth" not in changes  # no masked container standing for a value
    assert (changes["auth.password"].after, changes["auth.password"].secret) == (MASK, "set")
    assert (changes["auth.enable"].before, changes["auth.enable"].after) == (ABSENT, True)
    assert changes["auth.username"].after == "dev-mailer"
    text, md, data = _rendered(plan)
    assert "        auth.password: will be set\n" in text
    assert "        auth.enable: (absent) -> true\n" in text
    assert "| `auth.password` | – | will be set |" in md
    assert MASK not in text and MASK not in md and SECRET not in text + md
    (json_diff,) = data["stages"][0]["config_changes"]
    assert {"path": "auth.password", "after": MASK} in json_diff["changes"]  # JSON stays masked


def test_effective_values_of_an_added_object_list_secret_leaves_as_will_be_set(
    ws: Workspace,
) -> None:
    plan = plan_of(ws, "dev")
    (effective,) = plan.stages[0].effective_changes
    changes = {c.path: c for c in effective.changes}
    assert "auth" not in changes
    assert changes["auth.password"].secret == "set"
    assert changes["auth.username"].after == "dev-mailer"
    text, md, _ = _rendered(plan)
    assert "        auth.password: will be set\n" in text
    assert MASK not in text and MASK not in md


def test_effective_value_before_that_cannot_be_resolved_is_a_flag_not_a_value(
    tmp_path: Path,
) -> None:
    extra = {"esv-brand-new": "New Brand"}
    envs = default_envs(dev=env_yaml("dev", extra_variables=extra))
    welcome = {"subject": "Welcome to &{esv.brand.new}", "from": "&{esv.email.provider.from}"}
    config = {"external.email": EMAIL, "emailTemplate/welcome": welcome}
    workspace = load_workspace(write_workspace(tmp_path / "ws", envs=envs, config=config))
    with Tenants(workspace, environ=ENVIRON) as ts:  # the tenant holds config, no ESVs
        ts["dev"].put_config("emailTemplate/welcome", welcome)
        ts["dev"].put_config("external.email", EMAIL)
    plan = plan_of(workspace, "dev")
    effective = {d.object: d for d in plan.stages[0].effective_changes}
    for diff in effective.values():
        assert diff.action == "modify" and diff.before_unknown
        assert all(c.before is ABSENT and c.before_unknown for c in diff.changes)
    welcome_changes = {c.path: c.after for c in effective["emailTemplate/welcome"].changes}
    assert welcome_changes == {"subject": "Welcome to New Brand", "from": "noreply@dev.example.com"}
    email = {c.path: c for c in effective["external.email"].changes}
    assert email["auth.password"].secret == "set"

    text, md, data = _rendered(plan)
    assert "cannot be resolved with the values" not in text + md + str(data)
    assert (
        "    ~ emailTemplate/welcome (before: cannot be resolved with the tenant's current "
        'values)\n        subject: (unknown) -> "Welcome to New Brand"\n'
    ) in text
    assert (
        "`emailTemplate/welcome` (before: cannot be resolved with the tenant's current values)"
    ) in md
    assert '| `subject` | (unknown) | <code>"Welcome to New Brand"</code> |' in md
    dev = data["stages"][0]
    (welcome_json,) = [
        d for d in dev["effective_changes"] if d["object"] == "emailTemplate/welcome"
    ]
    assert welcome_json["changes"][0] == {
        "path": "subject",
        "after": "Welcome to New Brand",
        "before_unknown": True,
    }
    assert MASK not in text and MASK not in md


# -- what grows with the changes: only what can differ is resolved ---------------------------


def _many(tmp_path: Path, n: int = 30, **extra: Any) -> Workspace:
    config: dict[str, Any] = {"external.email": EMAIL}
    for i in range(n):
        config[f"bench/o{i:02d}"] = {"host": "&{esv.email.provider.host}", "i": i}
    config.update(extra)
    workspace = load_workspace(write_workspace(tmp_path / "ws", config=config))
    apply(workspace, "dev")
    return workspace


def test_unchanged_objects_are_checked_but_not_resolved(tmp_path: Path) -> None:
    workspace = _many(tmp_path)
    set_config(workspace.root, "bench/o07", {"host": "&{esv.email.provider.host}", "i": 70})
    workspace = load_workspace(workspace.root)
    (stage,) = plan_of(workspace, "dev").stages
    assert [d.object for d in stage.config_changes] == ["bench/o07"]
    assert set(stage.resolved) == {"bench/o07", "external.email"}  # + the email objects
    assert [d.object for d in stage.effective_changes] == ["bench/o07"]

    # a missing ESV is found in every object, changed or not
    envs = default_envs()
    (workspace.root / "environments" / "dev.yaml").write_text(
        envs["dev"].replace("  esv-email-provider-host: smtp.dev.example.com\n", "")
    )
    (stage,) = plan_of(load_workspace(workspace.root), "dev").stages
    assert stage.status == "blocked"
    assert {p.location for p in stage.errors if p.esv_id == "esv-email-provider-host"} >= {
        f"bench/o{i:02d}" for i in range(30)
    }


def test_a_changed_esv_resolves_and_shows_exactly_the_objects_that_use_it(
    tmp_path: Path,
) -> None:
    brand = {"subject": "Hi from &{esv.brand|Acme}"}
    workspace = _many(tmp_path, **{"bench/brand": brand})
    dev = env_yaml("dev", extra_variables={"esv-brand": "Beta"})
    (workspace.root / "environments" / "dev.yaml").write_text(dev)
    (stage,) = plan_of(load_workspace(workspace.root), "dev").stages
    assert stage.config_changes == ()
    assert [(c.id, c.action) for c in stage.esv_changes] == [("esv-brand", "add")]
    assert set(stage.resolved) == {"bench/brand", "external.email"}
    (effective,) = stage.effective_changes
    assert effective.object == "bench/brand"
    assert [(c.path, c.before, c.after) for c in effective.changes] == [
        ("subject", "Hi from Acme", "Hi from Beta")
    ]


def test_an_unchanged_object_over_a_secret_is_still_resolved_and_checked(
    tmp_path: Path,
) -> None:
    over_secret = {"port": {"$int": "&{esv.email.provider.password}"}}
    workspace = load_workspace(write_workspace(tmp_path / "ws"))
    with Tenants(workspace, environ=ENVIRON) as ts:  # the tenant holds it already
        ts["dev"].put_config("bench/secret", over_secret)
    set_config(workspace.root, "bench/secret", over_secret)
    (stage,) = plan_of(load_workspace(workspace.root), "dev").stages
    assert all(d.object != "bench/secret" for d in stage.config_changes)
    assert stage.status == "blocked"
    assert any(p.location == "bench/secret" for p in stage.errors)
    assert SECRET not in repr(stage.errors)


def test_the_tenant_fingerprint_follows_every_held_object(tmp_path: Path) -> None:
    workspace = _many(tmp_path)
    first = plan_of(workspace, "dev").stages[0].tenant_fingerprint
    assert plan_of(workspace, "dev").stages[0].tenant_fingerprint == first
    with Tenants(workspace, environ=ENVIRON) as ts:
        ts["dev"].put_config("bench/o03", {"i": 3, "host": "&{esv.email.provider.host}"})
    # the same object with its keys in another order: the same content
    assert plan_of(workspace, "dev").stages[0].tenant_fingerprint == first
    with Tenants(workspace, environ=ENVIRON) as ts:
        ts["dev"].put_config("bench/o03", {"host": "&{esv.email.provider.host}", "i": 3.0})
    changed = plan_of(workspace, "dev").stages[0]
    assert changed.tenant_fingerprint != first
    assert [d.object for d in changed.config_changes] == ["bench/o03"]  # 3.0 is not 3
