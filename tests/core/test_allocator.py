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


def test_the_cli_asks_and_training_applies_once(monkeypatch):
    from contrastkit.core import allocator

    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setattr(allocator, "_requested", False)
    monkeypatch.setattr(allocator, "_applied", False)
    assert allocator.apply_requested() is False  # nobody asked: a library user's process is left alone
    allocator.request()
    assert allocator.apply_requested() is sys.platform.startswith("linux")
    assert allocator.apply_requested() is False  # once
