"""Graph pretraining speed: augmentation + encoder + loss per epoch, graph level and node level.

Two settings, each in a fresh subprocess (so that its peak memory is its own):

* ``graph``: GraphCL's default recipe on MUTAG (188 graphs, batches of 128 and
  60): random-choice views, GIN (hidden 32, 5 layers), MLP head, contrastkit's
  InfoNCE (NT-Xent) — one epoch.
* ``node``: GRACE on a generated stochastic block model of 10,000 nodes,
  average degree 10 (100,000 directed edges), 128 features: edge removing +
  feature masking (0.3 each), a 2-layer GCN (hidden 256, out 128), MLP head,
  the loss over the 2 × 10,000 node embeddings — one step on the whole graph
  per epoch, as GRACE trains.  The loss is either contrastkit's InfoNCE
  (``core/losses/infonce.py``; with K = 2 it is GRACE's loss: intra- and
  inter-view negatives, 2N − 2 per anchor) or a plain ten-line torch version
  of GRACE's loss written below (``node-plain``), the baseline.

Reported per setting: the median over ``--repeats`` epochs (after one warm-up
epoch) of the epoch time and of its parts — views (augmentation), encoder +
head forward, loss forward, backward + optimiser step — the augmentation's
share, and the process's peak resident memory (VmHWM, glibc returning freed
blocks as in bench_infonce.py).  Single thread on the CPU unless ``--threads``.
Issue #7's target: a node-level epoch under 3.5 s with a peak under 5 GiB.

    python bench/bench_graphs.py [--repeats 5] [--nodes 10000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import child_env, emit_json, fmt, machine, pick_device, rss_peak_kib, rss_reset_peak, sync  # noqa: E402


def grace_plain_loss(z1: torch.Tensor, z2: torch.Tensor, tau: float = 0.5) -> torch.Tensor:
    """GRACE's loss as its paper writes it, in plain torch (the baseline)."""
    z1, z2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)

    def half(a, b):
        refl, between = torch.exp(a @ a.t() / tau), torch.exp(a @ b.t() / tau)
        return -torch.log(between.diag() / (refl.sum(1) + between.sum(1) - refl.diag()))

    return 0.5 * (half(z1, z2) + half(z2, z1)).mean()


def _setup(setting: str, nodes: int, device: torch.device):
    from contrastkit.core.heads import build_head
    from contrastkit.core.losses import InfoNCE
    from contrastkit.core.views import ViewGenerator
    from contrastkit.plugins.graphs.augmentations import EdgeRemove, FeatureMask, RandomChoice
    from contrastkit.plugins.graphs.batch import NodeRef, collate, make_graph
    from contrastkit.plugins.graphs.encoders import GCN, GIN
    from contrastkit.plugins.graphs.modality import DEFAULTS
    from contrastkit.plugins.graphs.readers import TUReader, generate_sbm

    torch.manual_seed(0)
    if setting == "graph":
        items = TUReader().read("MUTAG", {}).items
        batches = [collate(items[s:s + 128]).to(device) for s in range(0, len(items), 128)]
        spec = DEFAULTS["augmentations"][0]
        views = ViewGenerator([RandomChoice(spec["transforms"])], k=2)
        enc = GIN(in_channels=7, hidden=32, layers=5)
        head = build_head({"name": "mlp", "out_dim": 160, "layers": 2}, enc.out_dim)
        loss = InfoNCE(temperature=0.5)
        info = {"graphs": len(items), "nodes": sum(g.num_nodes for g in items),
                "batches": [int(b.num_graphs) for b in batches]}
    else:
        x, ei, _ = generate_sbm(nodes, blocks=10, degree=10, features=128, seed=0)
        g = make_graph(torch.from_numpy(x), torch.from_numpy(ei))
        batches = [collate([NodeRef(g, i) for i in range(nodes)]).to(device)]
        views = ViewGenerator([EdgeRemove(0.3), FeatureMask(0.3)], k=2)
        enc = GCN(in_channels=128, out_dim=128, layers=2, activation="prelu")
        head = build_head({"name": "mlp", "out_dim": 128, "layers": 2}, enc.out_dim)
        core_loss = InfoNCE(temperature=0.5)
        loss = (lambda zs: grace_plain_loss(zs[0], zs[1], 0.5)) if setting == "node-plain" else \
            (lambda zs: core_loss(zs).loss)
        info = {"nodes": nodes, "edges": int(ei.shape[1]), "features": 128}
    if setting == "graph":
        core = loss
        loss = lambda zs: core(zs).loss  # noqa: E731
    enc, head = enc.to(device), head.to(device)
    opt = torch.optim.Adam(list(enc.parameters()) + list(head.parameters()), lr=1e-3)
    return batches, views, enc, head, loss, opt, info


def child(setting: str, nodes: int, repeats: int, device_name: str, threads: int) -> dict:
    from contrastkit.core.views import make_generator

    if threads > 0:
        torch.set_num_threads(threads)
    device = pick_device(device_name)
    batches, views, enc, head, loss_fn, opt, info = _setup(setting, nodes, device)
    rss_before, reset_ok = rss_reset_peak()
    parts: dict[str, list[float]] = {"views": [], "forward": [], "loss": [], "backward": [], "epoch": []}
    losses = []
    for epoch in range(repeats + 1):
        acc = dict.fromkeys(parts, 0.0)
        for step, batch in enumerate(batches):
            t0 = time.perf_counter()
            vs = views(batch, make_generator(epoch * 1000 + step, device))
            sync(device)
            t1 = time.perf_counter()
            zs = [head(enc(v)) for v in vs]
            sync(device)
            t2 = time.perf_counter()
            loss = loss_fn(zs)
            sync(device)
            t3 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sync(device)
            t4 = time.perf_counter()
            acc["views"] += t1 - t0
            acc["forward"] += t2 - t1
            acc["loss"] += t3 - t2
            acc["backward"] += t4 - t3
            acc["epoch"] += t4 - t0
            losses.append(float(loss))
        if epoch > 0:  # the first epoch is the warm-up
            for k in parts:
                parts[k].append(acc[k])
    med = {k: statistics.median(v) for k, v in parts.items()}
    peak = rss_peak_kib()
    return {"setting": setting, **info, "median_s": med, "epochs_s": parts["epoch"],
            "views_share": med["views"] / med["epoch"], "peak_rss_mib": None if peak is None else peak / 1024,
            "rss_before_mib": None if rss_before is None else rss_before / 1024, "peak_reset": reset_ok,
            "last_loss": losses[-1]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--nodes", type=int, default=10_000)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--settings", default="graph,node,node-plain")
    ap.add_argument("--json", default=None, help="also write the results as JSON here ('-': stdout)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.nodes, args.repeats, args.device, args.threads)))
        return
    results = []
    for setting in args.settings.split(","):
        cmd = [sys.executable, __file__, "--child", setting, "--nodes", str(args.nodes), "--repeats",
               str(args.repeats), "--device", args.device, "--threads", str(args.threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=child_env())
        if proc.returncode != 0:
            sys.exit(f"{setting} failed:\n{proc.stderr[-3000:]}")
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(f"{'setting':<11} {'epoch s':>8} {'views s':>8} {'fwd s':>7} {'loss s':>7} {'bwd s':>7} "
          f"{'views %':>8} {'peak MiB':>9}")
    for r in results:
        m = r["median_s"]
        print(f"{r['setting']:<11} {m['epoch']:>8.3f} {m['views']:>8.3f} {m['forward']:>7.3f} {m['loss']:>7.3f} "
              f"{m['backward']:>7.3f} {100 * r['views_share']:>7.1f}% {fmt(r['peak_rss_mib'], '>9.0f')}")
    by = {r["setting"]: r for r in results}
    if "node" in by and "node-plain" in by:
        ratio = by["node-plain"]["median_s"]["epoch"] / by["node"]["median_s"]["epoch"]
        mem = by["node-plain"]["peak_rss_mib"] / by["node"]["peak_rss_mib"]
        print(f"node level: plain GRACE loss / contrastkit InfoNCE = {ratio:.2f}x time, {mem:.2f}x peak memory; "
              f"target < 3.5 s and < 5 GiB: {by['node']['median_s']['epoch']:.2f} s, "
              f"{by['node']['peak_rss_mib'] / 1024:.2f} GiB")
    if args.json:
        emit_json(args.json, {"machine": machine(), "threads": args.threads, "results": results})


if __name__ == "__main__":
    main()
