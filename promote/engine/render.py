"""Plans as text, Markdown and JSON (the only jinja2 user). Pure: returns strings and data.

Text is for terminals, Markdown for pull-request comments (a summary table per environment,
details collapsed, never over :data:`MARKDOWN_LIMIT` characters: detail sections are dropped,
and counted, before anything is cut; the email objects' tables are kept before the others),
JSON is SPEC 4.2 (``promote.plan/1``).
"""

from __future__ import annotations

import json
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

from esv import MASK, Problem
from esv.jsonfile import dump_pretty
from promote.engine.diff import ABSENT, ObjectDiff, PathChange
from promote.engine.drift import drift_json
from promote.engine.plan import EsvChange, Plan, Stage

if TYPE_CHECKING:
    import jinja2

__all__ = [
    "MARKDOWN_LIMIT",
    "PLAN_FORMAT",
    "Format",
    "plan_to_json",
    "render_json",
    "render_plan",
    "render_template",
]

PLAN_FORMAT = "promote.plan/1"
MARKDOWN_LIMIT = 65_536
"""GitHub's limit for a pull-request comment body, in characters."""

Format = Literal["text", "markdown", "json"]

_VALUE_CHARS = 200


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def _short(value: Any, limit: int = _VALUE_CHARS) -> str:
    text = _compact(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cell(value: Any) -> str:
    """A JSON value as a Markdown table cell: code, escaped so it cannot break the table."""
    import html  # Markdown only: not loaded for text or JSON

    text = html.escape(_short(value), quote=False).replace("|", "&#124;").replace("\n", " ")
    return f"<code>{text}</code>"


_SECRET_AFTER = {"set": "will be set", "changed": "changed (value not shown)"}
"""How a secret-derived after-value reads in text and Markdown (JSON keeps it masked)."""


BEFORE_UNKNOWN = "before: cannot be resolved with the tenant's current values"
"""What text and Markdown say of an object whose value before cannot be told."""


def _change_text(change: PathChange) -> str:
    """``before -> after`` for the text plan; secret-derived values are never shown."""
    if change.secret is not None:
        return _SECRET_AFTER[change.secret]
    if change.before_unknown:
        before = "(unknown)"
    else:
        before = "(absent)" if change.before is ABSENT else _short(change.before)
    after = "(absent)" if change.after is ABSENT else _short(change.after)
    return f"{before} -> {after}"


def _before_cell(change: PathChange) -> str:
    if change.before_unknown:
        return "(unknown)"
    if change.secret is not None:
        return "–" if change.secret == "set" else "(not shown)"
    return "–" if change.before is ABSENT else _cell(change.before)


def _after_cell(change: PathChange) -> str:
    if change.secret is not None:
        return _SECRET_AFTER[change.secret]
    return "–" if change.after is ABSENT else _cell(change.after)


def _drift_cell(value: Any) -> str:
    """A drift side as a Markdown cell: absent, masked (a secret) or the value."""
    if value is ABSENT:
        return "–"
    if value == MASK:
        return "(not shown)"
    return _cell(value)


def _md(text: str) -> str:
    import html  # Markdown only: not loaded for text or JSON

    return html.escape(str(text), quote=False).replace("|", "&#124;").replace("\n", " ")


@cache
def _environment() -> jinja2.Environment:
    # Made on first use: a JSON plan never loads jinja2.
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("promote", "templates"),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["short"] = _short
    env.filters["cell"] = _cell
    env.filters["md"] = _md
    env.filters["change_text"] = _change_text
    env.filters["before_cell"] = _before_cell
    env.filters["after_cell"] = _after_cell
    env.filters["drift_cell"] = _drift_cell
    env.tests["absent"] = lambda value: value is ABSENT
    env.globals["before_unknown"] = BEFORE_UNKNOWN
    return env


def render_template(name: str, **context: Any) -> str:
    """Render one of the package's templates (``promote/templates/<name>``)."""
    return _environment().get_template(name).render(**context)


def _change_json(change: PathChange) -> dict[str, Any]:
    data: dict[str, Any] = {"path": change.path}
    if change.before is not ABSENT:
        data["before"] = change.before
    if change.after is not ABSENT:
        data["after"] = change.after
    if change.before_unknown:
        data["before_unknown"] = True
    return data


def _diff_json(diff: ObjectDiff) -> dict[str, Any]:
    return {
        "object": diff.object,
        "action": diff.action,
        "changes": [_change_json(change) for change in diff.changes],
    }


def _esv_json(change: EsvChange) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": change.id,
        "kind": change.kind,
        "action": change.action,
        "type": change.type,
    }
    if change.kind == "variable":
        if change.before is not None:
            data["before"] = change.before
        if change.after is not None:
            data["after"] = change.after
    if change.reason is not None:
        data["reason"] = change.reason
    return data


def _problem_json(problem: Problem) -> dict[str, Any]:
    data: dict[str, Any] = {
        "location": problem.location,
        "path": problem.path,
        "message": problem.message,
        "text": str(problem),
    }
    if problem.esv_id:
        data["esv_id"] = problem.esv_id
    return data


def _stage_json(stage: Stage) -> dict[str, Any]:
    return {
        "env": stage.env,
        "source": stage.source,
        "status": stage.status,
        "missing_esvs": list(stage.missing_esvs),
        "errors": [_problem_json(p) for p in stage.errors],
        "warnings": [_problem_json(p) for p in stage.warnings],
        "config_changes": [_diff_json(d) for d in stage.config_changes],
        "esv_changes": [_esv_json(c) for c in stage.esv_changes],
        "restart": stage.restart,
        "unloaded_esvs": list(stage.unloaded),
        "effective_changes": [_diff_json(d) for d in stage.effective_changes],
        "mutable": stage.mutable,
        "protected": stage.protected,
        "via": stage.via,
        "fingerprint": {"tenant": stage.tenant_fingerprint, "inputs": stage.inputs_fingerprint},
        "drift": [drift_json(d) for d in stage.drift],
    }


def plan_to_json(plan: Plan) -> dict[str, Any]:
    """The plan as SPEC 4.2 data (plus fingerprints, chain, effective values and drift):
    nothing in it depends on when or where it was made (SPEC 4.3)."""
    return {
        "format": PLAN_FORMAT,
        "to": plan.to,
        "chain": list(plan.chain),
        "stages": [_stage_json(stage) for stage in plan.stages],
    }


def plan_error_json(to: str, problems: list[Problem], message: str) -> dict[str, Any]:
    """What ``plan --format json`` prints when the workspace as a whole cannot be planned
    (SPEC 4.3): still one ``promote.plan/1`` object, with no stages and every problem."""
    errors = [_problem_json(p) for p in problems] or [
        {"location": "", "path": "", "message": message, "text": message}
    ]
    return {"format": PLAN_FORMAT, "to": to, "stages": [], "errors": errors}


def render_json(data: Any) -> str:
    """Stable, indented JSON text with a final newline."""
    return dump_pretty(data) + "\n"


def _counts(stage: Stage) -> dict[str, int]:
    counts = {"add": 0, "modify": 0, "delete": 0}
    for diff in stage.config_changes:
        counts[diff.action] += 1
    return counts


def render_plan(plan: Plan, fmt: Format = "text", *, limit: int = MARKDOWN_LIMIT) -> str:
    """The plan as ``text``, ``markdown`` (at most ``limit`` characters) or ``json``."""
    if fmt == "json":
        return render_json(plan_to_json(plan))
    if fmt == "text":
        return render_template("plan.txt.j2", plan=plan, counts=_counts)
    if fmt == "markdown":
        return _render_markdown(plan, limit)
    raise ValueError(f"unknown plan format {fmt!r}")


_PROBLEMS, _DRIFT, _ESVS, _RESTART, _EMAIL_OBJECT, _OBJECT, _EFFECTIVE = range(7)
"""What a Markdown plan keeps first when it must leave detail out (lower keeps first): the
summary table always, then problems, changes made outside promote (drift), ESV tables,
restart notes, the email objects' tables (``external.email``, ``emailTemplate/*``), the
other config object tables, in chain order, then effective values."""


def _object_rank(object_id: str) -> int:
    email = object_id == "external.email" or object_id.startswith("emailTemplate/")
    return _EMAIL_OBJECT if email else _OBJECT


def _render_markdown(plan: Plan, limit: int) -> str:
    module: Any = _environment().get_template("plan.md.j2").make_module({"counts": _counts})
    head = str(module.summary(plan))
    stages = [stage for stage in plan.stages if stage.status != "in-sync"]
    details = [_details(module, stage) for stage in stages]
    heading = str(module.effective_heading())
    total = sum(len(found) for found in details)
    # Room for every section's frame (with the longest omission note), the effective-values
    # heading of each, and the footer; then parts by priority, stage by stage in chain order.
    budget = limit - len(head) - len(str(module.footer(total)))
    budget -= sum(len(str(module.section(stage, [heading], total))) for stage in stages)
    ranked = sorted(
        (rank, index, order, len(text.strip()) + 2)
        for index, found in enumerate(details)
        for order, (rank, text) in enumerate(found)
    )
    kept: set[tuple[int, int]] = set()
    for _rank, index, order, cost in ranked:
        if cost <= budget:
            kept.add((index, order))
            budget -= cost
    body = []
    for index, (stage, found) in enumerate(zip(stages, details, strict=True)):
        chosen: list[str] = []
        for order, (rank, text) in enumerate(found):
            if (index, order) not in kept:
                continue
            if rank == _EFFECTIVE and heading not in chosen:
                chosen.append(heading)
            chosen.append(text)
        shown = sum(1 for order in range(len(found)) if (index, order) in kept)
        body.append(str(module.section(stage, chosen, len(found) - shown)))
    text = head + "".join(body) + str(module.footer(total - len(kept)))
    if len(text) > limit:
        # Even the frames do not fit (thousands of environments): the summary table alone.
        text = head + str(module.footer(total))
    return text[:limit] if len(text) > limit else text


def _details(module: Any, stage: Stage) -> list[tuple[int, str]]:
    """A stage's detail parts in reading order, each with its priority."""
    found: list[tuple[int, str]] = []
    if stage.errors:
        found.append((_PROBLEMS, str(module.problems(stage))))
    if stage.drift:
        found.append((_DRIFT, str(module.drift(stage))))
    if stage.esv_changes:
        found.append((_ESVS, str(module.esvs(stage))))
    if stage.restart:
        found.append((_RESTART, str(module.restart(stage))))
    found += [
        (_object_rank(diff.object), str(module.config_object(diff)))
        for diff in stage.config_changes
    ]
    found += [(_EFFECTIVE, str(module.effective_object(diff))) for diff in stage.effective_changes]
    return found
