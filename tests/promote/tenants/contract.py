"""The Tenant contract: behaviour every ``promote.tenants.base.Tenant`` must show.

Kind-agnostic. To run it against an implementation, subclass :class:`TenantContract` in a
``test_*.py`` module with a name starting with ``Test`` and implement :meth:`make_pair`::

    class TestLocalContract(TenantContract):
        def make_pair(self, tmp_path):
            return (LocalTenant("dev", tmp_path / "dev", mutable=True),
                    LocalTenant("staging", tmp_path / "staging", mutable=False))

``make_pair`` returns fresh, empty ``(lower, upper)`` tenants: ``lower`` mutable, ``upper``
immutable and promotable from ``lower``. Tests adapt to ``capabilities`` (no ESVs, no
promotion, no restart → those tests skip). Hooks a subclass may override: :meth:`take_lock` /
:meth:`release_lock` (hold the upper's lock as another promoter), :meth:`sample_object`,
``object_ids``, ``atomic_esv_writes``, ``restart_timeout``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from esv.objects import content_digest
from esv.secrets import SecretValue
from promote.errors import BlockedError, ImmutableError, LockedError, PromoteError
from promote.tenants.base import EsvWrite, Tenant, config_digests

__all__ = ["TenantContract"]

SECRET_TEXT = "contract-s3cret-Value!"
OTHER_SECRET_TEXT = "contract-other-s3cret"


class TenantContract:
    """Base class of the contract suite; see the module docstring."""

    object_ids: tuple[str, ...] = ("external.email", "emailTemplate/welcome", "emailTemplate/reset")
    """Config ids used by the tests (a tenant with ``capabilities.config_ids`` uses those)."""
    atomic_esv_writes = True
    """Whether ``write_esvs`` is all-or-nothing for this tenant (its docstring allows not)."""
    restart_timeout = 30.0
    poll_interval = 0.05

    # -- hooks --------------------------------------------------------------------------
    def make_pair(self, tmp_path: Path) -> tuple[Tenant, Tenant]:
        """Fresh (lower: mutable, upper: immutable) tenants."""
        raise NotImplementedError

    def take_lock(self, tenant: Tenant, holder: str) -> None:
        """Hold ``tenant``'s promotion lock as ``holder``."""
        lock = getattr(tenant, "lock", None)
        if lock is None:
            pytest.skip(f"{type(tenant).__name__} has no lock(holder) method")
        lock(holder)

    def release_lock(self, tenant: Tenant, holder: str) -> None:
        """Release what :meth:`take_lock` took."""
        tenant.unlock(holder)  # type: ignore[attr-defined]

    def sample_object(self, object_id: str, n: int, *, placeholders: bool = True) -> Any:
        """A config object; ``n`` varies its content; placeholders reference ``esv-ct-*``."""
        if not placeholders:
            return {"host": f"smtp{n}.example.com", "port": 587, "from": "ops@example.com"}
        return {
            "host": "&{esv.ct.host}",
            "port": {"$int": "&{esv.ct.port}"},
            "auth": {"enable": True, "username": "ops", "password": "&{esv.ct.password}"},
            "from": f'"Acme {n}" <&{{esv.ct.from|noreply@example.com}}>',
            "note": f"{object_id} #{n}",
        }

    # -- helpers ------------------------------------------------------------------------
    @pytest.fixture
    def pair(self, tmp_path: Path) -> Iterator[tuple[Tenant, Tenant]]:
        lower, upper = self.make_pair(tmp_path)
        try:
            yield lower, upper
        finally:
            lower.close()
            upper.close()

    def ids(self, tenant: Tenant, count: int) -> list[str]:
        ids = list(tenant.capabilities.config_ids or self.object_ids)
        if len(ids) < count:
            pytest.skip(f"needs {count} config ids; this tenant holds {len(ids)}")
        return ids[:count]

    def wait_ready(self, tenant: Tenant) -> None:
        deadline = time.monotonic() + self.restart_timeout
        while tenant.restart_status() != "ready":
            if time.monotonic() > deadline:
                pytest.fail(f"{tenant.env}: restart not ready after {self.restart_timeout}s")
            time.sleep(self.poll_interval)

    def restart_and_wait(self, tenant: Tenant) -> None:
        self.wait_ready(tenant)
        tenant.restart()
        self.wait_ready(tenant)

    def define_esvs(self, tenant: Tenant) -> None:
        """Define every ESV :meth:`sample_object` references without a default."""
        tenant.write_esvs(
            [
                EsvWrite("esv-ct-host", "variable", "add", "smtp.example.com"),
                EsvWrite("esv-ct-port", "variable", "add", "587", type="int"),
                EsvWrite("esv-ct-password", "secret", "add", SecretValue(SECRET_TEXT)),
            ]
        )

    def need(self, tenant: Tenant, *capabilities: str) -> None:
        for name in capabilities:
            if not getattr(tenant.capabilities, name):
                pytest.skip(f"{type(tenant).__name__} has no {name} capability")

    # -- config -------------------------------------------------------------------------
    def test_satisfies_the_protocol(self, pair: tuple[Tenant, Tenant]) -> None:
        for tenant in pair:
            assert isinstance(tenant, Tenant)
        assert pair[0].env != pair[1].env

    def test_config_round_trip(self, pair: tuple[Tenant, Tenant]) -> None:
        lower, _ = pair
        first, *_ = self.ids(lower, 1)
        placeholders = lower.capabilities.placeholders
        value = self.sample_object(first, 1, placeholders=placeholders)
        lower.put_config(first, value)
        assert first in lower.list_config_ids()
        assert lower.read_config([first]) == {first: value}
        assert lower.read_config([first, "never/there"]) == {first: value}
        replaced = self.sample_object(first, 2, placeholders=placeholders)
        lower.put_config(first, replaced)
        assert lower.read_config([first]) == {first: replaced}
        lower.delete_config(first)
        assert first not in lower.list_config_ids()
        assert lower.read_config([first]) == {}
        lower.delete_config(first)  # absent: no-op

    def test_immutable_environment_refuses_direct_config_writes(
        self, pair: tuple[Tenant, Tenant]
    ) -> None:
        _, upper = pair
        first, *_ = self.ids(upper, 1)
        with pytest.raises(ImmutableError) as caught:
            upper.put_config(first, self.sample_object(first, 1))
        assert "promot" in str(caught.value)
        with pytest.raises(ImmutableError):
            upper.delete_config(first)
        assert first not in upper.list_config_ids()

    # -- ESVs ---------------------------------------------------------------------------
    def test_variables_are_not_loaded_until_a_restart_completes(
        self, pair: tuple[Tenant, Tenant]
    ) -> None:
        lower, _ = pair
        self.need(lower, "esvs", "restart")
        lower.write_esvs([EsvWrite("esv-ct-port", "variable", "add", "587", type="int")])
        state = lower.list_variables()["esv-ct-port"]
        assert (state.value, state.type, state.loaded, state.managed) == ("587", "int", False, True)
        self.restart_and_wait(lower)
        assert lower.list_variables()["esv-ct-port"].loaded is True
        lower.write_esvs([EsvWrite("esv-ct-port", "variable", "modify", "2525", type="int")])
        state = lower.list_variables()["esv-ct-port"]
        assert (state.value, state.loaded) == ("2525", False)
        self.restart_and_wait(lower)
        assert lower.list_variables()["esv-ct-port"].loaded is True

    def test_variable_values_are_kept_exactly(self, pair: tuple[Tenant, Tenant]) -> None:
        lower, _ = pair
        self.need(lower, "esvs")
        texts = {"esv-ct-a": "NO", "esv-ct-b": "0755", "esv-ct-c": "", "esv-ct-d": "é ü\n"}
        lower.write_esvs([EsvWrite(key, "variable", "add", text) for key, text in texts.items()])
        found = lower.list_variables()
        assert {key: found[key].value for key in texts} == texts

    def test_secret_versions_and_matching(self, pair: tuple[Tenant, Tenant]) -> None:
        lower, _ = pair
        self.need(lower, "esvs")
        secret = SecretValue(SECRET_TEXT)
        lower.write_esvs([EsvWrite("esv-ct-password", "secret", "add", secret)])
        state = lower.list_secrets()["esv-ct-password"]
        assert (state.version, state.managed) == (1, True)
        if lower.capabilities.restart:
            assert state.loaded is False
        assert lower.secret_matches("esv-ct-password", secret) in (True, None)
        assert lower.secret_matches("esv-ct-password", SecretValue(OTHER_SECRET_TEXT)) in (
            False,
            None,
        )
        # AIC: a value equal to the latest version's adds no version
        lower.write_esvs([EsvWrite("esv-ct-password", "secret", "modify", secret)])
        assert lower.list_secrets()["esv-ct-password"].version == 1
        lower.write_esvs(
            [EsvWrite("esv-ct-password", "secret", "modify", SecretValue(OTHER_SECRET_TEXT))]
        )
        assert lower.list_secrets()["esv-ct-password"].version == 2
        assert lower.secret_matches("esv-ct-password", secret) in (False, None)
        if lower.capabilities.restart:
            self.restart_and_wait(lower)
            assert lower.list_secrets()["esv-ct-password"].loaded is True

    def test_secret_values_are_never_readable(self, pair: tuple[Tenant, Tenant]) -> None:
        lower, _ = pair
        self.need(lower, "esvs")
        lower.write_esvs([EsvWrite("esv-ct-password", "secret", "add", SecretValue(SECRET_TEXT))])
        seen = repr(lower.list_secrets()) + repr(lower.list_variables()) + repr(lower)
        assert SECRET_TEXT not in seen
        assert "esv-ct-password" not in lower.list_variables()

    def test_deletes_remove_esvs(self, pair: tuple[Tenant, Tenant]) -> None:
        lower, _ = pair
        self.need(lower, "esvs")
        self.define_esvs(lower)
        lower.write_esvs(
            [
                EsvWrite("esv-ct-host", "variable", "delete"),
                EsvWrite("esv-ct-password", "secret", "delete"),
            ]
        )
        assert "esv-ct-host" not in lower.list_variables()
        assert "esv-ct-port" in lower.list_variables()
        assert "esv-ct-password" not in lower.list_secrets()
        assert lower.secret_matches("esv-ct-password", SecretValue(SECRET_TEXT)) in (False, None)

    def test_write_esvs_is_all_or_nothing(self, pair: tuple[Tenant, Tenant]) -> None:
        lower, _ = pair
        self.need(lower, "esvs")
        assert lower.capabilities.atomic_esv_writes == self.atomic_esv_writes
        if not self.atomic_esv_writes:
            pytest.skip("this tenant does not claim atomic ESV batches")
        batch = [
            EsvWrite("esv-ct-host", "variable", "add", "smtp.example.com"),
            EsvWrite("esv-ct-password", "secret", "add", SecretValue(SECRET_TEXT)),
            EsvWrite("esv-NOT VALID", "variable", "add", "x"),
        ]
        with pytest.raises(PromoteError) as caught:
            lower.write_esvs(batch)
        assert "esv-NOT VALID" in str(caught.value)
        assert SECRET_TEXT not in str(caught.value)
        assert "esv-ct-host" not in lower.list_variables()
        assert "esv-ct-password" not in lower.list_secrets()

    # -- lock and promotion -------------------------------------------------------------
    def test_lock_admits_one_promoter(self, pair: tuple[Tenant, Tenant]) -> None:
        lower, upper = pair
        self.need(upper, "promotion")
        first, *_ = self.ids(lower, 1)
        lower.put_config(first, self.sample_object(first, 1))
        if upper.capabilities.esvs:
            self.define_esvs(upper)
        assert upper.lock_state().locked is False
        self.take_lock(upper, "someone-else")
        try:
            state = upper.lock_state()
            assert state.locked is True
            assert state.holder in ("someone-else", None)
            with pytest.raises(LockedError) as caught:
                upper.promote_from(lower, holder="contract", description="blocked by lock")
            assert caught.value.exit_code == 4
            assert first not in upper.list_config_ids()
        finally:
            self.release_lock(upper, "someone-else")
        upper.promote_from(lower, holder="contract", description="now free")
        assert first in upper.list_config_ids()
        assert upper.lock_state().locked is False

    def test_promotion_with_missing_esvs_is_blocked_and_writes_nothing(
        self, pair: tuple[Tenant, Tenant]
    ) -> None:
        lower, upper = pair
        self.need(upper, "promotion", "esvs", "placeholders")
        first, second = self.ids(lower, 2)
        lower.put_config(first, self.sample_object(first, 1))
        lower.put_config(second, {"subject": "&{esv.ct.subject}", "host": "&{esv.ct.host}"})
        upper.write_esvs([EsvWrite("esv-ct-port", "variable", "add", "587", type="int")])
        reports_before = upper.reports()
        for dry_run in (True, False):
            with pytest.raises(BlockedError) as caught:
                upper.promote_from(lower, holder="contract", description="x", dry_run=dry_run)
            error = caught.value
            assert error.exit_code == 3
            text = str(error)
            for esv_id in ("esv-ct-host", "esv-ct-password", "esv-ct-subject"):
                assert esv_id in text
            assert "esv-ct-port" not in {p.esv_id for p in error.problems}
            assert "esv-ct-from" not in text  # defaulted
            where = {(p.location, p.path, p.esv_id) for p in error.problems}
            assert (first, "host", "esv-ct-host") in where
            assert (first, "auth.password", "esv-ct-password") in where
            assert (second, "host", "esv-ct-host") in where
        assert upper.list_config_ids() == set()
        assert upper.reports() == reports_before
        assert upper.lock_state().locked is False

    def test_promote_then_rollback_restores(self, pair: tuple[Tenant, Tenant]) -> None:
        lower, upper = pair
        self.need(upper, "promotion")
        first, second, third = self.ids(lower, 3)
        if upper.capabilities.esvs:
            self.define_esvs(upper)
        lower.put_config(first, self.sample_object(first, 1))
        lower.put_config(second, self.sample_object(second, 1))
        one = upper.promote_from(lower, holder="contract", description="first")
        assert (one.type, one.env, one.source, one.dry_run) == (
            "promotion",
            upper.env,
            lower.env,
            False,
        )
        assert set(one.added) == {first, second}
        assert upper.read_config([first, second]) == lower.read_config([first, second])
        after_one = upper.read_config([first, second, third])

        lower.put_config(first, self.sample_object(first, 2))
        lower.delete_config(second)
        lower.put_config(third, self.sample_object(third, 1))
        two = upper.promote_from(lower, holder="contract", description="second")
        assert (set(two.added), set(two.modified), set(two.deleted)) == (
            {third},
            {first},
            {second},
        )
        assert upper.read_config([first, second, third]) == lower.read_config(
            [first, second, third]
        )

        back = upper.rollback(holder="contract")
        assert back.type == "rollback"
        assert (set(back.added), set(back.modified), set(back.deleted)) == (
            {second},
            {first},
            {third},
        )
        assert upper.read_config([first, second, third]) == after_one
        assert upper.lock_state().locked is False

        kinds = [(r.type, r.id) for r in upper.reports()]
        assert kinds[-3:] == [("promotion", one.id), ("promotion", two.id), ("rollback", back.id)]

    def test_kept_digests_describe_what_is_held(self, pair: tuple[Tenant, Tenant]) -> None:
        """A tenant that keeps digests: after writes, deletes, promotions and rollbacks,
        each is the content digest of the object it holds."""
        lower, upper = pair
        self.need(lower, "config_digests")

        def check(tenant: Tenant) -> None:
            held = tenant.read_config(sorted(tenant.list_config_ids()))
            kept = config_digests(tenant)
            assert kept == {key: content_digest(value) for key, value in held.items()}

        first, second = self.ids(lower, 2)
        check(lower)
        lower.put_config(first, self.sample_object(first, 1))
        lower.put_config(second, self.sample_object(second, 1))
        lower.put_config(first, self.sample_object(first, 2))
        check(lower)
        if upper.capabilities.promotion and upper.capabilities.config_digests:
            if upper.capabilities.esvs:
                self.define_esvs(upper)
            upper.promote_from(lower, holder="contract", description="first")
            check(upper)
            lower.delete_config(second)
            lower.put_config(first, self.sample_object(first, 3))
            upper.promote_from(lower, holder="contract", description="second")
            check(upper)
            upper.rollback(holder="contract")
            check(upper)
        lower.delete_config(first)
        check(lower)

    def test_dry_run_reports_without_writing(self, pair: tuple[Tenant, Tenant]) -> None:
        lower, upper = pair
        self.need(upper, "promotion")
        first, *_ = self.ids(lower, 1)
        if upper.capabilities.esvs:
            self.define_esvs(upper)
        lower.put_config(first, self.sample_object(first, 1))
        before = upper.reports()
        report = upper.promote_from(lower, holder="contract", description="try", dry_run=True)
        assert report.dry_run is True
        assert first in report.added
        assert first not in upper.list_config_ids()
        assert [r.id for r in upper.reports() if not r.dry_run] == [
            r.id for r in before if not r.dry_run
        ]
        assert upper.lock_state().locked is False

    def test_rollback_with_nothing_to_roll_back_is_blocked(
        self, pair: tuple[Tenant, Tenant]
    ) -> None:
        _, upper = pair
        self.need(upper, "promotion")
        with pytest.raises(BlockedError) as caught:
            upper.rollback(holder="contract")
        assert "nothing to roll back" in str(caught.value)
        assert upper.lock_state().locked is False

    def test_promotion_reports_never_hold_secret_values(self, pair: tuple[Tenant, Tenant]) -> None:
        lower, upper = pair
        self.need(upper, "promotion", "esvs")
        first, *_ = self.ids(lower, 1)
        self.define_esvs(upper)
        lower.put_config(first, self.sample_object(first, 1))
        upper.promote_from(lower, holder="contract", description="leak check")
        upper.rollback(holder="contract")
        assert SECRET_TEXT not in repr(upper.reports())
