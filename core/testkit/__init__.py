"""The conformance kit: does a plugin's component behave as contrastkit expects?

Shipped with contrastkit for plugin authors, and loaded by pytest as a plugin
(entry point ``pytest11``), in the manner of pytest's own ``pytester``: once
contrastkit is installed, a plugin's test suite can write ::

    from contrastkit.core.testkit import check_plugin, conformance_tests

    test_conformance = conformance_tests("audio")   # one test per registered component

    def test_everything_at_once():
        check_plugin("audio")                       # raises ConformanceError listing every failure

or use the ``contrastkit_conformance`` fixture, or call the single checks on
components that are not registered yet::

    check_augmentation(Gain(max_db=6), batch)
    check_encoder(WavCNN, batch, meta={"in_channels": 1})
    check_reader(WavFolder())
    check_evaluator(NearestCentroid, ctx)
    check_modality(modality, samples)
    check_loss(Alignment)

Every check returns a :class:`Report` of findings and, by default, raises
:class:`ConformanceError` (an ``AssertionError``, so pytest shows it as a test
failure) when something failed.  Each failure is one sentence naming the
component and the property, e.g. ``augmentation 'gain' (modality 'audio',
plugin 'audio') does not leave its input unmodified: batch changed during the
call.``

What is checked
---------------
* **augmentations** (``Augmentation`` and ``JointAugmentation``): work on a
  batch of the modality; keep the batch size, the structure, dtypes, devices
  and (unless the class sets ``keeps_shape = False``, e.g. a crop) shapes; do
  not modify their input in place; give the same views for generators seeded
  alike, whatever torch's global random state (they draw from the generator
  they are given); give new views at every call with one generator (the same
  views, if the class sets ``deterministic = True``); handle a
  batch of one; raise a ``ContrastkitError`` on a batch with one dimension too
  many or too few; reject ``p=1.5`` with a ``ConfigError``.
* **encoders**: build from their parameters and the data's ``meta``; have an
  integer ``out_dim``; map a batch to finite floats of shape ``B × out_dim``;
  leave the input unmodified; pass a gradient to every parameter (DDP needs
  it); are deterministic in eval mode and built identically under one seed;
  handle a batch of one; embed an item independently of the rest of its batch
  in eval mode (so ``embed`` does not depend on its batch size); raise a
  ``ContrastkitError`` on a batch of the wrong shape.
* **readers**: list their named data sets as ``{name: description}``; read a
  named data set into ``Samples`` the same way twice; leave the options
  unmodified; raise a ``ContrastkitError`` (not ``FileNotFoundError``, not a
  parser's exception) for a missing file, an empty file and a malformed file
  of each suffix they accept (and an empty folder when they read folders).
* **evaluators**: build with no arguments; declare ``name``, ``protocol``,
  ``version``, ``requires``; return finite (or NaN) numbers including a
  ``<metric>`` with its ``<metric>_std``; are reproducible with the same seeds;
  leave the data unmodified; raise a ``ContrastkitError`` on unlabelled data
  when they require labels.
* **losses**: return a finite scalar ``LossOutput`` for K = 2 and 3 views;
  pass gradients to the views; leave them unmodified; are deterministic; raise
  a ``ContrastkitError`` for one view and for views of different shapes.
* **modalities**: collate a list of items (and a single item) into a batch of
  that size without touching the items; refuse an empty list with a
  ``ContrastkitError``; ``prepare`` fits a state of plain values that survives
  the checkpoint (``torch.load(weights_only=True)``), leaves its input
  unmodified and gives the same items again with the fitted state; the default
  recipe resolves, names registered components, and runs one training step;
  the default data set is offered by a reader; ``plot_views`` writes a picture.

:func:`check_plugin` builds batches from the modality's default data set
(read, split, prepared as ``pretrain`` would) and runs every check on every
component the plugin registered.  Constructor arguments come from the
modality's default recipe where it names the component, else the defaults;
pass ``params={"random_crop": {"length": 0.5}}`` for components that need
more.
"""

# The kit is a package: report.py (findings, Report, ConformanceError), compare.py (batches as trees
# of arrays), one module per check (augmentations, encoders, readers, evaluators, losses, modalities),
# plugin.py (check_plugin, conformance_tests) and fixture.py (the pytest plugin).  Importing it does
# not import torch: the checks import what they need when they run.
from __future__ import annotations

from .augmentations import check_augmentation
from .encoders import check_encoder
from .evaluators import check_evaluator
from .fixture import Conformance  # noqa: F401
from .losses import check_loss
from .modalities import check_modality
from .plugin import check_plugin, conformance_tests, plugin_components
from .readers import check_reader
from .report import BATCH_ITEMS, FAILED, PASSED, SKIPPED, ConformanceError, Finding, Report  # noqa: F401

__all__ = [
    "ConformanceError",
    "Finding",
    "Report",
    "check_augmentation",
    "check_encoder",
    "check_evaluator",
    "check_loss",
    "check_modality",
    "check_plugin",
    "check_reader",
    "conformance_tests",
    "plugin_components",
    "contrastkit_conformance",
]

from . import fixture as _fixture

if _fixture.pytest is not None:  # the fixture that pytest finds through the pytest11 entry point
    contrastkit_conformance = _fixture.contrastkit_conformance
