"""Comparison helpers: batches as trees of arrays, copies, sizes, expected errors."""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any, Callable, Mapping, Sequence


from .report import _Checker, _one_line

# --------------------------------------------------------------------------- batches as trees of arrays


def _leaves(obj: Any, path: str = "batch") -> list[tuple[str, Any]]:
    """``(path, leaf)`` for the arrays and plain values in a batch (tensors, arrays, dicts, lists, dataclasses)."""
    import numpy as np
    import torch

    if isinstance(obj, (torch.Tensor, np.ndarray)):
        return [(path, obj)]
    if isinstance(obj, Mapping):
        out = []
        for key in sorted(obj, key=str):
            out += _leaves(obj[key], f"{path}[{key!r}]")
        return out
    if isinstance(obj, (list, tuple)):
        out = []
        for i, value in enumerate(obj):
            out += _leaves(value, f"{path}[{i}]")
        return out
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = []
        for f in dataclasses.fields(obj):
            out += _leaves(getattr(obj, f.name), f"{path}.{f.name}")
        return out
    to_dict = getattr(obj, "to_dict", None)  # e.g. torch_geometric's Data and Batch
    if callable(to_dict):
        try:
            return _leaves(to_dict(), path)
        except Exception:  # noqa: BLE001 - not a container after all
            pass
    return [(path, obj)]


def _is_array(x: Any) -> bool:
    import numpy as np
    import torch

    return isinstance(x, (torch.Tensor, np.ndarray))


def _same_leaf(a: Any, b: Any) -> bool:
    import numpy as np
    import torch

    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        a, b = a.detach().cpu(), b.detach().cpu()
        if a.is_floating_point() or a.is_complex():
            return bool(((a == b) | (torch.isnan(a) & torch.isnan(b))).all())
        return bool(torch.equal(a, b))
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        if a.dtype.kind in "fc":
            return bool(np.array_equal(a, b, equal_nan=True))
        return bool(np.array_equal(a, b))
    if _is_array(a) or _is_array(b):
        return False
    try:
        return bool(a == b) or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))
    except Exception:  # noqa: BLE001 - incomparable objects
        return a is b


def _first_difference(a: Any, b: Any) -> str | None:
    """None if the two batches hold equal leaves, else where they first differ."""
    la, lb = _leaves(a), _leaves(b)
    if [p for p, _ in la] != [p for p, _ in lb]:
        return "the structure differs"
    for (path, x), (_, y) in zip(la, lb):
        if not _same_leaf(x, y):
            return path
    return None


def _same_item(a: Any, b: Any) -> bool:
    """Two data items are equal: arrays and tensors by value, dicts/lists/tuples leaf by leaf, and
    objects with ``to_dict()`` (e.g. a PyG ``Data``) by the values of that dict."""
    if callable(getattr(a, "to_dict", None)) and callable(getattr(b, "to_dict", None)) and type(a) is type(b):
        return _first_difference(a.to_dict(), b.to_dict()) is None
    return _first_difference(a, b) is None


def _copy(batch: Any) -> Any:
    return copy.deepcopy(batch)


def _shape(x: Any) -> tuple | None:
    return tuple(x.shape) if _is_array(x) else None


def _batch_size(batch: Any, fn: Callable[[Any], int] | None = None) -> int | None:
    if fn is not None:
        return int(fn(batch))
    for _, leaf in _leaves(batch):
        if _is_array(leaf) and leaf.ndim >= 1:
            return int(leaf.shape[0])
    try:
        return len(batch)
    except TypeError:
        return None


def _default_single(batch: Any) -> Any:
    """The first item of a tensor batch as a batch of one, or None for other batches."""
    return batch[:1].clone() if _is_tensor(batch) and batch.ndim >= 1 and batch.shape[0] >= 1 else None


def _default_bad_batches(batch: Any) -> list[tuple[str, Any]]:
    """Inputs that are not batches of the modality: one dimension too many, one too few."""
    if not _is_tensor(batch) or batch.ndim < 1 or batch.shape[0] < 1:
        return []
    return [
        (f"a tensor of shape {tuple(batch.unsqueeze(0).shape)} (one dimension too many)", batch.unsqueeze(0).clone()),
        (f"a tensor of shape {tuple(batch[0].shape)} (no batch dimension)", batch[0].clone()),
    ]


def _is_tensor(x: Any) -> bool:
    import torch

    return isinstance(x, torch.Tensor)


def _device_of(batch: Any) -> Any:
    """The device of the first tensor in a batch (the CPU if it holds none)."""
    import torch

    for _, leaf in _leaves(batch):
        if isinstance(leaf, torch.Tensor):
            return leaf.device
    return torch.device("cpu")


def _expect_error(c: _Checker, prop: str, call: Callable[[Any], Any], bad: Sequence[tuple[str, Any]],
                  error: type | None = None) -> None:
    """``call(x)`` must raise a ContrastkitError (with a one-line message) for every bad input."""
    from ..errors import ContrastkitError

    error = error or ContrastkitError
    for desc, x in bad:
        try:
            call(x)
        except error as exc:
            msg = str(exc)
            if not msg.strip() or "\n" in msg.strip():
                what = "an empty" if not msg.strip() else "a multi-line"
                c.failed(prop, f"its {type(exc).__name__} for {desc} has {what} message; expected one sentence")
                return
        except Exception as exc:  # noqa: BLE001 - what we report
            c.failed(prop, f"{desc} raised {_one_line(exc)} instead of a {error.__name__}")
            return
        else:
            c.failed(prop, f"{desc} was accepted without an error; expected a {error.__name__}")
            return
    c.passed(prop)
