"""An Okta org as a tenant: its one custom email server (``/api/v1/email-servers``).

Okta has no ESVs, no placeholders and no promotions. The engine sends the environment's
resolved ``external.email`` (AIC shape); this module maps it to an Okta email server:

- ``auth.type`` basic (default) → ``BASIC_SMTP_AUTH``: host, port, username, password;
- ``auth.type`` oauth2 → ``OAUTH2_CLIENT_CREDENTIALS``: host, port, username, clientId,
  clientSecret, tokenEndpoint, tokenEndpointAuthMethod (tenant setting), scopes;

always with the tenant's ``alias`` and ``enabled: true``. :func:`check_okta_email` names every
field that Okta cannot express (MS Graph, custom ``smtpProperties``, disabled auth, ...).

Okta never returns ``password`` or ``clientSecret``, and it does not hold the AIC-only fields
(``from``, timeouts, ``starttls``...). What promote last wrote is remembered under the tenant's
state directory (or the shared state store): the AIC-only fields as written, and a keyed
fingerprint of each write-only value (:mod:`promote.state.fingerprints`; never the value).
:meth:`OktaTenant.read_config` merges the live server with the remembered fields;
:meth:`OktaTenant.reconcile_write_only` fills a write-only value in only when its fingerprint
matches, so an unchanged secret is neither a change nor re-sent.

Writes create the server disabled, test it (``POST .../{id}/test``) and only then enable it;
updates send only the changed fields (``authType`` always for OAuth 2.0) and test again.
Requests are paced by ``X-Rate-Limit-Remaining`` / ``X-Rate-Limit-Reset``; a 429 waits for the
reset and is sent again.
"""

from __future__ import annotations

from promote.tenants.okta.factory import open_okta
from promote.tenants.okta.mapping import (
    DEFAULT_ALIAS,
    EMAIL_ID,
    check_okta_email,
    email_server_body,
    external_email_of,
)
from promote.tenants.okta.tenant import OKTA_CAPABILITIES, OktaTenant

__all__ = [
    "DEFAULT_ALIAS",
    "EMAIL_ID",
    "OKTA_CAPABILITIES",
    "OktaTenant",
    "check_okta_email",
    "email_server_body",
    "external_email_of",
    "open_okta",
]
