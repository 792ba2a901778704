"""The built-in event-sequence plugin: hook implementations only.

Registered through the entry point ``events`` in contrastkit's own pyproject,
exactly as a third-party plugin would be.  Reads one row per event (parquet,
CSV, CDNOW, generated transactions), views entities by CoLES' random slices,
event dropout and time crops, encodes them with a GRU/LSTM or a transformer,
and evaluates entity labels against the CoLES aggregate-feature baseline.
"""

from contrastkit.core import hookimpl

MODALITY = "events"


@hookimpl
def register_modalities(register):
    from .modality import events_modality

    register(events_modality())


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
