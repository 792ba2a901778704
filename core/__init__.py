"""contrastkit's modality-agnostic core.

The public surface for plugin authors: the hook marker, the base classes of
components (``Encoder``, ``ContrastiveLoss``, ``Augmentation``, ``Evaluator``, …)
and the data container.  The names are loaded on first use, so
that importing a light submodule (the pytest plugin ``contrastkit.core.testkit``,
loaded by every pytest run where contrastkit is installed) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> the submodule that defines it
_EXPORTS = {
    "Reader": "data", "Samples": "data",
    "DataOptions": "config",
    "Encoder": "encoders",
    "available_memory": "memory",
    "ConfigError": "errors", "ContrastkitError": "errors", "DataError": "errors", "RegistryError": "errors",
    "EvalContext": "evaluation", "Evaluator": "evaluation", "FeatureBaseline": "evaluation",
    "stratified_subset": "evaluation",
    "hookimpl": "hookspecs",
    "ContrastiveLoss": "losses.base", "LossOutput": "losses.base",
    "Modality": "modality",
    "Augmentation": "views", "Compose": "views", "JointAugmentation": "views", "ViewGenerator": "views",
    "make_generator": "views",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
