"""Pretrain → evaluate (with the random-init baseline) on UCR/UEA sets through the CLI; print a table.

    python bench/ucr_table.py GunPoint ItalyPowerDemand ArrowHead BasicMotions [--loss hierarchical]

Every figure is produced by the README's commands (`contrastkit pretrain`,
`contrastkit evaluate --baseline --json`) with the default recipe unless
extra pretrain flags are given; times are wall-clock seconds of the pretrain
command on this machine.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{done.stderr}")
    return done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("datasets", nargs="+")
    ap.add_argument("--seeds", default="0,1,2")
    args, extra = ap.parse_known_args()
    exe = shutil.which("contrastkit") or sys.exit("contrastkit is not installed")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for ds in args.datasets:
            out = Path(tmp) / ds
            tic = time.perf_counter()
            run([exe, "pretrain", "timeseries", "--data", ds, "--out", str(out), "--no-progress", *extra])
            seconds = time.perf_counter() - tic
            res = json.loads(run([exe, "evaluate", str(out), "--baseline", "--json", "--seeds", args.seeds,
                                  "-e", "svm", "-e", "linear", "-e", "knn"]).stdout)
            m = res["metrics"]
            card = json.loads((out / "run.json").read_text())
            fmt = lambda k: f"{m[k]:.4f} ± {m[k + '_std']:.4f}"  # noqa: E731
            rows.append([ds, card["data"]["n_train"], fmt("svm.accuracy"), fmt("linear.accuracy"),
                         fmt("knn.accuracy"), fmt("random_init.svm.accuracy"), fmt("random_init.linear.accuracy"),
                         f"{seconds:.0f}"])
            print(" | ".join(map(str, rows[-1])), file=sys.stderr)
    head = ["data set", "train items", "svm acc", "linear acc", "knn acc", "random-init svm", "random-init linear",
            "pretrain s"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(map(str, r)) + " |")


if __name__ == "__main__":
    main()
