"""Adopting what teams already have (SPEC 6): fr-config-manager repositories, frodo exports
and live tenants become a promote workspace.

Readers (:mod:`.frconfig`, :mod:`.frodo`, :mod:`.pull`) fill one :class:`~.model.Collected`;
:mod:`.writer` turns it into file changes and writes them all or none.
"""

from __future__ import annotations

__all__: list[str] = []
