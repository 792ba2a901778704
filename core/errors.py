"""Errors that reach the user.

A :class:`ContrastkitError` is a user mistake or a bad input: the CLI prints its
message (one sentence: what, where, what was expected) on stderr and exits with
a non-zero code, never with a traceback.  Anything else is a bug.
"""

from __future__ import annotations

import math
import numbers


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


# ---- argument checks for component constructors (one sentence each, as above) ---------------------------

def check_int(owner: str, name: str, value: object, minimum: int = 0) -> int:
    """``value`` as an int if it is an integer ≥ ``minimum`` (a bool is not), else a :class:`ConfigError`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ConfigError(f"{owner}: {name} must be an integer ≥ {minimum}, got {value!r}.")
    return int(value)


def check_number(owner: str, name: str, value: object, lo: float | None = None, hi: float | None = None, *,
                 open_lo: bool = False) -> float:
    """``value`` as a float if it is a finite real number in [lo, hi] (``(lo, hi]`` with ``open_lo``;
    a bound that is None or infinite is no bound), else a :class:`ConfigError`."""
    if hi is not None and math.isinf(hi):
        hi = None
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))
    if ok and lo is not None:
        ok = float(value) > lo if open_lo else float(value) >= lo
    if ok and hi is not None:
        ok = float(value) <= hi
    if not ok:
        if lo is None and hi is None:
            what = "a finite number"
        elif hi is None:
            what = "a positive number" if lo == 0 and open_lo else f"a number {'>' if open_lo else '≥'} {lo:g}"
        elif lo is None:
            what = f"a number ≤ {hi:g}"
        else:
            what = f"a number in {'(' if open_lo else '['}{lo:g}, {hi:g}]"
        raise ConfigError(f"{owner}: {name} must be {what}, got {value!r}.")
    return float(value)


def check_positive(owner: str, name: str, value: object) -> float:
    """``value`` as a float if it is a finite number > 0, else a :class:`ConfigError`."""
    return check_number(owner, name, value, 0.0, open_lo=True)
