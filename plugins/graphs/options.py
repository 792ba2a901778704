"""The ``data_options`` the graphs plugin reads (readers and ``prepare``), as a schema.

Declared on the modality (``Modality.options``): core checks a run's
``[data_options]`` against it before any data are read.
"""

from __future__ import annotations

from typing import Annotated, Literal

import annotated_types as at

from contrastkit.core import DataOptions


class GraphsOptions(DataOptions):
    """``[data_options]`` of the graphs plugin."""

    # every reader
    self_loops: Literal["remove", "keep"] = "remove"
    # prepare (plugins/graphs/modality.py)
    normalize: Literal["auto", "standard", "none"] = "auto"
    # edge lists
    directed: bool = False
    nodes: str | None = None
    # the generated stochastic block model (sbm)
    sbm_nodes: Annotated[int, at.Ge(1)] = 2000
    sbm_blocks: Annotated[int, at.Ge(1)] = 5
    sbm_degree: Annotated[float, at.Gt(0)] = 10
    sbm_features: Annotated[int, at.Ge(1)] = 32
    sbm_homophily: Annotated[float, at.Ge(0), at.Le(1)] = 0.6
    sbm_signal: Annotated[float, at.Ge(0)] = 0.3
    sbm_seed: int = 0
