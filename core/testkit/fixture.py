"""The pytest plugin: the ``contrastkit_conformance`` fixture."""

from __future__ import annotations

from pathlib import Path
from typing import Any

try:  # the kit works without pytest; only the fixture and conformance_tests need it
    import pytest
except ImportError:  # pragma: no cover
    pytest = None  # type: ignore[assignment]

from .augmentations import check_augmentation
from .encoders import check_encoder
from .evaluators import check_evaluator
from .losses import check_loss
from .modalities import check_modality
from .plugin import check_plugin
from .readers import check_reader
from .report import Report

# --------------------------------------------------------------------------- pytest plugin


class Conformance:
    """The ``contrastkit_conformance`` fixture: the checks, with pytest's ``tmp_path`` and raising on failure."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = Path(tmp_path)

    def check_plugin(self, plugin: str, **kwargs: Any) -> Report:
        return check_plugin(plugin, **{"tmp_path": self.tmp_path, **kwargs})

    def check_reader(self, reader: Any, **kwargs: Any) -> Report:
        return check_reader(reader, **{"tmp_path": self.tmp_path, **kwargs})

    def check_modality(self, modality: Any, samples: Any, **kwargs: Any) -> Report:
        return check_modality(modality, samples, **{"tmp_path": self.tmp_path, **kwargs})

    check_augmentation = staticmethod(check_augmentation)
    check_encoder = staticmethod(check_encoder)
    check_evaluator = staticmethod(check_evaluator)
    check_loss = staticmethod(check_loss)


def _conformance_fixture(tmp_path: Path) -> Conformance:
    """contrastkit's conformance checks (``check_plugin``, ``check_augmentation``, …) for plugin authors."""
    return Conformance(tmp_path)


if pytest is not None:
    contrastkit_conformance = pytest.fixture(name="contrastkit_conformance")(_conformance_fixture)
