"""History records, the append-only history file, and environment status."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from promote.engine.apply import Ambient, run
from promote.engine.session import Tenants
from promote.engine.status import environment_status
from promote.errors import TenantError
from promote.files import StateFileError
from promote.state.history import (
    HistoryRecord,
    append_history,
    config_digest,
    now,
    read_history,
)
from promote.state.local import LocalStore
from promote.tenants.base import EsvWrite
from promote.workspace import Workspace, load_workspace
from tests.promote.engine.workspaces import ENVIRON, faulty_opener, set_config, write_workspace


def _record(env: str = "dev", run_id: str = "r1", **kwargs: object) -> HistoryRecord:
    return HistoryRecord(
        time="2026-01-02T03:04:05+00:00",
        run_id=run_id,
        env=env,
        action="promote",
        source="config",
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return load_workspace(write_workspace(tmp_path / "ws"))


def test_record_round_trips_and_ignores_unknown_keys() -> None:
    record = _record(config_added=("a",), esvs=("add variable esv-x",), restarted=True)
    data = json.loads(json.dumps(record.to_json()))
    assert HistoryRecord.from_json({**data, "future": 1}) == record


def test_summary() -> None:
    assert _record().summary() == "no changes"
    record = _record(config_added=("a", "b"), config_deleted=("c",), esvs=("x",), restarted=True)
    assert record.summary() == "config +2 ~0 -1, 1 ESV change, restarted"
    assert _record(esvs=("x", "y")).summary() == "2 ESV changes"
    # A failed stage is marked by its caller ("promote (failed)") and its note, not again here.
    assert _record(esvs=("x",), failed=True).summary() == "1 ESV change"


def test_config_digest_ignores_key_order() -> None:
    assert config_digest({"a": {"x": 1, "y": 2}}) == config_digest({"a": {"y": 2, "x": 1}})
    assert config_digest({"a": 1}) != config_digest({"a": 2})


def test_now_reads_the_given_clock_in_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert now(lambda: datetime(2026, 1, 2, 5, 4, 5, 999, plus_two)) == (
        "2026-01-02T03:04:05+00:00"
    )
    assert now().endswith("+00:00")


def test_append_adds_one_line_per_record_and_read_filters_by_env(tmp_path: Path) -> None:
    assert read_history(LocalStore(tmp_path)) == []
    append_history(LocalStore(tmp_path), _record("dev", "r1"))
    append_history(LocalStore(tmp_path), _record("staging", "r1"))
    append_history(LocalStore(tmp_path), _record("dev", "r2"))
    lines = (tmp_path / "history.jsonl").read_text().splitlines()
    assert [json.loads(line)["run_id"] for line in lines] == ["r1", "r1", "r2"]
    assert [r.run_id for r in read_history(LocalStore(tmp_path), env="dev")] == ["r1", "r2"]
    assert (tmp_path / "history.jsonl").stat().st_mode & 0o777 == 0o600


def test_append_does_not_rewrite_what_is_there(tmp_path: Path) -> None:
    append_history(LocalStore(tmp_path), _record(run_id="r1"))
    path = tmp_path / "history.jsonl"
    before = path.stat().st_ino
    append_history(LocalStore(tmp_path), _record(run_id="r2"))
    assert path.stat().st_ino == before  # appended in place, not replaced


def test_a_torn_last_line_is_skipped_with_a_note_and_the_next_append_starts_afresh(
    tmp_path: Path,
) -> None:
    append_history(LocalStore(tmp_path), _record(run_id="r1"))
    path = tmp_path / "history.jsonl"
    whole = json.dumps(_record(run_id="r2").to_json(), sort_keys=True)
    with path.open("a") as handle:
        handle.write(whole[: len(whole) // 2])  # a write cut off by a crash
    notes: list[str] = []
    assert [r.run_id for r in read_history(LocalStore(tmp_path), notes=notes)] == ["r1"]
    assert notes == [f"{path}: line 2 is incomplete (a write was cut off); skipped"]
    assert read_history(LocalStore(tmp_path)) == read_history(
        LocalStore(tmp_path), notes=[]
    )  # notes are optional

    append_history(LocalStore(tmp_path), _record(run_id="r3"))
    notes = []
    assert [r.run_id for r in read_history(LocalStore(tmp_path), notes=notes)] == ["r1", "r3"]
    assert notes == [f"{path}: line 2 cannot be read; skipped"]


def test_append_failure_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "history.jsonl").mkdir()
    with pytest.raises(StateFileError, match="history.jsonl"):
        append_history(LocalStore(tmp_path), _record())


def _tenants(workspace: Workspace, **kwargs: object) -> Tenants:
    return Tenants(workspace, environ=ENVIRON, **kwargs)  # type: ignore[arg-type]


def test_status_before_and_after_a_run(ws: Workspace) -> None:
    with _tenants(ws) as ts:
        fresh = environment_status(ws, ts, LocalStore(ws.state_dir))
        assert [(s.env, s.lower, s.in_sync, s.last, s.drift) for s in fresh] == [
            ("dev", "config", False, None, None),
            ("staging", "dev", True, None, None),
            ("prod", "staging", True, None, None),
        ]
        assert fresh[0].differing == ("external.email",)
        # staging and prod hold what dev holds (nothing), but dev differs from config.
        assert [s.lower_in_sync for s in fresh] == [None, False, False]
        run(ws, "staging", ts, ambient=Ambient(environ=ENVIRON))
        after = environment_status(ws, ts, LocalStore(ws.state_dir))
    assert [(s.env, s.in_sync, s.drift) for s in after] == [
        ("dev", True, False),
        ("staging", True, False),
        ("prod", False, None),
    ]
    assert after[1].last is not None and after[1].last.env == "staging"
    assert [s.lower_in_sync for s in after] == [True, True, None]
    assert all(s.readable for s in fresh + after)
    assert all(s.note is None and s.pending_esvs == () for s in after)


def test_status_shows_drift_and_pending_esvs(ws: Workspace) -> None:
    with _tenants(ws) as ts:
        run(ws, "dev", ts, ambient=Ambient(environ=ENVIRON))
        dev = ts["dev"]
        dev.put_config("external.email", {"host": "changed by hand"})
        dev.write_esvs([EsvWrite("esv-email-provider-host", "variable", "modify", "h")])
        (status,) = environment_status(ws, ts, LocalStore(ws.state_dir), envs=["dev"])
    assert status.drift is True and status.in_sync is False
    assert status.pending_esvs == ("esv-email-provider-host",)


def test_a_tenant_whose_esvs_cannot_be_read_does_not_stop_status(ws: Workspace) -> None:
    denied = TenantError("403 Forbidden: not allowed to read ESVs", env="staging", status=403)
    with _tenants(ws) as ts:
        run(ws, "staging", ts, ambient=Ambient(environ=ENVIRON))
    set_config(ws.root, "emailTemplate/welcome", {"enabled": False})
    with _tenants(ws, opener=faulty_opener("staging", "list_variables", denied)) as ts:
        statuses = environment_status(ws, ts, LocalStore(ws.state_dir))
    dev, staging, prod = statuses
    assert staging.in_sync is True and staging.drift is False and staging.pending_esvs == ()
    assert staging.note is not None
    assert staging.note.startswith("its ESVs cannot be read: ")
    assert not staging.readable and dev.readable and prod.readable
    assert "403 Forbidden" in staging.note
    assert dev.note is None and prod.note is None
    assert prod.in_sync is False


def test_an_unreadable_tenant_is_named_and_the_stage_above_cannot_be_compared(
    ws: Workspace,
) -> None:
    down = TenantError("connection refused", env="dev")
    with _tenants(ws, opener=faulty_opener("dev", "list_config_ids", down)) as ts:
        dev, staging, _prod = environment_status(ws, ts, LocalStore(ws.state_dir))
    assert dev.in_sync is None and dev.note is not None
    assert dev.note.startswith("cannot be read: ") and "connection refused" in dev.note
    assert staging.in_sync is None
    # The whole error is in dev's note only; staging's refers to it.
    assert staging.note == "cannot compare: dev cannot be read (above)"
    assert not dev.readable and staging.readable  # staging was read; dev was not
    assert _prod.lower_in_sync is None  # equal to staging, whose own sync cannot be told
    # Without dev's entry listed, staging's note carries dev's error itself.
    with _tenants(ws, opener=faulty_opener("dev", "list_config_ids", down)) as ts:
        (alone,) = environment_status(ws, ts, LocalStore(ws.state_dir), envs=["staging"])
    assert (
        alone.note == f"cannot compare: dev cannot be read ({dev.note[len('cannot be read: ') :]})"
    )


def test_status_passes_on_the_notes_of_unreadable_history_lines(ws: Workspace) -> None:
    with _tenants(ws) as ts:
        run(ws, "dev", ts, ambient=Ambient(environ=ENVIRON))
        with (ws.state_dir / "history.jsonl").open("a") as history:
            history.write('{"time": "cut off')
        notes: list[str] = []
        dev, *_ = environment_status(ws, ts, LocalStore(ws.state_dir), notes=notes)
    assert dev.last is not None
    assert notes == [
        f"{ws.state_dir / 'history.jsonl'}: line 2 is incomplete (a write was cut off); skipped"
    ]


def test_history_times_come_from_the_wall_clock(ws: Workspace) -> None:
    fixed = datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC)
    with _tenants(ws) as ts:
        result = run(ws, "dev", ts, ambient=Ambient(environ=ENVIRON, wall_clock=lambda: fixed))
    assert result.run_id.startswith("20300506T070809Z-")
    (record,) = read_history(LocalStore(ws.state_dir))
    assert record.time == "2030-05-06T07:08:09+00:00" and record.run_id == result.run_id
    journal = json.loads((ws.state_dir / "runs" / f"{result.run_id}.json").read_text())
    assert journal["started"] == journal["ended"] == "2030-05-06T07:08:09+00:00"
    assert {step["at"] for step in journal["stages"][0]["steps"]} == {journal["started"]}
