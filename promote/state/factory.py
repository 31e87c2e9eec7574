"""Open the state store a workspace's ``promote.yaml`` names: the one place that knows
store kinds. boto3 is imported only when ``kind: s3`` is configured."""

from __future__ import annotations

from promote.files import Appender, Writer, append_line, atomic_write
from promote.state.base import StateStore, StateStoreError
from promote.state.local import LocalStore
from promote.workspace import Workspace

__all__ = ["open_store"]


def open_store(
    workspace: Workspace, *, write: Writer = atomic_write, append: Appender = append_line
) -> StateStore:
    """The workspace's store: :class:`LocalStore` in ``.promote/`` unless ``promote.yaml``
    says ``state: {kind: s3, ...}``. ``write`` / ``append``: how the local store writes
    files (tests pass ones that fail like a full disk). Nothing is contacted yet."""
    settings = workspace.state
    if settings.kind == "s3":
        try:
            from promote.state.s3 import S3Store
        except ImportError:
            raise StateStoreError(
                f"s3://{settings.bucket}/{settings.prefix}",
                "promote.yaml sets state.kind: s3, which needs boto3: pip install 'promote[s3]'",
            ) from None

        return S3Store(
            settings.bucket,
            prefix=settings.prefix,
            endpoint_url=settings.endpoint_url,
            region=settings.region,
        )
    return LocalStore(workspace.state_dir, write=write, append=append)
