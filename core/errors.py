"""Errors that reach the user.

A :class:`ContrastkitError` is a user mistake or a bad input: the CLI prints its
message (one sentence: what, where, what was expected) on stderr and exits with
a non-zero code, never with a traceback.  Anything else is a bug.
"""

from __future__ import annotations


class ContrastkitError(Exception):
    """A user-facing error whose message is one clear sentence."""

    exit_code = 1


class DataError(ContrastkitError):
    """An input file or data set is missing or malformed."""


class ConfigError(ContrastkitError):
    """A configuration value, name or combination is invalid."""


class RegistryError(ContrastkitError):
    """A component is unknown, or registered twice."""


PLURALS = {"modality": "modalities", "loss": "losses"}


def unknown_name(kind: str, name: str, valid: list[str] | tuple[str, ...], where: str = "") -> RegistryError:
    """Build the standard 'unknown X' error that lists the valid names."""
    where = f" for {where}" if where else ""
    choices = ", ".join(sorted(valid)) if valid else "none are installed"
    return RegistryError(f"unknown {kind} '{name}'{where}; valid {PLURALS.get(kind, kind + 's')}: {choices}.")
