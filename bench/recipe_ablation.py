"""Recipe ablations: one pretrained-row figure per (variant, data set, seed), for choosing a default recipe.

    python bench/recipe_ablation.py --plugin timeseries --variants default ts2vec --datasets GunPoint OSULeaf \
        --seeds 0,1,2 --evaluator svm --out ablation.jsonl

A variant is a TOML snippet (the ``VARIANTS`` table below, or ``name=path.toml``) passed to
``contrastkit pretrain --config``; every other setting is the plugin's default recipe.  Each run is
``contrastkit pretrain PLUGIN --data DS --seed S --config VARIANT`` then ``contrastkit evaluate RUN
--evaluator E --json``; results are appended to ``--out`` (JSON lines, one per run, with the commands)
so that an interrupted ablation keeps what it measured and a rerun skips what is there.  The summary
table gives the mean ± std over pretraining seeds of each evaluator's primary metric, per data set and
on the mean over data sets.  Runs go one after another: two trainings sharing two cores give nobody a
figure.  The baselines (random init, fitted normalisation, the non-learned method) come from
``bench/quality_table.py``; this script only compares recipes with each other.
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

import numpy as np

#: Named recipe variants (TOML text, layered over the plugin's default recipe).
VARIANTS: dict[str, str] = {
    "default": "",
    # TS2Vec as published: hierarchical loss over the shared segment of two contextual crops, timestamp masking,
    # no other augmentation, no projection head.
    "ts2vec": """
[loss]
name = "hierarchical"
[[augmentations]]
name = "timestamp_mask"
ratio = 0.5
""",
    # TS2Vec as its code runs: the timestamp mask in latent space (after the input projection, training
    # only), no input augmentation, the exported encoder the running average of the weights (SWA), 200 steps.
    "ts2vec_code": """
augmentations = []
weight_average = "swa"
max_steps = 200
[loss]
name = "hierarchical"
[encoder]
mask_ratio = 0.5
""",
    # the same, keeping the default's 600-step budget
    "ts2vec_code600": """
augmentations = []
weight_average = "swa"
[loss]
name = "hierarchical"
[encoder]
mask_ratio = 0.5
""",
    # the default recipe (instance InfoNCE) with SWA and the latent mask instead of the input one
    "infonce_swa": """
weight_average = "swa"
[[augmentations]]
name = "scaling"
sigma = 0.1
[[augmentations]]
name = "jitter"
sigma = 0.03
[encoder]
mask_ratio = 0.5
""",
}


def _run(cmd: list[str], env: dict) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr.strip()[-3000:]}")
    return done


def primary(result: dict) -> dict[str, float]:
    """Each evaluator's primary metric (its first in the table), mean over evaluation seeds."""
    out: dict[str, float] = {}
    for entry in result.get("table", []):
        cell = entry["rows"].get("pretrained") or {}
        if entry["evaluator"] not in {k.split(".")[0] for k in out} and cell.get("mean") is not None:
            out[f"{entry['evaluator']}.{entry['metric']}"] = cell["mean"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plugin", default="timeseries")
    ap.add_argument("--variants", nargs="+", default=["default"], help="names from VARIANTS or name=path.toml")
    ap.add_argument("--datasets", nargs="+", required=True)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--evaluator", action="append", default=None, help="evaluator(s) to run (repeatable)")
    ap.add_argument("--pretrain-args", default="", help="extra pretrain flags for every run")
    ap.add_argument("--out", type=Path, default=Path("ablation.jsonl"))
    args = ap.parse_args()

    exe = shutil.which("contrastkit") or "contrastkit"
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    done = {}
    if args.out.exists():
        for line in args.out.read_text().splitlines():
            r = json.loads(line)
            done[(r["variant"], r["data"], r["seed"])] = r
    tmp = Path(tempfile.mkdtemp(prefix="ablation-"))
    try:
        for variant in args.variants:
            name, _, path = variant.partition("=")
            text = Path(path).read_text() if path else VARIANTS[name]
            cfg = tmp / f"{name}.toml"
            cfg.write_text(text)
            for ds in args.datasets:
                for seed in seeds:
                    if (name, ds, seed) in done:
                        continue
                    run = tmp / f"{name}-{ds}-{seed}"
                    pre = [exe, "pretrain", args.plugin, "--data", ds, "--out", str(run), "--seed", str(seed),
                           "--no-progress", "--config", str(cfg), *args.pretrain_args.split()]
                    tic = time.perf_counter()
                    _run(pre, env)
                    seconds = time.perf_counter() - tic
                    ev = [exe, "evaluate", str(run), "--json", "--seeds", "0"]
                    for e in args.evaluator or []:
                        ev += ["--evaluator", e]
                    res = json.loads(_run(ev, env).stdout)
                    rec = {"variant": name, "data": ds, "seed": seed, "seconds": round(seconds, 1),
                           "metrics": primary(res), "toml": text, "commands": [" ".join(pre[1:]), " ".join(ev[1:])]}
                    done[(name, ds, seed)] = rec
                    with args.out.open("a") as fh:
                        fh.write(json.dumps(rec) + "\n")
                    print(f"{name:>16} {ds:>22} seed {seed}: {rec['metrics']} ({seconds:.0f} s)", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    summarise(done, args.variants, args.datasets)


def summarise(done: dict, variants: list[str], datasets: list[str]) -> None:
    names = [v.partition("=")[0] for v in variants]
    metrics = sorted({m for r in done.values() for m in r["metrics"]})
    for metric in metrics:
        print(f"\n{metric}: mean ± std over pretraining seeds")
        print("| data | " + " | ".join(names) + " |")
        print("|---|" + "---|" * len(names))
        means = {n: [] for n in names}
        for ds in datasets:
            cells = []
            for n in names:
                vals = [r["metrics"].get(metric) for (v, d, _), r in done.items() if v == n and d == ds]
                vals = [v for v in vals if v is not None]
                if vals:
                    means[n].append(np.mean(vals))
                    cells.append(f"{np.mean(vals):.3f} ± {np.std(vals):.3f} (n={len(vals)})")
                else:
                    cells.append("—")
            print(f"| {ds} | " + " | ".join(cells) + " |")
        print("| **mean** | " + " | ".join(f"{np.mean(means[n]):.3f}" if len(means[n]) == len(datasets) else "—"
                                          for n in names) + " |")


if __name__ == "__main__":
    main()
