"""Pretraining on Lightning Fabric.

One code path for CPU, one GPU and many (DDP through ``--devices N``, torchrun
or SLURM).  Every epoch ends with an atomically written checkpoint; a resumed
run reproduces an uninterrupted one with the same seed, because every source
of randomness is re-derived from (seed, epoch, step, rank): the shuffling
(``DistributedSampler.set_epoch``), the views (a fresh ``torch.Generator`` per
step) and dropout (the global RNG re-seeded per epoch).  A momentum target
network and its negatives queue (``[momentum]``) are part of the model's state,
so they are checkpointed with it; the target is updated after every optimiser
step.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import shutil
import sys
import time
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler

from . import allocator, diagnostics
from .capabilities import declared
from .components import build_views
from .config import config_hash, diff_keys
from .data import TEST, TRAIN, Samples
from .errors import ConfigError, ContrastkitError, DataError
from .losses.base import ContrastiveLoss
from .runs import (CARD_FILE, CKPT_DIR, CONFIG_FILE, LAST_CKPT, METRICS_FILE, build_model, embed_items,
                   atomic_write_text, load_checkpoint, move_to, write_json)
from .rundir import check_writable, claim_run_dir
from .sources import read_source
from .views import make_generator


class _Items(Dataset):
    """The training items; with label codes, (item, code) pairs for losses that use labels."""

    def __init__(self, items, codes: list[int] | None = None) -> None:
        self.items, self.codes = items, codes

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        return self.items[i] if self.codes is None else (self.items[i], self.codes[i])


class _LabelledCollate:
    """Collate (item, code) pairs into (batch, labels) for losses that use labels."""

    def __init__(self, collate) -> None:
        self.collate = collate

    def __call__(self, pairs):
        return self.collate([p[0] for p in pairs]), torch.tensor([p[1] for p in pairs], dtype=torch.long)


def label_codes(labels: list | None) -> list[int] | None:
    """Integer codes of the labels (sorted by their text), −1 where unknown; None without labels."""
    if labels is None or all(lbl is None for lbl in labels):
        return None
    index = {c: i for i, c in enumerate(sorted({str(lbl) for lbl in labels if lbl is not None}))}
    return [-1 if lbl is None else index[str(lbl)] for lbl in labels]


#: Stop (as if preempted) right after this epoch's checkpoint: for testing resumption.
STOP_ENV = "CONTRASTKIT_STOP_AFTER_EPOCH"


class Interrupted(ContrastkitError):
    """Training stopped before its last epoch; the checkpoints allow --resume."""

    exit_code = 3


def mix_seed(*parts: int) -> int:
    """A deterministic 63-bit seed from integers (no Python hash randomisation)."""
    s = 0x9E3779B97F4A7C15
    for p in parts:
        s = (s ^ (int(p) + 0x9E3779B97F4A7C15 + (s << 6) + (s >> 2))) & ((1 << 63) - 1)
    return s


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version(), "platform": platform.platform()}
    for dist in ("contrastkit", "torch", "lightning", "torch-geometric", "pytorch-forecasting", "polars",
                 "pluggy", "numpy", "scikit-learn"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def check_run_dir(out: Path, cfg: dict, resume: bool) -> None:
    """Refuse an unwritable place, to overwrite a run, or to resume one of another config (before any side
    effect)."""
    check_writable(out, "--out", folder=True)
    cfg_file = out / CONFIG_FILE
    if resume:
        if not cfg_file.is_file():
            raise ConfigError(f"{out}: nothing to resume (no {CONFIG_FILE}); drop --resume to start a new run.")
        old = json.loads(cfg_file.read_text())
        if config_hash(old) != config_hash(cfg):
            keys = diff_keys(old, cfg)
            raise ConfigError(
                f"{out}: --resume on a run of another config (it differs in {', '.join(keys)}); "
                "resume with the run's own config or start a new run with another --out."
            )
    elif cfg_file.exists() or (out / CKPT_DIR).exists():
        raise ConfigError(f"{out} already holds a run; pass --resume to continue it, or choose another --out.")


def _quiet_lightning() -> None:
    for name in ("lightning.fabric", "lightning.fabric.utilities.seed", "lightning.fabric.utilities.distributed",
                 "lightning_fabric", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*`isinstance\\(treespec, LeafSpec\\)`.*")


def _launch_rank() -> int:
    """This process's rank as the launcher set it before Fabric starts (0 for the process that launches
    the others, and when there is no launcher): torchrun's RANK, else Fabric's LOCAL_RANK/NODE_RANK."""
    def env(key: str) -> int:
        value = os.environ.get(key, "")
        return int(value) if value.isdigit() else 0

    if os.environ.get("RANK", "").isdigit():
        return env("RANK")
    return env("LOCAL_RANK") + env("NODE_RANK")  # not 0 in any process but the first of the first node


def pretrain(host, cfg: dict, out: str | Path, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Pretrain ``cfg['plugin']``'s encoder on ``cfg['data']``, writing the run to ``out``.

    The run directory is checked (writable, not another run's, the same config on --resume) and
    claimed with a lock (core/rundir.py) before any data are read; the lock is released at the end,
    and a directory that this call created and left empty is removed.  Only the launching process
    (rank 0) claims.  Returns the run summary (also written to the run card).
    """
    out = Path(out)
    check_run_dir(out, cfg, resume)
    lock = claim_run_dir(out) if _launch_rank() == 0 else None
    try:
        if lock is not None:
            check_run_dir(out, cfg, resume)  # again: a run that ended before the claim may have written there
        return _pretrain(host, cfg, out, resume, progress)
    finally:
        if lock is not None:
            lock.release()


def _pretrain(host, cfg: dict, out: Path, resume: bool, progress: bool) -> dict[str, Any]:
    run = _Pretraining(host, cfg, out, resume, progress)
    run.read_data()
    run.build()
    run.open_run_dir()
    run.train()
    return run.finish()


class _Pretraining:
    """One pretraining run in its phases, in the order :func:`_pretrain` calls them.

    :meth:`read_data` (read, split before anything is fitted, prepare) → :meth:`build` (model, views,
    optimiser, loader, schedule; the checkpoint's state on ``--resume``) → :meth:`open_run_dir`
    (config, run card, metrics log; the initial diagnostics) → :meth:`train` (the epochs, a
    checkpoint after each) → :meth:`finish` (diagnostics and the run card).  The phases share their
    results as attributes; the order of the calls that draw random numbers is that of one function.
    """

    def __init__(self, host, cfg: dict, out: Path, resume: bool, progress: bool) -> None:
        from lightning.fabric import Fabric

        _quiet_lightning()
        self.host, self.cfg, self.out, self.resume, self.progress = host, cfg, out, resume, progress
        self.modality = host.modality(cfg["plugin"])
        strategy = "ddp" if cfg["devices"] > 1 else "auto"
        self.fabric = Fabric(accelerator=cfg["accelerator"], devices=cfg["devices"], strategy=strategy,
                             precision=cfg["precision"])
        self.fabric.launch()
        self.rank0 = self.fabric.global_rank == 0
        self.world, self.rank = self.fabric.world_size, self.fabric.global_rank

    # ---- data: split before anything is fitted --------------------------------
    def read_data(self) -> None:
        cfg, out, modality = self.cfg, self.out, self.modality
        self.t0 = time.time()
        raw = read_source(self.host.registry, cfg["plugin"], cfg["data"], cfg["data_options"])
        split_rule = "source" if raw.split is not None else "hash of id (20% test)"
        samples = raw.with_split()
        transductive = cfg.get("pretrain_on", "train") == "all"
        train = samples if transductive else samples.part(TRAIN)
        if transductive:
            split_rule += "; pretrained on all items (transductive, labels unused)"
        if len(train) < 2:
            raise DataError(f"{samples.source or cfg['data']}: {len(train)} training item(s); pretraining needs at least 2.")
        self.ckpt_path = out / CKPT_DIR / LAST_CKPT
        ckpt = load_checkpoint(self.ckpt_path) if self.resume and self.ckpt_path.is_file() else None
        if ckpt is not None and ckpt.get("data_fingerprint") and samples.fingerprint and \
                ckpt["data_fingerprint"] != samples.fingerprint:
            raise ConfigError(f"{out}: --resume with other data than the run was trained on ({samples.source}).")
        state_in = ckpt.get("prep_state") if ckpt is not None else None
        if modality.prepare is not None:
            train, prep_state = modality.prepare(train, state_in, cfg["data_options"])
            held_out = samples.part(TEST)
            if len(held_out) and not transductive:  # the test items are never trained on, but bad ones must fail now, not at embed time
                modality.prepare(held_out, prep_state, cfg["data_options"])
        else:
            prep_state = {}
        meta = dict(train.meta)
        if modality.check is not None:
            modality.check(train, cfg)
        self.samples, self.train_items, self.split_rule, self.transductive = samples, train, split_rule, transductive
        self.ckpt, self.prep_state, self.meta = ckpt, prep_state, meta

    # ---- model, views, optimiser --------------------------------------------------
    def build(self) -> None:
        cfg, fabric, train, world = self.cfg, self.fabric, self.train_items, self.world
        fabric.seed_everything(cfg["seed"], verbose=False)
        model = build_model(self.host, cfg, self.meta)
        self.views = build_views(self.host.registry, cfg["plugin"], cfg, meta=self.meta)
        # Only trained parameters: a momentum target network follows the online one by EMA instead.
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg["lr"],
                                      weight_decay=cfg["weight_decay"])

        n = self.n = len(train)
        batch_size = cfg["batch_size"]
        notes = self.notes = []
        if n < batch_size * world:
            batch_size = max(2, n // world)
            notes.append(f"batch size lowered to {batch_size}: the training split has {n} items for {world} device(s).")
        if n < 2 * world:
            raise DataError(f"{self.samples.source}: {n} training items cannot be split over {world} devices.")
        self.batch_size = batch_size
        uses_labels = declared(model.loss, ContrastiveLoss, "uses_labels")
        codes = self.codes = label_codes(train.labels) if uses_labels else None
        if uses_labels and codes is None:
            notes.append(f"loss '{cfg['loss']['name']}' uses labels, but the training data has none: "
                         "it contrasts the views of each sample only.")
        dataset = _Items(train.items, codes)
        self.sampler = DistributedSampler(dataset, num_replicas=world, rank=self.rank, shuffle=True,
                                          seed=cfg["seed"], drop_last=True)
        self.loader = DataLoader(dataset, batch_size=batch_size, sampler=self.sampler, drop_last=True,
                                 collate_fn=self.modality.collate if codes is None
                                 else _LabelledCollate(self.modality.collate),
                                 num_workers=cfg["num_workers"])
        steps_per_epoch = self.steps_per_epoch = len(self.loader)
        epochs = cfg["epochs"]
        if cfg.get("max_steps"):
            epochs = min(epochs, max(1, math.ceil(cfg["max_steps"] / steps_per_epoch)))
            if epochs < cfg["epochs"]:
                notes.append(f"training stops after {epochs} epochs ({epochs * steps_per_epoch} steps): "
                             f"max_steps is {cfg['max_steps']}.")
        self.epochs = epochs
        total_steps = self.total_steps = steps_per_epoch * epochs
        warmup = cfg.get("warmup_epochs", 0) * steps_per_epoch

        def lr_factor(step: int) -> float:
            if warmup and step < warmup:
                return (step + 1) / warmup
            progress_ = (step - warmup) / max(1, total_steps - warmup)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, progress_)))

        self.scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
        self.model, self.optimizer = fabric.setup(model, optimizer)
        # Not fabric.setup_dataloaders: its wrapper calls sampler.set_epoch(number of iterations so far),
        # which differs after a resume; we set the epoch ourselves and move batches to the device.
        self.device = fabric.device

        self.start_epoch = 0
        self.prior_seconds: float | None = None  # training seconds of the earlier sessions (kept in every checkpoint)
        if self.ckpt is not None:
            remainder = fabric.load(self.ckpt_path, {"model": self.model, "optimizer": self.optimizer})
            self.scheduler.load_state_dict(remainder["scheduler"])
            self.start_epoch = int(remainder["epoch"])
            if remainder.get("train_seconds") is not None:
                self.prior_seconds = float(remainder["train_seconds"])
            if self.start_epoch >= epochs and self.rank0:
                notes.append(f"the run already finished {self.start_epoch} epoch(s); nothing to train.")

    # ---- run directory --------------------------------------------------------------
    def open_run_dir(self) -> None:
        cfg, out, samples, ckpt = self.cfg, self.out, self.samples, self.ckpt
        self.chash = config_hash(cfg)
        card: dict[str, Any] = {
            "status": "running",
            "plugin": cfg["plugin"],
            "config_hash": self.chash,
            "seed": cfg["seed"],
            "data": {
                "source": samples.source or str(cfg["data"]),
                "fingerprint": samples.fingerprint,
                "n_items": len(samples),
                "n_train": self.n,
                "split": self.split_rule,
                "meta": self.meta,
            },
            "world_size": self.world,
            "device": str(self.device),
            "versions": versions(),
            "protocol": ("pretrain on all items, test split included (transductive; labels are never used)"
                         if self.transductive else
                         "pretrain on the training split only; the test split is never seen by the encoder"),
        }
        if self.rank0:
            (out / CKPT_DIR).mkdir(parents=True, exist_ok=True)
            write_json(out / CONFIG_FILE, cfg)
            if ckpt is not None and (out / CARD_FILE).is_file():
                card = {**json.loads((out / CARD_FILE).read_text()), **card}
            if self.prior_seconds is None and ckpt is not None:  # a checkpoint from before the total was kept in it
                self.prior_seconds = float(card.get("train_seconds", 0.0) or 0.0)
            if self.resume and (out / METRICS_FILE).is_file():
                # Drop lines of epochs after the checkpoint (a run killed between log and checkpoint).
                kept = [l for l in (out / METRICS_FILE).read_text().splitlines()
                        if l.strip() and json.loads(l).get("epoch", 0) <= self.start_epoch]
                atomic_write_text(out / METRICS_FILE, "".join(k + "\n" for k in kept))
            write_json(out / CARD_FILE, card)
            for note in self.notes:
                print(f"note: {note}", file=sys.stderr)
        self.card = card
        self.fabric.barrier()

        model = self.model
        self.unwrapped = model.module if hasattr(model, "module") else model
        self.diag_items = list(self.train_items.items[: min(self.n, 2048)])
        allocator.apply_requested()  # the data are read and prepared: keep freed blocks from here on

        if self.rank0 and ckpt is None:
            self.card["diagnostics_init"] = self.diagnose()

    def diagnose(self) -> dict[str, float]:
        """Alignment, uniformity and effective rank of z (the space the loss shapes) and of h (exported)."""
        unwrapped, device, diag_items = self.unwrapped, self.device, self.diag_items
        enc, head = unwrapped.encoder, unwrapped.head
        g = make_generator(mix_seed(self.cfg["seed"], 999_983), device)
        modes = enc.training, head.training
        enc.eval()
        head.eval()
        hs: dict[str, list] = {"h": [], "h1": [], "h2": []}
        with torch.no_grad():
            for s in range(0, len(diag_items), 256):
                batch = move_to(self.modality.collate(diag_items[s:s + 256]), device)
                v = self.views(batch, g)
                h1, h2 = unwrapped.encode_views([v[0], v[1]])
                for key, x in (("h", enc(batch)), ("h1", h1), ("h2", h2)):
                    hs[key].append(x.float())
            h, h1, h2 = (torch.cat(hs[key]) for key in ("h", "h1", "h2"))
            z, z1, z2 = head(h), head(h1), head(h2)
        enc.train(modes[0])
        head.train(modes[1])
        out = diagnostics.report(z.cpu(), z1.cpu(), z2.cpu())
        out.update({f"h_{k}": v for k, v in diagnostics.report(h.cpu(), h1.cpu(), h2.cpu()).items()})
        return out

    # ---- training loop ----------------------------------------------------------------
    def train(self) -> None:
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        cfg, out, fabric, model, optimizer, scheduler = (self.cfg, self.out, self.fabric, self.model, self.optimizer,
                                                         self.scheduler)
        views, loader, codes, device, unwrapped = self.views, self.loader, self.codes, self.device, self.unwrapped
        epochs, start_epoch, steps_per_epoch = self.epochs, self.start_epoch, self.steps_per_epoch
        rank, world, batch_size = self.rank, self.world, self.batch_size
        console = Console(stderr=True)
        show = self.progress and self.rank0
        bar = Progress(TextColumn("[bold]pretrain[/] epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                       console=console, disable=not show or not console.is_terminal, transient=False)
        bar_shown = show and console.is_terminal
        task = bar.add_task("train", total=max(0, epochs - start_epoch) * steps_per_epoch,
                            epoch=f"{start_epoch + 1}/{epochs}", loss="-")
        history = self.history = []
        with bar:
            for epoch in range(start_epoch, epochs):
                self.sampler.set_epoch(epoch)
                torch.manual_seed(mix_seed(cfg["seed"], epoch, rank))
                model.train()
                sums: dict[str, torch.Tensor] = {}
                tic, seen = time.perf_counter(), 0
                for step, batch in enumerate(loader):
                    batch, labels = batch if codes is not None else (batch, None)
                    batch, labels = move_to(batch, device), move_to(labels, device)
                    g = make_generator(mix_seed(cfg["seed"], epoch, step, rank), device)
                    out_ = model(views(batch, g), labels=labels)
                    optimizer.zero_grad(set_to_none=True)
                    fabric.backward(out_.loss)
                    optimizer.step()
                    scheduler.step()
                    if unwrapped.has_target:  # the EMA target follows the updated weights (same on every rank)
                        unwrapped.update_target(epoch * steps_per_epoch + step, self.total_steps)
                    if unwrapped.has_average:  # the running mean of the weights, exported by load_run
                        unwrapped.update_average()
                    # No host sync per step: sums stay on the device, checked once per epoch.
                    for key, val in {"loss": out_.loss, **out_.parts}.items():
                        sums[key] = sums.get(key, 0.0) + val.detach().float()
                    seen += batch_size * world
                    if bar_shown:
                        bar.update(task, advance=1, loss=f"{out_.loss.item():.4f}", epoch=f"{epoch + 1}/{epochs}")
                seconds = time.perf_counter() - tic
                means = {k: float(fabric.all_reduce(v / steps_per_epoch, reduce_op="mean")) for k, v in sums.items()}
                if not math.isfinite(means["loss"]):
                    raise ConfigError(
                        f"the loss became {means['loss']} in epoch {epoch + 1} (the last good checkpoint is kept); "
                        "lower 'lr' or raise the loss temperature."
                    )
                record = {"epoch": epoch + 1, **means, "lr": scheduler.get_last_lr()[0], "steps": steps_per_epoch,
                          "seconds": round(seconds, 4),
                          "samples_per_s": round(seen / max(seconds, 1e-9), 2)}
                history.append(record)
                # The log line first, then the checkpoint: a run killed in between re-runs (and re-logs)
                # the epoch; resuming drops log lines past the checkpoint.
                if self.rank0:
                    with open(out / METRICS_FILE, "a") as fh:
                        fh.write(json.dumps(record) + "\n")
                    if show:
                        console.print(
                            f"epoch {epoch + 1}/{epochs}  loss {means['loss']:.4f}  "
                            f"{record['samples_per_s']:.0f} samples/s", highlight=False)
                _save_checkpoint(fabric, out, {
                    "model": model, "optimizer": optimizer, "scheduler": scheduler.state_dict(), "epoch": epoch + 1,
                    "config": cfg, "config_hash": self.chash, "meta": self.meta, "prep_state": self.prep_state,
                    "data_fingerprint": self.samples.fingerprint,
                    "train_seconds": round((self.prior_seconds or 0.0) + sum(r["seconds"] for r in history), 4),
                }, epoch + 1, cfg.get("keep_checkpoints", 2))
                if os.environ.get(STOP_ENV, "") == str(epoch + 1) and epoch + 1 < epochs:
                    raise Interrupted(f"stopped after epoch {epoch + 1} as {STOP_ENV} asks; continue with --resume.")

    # ---- end of run: diagnostics and run card --------------------------------------
    def finish(self) -> dict[str, Any]:
        out, history = self.out, self.history
        summary: dict[str, Any] = {}
        if self.rank0:
            diag = self.diagnose()
            card = {**json.loads((out / CARD_FILE).read_text()), **{k: v for k, v in self.card.items() if k != "status"}}
            card.update({
                "status": "finished",
                "epochs_done": max(self.start_epoch, self.epochs),
                "diagnostics": diag,
                "final_loss": history[-1]["loss"] if history else card.get("final_loss"),
                "train_seconds": round((self.prior_seconds or 0.0) + sum(r["seconds"] for r in history), 3),
                "wall_seconds": round(time.time() - self.t0, 3),
            })
            if diag["effective_rank"] < 2.0:
                print(f"warning: the projections have collapsed (effective rank {diag['effective_rank']:.2f}); "
                      "try a higher temperature, stronger views or a lower learning rate.", file=sys.stderr)
            write_json(out / CARD_FILE, card)
            summary = card
        self.fabric.barrier()
        return summary


def _save_checkpoint(fabric, out: Path, state: dict, epoch: int, keep: int) -> None:
    ckpt_dir = out / CKPT_DIR
    tmp = ckpt_dir / f".epoch-{epoch:04d}.ckpt.tmp"
    fabric.save(tmp, state)
    fabric.barrier()
    if fabric.global_rank == 0:
        final = ckpt_dir / f"epoch-{epoch:04d}.ckpt"
        os.replace(tmp, final)
        last_tmp = ckpt_dir / f".{LAST_CKPT}.tmp"
        shutil.copyfile(final, last_tmp)
        os.replace(last_tmp, ckpt_dir / LAST_CKPT)
        old = sorted(ckpt_dir.glob("epoch-*.ckpt"))
        for p in old[: max(0, len(old) - max(1, int(keep)))]:
            p.unlink(missing_ok=True)
    fabric.barrier()
