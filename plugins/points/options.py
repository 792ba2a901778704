"""The ``data_options`` the points plugin reads (readers and ``prepare``), as a schema.

Declared on the modality (``Modality.options``): core checks a run's
``[data_options]`` against it before any data are read.
"""

from __future__ import annotations

from typing import Annotated, Literal

import annotated_types as at

from contrastkit.core import DataOptions


class PointsOptions(DataOptions):
    """``[data_options]`` of the points plugin."""

    # readers (surface samples per mesh) and prepare (points per cloud)
    num_points: Annotated[int, at.Ge(8)] = 512
    normalize: Literal["sphere", "none"] = "sphere"
    # synthetic_shapes
    train_per_class: Annotated[int, at.Ge(1)] = 40
    test_per_class: Annotated[int, at.Ge(0)] = 20
    shape_seed: Annotated[int, at.Ge(0)] = 0
    noise: Annotated[float, at.Ge(0)] = 0.01
    partial: Annotated[float, at.Ge(0)] = 0.25
