"""Run configuration: defaults, TOML files, command-line overrides, hashing.

A run's config is one nested dict with plain values.  It is resolved in three
layers — the modality's default recipe, the user's ``--config FILE.toml``,
then command-line flags — and written to the run directory as
``config.json``.  The *config hash* covers everything that changes what is
trained (not ``epochs``, ``devices`` or ``num_workers``, so a run can be
resumed for more epochs or on other hardware).
"""

from __future__ import annotations

import copy
import hashlib
import json
import tomllib
from pathlib import Path
from typing import Any

from .errors import ConfigError

#: The ``[momentum]`` table: an EMA target network (MoCo/BYOL) and a queue of negatives (MoCo v2).
MOMENTUM_DEFAULTS: dict[str, Any] = {"enabled": False, "momentum": 0.99, "queue_size": 0, "schedule": "constant"}

#: Core defaults; a modality's ``defaults`` and the user's file override them.
BASE_CONFIG: dict[str, Any] = {
    "plugin": None,
    "data": None,
    "data_options": {},
    "seed": 0,
    "epochs": 40,
    "max_steps": None,
    # "train": pretrain on the training split only (inductive); "all": on every item, test split included
    # (the transductive protocol of GraphCL/InfoGraph/GRACE: labels are never seen in pretraining).
    "pretrain_on": "train",
    "batch_size": 16,
    "views": 2,
    "lr": 1e-3,
    "weight_decay": 1e-5,
    "warmup_epochs": 0,
    "devices": 1,
    "accelerator": "auto",
    "precision": "32-true",
    "num_workers": 0,
    "keep_checkpoints": 2,
    "encoder": {"name": None},
    "head": {"name": "mlp", "out_dim": 128, "hidden_dim": None, "layers": 2},
    "loss": {"name": "infonce", "temperature": 0.1},
    "augmentations": [],
    "joint_view": None,
    "evaluate": {"evaluators": None, "seeds": [0, 1, 2]},
    "momentum": dict(MOMENTUM_DEFAULTS),
}

#: Keys that may change between a run and its resumption.
NOT_HASHED = ("epochs", "max_steps", "devices", "num_workers", "accelerator", "keep_checkpoints")


#: Tables that name a component: a table naming another component replaces the old one whole
#: (its parameters belong to the old component).
COMPONENT_TABLES = ("encoder", "loss", "head", "joint_view")


def deep_merge(base: dict, override: dict) -> dict:
    """A copy of ``base`` with ``override`` merged in (dicts recursively; other values replaced)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        same_component = key not in COMPONENT_TABLES or (
            isinstance(value, dict) and isinstance(out.get(key), dict)
            and value.get("name", out[key].get("name")) == out[key].get("name"))
        if isinstance(value, dict) and (value or key != "joint_view") and isinstance(out.get(key), dict) \
                and same_component:
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_toml(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p}: no such file.")
    try:
        with open(p, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {p}: not valid TOML ({exc}).") from None


def resolve(modality_defaults: dict, file_config: dict | None, overrides: dict) -> dict:
    """Merge the layers and check the result."""
    cfg = deep_merge(BASE_CONFIG, modality_defaults)
    if file_config:
        unknown = sorted(set(file_config) - set(BASE_CONFIG))
        if unknown:
            raise ConfigError(
                f"config file: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(BASE_CONFIG))}."
            )
        cfg = deep_merge(cfg, file_config)
    cfg = deep_merge(cfg, {k: v for k, v in overrides.items() if v is not None})
    check(cfg)
    return cfg


def check(cfg: dict) -> None:
    def positive_int(key: str, minimum: int = 1) -> None:
        v = cfg.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or v < minimum:
            raise ConfigError(f"config '{key}' must be an integer ≥ {minimum}, got {v!r}.")

    positive_int("epochs")
    positive_int("batch_size", 2)
    positive_int("views", 2)
    positive_int("devices")
    if cfg.get("max_steps") is not None:
        positive_int("max_steps")
    positive_int("num_workers", 0)
    if not isinstance(cfg.get("seed"), int) or isinstance(cfg.get("seed"), bool):
        raise ConfigError(f"config 'seed' must be an integer, got {cfg.get('seed')!r}.")
    for key in ("lr", "weight_decay"):
        v = cfg.get(key)
        if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0 or (key == "lr" and v == 0):
            raise ConfigError(f"config '{key}' must be a {'positive' if key == 'lr' else 'non-negative'} number, got {v!r}.")
    for section in ("encoder", "loss", "head"):
        if not isinstance(cfg.get(section), dict) or not cfg[section].get("name"):
            raise ConfigError(f"config [{section}] needs a 'name'.")
    augs = cfg.get("augmentations")
    if not isinstance(augs, list) or not all(isinstance(a, dict) and a.get("name") for a in augs):
        raise ConfigError("config 'augmentations' must be a list of tables, each with a 'name'.")
    check_momentum(cfg.get("momentum"))
    if cfg.get("pretrain_on", "train") not in ("train", "all"):
        raise ConfigError(f"config 'pretrain_on' must be \"train\" or \"all\", got {cfg.get('pretrain_on')!r}.")
    jv = cfg.get("joint_view")
    if jv is False or jv == "none" or jv == {}:
        cfg["joint_view"] = jv = None
    if jv is not None and not (isinstance(jv, dict) and jv.get("name")):
        raise ConfigError("config 'joint_view' must be a table with a 'name', or \"none\" to switch it off.")


def check_momentum(section: Any) -> None:
    """Check the ``[momentum]`` table (absent in runs made before it existed: then off)."""
    if section is None:
        return
    if not isinstance(section, dict):
        raise ConfigError("config 'momentum' must be a table (enabled, momentum, queue_size, schedule).")
    unknown = sorted(set(section) - set(MOMENTUM_DEFAULTS))
    if unknown:
        raise ConfigError(f"config [momentum]: unknown key(s) {', '.join(unknown)}; "
                          f"valid keys: {', '.join(MOMENTUM_DEFAULTS)}.")
    m = {**MOMENTUM_DEFAULTS, **section}
    if not isinstance(m["enabled"], bool):
        raise ConfigError(f"config momentum.enabled must be true or false, got {m['enabled']!r}.")
    v = m["momentum"]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
        raise ConfigError(f"config momentum.momentum must be a number in [0, 1], got {v!r}.")
    q = m["queue_size"]
    if isinstance(q, bool) or not isinstance(q, int) or q < 0:
        raise ConfigError(f"config momentum.queue_size must be an integer ≥ 0 (0: no queue), got {q!r}.")
    if m["schedule"] not in ("constant", "cosine"):
        raise ConfigError(f"config momentum.schedule must be \"constant\" or \"cosine\", got {m['schedule']!r}.")
    if q and not m["enabled"]:
        raise ConfigError("config momentum.queue_size needs momentum.enabled = true (the queue holds target keys).")


def params(section: dict) -> dict:
    """A component table without its 'name'."""
    return {k: v for k, v in section.items() if k != "name"}


def config_hash(cfg: dict) -> str:
    hashed = {k: v for k, v in cfg.items() if k not in NOT_HASHED}
    blob = json.dumps(hashed, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def diff_keys(a: dict, b: dict, prefix: str = "") -> list[str]:
    """The dotted keys whose values differ between two configs (hashed keys only)."""
    out = []
    for key in sorted(set(a) | set(b)):
        if not prefix and key in NOT_HASHED:
            continue
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out.extend(diff_keys(va, vb, f"{prefix}{key}."))
        elif va != vb:
            out.append(f"{prefix}{key}")
    return out
