"""The AIC REST API of one sandbox environment, backed by a ``local`` tenant's store.

Speaks the documented shapes (reference §1, §3, §4): ``/environment/variables``,
``/environment/secrets`` (+ versions), ``/environment/count``, ``/environment/startup``,
``/environment/promotion/*`` (an upper environment paired with its lower),
``/openidm/config[/{id}]`` and ``/openidm/external/email``. ESV descriptions, secret encodings
and the promotion status live next to the tenant's state in ``aic-sandbox.sqlite3``; sent
emails are appended to ``outbox.jsonl``.
"""

from __future__ import annotations

from promote.sandbox.aic_api.api import AicApi
from promote.sandbox.aic_api.common import EXPRESSION_TYPES

__all__ = ["EXPRESSION_TYPES", "AicApi"]
