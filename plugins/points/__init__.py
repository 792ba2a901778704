"""The built-in point-cloud plugin: hook implementations only.

Registered through the entry point ``points`` in contrastkit's own
pyproject, exactly as a third-party plugin would be.
"""

from contrastkit.core import hookimpl

MODALITY = "points"


@hookimpl
def register_modalities(register):
    from .modality import points_modality

    register(points_modality())


@hookimpl
def register_readers(register):
    from .readers import READERS

    for reader in READERS:
        register(reader, name=reader.name, modality=MODALITY)


@hookimpl
def register_augmentations(register):
    from .augmentations import AUGMENTATIONS

    for name, cls in AUGMENTATIONS.items():
        register(cls, name=name, modality=MODALITY)


@hookimpl
def register_encoders(register):
    from .encoders import ENCODERS

    for name, cls in ENCODERS.items():
        register(cls, name=name, modality=MODALITY)


@hookimpl
def register_evaluators(register):
    from .evaluators import EVALUATORS

    for name, cls in EVALUATORS.items():
        register(cls, name=name, modality=MODALITY)
