"""The ``data_options`` the tabular plugin reads, as a schema (``Modality.options``).

contrastkit checks a run's ``[data_options]`` against it before any data are
read: an unknown key (``idcolumn``) or a wrong type fails at once, with the
dotted path and a "did you mean".  ``readers.check_options`` still checks the
same keys for readers called directly.
"""

from __future__ import annotations

from typing import Literal

from contrastkit.core import DataOptions


class TabularOptions(DataOptions):
    """``[data_options]`` of the tabular plugin (see ``readers.OPTIONS``)."""

    id_column: str | None = None
    label_column: str | None = None
    split_column: str | None = None
    feature_columns: list[str] | None = None
    standardize: bool = True
    missing: Literal["error", "mean"] = "error"
