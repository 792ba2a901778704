"""Graph readers: the TU archive's text format, edge lists, saved PyG data, named and generated graphs.

Graph-level data (one item per graph, granularity "graph"): the TU format
(MUTAG and Cuneiform ship in GraKeL's test data) and saved lists of PyG
``Data``.  Node-level data (one item per node, ids ``(graph_id, node_id)``,
granularity "node"): edge lists, networkx's classic graphs, a generated
stochastic block model, and a saved single PyG ``Data`` with per-node labels.

A fixed train/test split, where the source has one, becomes ``Samples.split``
and ``meta["source_split"] = True`` (the evaluators then honour it, see
:mod:`.evaluate`): a TU ``NAME_graph_split.txt`` (one ``train``/``test`` per
graph), a ``split`` attribute of each saved PyG ``Data``, a ``test_mask`` of a
node-level PyG ``Data``, a ``split`` node attribute of a networkx graph, a
``split`` column of an edge list's node table.

Handling of awkward input, the same in every reader: self-loops are removed
(``data_options.self_loops = "keep"`` keeps them), duplicate edges are merged
(the first keeps its weight and features), graphs without edges are kept
(their nodes see only themselves), edges naming nodes that do not exist and
feature tables of unequal width are a DataError.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch

from contrastkit.core import (
    TEST, TRAIN, ConfigError, DataError, Reader, Samples, array_fingerprint, file_fingerprint, package_path,
)

from .batch import NodeRef, make_graph

NODE_ID_COLUMNS = ["graph_id", "node_id"]


# --------------------------------------------------------------------------- shared helpers


def _self_loops(options: dict) -> str:
    v = options.get("self_loops", "remove")
    if v not in ("remove", "keep"):
        raise ConfigError(f"data_options.self_loops must be \"remove\" or \"keep\", got {v!r}.")
    return v


def clean_edges(src: np.ndarray, dst: np.ndarray, num_nodes: int, self_loops: str = "remove") -> np.ndarray:
    """Indices of the edges to keep: first occurrence of each (src, dst), self-loops dropped unless kept."""
    keep = np.ones(len(src), dtype=bool) if self_loops == "keep" else src != dst
    key = src.astype(np.int64) * max(1, num_nodes) + dst.astype(np.int64)
    idx = np.flatnonzero(keep)
    _, first = np.unique(key[idx], return_index=True)
    return np.sort(idx[first])


def one_hot_columns(values: np.ndarray) -> np.ndarray:
    """One-hot encoding of every column of an integer matrix (n × c), columns concatenated (TU convention)."""
    values = values.reshape(len(values), -1)
    parts = []
    for j in range(values.shape[1]):
        cats, codes = np.unique(values[:, j], return_inverse=True)
        parts.append(np.eye(len(cats), dtype=np.float32)[codes.reshape(-1)])
    return np.concatenate(parts, axis=1) if parts else np.zeros((len(values), 0), np.float32)


def check_split(values: list, where: str) -> list[str]:
    """The split values as "train"/"test" strings (case and spaces ignored), or a DataError naming ``where``."""
    out = []
    for i, v in enumerate(values):
        word = str(v.decode() if isinstance(v, bytes) else v).strip().lower()
        if word not in (TRAIN, TEST):
            raise DataError(f"{where}: entry {i + 1} is {v!r}; a split must be \"train\" or \"test\".")
        out.append(word)
    return out


def node_samples(graphs: list, graph_ids: list, node_ids: list[list], labels: list[list] | None, source: str,
                 fingerprint: str, split: list[list] | None = None) -> Samples:
    """Node-level Samples: one NodeRef per node, ids (graph_id, node_id)."""
    ids, items, labs, spl = [], [], [], []
    for gi, (g, gid) in enumerate(zip(graphs, graph_ids)):
        for ni, nid in enumerate(node_ids[gi]):
            ids.append((gid, nid))
            items.append(NodeRef(g, ni))
            labs.append(None if labels is None else labels[gi][ni])
            if split is not None:
                spl.append(split[gi][ni])
    meta = {"granularity": "node", "id_columns": list(NODE_ID_COLUMNS)}
    if split is not None:
        meta["source_split"] = True
    return Samples(ids=ids, items=items, labels=labs if labels is not None else None,
                   split=spl if split is not None else None, meta=meta, source=source, fingerprint=fingerprint)


# --------------------------------------------------------------------------- TU archive


def _grakel_data(name: str) -> Path | None:
    """GraKeL's copy of a TU data set (its test data), found without importing grakel."""
    folder = package_path("grakel", "tests", "data", name)
    return folder if folder is not None and (folder / f"{name}_A.txt").is_file() else None


TU_NAMED = {
    "MUTAG": "188 mutagenic aromatic compounds, 2 classes (TU archive, from GraKeL's test data)",
    "Cuneiform": "267 cuneiform signs, 30 classes, node and edge attributes (TU archive, from GraKeL's test data)",
}


def _read_table(path: Path, dtype, required: bool = True) -> np.ndarray | None:
    if not path.is_file():
        if required:
            raise DataError(f"{path}: missing; a TU data set needs it.")
        return None
    text = path.read_text()
    if not text.strip():
        raise DataError(f"{path}: the file is empty.")
    rows = [line for line in text.splitlines() if line.strip()]
    try:
        arr = np.array([[dtype(v) for v in line.replace(",", " ").split()] for line in rows], dtype=object)
    except ValueError:
        bad = next(i for i, line in enumerate(rows) if not _parses(line, dtype))
        raise DataError(f"{path}: line {bad + 1} ({rows[bad][:40]!r}) is not comma-separated "
                        f"{'integers' if dtype is int else 'numbers'}.") from None
    widths = {len(r) for r in arr} if arr.dtype == object and arr.ndim == 1 else {arr.shape[1] if arr.ndim == 2 else 1}
    if len(widths) != 1:
        raise DataError(f"{path}: the lines have different numbers of values ({sorted(widths)}).")
    return np.array(arr.tolist(), dtype=np.int64 if dtype is int else np.float32).reshape(len(rows), -1)


def _parses(line: str, dtype) -> bool:
    try:
        [dtype(v) for v in line.replace(",", " ").split()]
        return True
    except ValueError:
        return False


def read_tu(folder: Path, name: str, options: dict) -> Samples:
    """Read a TU data set (``NAME_A.txt``, ``NAME_graph_indicator.txt``, …) as graph-level Samples."""
    self_loops = _self_loops(options)
    f = lambda suffix: folder / f"{name}_{suffix}.txt"  # noqa: E731
    edges = _read_table(f("A"), int)
    gi = _read_table(f("graph_indicator"), int)
    if edges.shape[1] != 2:
        raise DataError(f"{f('A')}: each line must hold two node numbers 'i, j', found {edges.shape[1]} value(s).")
    gi = gi[:, 0]
    n = len(gi)
    if gi.min() < 1:
        raise DataError(f"{f('graph_indicator')}: graph numbers start at 1, found {gi.min()}.")
    if np.any(np.diff(gi) < 0):
        raise DataError(f"{f('graph_indicator')}: the nodes of each graph must be listed together, graphs in order.")
    bad = np.flatnonzero((edges < 1) | (edges > n))
    if len(bad):
        row = bad[0] // 2
        raise DataError(f"{f('A')}: line {row + 1} names node {edges.flat[bad[0]]}, but the graph indicator lists "
                        f"nodes 1…{n}.")
    src, dst = edges[:, 0] - 1, edges[:, 1] - 1
    cross = np.flatnonzero(gi[src] != gi[dst])
    if len(cross):
        r = cross[0]
        raise DataError(f"{f('A')}: line {r + 1} joins node {src[r] + 1} of graph {gi[src[r]]} with node "
                        f"{dst[r] + 1} of graph {gi[dst[r]]}; edges must stay inside one graph.")
    graph_numbers = np.unique(gi)
    labels = _read_table(f("graph_labels"), int, required=False)
    if labels is not None and len(labels) != graph_numbers.max():
        raise DataError(f"{f('graph_labels')}: {len(labels)} labels for {graph_numbers.max()} graphs.")

    feats = []
    node_labels = _read_table(f("node_labels"), int, required=False)
    node_attr = _read_table(f("node_attributes"), float, required=False)
    for path, table in ((f("node_attributes"), node_attr), (f("node_labels"), node_labels)):
        if table is not None and len(table) != n:
            raise DataError(f"{path}: {len(table)} lines for {n} nodes in the graph indicator.")
    if node_attr is not None:
        feats.append(node_attr.astype(np.float32))
    if node_labels is not None:
        feats.append(one_hot_columns(node_labels))
    x = np.concatenate(feats, axis=1) if feats else np.ones((n, 1), np.float32)
    if not np.isfinite(x).all():
        raise DataError(f"{folder}: node attributes hold NaN or infinite values.")
    efeats = []
    edge_labels = _read_table(f("edge_labels"), int, required=False)
    edge_attr = _read_table(f("edge_attributes"), float, required=False)
    for path, table in ((f("edge_attributes"), edge_attr), (f("edge_labels"), edge_labels)):
        if table is not None and len(table) != len(edges):
            raise DataError(f"{path}: {len(table)} lines for {len(edges)} edges in {f('A').name}.")
    if edge_attr is not None:
        efeats.append(edge_attr.astype(np.float32))
    if edge_labels is not None:
        efeats.append(one_hot_columns(edge_labels))
    ea = np.concatenate(efeats, axis=1) if efeats else None

    keep = clean_edges(src, dst, n, self_loops)
    src, dst = src[keep], dst[keep]
    ea = ea[keep] if ea is not None else None
    starts = np.searchsorted(gi, graph_numbers, side="left")
    ends = np.searchsorted(gi, graph_numbers, side="right")
    eg = gi[src]
    order = np.argsort(eg, kind="stable")
    src, dst, eg = src[order], dst[order], eg[order]
    ea = ea[order] if ea is not None else None
    e_starts = np.searchsorted(eg, graph_numbers, side="left")
    e_ends = np.searchsorted(eg, graph_numbers, side="right")
    split = None
    if f("graph_split").is_file():
        words = [line.strip() for line in f("graph_split").read_text().splitlines() if line.strip()]
        if len(words) != graph_numbers.max():
            raise DataError(f"{f('graph_split')}: {len(words)} lines for {graph_numbers.max()} graphs; one "
                            "\"train\" or \"test\" per graph.")
        split = check_split(words, str(f("graph_split")))
    graphs, ids, labs = [], [], []
    for g, s, e, es, ee in zip(graph_numbers, starts, ends, e_starts, e_ends):
        ei = np.stack([src[es:ee] - s, dst[es:ee] - s])
        graphs.append(make_graph(torch.from_numpy(x[s:e]), torch.from_numpy(ei),
                                 edge_attr=None if ea is None else torch.from_numpy(ea[es:ee])))
        ids.append(int(g))
        labs.append(None if labels is None else int(labels[g - 1, 0]))
    meta = {"granularity": "graph", "tu_name": name}
    if split is not None:
        meta["source_split"] = True
    return Samples(ids=ids, items=graphs, labels=labs if labels is not None else None,
                   split=None if split is None else [split[g - 1] for g in ids], meta=meta, source=str(folder),
                   fingerprint=file_fingerprint(*sorted(folder.glob(f"{name}_*.txt"))))


class TUReader(Reader):
    """The TU archive's raw text format (Morris et al., "TUDataset", 2020): a folder with NAME_A.txt etc."""

    name = "tu"
    suffixes = ("_a.txt",)
    reads_folders = True
    description = "TU archive folders (NAME_A.txt, NAME_graph_indicator.txt, …); MUTAG and Cuneiform built in"

    def datasets(self) -> dict[str, str]:
        return {k: v for k, v in TU_NAMED.items() if _grakel_data(k) is not None}

    def accepts(self, path: Path) -> bool:
        if path.is_dir():
            return any(path.glob("*_A.txt"))
        return path.name.endswith("_A.txt")

    def read(self, source: str, options: dict[str, Any]) -> Samples:
        if source in TU_NAMED:
            folder = _grakel_data(source)
            if folder is None:
                raise DataError(f"{source}: GraKeL's test data is not installed; pip install grakel==0.1.11.")
            return dataclasses.replace(read_tu(folder, source, options), source=source)  # named: its name
        path = Path(source)
        if path.is_file():
            return read_tu(path.parent, path.name[: -len("_A.txt")], options)
        found = sorted(path.glob("*_A.txt"))
        if len(found) != 1:
            raise DataError(f"{path}: expected one NAME_A.txt in the folder, found {len(found)}.")
        return read_tu(path, found[0].name[: -len("_A.txt")], options)


# --------------------------------------------------------------------------- networkx graphs


NX_NAMED = {
    "karate_club": "Zachary's karate club, 34 nodes, labels: the club each member joined (networkx)",
    "les_miserables": "Les Misérables co-appearances, 77 nodes, weighted, no labels (networkx)",
    "florentine_families": "Florentine families' marriages, 15 nodes, no labels (networkx)",
    "davis_southern_women": "Davis' southern women and events, 32 nodes, labels: woman or event (networkx)",
}


def _nx_graph(name: str):
    import networkx as nx

    g = {"karate_club": nx.karate_club_graph, "les_miserables": nx.les_miserables_graph,
         "florentine_families": nx.florentine_families_graph,
         "davis_southern_women": nx.davis_southern_women_graph}[name]()
    label_key = {"karate_club": "club", "davis_southern_women": "bipartite"}.get(name)
    return g, label_key


def from_networkx(g, graph_id: Any, label_key: str | None, source: str, options: dict) -> Samples:
    """A networkx graph as node-level Samples; features one-hot node identity (the graphs have none)."""
    nodes = list(g.nodes())
    index = {v: i for i, v in enumerate(nodes)}
    pairs = [(index[u], index[v], float(d.get("weight", 1.0))) for u, v, d in g.edges(data=True)]
    arr = np.array(pairs, dtype=np.float64).reshape(-1, 3)
    src, dst, w = arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64), arr[:, 2]
    if not g.is_directed():
        src, dst, w = np.concatenate([src, dst]), np.concatenate([dst, src]), np.concatenate([w, w])
    keep = clean_edges(src, dst, len(nodes), _self_loops(options))
    x = np.eye(len(nodes), dtype=np.float32)
    graph = make_graph(torch.from_numpy(x), torch.from_numpy(np.stack([src[keep], dst[keep]])),
                       edge_weight=torch.from_numpy(w[keep].astype(np.float32)))
    labels = [[g.nodes[v].get(label_key) for v in nodes]] if label_key else None
    fp = array_fingerprint([np.stack([src[keep], dst[keep]]), w[keep]])
    split = None
    if any("split" in g.nodes[v] for v in nodes):
        missing = next((v for v in nodes if "split" not in g.nodes[v]), None)
        if missing is not None:
            raise DataError(f"{source}: node {missing!r} has no 'split' attribute, others do; give every node one.")
        split = [check_split([g.nodes[v]["split"] for v in nodes], f"{source} (node attribute 'split')")]
    return node_samples([graph], [graph_id], [nodes], labels, source, fp, split)


class NetworkxReader(Reader):
    """Classic small graphs that networkx builds from code (node-level, identity features)."""

    name = "networkx"
    description = "networkx's classic graphs: karate_club, les_miserables, florentine_families, davis_southern_women"

    def datasets(self) -> dict[str, str]:
        return dict(NX_NAMED)

    def read(self, source: str, options: dict[str, Any]) -> Samples:
        if source not in NX_NAMED:
            raise DataError(f"{source}: not a networkx graph this reader knows ({', '.join(NX_NAMED)}).")
        g, key = _nx_graph(source)
        return from_networkx(g, source, key, f"networkx:{source}", options)


# --------------------------------------------------------------------------- stochastic block model


SBM_DEFAULTS = {"sbm_nodes": 2000, "sbm_blocks": 5, "sbm_degree": 10, "sbm_features": 32, "sbm_homophily": 0.6,
                "sbm_signal": 0.3, "sbm_seed": 0}


def generate_sbm(nodes: int = 2000, blocks: int = 5, degree: float = 10, features: int = 32, homophily: float = 0.6,
                 signal: float = 0.3, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A stochastic block model with class-dependent features, deterministic in ``seed``.

    ``nodes`` nodes in ``blocks`` equal blocks (the labels); ``degree · nodes / 2``
    undirected edges, a fraction ``homophily`` inside a block, the rest between
    blocks; features ``signal · μ_block + N(0, I)`` with ``μ_block ~ N(0, I)``.
    Returns (x float32 n × F, edge_index int64 2 × E with both directions, labels).
    """
    rng = np.random.default_rng(seed)
    y = np.arange(nodes) % blocks
    rng.shuffle(y)
    members = [np.flatnonzero(y == b) for b in range(blocks)]
    m = int(round(degree * nodes / 2))
    inside = rng.random(m) < homophily
    u = rng.integers(0, nodes, m)
    v = rng.integers(0, nodes, m)
    same = np.array([members[b][rng.integers(0, len(members[b]))] for b in y[u[inside]]], dtype=np.int64) \
        if inside.any() else np.zeros(0, np.int64)
    v[inside] = same
    src, dst = np.concatenate([u, v]), np.concatenate([v, u])
    keep = clean_edges(src, dst, nodes)
    mu = rng.standard_normal((blocks, features))
    x = (signal * mu[y] + rng.standard_normal((nodes, features))).astype(np.float32)
    return x, np.stack([src[keep], dst[keep]]).astype(np.int64), y


class SBMReader(Reader):
    """A generated stochastic block model (node-level); size and difficulty via data_options ``sbm_*``."""

    name = "sbm"
    description = "generated stochastic block model with class-dependent node features (node classification)"

    def datasets(self) -> dict[str, str]:
        return {"sbm": "stochastic block model: 2,000 nodes, 5 blocks (labels), degree 10, 32 noisy class-dependent "
                       "features (generated; data_options sbm_nodes, sbm_blocks, sbm_degree, sbm_features, "
                       "sbm_homophily, sbm_signal, sbm_seed)"}

    def read(self, source: str, options: dict[str, Any]) -> Samples:
        o = {**SBM_DEFAULTS, **{k: v for k, v in options.items() if k in SBM_DEFAULTS}}
        try:
            x, ei, y = generate_sbm(int(o["sbm_nodes"]), int(o["sbm_blocks"]), float(o["sbm_degree"]),
                                    int(o["sbm_features"]), float(o["sbm_homophily"]), float(o["sbm_signal"]),
                                    int(o["sbm_seed"]))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"data_options sbm_*: {exc}.") from None
        graph = make_graph(torch.from_numpy(x), torch.from_numpy(ei))
        fp = array_fingerprint([x, ei])
        return node_samples([graph], ["sbm"], [list(range(len(y)))], [[int(c) for c in y]], "sbm", fp)


# --------------------------------------------------------------------------- edge lists


def _read_frame(path: Path):
    import polars as pl

    try:
        if path.name.lower().endswith(".parquet"):
            return pl.read_parquet(path)
        return pl.read_csv(path, infer_schema_length=10000)
    except Exception as exc:  # noqa: BLE001 - polars raises many kinds
        raise DataError(f"{path}: not a readable table ({type(exc).__name__}: {str(exc).splitlines()[0]}).") from None


def _numeric(frame, path: Path, exclude: set[str]) -> list[str]:
    import polars as pl

    cols = []
    for name, dtype in frame.schema.items():
        if name in exclude:
            continue
        if not dtype.is_numeric() and dtype != pl.Boolean:
            raise DataError(f"{path}: column {name!r} is {dtype}, not numeric; feature columns must be numbers.")
        cols.append(name)
    return cols


def _node_table_for(path: Path, options: dict) -> Path | None:
    if options.get("nodes"):
        p = Path(options["nodes"]).expanduser()
        if not p.is_file():
            raise DataError(f"data_options.nodes: {p}: no such file.")
        return p
    stem = path.name[: -len(".parquet")] if path.name.lower().endswith(".parquet") else path.stem
    for cand in (f"{stem}.nodes.parquet", f"{stem}.nodes.csv"):
        if (path.parent / cand).is_file():
            return path.parent / cand
    return None


def read_edge_list(path: Path, options: dict) -> Samples:
    """Node-level Samples from an edge table (source, target[, weight][, graph][, feature columns…]).

    A node table (``data_options.nodes``, or ``<stem>.nodes.parquet|csv`` next to
    the edges) gives ``node`` ids, an optional ``graph`` column, an optional
    ``label`` and numeric feature columns; without one, nodes are the ids in the
    edges and their features are one-hot identities (up to 1,000 nodes) or
    one-hot degrees (capped at 32).  Edges are undirected unless
    ``data_options.directed = true`` (each row then stands for one direction).
    """
    import polars as pl

    edges = _read_frame(path)
    if edges.height == 0:
        raise DataError(f"{path}: the edge table has no rows.")
    for col in ("source", "target"):
        if col not in edges.columns:
            raise DataError(f"{path}: no '{col}' column; an edge list needs 'source' and 'target' columns "
                            f"(found {', '.join(edges.columns)}).")
    has_graph = "graph" in edges.columns
    directed = bool(options.get("directed", False))
    self_loops = _self_loops(options)
    efeat_cols = _numeric(edges, path, {"source", "target", "weight", "graph"})
    node_path = _node_table_for(path, options)
    nodes = _read_frame(node_path) if node_path is not None else None
    if nodes is not None:
        id_col = "node" if "node" in nodes.columns else ("id" if "id" in nodes.columns else None)
        if id_col is None:
            raise DataError(f"{node_path}: no 'node' column naming the nodes (found {', '.join(nodes.columns)}).")
        if has_graph != ("graph" in nodes.columns):
            raise DataError(f"{node_path}: the edges {'have' if has_graph else 'have no'} 'graph' column, the nodes "
                            f"{'do not' if has_graph else 'do'}; both tables must say which graph a node is in.")
        feat_cols = _numeric(nodes, node_path, {id_col, "graph", "label", "split"})
    gcol = lambda f: f["graph"].to_list() if has_graph else ["graph"] * f.height  # noqa: E731
    e_graph, e_src, e_dst = gcol(edges), edges["source"].to_list(), edges["target"].to_list()
    weights = edges["weight"].cast(pl.Float32).to_numpy() if "weight" in edges.columns else None
    efeat = edges.select(efeat_cols).cast(pl.Float32).to_numpy() if efeat_cols else None
    if nodes is not None:
        n_graph, n_ids = gcol(nodes), nodes[id_col].to_list()
        keys = list(zip(n_graph, n_ids))
        if len(set(keys)) != len(keys):
            dup = next(k for i, k in enumerate(keys) if k in set(keys[:i]))
            raise DataError(f"{node_path}: node {dup[1]!r} is listed more than once.")
        nfeat = nodes.select(feat_cols).cast(pl.Float32).to_numpy() if feat_cols else None
        nlab = nodes["label"].to_list() if "label" in nodes.columns else None
        nsplit = (check_split(nodes["split"].to_list(), f"{node_path} (column 'split')")
                  if "split" in nodes.columns else None)
    else:
        seen: dict = {}
        for g, s, t in zip(e_graph, e_src, e_dst):
            seen.setdefault((g, s), None)
            seen.setdefault((g, t), None)
        keys, nfeat, nlab, nsplit = list(seen), None, None, None
    if nfeat is not None and not np.isfinite(nfeat).all():
        raise DataError(f"{node_path}: the node features hold NaN or infinite values.")
    graph_order = list(dict.fromkeys(k[0] for k in keys))
    per_graph: dict = {g: [] for g in graph_order}
    for i, k in enumerate(keys):
        per_graph[k[0]].append(i)
    index = {}
    for g, rows in per_graph.items():
        for j, r in enumerate(rows):
            index[keys[r]] = j
    e_by_graph: dict = {g: [] for g in graph_order}
    for row, (g, s, t) in enumerate(zip(e_graph, e_src, e_dst)):
        for end in (s, t):
            if (g, end) not in index:
                where = f" of graph {g!r}" if has_graph else ""
                raise DataError(f"{path}: row {row + 1} names node {end!r}{where}, which is not in the node table "
                                f"{node_path}.")
        if g not in e_by_graph:
            raise DataError(f"{path}: row {row + 1} names graph {g!r}, which has no nodes in {node_path}.")
        e_by_graph[g].append(row)
    graphs, node_ids, labels, splits = [], [], [], []
    for g in graph_order:
        rows = np.array(e_by_graph[g], dtype=np.int64)
        n = len(per_graph[g])
        src = np.array([index[(g, e_src[r])] for r in rows], dtype=np.int64)
        dst = np.array([index[(g, e_dst[r])] for r in rows], dtype=np.int64)
        w = weights[rows] if weights is not None else np.ones(len(rows), np.float32)
        ef = efeat[rows] if efeat is not None else None
        if not directed:
            src, dst = np.concatenate([src, dst]), np.concatenate([dst, src])
            w = np.concatenate([w, w])
            ef = np.concatenate([ef, ef]) if ef is not None else None
        keep = clean_edges(src, dst, n, self_loops)
        if nfeat is not None:
            x = nfeat[per_graph[g]]
        else:
            x = _structural_features(src[keep], n)
        graphs.append(make_graph(torch.from_numpy(np.ascontiguousarray(x)),
                                 torch.from_numpy(np.stack([src[keep], dst[keep]])),
                                 edge_weight=torch.from_numpy(w[keep].astype(np.float32)),
                                 edge_attr=None if ef is None else torch.from_numpy(ef[keep])))
        node_ids.append([keys[r][1] for r in per_graph[g]])
        labels.append([nlab[r] for r in per_graph[g]] if nlab is not None else None)
        splits.append([nsplit[r] for r in per_graph[g]] if nsplit is not None else None)
    fp = file_fingerprint(path, *([node_path] if node_path else []))
    samples = node_samples(graphs, graph_order, node_ids, labels if nlab is not None else None, str(path), fp,
                           splits if nsplit is not None else None)
    if nfeat is None and nodes is None:
        samples.meta["features"] = "identity" if len(keys) <= 1000 else "degree"
    return samples


def _structural_features(src: np.ndarray, n: int) -> np.ndarray:
    if n <= 1000:
        return np.eye(n, dtype=np.float32)
    deg = np.minimum(np.bincount(src, minlength=n), 32)
    return np.eye(33, dtype=np.float32)[deg]


class EdgeListReader(Reader):
    """Edge lists as parquet or CSV (source, target, optional weight, graph and feature columns; node table)."""

    name = "edgelist"
    suffixes = (".parquet", ".csv")
    description = "edge lists (source, target[, weight, graph, features]) with an optional node table"

    def read(self, source: str, options: dict[str, Any]) -> Samples:
        return read_edge_list(Path(source), options)


# --------------------------------------------------------------------------- saved PyG data


def _to_item(data: Any, where: str):
    x = getattr(data, "x", None)
    ei = getattr(data, "edge_index", None)
    if ei is None:
        raise DataError(f"{where}: a graph has no edge_index.")
    n = int(data.num_nodes) if data.num_nodes is not None else 0
    if n == 0:
        raise DataError(f"{where}: a graph has no nodes.")
    if ei.numel() and (int(ei.min()) < 0 or int(ei.max()) >= n):
        raise DataError(f"{where}: an edge names node {int(ei.max())}, but the graph has {n} nodes.")
    if x is None:
        x = torch.ones(n, 1)
    x = x.float().reshape(n, -1)
    ea = getattr(data, "edge_attr", None)
    w = getattr(data, "edge_weight", None)
    return x, ei.long(), w, (None if ea is None else ea.float().reshape(ei.shape[1], -1))


def _clean_item(x, ei, w, ea, self_loops: str):
    keep = clean_edges(ei[0].numpy(), ei[1].numpy(), x.shape[0], self_loops)
    k = torch.from_numpy(keep)
    return make_graph(x, ei[:, k], None if w is None else w[k], None if ea is None else ea[k])


def _pyg_safe_globals() -> list:
    """torch-geometric's plain data containers: the only classes weights-only loading may rebuild."""
    from torch_geometric.data import Batch, Data
    from torch_geometric.data.data import DataEdgeAttr, DataTensorAttr
    from torch_geometric.data.storage import EdgeStorage, GlobalStorage, NodeStorage

    return [Data, Batch, DataEdgeAttr, DataTensorAttr, GlobalStorage, NodeStorage, EdgeStorage]


def load_pyg(path: Path) -> list:
    """The Data objects saved at ``path``: a torch.save'd Data or list of Data, or an InMemoryDataset file.

    Loaded with ``weights_only=True`` (torch-geometric registers its data
    classes as safe): no arbitrary code is unpickled.
    """
    import torch_geometric  # noqa: F401 - registers its classes with torch's safe globals
    from torch_geometric.data import Data, InMemoryDataset

    try:
        with torch.serialization.safe_globals(_pyg_safe_globals()):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: not loadable as plain tensors and torch-geometric data (weights-only loading "
                        f"refuses other pickled objects): {first[:200]}.") from None
    if isinstance(obj, Data):
        return [obj]
    if isinstance(obj, (list, tuple)) and obj and all(isinstance(d, Data) for d in obj):
        return list(obj)
    if isinstance(obj, tuple) and len(obj) in (2, 3) and isinstance(obj[0], dict):  # InMemoryDataset.save format
        ds = InMemoryDataset.__new__(InMemoryDataset)
        ds.transform = None
        ds._indices = None
        ds._data_list = None
        data_cls = obj[2] if len(obj) == 3 else Data
        ds.slices = obj[1]
        ds.data = data_cls.from_dict(obj[0])
        return [ds.get(i) for i in range(ds.len())]
    raise DataError(f"{path}: holds a {type(obj).__name__}; expected a torch_geometric Data, a list of them, or an "
                    "InMemoryDataset's processed file.")


def read_pyg(path: Path, options: dict) -> Samples:
    self_loops = _self_loops(options)
    if path.is_dir():
        files = sorted((path / "processed").glob("*.pt")) or sorted(path.glob("*.pt"))
        files = [f for f in files if f.name not in ("pre_filter.pt", "pre_transform.pt")]
        if not files:
            raise DataError(f"{path}: no .pt file in the folder or its processed/ folder.")
        data_list = load_pyg(files[0])
        fp = file_fingerprint(files[0])
    else:
        data_list = load_pyg(path)
        fp = file_fingerprint(path)
    first = data_list[0]
    y = getattr(first, "y", None)
    if len(data_list) == 1 and y is not None and y.numel() == first.num_nodes and first.num_nodes > 1:
        x, ei, w, ea = _to_item(first, str(path))
        graph = _clean_item(x, ei, w, ea, self_loops)
        labels = [[v.item() for v in y.reshape(-1)]]
        split = None
        tm = getattr(first, "test_mask", None)
        if tm is not None and tm.numel() == first.num_nodes:
            split = [["test" if bool(t) else "train" for t in tm.reshape(-1)]]
        return node_samples([graph], ["graph"], [list(range(first.num_nodes))], labels, str(path), fp, split)
    graphs, labels, split = [], [], []
    for i, d in enumerate(data_list):
        x, ei, w, ea = _to_item(d, f"{path} (graph {i})")
        graphs.append(_clean_item(x, ei, w, ea, self_loops))
        yy = getattr(d, "y", None)
        labels.append(yy.reshape(-1)[0].item() if yy is not None and yy.numel() >= 1 else None)
        split.append(getattr(d, "split", None))
    has = any(lbl is not None for lbl in labels)
    meta: dict[str, Any] = {"granularity": "graph"}
    if any(v is not None for v in split):
        if any(v is None for v in split):
            raise DataError(f"{path}: graph {split.index(None)} has no 'split' attribute, others do; give every "
                            "graph one (\"train\" or \"test\").")
        split = check_split(split, f"{path} (the graphs' 'split' attribute)")
        meta["source_split"] = True
    return Samples(ids=list(range(len(graphs))), items=graphs, labels=labels if has else None,
                   split=split if meta.get("source_split") else None, meta=meta, source=str(path), fingerprint=fp)


class PyGReader(Reader):
    """torch.save'd torch_geometric data (a Data, a list of Data, an InMemoryDataset folder), weights-only."""

    name = "pyg"
    suffixes = (".pt", ".pth")
    reads_folders = True
    description = "saved torch_geometric Data lists and InMemoryDataset folders (weights-only loading)"

    def accepts(self, path: Path) -> bool:
        if path.is_dir():
            return any((path / "processed").glob("*.pt")) or any(path.glob("*.pt"))
        return path.name.lower().endswith(self.suffixes)

    def read(self, source: str, options: dict[str, Any]) -> Samples:
        return read_pyg(Path(source), options)


READERS: list[Reader] = [TUReader(), NetworkxReader(), SBMReader(), EdgeListReader(), PyGReader()]
