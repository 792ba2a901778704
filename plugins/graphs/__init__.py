"""The built-in graphs plugin: hook implementations only.

Graph contrastive learning on torch-geometric — GraphCL (graph-to-graph),
GRACE (node-to-node across two views) and InfoGraph-style node-to-graph
contrast — with TU-archive, edge-list, saved-PyG and named graph readers.
Registered through the entry point ``graphs`` in contrastkit's own
pyproject, exactly as a third-party plugin would be.
"""

from contrastkit.core import hookimpl

MODALITY = "graphs"


@hookimpl
def register_modalities(register):
    from .modality import graphs_modality

    register(graphs_modality())


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
    from .wl import WLSubtree

    for name, cls in EVALUATORS.items():
        register(cls, name=name, modality=MODALITY)
    register(WLSubtree, name=WLSubtree.name, modality=MODALITY)  # the non-learned baseline (FeatureBaseline)
