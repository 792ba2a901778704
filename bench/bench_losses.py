"""Loss speed: contrastkit's InfoNCE, DCL and MV-InfoNCE against their own matrix products and other libraries.

For each loss and batch size B (K views of B × D float32 embeddings, M = K·B
rows) one process times, interleaved, the forward + backward of:

* ``ours``: the contrastkit loss (``InfoNCE`` and ``DCL`` with K = 2,
  ``MVInfoNCE`` with K = 4), ``.loss.backward()``; its forward also computes
  the logged parts, as in training;
* ``matmul``: exactly the loss's three matrix products, as three ``torch.mm``
  calls on M × D and M × M float32 tensors without autograd — the forward
  similarity matrix (M × D) @ (D × M) and the two backward products
  (M × M) @ (M × D) (gradient of each operand).  Any softmax-type loss over
  the M × M similarities does at least these, so ``ours / matmul`` shows what
  the loss adds on top (issue #3's target: ≤ 1.5);
* ``reference``: a plain ten-line version of the same loss written here
  (concatenate, normalise, one M × M matrix, mask, log-sum-exp);
* ``lightly``: lightly's ``NTXentLoss`` (InfoNCE) and ``DCLLoss`` (DCL);
  lightly has no multi-view loss;
* ``pml``: pytorch-metric-learning's ``NTXentLoss`` (InfoNCE), given the 2B
  embeddings and the sample index as label.  It materialises a
  (positive pairs) × (negative pairs) matrix, M × M(M−2) entries, so its
  memory grows as M³: it runs only where its estimated memory
  (``PML_BYTES_PER_ENTRY`` bytes per entry) is below ``--pml-max-gib``; at the
  default sizes that is B = 256 only.  It takes seconds per call, so it is
  timed after the others, with at most 3 repeats; its memory is not measured.

Before timing, every implementation is checked against ``ours`` on the same
inputs: the same loss and the same gradients (the script stops with an error
otherwise; ``|Δloss|`` is the largest loss difference).

Reported per (loss, B): the median ms over ``--repeats`` calls after a warm-up,
``ours / matmul``, ``ours / lightly`` (< 1: contrastkit is faster), and the
peak memory of one forward + backward of ``ours`` and of ``reference``
(measured as in ``bench_infonce.py``: on the CPU the VmHWM rise of a fresh
subprocess with glibc returning freed blocks, on an accelerator
``max_memory_allocated``).  It also prints the machine's measured GFLOP/s of
a large square ``torch.mm`` and the GFLOP/s the three products reach.

The anchors are optional (``pip install --no-deps lightly pytorch-metric-learning``,
see bench/README.md); one that cannot be imported is reported and skipped.
lightly's loss modules import ``lightly.loss`` and ``lightly.models``, which
import a few names from torchvision at import time (``torchvision.ops.roi_align``,
``torchvision.ops.StochasticDepth``, ``torchvision.models.vision_transformer``)
without using them in these two losses.  torchvision must not be installed
here (its wheel would replace the CPU torch), so where it is absent the
script puts an import-only stand-in on ``sys.meta_path`` while importing
lightly: every ``torchvision.*`` module is an empty module whose attributes
are empty placeholder classes that raise if called.  Nothing of it runs in
NTXentLoss or DCLLoss; the stand-in is removed from ``sys.meta_path`` after
the import.

Usage::

    python bench/bench_losses.py                         # B = 256, 1024, 4096; D = 128
    python bench/bench_losses.py --losses infonce --batches 256 1024 --json out.json
"""

from __future__ import annotations

import argparse
import gc
import importlib.abc
import importlib.machinery
import importlib.util
import json
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from _common import (emit_json, acc_peak_since, acc_reset_peak, child_env, fmt, machine, median_ms, mib, pick_device,
                     rss_peak_kib, rss_reset_peak, set_threads)

#: loss name -> number of views K
LOSS_VIEWS = {"infonce": 2, "dcl": 2, "mv_infonce": 4}
#: bytes per entry of PML's (positive pairs) × (negative pairs) matrices: a float mask, the masked float
#: logits, their exp, the bool comparisons (forward) — a lower bound of what it keeps for the backward
PML_BYTES_PER_ENTRY = 14
#: implementations that take seconds per call: timed after the others, with at most 3 repeats and no warm-up
#: (the equivalence check before the timing already ran them once)
SLOW = {"pml"}


# ----------------------------------------------------------------------------------- anchors

class _TorchvisionStandIn(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Import-only stand-in for torchvision: empty modules, attributes are inert placeholder classes."""

    class Module(types.ModuleType):
        def __getattr__(self, name: str):
            if name.startswith("__"):
                raise AttributeError(name)

            def _refuse(*args, **kwargs):
                raise RuntimeError(f"torchvision.{name} is an import-only stand-in (bench/bench_losses.py); "
                                   "install torchvision to use it.")

            placeholder = type(name, (), {"__init__": _refuse, "__call__": _refuse})
            setattr(self, name, placeholder)
            return placeholder

    def find_spec(self, fullname, path, target=None):
        if fullname == "torchvision" or fullname.startswith("torchvision."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = self.Module(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module) -> None:
        if module.__name__ == "torchvision":
            module.__version__ = "0.0.0+import-only-stand-in"


def import_anchors() -> tuple[dict[str, object], dict[str, str]]:
    """The anchor loss classes that import, and why the others do not."""
    found: dict[str, object] = {}
    why: dict[str, str] = {}
    stand_in = None
    if importlib.util.find_spec("torchvision") is None and importlib.util.find_spec("lightly") is not None:
        stand_in = _TorchvisionStandIn()
        sys.meta_path.insert(0, stand_in)
    try:
        from lightly.loss.dcl_loss import DCLLoss
        from lightly.loss.ntx_ent_loss import NTXentLoss as LightlyNTXent

        found["lightly_ntxent"], found["lightly_dcl"] = LightlyNTXent, DCLLoss
    except Exception as exc:  # noqa: BLE001 - an anchor that does not import is reported, not fatal
        why["lightly"] = f"{type(exc).__name__}: {exc}"
    finally:
        if stand_in is not None:
            sys.meta_path.remove(stand_in)
    try:
        from pytorch_metric_learning.losses import NTXentLoss as PMLNTXent

        found["pml_ntxent"] = PMLNTXent
    except Exception as exc:  # noqa: BLE001
        why["pytorch-metric-learning"] = f"{type(exc).__name__}: {exc}"
    return found, why


def anchor_version(dist_name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist_name)
    except PackageNotFoundError:
        return None


# ----------------------------------------------------------------------------------- references

def ref_infonce(views: Sequence[torch.Tensor], t: float) -> torch.Tensor:
    """NT-Xent as most SimCLR code writes it (K = 2)."""
    b = views[0].shape[0]
    z = F.normalize(torch.cat(list(views)), dim=1)
    sim = (z @ z.T / t).fill_diagonal_(-1e9)
    targets = (torch.arange(2 * b, device=z.device) + b) % (2 * b)
    return F.cross_entropy(sim, targets)


def ref_dcl(views: Sequence[torch.Tensor], t: float) -> torch.Tensor:
    """Decoupled contrastive loss (K = 2), the mean of both directions."""
    b = views[0].shape[0]
    z = F.normalize(torch.cat(list(views)), dim=1)
    sim = z @ z.T / t
    idx = torch.arange(2 * b, device=z.device)
    pos = sim[idx, (idx + b) % (2 * b)]
    own = (idx[:, None] % b) == (idx[None, :] % b)  # the anchor and its positive
    return (torch.logsumexp(sim.masked_fill(own, float("-inf")), dim=1) - pos).mean()


def ref_mv_infonce(views: Sequence[torch.Tensor], t: float) -> torch.Tensor:
    """MV-InfoNCE (Koromilas et al. 2025) over K views: one term per sample."""
    k, b = len(views), views[0].shape[0]
    z = F.normalize(torch.cat(list(views)), dim=1)  # view-major: row v·B + i
    sim = z @ z.T / t
    sample = torch.arange(k * b, device=z.device) % b
    eye = torch.eye(k * b, dtype=torch.bool, device=z.device)
    den = torch.logsumexp(sim.masked_fill(eye, float("-inf")), dim=1)
    num = torch.logsumexp(sim.masked_fill(eye | (sample[:, None] != sample[None, :]), float("-inf")), dim=1)
    return (torch.logsumexp(den.view(k, b), 0) - torch.logsumexp(num.view(k, b), 0)).mean()


REFERENCES = {"infonce": ref_infonce, "dcl": ref_dcl, "mv_infonce": ref_mv_infonce}


def make_impls(loss: str, temperature: float, device: torch.device, anchors: dict[str, object],
               b: int, pml_max_gib: float) -> tuple[dict[str, Callable], dict[str, str]]:
    """Name -> fn(views) returning the scalar loss, for one loss; and why anchors are skipped at this size."""
    from contrastkit.core.losses import DCL, InfoNCE, MVInfoNCE

    ours = {"infonce": InfoNCE, "dcl": DCL, "mv_infonce": MVInfoNCE}[loss](temperature=temperature).to(device)
    ref = REFERENCES[loss]
    impls: dict[str, Callable] = {"ours": lambda vs: ours(vs).loss, "reference": lambda vs: ref(vs, temperature)}
    skipped: dict[str, str] = {}
    if loss == "infonce":
        if "lightly_ntxent" in anchors:
            ln = anchors["lightly_ntxent"](temperature=temperature).to(device)
            impls["lightly"] = lambda vs: ln(vs[0], vs[1])
        else:
            skipped["lightly"] = "not importable"
        if "pml_ntxent" in anchors:
            m = 2 * b
            need = PML_BYTES_PER_ENTRY * m * m * (m - 2) / 2**30
            if need <= pml_max_gib:
                pml = anchors["pml_ntxent"](temperature=temperature)
                labels = torch.arange(b, device=device).repeat(2)
                impls["pml"] = lambda vs: pml(torch.cat(list(vs)), labels)
            else:
                skipped["pml"] = f"needs ~{need:.0f} GiB (M³ pair matrix) > --pml-max-gib {pml_max_gib:g}"
        else:
            skipped["pml"] = "not importable"
    elif loss == "dcl":
        if "lightly_dcl" in anchors:
            ld = anchors["lightly_dcl"](temperature=temperature)
            impls["lightly"] = lambda vs: ld(vs[0], vs[1])
        else:
            skipped["lightly"] = "not importable"
    return impls, skipped


# ----------------------------------------------------------------------------------- inputs and steps

def make_inputs(k: int, b: int, d: int, device: torch.device, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(b, d, generator=g)
    # correlated views, like a projection head's outputs for K augmentations
    return [(base + 0.5 * torch.randn(b, d, generator=g)).to(device).requires_grad_(True) for _ in range(k)]


def step(fn: Callable, views: list[torch.Tensor]) -> torch.Tensor:
    for v in views:
        v.grad = None
    loss = fn(views)
    loss.backward()
    return loss


def matmul_fn(m: int, d: int, device: torch.device, seed: int) -> Callable[[], object]:
    """The loss's three products without autograd: (M×D)@(D×M) forward, (M×M)@(M×D) twice backward."""
    g = torch.Generator().manual_seed(seed + 1)
    a = F.normalize(torch.randn(m, d, generator=g), dim=1).to(device)
    grad = (torch.randn(m, m, generator=g) / m).to(device)

    def run():
        sim = torch.mm(a, a.T)
        ga = torch.mm(grad, a)
        gb = torch.mm(grad.T, a)
        return sim, ga, gb

    return run


def check_equal(impls: dict[str, Callable], views: list[torch.Tensor]) -> float:
    """Every implementation gives ours' loss and gradients (raises AssertionError if not); the largest |Δloss|."""
    out = {}
    for name, fn in impls.items():
        loss = step(fn, views)
        out[name] = (loss.detach().double().cpu(), [v.grad.detach().double().cpu() for v in views])
    lo, go = out["ours"]
    scale = max(g.abs().max().item() for g in go)
    worst = 0.0
    for name, (ln, gn) in out.items():
        torch.testing.assert_close(ln, lo, rtol=1e-4, atol=1e-5, msg=lambda m: f"{name}: loss differs from ours: {m}")
        for a, r in zip(gn, go):
            torch.testing.assert_close(a, r, rtol=1e-3, atol=1e-4 * scale,
                                       msg=lambda m: f"{name}: gradient differs from ours: {m}")
        worst = max(worst, float((ln - lo).abs()))
    for v in views:
        v.grad = None
    return worst


def mm_gflops(device: torch.device, n: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of one n × n @ n × n float32 torch.mm (median of ``repeats``)."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, n, generator=g).to(device), torch.randn(n, n, generator=g).to(device)
    med, _ = median_ms({"mm": lambda: torch.mm(a, b)}, device, repeats)["mm"]
    return 2 * n**3 / (med / 1e3) / 1e9


# ----------------------------------------------------------------------------------- memory

def memory_child(args) -> None:
    """In a fresh process: one warm-up call, then the peak of one measured call (printed as JSON)."""
    device = pick_device(args.device)
    anchors = import_anchors()[0] if args.impl in ("lightly", "pml") else {}
    fn = make_impls(args.loss, args.temperature, device, anchors, args.b, args.pml_max_gib)[0][args.impl]
    views = make_inputs(LOSS_VIEWS[args.loss], args.b, args.dim, device, args.seed)
    step(fn, views)
    for v in views:
        v.grad = None
    gc.collect()
    rss0, reset = rss_reset_peak()
    step(fn, views)
    peak = rss_peak_kib()
    print(json.dumps({"peak_bytes": None if peak is None or rss0 is None else (peak - rss0) * 1024,
                      "hwm_reset": reset}))


def peak_memory(loss: str, impl: str, b: int, args, device: torch.device, fn: Callable,
                views: list[torch.Tensor]) -> tuple[int | None, str]:
    if device.type != "cpu":
        for v in views:
            v.grad = None
        base = acc_reset_peak(device)
        step(fn, views)
        return acc_peak_since(device, base), "max_memory_allocated"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--memory-child", "--loss", loss, "--impl", impl,
           "--b", str(b), "--dim", str(args.dim), "--device", args.device, "--temperature", str(args.temperature),
           "--seed", str(args.seed), "--threads", str(args.threads), "--pml-max-gib", str(args.pml_max_gib)]
    res = subprocess.run(cmd, capture_output=True, text=True, env=child_env())
    if res.returncode != 0:
        print(res.stderr, file=sys.stderr)
        return None, "failed"
    info = json.loads(res.stdout.strip().splitlines()[-1])
    return info["peak_bytes"], "VmHWM rise" if info["hwm_reset"] else "VmHWM rise (no reset: since start)"


# ----------------------------------------------------------------------------------- main

def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto", help="auto (the accelerator if any, else cpu), cpu, or a torch device")
    p.add_argument("--losses", nargs="+", default=list(LOSS_VIEWS), choices=list(LOSS_VIEWS))
    p.add_argument("--batches", type=int, nargs="+", default=[256, 1024, 4096], help="batch sizes B (per view)")
    p.add_argument("--dim", type=int, default=128, help="embedding size D")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed calls per (loss, B, implementation); default 7 for B ≤ 1024, else 3")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls first")
    p.add_argument("--temperature", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pml-max-gib", type=float, default=4.0,
                   help="run pytorch-metric-learning's NTXentLoss only where its estimated memory is below this")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads; default 1 on the CPU (steady on a shared machine), torch's own "
                        "choice on an accelerator; 0: torch's own choice")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON ('-' for stdout)")
    # internal: the per-measurement subprocess
    p.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--loss", help=argparse.SUPPRESS)
    p.add_argument("--impl", help=argparse.SUPPRESS)
    p.add_argument("--b", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    set_threads(args)
    if args.memory_child:
        memory_child(args)
        return 0

    device = pick_device(args.device)
    anchors, why = import_anchors()
    print(f"loss forward+backward, D={args.dim}, tau={args.temperature}, device={device}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    print(f"anchors: lightly {anchor_version('lightly') or '-'}, pytorch-metric-learning "
          f"{anchor_version('pytorch-metric-learning') or '-'}")
    for name, reason in why.items():
        print(f"  {name} not used: {reason}")
    gflops = mm_gflops(device)
    print(f"machine: {gflops:.1f} GFLOP/s for a 2048×2048 @ 2048×2048 float32 torch.mm", flush=True)

    rows = []
    for loss in args.losses:
        k = LOSS_VIEWS[loss]
        for b in args.batches:
            m = k * b
            repeats = args.repeats or (7 if b <= 1024 else 3)
            impls, skipped = make_impls(loss, args.temperature, device, anchors, b, args.pml_max_gib)
            views = make_inputs(k, b, args.dim, device, args.seed)
            t0 = time.perf_counter()
            diff = check_equal(impls, views)
            row: dict[str, object] = {"loss": loss, "K": k, "B": b, "M": m, "D": args.dim, "repeats": repeats,
                                      "abs_diff_max": diff, "skipped": skipped}
            fns = {name: (lambda f=fn: step(f, views)) for name, fn in impls.items() if name not in SLOW}
            fns["matmul"] = matmul_fn(m, args.dim, device, args.seed)
            order = list(fns) if len(rows) % 2 == 0 else list(reversed(fns))  # spread the machine's noise
            timed = median_ms({n: fns[n] for n in order}, device, repeats, args.warmup)
            for name in SLOW & impls.keys():  # seconds per call: timed apart, with fewer repeats
                timed.update(median_ms({name: lambda f=impls[name]: step(f, views)}, device, min(repeats, 3), 0))
            for name, (med, times) in timed.items():
                row[f"{name}_ms"] = med
                row[f"{name}_times_ms"] = [round(t, 3) for t in times]
            row["matmul_gflops"] = 6 * m * m * args.dim / (row["matmul_ms"] / 1e3) / 1e9
            row["ours_over_matmul"] = row["ours_ms"] / row["matmul_ms"]
            row["ours_over_lightly"] = _ratio(row["ours_ms"], row.get("lightly_ms"))
            row["ours_over_reference"] = row["ours_ms"] / row["reference_ms"]
            if not args.no_memory:
                for name in ("ours", "reference"):
                    peak, how = peak_memory(loss, name, b, args, device, impls[name], views)
                    row[f"{name}_peak_mib"] = mib(peak)
                    row["memory_measure"] = how
                row["mem_ours_over_ref"] = _ratio(row.get("ours_peak_mib"), row.get("reference_peak_mib"))
            row["mxm_float32_mib"] = m * m * 4 / 2**20
            rows.append(row)
            del views, impls, fns
            gc.collect()
            print(f"  {loss} B={b}: done in {time.perf_counter() - t0:.0f} s "
                  f"(ours {row['ours_ms']:.1f} ms, matmul {row['matmul_ms']:.1f} ms)", flush=True)

    hdr = (f"{'loss':>10} {'K':>2} {'B':>5} {'M':>6} {'ours ms':>9} {'matmul ms':>10} {'ours/mm':>8} "
           f"{'ref ms':>9} {'lightly ms':>10} {'ours/lightly':>12} {'pml ms':>9} {'ours MiB':>9} {'ref MiB':>9} "
           f"{'mem ours/ref':>12} {'M×M MiB':>8} {'|Δloss|':>8}")
    print()
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        print(f"{r['loss']:>10} {r['K']:>2} {r['B']:>5} {r['M']:>6} {r['ours_ms']:>9.1f} {r['matmul_ms']:>10.1f} "
              f"{r['ours_over_matmul']:>8.2f} {r['reference_ms']:>9.1f} {fmt(r.get('lightly_ms')):>10} "
              f"{fmt(r.get('ours_over_lightly'), '.2f'):>12} {fmt(r.get('pml_ms')):>9} "
              f"{fmt(r.get('ours_peak_mib')):>9} {fmt(r.get('reference_peak_mib')):>9} "
              f"{fmt(r.get('mem_ours_over_ref'), '.2f'):>12} {r['mxm_float32_mib']:>8.1f} {r['abs_diff_max']:>8.1e}")
    print()
    print("ms: median forward+backward; matmul: the loss's three products alone (target ours/mm ≤ 1.5);")
    print("ours/lightly < 1: contrastkit faster; lightly has no multi-view loss.")
    for r in rows:
        for name, reason in r["skipped"].items():
            print(f"  {r['loss']} B={r['B']}: {name} skipped — {reason}")
    if rows and not args.no_memory:
        print(f"memory: {rows[0].get('memory_measure')} during one forward+backward "
              f"({'accelerator allocator' if device.type != 'cpu' else 'process resident set, fresh subprocess each'})")
    for r in rows:
        print(f"  {r['loss']} B={r['B']}: the three products ran at {r['matmul_gflops']:.1f} GFLOP/s")
    if args.json:
        emit_json(args.json, {"bench": "losses", "device": str(device), "machine": {**machine(), "mm_gflops": gflops},
                           "anchors": {"lightly": anchor_version("lightly"),
                                       "pytorch-metric-learning": anchor_version("pytorch-metric-learning"),
                                       "not_used": why},
                           "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
