"""check_encoder."""

from __future__ import annotations

from typing import Any, Callable, Sequence


from .compare import _batch_size, _copy, _default_bad_batches, _default_single, _device_of, _expect_error, _first_difference, _is_array, _is_tensor, _same_leaf, _shape
from .report import Report, _Checker, _label, _one_line, _own_rng

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

    from ..capabilities import declared
    from ..components import instantiate
    from ..encoders import Encoder

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
    out_dim = declared(enc, Encoder, "out_dim")
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
