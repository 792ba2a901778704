"""What a domain plugin declares about its modality.

A :class:`Modality` is the glue that core cannot know: how a list of items
becomes a batch, which data set to use when the user gives none, the default
recipe (views, encoder, loss, evaluators), the preprocessing that is fitted on
training data and saved in the run, and how to draw a sample with its views.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from .data import Samples


@dataclass
class Modality:
    """A data domain, registered through ``register_modalities``.

    ``collate(items) -> batch``: the batch that augmentations and encoders take;
        tensors inside it (top level, or in dicts/lists/tuples) are moved to the
        training device by core.
    ``default_data``: the named data set used when ``--data`` is omitted.
    ``defaults``: the default recipe, a dict with the keys of the run config
        (``encoder``, ``views``, ``joint_view``, ``loss``, ``evaluators``, ...).
    ``prepare(samples, state, options) -> (samples, state)``: checks the data
        and applies preprocessing; with ``state=None`` it fits the state on the
        (training) samples and returns it.  The state must be made of plain
        Python values and tensors: it is saved in the checkpoint and reused by
        ``embed`` and ``evaluate``.
    ``batch_size(batch) -> int``: the number of samples in a batch.
    ``check(samples, config)``: refuses data that the configured recipe cannot
        use (e.g. series shorter than the crop length), before training starts.
    ``plot_views(batch, views, path, title, ids)``: draws samples with their views.
    ``embed(encoder, items, device, batch_size) -> np.ndarray``: optional; the
        frozen encoder's N × D representations of N items, where batching them
        in order (the default) is wrong or slow — e.g. nodes that must be
        embedded with their whole graph, or sequences best sorted by length.
    ``options``: optional; the schema of the plugin's ``data_options``, a subclass of
        :class:`contrastkit.core.DataOptions` (a pydantic model) naming every key the
        readers and ``prepare`` read, with types and defaults.  Core checks a run's
        ``[data_options]`` against it before any data are read (unknown keys, wrong
        types); without one, any table is accepted (see docs/configuration.md).
    """

    name: str
    collate: Callable[[Sequence[Any]], Any]
    default_data: str
    defaults: dict[str, Any] = field(default_factory=dict)
    prepare: Callable[[Samples, dict | None, dict], tuple[Samples, dict]] | None = None
    batch_size: Callable[[Any], int] | None = None
    check: Callable[[Samples, dict], None] | None = None
    plot_views: Callable[..., None] | None = None
    embed: Callable[..., Any] | None = None
    description: str = ""
    options: type | None = None
