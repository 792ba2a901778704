"""The allocator tuning the CLI applies: done on glibc, switchable off."""

import sys

import pytest

from contrastkit.core.allocator import ENV, tune_allocator


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_tuning_applies_and_can_be_switched_off(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    assert tune_allocator() is True
    monkeypatch.setenv(ENV, "0")
    assert tune_allocator() is False
