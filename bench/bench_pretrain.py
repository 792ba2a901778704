"""Time-series pretraining throughput: contrastkit's trainer against a plain PyTorch loop.

Two variants over the same data, views, encoder, head, loss and epochs, each
run in its own subprocess (so that peaks and one-time costs are separate):

* ``contrastkit``: the real code path — the config from
  ``contrastkit.core.config.resolve`` with the time-series plugin's DEFAULTS
  (TS2Vec's dilated CNN, contextual crops + scaling/jitter/timestamp masking,
  InfoNCE, batch size 8, GunPoint), then ``contrastkit.core.training.pretrain``
  into a temporary run directory with ``progress=False``.  Throughput is the
  per-epoch ``samples_per_s`` that the trainer writes to ``metrics.jsonl``.
* ``plain``: a hand-written loop — the same components built from the same
  config (the same encoder/head/loss classes and ViewGenerator, built through
  contrastkit's registry), the same prepared training split, a plain
  ``DataLoader(shuffle=True, drop_last=True)``, plain ``torch.optim.Adam``, no
  Fabric, no LR schedule, no checkpoints, no diagnostics, no per-step
  ``.item()``.  Throughput is measured exactly like the trainer does (samples
  seen / wall time of the epoch's loop).

Reported per variant (median over ``--repeats`` subprocesses):

* ``steady samples/s``: median over epochs 2.. of samples_per_s (epoch 1
  carries one-time warm-up costs and is reported apart);
* ``epoch-1 samples/s``;
* ``wall s``: the whole measured call — for contrastkit the ``pretrain()``
  call (Fabric set-up, reading data, diagnostics, checkpoints, training), for
  plain the same data reading + model building + training loop;
* peak memory of the measured call: on CPU the rise of the process's peak
  resident set size (VmHWM above VmRSS after resetting VmHWM through
  /proc/self/clear_refs just before the call; imports excluded; with glibc's
  default settings, so memory that the allocator keeps after a free counts),
  and the process's absolute VmHWM (imports included); on an accelerator,
  also ``max_memory_allocated`` over the call.

Both variants draw the views with the trainer's per-step generator seeds, so
they crop the same lengths and do the same arithmetic; the losses still differ
(the trainer uses AdamW, a cosine LR schedule and Fabric's seeding).

Usage::

    python bench/bench_pretrain.py                      # 3 epochs, 3 repeats, device auto
    python bench/bench_pretrain.py --epochs 5 --repeats 5 --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from _common import (emit_json, acc_peak_since, acc_reset_peak, fmt, machine, mib, pick_device, rss_peak_kib,
                     rss_reset_peak, set_threads, sync)

PLUGIN = "timeseries"
VARIANTS = ("contrastkit", "plain")


def recipe(host, epochs: int, device: torch.device, data: str | None, seed: int, batch_size: int | None) -> dict:
    """The time-series default recipe, resolved like the CLI does."""
    from contrastkit.core.config import resolve
    from contrastkit.plugins.timeseries.modality import DEFAULTS

    overrides = {"epochs": epochs, "seed": seed, "batch_size": batch_size,
                 # on an accelerator, Fabric's "auto" picks the one torch reports, as pick_device does
                 "accelerator": "cpu" if device.type == "cpu" else "auto"}
    cfg = resolve(DEFAULTS, None, overrides)
    cfg["plugin"] = PLUGIN
    cfg["data"] = data or host.modality(PLUGIN).default_data
    return cfg


# ----------------------------------------------------------------------------------- children

def run_contrastkit(host, cfg: dict, device: torch.device) -> dict:
    from contrastkit.core.training import pretrain  # imported by child() before the measured call

    with tempfile.TemporaryDirectory(prefix="ck-bench-") as tmp:
        out = Path(tmp) / "run"
        t0 = time.perf_counter()
        summary = pretrain(host, cfg, out, progress=False)
        wall = time.perf_counter() - t0
        records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return {
        "wall_s": wall,
        "epoch_seconds": [r["seconds"] for r in records],
        "samples_per_s": [r["samples_per_s"] for r in records],
        "final_loss": records[-1]["loss"],
        "n_train": summary["data"]["n_train"],
        "batch_size": cfg["batch_size"],
        "trainer_device": summary.get("device"),  # where Fabric put the model
    }


def run_plain(host, cfg: dict, device: torch.device) -> dict:
    """A plain PyTorch loop over the same prepared data with the same components."""
    # imported by child() before the measured call
    from contrastkit.core.components import build_encoder, build_loss, build_views
    from contrastkit.core.data import TRAIN
    from contrastkit.core.heads import build_head
    from contrastkit.core.sources import read_source
    from contrastkit.core.training import mix_seed
    from contrastkit.core.views import make_generator

    t0 = time.perf_counter()
    modality = host.modality(PLUGIN)
    train = read_source(host.registry, PLUGIN, cfg["data"], cfg["data_options"]).with_split().part(TRAIN)
    train, _ = modality.prepare(train, None, cfg["data_options"])
    torch.manual_seed(cfg["seed"])
    encoder = build_encoder(host.registry, PLUGIN, cfg, train.meta).to(device)
    head = build_head(cfg["head"], encoder.out_dim).to(device)
    loss_fn = build_loss(host.registry, PLUGIN, cfg).to(device)
    views = build_views(host.registry, PLUGIN, cfg)
    params = list(encoder.parameters()) + list(head.parameters()) + list(loss_fn.parameters())
    optimizer = torch.optim.Adam(params, lr=cfg["lr"])
    batch_size = min(cfg["batch_size"], len(train.items))
    loader = DataLoader(list(train.items), batch_size=batch_size, shuffle=True, drop_last=True,
                        collate_fn=modality.collate)
    epoch_seconds, rates, last_loss = [], [], float("nan")
    encoder.train()
    head.train()
    for epoch in range(cfg["epochs"]):
        tic, seen = time.perf_counter(), 0
        total = torch.zeros((), device=device)
        for step, batch in enumerate(loader):
            batch = batch.to(device, non_blocking=True)
            # the trainer's per-step view seeds: the same crops (hence the same compute) in both variants
            vs = views(batch, make_generator(mix_seed(cfg["seed"], epoch, step, 0), device))
            if len({tuple(v.shape) for v in vs}) == 1:  # one encoder pass for all views, as the trainer does
                hs = encoder(torch.cat(vs, dim=0)).split(batch.shape[0], dim=0)
            else:
                hs = [encoder(v) for v in vs]
            loss = loss_fn([head(h) for h in hs]).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach()
            seen += batch.shape[0]
        sync(device)
        seconds = time.perf_counter() - tic
        epoch_seconds.append(round(seconds, 4))
        rates.append(round(seen / max(seconds, 1e-9), 2))
        last_loss = float(total) / max(1, len(loader))
    return {"wall_s": time.perf_counter() - t0, "epoch_seconds": epoch_seconds, "samples_per_s": rates,
            "final_loss": last_loss, "n_train": len(train.items), "batch_size": batch_size}


def child(args) -> None:
    device = pick_device(args.device)
    # everything each variant imports, before the measured call
    from contrastkit.core.plugins import get_host

    import contrastkit.core.components  # noqa: F401
    import contrastkit.core.sources  # noqa: F401
    import contrastkit.core.training  # noqa: F401

    if args.child == "contrastkit":
        import lightning.fabric  # noqa: F401
    # torch imports torch._dynamo (~1 s) when the first optimizer is made; lightning's import does it too
    torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])
    host = get_host()
    cfg = recipe(host, args.epochs, device, args.data, args.seed, args.batch_size)
    run = run_contrastkit if args.child == "contrastkit" else run_plain
    rss0, reset = rss_reset_peak()
    base = acc_reset_peak(device) if device.type != "cpu" else None
    result = run(host, cfg, device)
    peak = rss_peak_kib()
    result.update({
        "variant": args.child,
        "device": str(device),
        "rss_rise_bytes": None if peak is None or rss0 is None else (peak - rss0) * 1024,
        "hwm_reset": reset,
        "vmhwm_bytes": None if peak is None else peak * 1024,
        "acc_peak_bytes": acc_peak_since(device, base) if base is not None else None,
    })
    # a run with a reset that failed reports the peak since start: only the absolute figure then
    if not reset:
        result["rss_rise_bytes"] = None
    print("BENCH-RESULT " + json.dumps(result))


def spawn(variant: str, args) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", variant, "--epochs", str(args.epochs),
           "--device", args.device, "--seed", str(args.seed)]
    for flag, value in (("--data", args.data), ("--batch-size", args.batch_size), ("--threads", args.threads)):
        if value is not None:
            cmd += [flag, str(value)]
    # the default allocator settings: forcing glibc to unmap freed blocks (as bench_infonce's memory
    # children do) slows training ~2.5x here, and the throughput is measured in the same process
    res = subprocess.run(cmd, capture_output=True, text=True)
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("BENCH-RESULT ")]
    if res.returncode != 0 or not lines:
        sys.stderr.write(res.stdout + res.stderr)
        raise SystemExit(f"the {variant} run failed (exit {res.returncode}); its output is above.")
    return json.loads(lines[-1][len("BENCH-RESULT "):])


# ----------------------------------------------------------------------------------- parent

def summarise(runs: list[dict]) -> dict:
    def med(values):
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None

    steady = [statistics.median(r["samples_per_s"][1:]) if len(r["samples_per_s"]) > 1 else r["samples_per_s"][0]
              for r in runs]
    return {
        "steady_samples_per_s": med(steady),
        "epoch1_samples_per_s": med([r["samples_per_s"][0] for r in runs]),
        "wall_s": med([r["wall_s"] for r in runs]),
        "train_s": med([sum(r["epoch_seconds"]) for r in runs]),
        "fixed_s": med([r["wall_s"] - sum(r["epoch_seconds"]) for r in runs]),
        "rss_rise_mib": mib(med([r["rss_rise_bytes"] for r in runs])),
        "vmhwm_mib": mib(med([r["vmhwm_bytes"] for r in runs])),
        "acc_peak_mib": mib(med([r["acc_peak_bytes"] for r in runs])),
        "final_loss": med([r["final_loss"] for r in runs]),
        "per_repeat_steady_samples_per_s": steady,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto", help="auto (the accelerator if any, else cpu), cpu, or a torch device")
    p.add_argument("--epochs", type=int, default=3, help="epochs per run (≥ 2: epoch 1 is reported apart)")
    p.add_argument("--repeats", type=int, default=3, help="subprocess runs per variant")
    p.add_argument("--data", default=None, help="data set or file (default: the plugin's default, GunPoint)")
    p.add_argument("--batch-size", type=int, default=None, help="override the recipe's batch size")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads; default 1 on the CPU (steady on a shared machine, where the default "
                        "one thread per core can stall in OpenMP barriers), torch's own choice on an accelerator; "
                        "0: torch's own choice")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON ('-' for stdout)")
    p.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    set_threads(args)
    if args.child:
        child(args)
        return 0

    device = pick_device(args.device)
    print(f"time-series pretraining, default recipe, {args.epochs} epochs, {args.repeats} repeats, "
          f"device={device}, torch {torch.__version__}, threads={args.threads or torch.get_num_threads()}", flush=True)
    runs: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    for i in range(args.repeats):
        order = VARIANTS if i % 2 == 0 else VARIANTS[::-1]  # alternate to spread the machine's noise
        for variant in order:
            r = spawn(variant, args)
            runs[variant].append(r)
            print(f"  repeat {i + 1} {variant:>11}: samples/s per epoch {r['samples_per_s']}, "
                  f"wall {r['wall_s']:.1f} s", flush=True)
    summary = {v: summarise(runs[v]) for v in VARIANTS}
    ck, pl = summary["contrastkit"], summary["plain"]
    first = runs["contrastkit"][0]
    if first.get("trainer_device") and torch.device(first["trainer_device"]).type != device.type:
        print(f"warning: the trainer ran on {first['trainer_device']}, the plain loop on {device}.")
    print(f"\n{first['n_train']} training series, batch size {first['batch_size']}, "
          f"{first['n_train'] // first['batch_size']} steps per epoch\n")
    rows = [
        ("steady samples/s (epochs 2..)", "steady_samples_per_s", ".1f", "plain/ck"),
        ("epoch-1 samples/s", "epoch1_samples_per_s", ".1f", "plain/ck"),
        ("training loop s (all epochs)", "train_s", ".2f", "ck/plain"),
        ("wall s (whole call)", "wall_s", ".2f", "ck/plain"),
        ("outside the loop s (wall - loop)", "fixed_s", ".2f", None),
        ("peak RSS rise MiB (call)", "rss_rise_mib", ".1f", "ck/plain"),
        ("peak RSS MiB (process)", "vmhwm_mib", ".1f", "ck/plain"),
        ("accelerator peak MiB (call)", "acc_peak_mib", ".1f", "ck/plain"),
        ("final-epoch mean loss", "final_loss", ".3f", None),
    ]
    hdr = f"{'median over repeats':<32} {'contrastkit':>12} {'plain':>12} {'ratio':>14}"
    print(hdr)
    print("-" * len(hdr))
    for label, key, spec, how in rows:
        a, b = ck[key], pl[key]
        if a is None and b is None:
            continue
        ratio = ""
        if how and a and b:
            ratio = f"{(b / a if how == 'plain/ck' else a / b):.2f} ({how})"
        print(f"{label:<32} {fmt(a, spec):>12} {fmt(b, spec):>12} {ratio:>14}")
    print("\nratios > 1: contrastkit is slower / uses more memory than the plain loop.")
    if args.json:
        emit_json(args.json, {"bench": "pretrain", "device": str(device), "epochs": args.epochs,
                           "repeats": args.repeats, "machine": machine(), "summary": summary, "runs": runs})
    return 0


if __name__ == "__main__":
    sys.exit(main())
