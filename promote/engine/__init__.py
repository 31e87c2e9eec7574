"""The promotion engine: plan (pure), render (pure), apply (the only step that changes tenants).

``build_plan`` reads the workspace and the tenants and returns a :class:`Plan`;
``render_plan`` turns it into text, Markdown or JSON; ``run`` applies the walk with a journal,
the workspace run lock and recovery of unfinished runs; ``rollback`` undoes an environment's
last promotion; ``environment_status`` and ``read_history`` answer ``status`` and ``history``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from esv.lazy import lazy_exports

if TYPE_CHECKING:  # at run time each name loads on first use (see __getattr__)
    from promote.engine.apply import Ambient, RunResult, check_saved_plan, rollback, run, run_plan
    from promote.engine.diff import ABSENT, ObjectDiff, PathChange, diff_object, diff_objects
    from promote.engine.plan import EsvChange, Plan, Stage, build_plan
    from promote.engine.render import MARKDOWN_LIMIT, PLAN_FORMAT, plan_to_json, render_plan
    from promote.engine.session import Tenants
    from promote.engine.status import EnvironmentStatus, environment_status
    from promote.state.history import HistoryRecord, read_history

__all__ = [
    "ABSENT",
    "MARKDOWN_LIMIT",
    "PLAN_FORMAT",
    "Ambient",
    "EnvironmentStatus",
    "EsvChange",
    "HistoryRecord",
    "ObjectDiff",
    "PathChange",
    "Plan",
    "RunResult",
    "Stage",
    "Tenants",
    "build_plan",
    "check_saved_plan",
    "diff_object",
    "diff_objects",
    "environment_status",
    "plan_to_json",
    "read_history",
    "render_plan",
    "rollback",
    "run",
    "run_plan",
]

_EXPORTS = {
    "annotations": "__future__",
    "Ambient": "promote.engine.apply",
    "RunResult": "promote.engine.apply",
    "check_saved_plan": "promote.engine.apply",
    "rollback": "promote.engine.apply",
    "run": "promote.engine.apply",
    "run_plan": "promote.engine.apply",
    "ABSENT": "promote.engine.diff",
    "ObjectDiff": "promote.engine.diff",
    "PathChange": "promote.engine.diff",
    "diff_object": "promote.engine.diff",
    "diff_objects": "promote.engine.diff",
    "EsvChange": "promote.engine.plan",
    "Plan": "promote.engine.plan",
    "Stage": "promote.engine.plan",
    "build_plan": "promote.engine.plan",
    "MARKDOWN_LIMIT": "promote.engine.render",
    "PLAN_FORMAT": "promote.engine.render",
    "plan_to_json": "promote.engine.render",
    "render_plan": "promote.engine.render",
    "Tenants": "promote.engine.session",
    "EnvironmentStatus": "promote.engine.status",
    "environment_status": "promote.engine.status",
    "HistoryRecord": "promote.state.history",
    "read_history": "promote.state.history",
}
"""Where each public name lives: importing one engine module (``promote.engine.plan``) does
not import the others (``apply`` and, through it, the email stack)."""


__getattr__ = lazy_exports(__name__, _EXPORTS, globals())
