"""Poly-view InfoNCE, MV-InfoNCE, MV-DHEL, AlignUniform and CoLES against naive references.

Every reference below is written independently of the library, with explicit
Python loops over samples, views and pairs, on scalars, in float64; values and
gradients must agree.  Known limits (collapse, perfect alignment, orthogonal
samples) are checked against closed forms derived in the comments.
"""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.core.errors import ConfigError
from contrastkit.core.losses.base import ContrastiveLoss, LossOutput
from contrastkit.core.losses.coles import LOSSES as COLES_LOSSES, CoLESLoss
from contrastkit.core.losses.multiview import LOSSES as MV_LOSSES, MVDHEL, AlignUniform, MVInfoNCE, PolyViewInfoNCE


# ----------------------------------------------------------------------------- helpers


def random_views(k: int, b: int, d: int, seed: int, corr: float = 0.7) -> list[torch.Tensor]:
    """K views of B samples: a shared base plus view noise, so positives are more alike than negatives."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(b, d, generator=g, dtype=torch.float64)
    return [(base + corr * torch.randn(b, d, generator=g, dtype=torch.float64)).requires_grad_(True) for _ in range(k)]


def unit(x: torch.Tensor) -> torch.Tensor:
    return x / torch.sqrt((x * x).sum())


def embeddings(views):
    """{(view, sample): normalised embedding}."""
    return {(v, i): unit(views[v][i]) for v in range(len(views)) for i in range(views[0].shape[0])}


def dot(x, y):
    return (x * y).sum()


def assert_matches(loss_fn, reference, views, atol=1e-9):
    out = loss_fn(views)
    ref = reference(views)
    assert isinstance(out, LossOutput)
    assert out.loss.dim() == 0 and out.loss.dtype == torch.float64
    assert out.loss.item() == pytest.approx(ref.item(), abs=atol, rel=atol)
    grads = torch.autograd.grad(out.loss, views)
    ref_grads = torch.autograd.grad(ref, views)
    for g, rg in zip(grads, ref_grads):
        assert g.abs().max() > 1e-4  # not trivially zero
        torch.testing.assert_close(g, rg, atol=atol, rtol=1e-7)
    return out


def orthogonal_aligned(k: int, b: int, d: int) -> list[torch.Tensor]:
    """View v of sample i is e_i: positives coincide, negatives are orthogonal."""
    z = torch.eye(b, d, dtype=torch.float64)
    return [z.clone() for _ in range(k)]


def collapsed(k: int, b: int, d: int) -> list[torch.Tensor]:
    return [torch.ones(b, d, dtype=torch.float64) for _ in range(k)]


# ----------------------------------------------------------------------------- naive references


def naive_poly_view(views, t, aggregation):
    """One-vs-rest InfoNCE: anchor (α, i) against the rest sets {x_jβ: β ≠ α} of every sample j."""
    k, b = len(views), views[0].shape[0]
    z = embeddings(views)
    total = 0.0
    for a in range(k):
        for i in range(b):
            def log_critic(j):
                sims = [dot(z[(a, i)], z[(beta, j)]) / t for beta in range(k) if beta != a]
                if aggregation == "arithmetic":
                    return torch.log(sum(torch.exp(s) for s in sims) / (k - 1))
                return sum(sims) / (k - 1)

            num = torch.exp(log_critic(i))
            den = sum(torch.exp(log_critic(j)) for j in range(b))
            total = total - torch.log(num / den)
    return total / (k * b)


def naive_mv_infonce(views, t):
    k, b = len(views), views[0].shape[0]
    z = embeddings(views)
    total = 0.0
    for i in range(b):
        num = sum(torch.exp(dot(z[(l, i)], z[(m, i)]) / t) for l in range(k) for m in range(k) if l != m)
        den = 0.0
        for l in range(k):
            for m in range(k):
                for j in range(b):
                    if (j, m) != (i, l):
                        den = den + torch.exp(dot(z[(l, i)], z[(m, j)]) / t)
        total = total - torch.log(num / den)
    return total / b


def naive_mv_dhel(views, t):
    k, b = len(views), views[0].shape[0]
    z = embeddings(views)
    total = 0.0
    for i in range(b):
        align = sum(torch.exp(dot(z[(l, i)], z[(m, i)]) / t) for l in range(k) for m in range(l + 1, k))
        total = total - torch.log(align)
        for l in range(k):
            total = total + torch.log(sum(torch.exp(dot(z[(l, i)], z[(l, j)]) / t) for j in range(b) if j != i))
    return total / b


def naive_align_uniform(views, align_weight, unif_weight, alpha, t):
    k, b = len(views), views[0].shape[0]
    z = embeddings(views)
    dists = []
    for i in range(b):
        for l in range(k):
            for m in range(l + 1, k):
                diff = z[(l, i)] - z[(m, i)]
                dists.append(torch.sqrt(dot(diff, diff)) ** alpha)
    align = sum(dists) / len(dists)
    uniform = 0.0
    for l in range(k):
        kernel = []
        for i in range(b):
            for j in range(b):
                if i != j:
                    diff = z[(l, i)] - z[(l, j)]
                    kernel.append(torch.exp(-t * dot(diff, diff)))
        uniform = uniform + torch.log(sum(kernel) / len(kernel))
    return align_weight * align + unif_weight * uniform / k


def naive_coles(views, margin, neg_count, normalize=True):
    k, b = len(views), views[0].shape[0]
    z = embeddings(views) if normalize else {(v, i): views[v][i] for v in range(k) for i in range(b)}
    terms = []
    for i in range(b):
        for l in range(k):
            for m in range(l + 1, k):
                diff = z[(l, i)] - z[(m, i)]
                terms.append(dot(diff, diff))
    for i in range(b):
        for l in range(k):
            cands = []
            for j in range(b):
                if j == i:
                    continue
                for m in range(k):
                    diff = z[(l, i)] - z[(m, j)]
                    cands.append(torch.sqrt(dot(diff, diff)))
            cands.sort(key=lambda d: d.item())  # hardest = closest
            for d in cands[:neg_count]:
                terms.append(torch.clamp(margin - d, min=0) ** 2)
    return sum(terms) / len(terms)


# ----------------------------------------------------------------------------- poly-view


@pytest.mark.parametrize("aggregation", ["arithmetic", "geometric"])
@pytest.mark.parametrize("k", [2, 3, 4])
@pytest.mark.parametrize("temperature", [0.1, 0.5, 2.0])
def test_poly_view_matches_naive(aggregation, k, temperature):
    views = random_views(k, 5, 4, seed=k * 31 + int(10 * temperature))
    loss = PolyViewInfoNCE(temperature=temperature, aggregation=aggregation)
    assert_matches(loss, lambda v: naive_poly_view(v, temperature, aggregation), views)


def test_poly_view_two_views_is_symmetric_clip_loss():
    # K = 2: the rest set is the single other view, both aggregations equal the
    # symmetric cross-view InfoNCE  ½[CE(S/τ, diag) + CE(Sᵀ/τ, diag)], S = ẑ₁ ẑ₂ᵀ
    views = random_views(2, 6, 5, seed=7)
    t = 0.3
    z1, z2 = (torch.nn.functional.normalize(v, dim=1) for v in views)
    s = z1 @ z2.T / t
    target = torch.arange(6)
    clip = 0.5 * (torch.nn.functional.cross_entropy(s, target) + torch.nn.functional.cross_entropy(s.T, target))
    for aggregation in ("arithmetic", "geometric"):
        out = PolyViewInfoNCE(temperature=t, aggregation=aggregation)(views)
        assert out.loss.item() == pytest.approx(clip.item(), abs=1e-12)


@pytest.mark.parametrize("aggregation", ["arithmetic", "geometric"])
@pytest.mark.parametrize("k", [2, 3, 4])
def test_poly_view_known_limits(aggregation, k):
    b, t = 5, 0.2
    loss = PolyViewInfoNCE(temperature=t, aggregation=aggregation)
    # collapse: every rest set scores the same, the softmax over B samples is uniform
    assert loss(collapsed(k, b, 3)).loss.item() == pytest.approx(math.log(b), abs=1e-12)
    # aligned and orthogonal: own rest set scores 1/τ, others 0 -> log(1 + (B−1)e^{−1/τ})
    out = loss(orthogonal_aligned(k, b, 6))
    assert out.loss.item() == pytest.approx(math.log(1 + (b - 1) * math.exp(-1 / t)), abs=1e-12)
    assert float(out.parts["top1"]) == 1.0 and float(out.parts["pos_sim"]) == pytest.approx(1.0)


def test_poly_view_aggregations_differ_for_more_views():
    views = random_views(3, 5, 4, seed=2)
    a = PolyViewInfoNCE(aggregation="arithmetic")(views).loss.item()
    g = PolyViewInfoNCE(aggregation="geometric")(views).loss.item()
    assert abs(a - g) > 1e-3


# ----------------------------------------------------------------------------- MV-InfoNCE


@pytest.mark.parametrize("k", [2, 3, 4])
@pytest.mark.parametrize("temperature", [0.1, 0.5, 2.0])
def test_mv_infonce_matches_naive(k, temperature):
    views = random_views(k, 4, 3, seed=k * 13 + int(10 * temperature))
    assert_matches(MVInfoNCE(temperature=temperature), lambda v: naive_mv_infonce(v, temperature), views)


@pytest.mark.parametrize("k", [2, 3, 4])
def test_mv_infonce_known_limits(k):
    b, t = 5, 0.2
    loss = MVInfoNCE(temperature=t)
    # collapse: num K(K−1)e^{1/τ}, den K(KB−1)e^{1/τ}
    assert loss(collapsed(k, b, 3)).loss.item() == pytest.approx(math.log((k * b - 1) / (k - 1)), abs=1e-12)
    # aligned, orthogonal: den per view (K−1)e^{1/τ} + K(B−1)
    expected = math.log(1 + k * (b - 1) * math.exp(-1 / t) / (k - 1))
    assert loss(orthogonal_aligned(k, b, 6)).loss.item() == pytest.approx(expected, abs=1e-12)


# ----------------------------------------------------------------------------- MV-DHEL


@pytest.mark.parametrize("k", [2, 3, 4])
@pytest.mark.parametrize("temperature", [0.1, 0.5, 2.0])
def test_mv_dhel_matches_naive(k, temperature):
    views = random_views(k, 4, 3, seed=k * 17 + int(10 * temperature))
    out = assert_matches(MVDHEL(temperature=temperature), lambda v: naive_mv_dhel(v, temperature), views)
    assert out.loss.item() == pytest.approx(float(out.parts["alignment"] + out.parts["uniformity"]), abs=1e-12)


@pytest.mark.parametrize("k", [2, 3, 4])
def test_mv_dhel_known_limits(k):
    b, t = 5, 0.25
    loss = MVDHEL(temperature=t)
    pairs = k * (k - 1) / 2
    # collapse: −log(C(K,2) e^{1/τ}) + K log((B−1) e^{1/τ})
    expected = (k - 1) / t + k * math.log(b - 1) - math.log(pairs)
    assert loss(collapsed(k, b, 3)).loss.item() == pytest.approx(expected, abs=1e-12)
    # aligned, orthogonal: −1/τ − log C(K,2) + K log(B−1)
    out = loss(orthogonal_aligned(k, b, 6))
    assert out.loss.item() == pytest.approx(-1 / t - math.log(pairs) + k * math.log(b - 1), abs=1e-12)
    assert float(out.parts["uniformity"]) == pytest.approx(k * math.log(b - 1), abs=1e-12)


def test_mv_dhel_uniformity_ignores_other_views():
    # moving view 2 of every sample onto view 1 of another sample changes only alignment:
    # the uniformity term never compares embeddings of different views
    views = [v.detach() for v in random_views(3, 5, 4, seed=11)]
    base = MVDHEL(temperature=0.5)(views).parts["uniformity"]
    shuffled = [views[0], views[1][torch.tensor([1, 2, 3, 4, 0])], views[2]]
    # the rows of view 1 are only permuted: each view's set of embeddings is unchanged
    assert float(MVDHEL(temperature=0.5)(shuffled).parts["uniformity"]) == pytest.approx(float(base), abs=1e-12)


# ----------------------------------------------------------------------------- AlignUniform


@pytest.mark.parametrize("k", [2, 3, 4])
@pytest.mark.parametrize("alpha,t,wa,wu", [(2.0, 2.0, 1.0, 1.0), (1.0, 0.5, 0.3, 2.0), (3.0, 4.0, 1.0, 0.0)])
def test_align_uniform_matches_naive(k, alpha, t, wa, wu):
    views = random_views(k, 5, 4, seed=k + int(alpha * 10 + t))
    loss = AlignUniform(align_weight=wa, unif_weight=wu, alpha=alpha, t=t)
    assert_matches(loss, lambda v: naive_align_uniform(v, wa, wu, alpha, t), views)


def test_align_uniform_two_views_matches_wang_isola_formulation():
    # the paper's reference formulation for two normalised views
    views = random_views(2, 7, 5, seed=5)
    x, y = (torch.nn.functional.normalize(v, dim=1) for v in views)
    align = (x - y).norm(p=2, dim=1).pow(2).mean()
    unif_x = torch.pdist(x, p=2).pow(2).mul(-2).exp().mean().log()
    unif_y = torch.pdist(y, p=2).pow(2).mul(-2).exp().mean().log()
    out = AlignUniform()(views)
    assert float(out.parts["align"]) == pytest.approx(align.item(), abs=1e-12)
    assert float(out.parts["uniform"]) == pytest.approx(((unif_x + unif_y) / 2).item(), abs=1e-12)
    assert out.loss.item() == pytest.approx((align + (unif_x + unif_y) / 2).item(), abs=1e-12)


@pytest.mark.parametrize("k", [2, 3])
def test_align_uniform_known_limits(k):
    loss = AlignUniform(t=2.0)
    # aligned views: alignment 0 (and its gradient is finite and zero)
    views = [v.clone().requires_grad_(True) for v in orthogonal_aligned(k, 4, 6)]
    out = loss(views)
    assert float(out.parts["align"]) == 0.0
    # orthonormal samples: every squared distance is 2 -> uniform = −2t
    assert float(out.parts["uniform"]) == pytest.approx(-4.0, abs=1e-12)
    assert out.loss.item() == pytest.approx(-4.0, abs=1e-12)
    assert all(torch.isfinite(g).all() for g in torch.autograd.grad(out.loss, views))
    # collapse: distances 0 -> uniform = log 1 = 0, the worst value
    out = loss(collapsed(k, 4, 3))
    assert out.loss.item() == pytest.approx(0.0, abs=1e-12)
    # two antipodal samples: squared distance 4 -> uniform = −4t
    z = torch.tensor([[1.0, 0.0], [-1.0, 0.0]], dtype=torch.float64)
    assert float(loss([z] * k).parts["uniform"]) == pytest.approx(-8.0, abs=1e-12)


# ----------------------------------------------------------------------------- CoLES


@pytest.mark.parametrize("k", [2, 3, 4])
@pytest.mark.parametrize("margin,neg_count", [(0.5, 5), (1.2, 2), (1.5, 100)])
def test_coles_matches_naive(k, margin, neg_count):
    views = random_views(k, 5, 4, seed=k * 7 + neg_count)
    assert_matches(CoLESLoss(margin=margin, neg_count=neg_count), lambda v: naive_coles(v, margin, neg_count), views)


def test_coles_unnormalised_matches_naive():
    views = random_views(3, 4, 3, seed=1, corr=0.3)
    with torch.no_grad():
        for v in views:
            v.mul_(0.4)
    assert_matches(CoLESLoss(margin=1.0, neg_count=3, normalize=False),
                   lambda v: naive_coles(v, 1.0, 3, normalize=False), views)


def test_coles_only_hardest_negatives_count():
    # sample 0 and 1 are close (0.3 apart), sample 2 far; with neg_count = 1 each view of
    # sample 0 picks a view of sample 1 as its hardest negative, never sample 2
    z = torch.tensor([[1.0, 0.0, 0.0], [math.cos(0.3), math.sin(0.3), 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    loss = CoLESLoss(margin=0.5, neg_count=1)
    out = loss([z, z])
    d01 = 2 * math.sin(0.15)  # chord between unit vectors 0.3 rad apart
    # positives: 3 pairs at distance 0; negatives: 6 anchors, each its nearest other entity:
    # samples 0, 1 -> each other (d01 < 0.5); sample 2 -> sample 0 or 1 at distance √2 > margin
    expected = 4 * (0.5 - d01) ** 2 / (3 + 6)
    assert out.loss.item() == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("k", [2, 3])
def test_coles_known_limits(k):
    b, n = 4, 5
    loss = CoLESLoss(margin=0.5, neg_count=n)
    # identical positives and orthogonal samples (distance √2 > margin): zero loss
    assert loss(orthogonal_aligned(k, b, 6)).loss.item() == 0.0
    # collapse: positives cost 0, every negative costs margin² = 0.25
    pos, neg = b * k * (k - 1) // 2, k * b * min(n, k * (b - 1))
    assert loss(collapsed(k, b, 3)).loss.item() == pytest.approx(0.25 * neg / (pos + neg), abs=1e-12)


# ----------------------------------------------------------------------------- common behaviour


ALL = {**MV_LOSSES, **COLES_LOSSES}


def test_registry_names():
    assert set(MV_LOSSES) == {"mv_infonce", "poly_view", "mv_dhel", "align_uniform"}
    assert COLES_LOSSES == {"coles": CoLESLoss}
    for cls in ALL.values():
        assert issubclass(cls, ContrastiveLoss) and cls.distributed == "gather"
        assert "Distributed:" in cls.__doc__


@pytest.mark.parametrize("name", sorted(ALL))
def test_float32_and_scale_invariance(name):
    views = random_views(3, 6, 5, seed=3)
    loss = ALL[name]()
    ref = loss(views).loss.item()
    assert loss([v.detach().float() for v in views]).loss.item() == pytest.approx(ref, abs=1e-4)
    if name != "coles" or loss.normalize:  # normalised embeddings: per-row scaling changes nothing
        scaled = [v * s for v, s in zip(views, (3.0, 0.01, 50.0))]
        assert loss(scaled).loss.item() == pytest.approx(ref, abs=1e-10)


@pytest.mark.parametrize("name", sorted(ALL))
def test_rejects_bad_views(name):
    loss = ALL[name]()
    z = torch.randn(4, 3)
    with pytest.raises(ConfigError, match="at least 2 views, got 1"):
        loss([z])
    with pytest.raises(ConfigError, match="same shape"):
        loss([z, torch.randn(5, 3)])
    with pytest.raises(ConfigError, match="B × D"):
        loss([torch.randn(4, 3, 2)] * 2)


@pytest.mark.parametrize("cls", [PolyViewInfoNCE, MVDHEL, AlignUniform, CoLESLoss])
def test_rejects_single_sample_batch(cls):
    with pytest.raises(ConfigError, match="at least 2"):
        cls()([torch.randn(1, 3), torch.randn(1, 3)])


@pytest.mark.parametrize(
    "cls,kwargs,message",
    [
        (PolyViewInfoNCE, {"temperature": 0}, "temperature must be a positive number"),
        (PolyViewInfoNCE, {"temperature": float("nan")}, "temperature must be a positive number"),
        (PolyViewInfoNCE, {"temperature": "0.1"}, "temperature must be a positive number"),
        (PolyViewInfoNCE, {"aggregation": "harmonic"}, "aggregation must be one of arithmetic, geometric"),
        (MVInfoNCE, {"temperature": -1.0}, "temperature must be a positive number"),
        (MVInfoNCE, {"temperature": True}, "temperature must be a positive number"),
        (MVDHEL, {"temperature": None}, "temperature must be a positive number"),
        (AlignUniform, {"alpha": 0}, "alpha must be a positive number"),
        (AlignUniform, {"t": -2}, "t must be a positive number"),
        (AlignUniform, {"align_weight": -1}, "align_weight must be a number ≥ 0"),
        (AlignUniform, {"unif_weight": float("inf")}, "unif_weight must be a number ≥ 0"),
        (CoLESLoss, {"margin": 0}, "margin must be a positive number"),
        (CoLESLoss, {"neg_count": 0}, "neg_count must be an integer ≥ 1"),
        (CoLESLoss, {"neg_count": 2.5}, "neg_count must be an integer ≥ 1"),
        (CoLESLoss, {"neg_count": True}, "neg_count must be an integer ≥ 1"),
    ],
)
def test_constructor_errors(cls, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        cls(**kwargs)
