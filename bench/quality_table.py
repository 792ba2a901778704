"""Does pretraining earn its keep?  pretrain → evaluate --baseline on every shipped data set, one table per domain.

    python bench/quality_table.py                          # every domain, 3 pretraining seeds
    python bench/quality_table.py --domains timeseries graphs --seeds 0,1,2,3,4
    python bench/quality_table.py --domains timeseries --datasets GunPoint OSULeaf --fractions 0.1,1
    python bench/quality_table.py --quick                  # 1 seed, few epochs: a smoke run, not a result

Every figure comes from the README's commands: `contrastkit pretrain PLUGIN --data NAME --seed S`, then
`contrastkit evaluate RUN --baseline --label-fractions ... --json` with the default recipe (no per-set
tuning).  For each data set and metric the table shows, per row of the comparison (the pretrained
encoder; a random encoder of the same shape; the same with fitted normalisation statistics; the
domain's non-learned method(s)), the mean ± std over *pretraining* seeds of the evaluation-seed mean
— so a figure reproduces on another machine within its spread.  A mark after a baseline's figure says
how the pretrained encoder compares with it: ``▲`` above by more than the two spreads together, ``▼``
below by more than that, ``≈`` within.  A second table per domain gives the label-efficiency curve of
the first evaluator's primary metric.  ``--out FILE.json`` keeps everything, with the commands.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

#: (plugin, data set, extra pretrain flags, extra evaluate flags); the default recipes throughout.
SUITES: dict[str, list[tuple[str, list[str], list[str]]]] = {
    "timeseries": [(ds, [], []) for ds in (
        "GunPoint", "ItalyPowerDemand", "ArrowHead", "BasicMotions", "JapaneseVowels", "OSULeaf",
        "Covid3Month_disc", "PickupGestureWiimoteZ", "ACSF1")],
    "events": [("CDNOW", [], []), ("synthetic_transactions", [], [])],
    "graphs": [("MUTAG", [], []), ("Cuneiform", [], []), ("sbm", [], [])],
    "points": [("synthetic_shapes", [], [])],
    "volumes": [("mni152-tissue", [], [])],
}
QUICK_EPOCHS = {"timeseries": 5, "events": 2, "graphs": 5, "points": 2, "volumes": 1}


def _run(cmd: list[str], log) -> subprocess.CompletedProcess:
    tic = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    log(f"  {time.perf_counter() - tic:6.1f} s  {' '.join(cmd[1:])}")
    if done.returncode != 0:
        raise RuntimeError(f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr.strip()[-2000:]}")
    return done


def _mark(p: list[float], b: list[float]) -> str:
    if len(p) < 2 or len(b) < 2:  # one pretraining seed measures no spread: no verdict
        return ""
    pm, ps, bm, bs = np.mean(p), np.std(p), np.mean(b), np.std(b)
    if abs(pm - bm) <= ps + bs:
        return " ≈"
    return " ▲" if pm > bm else " ▼"


def _fmt(values: list[float], eval_std: list[float] | None = None) -> str:
    """mean ± std over pretraining seeds; with one pretraining seed, ± the evaluation seeds' std (marked ᵉ)."""
    values = [v for v in values if v is not None]
    if not values:
        return "—"
    if len(values) == 1 and eval_std:
        return f"{values[0]:.3f} ± {eval_std[0] or 0.0:.3f}ᵉ"
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def collect(plugin: str, ds: str, seeds: list[int], fractions: str, pre_extra: list[str], eval_extra: list[str],
            exe: str, tmp: Path, log, baseline: bool = True) -> dict:
    """Pretrain with each seed and evaluate; returns per-seed results and the commands."""
    runs = []
    for seed in seeds:
        out = tmp / f"{plugin}-{ds}-{seed}"
        pre = [exe, "pretrain", plugin, "--data", ds, "--out", str(out), "--seed", str(seed), "--no-progress",
               *pre_extra]
        tic = time.perf_counter()
        _run(pre, log)
        seconds = time.perf_counter() - tic
        ev = [exe, "evaluate", str(out), *(["--baseline"] if baseline else []), "--json", *(["--label-fractions", fractions] if fractions
                                                                    else []), *eval_extra]
        res = json.loads(_run(ev, log).stdout)
        runs.append({"seed": seed, "pretrain_seconds": round(seconds, 1), "result": res,
                     "commands": [" ".join(["contrastkit", *pre[1:]]), " ".join(["contrastkit", *ev[1:]])]})
        shutil.rmtree(out, ignore_errors=True)
    return {"plugin": plugin, "data": ds, "runs": runs}


def summarise(entry: dict) -> tuple[list[str], list[list[str]], list[list[str]]]:
    """(row names, table lines, curve lines) of one data set."""
    first = entry["runs"][0]["result"]
    rows = [r["name"] for r in first["rows"]]
    lines = []
    for t in first["table"]:
        key = (t["evaluator"], t["metric"])
        per_row = {r: [] for r in rows}
        per_std = {r: [] for r in rows}
        for run in entry["runs"]:
            e = next((x for x in run["result"]["table"] if (x["evaluator"], x["metric"]) == key), None)
            for r in rows:
                cell = (e or {}).get("rows", {}).get(r)
                if cell is not None and cell.get("mean") is not None:
                    per_row[r].append(cell["mean"])
                    per_std[r].append(cell.get("std"))
        p = per_row["pretrained"]
        cells = [_fmt(p, per_std["pretrained"])] + [_fmt(per_row[r], per_std[r]) + _mark(p, per_row[r])
                                                    for r in rows[1:]]
        lines.append([entry["data"], f"{t['evaluator']}.{t['metric']}", *cells])
    curves = []
    le = first.get("label_efficiency")
    if le:
        for name, metric in le["primary_metric"].items():
            if not metric:
                continue
            for i, f in enumerate(le["fractions"]):
                cells, n = [], None
                for r in rows:
                    vals, stds = [], []
                    for run in entry["runs"]:
                        pts = run["result"]["label_efficiency"]["curves"].get(r, {}).get(name, {}).get(metric, [])
                        if i < len(pts) and pts[i]["mean"] is not None:
                            vals.append(pts[i]["mean"])
                            stds.append(pts[i].get("std"))
                            n = pts[i].get("n_labels")
                    cells.append(_fmt(vals, stds))
                curves.append([entry["data"], f"{name}.{metric}", f"{f:g}", str(n), *cells])
            break  # the first evaluator's curve
    return rows, lines, curves


def markdown(head: list[str], lines: list[list[str]]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(line) + " |" for line in lines]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--domains", nargs="+", default=list(SUITES), choices=list(SUITES))
    ap.add_argument("--datasets", nargs="+", help="only these data sets (of the chosen domains)")
    ap.add_argument("--seeds", default="0,1,2", help="pretraining seeds (default 0,1,2)")
    ap.add_argument("--fractions", default="0.05,0.1,0.25,1.0", help="label fractions ('' for none)")
    ap.add_argument("--quick", action="store_true", help="one seed and a few epochs: a smoke run, not a result")
    ap.add_argument("--pretrain-args", default="", help="extra pretrain flags for every run (an ablation), e.g. "
                    "\"--loss hierarchical\"; the table then is not the default recipe's")
    ap.add_argument("--no-baseline", action="store_true", help="only the pretrained row (faster ablations)")
    ap.add_argument("--out", type=Path, help="write every result and command to this JSON file")
    args = ap.parse_args()
    exe = shutil.which("contrastkit") or sys.exit("contrastkit is not installed (pip install -e .)")
    seeds = [0] if args.quick else [int(s) for s in args.seeds.split(",")]
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                         cwd=Path(__file__).parent).stdout.strip()
    report = {"date": dt.datetime.now().isoformat(timespec="seconds"), "commit": rev, "seeds": seeds,
              "pretrain_args": args.pretrain_args,
              "fractions": args.fractions, "quick": args.quick, "machine": platform.processor() or platform.machine(),
              "domains": {}}
    print(f"# contrastkit quality table — commit {rev}, pretraining seeds {seeds}"
          + (" — QUICK SMOKE RUN, not a result" if args.quick else "")
          + (f" — ablation: pretrain {args.pretrain_args}" if args.pretrain_args else ""))
    with tempfile.TemporaryDirectory() as tmp:
        for domain in args.domains:
            entries = []
            for ds, pre_extra, eval_extra in SUITES[domain]:
                if args.datasets and ds not in args.datasets:
                    continue
                extra = list(pre_extra) + (["--epochs", str(QUICK_EPOCHS[domain])] if args.quick else []) \
                    + args.pretrain_args.split()
                log(f"{domain}: {ds}")
                try:
                    entries.append(collect(domain, ds, seeds, args.fractions, extra, eval_extra, exe, Path(tmp), log,
                                           baseline=not args.no_baseline))
                except RuntimeError as exc:
                    log(str(exc))
                    entries.append({"plugin": domain, "data": ds, "error": str(exc).splitlines()[0]})
            report["domains"][domain] = entries
            done = [e for e in entries if "runs" in e]
            if not done:
                continue
            rows, _, _ = summarise(done[0])
            protocols = sorted({f"{t['evaluator']}: {t['protocol']}" for e in done
                                for t in e["runs"][0]["result"]["table"]})
            print(f"\n## {domain}\n\nprotocols: {'; '.join(protocols)}; evaluation seeds "
                  f"{done[0]['runs'][0]['result']['evaluations'][0]['seeds']}; mean ± std over pretraining seeds "
                  f"{seeds}\n")
            table, curves = [], []
            for e in done:
                r, lines, cur = summarise(e)
                if r != rows:  # another set of rows (e.g. a baseline that needs labels): own header
                    print(markdown(["data set", "metric", *r], lines) + "\n")
                    continue
                table += lines
                curves += cur
            print(markdown(["data set", "metric", *rows], table))
            if curves:
                print(f"\nlabel efficiency (fraction of the training labels; stratified draws, the same for every "
                      f"row):\n")
                print(markdown(["data set", "metric", "fraction", "labels", *rows], curves))
            for e in entries:
                if "error" in e:
                    print(f"\n{e['data']}: FAILED — {e['error']}")
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))
        log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
