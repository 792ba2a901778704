"""The Weisfeiler-Lehman subtree feature map: the graphs plugin's non-learned baseline.

Shervashidze, Schweitzer, van Leeuwen, Mehlhorn & Borgwardt, "Weisfeiler-Lehman
Graph Kernels", JMLR 12 (2011).  Every node v starts with a discrete label
l₀(v); iteration t = 1…h relabels it by its own label and the sorted multiset
of its neighbours' labels,

    l_t(v) = f_t( l_{t-1}(v), sort{ l_{t-1}(u) : u ∈ N(v) } ),

where f_t is an injective compression (a dictionary from signatures to new
label ids).  The feature vector of a graph G is the concatenation over
t = 0…h of the histograms of l_t over its nodes,

    φ(G) = [ c_0(G, ·) | c_1(G, ·) | … | c_h(G, ·) ],   c_t(G, σ) = #{v ∈ G : l_t(v) = σ},

so ⟨φ(G), φ(G')⟩ is the WL subtree kernel with h iterations.  h = 5 (0…5,
six histograms) is the WL baseline of the InfoGraph and GIN papers.

Fitted on the training graphs: the initial discretisation and every f_t are
dictionaries built from the training graphs' nodes; a node whose signature was
never seen at fit time gets iteration t's "unseen" label (one extra column per
iteration), and so do its descendants, whose signatures contain it.

Initial labels l₀, from the node features ``x`` (n × F):

* a column with at most ``max_categories`` distinct values on the training
  nodes is categorical (its exact values; one-hot node labels, TU label
  columns);
* any other column is continuous: ``bins`` quantile bins with edges at the
  training nodes' quantiles k/bins;
* l₀(v) is the tuple of v's column codes (for one-hot ``x`` this is the
  argmax); a value or tuple not seen at fit time is unseen;
* when this gives every training node the same label (no features, or a
  constant one as the readers give featureless graphs), l₀(v) is v's degree.

Neighbours are in-neighbours along ``edge_index`` (source → target, the
direction of PyG's message passing; both directions for undirected graphs).
Edge labels are not used (the WL subtree kernel labels nodes only).

Node-level items (a node of a graph) get the indicator of their own label at
each iteration, the same columns: the node's rooted subtree pattern.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

import numpy as np

from contrastkit.core import ConfigError, DataError, EvalContext, FeatureBaseline, Samples

from .batch import NodeRef

UNSEEN = -1
NORMALIZE = ("none", "l1", "l2")
#: Refuse node-level feature matrices larger than this many entries (float32: 2 GB).
MAX_NODE_ENTRIES = 500_000_000


def _graphs_of(items: Sequence[Any]) -> tuple[list, np.ndarray | None]:
    """(distinct graphs, per item: (index of its graph, node) or None for graph-level items)."""
    items = list(items)
    if items and isinstance(items[0], NodeRef):
        index: dict[int, int] = {}
        graphs, where = [], np.zeros((len(items), 2), dtype=np.int64)
        for i, r in enumerate(items):
            if id(r.graph) not in index:
                index[id(r.graph)] = len(graphs)
                graphs.append(r.graph)
            where[i] = (index[id(r.graph)], r.node)
        return graphs, where
    return items, None


class _Batch:
    """Graphs as one disjoint union: node features, in-neighbour edges, the graph of each node."""

    def __init__(self, graphs: Sequence[Any]) -> None:
        sizes = np.array([int(g.num_nodes) for g in graphs], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(sizes)])
        self.n = int(self.offsets[-1])
        self.graph = np.repeat(np.arange(len(graphs)), sizes)
        width = {int(g.x.shape[1]) for g in graphs} if graphs else {0}
        if len(width) > 1:
            raise DataError(f"wl_subtree: the graphs have node features of different widths ({sorted(width)}).")
        self.x = (np.concatenate([g.x.detach().cpu().numpy().reshape(int(g.num_nodes), -1) for g in graphs])
                  if graphs else np.zeros((0, 0))).astype(np.float64)
        src, dst = [], []
        for g, off in zip(graphs, self.offsets[:-1]):
            ei = g.edge_index.detach().cpu().numpy()
            src.append(ei[0] + off)
            dst.append(ei[1] + off)
        self.src = np.concatenate(src).astype(np.int64) if src else np.zeros(0, np.int64)
        self.dst = np.concatenate(dst).astype(np.int64) if dst else np.zeros(0, np.int64)
        self.degree = np.bincount(self.dst, minlength=self.n)


def _lookup(rows: np.ndarray, table: dict[tuple, int]) -> np.ndarray:
    """Label id of each row (an integer tuple) in ``table``; UNSEEN where absent.  Loops over distinct rows only."""
    if len(rows) == 0:
        return np.zeros(0, dtype=np.int64)
    uniq, inv = np.unique(rows, axis=0, return_inverse=True)
    ids = np.array([table.get(tuple(int(v) for v in r), UNSEEN) for r in uniq], dtype=np.int64)
    return ids[inv.reshape(-1)]


class WLSubtree(FeatureBaseline):
    """Weisfeiler-Lehman subtree features (Shervashidze et al., JMLR 2011): label histograms of h relabellings.

    ``iterations`` h (≥ 0; default 5: the histograms of iterations 0…5 concatenated, as in the InfoGraph and
    GIN papers' WL baseline).  ``normalize``: "none" (default: raw counts, whose inner product is the WL
    subtree kernel), "l1" (each iteration's histogram divided by the graph's node count) or "l2" (the whole
    vector to unit length: the normalised kernel).  ``bins`` and ``max_categories`` discretise continuous
    node features (module docstring).  ``folds``, ``inner_folds``, ``grid`` and ``kernels`` go to the
    ``graph_svm`` protocol that :meth:`run` applies to the features (node-level data: ``node_logreg``).
    """

    name = "wl_subtree"
    protocol = "wl-subtree"
    version = "1"
    requires = "labels"
    description = ("Weisfeiler-Lehman subtree features (h = 5, fitted on the training graphs) under the graph_svm "
                   "protocol (Shervashidze et al., JMLR 2011)")
    probes: tuple[str, ...] = ()

    def __init__(self, iterations: int = 5, normalize: str = "none", bins: int = 10, max_categories: int = 32,
                 folds: int = 10, inner_folds: int = 5, grid: Sequence[float] | None = None,
                 kernels: Sequence[str] = ("rbf",)) -> None:
        if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) or iterations < 0:
            raise ConfigError(f"evaluator 'wl_subtree': iterations must be an integer ≥ 0, got {iterations!r}.")
        if normalize not in NORMALIZE:
            raise ConfigError(f"evaluator 'wl_subtree': normalize must be one of {', '.join(NORMALIZE)}, got "
                              f"{normalize!r}.")
        if int(bins) < 2 or int(max_categories) < 1:
            raise ConfigError(f"evaluator 'wl_subtree': bins must be ≥ 2 and max_categories ≥ 1, got {bins}, "
                              f"{max_categories}.")
        self.iterations, self.normalize = int(iterations), normalize
        self.bins, self.max_categories = int(bins), int(max_categories)
        self.svm_options: dict[str, Any] = {"folds": folds, "inner_folds": inner_folds, "kernels": tuple(kernels)}
        if grid is not None:
            self.svm_options["grid"] = tuple(grid)
        self.columns: list[dict[str, Any]] | None = None  # per column: {"values": ...} or {"edges": ...}
        self.initial: dict[tuple, int] | None = None  # l₀ tuple -> id (None: degree mode, see ``degrees``)
        self.degrees: dict[tuple, int] | None = None
        self.tables: list[dict[tuple, int]] = []  # f_1 … f_h: signature (own, *sorted neighbours) -> id

    def __repr__(self) -> str:
        return f"WLSubtree(iterations={self.iterations}, normalize={self.normalize!r}, bins={self.bins})"

    # ------------------------------------------------------------------ labels

    def _codes(self, x: np.ndarray) -> np.ndarray:
        """n × F integer codes of the node features (UNSEEN for a categorical value not seen at fit)."""
        codes = np.full(x.shape, UNSEEN, dtype=np.int64)
        for j, col in enumerate(self.columns or []):
            v = x[:, j]
            if "values" in col:
                vals = col["values"]
                pos = np.clip(np.searchsorted(vals, v), 0, max(len(vals) - 1, 0))
                hit = vals[pos] == v if len(vals) else np.zeros(len(v), bool)
                codes[:, j] = np.where(hit, pos, UNSEEN)
            else:
                codes[:, j] = np.searchsorted(col["edges"], v, side="right")
        return codes

    def _initial_labels(self, b: _Batch) -> np.ndarray:
        if self.initial is None:
            return _lookup(b.degree[:, None], self.degrees or {})
        codes = self._codes(b.x)
        labels = _lookup(codes, self.initial)
        labels[(codes == UNSEEN).any(1)] = UNSEEN
        return labels

    def _relabel(self, b: _Batch, labels: np.ndarray, table: dict[tuple, int], grow: bool) -> np.ndarray:
        """One WL iteration: l_t from l_{t-1}; ``grow`` adds new signatures to ``table`` (fitting)."""
        order = np.lexsort((labels[b.src], b.dst))  # by target node, then by the neighbour's label
        neigh = labels[b.src][order]
        start = np.concatenate([[0], np.cumsum(b.degree)[:-1]]).astype(np.int64)
        new = np.full(b.n, UNSEEN, dtype=np.int64)
        for d in np.unique(b.degree):  # one matrix of signatures per degree: exact and vectorised
            nodes = np.flatnonzero(b.degree == d)
            sig = labels[nodes][:, None]
            if d:
                sig = np.concatenate([sig, neigh[start[nodes][:, None] + np.arange(d)]], axis=1)
            seen = (sig != UNSEEN).all(1)
            if grow:
                for row in np.unique(sig[seen], axis=0):
                    table.setdefault(tuple(int(v) for v in row), len(table))
            ids = _lookup(sig, table)
            ids[~seen] = UNSEEN
            new[nodes] = ids
        return new

    def _all_labels(self, b: _Batch, grow: bool) -> list[np.ndarray]:
        labels = [self._initial_labels(b)]
        for t in range(self.iterations):
            if grow and len(self.tables) <= t:
                self.tables.append({})
            labels.append(self._relabel(b, labels[-1], self.tables[t], grow))
        return labels

    # ------------------------------------------------------------------ FeatureBaseline

    def fit(self, train: Samples, meta: dict[str, Any] | None = None) -> "WLSubtree":
        """Build the discretisation and the h label dictionaries from the training items' graphs (whole graphs,
        also for node-level items: WL labels depend on every neighbour)."""
        graphs, _ = _graphs_of(train.items)
        if not graphs:
            raise DataError(f"{train.source or 'the data'}: no training graphs to fit wl_subtree on.")
        b = _Batch(graphs)
        self.columns = []
        for j in range(b.x.shape[1]):
            vals = np.unique(b.x[:, j])
            if len(vals) <= self.max_categories:
                self.columns.append({"values": vals})
            else:
                q = np.quantile(b.x[:, j], np.arange(1, self.bins) / self.bins)
                self.columns.append({"edges": np.unique(q)})
        codes = self._codes(b.x)
        distinct = np.unique(codes, axis=0) if codes.shape[1] else np.zeros((1, 0), np.int64)
        if len(distinct) > 1:
            self.initial = {tuple(int(v) for v in r): i for i, r in enumerate(distinct)}
            self.degrees = None
        else:  # no informative features: the degree is the initial label
            self.initial = None
            self.degrees = {(int(d),): i for i, d in enumerate(np.unique(b.degree))}
        self.tables = []
        self._all_labels(b, grow=True)
        return self

    @property
    def sizes(self) -> list[int]:
        """Columns per iteration: the fitted labels, plus one "unseen" column (the last of each block)."""
        if self.columns is None:
            raise DataError("wl_subtree: features were asked for before fit(); fit it on the training items first.")
        first = len(self.initial) if self.initial is not None else len(self.degrees or {})
        return [first + 1] + [len(t) + 1 for t in self.tables]

    def features(self, samples: Samples) -> np.ndarray:
        """N × Σ_t (|f_t| + 1) label counts (graphs) or label indicators (nodes), float32."""
        sizes = self.sizes
        graphs, where = _graphs_of(samples.items)
        if not graphs:
            return np.zeros((0, sum(sizes)), np.float32)
        b = _Batch(graphs)
        labels = self._all_labels(b, grow=False)
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        if where is None:
            out = np.zeros((len(graphs), offsets[-1]), np.float32)
            for t, lab in enumerate(labels):
                col = np.where(lab == UNSEEN, sizes[t] - 1, lab)
                out[:, offsets[t]:offsets[t + 1]] = np.bincount(
                    b.graph * sizes[t] + col, minlength=len(graphs) * sizes[t]).reshape(len(graphs), sizes[t])
            if self.normalize == "l1":
                n = np.maximum(np.bincount(b.graph, minlength=len(graphs)), 1)[:, None]
                out /= n
        else:
            if len(where) * offsets[-1] > MAX_NODE_ENTRIES:
                raise DataError(f"wl_subtree: {len(where)} nodes × {offsets[-1]} WL labels is too large a node-level "
                                "feature matrix; lower iterations or bins.")
            out = np.zeros((len(where), offsets[-1]), np.float32)
            node = b.offsets[where[:, 0]] + where[:, 1]
            rows = np.arange(len(where))
            for t, lab in enumerate(labels):
                col = np.where(lab[node] == UNSEEN, sizes[t] - 1, lab[node])
                out[rows, offsets[t] + col] = 1.0
            if self.normalize == "l1":
                out /= len(labels)
        if self.normalize == "l2":
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def run(self, ctx: EvalContext) -> dict[str, float]:
        """The ``graph_svm`` protocol (``node_logreg`` for node-level data) on the WL features; metrics
        ``graph_svm.<metric>`` (``node_logreg.<metric>``)."""
        from .evaluators import GraphSVM, NodeLogReg

        node_level = bool(ctx.samples.items) and isinstance(ctx.samples.items[0], NodeRef)
        if node_level:
            probe_name = "node_logreg"
            probe: Any = NodeLogReg(**({"grid": self.svm_options["grid"]} if "grid" in self.svm_options else {}))
        else:
            probe_name, probe = "graph_svm", GraphSVM(**self.svm_options)
        embed = self.embedder(ctx.samples, {**ctx.meta, **ctx.samples.meta})
        feats_ctx = replace(ctx, embed=embed, options={**ctx.options, "raw_baseline": False}, _cache={})
        metrics = probe.run(feats_ctx)
        self.protocol = f"wl-subtree-h{self.iterations}+{probe.protocol}"
        return {f"{probe_name}.{k}": v for k, v in metrics.items()}
