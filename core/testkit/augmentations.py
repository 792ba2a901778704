"""check_augmentation."""

from __future__ import annotations

import inspect
from typing import Any, Callable, Sequence


from .compare import _batch_size, _copy, _default_bad_batches, _default_single, _device_of, _expect_error, _first_difference, _is_array, _is_tensor, _leaves, _shape
from .report import Report, _Checker, _label, _one_line, _own_rng

# --------------------------------------------------------------------------- augmentations


@_own_rng
def check_augmentation(
    augmentation: Any,
    batch: Any,
    *,
    single: Any = None,
    params: dict | None = None,
    name: str | None = None,
    where: str = "",
    k: int = 2,
    seed: int = 0,
    batch_size: Callable[[Any], int] | None = None,
    bad_batches: Sequence[tuple[str, Any]] | None = None,
    keeps_shape: bool | None = None,
    raise_: bool = True,
    meta: dict | None = None,
) -> Report:
    """Check a view transform on ``batch`` (a batch as the modality's collate makes it, two items or more).

    ``augmentation`` is an instance, or a class built with ``params`` (and, for the keys the class
    lists in ``from_meta``, the data's ``meta``, as the trainer builds it).
    ``single`` is a batch of one item (default: ``batch[:1]`` for a tensor
    batch); ``bad_batches`` a list of ``(description, input)`` that must raise
    a ``ContrastkitError`` (default for a tensor batch: one dimension too many
    and too few).  ``keeps_shape=False`` (or the class attribute
    ``keeps_shape = False``) checks only the number of dimensions, for
    transforms that change the size of a sample, such as crops.
    """
    import torch

    from ..components import instantiate
    from ..errors import ConfigError
    from ..capabilities import declared
    from ..views import Augmentation, JointAugmentation, make_generator

    cls = augmentation if isinstance(augmentation, type) else type(augmentation)
    c = _Checker(_label("augmentation", name, cls, where))
    if isinstance(augmentation, type):
        try:
            keys = (declared(cls, JointAugmentation, "from_meta") if issubclass(cls, JointAugmentation)
                    else declared(cls, Augmentation, "from_meta"))
            picked = {k: v for k, v in (meta or {}).items() if k in keys}
            augmentation = instantiate("augmentation", name or cls.__name__, cls, dict(params or {}), picked)
        except Exception as exc:  # noqa: BLE001
            c.failed("build from its parameters", f"{cls.__name__}(**{dict(params or {})!r}) raised {_one_line(exc)}")
            return c.done(raise_)
    joint = isinstance(augmentation, JointAugmentation)
    dev = _device_of(batch)
    if keeps_shape is None:
        keeps_shape = bool(getattr(augmentation, "keeps_shape", not joint))

    def run(x: Any, g: torch.Generator) -> list[Any]:
        if joint:
            return list(augmentation.views(x, k, g))
        return [augmentation(x, g)]

    # works at all
    x, before = _copy(batch), _copy(batch)
    try:
        views = run(x, make_generator(seed, dev))
    except Exception as exc:  # noqa: BLE001
        c.failed("work on a valid batch", f"it raised {_one_line(exc)}")
        return c.done(raise_)
    c.passed("work on a valid batch")
    if joint and not c.expect("return K views", len(views) == k, f"views(batch, k={k}) returned {len(views)} views"):
        return c.done(raise_)

    # batch size, structure, dtype, device, shape
    n = _batch_size(batch, batch_size)
    sizes = [_batch_size(v, batch_size) for v in views]
    became = sizes[0] if len(set(sizes)) == 1 else sizes
    c.expect("keep the batch size", all(s == n for s in sizes), f"a batch of {n} became {became}")
    in_leaves = _leaves(batch)
    problems = {"structure": None, "dtype": None, "shape": None}
    for v in views:
        out_leaves = _leaves(v)
        if [p for p, _ in out_leaves] != [p for p, _ in in_leaves]:
            problems["structure"] = problems["structure"] or (
                f"the input holds {[p for p, _ in in_leaves]} but the output {[p for p, _ in out_leaves]}")
            continue
        for (path, a), (_, b) in zip(in_leaves, out_leaves):
            if _is_array(a) != _is_array(b):
                problems["structure"] = problems["structure"] or (
                    f"{path} changed from {type(a).__name__} to {type(b).__name__}")
                continue
            if not _is_array(a):
                continue
            if a.dtype != b.dtype or (_is_tensor(a) and a.device != b.device):
                where_ = f" on {b.device}" if _is_tensor(b) else ""
                problems["dtype"] = problems["dtype"] or f"{path} changed from {a.dtype} to {b.dtype}{where_}"
            if keeps_shape and a.shape != b.shape:
                problems["shape"] = problems["shape"] or f"{path} changed from {_shape(a)} to {_shape(b)}"
            elif not keeps_shape and a.ndim != b.ndim:
                problems["shape"] = problems["shape"] or (
                    f"{path} changed from {a.ndim} to {b.ndim} dimensions ({_shape(a)} to {_shape(b)})")
    c.expect("keep the structure of the batch", problems["structure"] is None, str(problems["structure"]))
    c.expect("keep dtypes and devices", problems["dtype"] is None, str(problems["dtype"]))
    c.expect("keep shapes" if keeps_shape else "keep the number of dimensions", problems["shape"] is None,
             str(problems["shape"]))

    # in place
    diff = _first_difference(x, before)
    c.expect("leave its input unmodified", diff is None, f"{diff} changed during the call")

    # reproducible from the generator alone
    try:
        torch.manual_seed(12345)
        first = run(_copy(batch), make_generator(seed, dev))
        torch.manual_seed(54321)
        second = run(_copy(batch), make_generator(seed, dev))
        diff = _first_difference(first, second)
        c.expect("give the same views for generators seeded alike", diff is None,
                 f"two calls with generators seeded {seed} gave different views (does it draw from torch's global "
                 "random state instead of the generator it is given?)")
    except Exception as exc:  # noqa: BLE001
        c.failed("give the same views for generators seeded alike", f"it raised {_one_line(exc)}")

    # re-drawn at every call (a transform declared deterministic: the same result at every call)
    deterministic = bool(getattr(augmentation, "deterministic", False)) and float(getattr(augmentation, "p", 1.0)) >= 1.0
    prop = "give the same result at every call" if deterministic else "re-draw its randomness at every call"
    try:
        g = make_generator(seed + 1, dev)
        first = run(_copy(batch), g)
        if deterministic:
            same = all(_first_difference(first, run(_copy(batch), g)) is None for _ in range(2))
            c.expect(prop, same, "it is declared deterministic, but calls with one generator gave different views")
        else:
            redrawn = any(_first_difference(first, run(_copy(batch), g)) is not None for _ in range(3))
            c.expect(prop, redrawn,
                     "four calls with one generator gave identical views (it must draw new random parameters from "
                     "the generator at every call, or declare deterministic = True)")
    except Exception as exc:  # noqa: BLE001
        c.failed(prop, f"it raised {_one_line(exc)}")

    # a batch of one
    single = _default_single(batch) if single is None else single
    if single is None:
        c.skipped("handle a batch of one", "no batch of one was given")
    else:
        try:
            out = run(_copy(single), make_generator(seed, dev))
            sizes = [_batch_size(v, batch_size) for v in out]
            c.expect("handle a batch of one", all(s == 1 for s in sizes), f"a batch of 1 became {sizes}")
        except Exception as exc:  # noqa: BLE001
            c.failed("handle a batch of one", f"it raised {_one_line(exc)}")

    # bad input
    bad = _default_bad_batches(batch) if bad_batches is None else list(bad_batches)
    if bad:
        _expect_error(c, "raise a ContrastkitError on bad input", lambda b: run(b, make_generator(seed, dev)), bad)
    else:
        c.skipped("raise a ContrastkitError on bad input", "no bad batches were given")

    # p is checked
    try:
        sig = inspect.signature(cls)
    except (TypeError, ValueError):
        sig = None
    if sig is not None and "p" in sig.parameters:
        kwargs = {**dict(params or {}), "p": 1.5}
        _expect_error(c, "reject p=1.5 with a ConfigError", lambda kw: cls(**kw), [("p=1.5", kwargs)], ConfigError)
    return c.done(raise_)
