"""Build configured components from the registry."""

from __future__ import annotations

import inspect
from typing import Any

from .capabilities import declared
from .config import params
from .encoders import Encoder
from .errors import ConfigError, ContrastkitError
from .registry import Registry
from .views import Augmentation, JointAugmentation, ViewGenerator


def instantiate(kind: str, name: str, cls: Any, kwargs: dict, meta: dict | None = None) -> Any:
    """Call ``cls(**kwargs)``, filling parameters named like ``meta`` keys from it.

    Unknown parameters are a ConfigError listing the valid ones.
    """
    try:
        sig = inspect.signature(cls)
    except (TypeError, ValueError):
        sig = None
    kwargs = dict(kwargs)
    if sig is not None:
        accepted = {n for n, p in sig.parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        var_kw = any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())
        unknown = [k for k in kwargs if k not in accepted]
        if unknown and not var_kw:
            raise ConfigError(
                f"{kind} '{name}' has no parameter {', '.join(repr(u) for u in unknown)}; "
                f"valid parameters: {', '.join(sorted(accepted)) or 'none'}."
            )
        for key, value in (meta or {}).items():
            if key in accepted and key not in kwargs:
                kwargs[key] = value
    try:
        return cls(**kwargs)
    except ContrastkitError:
        raise
    except TypeError as exc:
        raise ConfigError(f"{kind} '{name}': {exc}.") from None


def build_encoder(registry: Registry, modality: str, cfg: dict, meta: dict):
    comp = registry.get("encoder", cfg["encoder"]["name"], modality)
    enc = instantiate("encoder", comp.name, comp.obj, params(cfg["encoder"]), meta)
    if not isinstance(declared(enc, Encoder, "out_dim"), int):
        raise ConfigError(f"encoder '{comp.name}' from {comp.origin()} has no integer 'out_dim' attribute.")
    return enc


def build_loss(registry: Registry, modality: str, cfg: dict):
    comp = registry.get("loss", cfg["loss"]["name"], modality)
    return instantiate("loss", comp.name, comp.obj, params(cfg["loss"]))


def build_views(registry: Registry, modality: str, cfg: dict, k: int | None = None,
                meta: dict | None = None) -> ViewGenerator:
    """The config's view generator.  An augmentation class that lists keys of the data's ``meta`` in
    ``from_meta`` gets its parameters of those names filled from it (e.g. slice lengths derived from
    the training data); other parameters never are (a ``length`` in meta is not a crop length)."""

    def picked(obj) -> dict:
        if isinstance(obj, type) and issubclass(obj, JointAugmentation):
            keys = declared(obj, JointAugmentation, "from_meta")
        else:
            keys = declared(obj, Augmentation, "from_meta")
        return {k: v for k, v in (meta or {}).items() if k in keys}

    transforms = []
    for spec in cfg.get("augmentations") or []:
        comp = registry.get("augmentation", spec["name"], modality)
        if isinstance(comp.obj, type) and issubclass(comp.obj, JointAugmentation):
            raise ConfigError(
                f"augmentation '{comp.name}' draws all views together; put it under 'joint_view', not 'augmentations'."
            )
        transforms.append(instantiate("augmentation", comp.name, comp.obj, params(spec), picked(comp.obj)))
    joint = None
    if cfg.get("joint_view"):
        comp = registry.get("augmentation", cfg["joint_view"]["name"], modality)
        joint = instantiate("augmentation", comp.name, comp.obj, params(cfg["joint_view"]), picked(comp.obj))
        if not isinstance(joint, JointAugmentation):
            raise ConfigError(f"joint_view '{comp.name}' is not a joint augmentation; list it under 'augmentations'.")
    return ViewGenerator(transforms, k=k or cfg["views"], joint=joint)
