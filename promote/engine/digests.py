"""Content digests of a stage: each config object's (:class:`Digests`, shared by the stages
of one plan), what the tenant holds (:func:`tenant_fingerprint`) and what the
workspace asks it to hold (:func:`inputs_fingerprint`; secrets only as keyed fingerprints),
which ``run --plan`` compares."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from esv import SecretValue
from esv.envfile import EnvironmentFile
from esv.objects import DigestedObjects, content_digest, digest_of_set
from promote.state.fingerprints import Fingerprints
from promote.tenants.base import JSON, EsvWrite, SecretState, VariableState

__all__ = [
    "Digests",
    "Held",
    "config_digest",
    "digest",
    "inputs_fingerprint",
    "tenant_fingerprint",
]


@dataclass(frozen=True)
class Held:
    """What the tenant holds now (``config`` a :class:`~esv.objects.DigestedObjects` when
    the tenant keeps digests: only the objects that differ are read)."""

    config: Mapping[str, JSON]
    variables: dict[str, VariableState]
    secrets: dict[str, SecretState]


class Digests:
    """Each config object's content digest, made once per plan and shared by its stages
    (they all want the same objects); known without work for a
    :class:`~esv.objects.DigestedObjects`, which also keeps its digest of all."""

    def __init__(self) -> None:
        self._digests: dict[str, tuple[JSON, str]] = {}

    def __call__(self, objects: Mapping[str, JSON], object_id: str) -> str:
        """The digest of ``objects[object_id]`` (cached while the id maps to this value)."""
        if isinstance(objects, DigestedObjects):
            return objects.digest(object_id)
        value = objects[object_id]
        hit = self._digests.get(object_id)
        if hit is not None and hit[0] is value:
            return hit[1]
        found = content_digest(value)
        self._digests[object_id] = (value, found)
        return found

    def of_all(self, objects: Mapping[str, JSON]) -> str:
        """:func:`~esv.objects.digest_of_set` of every object of ``objects``."""
        if isinstance(objects, DigestedObjects):
            return objects.set_digest()
        return digest_of_set({key: self(objects, key) for key in objects})


def tenant_fingerprint(
    held: Held, target: Mapping[str, JSON], differ: Collection[str] | None, digests: Digests
) -> str:
    """Hash of the tenant's config and ESV states; ``differ``: the held objects that differ
    from ``target``'s, every other one ``target`` also has being equal to it (by value and
    type: its digest is the target's); ``None``: none is known to be equal."""
    if isinstance(held.config, DigestedObjects):
        config = digests.of_all(held.config)
    else:
        config = digest_of_set(
            {
                key: digests(target, key)
                if differ is not None and key in target and key not in differ
                else digests(held.config, key)
                for key in held.config
            }
        )
    return digest(
        {
            "config": config,
            "variables": {
                k: [v.value, v.type, v.loaded, v.managed] for k, v in held.variables.items()
            },
            "secrets": {k: [s.version, s.loaded, s.managed] for k, s in held.secrets.items()},
        }
    )


def config_digest(config: Mapping[str, JSON], digests: Digests) -> str:
    return digests.of_all(config)


def inputs_fingerprint(
    envfile: EnvironmentFile,
    config: JSON,
    writes: Sequence[EsvWrite],
    mutable: bool,
    fingerprints: Fingerprints,
) -> str:
    # Secrets enter only as keyed fingerprints, and only those being written (so a saved
    # plan is refused when one of their values changed). The first such plan of a workspace
    # creates the key: without one, a value cannot be pinned without exposing it.
    written = {w.id: fingerprints.of(w.value) for w in writes if isinstance(w.value, SecretValue)}
    return digest(
        {
            "config": config,
            "variables": {k: [v.value, v.type] for k, v in envfile.variables.items()},
            "secrets": sorted(envfile.secrets),
            "written": written,
            "mutable": mutable,
        }
    )


def digest(data: JSON) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()
