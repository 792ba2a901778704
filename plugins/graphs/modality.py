"""The graphs modality: recipes, checks, node-level embedding and the views picture.

Items are graphs (graph-level data) or node references (node-level data);
see :mod:`.batch` for the batch they make.  The default recipe is
GraphCL's unsupervised TU setting (You et al., NeurIPS 2020) on MUTAG;
:data:`RECIPES` holds the GRACE and InfoGraph recipes for ``--config``.
"""

from __future__ import annotations

import copy
from typing import Any, Sequence

import numpy as np
import torch

from contrastkit.core import ConfigError, DataError, Modality, Samples

from .batch import NodeRef, batch_size, collate, is_node_batch
from .options import GraphsOptions

#: GraphCL, unsupervised TU protocol: GIN (hidden 32, 5 layers, sum pooling, layer-wise concatenation),
#: two views each drawn by one random augmentation per graph, NT-Xent, Adam lr 0.01, batch 128,
#: pretrained on every graph without labels, evaluated by an SVM under 10-fold CV.
#: On MUTAG this recipe does not beat the same GIN with random weights (whose untouched BatchNorm is the
#: identity); two dozen variants (epochs, depth, width, views, τ, losses, heads, no BatchNorm, local-global) did not
#: either, beyond the seed spread, so it stays as published — docs/graphs.md has the table.
DEFAULTS: dict[str, Any] = {
    "epochs": 20,
    "batch_size": 128,
    "lr": 0.01,
    "weight_decay": 0.0,
    "pretrain_on": "all",
    "encoder": {"name": "gin", "hidden": 32, "layers": 5, "pooling": "sum"},
    "head": {"name": "mlp", "out_dim": 160, "layers": 2},
    # GraphCL's code uses τ = 0.2; 0.5 gave 88.2 against 86.4 on MUTAG (2 pretraining seeds each) — chosen on
    # MUTAG, the default data set (docs/graphs.md).
    "loss": {"name": "infonce", "temperature": 0.5},
    "augmentations": [
        {"name": "random_choice", "transforms": [
            {"name": "node_drop", "ratio": 0.2},
            {"name": "subgraph", "walk_length": 4, "root_ratio": 0.2},
            {"name": "edge_perturb", "ratio": 0.2},
            {"name": "feature_mask", "ratio": 0.2},
        ]},
    ],
    "data_options": {"self_loops": "remove", "normalize": "auto"},
    "evaluate": {"evaluators": ["graph_svm"], "seeds": [0, 1, 2, 3, 4]},
}

#: Other published recipes, as config overrides (``contrastkit pretrain graphs --config grace.toml``;
#: docs/graphs.md shows them as TOML).
RECIPES: dict[str, dict[str, Any]] = {
    "graphcl": DEFAULTS,
    # GRACE (Zhu et al. 2020): node level, 2-layer GCN, edge removing + feature masking on both views,
    # NT-Xent over 2N nodes (intra- and inter-view negatives), the whole graph in one step.
    "grace": {
        "epochs": 200,
        "batch_size": 100_000,
        "lr": 0.001,
        "weight_decay": 1e-5,
        "pretrain_on": "all",
        "encoder": {"name": "gcn", "out_dim": 128, "layers": 2, "activation": "prelu"},
        "head": {"name": "mlp", "out_dim": 128, "layers": 2},
        "loss": {"name": "infonce", "temperature": 0.5},
        "augmentations": [{"name": "edge_remove", "ratio": 0.3}, {"name": "feature_mask", "ratio": 0.3}],
        "evaluate": {"evaluators": ["node_logreg"], "seeds": [0, 1, 2, 3, 4]},
    },
    # InfoGraph-style node-to-graph contrast (Sun et al. 2020): a graph's summary against one of its own
    # nodes (positive) and the other graphs' nodes (negatives), InfoNCE estimator.
    "infograph": {
        "epochs": 20,
        "batch_size": 128,
        "lr": 0.001,
        "pretrain_on": "all",
        "encoder": {"name": "gin", "hidden": 32, "layers": 4, "pooling": "sum"},
        "head": {"name": "mlp", "out_dim": 128, "layers": 2},
        "loss": {"name": "infonce", "temperature": 0.2},
        "joint_view": {"name": "local_global"},
        "augmentations": [],
        "evaluate": {"evaluators": ["graph_svm"], "seeds": [0, 1, 2, 3, 4]},
    },
}


def _graphs(items: Sequence[Any]) -> list:
    """The distinct graphs of the items, in order of first appearance."""
    if items and isinstance(items[0], NodeRef):
        seen: dict[int, Any] = {}
        for r in items:
            seen.setdefault(id(r.graph), r.graph)
        return list(seen.values())
    return list(items)


NORMALIZE = ("auto", "standard", "none")


def _fit_scaler(x: torch.Tensor, normalize: str) -> dict:
    """Per-feature mean and std over the training nodes; with "auto" only non-binary features are scaled."""
    x = x.double()
    mean, std = x.mean(0), x.std(0, unbiased=False)
    std = torch.where(std > 1e-12, std, torch.ones_like(std))
    if normalize == "auto":
        binary = ((x == 0) | (x == 1)).all(0)
        mean = torch.where(binary, torch.zeros_like(mean), mean)
        std = torch.where(binary, torch.ones_like(std), std)
        if binary.all():
            return {}
    return {"mean": [float(v) for v in mean], "std": [float(v) for v in std]}


def _scaled(items: list, graphs: list, mean: torch.Tensor, std: torch.Tensor) -> list:
    """New items whose graphs have standardised node features (the input graphs are left as they are)."""
    new = {}
    for g in graphs:
        c = copy.copy(g)
        c.x = ((g.x.double() - mean) / std).float()
        new[id(g)] = c
    if items and isinstance(items[0], NodeRef):
        return [NodeRef(new[id(r.graph)], r.node) for r in items]
    return [new[id(g)] for g in items]


def prepare(samples: Samples, state: dict | None, options: dict) -> tuple[Samples, dict]:
    """Check feature widths (equal across graphs, and as in training when ``state`` is given), standardise.

    ``normalize``: "auto" (default) standardises the node features that are not
    0/1-valued (continuous attributes; one-hot labels stay as they are),
    "standard" every feature, "none" nothing; mean and std are fitted on the
    training graphs' nodes and saved in the state.
    """
    src = samples.source or "data"
    items = list(samples.items)
    if not items:
        raise DataError(f"{src}: no graphs.")
    graphs = _graphs(items)
    width = graphs[0].x.shape[1]
    edge_dim = graphs[0].edge_attr.shape[1] if "edge_attr" in graphs[0] else 0
    for i, g in enumerate(graphs):
        if g.x.shape[1] != width:
            raise DataError(f"{src}: graph {i} has {g.x.shape[1]} node feature(s), the first graph {width}; all "
                            "graphs need the same features.")
        e = g.edge_attr.shape[1] if "edge_attr" in g else 0
        if e != edge_dim:
            raise DataError(f"{src}: graph {i} has {e} edge feature(s), the first graph {edge_dim}; all graphs need "
                            "the same edge features.")
        if not torch.isfinite(g.x).all():
            raise DataError(f"{src}: graph {i} has NaN or infinite node features.")
    granularity = "node" if isinstance(items[0], NodeRef) else "graph"
    normalize = options.get("normalize", "auto")
    if normalize not in NORMALIZE:
        raise ConfigError(f"data_options.normalize must be one of {', '.join(NORMALIZE)}, got {normalize!r}.")
    if state is None:
        state = {"in_channels": int(width), "edge_dim": int(edge_dim), "granularity": granularity}
        if normalize != "none":
            state.update(_fit_scaler(torch.cat([g.x for g in graphs]), normalize))
    else:
        if state.get("in_channels") != width:
            raise DataError(f"{src}: the nodes have {width} feature(s), but the run was trained on "
                            f"{state.get('in_channels')}.")
    if state.get("mean") is not None:
        items = _scaled(items, graphs, torch.tensor(state["mean"]), torch.tensor(state["std"]))
    meta = {**samples.meta, "in_channels": int(width), "edge_dim": int(edge_dim), "granularity": granularity}
    if granularity == "node":
        meta["id_columns"] = ["graph_id", "node_id"]
    out = Samples(ids=samples.ids, items=items, labels=samples.labels, split=samples.split, meta=meta,
                  source=samples.source, fingerprint=samples.fingerprint)
    return out, state


def _specs(augs: Sequence[Any]):
    for spec in augs or []:
        spec = {"name": spec} if isinstance(spec, str) else spec
        if isinstance(spec, dict):
            yield spec
            if spec.get("name") == "random_choice":
                yield from _specs(spec.get("transforms") or [])


def check(samples: Samples, config: dict) -> None:
    """Refuse recipes the data cannot serve, before training starts.

    Node-to-graph views on node-level items, and diffusion views of graphs
    larger than the view's ``max_nodes``.
    """
    src = samples.source or "data"
    jv = config.get("joint_view") or {}
    if jv.get("name") == "local_global" and samples.meta.get("granularity") == "node":
        raise DataError(f"{src}: joint_view local_global contrasts nodes with their own graph and needs graph-level "
                        "items; this data is node-level (use the grace recipe).")
    for spec in _specs(config.get("augmentations")):
        if spec.get("name") == "diffusion":
            limit = int(spec.get("max_nodes", 2000))
            largest = max(g.num_nodes for g in _graphs(list(samples.items)))
            if largest > limit:
                raise DataError(f"{src}: a graph has {largest} nodes, more than the diffusion view's max_nodes="
                                f"{limit} (it is computed densely); raise max_nodes or drop the diffusion view.")


@torch.no_grad()
def embed(encoder: torch.nn.Module, items: Sequence[Any], device: torch.device, batch_size: int = 256) -> np.ndarray:
    """N × D representations; nodes are embedded with their whole (un-augmented) graph."""
    items = list(items)
    out = np.zeros((len(items), encoder.out_dim), dtype=np.float32)
    if not items:
        return out
    if not isinstance(items[0], NodeRef):
        for s in range(0, len(items), batch_size):
            out[s:s + batch_size] = encoder(collate(items[s:s + batch_size]).to(device)).float().cpu().numpy()
        return out
    where: dict[int, tuple[Any, list[int]]] = {}
    for i, r in enumerate(items):
        where.setdefault(id(r.graph), (r.graph, []))[1].append(i)
    groups = list(where.values())
    budget = max(1, batch_size)
    chunk: list = []
    nodes_in_chunk = 0

    def flush(chunk):
        refs = [NodeRef(g, j) for g, _ in chunk for j in range(g.num_nodes)]
        h = encoder(collate(refs).to(device)).float().cpu().numpy()
        start = 0
        for g, idx in chunk:
            rows = np.array([items[i].node for i in idx])
            out[idx] = h[start + rows]
            start += g.num_nodes

    for g, idx in groups:
        if chunk and nodes_in_chunk + g.num_nodes > budget * 64:
            flush(chunk)
            chunk, nodes_in_chunk = [], 0
        chunk.append((g, idx))
        nodes_in_chunk += g.num_nodes
    if chunk:
        flush(chunk)
    return out


def _panel_graph(batch: Any, graph: int, focus: int | None, max_nodes: int = 60):
    """A networkx graph of one graph of the batch (or of the neighbourhood of node ``focus``)."""
    import networkx as nx

    lo, hi = int(batch.ptr[graph]), int(batch.ptr[graph + 1])
    src, dst = batch.edge_index
    sel = (src >= lo) & (src < hi)
    edges = torch.stack([src[sel], dst[sel]]).t().tolist()
    g = nx.Graph()
    g.add_nodes_from(range(lo, hi))
    g.add_edges_from(edges)
    g.remove_edges_from(nx.selfloop_edges(g))
    if focus is not None and focus in g:
        nodes = list(nx.single_source_shortest_path_length(g, focus, cutoff=2))[:max_nodes]
        g = g.subgraph(nodes).copy()
    elif g.number_of_nodes() > max_nodes:
        g = g.subgraph(list(g.nodes)[:max_nodes]).copy()
    return g


def plot_views(batch: Any, views: list[Any], path, title: str = "", ids=None) -> None:
    """Rows: items (graphs, or the 2-hop neighbourhood of a node); columns: the original, then each view.

    Nodes are coloured by their strongest feature, so masked features show as a colour change.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import networkx as nx

    from contrastkit.core import atomic_savefig

    node_level = is_node_batch(batch)
    n = min(batch_size(batch), 6)
    cols = [batch] + list(views)
    fig, axes = plt.subplots(n, len(cols), figsize=(2.8 * len(cols), 2.6 * n), squeeze=False)
    for i in range(n):
        for j, b in enumerate(cols):
            ax = axes[i, j]
            ax.set_axis_off()
            if node_level or (is_node_batch(b) and j > 0):
                focus = int(b.target[i]) if is_node_batch(b) else None
                gi = int(b.batch[focus]) if focus is not None else i
            else:
                focus, gi = None, i
            g = _panel_graph(b, gi, focus if node_level else None)
            if g.number_of_nodes() == 0:
                continue
            pos = nx.spring_layout(g, seed=0)
            x = b.x[list(g.nodes)]
            colour = (x.argmax(1).float() + (x.abs().sum(1) > 0).float()).tolist() if x.shape[1] else None
            nx.draw_networkx_edges(g, pos, ax=ax, width=1.0, alpha=0.5)
            nx.draw_networkx_nodes(g, pos, ax=ax, node_size=30, node_color=colour, cmap="tab10")
            if focus is not None and focus in g:
                nx.draw_networkx_nodes(g, pos, nodelist=[focus], ax=ax, node_size=80, node_color="red")
            if i == 0:
                ax.set_title("original" if j == 0 else f"view {j}", fontsize=9)
            if j == 0 and ids is not None and i < len(ids):
                ax.text(0.0, 1.0, str(ids[i]), transform=ax.transAxes, fontsize=7, va="top")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    atomic_savefig(fig, path)
    plt.close(fig)


def graphs_modality() -> Modality:
    return Modality(
        name="graphs",
        collate=collate,
        default_data="MUTAG",
        options=GraphsOptions,
        defaults=copy.deepcopy(DEFAULTS),
        prepare=prepare,
        check=check,
        batch_size=batch_size,
        plot_views=plot_views,
        embed=embed,
        description="Graphs and their nodes (TU archive, edge lists, saved torch_geometric data, networkx graphs)",
    )
