"""InfoNCE forward + backward: contrastkit's InfoNCE against a plain SimCLR NT-Xent.

For each batch size B (K = 2 views of B × D embeddings, N = 2B rows) both
implementations get the same inputs in the same process:

* ``ours``: ``contrastkit.core.losses.InfoNCE(temperature)([z1, z2]).loss``
  (its forward also computes the logged parts pos_sim/top1, as in training);
* ``reference``: the usual SimCLR way — concatenate, L2-normalise, the full
  N × N similarity matrix over τ, the diagonal masked with -1e9,
  ``cross_entropy`` with targets ``(i + B) mod 2B``.

It first checks that both give the same loss and the same gradients (it
stops with an error if not), then reports the median wall time of one
forward + backward (after a warm-up), the ratio reference / ours (> 1: ours is
faster) and the peak memory of one forward + backward:

* on an accelerator: ``max_memory_allocated`` above what was allocated before
  the call (the tensors the call creates, at their peak);
* on the CPU: the rise of the process's peak resident set size (VmHWM above
  VmRSS, after resetting VmHWM through /proc/self/clear_refs) during one call
  after a warm-up call, each (B, implementation) in a fresh subprocess, with
  glibc told to return blocks > 64 KiB to the OS on free so that the resident
  size follows the live tensors.  It counts every page the call touches
  (tensors, allocator slack, thread stacks), not only tensors.

Usage::

    python bench/bench_infonce.py                    # B = 256, 1024, 4096; D = 128
    python bench/bench_infonce.py --device cpu --batches 256 1024 --json out.json
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from _common import (emit_json, acc_peak_since, acc_reset_peak, child_env, fmt, machine, median_ms, mib, pick_device,
                     rss_peak_kib, rss_reset_peak, set_threads)


def reference_ntxent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent as most SimCLR code writes it (K = 2)."""
    b = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2], dim=0), dim=1)
    sim = z @ z.T / temperature
    eye = torch.eye(2 * b, dtype=torch.bool, device=z.device)
    sim = sim.masked_fill(eye, -1e9)
    targets = (torch.arange(2 * b, device=z.device) + b) % (2 * b)
    return F.cross_entropy(sim, targets)


def make_impls(temperature: float, device: torch.device):
    from contrastkit.core.losses import InfoNCE

    ours = InfoNCE(temperature=temperature).to(device)
    return {
        "reference": lambda z1, z2: reference_ntxent(z1, z2, temperature),
        "ours": lambda z1, z2: ours([z1, z2]).loss,
    }


def make_inputs(b: int, d: int, device: torch.device, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(b, d, generator=g)
    # two correlated views, like a projection head's outputs for two augmentations
    z1 = (base + 0.5 * torch.randn(b, d, generator=g)).to(device).requires_grad_(True)
    z2 = (base + 0.5 * torch.randn(b, d, generator=g)).to(device).requires_grad_(True)
    return z1, z2


def step(fn, z1: torch.Tensor, z2: torch.Tensor) -> float:
    z1.grad = z2.grad = None
    loss = fn(z1, z2)
    loss.backward()
    return loss


def check_equal(impls, z1, z2) -> dict[str, float]:
    """Same loss and same gradients from both implementations (raises AssertionError if not)."""
    out = {}
    for name, fn in impls.items():
        loss = step(fn, z1, z2)
        out[name] = (loss.detach().double().cpu(), z1.grad.detach().double().cpu(), z2.grad.detach().double().cpu())
    (lr, g1r, g2r), (lo, g1o, g2o) = out["reference"], out["ours"]
    torch.testing.assert_close(lo, lr, rtol=1e-4, atol=1e-6, msg=lambda m: f"InfoNCE loss differs: {m}")
    scale = max(g1r.abs().max().item(), g2r.abs().max().item())
    for a, r in ((g1o, g1r), (g2o, g2r)):
        torch.testing.assert_close(a, r, rtol=1e-3, atol=1e-4 * scale, msg=lambda m: f"InfoNCE gradient differs: {m}")
    return {"loss_ours": float(lo), "loss_reference": float(lr), "abs_diff": float((lo - lr).abs()),
            "grad_max_abs_diff": float(max((g1o - g1r).abs().max(), (g2o - g2r).abs().max()))}


# ----------------------------------------------------------------------------------- memory

def memory_child(args) -> None:
    """In a fresh process: one warm-up call, then the peak of one measured call (printed as JSON)."""
    device = pick_device(args.device)
    fn = make_impls(args.temperature, device)[args.impl]
    z1, z2 = make_inputs(args.b, args.dim, device, args.seed)
    step(fn, z1, z2)
    z1.grad = z2.grad = None
    gc.collect()
    rss0, reset = rss_reset_peak()
    step(fn, z1, z2)
    peak = rss_peak_kib()
    print(json.dumps({"peak_bytes": None if peak is None or rss0 is None else (peak - rss0) * 1024,
                      "hwm_reset": reset}))


def peak_memory(impl: str, b: int, args, device: torch.device, impls, inputs) -> tuple[int | None, str]:
    if device.type != "cpu":
        fn = impls[impl]
        z1, z2 = inputs
        z1.grad = z2.grad = None
        base = acc_reset_peak(device)
        step(fn, z1, z2)
        return acc_peak_since(device, base), "max_memory_allocated"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--memory-child", "--impl", impl, "--b", str(b),
           "--dim", str(args.dim), "--device", args.device, "--temperature", str(args.temperature),
           "--seed", str(args.seed), "--threads", str(args.threads)]
    res = subprocess.run(cmd, capture_output=True, text=True, env=child_env())
    if res.returncode != 0:
        print(res.stderr, file=sys.stderr)
        return None, "failed"
    info = json.loads(res.stdout.strip().splitlines()[-1])
    return info["peak_bytes"], "VmHWM rise" if info["hwm_reset"] else "VmHWM rise (no reset: since start)"


# ----------------------------------------------------------------------------------- main

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto", help="auto (the accelerator if any, else cpu), cpu, or a torch device")
    p.add_argument("--batches", type=int, nargs="+", default=[256, 1024, 4096], help="batch sizes B (per view)")
    p.add_argument("--dim", type=int, default=128, help="embedding size D")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed calls per (B, implementation); default 7 for B ≤ 1024, else 3")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls first")
    p.add_argument("--temperature", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads; default 1 on the CPU (steady on a shared machine, where the default "
                        "one thread per core can stall in OpenMP barriers), torch's own choice on an accelerator; "
                        "0: torch's own choice")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON ('-' for stdout)")
    # internal: the per-measurement subprocess
    p.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--impl", help=argparse.SUPPRESS)
    p.add_argument("--b", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    set_threads(args)
    if args.memory_child:
        memory_child(args)
        return 0

    device = pick_device(args.device)
    impls = make_impls(args.temperature, device)
    rows = []
    print(f"InfoNCE forward+backward, K=2, D={args.dim}, tau={args.temperature}, device={device}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)", flush=True)
    for b in args.batches:
        repeats = args.repeats or (7 if b <= 1024 else 3)
        z1, z2 = make_inputs(b, args.dim, device, args.seed)
        eq = check_equal(impls, z1, z2)
        row = {"B": b, "N": 2 * b, "D": args.dim, "repeats": repeats, **eq}
        # interleaved calls; the order flips between sizes to spread the machine's noise
        names = ["reference", "ours"] if len(rows) % 2 == 0 else ["ours", "reference"]
        timed = median_ms({n: (lambda f=impls[n]: step(f, z1, z2)) for n in names}, device, repeats, args.warmup)
        for name, (med, times) in timed.items():
            row[f"{name}_ms"] = med
            row[f"{name}_times_ms"] = [round(t, 3) for t in times]
        row["ratio_ref_over_ours"] = row["reference_ms"] / row["ours_ms"]
        if not args.no_memory:
            for name in ("reference", "ours"):
                peak, how = peak_memory(name, b, args, device, impls, (z1, z2))
                row[f"{name}_peak_mib"] = mib(peak)
                row["memory_measure"] = how
            if row.get("reference_peak_mib") and row.get("ours_peak_mib") is not None:
                row["mem_ratio_ours_over_ref"] = row["ours_peak_mib"] / row["reference_peak_mib"]
        row["nxn_float32_mib"] = (2 * b) ** 2 * 4 / 2**20
        rows.append(row)
        print(f"  B={b}: done (loss {eq['loss_ours']:.5f}, |diff| {eq['abs_diff']:.1e})", flush=True)

    hdr = (f"{'B':>6} {'N':>6} {'ref ms':>10} {'ours ms':>10} {'ref/ours':>9} "
           f"{'ref MiB':>9} {'ours MiB':>9} {'mem ours/ref':>13} {'N×N f32 MiB':>12} {'|Δloss|':>9}")
    print()
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        print(f"{r['B']:>6} {r['N']:>6} {r['reference_ms']:>10.2f} {r['ours_ms']:>10.2f} "
              f"{r['ratio_ref_over_ours']:>9.2f} {fmt(r.get('reference_peak_mib')):>9} "
              f"{fmt(r.get('ours_peak_mib')):>9} {fmt(r.get('mem_ratio_ours_over_ref'), '.2f'):>13} "
              f"{r['nxn_float32_mib']:>12.1f} {r['abs_diff']:>9.1e}")
    if rows and not args.no_memory:
        print(f"\nmemory: {rows[0].get('memory_measure')} during one forward+backward "
              f"({'accelerator allocator' if device.type != 'cpu' else 'process resident set, fresh subprocess each'})")
    print("ref/ours > 1 means contrastkit's InfoNCE is faster; times are medians.")
    if args.json:
        emit_json(args.json, {"bench": "infonce", "device": str(device), "machine": machine(), "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
