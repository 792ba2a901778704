"""Run directories: layout, checkpoints, and loading a trained encoder back."""

from __future__ import annotations

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

from .components import build_encoder
from .data import Samples
from .errors import ConfigError, DataError
from .heads import build_head

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
    return apply_to_collection(batch, torch.Tensor, lambda t: t.to(device, non_blocking=True))


def atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


class Pretrainer(nn.Module):
    """encoder → head → loss over the K views; the module Fabric trains."""

    def __init__(self, encoder: nn.Module, head: nn.Module, loss: nn.Module) -> None:
        super().__init__()
        self.encoder, self.head, self.loss = encoder, head, loss

    def encode_views(self, views: list[Any]) -> list[torch.Tensor]:
        if all(isinstance(v, torch.Tensor) for v in views) and len({tuple(v.shape) for v in views}) == 1:
            b = views[0].shape[0]
            return list(self.encoder(torch.cat(views, dim=0)).split(b, dim=0))
        return [self.encoder(v) for v in views]

    def forward(self, views: list[Any]):
        if getattr(self.loss, "dense", False):
            return self.loss(self.encode_dense(views))
        hs = self.encode_views(views)
        return self.loss([self.head(h) for h in hs])

    def encode_dense(self, views: list[Any]) -> list[torch.Tensor]:
        """Dense representations (B × T × D) of the positions all views share, for dense losses."""
        aligned = getattr(views, "aligned", None)
        if aligned is None:
            raise ConfigError(f"loss '{type(self.loss).__name__}' contrasts aligned positions: configure a "
                              "joint_view that aligns its views (e.g. contextual_crop) and keep the per-view "
                              "augmentations shape-preserving.")
        dense_fn = getattr(self.encoder, "forward_timesteps", None)
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

    def random_init(self, host, seed: int = 0) -> "Run":
        """The same run with a freshly initialised encoder of the same shape (the baseline to beat)."""
        torch.manual_seed(seed)
        encoder = build_encoder(host.registry, self.config["plugin"], self.config, self.meta).to(self.device).eval()
        return Run(self.path, self.config, self.card, self.modality, encoder, self.state, self.meta, self.device)


@torch.no_grad()
def embed_items(encoder: nn.Module, modality: Any, items, device: torch.device, batch_size: int = 256) -> np.ndarray:
    was_training = encoder.training
    encoder.eval()
    out = []
    for start in range(0, len(items), batch_size):
        batch = move_to(modality.collate(list(items[start:start + batch_size])), device)
        out.append(encoder(batch).float().cpu())
    encoder.train(was_training)
    if not out:
        return np.zeros((0, getattr(encoder, "out_dim", 0)), dtype=np.float32)
    return torch.cat(out).numpy().astype(np.float32, copy=False)


def load_checkpoint(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise DataError(f"{path}: no checkpoint there.") from None
    except Exception as exc:
        raise DataError(f"{path}: not a readable contrastkit checkpoint ({type(exc).__name__}: {exc}).") from None


def load_run(path: str | Path, host) -> Run:
    """Load a finished (or partly trained) run for embedding and evaluation."""
    run_dir = Path(path)
    cfg_path = run_dir / CONFIG_FILE
    if not cfg_path.is_file():
        raise DataError(f"{run_dir}: not a contrastkit run directory (no {CONFIG_FILE}); run 'contrastkit pretrain' first.")
    config = json.loads(cfg_path.read_text())
    card = json.loads((run_dir / CARD_FILE).read_text()) if (run_dir / CARD_FILE).is_file() else {}
    ckpt_path = run_dir / CKPT_DIR / LAST_CKPT
    if not ckpt_path.is_file():
        raise DataError(f"{run_dir}: no checkpoint yet ({CKPT_DIR}/{LAST_CKPT}); the run has not finished an epoch.")
    ckpt = load_checkpoint(ckpt_path)
    modality = host.modality(config["plugin"])
    meta = ckpt.get("meta", {})
    encoder = build_encoder(host.registry, config["plugin"], config, meta)
    enc_state = {k[len("encoder."):]: v for k, v in ckpt["model"].items() if k.startswith("encoder.")}
    try:
        encoder.load_state_dict(enc_state)
    except RuntimeError as exc:
        raise ConfigError(f"{ckpt_path}: the encoder weights do not fit encoder '{config['encoder']['name']}' ({exc}).") from None
    device = default_device()
    encoder.to(device).eval()
    return Run(run_dir, config, card, modality, encoder, ckpt.get("prep_state") or {}, meta, device)


def build_model(host, cfg: dict, meta: dict) -> Pretrainer:
    from .components import build_loss

    encoder = build_encoder(host.registry, cfg["plugin"], cfg, meta)
    loss = build_loss(host.registry, cfg["plugin"], cfg)
    # A dense loss works on the encoder's per-position outputs: no projection head (and no unused
    # parameters for DDP to wait for).
    head = build_head({"name": "none"} if getattr(loss, "dense", False) else cfg["head"], encoder.out_dim)
    return Pretrainer(encoder, head, loss)
