"""Reading a component's declared capabilities.

A component states what it can do through attributes of its base class, each
declared there with its default and documented in docs/hooks.md:
:class:`~contrastkit.core.encoders.Encoder` (``out_dim``, ``forward_views``,
``forward_timesteps``), :class:`~contrastkit.core.losses.ContrastiveLoss`
(``dense``, ``needs_queue``, ``uses_labels``),
:class:`~contrastkit.core.views.Augmentation` (``from_meta``, ``keeps_shape``,
``deterministic``), :class:`~contrastkit.core.evaluation.Evaluator`
(``requires``, ``uses_encoder``, ``label_efficiency``, ``primary_metric``;
``concat_row`` of :class:`~contrastkit.core.evaluation.FeatureBaseline`) and
:class:`~contrastkit.core.modality.Modality` (``embed``).

:func:`declared` reads such an attribute directly from an instance (or a
subclass) of its base class.  The one tolerance kept is for third-party
components that do not subclass the base (a plain ``torch.nn.Module`` encoder
or loss, a duck-typed evaluator class): for those a missing attribute reads as
the base class's default, so such plugins keep working unchanged.
"""

from __future__ import annotations

from typing import Any


def declared(obj: Any, base: type, name: str) -> Any:
    """The capability ``name`` declared on ``base``, as ``obj`` (an instance or a class) states it.

    An instance or subclass of ``base`` is read directly (the base class declares the default);
    any other object — a third party's plain ``nn.Module``, say — falls back to ``base``'s default
    when it lacks the attribute.
    """
    if isinstance(obj, base) or (isinstance(obj, type) and issubclass(obj, base)):
        return getattr(obj, name)
    return getattr(obj, name, getattr(base, name))
