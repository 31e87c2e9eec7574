"""The ``aic`` tenant: a PingOne Advanced Identity Cloud environment over its REST API.

ESVs are read in one bulk read per kind, compared locally by the engine and written with
bounded concurrency (only what changed). A secret's value can never be read back, so promote
stores a keyed fingerprint of the value it wrote in the secret's description
(``promote:fp2:<key-id>:<hmac-hex>``, :mod:`promote.state.fingerprints`: HMAC-SHA256 with
the workspace's fingerprint key, so a reader of the description cannot test a guessed value)
and compares against that; an older unkeyed ``promote:fp1:`` fingerprint, or one made with
another key, cannot be compared and the secret is written again. Config of immutable
environments changes only through the promotion API, called on the upper environment (pull
model): lock, dry run, stop on missing ESVs, promote, report, unlock (also on failure and
Ctrl-C).
"""

from __future__ import annotations

from promote.tenants.aic.auth import DEFAULT_SCOPE, ServiceAccountAuth
from promote.tenants.aic.common import MANAGED_MARKER
from promote.tenants.aic.tenant import AicTenant, open_aic

__all__ = [
    "DEFAULT_SCOPE",
    "MANAGED_MARKER",
    "AicTenant",
    "ServiceAccountAuth",
    "open_aic",
]
