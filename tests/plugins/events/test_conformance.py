"""The conformance kit on every component of the events plugin (on CDNOW_sample when lifetimes is
installed, else on generated transactions)."""

from __future__ import annotations

from contrastkit.core.testkit import conformance_tests
from contrastkit.plugins.events.readers import cdnow_path

DATA = "CDNOW_sample" if cdnow_path("CDNOW_sample") is not None else "synthetic_transactions"

test_conformance = conformance_tests("events", data=DATA)
