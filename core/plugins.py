"""The plugin manager: loads plugins, calls their hooks, builds the registry.

Plugins are found through the entry-point group ``contrastkit`` — the built-in
domain plugins are entry points of contrastkit's own distribution, exactly like
a third party's.  Core's own components are registered by
:mod:`contrastkit.core.builtin` through the same hooks.

``CONTRASTKIT_DISABLE_PLUGINS`` (comma-separated entry-point names) switches
plugins off.  A plugin that fails to import, or whose hook raises, is recorded
with its error and skipped, and what it registered in its earlier hooks is
rolled back out of the registry; everything else keeps working.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import sys
import traceback
from dataclasses import dataclass, field
from typing import Any

import pluggy

from . import hookspecs
from .errors import ContrastkitError, RegistryError, unknown_name
from .registry import Component, Registry

DISABLE_ENV = "CONTRASTKIT_DISABLE_PLUGINS"
ENTRY_POINT_GROUP = "contrastkit"
CORE_PLUGIN = "contrastkit.core"


@dataclass
class PluginInfo:
    """One plugin as `contrastkit plugins` reports it."""

    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    status: str = "loaded"  # loaded | failed | disabled
    error: str | None = None
    components: list[Component] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "module": self.module,
            "distribution": self.distribution,
            "version": self.version,
            "status": self.status,
            "error": self.error,
            "registered": [
                {"kind": c.kind, "modality": c.modality, "name": c.name, "description": c.description}
                for c in self.components
            ],
        }


def disabled_plugins() -> set[str]:
    raw = os.environ.get(DISABLE_ENV, "")
    return {p.strip() for p in raw.split(",") if p.strip()}


def _describe(obj: Any) -> str:
    desc = getattr(obj, "description", "") or ""
    if not desc:
        doc = getattr(obj, "__doc__", None) or ""
        desc = doc.strip().splitlines()[0] if doc.strip() else ""
    return desc


class PluginHost:
    """The loaded plugins, their hooks and the registry they filled."""

    def __init__(self, entry_points: list[md.EntryPoint] | None = None, load_entry_points: bool = True) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self.registry = Registry()
        from . import builtin

        self._add(CORE_PLUGIN, builtin, PluginInfo(CORE_PLUGIN, builtin.__name__, "contrastkit", _version("contrastkit")))
        if load_entry_points:
            eps = entry_points if entry_points is not None else list(md.entry_points(group=ENTRY_POINT_GROUP))
            for ep in sorted(eps, key=lambda e: e.name):
                self._load_entry_point(ep)
        self._build_registry()

    # -- loading ---------------------------------------------------------
    def _add(self, name: str, module: Any, info: PluginInfo) -> None:
        self.plugins[name] = info
        if info.status == "loaded":
            self.pm.register(module, name=name)

    def _load_entry_point(self, ep: md.EntryPoint) -> None:
        dist = getattr(ep, "dist", None)
        info = PluginInfo(
            name=ep.name,
            module=ep.value,
            distribution=dist.metadata["Name"] if dist is not None else None,
            version=dist.version if dist is not None else None,
        )
        if ep.name in self.plugins:
            other = self.plugins[ep.name]
            info.status, info.error = "failed", (
                f"plugin name '{ep.name}' is used by distribution {other.distribution} and by {info.distribution}"
            )
            self.plugins[f"{ep.name}@{info.distribution}"] = info
            return
        if ep.name in disabled_plugins():
            info.status = "disabled"
            self.plugins[ep.name] = info
            return
        try:
            module = ep.load()
        except Exception as exc:  # a broken plugin must not break the others
            info.status, info.error = "failed", f"{type(exc).__name__}: {exc}"
            info.traceback = traceback.format_exc()  # type: ignore[attr-defined]
            self.plugins[ep.name] = info
            return
        self._add(ep.name, module, info)

    def register_object(self, name: str, module: Any, distribution: str | None = None) -> None:
        """Register an in-process plugin (tests, notebooks) and rebuild the registry."""
        self._add(name, module, PluginInfo(name, getattr(module, "__name__", repr(module)), distribution))
        self._build_registry()

    # -- registry --------------------------------------------------------
    def _build_registry(self) -> None:
        self.registry = Registry()
        for info in self.plugins.values():
            info.components = []
        for hook_name, kind in hookspecs.REGISTRATION_HOOKS.items():
            hook = getattr(self.pm.hook, hook_name)
            # get_hookimpls() is in registration order (core first, then entry points by name).
            for impl in hook.get_hookimpls():
                info = self.plugins[impl.plugin_name]
                if info.status != "loaded":
                    continue
                try:
                    impl.function(register=self._register_fn(kind, info))
                except Exception as exc:
                    info.status = "failed"
                    info.error = str(exc) if isinstance(exc, ContrastkitError) else f"{type(exc).__name__}: {exc} (in {hook_name})"
                    # All or nothing: what this plugin registered in its earlier hooks (or earlier in
                    # this one) is taken out again, so a failed plugin leaves no half of itself behind.
                    for comp in info.components:
                        self.registry.remove(comp)
                    info.components = []

    def _register_fn(self, kind: str, info: PluginInfo):
        def register(obj: Any, *, name: str | None = None, modality: str | None = None, description: str = "") -> None:
            if kind == "modality":
                name = name or getattr(obj, "name", None)
                modality = name
            if not name:
                raise RegistryError(f"plugin '{info.name}' registered a {kind} without a name.")
            if modality is None:
                raise RegistryError(f"plugin '{info.name}' registered {kind} '{name}' without a modality (use '*' for any).")
            comp = Component(
                kind=kind,
                modality=modality,
                name=name,
                obj=obj,
                plugin=info.name,
                distribution=info.distribution,
                version=info.version,
                description=description or _describe(obj),
            )
            self.registry.add(comp)
            info.components.append(comp)

        return register

    # -- queries ---------------------------------------------------------
    def failures(self) -> list[PluginInfo]:
        return [p for p in self.plugins.values() if p.status == "failed"]

    def modality(self, name: str):
        """The registered Modality called ``name``; an unknown name lists the installed ones."""
        found = self.registry.find("modality", name, name)
        if found is None:
            raise unknown_name("modality", name, self.modalities())
        return found.obj

    def modalities(self) -> list[str]:
        return sorted(c.name for c in self.registry.of_kind("modality"))

    def add_commands(self, app: Any) -> None:
        self.pm.hook.register_commands(app=app)


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


_HOST: PluginHost | None = None


def get_host(refresh: bool = False) -> PluginHost:
    """The process-wide plugin host (built on first use)."""
    global _HOST
    if _HOST is None or refresh:
        _HOST = PluginHost()
    return _HOST


def warn_failures(host: PluginHost, stream=sys.stderr) -> None:
    for p in host.failures():
        print(f"warning: plugin '{p.name}' was skipped: {p.error}", file=stream)
