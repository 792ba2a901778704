"""The events modality: the recipe, preprocessing fitted on training entities, embedding, the views picture.

Items are per-entity dicts of numpy arrays (see :mod:`.readers`); batches are
padded tensors plus lengths (see :mod:`.batch`).  ``prepare`` fits, on the
training entities only, the vocabulary of every categorical field (ids 0 =
padding, 1 = out of vocabulary, then values by decreasing frequency, those
seen fewer than ``min_frequency`` times going to the OOV bucket) and a
transform of every numeric field (signed log1p, then robust scaling by the
median and inter-quartile range), and saves both in the run, so ``embed`` on
new data maps values exactly as in training.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import numpy as np
import torch

from contrastkit.core import ConfigError, DataError, Modality, Samples

from .augmentations import resolve_slice_lengths
from .batch import collate
from .messages import note, warn
from .store import EventStore, FlatWriter, scratch_folder
from .options import EventsOptions

#: The default recipe: CoLES (Babaev et al., SIGMOD 2022) — K = 5 random slices per entity, a GRU, the
#: margin loss with hard negatives.  Hidden 128 (CoLES uses 256) so the main job runs on 2 CPU cores in
#: minutes.  The slice lengths follow the training data ("auto", see ``auto_slice_lengths``): CoLES'
#: 25–200 on sequences of hundreds of events, 1–4 on CDNOW's short purchase histories (median 1,
#: 90th percentile 4).
DEFAULTS: dict[str, Any] = {
    "epochs": 8,
    "max_steps": 1500,
    "batch_size": 64,
    "views": 5,
    "lr": 2e-3,
    "encoder": {"name": "gru", "hidden": 128, "absolute_time": True},
    "head": {"name": "none"},
    "loss": {"name": "coles", "margin": 0.5, "neg_count": 5},
    "joint_view": {"name": "random_slices", "min_length": "auto", "max_length": "auto"},
    "augmentations": [],
    "data_options": {"min_events": 1, "min_frequency": 5, "numeric_transform": "log1p", "scaling": "robust"},
    "evaluate": {"evaluators": ["entity"], "seeds": [0, 1, 2]},
}

TRANSFORMS = ("log1p", "none")
SCALINGS = ("robust", "standard", "none")
PAD, OOV = 0, 1


def _opt_int(options: dict, key: str, default: int | None, minimum: int) -> int | None:
    v = options.get(key, default)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise ConfigError(f"data_options.{key} must be an integer ≥ {minimum}, got {v!r}.")
    return v


def signed_log1p(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


def transform_numeric(num: np.ndarray, spec: dict) -> np.ndarray:
    """Apply a fitted numeric transform (``state["numeric"]``) to (N, C) raw values; NaN becomes 0."""
    x = num.astype(np.float64)
    if spec["transform"] == "log1p":
        x = signed_log1p(x)
    x = (x - np.asarray(spec["center"])) / np.asarray(spec["scale"])
    return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


def inverse_numeric(num: np.ndarray, spec: dict) -> np.ndarray:
    """Raw values back from transformed ones (for aggregate features)."""
    x = num.astype(np.float64) * np.asarray(spec["scale"]) + np.asarray(spec["center"])
    if spec["transform"] == "log1p":
        x = np.sign(x) * np.expm1(np.abs(x))
    return x


def _fit_numeric(num: np.ndarray, transform: str, scaling: str) -> dict:
    x = num.astype(np.float64)
    if transform == "log1p":
        x = signed_log1p(x)
    c = num.shape[1]
    center, scale = [0.0] * c, [1.0] * c
    for j in range(c):
        col = x[:, j][np.isfinite(x[:, j])]
        if col.size == 0 or scaling == "none":
            continue
        if scaling == "robust":
            q25, med, q75 = np.percentile(col, [25, 50, 75])
            s = q75 - q25
            center[j] = float(med)
        else:
            center[j] = float(col.mean())
            s = 0.0
        if not s > 1e-12:
            s = float(col.std())
        scale[j] = float(s) if s > 1e-12 else 1.0
    return {"transform": transform, "center": center, "scale": scale}


def _fit_vocab(counts: np.ndarray, names: list[str], min_frequency: int, max_vocab: int) -> tuple[list[str], list[str]]:
    order = np.argsort(-counts, kind="stable")
    kept = [int(i) for i in order if counts[i] >= min_frequency][:max_vocab]
    kept_set = set(kept)
    rare = [names[i] for i in order if counts[i] > 0 and i not in kept_set]
    return [names[i] for i in kept], rare[:100_000]


#: Numeric and time transforms are fitted on at most this many events (drawn uniformly, seeded, with
#: replacement); vocabularies always count every event.
FIT_ROWS = 4_000_000
#: Events mapped per chunk in ``prepare`` (bounds its memory for data larger than memory).
CHUNK_EVENTS = 1_000_000


def as_store(items) -> EventStore:
    """The items as an :class:`~.store.EventStore` (a list of per-entity dicts is concatenated once)."""
    if isinstance(items, EventStore):
        return items
    try:
        lengths = np.fromiter((len(it["time"]) for it in items), dtype=np.int64, count=len(items))
        time = np.concatenate([np.asarray(it["time"], dtype=np.float64) for it in items])
        cat = np.concatenate([np.asarray(it["cat"], dtype=np.int32) for it in items])
        num = np.concatenate([np.asarray(it["num"], dtype=np.float32) for it in items])
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"events items must be dicts of 'time', 'cat' and 'num' arrays ({exc}).") from None
    return EventStore.from_flat(np.cumsum(lengths) - lengths, time, cat, num)


def prepare(samples: Samples, state: dict | None, options: dict) -> tuple[Samples, dict]:
    """Fit (``state=None``: on these training entities) or apply the vocabularies and numeric transforms.

    While fitting, entities with fewer than ``min_events`` events are skipped (with a count); with a fitted
    state every entity is kept, so ``embed`` covers them all.  The events are mapped a chunk at a time;
    events in memory-mapped files (read out of core) are mapped into new files beside them.
    """
    options = dict(options or {})
    src = samples.source or "data"
    min_events = _opt_int(options, "min_events", 1, 1)
    max_events = _opt_int(options, "max_events", None, 1)
    min_frequency = _opt_int(options, "min_frequency", 5, 1)
    max_vocab = _opt_int(options, "max_vocab", 50_000, 1)
    transform = options.get("numeric_transform", "log1p")
    scaling = options.get("scaling", "robust")
    if transform not in TRANSFORMS:
        raise ConfigError(f"data_options.numeric_transform must be one of {', '.join(TRANSFORMS)}, got {transform!r}.")
    if scaling not in SCALINGS:
        raise ConfigError(f"data_options.scaling must be one of {', '.join(SCALINGS)}, got {scaling!r}.")
    if len(samples) == 0:
        raise DataError(f"{src}: no entities.")
    meta = dict(samples.meta)
    for key in ("cat_columns", "num_columns", "cat_names"):
        if key not in meta:
            raise DataError(f"{src}: the samples lack meta['{key}']; read them with an events reader.")
    store = as_store(samples.items)
    lengths = store.lengths
    if state is None and (lengths < min_events).any():
        keep = np.flatnonzero(lengths >= min_events)
        note(f"{src}: {len(samples) - len(keep)} of {len(samples)} entities have fewer than {min_events} events "
              f"(data_options.min_events) and are skipped in pretraining.")
        if len(keep) == 0:
            raise DataError(f"{src}: no entity has {min_events} or more events; lower data_options.min_events.")
        samples = samples.subset(keep)
        store = store.subset(keep)
    if max_events is not None and (store.lengths > max_events).any():  # each entity's last max_events events
        store = store.last(max_events)
    cats, nums = list(meta["cat_columns"]), list(meta["num_columns"])
    names = {c: list(meta["cat_names"][c]) for c in cats}
    chunks = list(store.chunks(CHUNK_EVENTS))
    counts = {c: np.zeros(len(names[c]), dtype=np.int64) for c in cats}
    for lo, hi in chunks if cats else ():  # every event's category, counted (vocabularies, unseen values)
        cat = store.gather(lo, hi, ("cat",))["cat"]
        for j, c in enumerate(cats):
            counts[c] += np.bincount(cat[:, j], minlength=len(names[c]))[: len(names[c])]

    if state is None:
        vocab, rare = {}, {}
        for c in cats:
            vocab[c], rare[c] = _fit_vocab(counts[c], names[c], min_frequency, max_vocab)
        rows = store.sample_rows(FIT_ROWS, seed=0)
        time_s = np.asarray(store.time[rows], dtype=np.float64)
        q25, med, q75 = np.percentile(time_s, [25, 50, 75])
        spread = float(q75 - q25) if q75 > q25 else float(time_s.std())
        state = {"cat_columns": cats, "num_columns": nums, "vocab": vocab, "rare": rare,
                 "numeric": _fit_numeric(np.asarray(store.num[rows]), transform, scaling),
                 "time": {"origin": float(med), "scale": spread if spread > 1e-12 else 1.0}}
        if len(rows) < store.n_events:
            state["fitted_on_events"] = int(len(rows))
            note(f"{src}: numeric and time scaling fitted on {len(rows):,} of {store.n_events:,} events, drawn "
                  "uniformly; vocabularies count every event.")
    else:
        missing = [c for c in state["cat_columns"] + state["num_columns"] if c not in cats + nums]
        if missing or cats != state["cat_columns"] or nums != state["num_columns"]:
            raise DataError(f"{src}: the run was trained on categorical {state['cat_columns']} and numeric "
                            f"{state['num_columns']}, but these data have {cats} and {nums}; name the same columns "
                            "in data_options.")

    luts = []
    for c in cats:
        index = {name: i + 2 for i, name in enumerate(state["vocab"][c])}
        luts.append(np.fromiter((index.get(n, OOV) for n in names[c]), dtype=np.int32, count=len(names[c])))
        known = set(state["vocab"][c]) | set(state["rare"].get(c, ()))
        unseen = [i for i, n in enumerate(names[c]) if counts[c][i] > 0 and n not in known]
        if unseen:
            warn(f"{src}: column {c!r} has {len(unseen)} value(s) never seen in training (e.g. {names[c][unseen[0]]!r}, "
                  f"{int(counts[c][unseen].sum())} events); they map to the out-of-vocabulary id.")

    n_events, out_len = store.n_events, store.lengths
    writer = None
    if store.on_disk and store.home is not None:
        writer = FlatWriter(scratch_folder(store.home.parent, "prepared-"), len(cats), len(nums))
    else:
        out_time = np.empty(n_events, dtype=np.float64)
        out_cat = np.empty((n_events, len(cats)), dtype=np.int32)
        out_num = np.empty((n_events, len(nums)), dtype=np.float32)
    at = 0
    for lo, hi in chunks:
        g = store.gather(lo, hi)
        mapped = np.empty(g["cat"].shape, dtype=np.int32)
        for j in range(len(cats)):
            mapped[:, j] = luts[j][g["cat"][:, j]]
        num_t = transform_numeric(g["num"], state["numeric"]) if nums else np.asarray(g["num"], dtype=np.float32)
        if writer is not None:
            writer.append(g["time"], mapped, num_t)
        else:
            m = len(g["time"])
            out_time[at:at + m], out_cat[at:at + m], out_num[at:at + m] = g["time"], mapped, num_t
            at += m
    starts = (np.cumsum(out_len) - out_len).astype(np.int64)
    if writer is not None:
        new_items = writer.open(starts, out_len)
        if os.name == "posix":  # the maps keep the files alive; nothing is left behind on disk
            shutil.rmtree(writer.folder, ignore_errors=True)
    else:
        new_items = EventStore(out_time, out_cat, out_num, starts, out_len)
    meta.update({
        "length_percentiles": [float(q) for q in np.percentile(out_len, [10, 50, 90])],
        "cat_cardinalities": [len(state["vocab"][c]) + 2 for c in cats],
        "num_features": len(nums),
        "numeric_state": state["numeric"],
        "time_origin": state["time"]["origin"],
        "time_scale": state["time"]["scale"],
        "n_events": int(n_events),
    })
    meta.pop("cat_names", None)
    out = Samples(ids=samples.ids, items=new_items, labels=samples.labels, split=samples.split, meta=meta,
                  source=samples.source, fingerprint=samples.fingerprint)
    return out, state


def _lengths(items) -> np.ndarray:
    if isinstance(items, EventStore):
        return items.lengths
    return np.fromiter((len(it["time"]) for it in items), dtype=np.int64, count=len(items))


def check(samples: Samples, config: dict) -> None:
    """Say how many training entities are shorter than the slices' minimum (they are used whole)."""
    jv = config.get("joint_view") or {}
    if jv.get("name") == "random_slices":
        lo, _ = resolve_slice_lengths(jv.get("min_length", "auto"), jv.get("max_length", "auto"),
                                      samples.meta.get("length_percentiles"))
        short = int((_lengths(samples.items) < lo).sum())
        if short:
            note(f"{samples.source or 'data'}: {short} of {len(samples)} training entities have fewer than "
                  f"{lo} events (random_slices.min_length) and give their whole sequence to every view; set "
                  f"data_options.min_events = {lo} to skip them.")


@torch.no_grad()
def embed(encoder: torch.nn.Module, items, device, batch_size: int) -> torch.Tensor:
    """Embed entities in batches of similar length (sorted), then restore the input order."""
    n = len(items)
    if n == 0:
        return torch.zeros((0, int(getattr(encoder, "out_dim", 0))))
    lengths = _lengths(items)
    order = np.argsort(-lengths, kind="stable")
    # Batches hold about 16 × batch_size × (a typical length) events, so short sequences go in large
    # batches: the recurrence steps over the batch's longest sequence once, with the alive rows in
    # one matrix product per step, and wider products run closer to the CPU's peak (16 × 64 rows of
    # GRU 256 embedded 1.10× faster than 4 × 64 at 2 threads, and 64 × 64 lost again).
    budget = 16 * max(int(batch_size), 1) * max(int(np.median(lengths)), 32)
    out = torch.empty((n, int(encoder.out_dim)), dtype=torch.float32)
    start = 0
    while start < n:
        size = max(1, min(n - start, budget // max(int(lengths[order[start]]), 1), 4096))
        idx = order[start:start + size]
        batch = {k: v.to(device) for k, v in collate([items[i] for i in idx]).items()}
        out[torch.from_numpy(idx)] = encoder(batch).float().cpu()
        start += size
    return out


def plot_views(batch: dict, views: list[dict], path, title: str = "", ids=None) -> None:
    """One panel per entity: its events on a time line (first row) and each view's events below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from contrastkit.core import atomic_savefig

    n, k = int(batch["lengths"].shape[0]), len(views)
    fig, axes = plt.subplots(n, 1, figsize=(9, n * (0.28 * (k + 1) + 0.7)), squeeze=False)
    for i in range(n):
        ax = axes[i, 0]
        for row, b in enumerate([batch] + list(views)):
            length = int(b["lengths"][i])
            t = b["time"][i, :length].detach().cpu().numpy()
            colour = b["cat"][i, :length, 0].detach().cpu().numpy() if b["cat"].shape[-1] else None
            if colour is None:
                ax.scatter(t, np.full(length, -row), s=12, marker="|", color="C0", linewidths=0.8)
            else:
                ax.scatter(t, np.full(length, -row), c=colour % 20, cmap="tab20", s=9, vmin=0, vmax=19)
            if length:
                ax.hlines(-row, t.min(), t.max(), color="0.8", lw=0.6, zorder=0)
        ax.set_yticks([-r for r in range(k + 1)], ["events"] + [f"view {j + 1}" for j in range(k)], fontsize=7)
        ax.set_ylim(-k - 0.6, 0.6)
        label = f"entity {ids[i]}" if ids is not None else f"entity {i}"
        ax.set_title(f"{label}: {int(batch['lengths'][i])} events", fontsize=8, loc="left")
        ax.tick_params(axis="x", labelsize=6)
    axes[-1, 0].set_xlabel("time (days)", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    atomic_savefig(fig, path)
    plt.close(fig)


def events_modality() -> Modality:
    return Modality(
        name="events",
        collate=collate,
        default_data="CDNOW",
        options=EventsOptions,
        defaults=DEFAULTS,
        prepare=prepare,
        check=check,
        batch_size=lambda b: int(b["lengths"].shape[0]),
        plot_views=plot_views,
        embed=embed,
        description="Event sequences per entity (transactions, purchases, logs): parquet/CSV, CDNOW, synthetic",
    )
