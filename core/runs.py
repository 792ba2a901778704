"""Run directories: layout, checkpoints, and loading a trained encoder back."""

from __future__ import annotations

import copy
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning_utilities.core.apply_func import apply_to_collection
from torch import nn

from . import allocator
from .capabilities import declared
from .components import build_encoder
from .config import MOMENTUM_DEFAULTS
from .data import Samples
from .encoders import Encoder
from .errors import ConfigError, DataError
from .heads import build_head
from .losses.base import ContrastiveLoss
from .modality import Modality
from .rundir import check_writable, file_mode  # noqa: F401  (check_writable: for the CLI)
from .momentum import NegativeQueue, accepts_targets, ema_update_, make_target, momentum_at

CONFIG_FILE = "config.json"
CARD_FILE = "run.json"
METRICS_FILE = "metrics.jsonl"
CKPT_DIR = "checkpoints"
LAST_CKPT = "last.ckpt"


def default_device() -> torch.device:
    """The accelerator torch reports as available, else the CPU."""
    acc = getattr(torch, "accelerator", None)
    if acc is not None and acc.is_available():
        dev = acc.current_accelerator()
        if dev is not None:
            return torch.device(dev.type)
    return torch.device("cpu")


def move_to(batch: Any, device: torch.device) -> Any:
    """``batch`` on ``device``: tensors, and objects with a ``to(device)`` method (e.g. a PyG ``Batch``),
    at the top level or inside dicts, lists and tuples.  Such objects are copied (shallowly) before
    ``to``, so the caller's batch is left as it was."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (dict, list, tuple)):
        return apply_to_collection(batch, (torch.Tensor, _HasTo), lambda x: move_to(x, device))
    if isinstance(batch, _HasTo) and not isinstance(batch, nn.Module):
        return copy.copy(batch).to(device)
    return batch


class _HasToMeta(type):
    def __instancecheck__(cls, obj: Any) -> bool:
        return (not isinstance(obj, (type, torch.Tensor, nn.Module, dict, list, tuple, str, bytes))
                and callable(getattr(obj, "to", None)))


class _HasTo(metaclass=_HasToMeta):
    """Duck type: an object with a ``to(device)`` method (checked with isinstance)."""


def atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, file_mode())  # mkstemp makes 0600; the file gets the umask's mode like any other
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


class Pretrainer(nn.Module):
    """encoder → head → loss over the K views; the module Fabric trains.

    With ``momentum`` (a float in [0, 1]) it also holds an EMA *target
    network*, ``target_encoder`` and ``target_head`` (copies of encoder and
    head that take no gradient), and with ``queue_size > 0`` a
    :class:`~contrastkit.core.momentum.NegativeQueue` of target keys.  Then
    ``forward`` computes the online projections z (with gradient) and the
    target projections z' (without) of the same K views, calls
    ``loss(z, targets=z', queue=negatives)``, and afterwards (in training
    mode) enqueues this step's keys of all ranks.  The trainer calls
    :meth:`update_target` after every optimiser step.  Target and queue are
    submodules, so they are saved in the checkpoints and a resume is exact;
    ``load_run`` reads only the online encoder.

    With ``average=True`` it also holds ``average_encoder``, the running mean
    of the encoder's weights after every optimiser step (stochastic weight
    averaging from the first step, as TS2Vec does; buffers such as BatchNorm
    statistics are the online encoder's).  The trainer calls
    :meth:`update_average` after every optimiser step; ``load_run`` then reads
    the averaged encoder, so embedding, evaluation and export use it.
    """

    def __init__(self, encoder: nn.Module, head: nn.Module, loss: nn.Module, momentum: float | None = None,
                 momentum_schedule: str = "constant", queue_size: int = 0, average: bool = False) -> None:
        super().__init__()
        self.encoder, self.head, self.loss = encoder, head, loss
        self.has_average = bool(average)
        if self.has_average:
            self.average_encoder = make_target(encoder)
            self.register_buffer("n_averaged", torch.zeros((), dtype=torch.long))
        self.momentum, self.momentum_schedule = momentum, momentum_schedule
        self.has_target = momentum is not None
        self.queue: NegativeQueue | None = None
        if self.has_target:
            if declared(loss, ContrastiveLoss, "dense") or not accepts_targets(loss):
                raise ConfigError(f"loss '{type(loss).__name__}' does not support a momentum target; "
                                  "set [momentum] enabled = false or use a loss of the InfoNCE family.")
            self.target_encoder, self.target_head = make_target(encoder), make_target(head)
            if queue_size:
                dim = getattr(head, "out_dim", None)
                if not isinstance(dim, int):
                    raise ConfigError(f"the negatives queue needs a head with an 'out_dim'; "
                                      f"'{type(head).__name__}' has none.")
                self.queue = NegativeQueue(queue_size, dim)
        if declared(loss, ContrastiveLoss, "needs_queue") and self.queue is None:
            raise ConfigError(f"loss '{type(loss).__name__}' needs the negatives queue: set [momentum] "
                              "enabled = true and queue_size > 0.")

    def encode_views(self, views: list[Any], encoder: nn.Module | None = None) -> list[torch.Tensor]:
        """The K views' representations in as few encoder passes as the encoder allows: its
        ``forward_views(views)`` when it has one (an encoder of variable-size items that runs all the
        views as one batch, e.g. the events plugin's), else one pass over the concatenation when the
        views are tensors of one shape, else one pass per view."""
        encoder = self.encoder if encoder is None else encoder
        forward_views = declared(encoder, Encoder, "forward_views")
        if callable(forward_views):
            out = list(forward_views(list(views)))
            if len(out) != len(views):
                raise ConfigError(f"encoder '{type(encoder).__name__}': forward_views returned {len(out)} "
                                  f"representations for {len(views)} views.")
            return out
        if all(isinstance(v, torch.Tensor) for v in views) and len({tuple(v.shape) for v in views}) == 1:
            b = views[0].shape[0]
            return list(encoder(torch.cat(views, dim=0)).split(b, dim=0))
        return [encoder(v) for v in views]

    def forward(self, views: list[Any], labels: torch.Tensor | None = None):
        if declared(self.loss, ContrastiveLoss, "dense"):
            return self.loss(self.encode_dense(views), labels=labels)
        zs = [self.head(h) for h in self.encode_views(views)]
        if not self.has_target:
            return self.loss(zs, labels=labels)
        with torch.no_grad():
            targets = [self.target_head(h) for h in self.encode_views(views, self.target_encoder)]
        out = self.loss(zs, labels=labels, targets=targets,
                        queue=self.queue.get() if self.queue is not None else None)
        if self.queue is not None and self.training:
            self.queue.push(torch.cat(targets, dim=0))  # after the loss: the loss holds a copy of the old queue
        return out

    @torch.no_grad()
    def update_target(self, step: int = 0, total_steps: int = 1) -> float:
        """EMA update of the target network after optimiser step ``step`` of ``total_steps``; returns m."""
        if not self.has_target:
            return 1.0
        m = momentum_at(self.momentum, step, total_steps, self.momentum_schedule)
        ema_update_(self.target_encoder, self.encoder, m)
        ema_update_(self.target_head, self.head, m)
        return m

    @torch.no_grad()
    def update_average(self) -> None:
        """Fold the encoder's current weights into the running mean (the first call copies them)."""
        if not self.has_average:
            return
        n = int(self.n_averaged)
        for avg, p in zip(self.average_encoder.parameters(), self.encoder.parameters()):
            avg.mul_(n / (n + 1)).add_(p.detach(), alpha=1.0 / (n + 1))
        for avg, b in zip(self.average_encoder.buffers(), self.encoder.buffers()):
            avg.copy_(b)
        self.n_averaged += 1

    def encode_dense(self, views: list[Any]) -> list[torch.Tensor]:
        """Dense representations (B × T × D) of the positions all views share, for dense losses."""
        aligned = getattr(views, "aligned", None)
        if aligned is None:
            raise ConfigError(f"loss '{type(self.loss).__name__}' contrasts aligned positions: configure a "
                              "joint_view that aligns its views (e.g. contextual_crop) and keep the per-view "
                              "augmentations shape-preserving.")
        dense_fn = declared(self.encoder, Encoder, "forward_timesteps")
        if dense_fn is None:
            raise ConfigError(f"loss '{type(self.loss).__name__}' needs an encoder with dense outputs "
                              f"(forward_timesteps); '{type(self.encoder).__name__}' has none.")
        if len({tuple(v.shape) for v in views}) == 1:
            b = views[0].shape[0]
            dense = list(dense_fn(torch.cat(list(views), dim=0))[0].split(b, dim=0))
        else:
            dense = [dense_fn(v)[0] for v in views]
        return [d[:, sl] for d, sl in zip(dense, aligned)]


@dataclass
class Run:
    """A trained run loaded for inference: config, modality, encoder and preprocessing state."""

    path: Path
    config: dict
    card: dict
    modality: Any
    encoder: nn.Module
    state: dict
    meta: dict
    device: torch.device

    def prepare(self, samples: Samples) -> Samples:
        if self.modality.prepare is None:
            return samples
        prepared, _ = self.modality.prepare(samples, self.state, self.config.get("data_options", {}))
        return prepared

    @torch.no_grad()
    def embed(self, samples: Samples, batch_size: int | None = None) -> np.ndarray:
        """Frozen representations h (N × D float32) of prepared samples."""
        return embed_items(self.encoder, self.modality, samples.items, self.device,
                           batch_size or max(64, int(self.config.get("batch_size", 64))))

    def random_init(self, host, seed: int = 0, fit_norm_on: Samples | None = None) -> "Run":
        """The same run with a freshly initialised encoder of the same shape (the baseline to beat).

        With ``fit_norm_on`` (prepared samples, normally the training items), the random encoder's
        normalisation statistics (BatchNorm running mean/variance) are then fitted by one pass over
        them (:func:`fit_normalisation`): the like-for-like bar for encoders with BatchNorm, whose
        untouched statistics (mean 0, variance 1) make every BatchNorm layer the identity.  The
        weights are the same as without it for the same ``seed``.
        """
        torch.manual_seed(seed)
        encoder = build_encoder(host.registry, self.config["plugin"], self.config, self.meta).to(self.device).eval()
        if fit_norm_on is not None:
            fit_normalisation(encoder, self.modality, fit_norm_on.items, self.device,
                              max(64, int(self.config.get("batch_size", 64))))
        return Run(self.path, self.config, self.card, self.modality, encoder, self.state, self.meta, self.device)


def norm_layers(encoder: nn.Module) -> list[nn.Module]:
    """The encoder's layers that keep running normalisation statistics (BatchNorm and InstanceNorm
    with ``track_running_stats``; PyG's BatchNorm wraps torch's, so it is found too)."""
    return [m for m in encoder.modules()
            if isinstance(m, nn.modules.batchnorm._NormBase) and m.track_running_stats]


@torch.no_grad()
def fit_normalisation(encoder: nn.Module, modality: Any, items, device: torch.device, batch_size: int = 256) -> int:
    """Fit the running statistics of ``encoder``'s normalisation layers by one pass over ``items``.

    Every other module stays in eval mode (no dropout); each BatchNorm layer is reset and switched
    to a cumulative average (``momentum = None``), so after the pass its statistics are the mean of
    the per-batch statistics over all items — the layer's own estimate of the data's statistics.
    No weight changes.  Returns the number of layers fitted (0: the encoder has none, and nothing is
    done).  Batches are those of embedding (the modality's ``embed`` where it has one).
    """
    layers = norm_layers(encoder)
    if not layers or len(items) < 2:
        return 0
    if len(items) % batch_size == 1:  # a last batch of one item has no batch statistics
        batch_size += 1
    saved = [m.momentum for m in layers]
    encoder.eval()
    for m in layers:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    try:
        custom = declared(modality, Modality, "embed")
        if custom is not None:
            custom(encoder, items, device, batch_size)
        else:
            for start in range(0, len(items), batch_size):
                encoder(move_to(modality.collate(list(items[start:start + batch_size])), device))
    finally:
        for m, mom in zip(layers, saved):
            m.momentum = mom
        encoder.eval()
    return len(layers)


@torch.no_grad()
def embed_items(encoder: nn.Module, modality: Any, items, device: torch.device, batch_size: int = 256) -> np.ndarray:
    allocator.apply_requested()  # the data are read and prepared (as at the start of training)
    was_training = encoder.training
    encoder.eval()
    custom = declared(modality, Modality, "embed")
    if custom is not None:
        try:
            h = custom(encoder, items, device, batch_size)
        finally:
            encoder.train(was_training)
        h = h.detach().float().cpu().numpy() if isinstance(h, torch.Tensor) else np.asarray(h)
        return h.astype(np.float32, copy=False)
    out = []
    for start in range(0, len(items), batch_size):
        batch = move_to(modality.collate(list(items[start:start + batch_size])), device)
        out.append(encoder(batch).float().cpu())
    encoder.train(was_training)
    if not out:
        return np.zeros((0, declared(encoder, Encoder, "out_dim") or 0), dtype=np.float32)
    return torch.cat(out).numpy().astype(np.float32, copy=False)


def load_checkpoint(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise DataError(f"{path}: no checkpoint there.") from None
    except Exception as exc:
        raise DataError(f"{path}: not a readable contrastkit checkpoint ({type(exc).__name__}: {exc}).") from None


def load_run(path: str | Path, host, encoder_options: dict | None = None) -> Run:
    """Load a finished (or partly trained) run for embedding and evaluation.

    ``encoder_options`` override settings of the run's ``[encoder]`` for this use only (e.g. an
    inference precision); the trained weights must still fit the encoder they build.
    """
    run_dir = Path(path)
    cfg_path = run_dir / CONFIG_FILE
    if not cfg_path.is_file():
        raise DataError(f"{run_dir}: not a contrastkit run directory (no {CONFIG_FILE}); run 'contrastkit pretrain' first.")
    config = json.loads(cfg_path.read_text())
    if encoder_options:
        if "name" in encoder_options:
            raise ConfigError("an encoder option cannot change the encoder's name; pretrain a new run instead.")
        config["encoder"] = {**config["encoder"], **encoder_options}
    card = json.loads((run_dir / CARD_FILE).read_text()) if (run_dir / CARD_FILE).is_file() else {}
    ckpt_path = run_dir / CKPT_DIR / LAST_CKPT
    if not ckpt_path.is_file():
        raise DataError(f"{run_dir}: no checkpoint yet ({CKPT_DIR}/{LAST_CKPT}); the run has not finished an epoch.")
    ckpt = load_checkpoint(ckpt_path)
    modality = host.modality(config["plugin"])
    meta = ckpt.get("meta", {})
    encoder = build_encoder(host.registry, config["plugin"], config, meta)
    # A run with weight averaging exports the averaged encoder (once it has seen a step).
    prefix = "average_encoder." if int(ckpt["model"].get("n_averaged", 0)) > 0 else "encoder."
    enc_state = {k[len(prefix):]: v for k, v in ckpt["model"].items() if k.startswith(prefix)}
    try:
        encoder.load_state_dict(enc_state)
    except RuntimeError as exc:
        first = " ".join(str(exc).split())[:300]
        why = (f"with the encoder option(s) {encoder_options}, which change its shape" if encoder_options else
               f"({first})")
        raise ConfigError(f"{ckpt_path}: the encoder weights do not fit encoder '{config['encoder']['name']}' "
                          f"{why}.") from None
    device = default_device()
    encoder.to(device).eval()
    return Run(run_dir, config, card, modality, encoder, ckpt.get("prep_state") or {}, meta, device)


def build_model(host, cfg: dict, meta: dict) -> Pretrainer:
    from .components import build_loss

    encoder = build_encoder(host.registry, cfg["plugin"], cfg, meta)
    loss = build_loss(host.registry, cfg["plugin"], cfg)
    # A dense loss works on the encoder's per-position outputs: no projection head (and no unused
    # parameters for DDP to wait for).
    head = build_head({"name": "none"} if declared(loss, ContrastiveLoss, "dense") else cfg["head"], encoder.out_dim)
    mom = {**MOMENTUM_DEFAULTS, **(cfg.get("momentum") or {})}  # runs from before [momentum] lack the table
    name = cfg["loss"]["name"]
    average = cfg.get("weight_average", "none") == "swa"
    if mom["enabled"]:
        if declared(loss, ContrastiveLoss, "dense") or not accepts_targets(loss):
            raise ConfigError(f"loss '{name}' does not support a momentum target; set [momentum] enabled = false "
                              "or use a loss of the InfoNCE family (e.g. infonce, mochi).")
        return Pretrainer(encoder, head, loss, momentum=float(mom["momentum"]),
                          momentum_schedule=mom["schedule"], queue_size=int(mom["queue_size"]),
                          average=average)
    if declared(loss, ContrastiveLoss, "needs_queue"):
        raise ConfigError(f"loss '{name}' needs the negatives queue: set [momentum] enabled = true and "
                          "queue_size > 0.")
    return Pretrainer(encoder, head, loss, average=average)
