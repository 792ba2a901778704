"""Graphs as items and batches: one ``Data`` per graph, node references, PyG ``Batch`` objects.

An item is either

* a graph: a :class:`torch_geometric.data.Data` with ``x`` (n × F float32),
  ``edge_index`` (2 × E int64), ``edge_weight`` (E float32) and, where the data
  has edge features, ``edge_attr`` (E × F_e float32) — graph-level data; or
* a :class:`NodeRef` (a graph and a node index in it) — node-level data.

``collate`` turns graphs into a ``Batch`` of them and node references into a
``Batch`` of the graphs they belong to (each graph once, whole) with
``target``: the batch-wide index of each referenced node, in item order.  A
batch of graphs carries an empty ``target``.  The encoders return one row per
``target`` node, or one row per graph when ``target`` is empty, so the same
encoders and the same augmentations serve both granularities.
"""

from __future__ import annotations

import copy
from typing import Any, Sequence

import torch
from torch_geometric.data import Data

from contrastkit.core import DataError

#: Edge-aligned attributes that augmentations keep in step with ``edge_index``.
EDGE_KEYS = ("edge_weight", "edge_attr")


def _same_data(a: Any, b: Any) -> bool:
    if a is b:
        return True
    keys = sorted(a.keys())
    if keys != sorted(b.keys()):
        return False
    for k in keys:
        x, y = a[k], b[k]
        if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor):
            if x.shape != y.shape or x.dtype != y.dtype or not torch.equal(x, y):
                return False
        elif x != y:
            return False
    return True


class Graph(Data):
    """A graph item: a torch_geometric ``Data`` equal to another with the same attributes and values."""

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, Data) and _same_data(self, other)

    __hash__ = Data.__hash__


class NodeRef:
    """Node ``node`` of ``graph`` (a ``Data``): the item of node-level data."""

    __slots__ = ("graph", "node")

    def __init__(self, graph: Any, node: int) -> None:
        self.graph, self.node = graph, int(node)

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, NodeRef) and self.node == other.node and _same_data(self.graph, other.graph)

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"NodeRef(node={self.node}, graph_nodes={self.graph.num_nodes})"


def make_graph(x: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor | None = None,
               edge_attr: torch.Tensor | None = None):
    """A graph item in the plugin's form (float32 features, int64 edges, an edge weight per edge)."""
    x = torch.as_tensor(x, dtype=torch.float32)
    edge_index = torch.as_tensor(edge_index, dtype=torch.long).reshape(2, -1)
    e = edge_index.shape[1]
    w = torch.ones(e, dtype=torch.float32) if edge_weight is None else torch.as_tensor(edge_weight, dtype=torch.float32)
    data = Graph(x=x, edge_index=edge_index, edge_weight=w)
    if edge_attr is not None:
        data.edge_attr = torch.as_tensor(edge_attr, dtype=torch.float32).reshape(e, -1)
    return data


def collate(items: Sequence[Any]):
    """A ``Batch`` of graph items, or of the graphs of node references (with ``target``)."""
    from torch_geometric.data import Batch

    if len(items) == 0:
        raise DataError("cannot make a batch of no graphs.")
    if isinstance(items[0], NodeRef):
        graphs, where = [], {}
        for ref in items:
            if not isinstance(ref, NodeRef):
                raise DataError("a batch mixes nodes and whole graphs; items must be all of one kind.")
            key = id(ref.graph)
            if key not in where:
                where[key] = len(graphs)
                graphs.append(ref.graph)
        batch = Batch.from_data_list(graphs)
        offsets = batch.ptr[:-1]
        pos = torch.tensor([where[id(r.graph)] for r in items], dtype=torch.long)
        node = torch.tensor([r.node for r in items], dtype=torch.long)
        batch.target = offsets[pos] + node
        return batch
    if any(isinstance(i, NodeRef) for i in items):
        raise DataError("a batch mixes nodes and whole graphs; items must be all of one kind.")
    bad = next((i for i in items if not (hasattr(i, "x") and hasattr(i, "edge_index"))), None)
    if bad is not None:
        raise DataError(f"cannot batch {type(bad).__name__} items; expected torch_geometric Data graphs.")
    batch = Batch.from_data_list(list(items))
    batch.target = torch.zeros(0, dtype=torch.long)
    return batch


def check_batch(batch: Any, who: str):
    """``batch`` if it is a batch of graphs, else a DataError naming ``who``."""
    from torch_geometric.data import Batch

    if not isinstance(batch, Batch) or getattr(batch, "x", None) is None or getattr(batch, "edge_index", None) is None:
        raise DataError(f"{who} takes a torch_geometric Batch of graphs (x, edge_index), got {type(batch).__name__}.")
    if batch.x.dim() != 2:
        raise DataError(f"{who}: node features must be a (nodes × features) matrix, got shape {tuple(batch.x.shape)}.")
    return batch


def is_node_batch(batch: Any) -> bool:
    """True when the batch's items are nodes (a non-empty ``target``)."""
    return "target" in batch and batch.target is not None and batch.target.numel() > 0


def batch_size(batch: Any) -> int:
    """Items in a batch: target nodes for node-level batches, graphs otherwise."""
    return int(batch.target.numel()) if is_node_batch(batch) else int(batch.num_graphs)


def graph_sizes(batch: Any) -> torch.Tensor:
    """Nodes per graph of the batch (G,)."""
    return batch.ptr[1:] - batch.ptr[:-1]


def edge_graph(batch: Any) -> torch.Tensor:
    """The graph of every edge (E,)."""
    return batch.batch[batch.edge_index[0]]


def shallow_copy(batch: Any):
    """A new Batch sharing the input's tensors (replace them, never write into them)."""
    return copy.copy(batch)


def select_nodes(batch: Any, keep: torch.Tensor):
    """The batch restricted to the nodes where ``keep`` is True (their edges go with them)."""
    out = shallow_copy(batch)
    new_id = torch.cumsum(keep.long(), 0) - 1
    src, dst = batch.edge_index
    ekeep = keep[src] & keep[dst]
    out.x = batch.x[keep]
    out.batch = batch.batch[keep]
    out.edge_index = new_id[batch.edge_index[:, ekeep]]
    for key in EDGE_KEYS:
        if key in batch:
            out[key] = batch[key][ekeep]
    counts = torch.bincount(out.batch, minlength=batch.num_graphs)
    out.ptr = torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])
    if "target" in batch:
        out.target = new_id[batch.target]
    return out


def select_edges(batch: Any, keep: torch.Tensor):
    """The batch with only the edges where ``keep`` is True."""
    out = shallow_copy(batch)
    out.edge_index = batch.edge_index[:, keep]
    for key in EDGE_KEYS:
        if key in batch:
            out[key] = batch[key][keep]
    return out


def add_edges(batch: Any, new: torch.Tensor, weight: torch.Tensor | None = None):
    """The batch with the edges ``new`` (2 × M) appended (weight 1, zero edge features)."""
    out = shallow_copy(batch)
    m = new.shape[1]
    out.edge_index = torch.cat([batch.edge_index, new.to(batch.edge_index.dtype)], 1)
    if "edge_weight" in batch:
        w = torch.ones(m, dtype=batch.edge_weight.dtype, device=new.device) if weight is None else weight
        out.edge_weight = torch.cat([batch.edge_weight, w.to(batch.edge_weight.dtype)])
    if "edge_attr" in batch:
        ea = batch.edge_attr
        out.edge_attr = torch.cat([ea, ea.new_zeros((m,) + tuple(ea.shape[1:]))])
    return out


def rank_within(group: torch.Tensor, score: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
    """The rank (0 = smallest score) of every element within its group; ``starts[g]`` = first slot of group g."""
    order = torch.argsort(score)
    order = order[torch.argsort(group[order], stable=True)]
    pos = torch.arange(group.numel(), device=group.device) - starts[group[order]]
    rank = torch.empty_like(pos)
    rank[order] = pos
    return rank


def to_device(batch: Any, device: torch.device):
    """The batch on ``device`` (a copy when it has to move; the input is left as it is)."""
    if batch.x.device == device:
        return batch
    return shallow_copy(batch).to(device)
