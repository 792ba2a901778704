"""Every registered loss through the CLI on GunPoint: does it train, does it collapse, what does the SVM probe say?

For each loss name in ``contrastkit.core.losses.LOSSES`` this runs, each in
its own process, exactly what a user would type::

    contrastkit pretrain timeseries --loss NAME --out RUN --epochs E --no-progress
    contrastkit evaluate RUN -e svm --json --seeds 0

with the time-series default recipe (GunPoint, TS2Vec's dilated CNN,
contextual crops + scaling/jitter/timestamp masking, batch size 8) and the
loss's own default parameters (``--loss`` replaces the recipe's whole
``[loss]`` table).  Two losses need more than ``--loss``:

* ``mochi`` needs the momentum target and the negatives queue: it gets a
  config file with ``[momentum] enabled = true, queue_size = 256``;
* ``hierarchical`` is a dense loss (TS2Vec's): it works with the recipe's
  contextual crops as they are; it has no projection head, so its "z" is
  the encoder's output h.

From each run's ``run.json`` it reads the final training loss and the
diagnostics after training (effective rank and uniformity of the
projections z, effective rank of the representations h), and from the
evaluation the SVM probe's test accuracy.  A run is flagged ``COLLAPSED`` when
z's effective rank is below 2 or its uniformity above −0.1 (every embedding
nearly the same), ``FAILED`` when a command exits non-zero.  It prints a
markdown table; ``--baseline`` adds the SVM accuracy of a randomly
initialised encoder of the same shape (GunPoint is easy: the probe on a
random dilated CNN already scores high, so accuracy alone separates little
here; the collapse diagnostics are the point).

torch runs with one thread per process by default (``OMP_NUM_THREADS=1``;
``--threads``): on a shared two-core machine the default of one thread per
core stalls in OpenMP barriers (20 epochs: 62 s with 2 threads, 8.5 s with 1).

Usage::

    python bench/losses_gunpoint.py                       # all losses, 20 epochs, ~6 min on 2 cores
    python bench/losses_gunpoint.py --losses infonce dcl --epochs 5 --baseline
    python bench/losses_gunpoint.py --json results.json --keep runs/   # keep the run directories
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import emit_json

#: extra config for losses that do not train with the recipe alone
EXTRA_CONFIG = {
    "mochi": "[momentum]\nenabled = true\nqueue_size = 256\n",
}


def contrastkit_cmd() -> list[str]:
    exe = shutil.which("contrastkit")
    return [exe] if exe else [sys.executable, "-m", "contrastkit.cli.main"]


def run_cmd(cmd: list[str], env: dict[str, str]) -> tuple[int, str, str, float]:
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    return res.returncode, res.stdout, res.stderr, time.perf_counter() - t0


def last_lines(text: str, n: int = 3) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-n:])


def one_loss(name: str, args, workdir: Path, env: dict[str, str]) -> dict:
    run = workdir / name
    row: dict = {"loss": name}
    cmd = contrastkit_cmd() + ["pretrain", "timeseries", "--loss", name, "--out", str(run),
                               "--epochs", str(args.epochs), "--no-progress", "--seed", str(args.seed)]
    if args.data:
        cmd += ["--data", args.data]
    if name in EXTRA_CONFIG:
        cfg = workdir / f"{name}.toml"
        cfg.write_text(EXTRA_CONFIG[name])
        cmd += ["--config", str(cfg)]
        row["config"] = EXTRA_CONFIG[name].strip().replace("\n", "; ")
    rc, out, err, secs = run_cmd(cmd, env)
    row["pretrain_seconds"] = secs
    if rc != 0:
        row["status"] = "FAILED"
        row["error"] = last_lines(err or out)
        return row
    card = json.loads((run / "run.json").read_text())
    diag = card.get("diagnostics", {})
    row.update({
        "final_loss": card.get("final_loss"),
        "train_seconds": card.get("train_seconds"),
        "z_effective_rank": diag.get("effective_rank"),
        "z_uniformity": diag.get("uniformity"),
        "z_alignment": diag.get("alignment"),
        "z_dim": diag.get("dim"),
        "h_effective_rank": diag.get("h_effective_rank"),
        "h_uniformity": diag.get("h_uniformity"),
        "warnings": [line for line in err.splitlines() if line.startswith(("warning", "note"))],
    })
    cmd = contrastkit_cmd() + ["evaluate", str(run), "-e", "svm", "--json", "--seeds", str(args.seed)]
    if args.baseline and args.baseline_done is False:
        cmd.append("--baseline")
    rc, out, err, secs = run_cmd(cmd, env)
    row["evaluate_seconds"] = secs
    if rc != 0:
        row["status"] = "FAILED"
        row["error"] = "evaluate: " + last_lines(err or out)
        return row
    metrics = json.loads(out)["metrics"]
    row["svm_accuracy"] = metrics.get("svm.accuracy")
    if "random_init.svm.accuracy" in metrics:
        args.baseline_done = True
        row["random_init_svm_accuracy"] = metrics["random_init.svm.accuracy"]
    collapsed = (row["z_effective_rank"] is not None and row["z_effective_rank"] < 2.0) or \
        (row["z_uniformity"] is not None and row["z_uniformity"] > -0.1)
    row["status"] = "COLLAPSED" if collapsed else "ok"
    return row


def _f(v, spec: str) -> str:
    return "–" if v is None else format(v, spec)


def markdown(rows: list[dict], baseline: float | None) -> str:
    out = ["| loss | final loss | z eff. rank | z uniformity | h eff. rank | SVM acc. | pretrain s | status |",
           "|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        out.append(f"| `{r['loss']}` | {_f(r.get('final_loss'), '.4f')} | {_f(r.get('z_effective_rank'), '.1f')} | "
                   f"{_f(r.get('z_uniformity'), '.3f')} | {_f(r.get('h_effective_rank'), '.1f')} | "
                   f"{_f(r.get('svm_accuracy'), '.3f')} | {_f(r.get('pretrain_seconds'), '.0f')} | "
                   f"{r['status']} |")
    if baseline is not None:
        out.append(f"| *(random init)* | | | | | {baseline:.3f} | | |")
    return "\n".join(out)


def main(argv=None) -> int:
    from contrastkit.core.losses import LOSSES

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--losses", nargs="+", default=list(LOSSES), help="loss names (default: every registered one)")
    p.add_argument("--epochs", type=int, default=20, help="epochs per run (the recipe's default is 60)")
    p.add_argument("--data", default=None, help="data set (default: the plugin's, GunPoint)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS for the runs; 0 leaves it unset")
    p.add_argument("--baseline", action="store_true", help="also evaluate a randomly initialised encoder (once)")
    p.add_argument("--keep", metavar="DIR", help="write the run directories here and keep them")
    p.add_argument("--json", metavar="PATH", help="also write the rows as JSON ('-' for stdout)")
    args = p.parse_args(argv)
    unknown = [n for n in args.losses if n not in LOSSES]
    if unknown:
        p.error(f"unknown loss(es) {', '.join(unknown)}; registered: {', '.join(LOSSES)}")
    args.baseline_done = False

    env = dict(os.environ)
    if args.threads > 0:
        env["OMP_NUM_THREADS"] = str(args.threads)
    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="losses-gunpoint-"))
    workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    t0 = time.perf_counter()
    try:
        for name in args.losses:
            row = one_loss(name, args, workdir, env)
            rows.append(row)
            print(f"{name:>24}: {row['status']:<9} loss {_f(row.get('final_loss'), '.4f')}  "
                  f"z rank {_f(row.get('z_effective_rank'), '.1f')}  unif {_f(row.get('z_uniformity'), '.3f')}  "
                  f"svm {_f(row.get('svm_accuracy'), '.3f')}  ({row['pretrain_seconds']:.0f} s)"
                  + (f"  {row['error']}" if "error" in row else ""), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    baseline = next((r["random_init_svm_accuracy"] for r in rows if "random_init_svm_accuracy" in r), None)
    print()
    print(f"{args.epochs} epochs per loss, seed {args.seed}, data {args.data or 'GunPoint (default)'}; "
          f"total {time.perf_counter() - t0:.0f} s")
    print(markdown(rows, baseline))
    for r in rows:
        for w in r.get("warnings", []):
            print(f"  {r['loss']}: {w}")
    if args.json:
        emit_json(args.json, {"epochs": args.epochs, "seed": args.seed, "data": args.data, "rows": rows,
                           "random_init_svm_accuracy": baseline})
    return 1 if any(r["status"] == "FAILED" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
