"""The hooks a contrastkit plugin can implement.

A plugin is a module (or object) with functions decorated by
:data:`hookimpl`, exposed through the entry-point group ``contrastkit``::

    # pyproject.toml of the plugin's distribution
    [project.entry-points.contrastkit]
    audio = "contrastkit_audio.plugin"

Registration hooks receive a ``register`` callback and call it once per
component (the callback style of simonw/llm): core owns validation, names,
duplicates and the record of which plugin supplied what.  Every registration
callback has the signature ``register(obj, *, name, modality, description="")``
except ``register_modalities``'s, which takes a :class:`Modality` (it carries
its own name).  Components usable with every modality use ``modality="*"``.

The hooks, in the order core calls them when the registry is built:

``register_modalities``, ``register_readers``, ``register_augmentations``,
``register_encoders``, ``register_losses``, ``register_evaluators``; and, when
the CLI starts, ``register_commands``.
"""

from __future__ import annotations

from typing import Any, Callable

import pluggy

PROJECT = "contrastkit"

hookspec = pluggy.HookspecMarker(PROJECT)
#: Decorator for a plugin's hook implementations.
hookimpl = pluggy.HookimplMarker(PROJECT)

#: ``register(obj, *, name, modality, description="")``
RegisterFn = Callable[..., Any]


@hookspec
def register_modalities(register: RegisterFn) -> None:
    """Register data domains.

    Call ``register(modality)`` with a :class:`contrastkit.core.Modality` for
    each domain the plugin adds (its collate, default data set, default recipe,
    preprocessing and view picture).  ``contrastkit pretrain NAME`` takes the
    modality's name.
    """


@hookspec
def register_readers(register: RegisterFn) -> None:
    """Register data readers.

    Call ``register(reader, name=..., modality=...)`` with a
    :class:`contrastkit.core.Reader` instance.  A reader reads the files whose
    names end with one of its ``suffixes`` (folders if ``reads_folders``) and
    offers named data sets through ``datasets()``.
    """


@hookspec
def register_augmentations(register: RegisterFn) -> None:
    """Register view transforms.

    Call ``register(cls, name=..., modality=...)`` with a subclass of
    :class:`contrastkit.core.Augmentation` (or of
    :class:`contrastkit.core.JointAugmentation` for transforms that draw all K
    views together).  Configs name it and pass its constructor's keyword
    arguments.
    """


@hookspec
def register_encoders(register: RegisterFn) -> None:
    """Register encoders.

    Call ``register(cls, name=..., modality=...)`` with a ``torch.nn.Module``
    subclass whose constructor takes keyword arguments (those named like keys
    of the data's ``meta``, e.g. ``in_channels``, are filled from it), whose
    ``forward(batch)`` returns a ``B × out_dim`` tensor and which has an
    ``out_dim`` attribute.
    """


@hookspec
def register_losses(register: RegisterFn) -> None:
    """Register training objectives.

    Call ``register(cls, name=..., modality="*")`` with a ``torch.nn.Module``
    subclass of :class:`contrastkit.core.losses.ContrastiveLoss`.  Core
    registers its own losses through this hook.
    """


@hookspec
def register_evaluators(register: RegisterFn) -> None:
    """Register downstream evaluators.

    Call ``register(evaluator_cls, name=..., modality=...)`` with a subclass of
    :class:`contrastkit.core.Evaluator`.
    """


@hookspec
def register_commands(app: Any) -> None:
    """Add commands to the CLI.

    ``app`` is the root ``typer.Typer``; add commands with ``@app.command()``
    or sub-apps with ``app.add_typer``.  Called before the CLI parses its
    arguments.
    """


#: The registration hooks, in the order core calls them, with the kind they fill.
REGISTRATION_HOOKS: dict[str, str] = {
    "register_modalities": "modality",
    "register_readers": "reader",
    "register_augmentations": "augmentation",
    "register_encoders": "encoder",
    "register_losses": "loss",
    "register_evaluators": "evaluator",
}
