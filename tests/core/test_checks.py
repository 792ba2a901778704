"""The shared argument checks of component constructors: values through, one-sentence errors."""

import math

import numpy as np
import pytest

from contrastkit.core.errors import ConfigError, check_int, check_number, check_positive


def test_check_int():
    assert check_int("GIN", "layers", 3, 1) == 3
    value = check_int("GIN", "layers", np.int64(4), 1)
    assert value == 4 and type(value) is int
    for bad in (0, 2.5, True, "3", None):
        with pytest.raises(ConfigError, match=r"^GIN: layers must be an integer ≥ 1, got .*\.$"):
            check_int("GIN", "layers", bad, 1)


@pytest.mark.parametrize("kwargs,bad,what", [
    ({"lo": 0.0, "hi": 1.0}, 1.5, "a number in [0, 1]"),
    ({"lo": 0.0, "hi": 1.0, "open_lo": True}, 0.0, "a number in (0, 1]"),
    ({"lo": 0.0}, -1, "a number ≥ 0"),
    ({"lo": 0.5, "open_lo": True}, 0.5, "a number > 0.5"),
    ({"lo": 0.0, "open_lo": True}, 0, "a positive number"),
    ({"lo": 0.0, "hi": math.inf}, float("nan"), "a number ≥ 0"),
    ({"hi": 3.0}, 4, "a number ≤ 3"),
    ({}, True, "a finite number"),
])
def test_check_number_bounds_and_messages(kwargs, bad, what):
    with pytest.raises(ConfigError) as err:
        check_number("Jitter", "sigma", bad, **kwargs)
    assert str(err.value) == f"Jitter: sigma must be {what}, got {bad!r}."


def test_check_number_passes_values_through_as_float():
    assert check_number("Jitter", "sigma", 1, 0.0, 1.0) == 1.0 and isinstance(check_number("J", "s", 1), float)
    assert check_number("Jitter", "sigma", 0.0, 0.0, 1.0) == 0.0  # closed lower bound
    assert check_positive("InfoNCE", "temperature", 0.1) == 0.1
    with pytest.raises(ConfigError, match="temperature must be a positive number, got 0"):
        check_positive("InfoNCE", "temperature", 0)
