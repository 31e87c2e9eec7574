"""The ``local`` tenant: an embedded environment in one SQLite file, with AIC's semantics.

State lives in ``state_dir / "tenant.sqlite3"`` (WAL journal, mode 0600: it holds ESV secret
values), created by the first write: until then the environment reads as empty and nothing is
created on disk (planning and ``status`` change nothing). Every public write is one
``BEGIN IMMEDIATE`` transaction, so a failure or a killed process leaves the previous state,
and concurrent processes wait (``busy_timeout``) instead of failing. AIC behaviour kept here:

- written ESVs are ``loaded: false`` until a restart completes;
- a secret is a list of versions; writing the latest version's value again adds no version;
- an immutable environment's config changes only by :meth:`LocalTenant.promote_from` (or
  :meth:`LocalTenant.rollback`), never by ``put_config``/``delete_config``;
- one promotion lock per environment; a stale lock is never broken silently
  (:meth:`LocalTenant.force_unlock` is an explicit user action);
- a promotion whose config references an ESV that is neither defined here nor defaulted is
  refused, listing every missing ESV;
- every promotion keeps a report and the previous values of what it changed, for rollback.
"""

from __future__ import annotations

from promote.tenants.local.database import DB_NAME
from promote.tenants.local.tenant import LOCAL_CAPABILITIES, LocalTenant

__all__ = ["DB_NAME", "LOCAL_CAPABILITIES", "LocalTenant"]
