"""One named record a tenant keeps about itself (an AIC tenant's promotion locks and managed
config ids, an Okta tenant's write-only fingerprints): a file under ``.promote/tenants/<env>``
or, when the workspace shares an S3 store, an object every runner reads."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from promote.files import StateFileError, atomic_write
from promote.state.base import StateStore

__all__ = ["Document", "FileDocument", "StoreDocument", "tenant_document"]


class Document(Protocol):
    """Bytes under one name. Reading or writing fails with ``OSError`` (a file) or
    :class:`~promote.state.base.StateStoreError` (a store); callers word the message."""

    where: str
    """Where it is, for messages: a path, or the store and the record's name."""

    def read(self) -> bytes | None:
        """The content; ``None`` when there is none."""
        ...

    def write(self, data: bytes) -> None:
        """Replace the content in one step."""
        ...

    def delete(self) -> None:
        """Remove it (absent: no-op)."""
        ...


class FileDocument:
    """A file written by :func:`promote.files.atomic_write` (mode 0600, in a 0700 directory)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)

    def read(self) -> bytes | None:
        """The file's bytes."""
        try:
            return self.path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def write(self, data: bytes) -> None:
        """Atomic, durable replace."""
        try:
            atomic_write(self.path, data, dir_mode=0o700)
        except StateFileError as error:
            raise error.os_error from None

    def delete(self) -> None:
        """Unlink."""
        self.path.unlink(missing_ok=True)


class StoreDocument:
    """A record in a state store."""

    def __init__(self, store: StateStore, name: str) -> None:
        self.store = store
        self.name = name
        self.where = f"{store.describe()}: {name}"

    def read(self) -> bytes | None:
        """:meth:`StateStore.read_record`."""
        return self.store.read_record(self.name)

    def write(self, data: bytes) -> None:
        """:meth:`StateStore.write_record`."""
        self.store.write_record(self.name, data)

    def delete(self) -> None:
        """:meth:`StateStore.delete_record`."""
        self.store.delete_record(self.name)


def tenant_document(
    env: str, filename: str, *, store: StateStore | None, state_dir: Path | None
) -> Document | None:
    """The record ``filename`` of ``env``'s tenant: in ``store`` (as
    ``tenants/<env>/<filename>``) when given, else in ``state_dir``; ``None`` with neither
    (the tenant then keeps it in memory)."""
    if store is not None:
        return StoreDocument(store, f"tenants/{env}/{filename}")
    if state_dir is not None:
        return FileDocument(state_dir / filename)
    return None
