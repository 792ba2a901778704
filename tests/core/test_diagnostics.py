"""Alignment, uniformity and effective rank on inputs with known values."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.core.diagnostics import alignment, effective_rank, report, uniformity


def test_alignment_identical_views_is_zero():
    a = torch.randn(10, 5, generator=torch.Generator().manual_seed(0))
    assert alignment(a, a.clone()) == pytest.approx(0.0, abs=1e-12)
    # scale does not matter: embeddings are normalised first
    assert alignment(a, 3.0 * a) == pytest.approx(0.0, abs=1e-10)


def test_alignment_antipodal_is_four():
    a = torch.randn(10, 5, generator=torch.Generator().manual_seed(1))
    assert alignment(a, -a) == pytest.approx(4.0, abs=1e-5)
    assert alignment(a, -0.5 * a, alpha=1.0) == pytest.approx(2.0, abs=1e-5)


def test_alignment_orthogonal_is_two():
    a = torch.eye(4)
    b = torch.roll(torch.eye(4), 1, dims=1)  # each row orthogonal to its partner
    assert alignment(a, b) == pytest.approx(2.0, abs=1e-6)


def test_uniformity_all_identical_is_zero():
    x = torch.ones(20, 4) * torch.tensor([1.0, 2.0, -1.0, 0.5])
    assert uniformity(x) == pytest.approx(0.0, abs=1e-6)


def test_uniformity_closed_forms():
    # two antipodal points: one pair at squared distance 4 -> log exp(-2·4) = -8
    assert uniformity(torch.tensor([[1.0, 0.0], [-1.0, 0.0]])) == pytest.approx(-8.0, abs=1e-5)
    # an orthonormal basis: every pair at squared distance 2 -> -4
    assert uniformity(torch.eye(6)) == pytest.approx(-4.0, abs=1e-5)
    # fewer than two items: undefined
    assert math.isnan(uniformity(torch.ones(1, 3)))
    # spread points are more uniform (lower) than clustered ones
    g = torch.Generator().manual_seed(2)
    spread = torch.randn(64, 8, generator=g)
    clustered = torch.ones(64, 8) + 0.05 * torch.randn(64, 8, generator=g)
    assert uniformity(spread) < uniformity(clustered) < 0.0


def test_effective_rank_rank_one_is_one():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(12, 1, generator=g) @ torch.randn(1, 7, generator=g)
    assert effective_rank(x) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("n", [1, 3, 16])
def test_effective_rank_identity_is_n(n):
    assert effective_rank(torch.eye(n)) == pytest.approx(float(n), rel=1e-10)
    # equal singular values, any scale and rotation: still n
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=torch.Generator().manual_seed(n), dtype=torch.float64))
    assert effective_rank(5.0 * q) == pytest.approx(float(n), rel=1e-8)


def test_effective_rank_two_unequal_directions():
    # singular values 3 and 1: p = (3/4, 1/4), erank = exp(H(p))
    x = torch.diag(torch.tensor([3.0, 1.0]))
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert effective_rank(x) == pytest.approx(math.exp(h), rel=1e-10)


def test_effective_rank_zero_matrix():
    assert effective_rank(torch.zeros(5, 3)) == 0.0


def test_report():
    h = torch.eye(4, 6)
    r = report(h, h, -h)
    assert r["alignment"] == pytest.approx(4.0, abs=1e-5)
    assert r["uniformity"] == pytest.approx(-4.0, abs=1e-5)
    assert r["effective_rank"] == pytest.approx(4.0, rel=1e-8)
    assert r["dim"] == 6
