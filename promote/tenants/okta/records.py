"""What promote remembers of the Okta server it wrote (Okta keeps no place for it): the
AIC-only fields and keyed fingerprints of the write-only ones, in the state store."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promote.errors import PromoteError
from promote.files import StateFileError
from promote.state.document import Document
from promote.tenants.base import (
    JSON,
)

__all__ = []


_STATE_FILE = "okta-email-server.json"

_STATE_FORMAT = "promote.okta-email-server/1"


@dataclass(frozen=True)
class _Remembered:
    """What promote last wrote to the server: AIC-only fields and write-only fingerprints."""

    server_id: str
    local: Mapping[str, JSON] = field(default_factory=dict)
    fingerprints: Mapping[str, str] = field(default_factory=dict)


class _StateFile:
    """``okta-email-server.json``: a 0600 file in the tenant's state dir, replaced atomically,
    or a record of the shared state store (Okta keeps no place for it)."""

    def __init__(self, document: Document) -> None:
        self.path = document

    def load(self) -> _Remembered | None:
        data = self._read()
        if data is None or not isinstance(data.get("server_id"), str):
            return None
        return _Remembered(
            server_id=data["server_id"],
            local=data.get("local") or {},
            fingerprints=data.get("fingerprints") or {},
        )

    def save(self, remembered: _Remembered) -> None:
        data = {
            "format": _STATE_FORMAT,
            "server_id": remembered.server_id,
            "local": remembered.local,
            "fingerprints": dict(remembered.fingerprints),
        }
        self._write(json.dumps(data, indent=2, sort_keys=True) + "\n")

    def forget(self) -> None:
        self.path.delete()

    def _read(self) -> dict[str, Any] | None:
        try:
            raw = self.path.read()
            if raw is None:
                return None
            data = json.loads(raw)
        except (OSError, ValueError) as error:
            raise PromoteError(
                f"{self.path.where}: cannot read the Okta tenant state ({type(error).__name__});"
                " delete the file: the next plan then shows write-only values as 'will be set'"
            ) from None
        return data if isinstance(data, dict) else None

    def _write(self, text: str) -> None:
        try:
            self.path.write(text.encode())
        except OSError as error:
            raise StateFileError(Path(self.path.where), error) from None
