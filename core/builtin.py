"""Core's own components, registered through the same hooks as any plugin."""

from __future__ import annotations

from .hookspecs import hookimpl


@hookimpl
def register_losses(register) -> None:
    from .losses import HierarchicalContrastive, InfoNCE

    register(InfoNCE, name="infonce", modality="*", description="InfoNCE / NT-Xent over K views (SimCLR, CPC)")
    register(HierarchicalContrastive, name="hierarchical", modality="*",
             description="TS2Vec's hierarchical (instance + temporal) loss over aligned dense views")


@hookimpl
def register_evaluators(register) -> None:
    from .probes import PROBES, RidgeProbe

    for name, cls in {**PROBES, "ridge": RidgeProbe}.items():
        register(cls, name=name, modality="*")
