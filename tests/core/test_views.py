"""ViewGenerator, Compose and the Augmentation base classes, with test-local transforms."""

from __future__ import annotations

import pytest
import torch

from contrastkit.core.errors import ConfigError
from contrastkit.core.views import Augmentation, Compose, JointAugmentation, ViewGenerator, make_generator


class Offset(Augmentation):
    """Add a random offset in [0, scale) per sample (to the transformed samples)."""

    def __init__(self, scale: float = 1.0, p: float = 1.0) -> None:
        super().__init__(p)
        self.scale = float(scale)

    def apply(self, batch, generator):
        b = batch.shape[0]
        shift = torch.rand(b, 1, 1, generator=generator, device=batch.device) * self.scale
        mask = self.sample_mask(b, generator, batch.device)[:, None, None]
        return batch + shift * mask


class Double(Augmentation):
    """Multiply by two (deterministic)."""

    def apply(self, batch, generator):
        return batch * 2.0


class HalvesJoint(JointAugmentation):
    """View i is the batch plus i (and can be told to return a wrong count)."""

    def __init__(self, extra: int = 0) -> None:
        self.extra = extra

    def views(self, batch, k, generator):
        return [batch + i for i in range(k + self.extra)]


def batch(b: int = 6) -> torch.Tensor:
    return torch.arange(b * 2 * 5, dtype=torch.float32).reshape(b, 2, 5)


@pytest.mark.parametrize("k", [1, 0, -3])
def test_fewer_than_two_views_refused(k):
    with pytest.raises(ConfigError, match=f"at least 2, got {k}"):
        ViewGenerator([Offset()], k=k)


@pytest.mark.parametrize("k", [2, 3, 5])
def test_k_views_per_sample_offsets(k):
    x = batch()
    before = x.clone()
    views = ViewGenerator([Offset(scale=1.0)], k=k)(x, make_generator(0))
    assert len(views) == k
    for v in views:
        assert v.shape == x.shape and v.dtype == x.dtype
        d = v - x
        # one offset per sample, constant within the sample, in [0, 1)
        assert torch.allclose(d, d[:, :1, :1].expand_as(d), atol=1e-5)
        assert ((d >= 0) & (d < 1)).all()
        assert len(set(d[:, 0, 0].tolist())) == x.shape[0]  # different per sample
    # the views are independent draws, and the input is untouched
    assert not torch.equal(views[0], views[1])
    assert torch.equal(x, before)


def test_each_call_redraws():
    gen = ViewGenerator([Offset()], k=2)
    g = make_generator(7)
    first = gen(batch(), g)
    second = gen(batch(), g)
    assert not torch.equal(first[0], second[0]) and not torch.equal(first[1], second[1])


def test_same_seed_reproduces():
    gen = ViewGenerator([Offset(), Offset(scale=0.1, p=0.5)], k=3)
    a = gen(batch(), make_generator(123))
    b = ViewGenerator([Offset(), Offset(scale=0.1, p=0.5)], k=3)(batch(), make_generator(123))
    c = gen(batch(), make_generator(124))
    for va, vb in zip(a, b):
        assert torch.equal(va, vb)
    assert not torch.equal(a[0], c[0])


def test_make_generator():
    g1, g2 = make_generator(5), make_generator(5)
    assert torch.equal(torch.rand(4, generator=g1), torch.rand(4, generator=g2))
    assert make_generator(-1).initial_seed() == (-1) % 2**63
    assert make_generator(3, "cpu").device == torch.device("cpu")


def test_p_honoured():
    x = torch.zeros(4000, 1, 1)
    none = Offset(p=0.0)(x, make_generator(0))
    assert torch.equal(none, x)
    half = Offset(p=0.5)(x, make_generator(0))
    frac = float((half != 0).float().mean())
    assert 0.45 < frac < 0.55
    with pytest.raises(ConfigError, match=r"Offset: p must lie in \[0, 1\], got 1.5"):
        Offset(p=1.5)


def test_compose_applies_in_order():
    x = batch()
    out = Compose([Double(), Offset(scale=0.0)])(x, make_generator(0))
    assert torch.equal(out, x * 2)
    # order matters for non-commuting transforms
    g1, g2 = make_generator(1), make_generator(1)
    a = Compose([Offset(), Double()])(x, g1)
    b = Compose([Double(), Offset()])(x, g2)
    assert torch.allclose(a - 2 * x, 2 * (b - 2 * x))
    assert torch.equal(Compose([])(x, None), x)


def test_reprs():
    assert repr(Offset(scale=2, p=0.5)) == "Offset(scale=2.0, p=0.5)"
    assert repr(Double()) == "Double(p=1.0)"
    assert repr(Compose([Offset(scale=2), Double()])) == "Compose([\n  Offset(scale=2.0, p=1.0),\n  Double(p=1.0)\n])"
    assert repr(Compose([])) == "Compose([])"
    assert repr(HalvesJoint()) == "HalvesJoint(extra=0)"
    gen = ViewGenerator(Double(), k=3, joint=HalvesJoint())
    assert repr(gen) == "ViewGenerator(k=3, joint=HalvesJoint(extra=0), pipeline=Double(p=1.0))"


def test_single_augmentation_is_the_pipeline():
    d = Double()
    gen = ViewGenerator(d, k=2)
    assert gen.pipeline is d
    v1, v2 = gen(batch())
    assert torch.equal(v1, batch() * 2) and torch.equal(v2, batch() * 2)


def test_joint_then_pipeline():
    x = batch()
    views = ViewGenerator([Double()], k=3, joint=HalvesJoint())(x, make_generator(0))
    assert len(views) == 3
    for i, v in enumerate(views):
        assert torch.equal(v, (x + i) * 2)


@pytest.mark.parametrize("extra", [-1, 1])
def test_joint_with_wrong_number_of_views(extra):
    gen = ViewGenerator([Double()], k=2, joint=HalvesJoint(extra=extra))
    with pytest.raises(ConfigError, match=rf"HalvesJoint\(extra={extra}\) returned {2 + extra} views, expected 2"):
        gen(batch(), make_generator(0))


class Window(Augmentation):
    """Takes ``length`` and ``span`` parameters; only ``span`` may come from the data's meta."""

    from_meta = ("span",)

    def __init__(self, length: int = 3, span: int | None = None, p: float = 1.0) -> None:
        super().__init__(p)
        self.length, self.span = length, span

    def apply(self, batch, generator):
        return batch


def test_build_views_fills_only_the_meta_keys_an_augmentation_lists():
    from contrastkit.core.components import build_views
    from contrastkit.core.registry import Component, Registry

    reg = Registry()
    reg.add(Component(kind="augmentation", modality="toy", name="window", obj=Window, plugin="tests"))
    cfg = {"augmentations": [{"name": "window"}], "views": 2}
    gen = build_views(reg, "toy", cfg, meta={"span": 7, "length": 100})
    w = gen.pipeline.transforms[0]
    assert (w.length, w.span) == (3, 7)  # "length" in meta is the data's, not the window's
    gen = build_views(reg, "toy", {"augmentations": [{"name": "window", "span": 2}], "views": 2}, meta={"span": 7})
    w = gen.pipeline.transforms[0]
    assert w.span == 2  # the config wins
