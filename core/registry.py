"""The component registry.

Every component that a plugin supplies — a modality, reader, augmentation,
encoder, loss or evaluator — is recorded under the key ``(kind, modality,
name)`` together with the plugin and distribution that supplied it.  Core's
own components (losses, heads, generic evaluators) go through the same hooks
and carry the plugin name ``contrastkit.core``.

Components that work for every modality (the losses, the generic probes) are
registered under the modality ``"*"``; a lookup for a concrete modality falls
back to ``"*"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

from .errors import RegistryError, unknown_name

KINDS = ("modality", "reader", "augmentation", "encoder", "loss", "evaluator")
ANY = "*"


@dataclass(frozen=True)
class Component:
    """One registered component and where it came from."""

    kind: str
    modality: str
    name: str
    obj: Any
    plugin: str
    distribution: str | None = None
    version: str | None = None
    description: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.modality, self.name)

    def origin(self) -> str:
        dist = ""
        if self.distribution:
            dist = f" (distribution {self.distribution}{' ' + self.version if self.version else ''})"
        return f"plugin '{self.plugin}'{dist}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "modality": self.modality,
            "name": self.name,
            "plugin": self.plugin,
            "distribution": self.distribution,
            "version": self.version,
            "description": self.description,
        }


@dataclass
class Registry:
    """Components keyed by (kind, modality, name); duplicates are refused."""

    _items: dict[tuple[str, str, str], Component] = field(default_factory=dict)

    def add(self, component: Component) -> Component:
        if component.kind not in KINDS:
            raise RegistryError(
                f"{component.origin()} registered a component of unknown kind '{component.kind}'; "
                f"valid kinds: {', '.join(KINDS)}."
            )
        if not component.name or not isinstance(component.name, str):
            raise RegistryError(f"{component.origin()} registered a {component.kind} without a name.")
        existing = self._items.get(component.key)
        if existing is not None:
            raise RegistryError(
                f"duplicate {component.kind} '{component.name}' for modality '{component.modality}': "
                f"registered by {existing.origin()} and by {component.origin()}."
            )
        self._items[component.key] = component
        return component

    def remove(self, component: Component) -> None:
        """Take ``component`` out again (a plugin that failed in a later hook is rolled back whole)."""
        if self._items.get(component.key) is component:
            del self._items[component.key]

    def __iter__(self) -> Iterator[Component]:
        return iter(self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def find(self, kind: str, name: str, modality: str = ANY) -> Component | None:
        """The component named ``name``, for ``modality`` or for any modality."""
        return self._items.get((kind, modality, name)) or self._items.get((kind, ANY, name))

    def get(self, kind: str, name: str, modality: str = ANY) -> Component:
        """Like :meth:`find`, but an unknown name is an error listing the valid names."""
        found = self.find(kind, name, modality)
        if found is None:
            where = f"modality '{modality}'" if modality != ANY else ""
            raise unknown_name(kind, name, self.names(kind, modality), where)
        return found

    def names(self, kind: str, modality: str = ANY) -> list[str]:
        """Names of the components of ``kind`` usable with ``modality``."""
        return sorted(
            {c.name for c in self._items.values() if c.kind == kind and c.modality in (modality, ANY)}
        )

    def of_kind(self, kind: str, modality: str | None = None) -> list[Component]:
        return [
            c
            for c in self._items.values()
            if c.kind == kind and (modality is None or c.modality in (modality, ANY))
        ]
