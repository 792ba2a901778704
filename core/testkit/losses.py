"""check_loss."""

from __future__ import annotations

from typing import Any


from .compare import _expect_error, _is_tensor, _same_leaf, _shape
from .report import Report, _Checker, _label, _one_line, _own_rng

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

    from ..capabilities import declared
    from ..components import instantiate
    from ..losses.base import ContrastiveLoss

    cls = loss if isinstance(loss, type) else type(loss)
    c = _Checker(_label("loss", name, cls, where))
    if isinstance(loss, type):
        try:
            loss = instantiate("loss", name or cls.__name__, cls, dict(params or {}))
        except Exception as exc:  # noqa: BLE001
            c.failed("build from its parameters", f"it raised {_one_line(exc)}")
            return c.done(raise_)
    dense = bool(declared(loss, ContrastiveLoss, "dense"))
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
