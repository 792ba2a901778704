"""Graph views, vectorised over a batch of graphs (a PyG ``Batch``).

Every transform draws its random numbers from the generator it is given, on
the batch's device, for all graphs of the batch at once; ``p`` is the
probability that a graph is transformed at all.  Nodes listed in a node-level
batch's ``target`` are never removed (they are the items being embedded).

- :class:`NodeDrop` — GraphCL's node dropping (You et al., "Graph Contrastive
  Learning with Augmentations", NeurIPS 2020): ``floor(ratio·n)`` nodes of each
  graph are removed with all their edges.
- :class:`EdgeRemove`, :class:`EdgeAdd`, :class:`EdgePerturb` — GraphCL's edge
  perturbation; GRACE's edge removing (Zhu et al., "Deep Graph Contrastive
  Representation Learning", 2020).
- :class:`FeatureMask` — GRACE's feature masking: the same feature dimensions
  are zeroed on every node of a graph.
- :class:`FeatureDropout` — every feature entry zeroed independently.
- :class:`EdgeAttrMask` — dimensions of the edge features zeroed (PyGCL's
  edge-attribute masking).
- :class:`RandomWalkSubgraph` — GraphCL's subgraph view, grown by random walks.
- :class:`Diffusion` — MVGRL's personalised-PageRank / heat-kernel view
  (Hassani & Khasahmadi, "Contrastive Multi-View Representation Learning on
  Graphs", ICML 2020).
- :class:`RandomChoice` — one transform drawn per graph (GraphCL's "random"
  augmentation setting).
- :class:`LocalGlobal` — a joint view for node-to-graph contrast (InfoGraph,
  Sun et al., ICLR 2020): view 1 is the graph, the other views are one random
  node of it.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from contrastkit.core import Augmentation, ConfigError, JointAugmentation

from .batch import (add_edges, check_batch, edge_graph, graph_sizes, is_node_batch, rank_within, select_edges,
                       select_nodes, shallow_copy)


def _ratio(cls: str, name: str, value: float, upper: float = 1.0) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{cls}: {name} must be a number in [0, {upper:g}], got {value!r}.") from None
    if not 0.0 <= v <= upper:
        raise ConfigError(f"{cls}: {name} must lie in [0, {upper:g}], got {value!r}.")
    return v


class GraphAugmentation(Augmentation):
    """Base class: :meth:`transform` changes the graphs where ``mask`` (G,) is True."""

    def apply(self, batch: Any, generator: torch.Generator | None) -> Any:
        batch = check_batch(batch, type(self).__name__)
        mask = self.sample_mask(int(batch.num_graphs), generator, batch.x.device)
        return self.transform(batch, mask, generator)

    def transform(self, batch: Any, mask: torch.Tensor, generator: torch.Generator | None) -> Any:  # pragma: no cover
        raise NotImplementedError


def _protected(batch: Any) -> torch.Tensor:
    keep = torch.zeros(batch.num_nodes, dtype=torch.bool, device=batch.x.device)
    if is_node_batch(batch):
        keep[batch.target] = True
    return keep


class NodeDrop(GraphAugmentation):
    """Remove ``floor(ratio · n)`` random nodes of each graph, with every edge that touches them.

    At least one node of each graph stays, and target nodes of a node-level
    batch are never removed.
    """

    keeps_shape = False

    def __init__(self, ratio: float = 0.2, p: float = 1.0) -> None:
        super().__init__(p)
        self.ratio = _ratio("node_drop", "ratio", ratio)

    def transform(self, batch, mask, generator):
        dev = batch.x.device
        n_g = graph_sizes(batch)
        protected = _protected(batch)
        score = torch.rand(batch.num_nodes, generator=generator, device=dev) + protected.float()
        rank = rank_within(batch.batch, score, batch.ptr[:-1])
        n_prot = torch.bincount(batch.batch[protected], minlength=batch.num_graphs)
        n_drop = torch.floor(self.ratio * n_g.double()).long()
        n_drop = torch.minimum(n_drop, (n_g - torch.clamp(n_prot, min=1)).clamp(min=0))
        n_drop = torch.where(mask, n_drop, torch.zeros_like(n_drop))
        keep = rank >= n_drop[batch.batch]
        return select_nodes(batch, keep)


class EdgeRemove(GraphAugmentation):
    """Remove ``floor(ratio · E)`` random edges of each graph (E its edges; each direction counts as one)."""

    keeps_shape = False

    def __init__(self, ratio: float = 0.2, p: float = 1.0) -> None:
        super().__init__(p)
        self.ratio = _ratio("edge_remove", "ratio", ratio)

    def transform(self, batch, mask, generator):
        dev = batch.x.device
        eg = edge_graph(batch)
        e_g = torch.bincount(eg, minlength=batch.num_graphs)
        starts = torch.cumsum(e_g, 0) - e_g
        score = torch.rand(eg.numel(), generator=generator, device=dev)
        rank = rank_within(eg, score, starts)
        n_rm = torch.floor(self.ratio * e_g.double()).long()
        n_rm = torch.where(mask, n_rm, torch.zeros_like(n_rm))
        return select_edges(batch, rank >= n_rm[eg])


def _random_edges(batch: Any, count: torch.Tensor, generator) -> torch.Tensor:
    """``count[g]`` random edges inside each graph g, never a self-loop (2 × sum(count))."""
    dev = batch.x.device
    n_g = graph_sizes(batch)
    count = torch.where(n_g >= 2, count, torch.zeros_like(count))
    gid = torch.repeat_interleave(torch.arange(batch.num_graphs, device=dev), count)
    n = n_g[gid]
    u = torch.floor(torch.rand(gid.numel(), generator=generator, device=dev) * n).long()
    step = 1 + torch.floor(torch.rand(gid.numel(), generator=generator, device=dev) * (n - 1)).long()
    v = (u + step) % n
    start = batch.ptr[gid]
    return torch.stack([u + start, v + start])


class EdgeAdd(GraphAugmentation):
    """Add ``floor(ratio · E)`` random edges inside each graph (no self-loops; weight 1, zero edge features)."""

    keeps_shape = False

    def __init__(self, ratio: float = 0.2, p: float = 1.0) -> None:
        super().__init__(p)
        self.ratio = _ratio("edge_add", "ratio", ratio, upper=10.0)

    def transform(self, batch, mask, generator):
        e_g = torch.bincount(edge_graph(batch), minlength=batch.num_graphs)
        count = torch.where(mask, torch.floor(self.ratio * e_g.double()).long(), torch.zeros_like(e_g))
        return add_edges(batch, _random_edges(batch, count, generator))


class EdgePerturb(GraphAugmentation):
    """GraphCL's edge perturbation: remove ``floor(ratio · E)`` edges of a graph, then add as many random ones."""

    keeps_shape = False

    def __init__(self, ratio: float = 0.2, p: float = 1.0) -> None:
        super().__init__(p)
        self.ratio = _ratio("edge_perturb", "ratio", ratio)

    def transform(self, batch, mask, generator):
        e_g = torch.bincount(edge_graph(batch), minlength=batch.num_graphs)
        out = EdgeRemove(self.ratio).transform(batch, mask, generator)
        count = torch.where(mask, torch.floor(self.ratio * e_g.double()).long(), torch.zeros_like(e_g))
        return add_edges(out, _random_edges(out, count, generator))


class FeatureMask(GraphAugmentation):
    """Zero each feature dimension with probability ``ratio``; the same dimensions on every node of a graph."""

    def __init__(self, ratio: float = 0.2, p: float = 1.0) -> None:
        super().__init__(p)
        self.ratio = _ratio("feature_mask", "ratio", ratio)

    def transform(self, batch, mask, generator):
        dev = batch.x.device
        dims = torch.rand(batch.num_graphs, batch.x.shape[1], generator=generator, device=dev) < self.ratio
        dims &= mask[:, None]
        out = shallow_copy(batch)
        out.x = batch.x.masked_fill(dims[batch.batch], 0.0)
        return out


class FeatureDropout(GraphAugmentation):
    """Zero every feature entry independently with probability ``ratio`` (no 1/(1−ratio) rescaling)."""

    def __init__(self, ratio: float = 0.2, p: float = 1.0) -> None:
        super().__init__(p)
        self.ratio = _ratio("feature_dropout", "ratio", ratio)

    def transform(self, batch, mask, generator):
        drop = torch.rand(batch.x.shape, generator=generator, device=batch.x.device) < self.ratio
        drop &= mask[batch.batch][:, None]
        out = shallow_copy(batch)
        out.x = batch.x.masked_fill(drop, 0.0)
        return out


class EdgeAttrMask(GraphAugmentation):
    """Zero each edge-feature dimension with probability ``ratio``, the same dimensions on every edge of a graph.

    Graphs without edge features pass unchanged.
    """

    def __init__(self, ratio: float = 0.2, p: float = 1.0) -> None:
        super().__init__(p)
        self.ratio = _ratio("edge_attr_mask", "ratio", ratio)

    def transform(self, batch, mask, generator):
        out = shallow_copy(batch)
        if "edge_attr" not in batch or batch.edge_attr is None:
            return out
        ea = batch.edge_attr.reshape(batch.edge_attr.shape[0], -1)
        dims = torch.rand(batch.num_graphs, ea.shape[1], generator=generator, device=ea.device) < self.ratio
        dims &= mask[:, None]
        out.edge_attr = ea.masked_fill(dims[edge_graph(batch)], 0.0).reshape(batch.edge_attr.shape)
        return out


class RandomWalkSubgraph(GraphAugmentation):
    """GraphCL's subgraph view: keep the nodes visited by random walks, and the edges among them.

    Each graph starts ``max(1, round(root_ratio · n))`` walks at uniformly drawn
    nodes; each walk takes ``walk_length`` steps to uniformly drawn
    out-neighbours (a node without out-edges stays put).  The view is the
    subgraph induced by the visited nodes (plus any target nodes).
    """

    keeps_shape = False

    def __init__(self, walk_length: int = 4, root_ratio: float = 0.2, p: float = 1.0) -> None:
        super().__init__(p)
        if isinstance(walk_length, bool) or not isinstance(walk_length, int) or walk_length < 0:
            raise ConfigError(f"subgraph: walk_length must be an integer ≥ 0, got {walk_length!r}.")
        self.walk_length = walk_length
        self.root_ratio = _ratio("subgraph", "root_ratio", root_ratio)

    def transform(self, batch, mask, generator):
        dev = batch.x.device
        n, g = batch.num_nodes, batch.num_graphs
        n_g = graph_sizes(batch)
        roots_g = torch.clamp(torch.round(self.root_ratio * n_g.double()).long(), min=1)
        roots_g = torch.where(mask & (n_g > 0), roots_g, torch.zeros_like(roots_g))
        gid = torch.repeat_interleave(torch.arange(g, device=dev), roots_g)
        cur = batch.ptr[gid] + torch.floor(torch.rand(gid.numel(), generator=generator, device=dev)
                                           * n_g[gid]).long()
        keep = _protected(batch) | ~mask[batch.batch]
        keep[cur] = True
        src, dst = batch.edge_index
        if src.numel() and self.walk_length:
            order = torch.argsort(src)
            col = dst[order]
            deg = torch.bincount(src, minlength=n)
            rowptr = torch.cumsum(deg, 0) - deg
            for _ in range(self.walk_length):
                d = deg[cur]
                r = torch.floor(torch.rand(cur.numel(), generator=generator, device=dev) * d).long()
                idx = torch.clamp(rowptr[cur] + torch.minimum(r, (d - 1).clamp(min=0)), max=col.numel() - 1)
                cur = torch.where(d > 0, col[idx], cur)
                keep[cur] = True
        return select_nodes(batch, keep)


class Diffusion(GraphAugmentation):
    """MVGRL's diffusion view: the graph replaced by its sparsified diffusion matrix.

    With Â = D^-1/2 A D^-1/2 (A weighted by ``edge_weight``): personalised
    PageRank ``S = α (I − (1 − α) Â)^-1`` (``kind="ppr"``) or the heat kernel
    ``S = exp(t (Â − I))`` (``kind="heat"``).  Entries of S of at least
    ``eps`` (off the diagonal) become the view's edges, with S as their
    ``edge_weight``; edge features of diffusion edges are zero.  Computed
    densely per graph (batched), so graphs are limited to ``max_nodes`` nodes.
    The transform itself is deterministic; ``p`` < 1 makes the view random.
    """

    keeps_shape = False
    deterministic = True

    def __init__(self, kind: str = "ppr", alpha: float = 0.2, t: float = 5.0, eps: float = 1e-2,
                 max_nodes: int = 2000, p: float = 1.0) -> None:
        super().__init__(p)
        if kind not in ("ppr", "heat"):
            raise ConfigError(f"diffusion: kind must be \"ppr\" or \"heat\", got {kind!r}.")
        self.kind = kind
        self.alpha = _ratio("diffusion", "alpha", alpha)
        if not float(t) > 0:
            raise ConfigError(f"diffusion: t must be positive, got {t!r}.")
        self.t = float(t)
        self.eps = _ratio("diffusion", "eps", eps)
        self.max_nodes = int(max_nodes)

    def transform(self, batch, mask, generator):
        from torch_geometric.utils import to_dense_adj

        n_g = graph_sizes(batch)
        nmax = int(n_g.max()) if n_g.numel() else 0
        if nmax > self.max_nodes:
            raise ConfigError(f"diffusion: a graph of {nmax} nodes is over max_nodes={self.max_nodes}; the dense "
                              "diffusion matrix would be too large (raise max_nodes or use another view).")
        dev, dtype = batch.x.device, batch.x.dtype
        w = batch.edge_weight if "edge_weight" in batch else None
        a = to_dense_adj(batch.edge_index, batch.batch, w, max_num_nodes=nmax, batch_size=batch.num_graphs)
        a = a.to(torch.float64)
        deg = a.sum(-1)
        inv = torch.where(deg > 0, deg.clamp(min=1e-12).rsqrt(), torch.zeros_like(deg))
        a_hat = inv[:, :, None] * a * inv[:, None, :]
        eye = torch.eye(nmax, dtype=a.dtype, device=dev).expand_as(a)
        if self.kind == "ppr":
            s = self.alpha * torch.linalg.inv(eye - (1 - self.alpha) * a_hat)
        else:
            s = torch.linalg.matrix_exp(self.t * (a_hat - eye))
        valid = torch.arange(nmax, device=dev)[None, :] < n_g[:, None]
        keep = (s >= self.eps) & valid[:, :, None] & valid[:, None, :] & ~eye.bool() & mask[:, None, None]
        gi, ri, ci = keep.nonzero(as_tuple=True)
        start = batch.ptr[gi]
        new_ei = torch.stack([ri + start, ci + start])
        weights = s[gi, ri, ci].to(dtype)
        # graphs not transformed keep their own edges
        untouched = ~mask[batch.batch[batch.edge_index[0]]]
        out = select_edges(batch, untouched)
        return add_edges(out, new_ei, weights)


def _build(spec: Any) -> GraphAugmentation:
    from contrastkit.core import instantiate

    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, dict) or spec.get("name") not in AUGMENTATIONS:
        raise ConfigError(f"random_choice: each transform must name a graph augmentation "
                          f"({', '.join(sorted(k for k in AUGMENTATIONS if k != 'random_choice'))}), got {spec!r}.")
    cls = AUGMENTATIONS[spec["name"]]
    if not (isinstance(cls, type) and issubclass(cls, GraphAugmentation)) or cls is RandomChoice:
        raise ConfigError(f"random_choice: '{spec['name']}' cannot be one of its transforms.")
    return instantiate("augmentation", spec["name"], cls, {k: v for k, v in spec.items() if k != "name"})


class RandomChoice(GraphAugmentation):
    """One of ``transforms`` drawn uniformly for each graph (GraphCL's random augmentation setting).

    ``transforms`` is a list of augmentation tables (``{name = "node_drop",
    ratio = 0.2}``) or names.
    """

    keeps_shape = False

    def __init__(self, transforms: Sequence[Any] = ("node_drop", "subgraph", "edge_perturb", "feature_mask"),
                 p: float = 1.0) -> None:
        super().__init__(p)
        if not isinstance(transforms, (list, tuple)) or not transforms:
            raise ConfigError("random_choice: transforms must be a non-empty list of graph augmentations.")
        self.transforms = list(transforms)
        self._built = [_build(s) for s in self.transforms]

    def transform(self, batch, mask, generator):
        k = len(self._built)
        choice = torch.floor(torch.rand(batch.num_graphs, generator=generator, device=batch.x.device) * k).long()
        out = batch
        for i, t in enumerate(self._built):
            sub = mask & (choice == i) & t.sample_mask(batch.num_graphs, generator, batch.x.device)
            out = t.transform(out, sub, generator)
        return out


class LocalGlobal(JointAugmentation):
    """Node-to-graph views (InfoGraph): view 1 is the graph itself, views 2…K one random node of it each.

    Row b of every view comes from graph b, so a contrastive loss over the views
    contrasts each graph's summary with a node of its own graph (positive) and
    with nodes of the other graphs of the batch (negatives) — InfoGraph's
    local–global objective with the InfoNCE estimator.  The encoder embeds the
    node views as nodes (their ``target``), with the graph around them.
    """

    def views(self, batch: Any, k: int, generator: torch.Generator | None) -> list[Any]:
        batch = check_batch(batch, "local_global")
        if is_node_batch(batch):
            raise ConfigError("local_global contrasts nodes with their graph: it needs graph-level items, not nodes.")
        out = [shallow_copy(batch)]
        n_g = graph_sizes(batch)
        for _ in range(k - 1):
            v = shallow_copy(batch)
            u = torch.rand(batch.num_graphs, generator=generator, device=batch.x.device)
            v.target = batch.ptr[:-1] + torch.minimum(torch.floor(u * n_g).long(), (n_g - 1).clamp(min=0))
            out.append(v)
        return out


AUGMENTATIONS: dict[str, type] = {
    "node_drop": NodeDrop,
    "edge_remove": EdgeRemove,
    "edge_add": EdgeAdd,
    "edge_perturb": EdgePerturb,
    "feature_mask": FeatureMask,
    "feature_dropout": FeatureDropout,
    "edge_attr_mask": EdgeAttrMask,
    "subgraph": RandomWalkSubgraph,
    "diffusion": Diffusion,
    "random_choice": RandomChoice,
    "local_global": LocalGlobal,
}
