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
    # data
    "Reader": "data", "Samples": "data", "TEST": "data", "TRAIN": "data", "array_fingerprint": "data",
    "file_fingerprint": "data", "hash_split": "data", "package_path": "data", "SubsetItems": "data",
    "DataOptions": "config",
    # errors and the argument checks that raise them
    "ConfigError": "errors", "ContrastkitError": "errors", "DataError": "errors", "RegistryError": "errors",
    "check_int": "errors", "check_number": "errors", "check_positive": "errors",
    # components: base classes, building, capabilities
    "Encoder": "encoders",
    "ContrastiveLoss": "losses.base", "LossOutput": "losses.base",
    "Augmentation": "views", "AlignedViews": "views", "Compose": "views", "JointAugmentation": "views",
    "ViewGenerator": "views", "make_generator": "views",
    "Modality": "modality",
    "instantiate": "components",
    "declared": "capabilities",
    "hookimpl": "hookspecs",
    # evaluation and the probes plugins reuse
    "EvalContext": "evaluation", "Evaluator": "evaluation", "FeatureBaseline": "evaluation",
    "mean_std": "evaluation", "stratified_subset": "evaluation",
    "Probe": "probes", "check_features": "probes", "classification_metrics": "probes", "grid_search": "probes",
    "make_cv": "probes",
    # pictures, memory
    "atomic_savefig": "pictures",
    "available_memory": "memory",
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
