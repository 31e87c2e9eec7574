"""Rendering plans: text, Markdown within the comment limit, JSON per SPEC 4.2."""

from __future__ import annotations

import json

from esv import MASK, Problem
from promote.engine.diff import ABSENT, ObjectDiff, PathChange
from promote.engine.plan import EsvChange, Plan, Stage
from promote.engine.render import MARKDOWN_LIMIT, plan_to_json, render_plan


def stage(env: str, source: str, diffs: list[ObjectDiff], **kw: object) -> Stage:
    values: dict[str, object] = {
        "env": env,
        "source": source,
        "status": "changes" if diffs else "in-sync",
        "mutable": source == "config",
        "protected": False,
        "via": "direct" if source == "config" else "promotion",
        "missing_esvs": (),
        "errors": (),
        "warnings": (),
        "config_changes": tuple(diffs),
        "effective_changes": (),
        "esv_changes": (),
        "restart": False,
        "unloaded": (),
        "tenant_fingerprint": "t",
        "inputs_fingerprint": "i",
    }
    values.update(kw)
    return Stage(**values)  # type: ignore[arg-type]


def plan(*stages: Stage) -> Plan:
    return Plan(
        to=stages[-1].env,
        chain=tuple(s.env for s in stages),
        stages=stages,
    )


def modify(object_id: str, n: int = 3) -> ObjectDiff:
    changes = tuple(PathChange(f"field{i}", f"old {i}", f"new | value {i}") for i in range(n))
    return ObjectDiff(object_id, "modify", changes)


def test_json_omits_before_on_add_and_after_on_delete() -> None:
    diffs = [
        ObjectDiff("a", "add", (PathChange("x", ABSENT, 1),)),
        ObjectDiff("b", "delete", (PathChange("y", 2, ABSENT),)),
    ]
    data = plan_to_json(plan(stage("dev", "config", diffs)))
    changes = data["stages"][0]["config_changes"]
    assert changes == [
        {"object": "a", "action": "add", "changes": [{"path": "x", "after": 1}]},
        {"object": "b", "action": "delete", "changes": [{"path": "y", "before": 2}]},
    ]
    assert data["format"] == "promote.plan/1"
    json.dumps(data)


def test_text_shows_blocked_problems_and_missing_esvs() -> None:
    problem = Problem("external.email", "host", "esv-x is not defined", esv_id="esv-x")
    blocked = stage(
        "staging", "dev", [], status="blocked", errors=(problem,), missing_esvs=("esv-x",)
    )
    text = render_plan(plan(stage("dev", "config", []), blocked), "text")
    assert "staging <- dev: blocked" in text
    assert "- external.email: host: esv-x is not defined" in text
    assert "missing ESVs: esv-x" in text
    assert "Summary: 0 with changes, 1 in sync, 1 blocked." in text


def test_markdown_escapes_table_breaking_characters() -> None:
    text = render_plan(plan(stage("dev", "config", [modify("a")])), "markdown")
    assert "new &#124; value 0" in text
    assert "new | value" not in text


def test_secret_esv_change_shows_neither_value() -> None:
    change = EsvChange("esv-pw", "secret", "modify")
    s = stage("dev", "config", [], status="changes", esv_changes=(change,), restart=True)
    md = render_plan(plan(s), "markdown")
    assert "| `esv-pw` | secret | ✏️ modify | (secret) | (changed secret) |" in md
    assert "~ esv-pw (secret) changed (value not shown)" in render_plan(plan(s), "text")


def test_huge_markdown_stays_within_the_limit_and_says_what_was_omitted() -> None:
    diffs = [modify(f"object/{i:05d}", 5) for i in range(3000)]
    big = plan(stage("dev", "config", diffs), stage("staging", "dev", diffs))
    md = render_plan(big, "markdown")
    assert len(md) <= MARKDOWN_LIMIT
    assert md.count("<details>") == md.count("</details>") == 2
    assert "| `staging` | `dev` | 🟡 changes | 0 add, 3000 modify, 0 delete |" in md
    assert "detail sections omitted in total (comment size limit)" in md
    # every table that is there is whole: each row ends with a pipe
    rows = [line for line in md.splitlines() if line.startswith("|")]
    assert all(line.endswith("|") for line in rows)
    kept = md.count("**✏️ modify `object/")
    assert 0 < kept < 6000
    assert f"_{6000 - kept} detail sections omitted in total" in md


def test_small_markdown_keeps_every_detail() -> None:
    md = render_plan(plan(stage("dev", "config", [modify("a"), modify("b")])), "markdown")
    assert "omitted" not in md
    assert md.count("**✏️ modify `") == 2


def test_secret_config_values_read_will_be_set_or_changed_and_json_stays_masked() -> None:
    diff = ObjectDiff(
        "external.email",
        "modify",
        (
            PathChange("auth.password", ABSENT, MASK, secret="set"),
            PathChange("auth.clientSecret", MASK, MASK, secret="changed"),
            PathChange("host", "old.example.com", "new.example.com"),
        ),
    )
    p = plan(stage("okta", "dev", [diff], via="direct"))
    text = render_plan(p, "text")
    assert "        auth.password: will be set\n" in text
    assert "        auth.clientSecret: changed (value not shown)\n" in text
    assert '        host: "old.example.com" -> "new.example.com"\n' in text
    md = render_plan(p, "markdown")
    assert "| `auth.password` | – | will be set |" in md
    assert "| `auth.clientSecret` | (not shown) | changed (value not shown) |" in md
    assert MASK not in text and MASK not in md
    (changes,) = [d["changes"] for d in plan_to_json(p)["stages"][0]["config_changes"]]
    assert changes[:2] == [
        {"path": "auth.password", "after": MASK},
        {"path": "auth.clientSecret", "before": MASK, "after": MASK},
    ]


def test_secret_effective_values_read_the_same_way() -> None:
    diff = ObjectDiff(
        "external.email", "modify", (PathChange("auth.password", ABSENT, MASK, secret="set"),)
    )
    s = stage("dev", "config", [], status="changes", effective_changes=(diff,))
    assert "        auth.password: will be set\n" in render_plan(plan(s), "text")
    assert "| `auth.password` | – | will be set |" in render_plan(plan(s), "markdown")


def test_text_plan_layout_is_exact() -> None:
    config = ObjectDiff(
        "external.email",
        "modify",
        (PathChange("host", "&{esv.a}", "&{esv.b}"), PathChange("port", 25, ABSENT)),
    )
    added = ObjectDiff("emailTemplate/welcome", "add", (PathChange("enabled", ABSENT, True),))
    effective = ObjectDiff(
        "external.email", "modify", (PathChange("host", "a.example.com", "b.example.com"),)
    )
    esvs = (
        EsvChange("esv-b", "variable", "add", after="b.example.com"),
        EsvChange("esv-port", "variable", "modify", "int", before="25", after="587"),
        EsvChange("esv-pw", "secret", "modify"),
    )
    warning = Problem("environments/dev.yaml", "variables.esv-old", "esv-old is not used")
    dev = stage(
        "dev",
        "config",
        [config, added],
        esv_changes=esvs,
        effective_changes=(effective,),
        restart=True,
        warnings=(warning,),
    )
    text = render_plan(plan(dev, stage("staging", "dev", [])), "text")
    assert text == (
        "Plan to staging (dev -> staging)\n"
        "\n"
        "dev <- config: changes\n"
        "  warning: environments/dev.yaml: variables.esv-old: esv-old is not used\n"
        "  config (written directly): 1 to add, 1 to modify, 0 to delete\n"
        "    ~ external.email\n"
        '        host: "&{esv.a}" -> "&{esv.b}"\n'
        "        port: 25 -> (absent)\n"
        "    + emailTemplate/welcome\n"
        "        enabled: (absent) -> true\n"
        "  ESVs: 3 to change\n"
        '    + esv-b (variable, string) = "b.example.com"\n'
        '    ~ esv-port (variable, int): "25" -> "587"\n'
        "    ~ esv-pw (secret) changed (value not shown)\n"
        "  effective values (as the tenant runs them; secrets masked):\n"
        "    ~ external.email\n"
        '        host: "a.example.com" -> "b.example.com"\n'
        "  restart: yes (ESVs change)\n"
        "\n"
        "staging <- dev: in-sync\n"
        "\n"
        "Summary: 1 with changes, 1 in sync, 0 blocked.\n"
    )


def test_huge_markdown_keeps_every_stages_problems_esv_tables_and_restart_first() -> None:
    diffs = [modify(f"object/{i:05d}", 4) for i in range(1500)]
    esvs = tuple(
        EsvChange(f"esv-var-{i:02d}", "variable", "modify", before=f"old {i}", after=f"new {i}")
        for i in range(20)
    ) + (EsvChange("esv-pw", "secret", "modify"),)
    problem = Problem("config/x.json", "host", "esv-missing is not defined", esv_id="esv-missing")
    stages = [
        stage(
            env,
            source,
            diffs,
            esv_changes=esvs,
            restart=True,
            effective_changes=tuple(diffs[:50]),
            **(
                {"status": "blocked", "errors": (problem,), "missing_esvs": ("esv-missing",)}
                if env == "prod"
                else {}
            ),
        )
        for env, source in (("dev", "config"), ("staging", "dev"), ("prod", "staging"))
    ]
    md = render_plan(plan(*stages), "markdown")
    assert len(md) <= MARKDOWN_LIMIT
    sections = md.split("<details>")[1:]
    assert len(sections) == 3
    for section in sections:
        assert "**ESVs**" in section and "| `esv-var-19` |" in section
        assert "| `esv-pw` | secret | ✏️ modify | (secret) | (changed secret) |" in section
        assert "**Restart needed** (ESVs change)" in section
        assert "more detail sections omitted to stay within the comment size limit" in section
    assert "**Blocked** (1 problem; missing ESVs: `esv-missing`)" in sections[2]
    # object tables fill what is left in chain order: dev's first, none of prod's
    dev_kept = sections[0].count("**✏️ modify `object/")
    assert dev_kept > 0 and sections[2].count("**✏️ modify `object/") == 0
    assert "Effective values" not in md  # last priority: nothing left for them
    omitted = [int(s.split("_")[1].split(" ")[0]) for s in sections if "more detail sections" in s]
    assert omitted == [1550 - dev_kept, 1550 - sections[1].count("**✏️ modify `object/"), 1550]
    assert f"_{sum(omitted)} detail sections omitted in total" in md
    rows = [line for line in md.splitlines() if line.startswith("|")]
    assert all(line.endswith("|") for line in rows)


def test_huge_markdown_keeps_the_email_objects_tables_before_the_others() -> None:
    # Sorted by id, the email objects come after a thousand others; they are kept anyway.
    diffs = [modify(f"alpha/{i:05d}", 4) for i in range(1200)]
    diffs += [modify("emailTemplate/welcome", 4), modify("external.email", 4)]
    diffs += [modify(f"zulu/{i:05d}", 4) for i in range(300)]
    stages = [
        stage("dev", "config", diffs),
        stage("staging", "dev", diffs),
        stage("prod", "staging", diffs),
    ]
    md = render_plan(plan(*stages), "markdown")
    assert len(md) <= MARKDOWN_LIMIT
    sections = md.split("<details>")[1:]
    for section in sections:
        assert "**✏️ modify `external.email`**" in section
        assert "**✏️ modify `emailTemplate/welcome`**" in section
        assert "more detail sections omitted" in section
    assert sections[2].count("**✏️ modify `alpha/") == 0  # no room left for prod's others
    # reading order within a section is kept: the alpha tables dev has room for come first
    assert 0 < sections[0].count("**✏️ modify `alpha/")
    assert sections[0].index("`alpha/00000`") < sections[0].index("`emailTemplate/welcome`")


def test_markdown_with_room_keeps_the_effective_values_under_one_heading() -> None:
    diffs = [modify("a"), modify("b")]
    s = stage("dev", "config", diffs, effective_changes=tuple(diffs), restart=True)
    md = render_plan(plan(s), "markdown")
    assert "omitted" not in md
    assert md.count("**Effective values**") == 1
    assert md.index("**Restart needed**") < md.index("**✏️ modify `a`**")
    assert md.index("**✏️ modify `b`**") < md.index("**Effective values**")
