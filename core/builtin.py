"""Core's own components, registered through the same hooks as any plugin."""

from __future__ import annotations

from .hookspecs import hookimpl


@hookimpl
def register_losses(register) -> None:
    from .losses import DESCRIPTIONS, LOSSES

    for name, cls in LOSSES.items():
        register(cls, name=name, modality="*", description=DESCRIPTIONS.get(name, ""))


@hookimpl
def register_evaluators(register) -> None:
    from .probes import PROBES, RidgeProbe

    for name, cls in {**PROBES, "ridge": RidgeProbe}.items():
        register(cls, name=name, modality="*")
