"""Graph-building operations on batched point clouds, in plain torch.

torch-geometric's ``knn``, ``knn_graph`` and ``fps`` need pyg-lib or
torch-cluster, which do not install here; these few operations are written on
dense ``B × N × C`` tensors instead (``cdist`` + ``topk``, iterative farthest
point sampling), so they run wherever torch runs, GPU included, and feed
PyG's edge-index layers through :func:`to_edge_index`.

Nothing here names a device: every new tensor is made on the input's device.
"""

from __future__ import annotations

import torch

__all__ = ["knn", "knn_loop", "farthest_point_sampling", "to_edge_index", "gather_points", "resample_kept"]


def knn(query: torch.Tensor, points: torch.Tensor | None = None, k: int = 16) -> torch.Tensor:
    """Indices (B × M × k) of the k nearest ``points`` (B × N × C) of each ``query`` (B × M × C).

    With ``points=None`` the query set is searched itself, and each point is its
    own nearest neighbour (distance 0), as in DGCNN.  Euclidean distance;
    ``k`` is capped at N.  One batched ``cdist`` + ``topk``: memory B × M × N.
    """
    points = query if points is None else points
    k = min(int(k), points.shape[1])
    dist = torch.cdist(query, points)  # B × M × N
    return dist.topk(k, dim=-1, largest=False, sorted=True).indices


def knn_loop(query: torch.Tensor, points: torch.Tensor | None = None, k: int = 16) -> torch.Tensor:
    """The same as :func:`knn`, one sample at a time (the naive baseline of bench/bench_points.py)."""
    points = query if points is None else points
    k = min(int(k), points.shape[1])
    out = []
    for b in range(query.shape[0]):
        q, p = query[b], points[b]
        d = ((q[:, None, :] - p[None, :, :]) ** 2).sum(-1)
        out.append(d.topk(k, dim=-1, largest=False, sorted=True).indices)
    return torch.stack(out)


def farthest_point_sampling(xyz: torch.Tensor, m: int, generator: torch.Generator | None = None,
                            start: torch.Tensor | None = None) -> torch.Tensor:
    """Indices (B × m) of m points of each cloud chosen by iterative farthest-point sampling.

    Qi et al., "PointNet++", NeurIPS 2017: start at a point (random from
    ``generator``, or index 0 without one, or ``start``), then repeatedly add the
    point farthest from those chosen.  Vectorised over the batch; m steps.
    """
    b, n, _ = xyz.shape
    m = min(int(m), n)
    idx = torch.empty(b, m, dtype=torch.long, device=xyz.device)
    if start is not None:
        current = start.to(device=xyz.device, dtype=torch.long)
    elif generator is not None:
        current = torch.randint(0, n, (b,), generator=generator, device=xyz.device)
    else:
        current = torch.zeros(b, dtype=torch.long, device=xyz.device)
    nearest = torch.full((b, n), float("inf"), dtype=xyz.dtype, device=xyz.device)
    rows = torch.arange(b, device=xyz.device)
    for i in range(m):
        idx[:, i] = current
        centre = xyz[rows, current]  # B × 3
        nearest = torch.minimum(nearest, ((xyz - centre[:, None, :]) ** 2).sum(-1))
        current = nearest.argmax(dim=1)
    return idx


def gather_points(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``x[b, index[b, ...]]`` for x of shape B × N × C and integer ``index`` of shape B × ... ."""
    b = x.shape[0]
    flat = index.reshape(b, -1)
    out = torch.gather(x, 1, flat[..., None].expand(-1, -1, x.shape[-1]))
    return out.reshape(*index.shape, x.shape[-1])


def to_edge_index(neighbours: torch.Tensor) -> torch.Tensor:
    """PyG's ``edge_index`` (2 × B·N·k, source = neighbour j, target = centre i) from B × N × k indices.

    Nodes of sample b are numbered ``b·N + i``, as in a PyG batch of B graphs.
    """
    b, n, k = neighbours.shape
    offset = (torch.arange(b, device=neighbours.device) * n).view(b, 1, 1)
    source = (neighbours + offset).reshape(-1)
    target = (torch.arange(n, device=neighbours.device).view(1, n, 1).expand(b, n, k) + offset).reshape(-1)
    return torch.stack([source, target])


def resample_kept(x: torch.Tensor, score: torch.Tensor, n_keep: torch.Tensor,
                  generator: torch.Generator | None) -> torch.Tensor:
    """Keep, in each sample, the ``n_keep[b]`` points of lowest ``score``; fill the rest with copies of kept ones.

    ``x``: B × N × C; ``score``: B × N; ``n_keep``: B integers in [1, N].  Kept
    points stay where they were; every other slot receives a kept point drawn
    uniformly (from ``generator``), so N is unchanged and the cloud holds only
    kept points.  Used by point dropout, crops and patch masking.
    """
    b, n, _ = x.shape
    order = score.argsort(dim=1)  # kept points first
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(n, device=x.device).expand(b, n))
    n_keep = n_keep.to(device=x.device, dtype=torch.long).clamp(1, n)
    dropped = rank >= n_keep[:, None]
    pick = (torch.rand(b, n, generator=generator, device=x.device) * n_keep[:, None]).long()
    pick = torch.minimum(pick, n_keep[:, None] - 1)
    replacement = torch.gather(order, 1, pick)
    index = torch.where(dropped, replacement, torch.arange(n, device=x.device).expand(b, n))
    return gather_points(x, index)
