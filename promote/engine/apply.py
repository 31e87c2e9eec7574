"""Apply a plan: the only engine code that changes a tenant.

``run`` holds the workspace run lock, finishes any unfinished run it finds (and says so),
checks every stage of the walk before changing anything (blocked -> ``BlockedError``, exit 3;
protected and not approved -> ``BlockedError``), then applies stage by stage in chain order,
skipping in-sync stages: ESVs, config (direct writes or promotion), restart hook + restart and
wait, check written ESVs are loaded, verify gates, history. The journal is written before each
step. The first failing stage stops the walk with ``ApplyError`` naming every environment's
state: applied, partially applied (what), or untouched.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from esv import Problem
from promote.engine.ambient import (
    Ambient,
    Planning,
    fingerprints_of,
    new_run_id,
    open_run_store,
    plan_for,
)
from promote.engine.plan import Plan
from promote.engine.recovery import recover
from promote.engine.render import PLAN_FORMAT, plan_to_json
from promote.engine.rollback import rollback, rollback_preview
from promote.engine.walk import apply_walk, approval_summary
from promote.errors import (
    BlockedError,
    StalePlanError,
)
from promote.state.base import StateStore
from promote.state.journal import prune_finished, run_lock
from promote.tenants.base import Tenant
from promote.workspace import Workspace

__all__ = [
    "Ambient",
    "RunResult",
    "approval_summary",
    "check_saved_plan",
    "rollback",
    "rollback_preview",
    "run",
    "run_plan",
]


@dataclass(frozen=True)
class RunResult:
    """What a run did."""

    run_id: str
    plan: Plan
    applied: tuple[str, ...]
    skipped: tuple[str, ...]
    notes: tuple[str, ...] = ()
    """Human lines: recovered runs, hook and verify summaries."""
    recovered: Mapping[str, str] = field(default_factory=dict)
    """Environments an unfinished run left changed that this run finished first (applied
    or recorded), each with the id of that unfinished run."""


def run(
    workspace: Workspace,
    to: str,
    tenants: Mapping[str, Tenant],
    *,
    approve: Collection[str] = (),
    saved_plan: Mapping[str, Any] | None = None,
    ambient: Ambient | None = None,
    store: StateStore | None = None,
    accept_drift: Collection[str] = (),
) -> RunResult:
    """Carry config and ESVs up the chain to ``to``; see the module docstring.

    ``saved_plan``: a JSON plan (``plan --format json``) to apply exactly; refused with
    ``StalePlanError`` when any environment changed since it was made. ``store``: where the
    lock, journals, history and records of what was applied live (default: the workspace's,
    :func:`open_store`); it is locked before any tenant is touched. ``accept_drift``:
    environments whose changes made outside promote are put back even under
    ``on_drift: block``.
    """
    ambient = ambient or Ambient()
    store = store or open_run_store(workspace, ambient)
    _in_chain(workspace, "--accept-drift", accept_drift)
    planning = Planning(store, fingerprints_of(tenants, store, ambient), tuple(accept_drift))
    _in_chain(workspace, "--approve", approve)
    workspace.walk(to)
    run_id = new_run_id(ambient.wall_clock)
    with run_lock(store, env=to, run_id=run_id, run=f"run to {to}", clock=ambient.wall_clock):
        notes, recovered = recover(workspace, tenants, ambient, store, planning)
        plan = plan_for(workspace, to, tenants, ambient, planning)
        if saved_plan is not None:
            check_saved_plan(saved_plan, plan)
        result = apply_walk(
            workspace,
            plan,
            tenants,
            store,
            approve=approve,
            ambient=ambient,
            run_id=run_id,
            fingerprints=planning.fingerprints,
        )
        prune_finished(store)
    return RunResult(
        result.run_id,
        plan,
        result.applied,
        result.skipped,
        tuple(notes) + result.notes,
        recovered,
    )


def _in_chain(workspace: Workspace, option: str, envs: Collection[str]) -> None:
    unknown = sorted(set(envs) - set(workspace.chain))
    if unknown:
        raise BlockedError(
            f"{option} names environments not in the chain: {', '.join(unknown)}; "
            f"the chain is {' -> '.join(workspace.chain)}"
        )


def run_plan(
    workspace: Workspace,
    saved_plan: Mapping[str, Any],
    tenants: Mapping[str, Tenant],
    *,
    approve: Collection[str] = (),
    ambient: Ambient | None = None,
    store: StateStore | None = None,
    accept_drift: Collection[str] = (),
) -> RunResult:
    """``run --plan FILE``: apply exactly ``saved_plan`` (its ``to``), or refuse if stale."""
    if not isinstance(saved_plan, Mapping) or saved_plan.get("format") != PLAN_FORMAT:
        raise BlockedError(
            f"not a promote plan: expected a JSON object with format {PLAN_FORMAT!r}; "
            "make one with: promote plan --to ENV --format json --out FILE"
        )
    to = saved_plan.get("to")
    if not isinstance(to, str):
        raise BlockedError("the plan has no 'to' environment; make it again with promote plan")
    return run(
        workspace,
        to,
        tenants,
        approve=approve,
        saved_plan=saved_plan,
        ambient=ambient,
        store=store,
        accept_drift=accept_drift,
    )


def check_saved_plan(saved: Mapping[str, Any], fresh: Plan) -> None:
    """Refuse (``StalePlanError``) unless ``fresh`` is the plan ``saved`` describes."""
    problems: list[Problem] = []
    fresh_json = plan_to_json(fresh)
    listed = saved.get("stages")
    stages = listed if isinstance(listed, list) else []
    saved_stages = {s.get("env"): s for s in stages if isinstance(s, Mapping)}
    fresh_stages = {s["env"]: s for s in fresh_json["stages"]}
    if list(saved_stages) != list(fresh_stages):
        problems.append(
            Problem(
                "plan",
                "stages",
                f"the plan walks {', '.join(map(str, saved_stages))} but the chain now walks "
                f"{', '.join(fresh_stages)}",
            )
        )
    for env, now_stage in fresh_stages.items():
        then = saved_stages.get(env)
        if then is None:
            continue
        prints = then.get("fingerprint")
        prints = prints if isinstance(prints, Mapping) else {}
        if prints.get("tenant") != now_stage["fingerprint"]["tenant"]:
            problems.append(
                Problem(env, "", "the tenant changed since the plan was made (config or ESVs)")
            )
        elif prints.get("inputs") != now_stage["fingerprint"]["inputs"]:
            problems.append(
                Problem(
                    env,
                    "",
                    "the workspace (config/, its environment file or a secret's value) changed",
                )
            )
        elif any(then.get(key) != now_stage[key] for key in ("config_changes", "esv_changes")):
            problems.append(Problem(env, "", "the changes differ from the plan"))
    if problems:
        raise StalePlanError(
            "the plan is stale: environments changed since it was made; nothing was changed."
            " Make a new plan and review it",
            problems,
        )
