"""Email provider documents the tests share: an ``external.email`` with basic SMTP auth as
promote resolves it, and the Okta email server it becomes."""

from __future__ import annotations

from typing import Any


def basic_email(password: str, *, host: str = "smtp.example.com", **extra: Any) -> dict[str, Any]:
    """A resolved SMTP ``external.email`` on port 587 with STARTTLS and basic auth
    (``mailer`` / ``password``); ``extra`` keys are added last."""
    return {
        "host": host,
        "port": 587,
        "from": '"Acme" <noreply@example.com>',
        "auth": {"enable": True, "username": "mailer", "password": password},
        "starttls": {"enable": True},
        **extra,
    }


def okta_server(password: str, *, host: str = "smtp.example.com") -> dict[str, Any]:
    """The Okta email server (Email Servers API body) of :func:`basic_email`."""
    return {
        "alias": "promote",
        "enabled": True,
        "authType": "BASIC_SMTP_AUTH",
        "host": host,
        "port": 587,
        "username": "mailer",
        "password": password,
    }


def oauth_email(client_secret: str) -> dict[str, Any]:
    """A resolved SMTP ``external.email`` for Office 365 with OAuth2 client credentials."""
    return {
        "host": "smtp.office365.com",
        "port": 587,
        "from": "noreply@example.com",
        "auth": {
            "enable": True,
            "type": "oauth2",
            "username": "noreply@example.com",
            "clientId": "client-1",
            "clientSecret": client_secret,
            "tokenEndpoint": "https://login.example.com/token",
            "scope": ["https://outlook.office365.com/.default"],
        },
    }
