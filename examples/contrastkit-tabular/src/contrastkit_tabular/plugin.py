"""The tabular plugin's hook implementations (the entry point ``tabular``).

Only hook implementations live here; the components are in their own
modules, imported when a hook is called.
"""

from contrastkit.core import hookimpl

MODALITY = "tabular"


@hookimpl
def register_modalities(register):
    from .modality import tabular_modality

    register(tabular_modality())


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


@hookimpl
def register_commands(app):
    from .cli import tabular_describe

    app.command("tabular-describe")(tabular_describe)
