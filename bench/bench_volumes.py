"""Volumes pretraining step: samples/s for augmentation + encoder + loss, and the augmentation's share.

The data are the default recipe's: MNI ICBM152 patches (16³), read and
prepared as ``contrastkit pretrain volumes`` does; the components are the
default recipe's (two overlapping 3-D crops + flip, rot90, noise, blur; the
small GroupNorm ResNet3d; MLP head; InfoNCE), built through contrastkit's
registry.  Timed, interleaved, median of ``--repeats`` calls each:

* ``views``: the recipe's ViewGenerator on a batch of B patches (vectorised:
  one call transforms the whole batch);
* ``views, per-sample loop`` (the baseline): the same transforms applied to
  each sample alone (a batch of one) and concatenated — what a
  per-sample dataset transform does;
* ``model``: encoder → head → InfoNCE forward + backward on drawn views;
* ``step``: views + model, the whole training step without the optimiser.

It also times every registered augmentation (default arguments) alone,
vectorised against the per-sample loop.  Samples/s count input patches (each
gives K = 2 views).

Usage::

    python bench/bench_volumes.py                 # B = 64, 7 repeats, 1 thread, device auto
    python bench/bench_volumes.py --batch 128 --repeats 11 --json out.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit_json, fmt, machine, median_ms, pick_device, set_threads  # noqa: E402


def per_sample(fn, x: torch.Tensor, g: torch.Generator):
    """The baseline: ``fn`` on each sample alone, results concatenated (lists of views: per view)."""
    outs = [fn(x[i:i + 1], g) for i in range(x.shape[0])]
    if isinstance(outs[0], (list, tuple)):
        return [torch.cat([o[j] for o in outs]) for j in range(len(outs[0]))]
    return torch.cat(outs)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", default=None, help="write the raw numbers as JSON to this path ('-': stdout)")
    ap.add_argument("--no-each", action="store_true", help="skip the per-augmentation table")
    args = ap.parse_args(argv)
    set_threads(args)
    device = pick_device(args.device)

    from contrastkit.core.components import build_views, instantiate
    from contrastkit.core.config import resolve
    from contrastkit.core.plugins import get_host
    from contrastkit.core.runs import build_model, move_to
    from contrastkit.core.sources import read_source
    from contrastkit.core.views import JointAugmentation, make_generator

    host = get_host()
    modality = host.modality("volumes")
    cfg = resolve(modality.defaults, None, {})
    cfg["plugin"] = "volumes"
    raw = read_source(host.registry, "volumes", modality.default_data, cfg["data_options"]).with_split()
    train, _ = modality.prepare(raw.part("train"), None, cfg["data_options"])
    batch = move_to(modality.collate(list(train.items[: args.batch])), device)
    views = build_views(host.registry, "volumes", cfg)
    torch.manual_seed(0)
    model = build_model(host, cfg, dict(train.meta)).to(device)
    g = make_generator(0, device)

    def loop_views(x, gen):
        bases = per_sample(lambda xi, gi: views.joint.views(xi, views.k, gi), x, gen) if views.joint else [x] * views.k
        return [per_sample(views.pipeline, b, gen) for b in bases]

    drawn = views(batch, g)

    def model_step():
        model.zero_grad(set_to_none=True)
        model(drawn).loss.backward()

    def full_step():
        model.zero_grad(set_to_none=True)
        model(views(batch, g)).loss.backward()

    timed = median_ms({
        "views": lambda: views(batch, g),
        "views_loop": lambda: loop_views(batch, g),
        "model": model_step,
        "step": full_step,
    }, device, args.repeats)
    b = batch.shape[0]
    ms = {k: v[0] for k, v in timed.items()}
    result = {
        "machine": machine(), "device": str(device), "threads": args.threads, "batch": b,
        "patch": list(batch.shape[2:]), "views": views.k, "repeats": args.repeats,
        "median_ms": ms, "all_ms": {k: v[1] for k, v in timed.items()},
        "samples_per_s": {k: 1e3 * b / v for k, v in ms.items()},
        "augmentation_share_of_step": ms["views"] / ms["step"],
        "step_with_loop_views_ms": ms["views_loop"] + ms["model"],
        "vectorised_speedup_views": ms["views_loop"] / ms["views"],
    }
    print(f"volumes step on {device}, {args.threads} thread(s), B = {b} patches of {tuple(batch.shape[2:])}, "
          f"K = {views.k} views, median of {args.repeats}")
    print(f"  views (vectorised)      {ms['views']:8.1f} ms   {1e3 * b / ms['views']:8.0f} samples/s")
    print(f"  views (per-sample loop) {ms['views_loop']:8.1f} ms   {1e3 * b / ms['views_loop']:8.0f} samples/s   "
          f"-> vectorised is {result['vectorised_speedup_views']:.1f}x faster")
    print(f"  encoder+head+loss f+b   {ms['model']:8.1f} ms   {1e3 * b / ms['model']:8.0f} samples/s")
    print(f"  whole step              {ms['step']:8.1f} ms   {1e3 * b / ms['step']:8.0f} samples/s   "
          f"(augmentation {100 * result['augmentation_share_of_step']:.0f}% of it; with the loop "
          f"{100 * ms['views_loop'] / (ms['views_loop'] + ms['model']):.0f}%)")

    if not args.no_each:
        each = {}
        for comp in host.registry.of_kind("augmentation", "volumes"):
            aug = instantiate("augmentation", comp.name, comp.obj, {})
            if isinstance(aug, JointAugmentation):
                fns = {"vec": lambda a=aug: a.views(batch, 2, g),
                       "loop": lambda a=aug: per_sample(lambda xi, gi: a.views(xi, 2, gi), batch, g)}
            else:
                fns = {"vec": lambda a=aug: a(batch, g), "loop": lambda a=aug: per_sample(a, batch, g)}
            t = median_ms(fns, device, max(3, args.repeats // 2))
            each[comp.name] = {"vectorised_ms": t["vec"][0], "loop_ms": t["loop"][0],
                               "speedup": t["loop"][0] / t["vec"][0]}
        result["each"] = each
        print("  per augmentation (default arguments), ms per batch: vectorised | per-sample loop | speed-up")
        for name, r in sorted(each.items()):
            print(f"    {name:<22} {fmt(r['vectorised_ms'], '8.2f')} | {fmt(r['loop_ms'], '8.2f')} | "
                  f"{r['speedup']:5.1f}x")
    if args.json:
        emit_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
