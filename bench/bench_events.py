"""Event sequences: reading + grouping, CoLES pretraining and embedding throughput (and, with
``--accuracy``, downstream accuracy), against plain polars and pytorch-lifestream (ptls) 0.6.0 on the
same generated data.

Three parts (four with ``--accuracy``, five with ``--out-of-core``), each printing figures and a ratio or
a difference against a baseline run in this script:

1. **Reading and grouping** ``--events`` generated transactions (default 10 M rows, amount +
   category code + datetime, rows shuffled) from parquet.  ``contrastkit``: the events plugin's
   reader (``EventsReader().read``: lazy scan, sort by (client, time) in polars, cut flat numpy
   arrays into per-client items; the file's sha256 fingerprint included).  ``polars``: plain
   ``scan_parquet → sort → group_by(maintain_order) → agg(list)``.  Each run in a fresh
   subprocess (median wall time over ``--repeats``; peak RSS = the child's ``VmHWM``,
   imports included).
2. **Pretraining throughput**: ``--clients`` clients (default 5,000 with 50–300 events each,
   ~877 k events: ptls's CoLES tutorial), GRU hidden 256, category embedding 16, K = 5 slices
   of 25–200 events, batch 64 clients, CoLES margin loss with 5 hard negatives, Adam 1e-3.
   ``contrastkit``: the plugin's collate, ``RandomSlices`` and ``GRUEncoder`` (packed, real
   events only) inside core's ``Pretrainer``.  ``ptls``: its own ``ColesDataset`` +
   ``SampleSlices`` + ``TrxEncoder`` + ``RnnSeqEncoder`` + ``CoLESModule.shared_step`` and
   ``ContrastiveLoss(HardNegativePairSelector)``, stepped by a plain loop (no Lightning
   trainer overhead, which favours ptls).  Clients/s and events/s (the clients' whole
   sequences per second, as an epoch counts them) over ``--steps`` steps after a warm-up, the
   two libraries interleaved, median over ``--repeats``.
3. **Embedding throughput**: every client's whole sequence through the frozen encoder.
   ``contrastkit``: the modality's ``embed`` (length-sorted batches of ~16 × 64 × median length
   events), in float32 and with the encoder option ``inference_matmul = "bfloat16"``
   (``contrastkit-bf16``: the hidden-state product in bfloat16, state and gates in float32;
   the minimum cosine similarity to the float32 embeddings is printed).  ``ptls``: ``collate_feature_dict`` batches of 64 in input order;
   ``ptls-bf16``: the same under ``torch.autocast("cpu", bfloat16)`` (its GRU's products in bfloat16),
   the like-for-like baseline of ``contrastkit-bf16``.

4. **Downstream accuracy** (``--accuracy``, off by default; ``--accuracy-only`` skips parts 1–3):
   ``--acc-clients`` generated clients (default 2,000) with their known class
   (:mod:`contrastkit.plugins.events.synthetic`), split 80/20 by a hash of the client id (core's
   ``hash_split``); vocabularies and scaling fitted on the training clients.  ptls's CoLES and ours,
   built as in part 2 (GRU ``--acc-hidden``, default 64, slices 5 × 25–200, batch 64, CoLES loss,
   Adam 1e-3), each trained for ``--acc-steps`` steps (default 300, ≈ 12 epochs) on the *same*
   batches of training clients; every client embedded (ours: the modality's ``embed``; ptls: its
   ``RnnSeqEncoder`` in eval mode); then the probes of the ``entity`` evaluator
   (``EntityProbe._fit_all``: HistGradientBoosting and standardised logistic regression, grids chosen
   by 3-fold CV on the training clients) fitted on each embedding and scored on the test clients,
   side by side with a random-init encoder of ours (same shape) and CoLES' aggregate features.
   Mean ± std over ``--acc-seeds`` (model init, batches and slices; default 0 1).  About 3 min at
   one thread with the defaults.

5. **Larger than memory** (``--out-of-core``, off by default; ``--out-of-core-only`` skips the rest):
   ``--ooc-events`` generated transactions (default 35 M, about 4.7 GiB to group in memory) read by
   the events reader in memory (``out_of_core = false``) and out of core (``true``: hash buckets of
   at most ``memory_budget_mb``, then memory-mapped flat files), each in a fresh subprocess with an
   empty cache (time, peak RSS), then once more from the cache.  Where this process may create a
   memory cgroup (root on Linux), both are run again under a ``--ooc-limit-mib`` cap (default
   1,024 MiB): the in-memory read is killed, ``out_of_core = "auto"`` sees the cap and streams.

ptls is imported when installed (``pip install --no-deps pytorch-lifestream==0.6.0`` beside
our torch; its optional imports of transformers, duckdb and omegaconf are stubbed when absent —
they serve encoders and data sets not used here); otherwise the script says why and skips it.

Threads: ``--threads`` (default 1; the figures in docs/events.md state theirs).  Usage::

    python bench/bench_events.py                       # full sizes, several minutes
    python bench/bench_events.py --small               # a smoke run in about a minute
    python bench/bench_events.py --accuracy-only       # part 4 only: ptls vs ours downstream, ~3 min
    python bench/bench_events.py --out-of-core-only    # part 5 only: 35 M events under a 1 GiB cap, ~2 min
"""

from __future__ import annotations

import argparse
import importlib.machinery
import importlib.util
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import child_env, emit_json, machine, rss_peak_kib  # noqa: E402


# --------------------------------------------------------------------------- part 1: reading
def _peak_kib() -> int:
    """This process's peak resident set (VmHWM). Not ``ru_maxrss``: Linux carries that across exec from
    the process that forked, so a child of a large parent would report the parent's peak."""
    return rss_peak_kib() or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _child_read(kind: str, path: str) -> None:
    t0 = time.perf_counter()
    if kind == "contrastkit":
        from contrastkit.plugins.events.readers import EventsReader

        s = EventsReader().read(path, {"id_column": "client_id", "time_column": "event_time",
                                       "categorical": ["category"], "numeric": ["amount"]})
        n_entities, n_events = len(s), s.meta["n_events"]
    else:
        import polars as pl

        df = (pl.scan_parquet(path).sort(["client_id", "event_time"])
              .group_by("client_id", maintain_order=True).agg(pl.all()).collect())
        n_entities, n_events = df.height, int(df["amount"].list.len().sum())
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "peak_kib": _peak_kib(), "entities": n_entities, "events": n_events}))


def bench_read(args, tmp: Path) -> dict:
    from contrastkit.plugins.events.synthetic import synthetic_frames

    n_clients = max(2, args.events // 175)
    t0 = time.perf_counter()
    events, _ = synthetic_frames(n_clients=n_clients, seed=0)
    path = tmp / "events.parquet"
    events.write_parquet(path)
    gen_s = time.perf_counter() - t0
    n = events.height
    del events
    print(f"\n[1] reading + grouping {n:,} events of {n_clients:,} clients from parquet "
          f"({path.stat().st_size / 2**20:.0f} MiB; generated and written in {gen_s:.1f} s)")
    runs: dict[str, list[dict]] = {"contrastkit": [], "polars": []}
    for _ in range(args.repeats):
        for kind in runs:
            out = subprocess.run([sys.executable, __file__, "--_child", kind, str(path)], capture_output=True,
                                 text=True, env=child_env())
            if out.returncode != 0:
                raise SystemExit(f"the {kind} reading child failed:\n{out.stderr[-2000:]}")
            runs[kind].append(json.loads(out.stdout.strip().splitlines()[-1]))
    res = {}
    for kind, rs in runs.items():
        res[kind] = {"seconds": statistics.median(r["seconds"] for r in rs),
                     "peak_mib": statistics.median(r["peak_kib"] for r in rs) / 1024,
                     "entities": rs[0]["entities"], "events": rs[0]["events"], "all_seconds": [r["seconds"] for r in rs]}
        print(f"  {kind:<12} {res[kind]['seconds']:6.2f} s   peak RSS {res[kind]['peak_mib']:7.0f} MiB   "
              f"({res[kind]['entities']:,} entities, {res[kind]['events']:,} events)")
    ratio = res["polars"]["seconds"] / res["contrastkit"]["seconds"]
    print(f"  time ratio polars / contrastkit: {ratio:.2f} (above 1: contrastkit faster); memory ratio "
          f"contrastkit / polars: {res['contrastkit']['peak_mib'] / res['polars']['peak_mib']:.2f}")
    res["events"] = n
    return res


# --------------------------------------------------------------------------- ptls import
def import_ptls() -> tuple[object | None, str]:
    """ptls modules, or None and why not."""
    if importlib.util.find_spec("ptls") is None:
        return None, "ptls is not installed (pip install --no-deps pytorch-lifestream==0.6.0)"

    def missing(name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return type(name, (), {})

    for name in ("transformers", "duckdb", "omegaconf"):  # imported by ptls for parts not used here
        if name not in sys.modules and importlib.util.find_spec(name) is None:
            mod = types.ModuleType(name)
            mod.__getattr__ = missing
            mod.__spec__ = importlib.machinery.ModuleSpec(name, None)
            sys.modules[name] = mod
            if name == "transformers":
                sub = types.ModuleType("transformers.tokenization_utils_base")
                sub.BatchEncoding = type("BatchEncoding", (dict,), {})
                mod.tokenization_utils_base = sub
                sys.modules[sub.__name__] = sub
    try:
        import ptls  # noqa: F401
        from ptls.data_load.utils import collate_feature_dict
        from ptls.frames.coles import CoLESModule, ColesDataset
        from ptls.frames.coles.split_strategy import SampleSlices
        from ptls.nn import RnnSeqEncoder, TrxEncoder
    except Exception as exc:  # noqa: BLE001
        return None, f"ptls does not import here ({type(exc).__name__}: {exc})"
    return types.SimpleNamespace(collate_feature_dict=collate_feature_dict, CoLESModule=CoLESModule,
                                 ColesDataset=ColesDataset, SampleSlices=SampleSlices, RnnSeqEncoder=RnnSeqEncoder,
                                 TrxEncoder=TrxEncoder, version=getattr(ptls, "__version__", "?")), ""


# --------------------------------------------------------------------------- parts 2-3: models
def make_data(n_clients: int):
    from contrastkit.plugins.events.modality import prepare
    from contrastkit.plugins.events.readers import SyntheticReader

    raw = SyntheticReader().read("synthetic_transactions", {"n_clients": n_clients, "seed": 0})
    samples, _ = prepare(raw, None, {"min_events": 25, "min_frequency": 1})
    return samples


def ours(samples, hidden: int, lr: float):
    import torch

    from contrastkit.core.heads import build_head
    from contrastkit.core.losses.coles import CoLESLoss
    from contrastkit.core.runs import Pretrainer
    from contrastkit.plugins.events.augmentations import RandomSlices
    from contrastkit.plugins.events.encoders import GRUEncoder

    enc = GRUEncoder(cat_cardinalities=samples.meta["cat_cardinalities"], num_features=1, hidden=hidden,
                     cat_dim=16, time_features=False)
    model = Pretrainer(enc, build_head({"name": "none"}, enc.out_dim), CoLESLoss(margin=0.5, neg_count=5))
    return model, RandomSlices(25, 200), torch.optim.Adam(model.parameters(), lr=lr)


def ptls_model(P, n_cat: int, hidden: int, lr: float):
    import torch

    trx = P.TrxEncoder(embeddings={"category": {"in": n_cat, "out": 16}}, numeric_values={"amount": "identity"})
    seq = P.RnnSeqEncoder(trx_encoder=trx, hidden_size=hidden, type="gru")
    module = P.CoLESModule(seq_encoder=seq, optimizer_partial=lambda p: torch.optim.Adam(p, lr=lr),
                           lr_scheduler_partial=lambda o: torch.optim.lr_scheduler.StepLR(o, 30, 0.9))
    return module, torch.optim.Adam(module.parameters(), lr=lr)


def ptls_records(samples):
    import torch

    out = []
    for cid, it in zip(samples.ids, samples.items):
        out.append({"client_id": cid, "event_time": torch.from_numpy(np.ascontiguousarray(it["time"])),
                    "category": torch.from_numpy(it["cat"][:, 0].astype(np.int64)),
                    "amount": torch.from_numpy(np.ascontiguousarray(it["num"][:, 0]))})
    return out


def bench_train_embed(args) -> dict:
    import torch
    from torch.utils.data import DataLoader

    from contrastkit.plugins.events.batch import collate
    from contrastkit.plugins.events.modality import embed

    torch.set_num_threads(args.threads)
    samples = make_data(args.clients)
    lengths = np.array([len(it["time"]) for it in samples.items])
    n_events = int(lengths.sum())
    print(f"\n[2] CoLES pretraining: {len(samples):,} clients, {n_events:,} events (50–300 each), GRU {args.hidden}, "
          f"5 slices × 25–200, batch 64, {args.threads} thread(s)")
    P, why = (None, "skipped (--skip-ptls)") if args.skip_ptls else import_ptls()
    if P is None:
        print(f"  ptls: {why}")
    rng = np.random.default_rng(0)
    batches = [rng.choice(len(samples), 64, replace=False) for _ in range(args.steps + 2)]

    model, slicer, opt = ours(samples, args.hidden, 1e-3)
    gen = torch.Generator().manual_seed(0)

    def run_ours() -> float:
        model.train()
        t0 = time.perf_counter()
        for idx in batches[2:]:
            batch = collate([samples.items[i] for i in idx])
            out = model(slicer.views(batch, 5, gen))
            opt.zero_grad(set_to_none=True)
            out.loss.backward()
            opt.step()
        return time.perf_counter() - t0

    for idx in batches[:2]:  # warm-up
        out = model(slicer.views(collate([samples.items[i] for i in idx]), 5, gen))
        out.loss.backward()
    fns = {"contrastkit": run_ours}
    if P is not None:
        n_cat = int(samples.meta["cat_cardinalities"][0])
        records = ptls_records(samples)
        module, popt = ptls_model(P, n_cat, args.hidden, 1e-3)
        dataset = P.ColesDataset(records, splitter=P.SampleSlices(split_count=5, cnt_min=25, cnt_max=200))

        def run_ptls() -> float:
            module.train()
            t0 = time.perf_counter()
            for idx in batches[2:]:
                x, y = P.ColesDataset.collate_fn([dataset[i] for i in idx])
                y_h, y = module.shared_step(x, y)
                loss = module._loss(y_h, y)
                popt.zero_grad(set_to_none=True)
                loss.backward()
                popt.step()
            return time.perf_counter() - t0

        x, y = P.ColesDataset.collate_fn([dataset[i] for i in batches[0]])
        module._loss(*module.shared_step(x, y)).backward()
        fns["ptls"] = run_ptls
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(args.repeats):
        for k, fn in fns.items():
            times[k].append(fn())
    steps = len(batches) - 2
    ent_events = float(np.mean([lengths[idx].sum() for idx in batches[2:]]))
    res: dict = {"train": {}, "embed": {}}
    for k, ts in times.items():
        sec = statistics.median(ts)
        res["train"][k] = {"seconds": sec, "steps": steps, "clients_per_s": steps * 64 / sec,
                           "events_per_s": steps * ent_events / sec, "all_seconds": ts}
        print(f"  {k:<12} {steps * 64 / sec:8.1f} clients/s   {steps * ent_events / sec:10.0f} events/s   "
              f"({sec:.2f} s for {steps} steps)")
    if "ptls" in res["train"]:
        r = res["train"]["contrastkit"]["clients_per_s"] / res["train"]["ptls"]["clients_per_s"]
        res["train"]["ratio"] = r
        print(f"  training throughput ratio contrastkit / ptls: {r:.2f} (target ≥ 2)")

    print(f"\n[3] embedding {len(samples):,} whole sequences, frozen encoder, {args.threads} thread(s)")
    enc = model.encoder.eval()
    dev = torch.device("cpu")

    def run_embed_ours():
        return embed(enc, samples.items, dev, 64)

    def run_embed_bf16():
        enc.inference_matmul = "bfloat16"
        try:
            return embed(enc, samples.items, dev, 64)
        finally:
            enc.inference_matmul = "float32"

    efns = {"contrastkit": run_embed_ours, "contrastkit-bf16": run_embed_bf16}
    if P is not None:
        seq = module.seq_encoder.eval()

        def run_embed_ptls():
            loader = DataLoader(records, batch_size=64, shuffle=False, collate_fn=P.collate_feature_dict)
            with torch.no_grad():
                return torch.cat([seq(b) for b in loader])

        def run_embed_ptls_bf16():  # ptls under CPU autocast: its GRU's products in bfloat16
            loader = DataLoader(records, batch_size=64, shuffle=False, collate_fn=P.collate_feature_dict)
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
                return torch.cat([seq(b) for b in loader])

        efns["ptls"] = run_embed_ptls
        efns["ptls-bf16"] = run_embed_ptls_bf16
    etimes: dict[str, list[float]] = {k: [] for k in efns}
    for _ in range(args.repeats):
        for k, fn in efns.items():
            t0 = time.perf_counter()
            fn()
            etimes[k].append(time.perf_counter() - t0)
    for k, ts in etimes.items():
        sec = statistics.median(ts)
        res["embed"][k] = {"seconds": sec, "clients_per_s": len(samples) / sec, "events_per_s": n_events / sec,
                           "all_seconds": ts}
        print(f"  {k:<12} {len(samples) / sec:8.1f} clients/s   {n_events / sec:10.0f} events/s   ({sec:.2f} s)")
    h32, h16 = run_embed_ours(), run_embed_bf16()
    cos = float(torch.nn.functional.cosine_similarity(h32, h16).min())
    res["embed"]["bf16_min_cosine"] = cos
    print(f"  (contrastkit-bf16: encoder option inference_matmul = \"bfloat16\", the hidden-state product in "
          f"bfloat16; min cosine to the float32 embeddings {cos:.6f})")
    if "ptls" in res["embed"]:
        for k, base in (("contrastkit", "ptls"), ("contrastkit-bf16", "ptls"), ("contrastkit-bf16", "ptls-bf16")):
            r = res["embed"][k]["clients_per_s"] / res["embed"][base]["clients_per_s"]
            res["embed"][f"ratio_{k}_vs_{base}"] = r
            print(f"  embedding throughput ratio {k} / {base}: {r:.2f} (target ≥ 3)")
        print("  (ptls-bf16: ptls's encoder under torch.autocast('cpu', bfloat16), the like-for-like baseline "
              "of contrastkit-bf16)")
    res["ptls"] = {"available": P is not None, "why_not": why if P is None else "",
                   "version": getattr(P, "version", None)}
    return res


# --------------------------------------------------------------------------- part 4: accuracy
def accuracy_data(n_clients: int):
    """Generated clients with their labels, split by a hash of the client id (20 % test, core's ``hash_split``);
    vocabularies and numeric scaling fitted on the training clients only, then applied to all."""
    from contrastkit.core.data import TRAIN
    from contrastkit.plugins.events.modality import prepare
    from contrastkit.plugins.events.readers import SyntheticReader

    raw = SyntheticReader().read("synthetic_transactions", {"n_clients": n_clients, "seed": 0}).with_split(0.2)
    train = np.array([s == TRAIN for s in raw.split])
    options = {"min_events": 25, "min_frequency": 1}
    _, state = prepare(raw.subset(np.flatnonzero(train).tolist()), None, options)
    samples, _ = prepare(raw, state, options)
    return samples, train, np.array(samples.labels, dtype=np.int64)


def _train_steps(step, batches) -> float:
    t0 = time.perf_counter()
    for idx in batches:
        step(idx)
    return time.perf_counter() - t0


def bench_accuracy(args) -> dict:
    """Downstream accuracy of ptls's CoLES and ours trained alike (see ``--accuracy``)."""
    import random
    import warnings

    import torch
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits
    from torch.utils.data import DataLoader

    from contrastkit.plugins.events.batch import collate
    from contrastkit.plugins.events.evaluators import (HGB_LR_GRID, LOGISTIC_C_GRID, EntityProbe,
                                                       aggregate_features)
    from contrastkit.plugins.events.modality import embed

    torch.set_num_threads(args.threads)
    samples, train, y = accuracy_data(args.acc_clients)
    idx_tr, idx_te = np.flatnonzero(train), np.flatnonzero(~train)
    hidden, steps = args.acc_hidden, args.acc_steps
    print(f"\n[4] downstream accuracy: {len(samples):,} clients ({len(idx_tr):,} train / {len(idx_te):,} test by a "
          f"hash of the id, {y[idx_te].mean():.0%} class 1 in test), pretraining on the training clients only: GRU "
          f"{hidden}, category embedding 16, 5 slices × 25–200, batch 64, CoLES margin loss (5 hard negatives), "
          f"Adam 1e-3, {steps} steps (≈ {steps * 64 / len(idx_tr):.1f} epochs), the same batches for both; "
          f"probes as evaluator 'entity' (HistGradientBoosting lr ∈ {list(HGB_LR_GRID)} and standardised "
          f"logistic C ∈ {list(LOGISTIC_C_GRID)}, chosen by 3-fold CV on the training clients); seeds {args.acc_seeds}; "
          f"{args.threads} thread(s)")
    P, why = (None, "skipped (--skip-ptls)") if args.skip_ptls else import_ptls()
    if P is None:
        print(f"  ptls: {why}")
    dev = torch.device("cpu")
    agg = aggregate_features(samples.items, samples.meta, train)
    probe = EntityProbe()
    per: dict[str, dict[str, list[float]]] = {}
    info: dict[str, list[float]] = {}

    def score(name: str, X: np.ndarray, seed: int) -> None:
        with threadpool_limits(limits=1), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            res = probe._fit_all(X[idx_tr], y[idx_tr], X[idx_te], y[idx_te], "classification", seed)
        for k, v in res.items():
            per.setdefault(name, {}).setdefault(k, []).append(v)

    for seed in args.acc_seeds:
        rng = np.random.default_rng(seed)
        batches = [rng.choice(idx_tr, 64, replace=False) for _ in range(steps)]
        # ours, and the same module untrained (random init of the same shape)
        torch.manual_seed(seed)
        model, slicer, opt = ours(samples, hidden, 1e-3)
        torch.manual_seed(seed + 1000)
        random_enc, _, _ = ours(samples, hidden, 1e-3)
        gen = torch.Generator().manual_seed(seed)

        def step_ours(idx) -> None:
            out = model(slicer.views(collate([samples.items[i] for i in idx]), 5, gen))
            opt.zero_grad(set_to_none=True)
            out.loss.backward()
            opt.step()

        model.train()
        info.setdefault("contrastkit train s", []).append(_train_steps(step_ours, batches))
        with torch.no_grad():
            score("contrastkit", np.asarray(embed(model.encoder.eval(), samples.items, dev, 64)), seed)
            score("contrastkit random-init",
                  np.asarray(embed(random_enc.encoder.eval(), samples.items, dev, 64)), seed)
        if P is not None:
            torch.manual_seed(seed)
            np.random.seed(seed)
            random.seed(seed)
            records = ptls_records(samples)
            module, popt = ptls_model(P, int(samples.meta["cat_cardinalities"][0]), hidden, 1e-3)
            dataset = P.ColesDataset(records, splitter=P.SampleSlices(split_count=5, cnt_min=25, cnt_max=200))

            def step_ptls(idx) -> None:
                x, yy = P.ColesDataset.collate_fn([dataset[i] for i in idx])
                loss = module._loss(*module.shared_step(x, yy))
                popt.zero_grad(set_to_none=True)
                loss.backward()
                popt.step()

            module.train()
            info.setdefault("ptls train s", []).append(_train_steps(step_ptls, batches))
            seq = module.seq_encoder.eval()
            loader = DataLoader(records, batch_size=64, shuffle=False, collate_fn=P.collate_feature_dict)
            with torch.no_grad():
                score("ptls", torch.cat([seq(b) for b in loader]).numpy(), seed)
        score("aggregate features", agg, seed)
        print(f"  seed {seed} done: " + ", ".join(f"{k} {v[-1]:.0f}" for k, v in info.items()))
    res: dict = {"clients": len(samples), "train": len(idx_tr), "test": len(idx_te), "steps": steps,
                 "hidden": hidden, "seeds": list(args.acc_seeds), "majority_accuracy":
                 float(max(y[idx_te].mean(), 1 - y[idx_te].mean())), "scores": {}, "train_seconds": info}
    metrics = ("logistic.auroc", "logistic.accuracy", "hgb.auroc", "hgb.accuracy")
    print(f"  {'test (mean ± std over seeds)':<26}" + "".join(f"{m:>19}" for m in metrics))
    for name, vals in per.items():
        res["scores"][name] = {m: {"mean": float(np.mean(vals[m])), "std": float(np.std(vals[m])),
                                   "all": vals[m]} for m in metrics}
        print(f"  {name:<26}" + "".join(f"{np.mean(vals[m]):>12.3f} ± {np.std(vals[m]):.3f}" for m in metrics))
    print(f"  majority class: accuracy {res['majority_accuracy']:.3f}")
    if "ptls" in per:
        d = {m: float(np.mean(per["contrastkit"][m]) - np.mean(per["ptls"][m])) for m in metrics}
        res["difference_contrastkit_minus_ptls"] = d
        print("  contrastkit − ptls:       " + "".join(f"{d[m]:>+19.3f}" for m in metrics))
    return res


# --------------------------------------------------------------------------- part 5: larger than memory
def _child_ooc(mode: str, path: str, cache: str) -> None:
    from contrastkit.core import available_memory
    from contrastkit.plugins.events.readers import EventsReader

    t0 = time.perf_counter()
    opts = {"id_column": "client_id", "time_column": "event_time", "categorical": ["category"],
            "numeric": ["amount"], "cache_dir": cache, "out_of_core": {"memory": False, "out-of-core": True}.get(mode,
                                                                                                         "auto")}
    s = EventsReader().read(path, opts)
    seconds = time.perf_counter() - t0
    # touch every entity once (as an epoch does) and check the events are all there
    n = sum(len(s.items[i]["time"]) for i in range(0, len(s), 97))
    print(json.dumps({"seconds": seconds, "peak_kib": _peak_kib(),
                      "entities": len(s), "events": s.meta["n_events"], "on_disk": bool(s.items.on_disk),
                      "available_mib": available_memory() / 2**20, "sampled_events": n}))


def _memory_cgroup(limit_mib: int) -> str | None:
    """A new memory cgroup (v2, else v1) limited to ``limit_mib``, or None where this process may not make one."""
    import os

    for base, limit_file in ((Path("/sys/fs/cgroup"), "memory.max"),
                             (Path("/sys/fs/cgroup/memory"), "memory.limit_in_bytes")):
        if not (base / limit_file).exists() and not (base / "cgroup.procs").exists():
            continue
        cg = base / f"contrastkit-bench-{os.getpid()}"
        try:
            cg.mkdir(exist_ok=True)
            (cg / limit_file).write_text(str(limit_mib << 20))
            return str(cg)
        except OSError:
            try:
                cg.rmdir()
            except OSError:
                pass
    return None


def bench_out_of_core(args, tmp: Path) -> dict:
    import os

    from contrastkit.plugins.events.synthetic import synthetic_frames

    n_clients = max(2, args.ooc_events // 175)
    t0 = time.perf_counter()
    events, _ = synthetic_frames(n_clients=n_clients, seed=1)
    path = tmp / "big.parquet"
    events.write_parquet(path, row_group_size=1_000_000)
    n = events.height
    del events
    print(f"\n[5] larger than memory: {n:,} events of {n_clients:,} clients from parquet "
          f"({path.stat().st_size / 2**20:.0f} MiB; generated in {time.perf_counter() - t0:.1f} s), each run in a fresh "
          "subprocess with an empty cache")

    def child(mode: str, cgroup: str | None = None, cache: str | None = None) -> dict:
        cache = cache or tempfile.mkdtemp(dir=tmp, prefix="cache-")
        def join_cgroup():  # runs in the child before exec
            with open(os.path.join(cgroup, "cgroup.procs"), "w") as fh:
                fh.write(str(os.getpid()))

        pre = join_cgroup if cgroup else None
        out = subprocess.run([sys.executable, __file__, "--_child_ooc", mode, str(path), cache], capture_output=True,
                             text=True, env=child_env(), preexec_fn=pre)
        if out.returncode != 0:
            last = (out.stderr.strip().splitlines() or ["(no message)"])[-1]
            return {"failed": True, "returncode": out.returncode, "why": "killed: out of memory"
                    if out.returncode in (-9, 137) else last}
        r = json.loads(out.stdout.strip().splitlines()[-1])
        r["cache"] = cache
        return r

    def show(label: str, r: dict) -> None:
        if r.get("failed"):
            print(f"  {label:<34} FAILED ({r['why']}, exit {r['returncode']})")
        else:
            print(f"  {label:<34} {r['seconds']:6.2f} s   peak RSS {r['peak_kib'] / 1024:7.0f} MiB   "
                  f"({r['entities']:,} entities, {r['events']:,} events, {'files' if r['on_disk'] else 'memory'})")

    res: dict = {"events": n}
    runs = {"memory": [], "out-of-core": []}
    for _ in range(args.repeats):
        for mode in runs:
            runs[mode].append(child(mode))
    for mode, rs in runs.items():
        ok = [r for r in rs if not r.get("failed")]
        res[mode] = {"seconds": statistics.median(r["seconds"] for r in ok),
                     "peak_mib": statistics.median(r["peak_kib"] for r in ok) / 1024, "all": rs} if ok else rs[0]
        show(f"{mode} (median of {len(ok)})", {**ok[0], "seconds": res[mode]["seconds"],
                                              "peak_kib": res[mode]["peak_mib"] * 1024} if ok else rs[0])
    if "peak_mib" in res["memory"] and "peak_mib" in res["out-of-core"]:
        print(f"  peak memory ratio out-of-core / memory: {res['out-of-core']['peak_mib'] / res['memory']['peak_mib']:.2f}; "
              f"time ratio: {res['out-of-core']['seconds'] / res['memory']['seconds']:.2f}")
    again = child("out-of-core", cache=runs["out-of-core"][0].get("cache"))
    res["cached"] = again
    show("out-of-core, cached (2nd read)", again)
    cg = _memory_cgroup(args.ooc_limit_mib)
    if cg is None:
        print(f"  (no memory cgroup can be made here, so the {args.ooc_limit_mib} MiB cap is not run; the peak RSS "
              "figures above are what compare)")
        return res
    try:
        print(f"  under a {args.ooc_limit_mib} MiB memory cgroup ({cg}):")
        for mode in ("memory", "auto"):
            r = child(mode, cg)
            res[f"capped_{mode}"] = r
            show(f"  {mode}" + (f" (chose {'files' if r.get('on_disk') else 'memory'})" if mode == "auto" and
                                not r.get("failed") else ""), r)
    finally:
        try:
            Path(cg).rmdir()
        except OSError:
            pass
    return res


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--_child":
        _child_read(sys.argv[2], sys.argv[3])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--_child_ooc":
        _child_ooc(sys.argv[2], sys.argv[3], sys.argv[4])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000_000, help="rows for the reading benchmark")
    ap.add_argument("--clients", type=int, default=5000, help="clients for training/embedding")
    ap.add_argument("--steps", type=int, default=20, help="timed training steps per repeat")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--small", action="store_true", help="a smoke run: 200 k events, 400 clients, 3 steps, 1 repeat "
                    "(--accuracy: 400 clients, 10 steps, seed 0)")
    ap.add_argument("--skip-read", action="store_true")
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--skip-ptls", action="store_true")
    ap.add_argument("--accuracy", action="store_true",
                    help="also compare downstream accuracy of ptls's CoLES and ours (part 4; off by default)")
    ap.add_argument("--accuracy-only", action="store_true", help="only part 4 (implies --accuracy)")
    ap.add_argument("--acc-clients", type=int, default=2000, help="clients for the accuracy comparison")
    ap.add_argument("--acc-steps", type=int, default=300, help="training steps of each model (batch 64)")
    ap.add_argument("--acc-hidden", type=int, default=64, help="GRU hidden size of both models (accuracy)")
    ap.add_argument("--acc-seeds", type=int, nargs="+", default=[0, 1], help="model/batch seeds (accuracy)")
    ap.add_argument("--out-of-core", action="store_true",
                    help="also read a table larger than the cap below, in memory and out of core (part 5)")
    ap.add_argument("--out-of-core-only", action="store_true", help="only part 5 (implies --out-of-core)")
    ap.add_argument("--ooc-events", type=int, default=35_000_000, help="rows for part 5")
    ap.add_argument("--ooc-limit-mib", type=int, default=1024, help="memory cap for part 5 (a cgroup, where allowed)")
    ap.add_argument("--json", default=None, help="write the raw numbers here ('-': stdout)")
    args = ap.parse_args()
    if args.accuracy_only:
        args.accuracy, args.skip_read, args.skip_train = True, True, True
    if args.out_of_core_only:
        args.out_of_core, args.skip_read, args.skip_train = True, True, True
    if args.small:
        args.events, args.clients, args.steps, args.repeats = 200_000, 400, 3, 1
        args.ooc_events = 2_000_000
        args.acc_clients, args.acc_steps, args.acc_seeds = 400, 10, [0]
    import torch

    torch.set_num_threads(args.threads)
    result: dict = {"machine": machine(), "args": vars(args)}
    print(f"events benchmark: {args.threads} torch thread(s); machine load {result['machine']['loadavg']}")
    with tempfile.TemporaryDirectory(prefix="bench-events-") as tmp:
        if not args.skip_read:
            result["read"] = bench_read(args, Path(tmp))
        if args.out_of_core:
            result["out_of_core"] = bench_out_of_core(args, Path(tmp))
    if not args.skip_train:
        result.update(bench_train_embed(args))
    if args.accuracy:
        result["accuracy"] = bench_accuracy(args)
    if args.json:
        emit_json(args.json, result)


if __name__ == "__main__":
    main()
