"""Content digests of a stage: each config object's canonical text (:class:`Texts`, shared by
the stages of one plan), what the tenant holds (:func:`tenant_fingerprint`) and what the
workspace asks it to hold (:func:`inputs_fingerprint`; secrets only as keyed fingerprints),
which ``run --plan`` compares."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from esv import SecretValue
from esv.envfile import EnvironmentFile
from esv.jsonfile import canonical_bytes
from promote.state.fingerprints import Fingerprints
from promote.tenants.base import JSON, EsvWrite, SecretState, VariableState

__all__ = [
    "Held",
    "Texts",
    "config_digest",
    "digest",
    "hash_texts",
    "inputs_fingerprint",
    "tenant_fingerprint",
    "text_of",
]


@dataclass(frozen=True)
class Held:
    """What the tenant holds now."""

    config: dict[str, JSON]
    variables: dict[str, VariableState]
    secrets: dict[str, SecretState]


class Texts:
    """Each config object's canonical JSON text (sorted keys), made once per plan and shared by
    its stages (they all want the same objects): the content hash of fingerprints, and the
    text searched for ESV tokens to find which objects may reference an ESV."""

    def __init__(self) -> None:
        self._texts: dict[str, tuple[JSON, str]] = {}

    def __call__(self, object_id: str, value: JSON) -> str:
        """The text of ``value`` (cached while ``object_id`` maps to this same value)."""
        hit = self._texts.get(object_id)
        if hit is not None and hit[0] is value:
            return hit[1]
        text = canonical_bytes(value).decode()
        self._texts[object_id] = (value, text)
        return text


def tenant_fingerprint(held: Held, same: Mapping[str, JSON], texts: Texts) -> str:
    """Hash of the tenant's config and ESV states; ``same``: objects equal to the held ones
    (by value and type), whose text is shared with the plan's."""
    config = {
        key: texts(key, same[key]) if key in same else text_of(value)
        for key, value in held.config.items()
    }
    return digest(
        {
            "config": hash_texts(config),
            "variables": {
                k: [v.value, v.type, v.loaded, v.managed] for k, v in held.variables.items()
            },
            "secrets": {k: [s.version, s.loaded, s.managed] for k, s in held.secrets.items()},
        }
    )


def text_of(value: JSON) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def hash_texts(texts: Mapping[str, str]) -> str:
    # Length-prefixed, so no id or text can run into the next.
    parts = [f"{len(key)}:{key}{len(texts[key])}:{texts[key]}" for key in sorted(texts)]
    return hashlib.sha256("".join(parts).encode()).hexdigest()


def config_digest(config: Mapping[str, JSON], texts: Texts) -> str:
    return hash_texts({key: texts(key, value) for key, value in config.items()})


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
