"""Point-cloud pretraining step throughput, and batched kNN against a per-sample loop.

Part 1, the training step of the default ``points`` recipe (or another encoder): for a batch of B clouds of
N points it times, as the trainer runs them,

* ``augment``: the K = 2 views of the recipe's augmentation pipeline (crop, point dropout, rotation about
  the up axis, anisotropic scaling, jitter, re-normalisation), drawn from a seeded generator;
* ``step``: augment + encoder on both views + projection head + InfoNCE, forward and backward
  (gradients zeroed between repeats; no optimiser step);

and prints samples/s (B / median step time) and the augmentation's share of the step.

Part 2, the kNN graph that DGCNN rebuilds at every layer and patch masking uses: the batched
``cdist`` + ``topk`` of ``contrastkit.plugins.points.geometry.knn`` against the same search written one sample
at a time (``knn_loop``, the naive baseline), on B × N × 3 coordinates and on B × N × 64 features.  The
script first checks that both give the same neighbours.

All figures are medians of ``--repeats`` interleaved calls after a warm-up; single thread on the CPU
(``--threads``).  Usage::

    python bench/bench_points.py                        # PointNet and DGCNN, B = 32, N = 512
    python bench/bench_points.py --encoders dgcnn --points 1024 --json out.json
    python bench/bench_points.py --tune-malloc          # glibc keeps freed memory (see docs/points.md)

``--tune-malloc`` raises glibc's mmap and trim thresholds (``mallopt``) at the start, so the large
tensors of every step (DGCNN's B × N × k edge features, the B × N × N distances) are reused from the
heap instead of being mapped and unmapped (page-faulted) anew at every step.  Run the script with and
without it to compare: it is a process-wide setting, so the two cannot share one process.
"""

from __future__ import annotations

import argparse
import copy

import torch

from _common import emit_json, machine, median_ms, pick_device, set_threads


def tune_malloc() -> bool:
    """Keep freed memory in the process (glibc only): mmap threshold 1 GiB, trim threshold 2 GiB."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_mmap_threshold, 2**30)) and bool(libc.mallopt(m_trim_threshold, 2**31 - 1))
    except (OSError, AttributeError):
        return False


def build(encoder_name: str, device: torch.device):
    from contrastkit.core.components import build_encoder, build_loss, build_views
    from contrastkit.core.config import BASE_CONFIG, deep_merge
    from contrastkit.core.heads import build_head
    from contrastkit.core.plugins import get_host
    from contrastkit.plugins.points.modality import DEFAULTS

    host = get_host()
    cfg = deep_merge(BASE_CONFIG, DEFAULTS)
    cfg["plugin"] = "points"
    if encoder_name == "dgcnn":
        cfg["encoder"] = {"name": "dgcnn", "k": 16, "widths": [32, 32, 64], "emb_dim": 128, "pool": "max+mean"}
    elif encoder_name != "pointnet":
        raise SystemExit(f"unknown encoder {encoder_name!r}")
    encoder = build_encoder(host.registry, "points", cfg, {"in_channels": 3}).to(device)
    head = build_head(cfg["head"], encoder.out_dim).to(device)
    loss = build_loss(host.registry, "points", cfg)
    views = build_views(host.registry, "points", cfg)
    return cfg, encoder, head, loss, views


def bench_step(encoder_name: str, batch: int, points: int, repeats: int, device: torch.device) -> dict:
    from contrastkit.core.views import make_generator
    from contrastkit.plugins.points.procedural import generate

    cfg, encoder, head, loss, views = build(encoder_name, device)
    per_class = max(1, -(-batch // 10))
    _, items, _, _ = generate(per_class, 0, num_points=points)
    x = torch.from_numpy(__import__("numpy").stack(items[:batch])).to(device)
    gen = make_generator(0, device)

    def augment():
        return views(x, gen)

    def step():
        v = views(x, gen)
        h = encoder(torch.cat(v))
        z = head(h).split(x.shape[0])
        loss(list(z)).loss.backward()
        encoder.zero_grad(set_to_none=True)
        head.zero_grad(set_to_none=True)

    res = median_ms({"augment": augment, "step": step}, device, repeats)
    aug_ms, step_ms = res["augment"][0], res["step"][0]
    return {
        "encoder": encoder_name, "encoder_config": copy.deepcopy(cfg["encoder"]), "batch": batch, "points": points,
        "augment_ms": aug_ms, "step_ms": step_ms, "samples_per_s": batch / (step_ms / 1e3),
        "augment_share": aug_ms / step_ms, "repeats_ms": {k: v[1] for k, v in res.items()},
    }


def bench_knn(batch: int, points: int, dims: int, k: int, repeats: int, device: torch.device) -> dict:
    from contrastkit.plugins.points.geometry import knn, knn_loop

    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(batch, points, dims, generator=g, device=device)
    a, b = knn(x, k=k), knn_loop(x, k=k)
    # same neighbour sets (ties and the last float bits may order them differently)
    agree = float((a.sort(-1).values == b.sort(-1).values).float().mean())
    if agree < 0.999:
        raise SystemExit(f"batched and per-sample kNN disagree on {100 * (1 - agree):.2f}% of neighbours")
    res = median_ms({"batched": lambda: knn(x, k=k), "loop": lambda: knn_loop(x, k=k)}, device, repeats)
    return {"batch": batch, "points": points, "dims": dims, "k": k, "batched_ms": res["batched"][0],
            "loop_ms": res["loop"][0], "speedup": res["loop"][0] / res["batched"][0], "agreement": agree}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--points", type=int, default=512)
    p.add_argument("--encoders", nargs="+", default=["pointnet", "dgcnn"])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", default=None)
    p.add_argument("--tune-malloc", action="store_true", help="raise glibc's mmap/trim thresholds first")
    args = p.parse_args(argv)
    tuned = tune_malloc() if args.tune_malloc else False
    set_threads(args)
    device = pick_device(args.device)
    torch.manual_seed(0)
    out = {"machine": machine(), "device": str(device), "malloc_tuned": tuned, "steps": [], "knn": []}
    print(f"device {device}, threads {torch.get_num_threads()}, B = {args.batch}, N = {args.points}, K = 2 views, "
          f"malloc {'tuned' if tuned else 'default'}")
    print(f"{'encoder':<10}{'augment ms':>12}{'step ms':>10}{'samples/s':>11}{'aug share':>11}")
    for name in args.encoders:
        r = bench_step(name, args.batch, args.points, args.repeats, device)
        out["steps"].append(r)
        print(f"{name:<10}{r['augment_ms']:>12.1f}{r['step_ms']:>10.1f}{r['samples_per_s']:>11.1f}"
              f"{100 * r['augment_share']:>10.1f}%")
    print("\nkNN (k = 16): batched cdist+topk vs a per-sample loop")
    print(f"{'B × N × C':<18}{'batched ms':>12}{'loop ms':>10}{'loop/batched':>14}")
    for dims in (3, 64):
        r = bench_knn(args.batch, args.points, dims, 16, args.repeats, device)
        out["knn"].append(r)
        print(f"{f'{args.batch} × {args.points} × {dims}':<18}{r['batched_ms']:>12.1f}{r['loop_ms']:>10.1f}"
              f"{r['speedup']:>13.2f}x")
    if args.json:
        emit_json(args.json, out)


if __name__ == "__main__":
    main()
