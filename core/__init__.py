"""contrastkit's modality-agnostic core.

The public surface for plugin authors: the hook marker, the base classes of
components and the data container.
"""

from .data import Reader, Samples
from .errors import ConfigError, ContrastkitError, DataError, RegistryError
from .evaluation import EvalContext, Evaluator
from .hookspecs import hookimpl
from .modality import Modality
from .views import Augmentation, Compose, JointAugmentation, ViewGenerator, make_generator

__all__ = [
    "Augmentation", "Compose", "ConfigError", "ContrastkitError", "DataError", "EvalContext", "Evaluator",
    "JointAugmentation", "Modality", "Reader", "RegistryError", "Samples", "ViewGenerator", "hookimpl",
    "make_generator",
]
