"""The ``data_options`` the volumes plugin reads (readers and ``prepare``), as a schema.

Declared on the modality (``Modality.options``): core checks a run's
``[data_options]`` against it before any data are read.  The readers' own
defaults are :data:`contrastkit.plugins.volumes.readers.OPTION_DEFAULTS`.
"""

from __future__ import annotations

from typing import Annotated, Literal

import annotated_types as at
from pydantic import Field

from contrastkit.core import DataOptions


class VolumesOptions(DataOptions):
    """``[data_options]`` of the volumes plugin."""

    # readers (plugins/volumes/readers.py)
    granularity: Literal["auto", "patch", "volume"] = "auto"
    patch_size: Annotated[int, at.Ge(2)] = 16
    stride: Annotated[int, at.Ge(1)] | None = None
    patches_per_volume: Annotated[int, at.Ge(1)] = 2000
    volume_size: Annotated[int, at.Ge(2)] = 32
    volume_index: Annotated[int, at.Ge(0)] | None = None
    labels: str | None = None
    split: Literal["auto", "block", "volume"] = "auto"
    split_block: Annotated[int, at.Ge(1)] | None = None
    nan: Literal["error", "zero"] = "error"
    #: voxel label(s) left out of the patch labels (e.g. a background or "unlabelled" class)
    ignore_label: int | list[int] | None = None
    # prepare (plugins/volumes/modality.py)
    normalize: Literal["global", "volume", "none"] = "global"
    clip_percentiles: Annotated[list[float], at.MinLen(2), at.MaxLen(2),
                                Field(json_schema_extra={"expected": "two numbers [low, high]"})] = [0.5, 99.5]
