"""The conformance kit: does a plugin's component behave as contrastkit expects?

Shipped with contrastkit for plugin authors, and loaded by pytest as a plugin
(entry point ``pytest11``), in the manner of pytest's own ``pytester``: once
contrastkit is installed, a plugin's test suite can write ::

    from contrastkit.core.testkit import check_plugin, conformance_tests

    test_conformance = conformance_tests("audio")   # one test per registered component

    def test_everything_at_once():
        check_plugin("audio")                       # raises ConformanceError listing every failure

or use the ``contrastkit_conformance`` fixture, or call the single checks on
components that are not registered yet::

    check_augmentation(Gain(max_db=6), batch)
    check_encoder(WavCNN, batch, meta={"in_channels": 1})
    check_reader(WavFolder())
    check_evaluator(NearestCentroid, ctx)
    check_modality(modality, samples)
    check_loss(Alignment)

Every check returns a :class:`Report` of findings and, by default, raises
:class:`ConformanceError` (an ``AssertionError``, so pytest shows it as a test
failure) when something failed.  Each failure is one sentence naming the
component and the property, e.g. ``augmentation 'gain' (modality 'audio',
plugin 'audio') does not leave its input unmodified: batch changed during the
call.``

What is checked
---------------
* **augmentations** (``Augmentation`` and ``JointAugmentation``): work on a
  batch of the modality; keep the batch size, the structure, dtypes, devices
  and (unless the class sets ``keeps_shape = False``, e.g. a crop) shapes; do
  not modify their input in place; give the same views for generators seeded
  alike, whatever torch's global random state (they draw from the generator
  they are given); give new views at every call with one generator (the same
  views, if the class sets ``deterministic = True``); handle a
  batch of one; raise a ``ContrastkitError`` on a batch with one dimension too
  many or too few; reject ``p=1.5`` with a ``ConfigError``.
* **encoders**: build from their parameters and the data's ``meta``; have an
  integer ``out_dim``; map a batch to finite floats of shape ``B × out_dim``;
  leave the input unmodified; pass a gradient to every parameter (DDP needs
  it); are deterministic in eval mode and built identically under one seed;
  handle a batch of one; embed an item independently of the rest of its batch
  in eval mode (so ``embed`` does not depend on its batch size); raise a
  ``ContrastkitError`` on a batch of the wrong shape.
* **readers**: list their named data sets as ``{name: description}``; read a
  named data set into ``Samples`` the same way twice; leave the options
  unmodified; raise a ``ContrastkitError`` (not ``FileNotFoundError``, not a
  parser's exception) for a missing file, an empty file and a malformed file
  of each suffix they accept (and an empty folder when they read folders).
* **evaluators**: build with no arguments; declare ``name``, ``protocol``,
  ``version``, ``requires``; return finite (or NaN) numbers including a
  ``<metric>`` with its ``<metric>_std``; are reproducible with the same seeds;
  leave the data unmodified; raise a ``ContrastkitError`` on unlabelled data
  when they require labels.
* **losses**: return a finite scalar ``LossOutput`` for K = 2 and 3 views;
  pass gradients to the views; leave them unmodified; are deterministic; raise
  a ``ContrastkitError`` for one view and for views of different shapes.
* **modalities**: collate a list of items (and a single item) into a batch of
  that size without touching the items; refuse an empty list with a
  ``ContrastkitError``; ``prepare`` fits a state of plain values that survives
  the checkpoint (``torch.load(weights_only=True)``), leaves its input
  unmodified and gives the same items again with the fitted state; the default
  recipe resolves, names registered components, and runs one training step;
  the default data set is offered by a reader; ``plot_views`` writes a picture.

:func:`check_plugin` builds batches from the modality's default data set
(read, split, prepared as ``pretrain`` would) and runs every check on every
component the plugin registered.  Constructor arguments come from the
modality's default recipe where it names the component, else the defaults;
pass ``params={"random_crop": {"length": 0.5}}`` for components that need
more.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import inspect
import json
import math
import tempfile
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

try:  # the kit works without pytest; only the fixture and conformance_tests need it
    import pytest
except ImportError:  # pragma: no cover
    pytest = None  # type: ignore[assignment]

__all__ = [
    "ConformanceError",
    "Finding",
    "Report",
    "check_augmentation",
    "check_encoder",
    "check_evaluator",
    "check_loss",
    "check_modality",
    "check_plugin",
    "check_reader",
    "conformance_tests",
    "plugin_components",
    "contrastkit_conformance",
]

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
#: Items per batch that check_plugin builds from the default data set.
BATCH_ITEMS = 8


# --------------------------------------------------------------------------- findings


@dataclass
class Finding:
    """One property of one component: passed, failed or skipped, with one sentence."""

    component: str
    property: str
    status: str
    message: str = ""

    def __str__(self) -> str:
        return self.message or f"{self.component} does {self.property}."


@dataclass
class Report:
    """The findings of one or more checks."""

    findings: list[Finding] = field(default_factory=list)

    @property
    def failures(self) -> list[Finding]:
        return [f for f in self.findings if f.status == FAILED]

    @property
    def passed(self) -> list[Finding]:
        return [f for f in self.findings if f.status == PASSED]

    @property
    def skipped(self) -> list[Finding]:
        return [f for f in self.findings if f.status == SKIPPED]

    @property
    def ok(self) -> bool:
        return not self.failures

    def extend(self, other: "Report") -> "Report":
        self.findings.extend(other.findings)
        return self

    def raise_for_failures(self) -> "Report":
        __tracebackhide__ = True  # pytest shows the failures, not this frame
        if self.failures:
            raise ConformanceError(self)
        return self

    def __repr__(self) -> str:
        return f"Report({len(self.passed)} passed, {len(self.failures)} failed, {len(self.skipped)} skipped)"

    def __str__(self) -> str:
        lines = [f"{len(self.passed)} passed, {len(self.failures)} failed, {len(self.skipped)} skipped"]
        lines += [f"FAILED: {f}" for f in self.failures]
        lines += [f"skipped: {f}" for f in self.skipped]
        return "\n".join(lines)


class ConformanceError(AssertionError):
    """Some conformance checks failed; the message lists each failure in one sentence."""

    def __init__(self, report: Report) -> None:
        self.report = report
        failures = report.failures
        head = f"{len(failures)} conformance check{'s' if len(failures) != 1 else ''} failed:"
        super().__init__("\n".join([head] + [f"- {f}" for f in failures]))


def _one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _Checker:
    """Collects the findings of one component."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.report = Report()

    def passed(self, prop: str) -> None:
        self.report.findings.append(Finding(self.label, prop, PASSED))

    def failed(self, prop: str, detail: str) -> None:
        detail = detail.rstrip(".")
        self.report.findings.append(Finding(self.label, prop, FAILED, f"{self.label} does not {prop}: {detail}."))

    def skipped(self, prop: str, why: str) -> None:
        why = why.rstrip(".")
        self.report.findings.append(Finding(self.label, prop, SKIPPED, f"{self.label}: '{prop}' not checked: {why}."))

    def expect(self, prop: str, condition: bool, detail: str) -> bool:
        if condition:
            self.passed(prop)
        else:
            self.failed(prop, detail)
        return bool(condition)

    def done(self, raise_: bool) -> Report:
        __tracebackhide__ = True
        return self.report.raise_for_failures() if raise_ else self.report


def _own_rng(fn: Callable[..., Report]) -> Callable[..., Report]:
    """Run a check with its own copy of torch's global random state, restored afterwards.

    The checks seed torch (to build encoders alike, to tell a generator from the
    global state); the test suite around them must not notice.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Report:
        __tracebackhide__ = True
        import torch

        with torch.random.fork_rng(devices=[]):
            return fn(*args, **kwargs)

    return wrapper


def _label(kind: str, name: str | None, obj: Any, where: str = "") -> str:
    name = name or getattr(obj, "name", None) or getattr(obj, "__name__", None) or type(obj).__name__
    return f"{kind} '{name}'" + (f" ({where})" if where else "")


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
    from .errors import ContrastkitError

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

    from .components import instantiate
    from .errors import ConfigError
    from .views import JointAugmentation, make_generator

    cls = augmentation if isinstance(augmentation, type) else type(augmentation)
    c = _Checker(_label("augmentation", name, cls, where))
    if isinstance(augmentation, type):
        try:
            picked = {k: v for k, v in (meta or {}).items() if k in getattr(cls, "from_meta", ())}
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


# --------------------------------------------------------------------------- encoders


@_own_rng
def check_encoder(
    encoder: Any,
    batch: Any,
    *,
    params: dict | None = None,
    meta: dict | None = None,
    single: Any = None,
    name: str | None = None,
    where: str = "",
    batch_size: Callable[[Any], int] | None = None,
    bad_batches: Sequence[tuple[str, Any]] | None = None,
    seed: int = 0,
    raise_: bool = True,
) -> Report:
    """Check an encoder on ``batch``.

    ``encoder`` is a class built like core builds it — keyword ``params``,
    parameters named like keys of ``meta`` filled from it — or a zero-argument
    factory, or a built module (then construction is not checked).  ``single``
    must be a batch of the first item of ``batch`` (default ``batch[:1]``).
    """
    import torch
    from torch import nn

    from .components import instantiate

    if isinstance(encoder, nn.Module):
        built = encoder
        factory = None
        label_obj = type(encoder)
    elif isinstance(encoder, type):
        label_obj = encoder

        def factory():
            return instantiate("encoder", name or encoder.__name__, encoder, dict(params or {}), dict(meta or {}))
    else:
        label_obj = encoder
        factory = encoder
    c = _Checker(_label("encoder", name, label_obj, where))
    if factory is not None:
        try:
            torch.manual_seed(seed)
            built = factory()
        except Exception as exc:  # noqa: BLE001
            c.failed("build from its parameters",
                     f"building it with {dict(params or {})!r} and meta {dict(meta or {})!r} raised {_one_line(exc)}")
            return c.done(raise_)
        c.passed("build from its parameters")
    enc = built.to(_device_of(batch))
    out_dim = getattr(enc, "out_dim", None)
    integer = isinstance(out_dim, int) and not isinstance(out_dim, bool) and out_dim > 0
    if not c.expect("have an integer out_dim", integer, f"its out_dim is {out_dim!r}"):
        return c.done(raise_)
    n = _batch_size(batch, batch_size)

    # training-mode forward and backward
    enc.train()
    x, before = _copy(batch), _copy(batch)
    try:
        out = enc(x)
    except Exception as exc:  # noqa: BLE001
        c.failed("work on a valid batch", f"forward raised {_one_line(exc)}")
        return c.done(raise_)
    c.passed("work on a valid batch")
    if not c.expect("return B × out_dim", _is_tensor(out) and tuple(out.shape) == (n, out_dim),
                    f"a batch of {n} gave {'shape ' + str(_shape(out)) if _is_array(out) else type(out).__name__}, "
                    f"expected ({n}, {out_dim})"):
        return c.done(raise_)
    c.expect("return floating-point values", out.is_floating_point(), f"it returned {out.dtype}")
    c.expect("return finite values", bool(torch.isfinite(out.detach()).all()),
             "its output holds NaN or infinite values")
    diff = _first_difference(x, before)
    c.expect("leave its input unmodified", diff is None, f"{diff} changed during forward")
    params_ = [(pname, p) for pname, p in enc.named_parameters() if p.requires_grad]
    if params_:
        try:
            enc.zero_grad(set_to_none=True)
            weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed)).to(out.device, out.dtype)
            (out * weights).sum().backward()
            missing = [pname for pname, p in params_ if p.grad is None]
            bad = [pname for pname, p in params_ if p.grad is not None and not bool(torch.isfinite(p.grad).all())]
            if c.expect("pass a gradient to every parameter", not missing,
                        f"{len(missing)} parameter(s) get no gradient, e.g. {missing[:3]} (unused parameters make "
                        "DDP fail)"):
                c.expect("pass finite gradients", not bad, f"parameter(s) {bad[:3]} get NaN or infinite gradients")
        except Exception as exc:  # noqa: BLE001
            c.failed("pass a gradient to every parameter", f"backward raised {_one_line(exc)}")
        enc.zero_grad(set_to_none=True)
    else:
        c.skipped("pass a gradient to every parameter", "it has no trainable parameters")

    # eval mode: deterministic, batch of one, independent of the batch
    enc.eval()
    with torch.no_grad():
        try:
            a, b = enc(_copy(batch)), enc(_copy(batch))
            c.expect("give the same output twice in eval mode", _first_difference(a, b) is None,
                     "two forwards of one batch in eval mode differ (is dropout or noise active in eval mode?)")
        except Exception as exc:  # noqa: BLE001
            a = None
            c.failed("give the same output twice in eval mode", f"forward in eval mode raised {_one_line(exc)}")
        single = _default_single(batch) if single is None else single
        if single is None:
            c.skipped("handle a batch of one", "no batch of one was given")
        else:
            try:
                one = enc(_copy(single))
                ok = _is_tensor(one) and tuple(one.shape) == (1, out_dim)
                if c.expect("handle a batch of one", ok, f"a batch of 1 gave shape {_shape(one)}") and a is not None:
                    ref = a[:1].float()
                    tol = 1e-4 * (1.0 + float(ref.abs().max()))
                    gap = float((one.float() - ref).abs().max())
                    c.expect("embed an item independently of the rest of its batch in eval mode", gap <= tol,
                             f"the first item embedded alone differs from it embedded in a batch of {n} by {gap:.3g} "
                             "(embeddings must not depend on the batch they are computed in)")
            except Exception as exc:  # noqa: BLE001
                c.failed("handle a batch of one", f"it raised {_one_line(exc)}")
        bad = _default_bad_batches(batch) if bad_batches is None else list(bad_batches)
        if bad:
            _expect_error(c, "raise a ContrastkitError on bad input", enc, bad)
        else:
            c.skipped("raise a ContrastkitError on bad input", "no bad batches were given")
    enc.train()

    # built identically under one seed
    if factory is not None:
        try:
            torch.manual_seed(seed)
            s1 = factory().state_dict()
            torch.manual_seed(seed)
            s2 = factory().state_dict()
            differ = [k for k in s1 if k not in s2 or not _same_leaf(s1[k], s2[k])]
            c.expect("build identically under one seed", not differ,
                     f"two builds after torch.manual_seed({seed}) differ in {differ[:3]}")
        except Exception as exc:  # noqa: BLE001
            c.failed("build identically under one seed", f"it raised {_one_line(exc)}")
    return c.done(raise_)


# --------------------------------------------------------------------------- readers


_GARBAGE = b"\x00\xff\xfe garbage \x01\x02, not a file of this kind;\n\x03\x04 ,,\n"


def check_reader(
    reader: Any,
    *,
    sources: Sequence[str] | None = None,
    options: dict | None = None,
    name: str | None = None,
    where: str = "",
    tmp_path: str | Path | None = None,
    raise_: bool = True,
) -> Report:
    """Check a reader: its named data sets, and its errors for missing, empty and malformed input.

    ``sources`` are read and checked (default: its first named data set);
    ``options`` are the ``data_options`` passed to ``read``.
    """
    if tmp_path is None:
        with tempfile.TemporaryDirectory(prefix="contrastkit-testkit-") as tmp:
            return check_reader(reader, sources=sources, options=options, name=name, where=where, tmp_path=tmp,
                                raise_=raise_)
    from .data import TEST, TRAIN, Samples

    c = _Checker(_label("reader", name, reader, where))
    options = dict(options or {})
    try:
        offered = reader.datasets()
        ok = isinstance(offered, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in offered.items())
        c.expect("list its named data sets as {name: description}", ok, f"datasets() returned {offered!r:.120}")
    except Exception as exc:  # noqa: BLE001
        offered = {}
        c.failed("list its named data sets as {name: description}", f"datasets() raised {_one_line(exc)}")
    if sources is None:
        sources = sorted(offered)[:1] if isinstance(offered, dict) else []
    if not sources:
        c.skipped("read a data set into Samples", "it offers no named data set and no source was given")
    for src in sources:
        prop = f"read '{src}' into Samples"
        opts = copy.deepcopy(options)
        try:
            first = reader.read(src, opts)
        except Exception as exc:  # noqa: BLE001
            c.failed(prop, f"read raised {_one_line(exc)}")
            continue
        empty = " with no items" if isinstance(first, Samples) else ""
        if not c.expect(prop, isinstance(first, Samples) and len(first) > 0,
                        f"read returned {type(first).__name__}{empty}"):
            continue
        c.expect("leave the options unmodified", opts == options, f"read changed its options to {opts!r:.120}")
        if first.split is not None:
            bad = sorted({str(s) for s in first.split} - {TRAIN, TEST})
            c.expect("give a split of 'train'/'test'", not bad, f"'{src}' has split values {bad[:3]}")
        try:
            second = reader.read(src, copy.deepcopy(options))
            same = (first.ids == second.ids and first.fingerprint == second.fingerprint
                    and first.labels == second.labels and first.split == second.split
                    and all(_same_item(a, b) for a, b in zip(first.items, second.items)))
            c.expect(f"read '{src}' the same way twice", same, "two reads gave different ids, labels, split, items or "
                                                            "fingerprint")
        except Exception as exc:  # noqa: BLE001
            c.failed(f"read '{src}' the same way twice", f"the second read raised {_one_line(exc)}")

    tmp = Path(tmp_path) / f"reader-{abs(hash((id(reader), name))) % 10**8}"
    tmp.mkdir(parents=True, exist_ok=True)
    suffixes = list(getattr(reader, "suffixes", ()) or ())
    bad: list[tuple[str, Any]] = []
    for i, suffix in enumerate(suffixes):
        missing = tmp / f"missing-{i}{suffix}"
        empty = tmp / f"empty-{i}{suffix}"
        empty.write_bytes(b"")
        garbage = tmp / f"malformed-{i}{suffix}"
        garbage.write_bytes(_GARBAGE)
        bad += [(f"a missing file {missing.name}", str(missing)), (f"an empty file {empty.name}", str(empty)),
                (f"a malformed file {garbage.name}", str(garbage))]
    if getattr(reader, "reads_folders", False):
        folder = tmp / "empty-folder"
        folder.mkdir(exist_ok=True)
        bad.append(("an empty folder", str(folder)))
    if bad:
        _expect_error(c, "raise a ContrastkitError on missing, empty or malformed input",
                      lambda src: reader.read(src, copy.deepcopy(options)), bad)
    else:
        c.skipped("raise a ContrastkitError on missing, empty or malformed input", "it reads no file type")
    return c.done(raise_)


# --------------------------------------------------------------------------- evaluators


@_own_rng
def check_evaluator(
    evaluator: Any,
    ctx: Any,
    *,
    name: str | None = None,
    where: str = "",
    raise_: bool = True,
) -> Report:
    """Check an evaluator class on an :class:`~contrastkit.core.evaluation.EvalContext` of labelled, split data."""
    from .errors import ContrastkitError
    from .evaluation import EvalContext

    cls = evaluator if isinstance(evaluator, type) else type(evaluator)
    c = _Checker(_label("evaluator", name, cls, where))
    try:
        ev = cls()
    except Exception as exc:  # noqa: BLE001
        c.failed("build with no arguments", f"{cls.__name__}() raised {_one_line(exc)} (core builds evaluators with "
                                            "no arguments; settings arrive in ctx.options)")
        return c.done(raise_)
    c.passed("build with no arguments")
    declared = {attr: getattr(ev, attr, None) for attr in ("name", "protocol", "version", "requires")}
    empty = [attr for attr, v in declared.items() if attr != "protocol" and not (isinstance(v, (str, int)) and str(v))]
    verb = "is" if len(empty) == 1 else "are"
    c.expect("declare name, version and requires", not empty, f"{', '.join(empty)} {verb} empty")

    def fresh(samples=None, seeds=None) -> EvalContext:
        return EvalContext(samples=samples if samples is not None else ctx.samples, embed=ctx.embed,
                           seeds=list(seeds if seeds is not None else ctx.seeds), options=dict(ctx.options),
                           run_dir=ctx.run_dir, meta=dict(ctx.meta), prepare=ctx.prepare)

    snapshot = copy.deepcopy((ctx.samples.ids, ctx.samples.labels, ctx.samples.split, list(ctx.samples.items)))
    try:
        result = ev(fresh())
    except Exception as exc:  # noqa: BLE001
        c.failed("run on valid data", f"it raised {_one_line(exc)}")
        return c.done(raise_)
    c.passed("run on valid data")
    metrics = result.get("metrics") if isinstance(result, dict) else None
    ok = isinstance(metrics, dict) and bool(metrics) and all(
        isinstance(k, str) and isinstance(v, float) and (math.isfinite(v) or math.isnan(v)) for k, v in metrics.items())
    if c.expect("return its metrics as numbers", ok, f"run returned {metrics!r:.160}"):
        try:
            json.dumps(result)
            c.passed("return JSON-able results")
        except (TypeError, ValueError) as exc:
            c.failed("return JSON-able results", f"json.dumps raised {_one_line(exc)}")
        pairs = [k for k in metrics if f"{k}_std" in metrics]
        c.expect("report a <metric> with its <metric>_std over the seeds", bool(pairs),
                 f"none of its metrics {sorted(metrics)[:6]} comes with a '_std'")
        try:
            again = ev(fresh())["metrics"]
            differ = [k for k in metrics if k not in again or not (
                metrics[k] == again[k] or (math.isnan(metrics[k]) and math.isnan(again[k]))
                or abs(metrics[k] - again[k]) <= 1e-9 * max(1.0, abs(metrics[k])))]
            c.expect("give the same metrics for the same seeds", not differ,
                     f"two runs with seeds {list(ctx.seeds)} differ in {differ[:3]}")
        except Exception as exc:  # noqa: BLE001
            c.failed("give the same metrics for the same seeds", f"the second run raised {_one_line(exc)}")
    after = (ctx.samples.ids, ctx.samples.labels, ctx.samples.split, list(ctx.samples.items))
    unchanged = all(_same_leaf(a, b) if _is_array(a) else a == b for a, b in zip(snapshot[:3], after[:3])) and all(
        _same_leaf(a, b) for a, b in zip(snapshot[3], after[3]))
    c.expect("leave the data unmodified", unchanged, "the samples' ids, labels, split or items changed during the run")
    if getattr(ev, "requires", None) == "labels":
        unlabelled = dataclasses.replace(ctx.samples, labels=None)
        _expect_error(c, "raise a ContrastkitError on unlabelled data", lambda s: ev(fresh(samples=s)),
                      [("data without labels", unlabelled)])
    return c.done(raise_)


# --------------------------------------------------------------------------- losses


@_own_rng
def check_loss(
    loss: Any,
    *,
    params: dict | None = None,
    name: str | None = None,
    where: str = "",
    batch: int = 8,
    dim: int = 16,
    steps: int = 8,
    seed: int = 0,
    raise_: bool = True,
) -> Report:
    """Check a loss on random views (B × D, or B × T × D for a loss with ``dense = True``)."""
    import torch

    from .components import instantiate

    cls = loss if isinstance(loss, type) else type(loss)
    c = _Checker(_label("loss", name, cls, where))
    if isinstance(loss, type):
        try:
            loss = instantiate("loss", name or cls.__name__, cls, dict(params or {}))
        except Exception as exc:  # noqa: BLE001
            c.failed("build from its parameters", f"it raised {_one_line(exc)}")
            return c.done(raise_)
    dense = bool(getattr(loss, "dense", False))
    shape = (batch, steps, dim) if dense else (batch, dim)
    gen = torch.Generator().manual_seed(seed)
    for k in (2, 3):
        views = [torch.randn(shape, generator=gen).requires_grad_(True) for _ in range(k)]
        before = [v.detach().clone() for v in views]
        try:
            out = loss(views)
        except Exception as exc:  # noqa: BLE001
            c.failed(f"work on {k} views", f"it raised {_one_line(exc)}")
            continue
        value = getattr(out, "loss", None)
        if not c.expect(f"return a scalar loss for {k} views", _is_tensor(value) and value.numel() == 1,
                        f"it returned {type(out).__name__} whose loss is {_shape(value) or type(value).__name__}"):
            continue
        c.expect(f"return a finite loss for {k} views", bool(torch.isfinite(value.detach()).all()),
                 f"the loss is {value.item()}")
        try:
            value.backward()
            ok = all(v.grad is not None and bool(torch.isfinite(v.grad).all()) for v in views)
            c.expect(f"pass finite gradients to the {k} views", ok, "some view gets no or a non-finite gradient")
        except Exception as exc:  # noqa: BLE001
            c.failed(f"pass finite gradients to the {k} views", f"backward raised {_one_line(exc)}")
        c.expect("leave its input unmodified", all(_same_leaf(v.detach(), b) for v, b in zip(views, before)),
                 "a view changed during the call")
        with torch.no_grad():
            again = loss([b.clone() for b in before]).loss
        c.expect(f"give the same loss twice for {k} views", _same_leaf(again.reshape(()), value.detach().reshape(())),
                 f"{value.item()} then {again.item()}")
    one = [torch.randn(shape, generator=gen)]
    other = list(shape)
    other[-1] += 1
    mismatched = [torch.randn(shape, generator=gen), torch.randn(tuple(other), generator=gen)]
    _expect_error(c, "raise a ContrastkitError on bad views", loss,
                  [("a single view", one), (f"views of shapes {shape} and {tuple(other)}", mismatched)])
    return c.done(raise_)


# --------------------------------------------------------------------------- modalities


@_own_rng
def check_modality(
    modality: Any,
    samples: Any,
    *,
    host: Any = None,
    options: dict | None = None,
    batch_items: int = BATCH_ITEMS,
    where: str = "",
    tmp_path: str | Path | None = None,
    seed: int = 0,
    device: Any = "cpu",
    raise_: bool = True,
) -> Report:
    """Check a :class:`~contrastkit.core.modality.Modality` on raw (unprepared) training ``samples``.

    With ``host`` (a :class:`~contrastkit.core.plugins.PluginHost`), also check
    that the default recipe resolves to registered components and runs one
    training step, and that a reader offers the default data set.
    """
    if tmp_path is None:
        with tempfile.TemporaryDirectory(prefix="contrastkit-testkit-") as tmp:
            return check_modality(modality, samples, host=host, options=options, batch_items=batch_items,
                                  where=where, tmp_path=tmp, seed=seed, device=device, raise_=raise_)
    import torch

    c = _Checker(_label("modality", modality.name, modality, where))
    options = dict(options if options is not None else (modality.defaults or {}).get("data_options", {}))

    # prepare
    prepared, state = samples, {}
    if modality.prepare is None:
        c.skipped("fit a preprocessing state of plain values", "the modality has no prepare")
    else:
        snapshot = copy.deepcopy(list(samples.items))
        try:
            prepared, state = modality.prepare(samples, None, copy.deepcopy(options))
        except Exception as exc:  # noqa: BLE001
            c.failed("prepare valid data", f"prepare raised {_one_line(exc)}")
            return c.done(raise_)
        unchanged = all(_same_item(a, b) for a, b in zip(snapshot, samples.items))
        c.expect("leave the samples unmodified in prepare", unchanged, "prepare changed the items it was given")
        try:
            import io

            buf = io.BytesIO()
            torch.save({"prep_state": state}, buf)
            buf.seek(0)
            loaded = torch.load(buf, weights_only=True)["prep_state"]
            c.expect("fit a preprocessing state of plain values", _first_difference(loaded, state) is None,
                     "the state changed through a checkpoint")
        except Exception as exc:  # noqa: BLE001
            c.failed("fit a preprocessing state of plain values",
                     f"the state does not survive torch.save/torch.load(weights_only=True): {_one_line(exc)}")
        try:
            again, state2 = modality.prepare(samples, state, copy.deepcopy(options))
            same = all(_same_item(a, b) for a, b in zip(prepared.items, again.items)) and len(again) == len(prepared)
            c.expect("prepare alike with the fitted state", same,
                     "prepare with the fitted state gives other items than prepare that fitted it")
        except Exception as exc:  # noqa: BLE001
            c.failed("prepare alike with the fitted state", f"prepare with the fitted state raised {_one_line(exc)}")

    # collate
    items = list(prepared.items[:batch_items])
    snapshot = copy.deepcopy(items)
    try:
        batch = modality.collate(items)
    except Exception as exc:  # noqa: BLE001
        c.failed("collate a list of items", f"collate raised {_one_line(exc)}")
        return c.done(raise_)
    size_fn = modality.batch_size
    n = _batch_size(batch, size_fn)
    c.expect("collate a list of items into a batch of that size", n == len(items),
             f"{len(items)} items gave a batch of {n}")
    c.expect("leave the items unmodified in collate", all(_same_item(a, b) for a, b in zip(items, snapshot)),
             "collate changed the items it was given")
    try:
        one = modality.collate(items[:1])
        got = _batch_size(one, size_fn)
        c.expect("collate a single item", got == 1, f"one item gave a batch of {got}")
    except Exception as exc:  # noqa: BLE001
        c.failed("collate a single item", f"collate raised {_one_line(exc)}")
    _expect_error(c, "raise a ContrastkitError for an empty list", modality.collate, [("an empty list", [])])

    views_fn = None
    if host is not None:
        from .runs import move_to

        views_fn = _check_recipe(c, modality, host, prepared, move_to(_copy(batch), device), seed)
    if modality.plot_views is not None:
        try:
            from .views import make_generator

            small = modality.collate(items[:2])
            views = views_fn(_copy(small), make_generator(seed)) if views_fn is not None else [small, small]
            path = Path(tmp_path) / f"{modality.name}-views.png"
            modality.plot_views(small, views, path, title="conformance", ids=list(prepared.ids[:2]))
            c.expect("draw its views to a picture", path.is_file() and path.stat().st_size > 0,
                     f"plot_views wrote nothing to {path.name}")
        except Exception as exc:  # noqa: BLE001
            c.failed("draw its views to a picture", f"plot_views raised {_one_line(exc)}")
    return c.done(raise_)


def _check_recipe(c: _Checker, modality: Any, host: Any, prepared: Any, batch: Any, seed: int) -> Any:
    """The default recipe resolves, names registered components, and trains one step; returns its views."""
    import torch

    from .config import resolve
    from .sources import named_datasets
    from .views import make_generator

    offered = {str(d["name"]).lower() for d in named_datasets(host.registry, modality.name) if d.get("name")}
    c.expect("offer its default data set through a reader", str(modality.default_data).lower() in offered,
             f"default_data '{modality.default_data}' is not a named data set of its readers "
             f"({', '.join(sorted(offered)) or 'none'})")
    try:
        cfg = resolve(modality.defaults or {}, None, {})
    except Exception as exc:  # noqa: BLE001
        c.failed("have a default recipe that resolves", _one_line(exc))
        return None
    cfg["plugin"] = modality.name
    missing = []
    reg = host.registry
    wanted = [("encoder", cfg["encoder"]["name"]), ("loss", cfg["loss"]["name"])]
    wanted += [("augmentation", a["name"]) for a in cfg.get("augmentations") or []]
    if cfg.get("joint_view"):
        wanted.append(("augmentation", cfg["joint_view"]["name"]))
    wanted += [("evaluator", e) for e in (cfg.get("evaluate") or {}).get("evaluators") or []]
    for kind, cname in wanted:
        if reg.find(kind, cname, modality.name) is None:
            missing.append(f"{kind} '{cname}'")
    if not c.expect("name registered components in its default recipe", not missing,
                    f"the recipe names {', '.join(missing)}, which no plugin registered"):
        return None
    views_fn = None
    try:
        if modality.check is not None:
            modality.check(prepared, cfg)
        from .components import build_views
        from .runs import build_model

        torch.manual_seed(seed)
        dev = _device_of(batch)
        model = build_model(host, cfg, dict(prepared.meta)).to(dev)
        views_fn = build_views(reg, modality.name, cfg, meta=dict(prepared.meta))
        views = views_fn(_copy(batch), make_generator(seed, dev))
        out = model(views)
        out.loss.backward()
        ok = bool(torch.isfinite(out.loss.detach()).all())
        c.expect("train one step with its default recipe", ok, f"the loss is {out.loss.item()}")
    except Exception as exc:  # noqa: BLE001
        c.failed("train one step with its default recipe", f"it raised {_one_line(exc)}")
    return views_fn


# --------------------------------------------------------------------------- whole plugins


@dataclass
class _Bench:
    """Data of one modality, read and prepared as ``pretrain`` does, to check components on."""

    modality: Any
    source: str
    cfg: dict
    raw_train: Any
    train: Any
    everything: Any
    meta: dict
    batch_items: int = BATCH_ITEMS
    device: Any = "cpu"

    def batch(self) -> Any:
        from .runs import move_to

        return move_to(self.modality.collate(list(self.train.items[: self.batch_items])), self.device)

    def single(self) -> Any:
        from .runs import move_to

        return move_to(self.modality.collate(list(self.train.items[:1])), self.device)


#: Benches by plugin host, then by (modality, source, batch items): data is read once per session.
_BENCHES: "weakref.WeakKeyDictionary[Any, dict[tuple, _Bench | Exception]]" = weakref.WeakKeyDictionary()


def _bench(host: Any, modality_name: str, source: str | None, batch_items: int, device: Any = "cpu") -> _Bench:
    cache = _BENCHES.setdefault(host, {})
    key = (modality_name, source, batch_items, str(device))
    if key not in cache:
        try:
            cache[key] = _make_bench(host, modality_name, source, batch_items, device)
        except Exception as exc:  # noqa: BLE001 - reported per component
            cache[key] = exc
    found = cache[key]
    if isinstance(found, Exception):
        raise found
    return found


def _make_bench(host: Any, modality_name: str, source: str | None, batch_items: int, device: Any) -> _Bench:
    import torch

    from .config import resolve
    from .data import TRAIN
    from .sources import read_source

    modality = host.modality(modality_name)
    cfg = resolve(modality.defaults or {}, None, {})
    cfg["plugin"] = modality_name
    src = source or modality.default_data
    raw = read_source(host.registry, modality_name, src, cfg["data_options"]).with_split()
    raw_train = raw.part(TRAIN)
    if len(raw_train) < 2:  # e.g. one long series for a forecast evaluator, split in time by the evaluator
        raw_train = raw
    if modality.prepare is not None:
        train, state = modality.prepare(raw_train, None, cfg["data_options"])
        everything, _ = modality.prepare(raw, state, cfg["data_options"])
    else:
        train, everything = raw_train, raw
    return _Bench(modality, src, cfg, raw_train, train, everything, dict(train.meta), batch_items,
                  torch.device(device))


def _resolve_plugin(host: Any, plugin: str) -> tuple[str, list]:
    """The plugin's name and components; a modality's name stands for the plugins that registered for it."""
    from .errors import RegistryError

    info = host.plugins.get(plugin)
    if info is not None:
        if info.status != "loaded":
            raise RegistryError(f"plugin '{plugin}' is {info.status}: {info.error or 'switched off'}.")
        return plugin, list(info.components)
    comps = [comp for comp in host.registry if comp.modality == plugin]
    if not comps:
        names = sorted(p for p in host.plugins)
        raise RegistryError(f"no plugin or modality '{plugin}' is installed; installed plugins: {', '.join(names)}.")
    return plugin, comps


def plugin_components(plugin: str, host: Any = None) -> list[tuple[str, str, str]]:
    """``(kind, modality, name)`` of every component ``plugin`` registered (for parametrised tests)."""
    host = host or _host()
    _, comps = _resolve_plugin(host, plugin)
    return [comp.key for comp in comps]


def _host() -> Any:
    from .plugins import get_host

    return get_host()


def _where(comp: Any) -> str:
    return f"modality '{comp.modality}', plugin '{comp.plugin}'"


def _recipe_params(cfg: dict, kind: str, name: str) -> dict:
    """The constructor arguments that the default recipe gives the component, if it names it."""
    from .config import params as table_params

    if kind == "encoder" and cfg["encoder"]["name"] == name:
        return table_params(cfg["encoder"])
    if kind == "loss" and cfg["loss"]["name"] == name:
        return table_params(cfg["loss"])
    if kind == "augmentation":
        if cfg.get("joint_view") and cfg["joint_view"]["name"] == name:
            return table_params(cfg["joint_view"])
        for spec in cfg.get("augmentations") or []:
            if spec["name"] == name:
                return table_params(spec)
    return {}


def _check_component(
    host: Any,
    comp: Any,
    *,
    modality: str | None,
    data: str | Mapping[str, str] | None,
    params: Mapping[str, dict],
    keeps_shape: Mapping[str, bool],
    options: Mapping[str, Any],
    batch_items: int,
    tmp_path: Path,
    device: Any = "cpu",
) -> Report:
    label = _label(comp.kind, comp.name, comp.obj, _where(comp))
    c = _Checker(label)
    target = comp.modality if comp.modality != "*" else modality
    if comp.kind == "loss":
        return check_loss(comp.obj, params=params.get(comp.name), name=comp.name, where=_where(comp), raise_=False)
    if comp.kind == "reader":
        sources = None
        try:
            offered = comp.obj.datasets()
            default = host.modality(comp.modality).default_data if comp.modality != "*" else None
            src = _data_for(data, comp)
            if isinstance(data, Mapping) and data.get(comp.name):  # a source named for this very reader
                sources = [str(data[comp.name])]
            elif src is not None and str(src).lower() in {k.lower() for k in offered}:
                sources = [src]
            elif default is not None and str(default).lower() in {k.lower() for k in offered}:
                sources = [next(k for k in offered if k.lower() == str(default).lower())]
        except Exception:  # noqa: BLE001 - check_reader reports it
            pass
        opts = None
        if comp.modality != "*":
            try:
                opts = (host.modality(comp.modality).defaults or {}).get("data_options")
            except Exception:  # noqa: BLE001
                opts = None
        return check_reader(comp.obj, sources=sources, options=opts, name=comp.name, where=_where(comp),
                            tmp_path=tmp_path, raise_=False)
    if target is None:
        c.skipped("work with a modality", "it is registered for every modality ('*'); pass modality=NAME to check it")
        return c.report
    try:
        bench = _bench(host, target, _data_for(data, comp, target), batch_items, device)
    except Exception as exc:  # noqa: BLE001
        c.failed("get checked on the modality's default data", f"reading and preparing "
                 f"'{_data_for(data, comp, target) or 'the default data set'}' for modality '{target}' raised "
                 f"{_one_line(exc)}")
        return c.report
    size_fn = bench.modality.batch_size
    if comp.kind == "modality":
        return check_modality(comp.obj, bench.raw_train, host=host, batch_items=batch_items,
                              where=f"plugin '{comp.plugin}'", tmp_path=tmp_path, device=bench.device, raise_=False)
    if comp.kind == "augmentation":
        p = params.get(comp.name, _recipe_params(bench.cfg, "augmentation", comp.name))
        return check_augmentation(comp.obj, bench.batch(), single=bench.single(), params=p, name=comp.name,
                                  where=_where(comp), k=int(bench.cfg.get("views", 2)), batch_size=size_fn,
                                  keeps_shape=keeps_shape.get(comp.name), raise_=False, meta=bench.meta)
    if comp.kind == "encoder":
        p = params.get(comp.name, _recipe_params(bench.cfg, "encoder", comp.name))
        return check_encoder(comp.obj, bench.batch(), params=p, meta=bench.meta, single=bench.single(),
                             name=comp.name, where=_where(comp), batch_size=size_fn, raise_=False)
    if comp.kind == "evaluator":
        return _check_evaluator_on(bench, host, comp, options, c)
    c.skipped("get checked", f"the kit has no checks for a {comp.kind}")
    return c.report


def _data_for(data: str | Mapping[str, str] | None, comp: Any, modality: str | None = None) -> str | None:
    if data is None or isinstance(data, str):
        return data
    return data.get(comp.name) or data.get(modality or comp.modality)


def _check_evaluator_on(bench: _Bench, host: Any, comp: Any, options: Mapping[str, Any], c: _Checker) -> Report:
    import torch

    from .components import build_encoder
    from .evaluation import EvalContext, default_evaluators
    from .runs import embed_items

    if comp.name not in default_evaluators(host.registry, bench.modality.name, bench.everything, [comp.name]):
        need = getattr(comp.obj, "requires", "labels")
        c.skipped("run on the modality's data", f"'{bench.source}' does not fit its requirement "
                  f"requires='{need}'; pass data={{'{comp.name}': SRC}} with data that does")
        return c.report
    torch.manual_seed(0)
    encoder = build_encoder(host.registry, bench.modality.name, bench.cfg, bench.meta).to(bench.device).eval()

    def embed(samples):
        return embed_items(encoder, bench.modality, samples.items, bench.device, 256)

    opts = {**dict((bench.cfg.get("evaluate") or {}).get("options", {})), **dict(options.get(comp.name, {}))}
    ctx = EvalContext(samples=bench.everything, embed=embed, seeds=[0], options=opts, meta=bench.meta)
    return check_evaluator(comp.obj, ctx, name=comp.name, where=_where(comp), raise_=False)


@_own_rng
def check_plugin(
    plugin: str,
    *,
    host: Any = None,
    modality: str | None = None,
    data: str | Mapping[str, str] | None = None,
    params: Mapping[str, dict] | None = None,
    keeps_shape: Mapping[str, bool] | None = None,
    options: Mapping[str, dict] | None = None,
    skip: Iterable[str] = (),
    only: Iterable[tuple[str, str, str]] | None = None,
    batch_items: int = BATCH_ITEMS,
    device: str | None = None,
    tmp_path: str | Path | None = None,
    raise_: bool = True,
) -> Report:
    """Run every check on every component that ``plugin`` registered.

    ``plugin`` is an entry-point name as ``contrastkit plugins`` lists it (or a
    modality's name: then every component registered for it).  Batches come
    from the modality's default data set, read and prepared as ``pretrain``
    does (``data`` overrides it: one source, or ``{component or modality
    name: source}``).  ``params`` gives constructor arguments by component
    name (default: the recipe's, else none); ``keeps_shape`` marks
    augmentations that change the size of a sample (``{"random_crop":
    False}``); ``options`` gives evaluators their ``ctx.options`` by name;
    ``skip`` leaves out components by name; ``modality`` is the data for
    components registered for every modality (``"*"``); ``device`` (an
    accelerator's torch device) runs batches and encoders there, so "keeps devices" and
    generators on the batch's device are checked for real.  Raises
    :class:`ConformanceError` listing every failure unless ``raise_=False``.
    """
    if tmp_path is None:
        with tempfile.TemporaryDirectory(prefix="contrastkit-testkit-") as tmp:
            return check_plugin(plugin, host=host, modality=modality, data=data, params=params, keeps_shape=keeps_shape,
                                options=options, skip=skip, only=only, batch_items=batch_items, device=device,
                                tmp_path=tmp, raise_=raise_)
    host = host or _host()
    report = Report()
    try:
        _, comps = _resolve_plugin(host, plugin)
    except Exception as exc:  # noqa: BLE001
        report.findings.append(Finding(f"plugin '{plugin}'", "load", FAILED, f"plugin '{plugin}' cannot be checked: "
                                       f"{str(exc).rstrip('.')}."))
        return report.raise_for_failures() if raise_ else report
    own = [comp.modality for comp in comps if comp.kind == "modality"]
    modality = modality or (own[0] if own else None)
    skip = set(skip)
    wanted = set(only) if only is not None else None
    if not comps:
        report.findings.append(Finding(f"plugin '{plugin}'", "register components", FAILED,
                                       f"plugin '{plugin}' registered no component."))
    for comp in comps:
        if comp.name in skip or (wanted is not None and comp.key not in wanted):
            continue
        report.extend(_check_component(host, comp, modality=modality, data=data, params=dict(params or {}),
                                       keeps_shape=dict(keeps_shape or {}), options=dict(options or {}),
                                       batch_items=batch_items, tmp_path=Path(tmp_path), device=device or "cpu"))
    return report.raise_for_failures() if raise_ else report


def conformance_tests(plugin: str, **kwargs: Any) -> Callable[..., None]:
    """A pytest test function, parametrised with one case per component of ``plugin``.

    In a plugin's test module::

        test_conformance = conformance_tests("audio", params={"crop": {"length": 100}})

    collects ``test_conformance[augmentation:audio:gain]``, … ; each case runs
    :func:`check_plugin` on one component and fails with the sentences of its
    failed properties.  ``kwargs`` are those of :func:`check_plugin`.
    """
    try:
        keys = plugin_components(plugin, kwargs.get("host"))
        ids = [":".join(key) for key in keys]
    except Exception as exc:  # noqa: BLE001 - reported by the one case
        keys, ids = [("plugin", plugin, str(exc))], [f"plugin:{plugin}"]
    if pytest is None:  # pragma: no cover
        raise ImportError("conformance_tests needs pytest; pip install pytest.")
    skip = set(kwargs.get("skip", ()))
    marks = [pytest.param(k, id=i, marks=pytest.mark.skip(reason="skipped by the caller")) if k[2] in skip
             else pytest.param(k, id=i) for k, i in zip(keys, ids)]

    @pytest.mark.parametrize("component", marks)
    def test_conformance(component, tmp_path):
        __tracebackhide__ = True
        if component[0] == "plugin":
            why = component[2].rstrip(".")
            raise ConformanceError(Report([Finding(f"plugin '{plugin}'", "load", FAILED,
                                                   f"plugin '{plugin}' cannot be checked: {why}.")]))
        report = check_plugin(plugin, only=[component], tmp_path=tmp_path, **{**kwargs, "raise_": False})
        report.raise_for_failures()

    test_conformance.__doc__ = f"Conformance of every component of contrastkit plugin '{plugin}'."
    return test_conformance


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
