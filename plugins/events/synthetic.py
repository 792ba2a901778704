"""Synthetic transactions with a known per-client label, for tests and for scale.

Every client belongs to class 0 or 1 (a fair coin), and the class changes the
process that generates its events, so a label exists that an encoder can
learn without anyone annotating anything:

* category codes: a shared Zipf-like popularity over ``n_categories`` codes,
  mixed with the client's own favourite codes (an identity the contrastive
  views can latch onto); class 1 clients draw a share ``signal`` of their
  events from a class-specific block of codes;
* amounts: log-normal around a per-client level; class 1 spends more on its
  own block of codes;
* time: exponential gaps at a per-client rate; class 1 is a little faster.

Everything is drawn with vectorised numpy (no loop over clients or events):
tens of millions of rows take a few seconds.  The layout follows
pytorch-lifestream's CoLES tutorial (amount + category code per event, 50–300
events per client).
"""

from __future__ import annotations

import numpy as np
import polars as pl

__all__ = ["generate_transactions", "synthetic_frames"]

#: 2020-01-01 in days since the Unix epoch.
_START_DAY = 18262


def generate_transactions(
    n_clients: int = 5000,
    min_events: int = 50,
    max_events: int = 300,
    n_categories: int = 100,
    signal: float = 0.15,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Flat arrays of events sorted by (client, time), and one label per client.

    Returns ``{"client_id": int64 (N,), "event_time": float64 days since the
    epoch (N,), "category": int32 (N,), "amount": float32 (N,), "label":
    int8 (n_clients,), "lengths": int64 (n_clients,)}``.
    """
    if n_clients < 1 or min_events < 1 or max_events < min_events or n_categories < 12:
        raise ValueError("need n_clients ≥ 1, 1 ≤ min_events ≤ max_events and n_categories ≥ 12.")
    rng = np.random.default_rng(seed)
    lengths = rng.integers(min_events, max_events + 1, size=n_clients)
    label = (rng.random(n_clients) < 0.5).astype(np.int8)
    total = int(lengths.sum())
    owner = np.repeat(np.arange(n_clients, dtype=np.int64), lengths)
    lab = label[owner].astype(bool)

    # categories: popular codes, the client's favourites, and (class 1) a class-specific block
    ranks = np.arange(1, n_categories + 1, dtype=np.float64)
    pop = ranks ** -1.1
    cdf = np.cumsum(pop / pop.sum())
    cat = np.searchsorted(cdf, rng.random(total)).astype(np.int32)
    favourites = rng.integers(0, n_categories, size=(n_clients, 3))
    fav_pick = favourites[owner, rng.integers(0, 3, size=total)]
    use_fav = rng.random(total) < 0.3
    cat = np.where(use_fav, fav_pick, cat).astype(np.int32)
    block = np.arange(n_categories - 10, n_categories)  # rare codes under the Zipf law
    in_block = lab & (rng.random(total) < signal)
    cat = np.where(in_block, block[rng.integers(0, 10, size=total)], cat).astype(np.int32)

    # amounts: per-client level, class 1 spends more in its block
    level = rng.normal(3.0, 0.6, size=n_clients)
    amount = np.exp(level[owner] + 0.5 * in_block + rng.normal(0.0, 0.8, size=total)).astype(np.float32)

    # time: per-client exponential gaps, cumulative within the client
    rate = rng.gamma(2.0, 0.5, size=n_clients) * np.where(label == 1, 1.3, 1.0)
    gaps = rng.exponential(1.0, size=total) / rate[owner]
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    csum = np.cumsum(gaps)
    before = np.concatenate([[0.0], csum])[starts]  # the sum of gaps of earlier clients
    t = csum - np.repeat(before, lengths)
    t0 = rng.uniform(0, 30, size=n_clients)
    event_time = _START_DAY + t0[owner] + t
    return {"client_id": owner, "event_time": event_time, "category": cat, "amount": amount,
            "label": label, "lengths": lengths}


def synthetic_frames(n_clients: int = 5000, seed: int = 0, shuffle: bool = True,
                     **kwargs) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(events, labels) tables as a user would have them: one row per event (rows shuffled,
    time as a datetime), and one row per client with its label."""
    g = generate_transactions(n_clients=n_clients, seed=seed, **kwargs)
    n = len(g["client_id"])
    order = np.random.default_rng(seed + 1).permutation(n) if shuffle else np.arange(n)
    micros = np.round(g["event_time"][order] * 86_400_000_000).astype(np.int64)
    events = pl.DataFrame({
        "client_id": g["client_id"][order],
        "event_time": pl.Series("event_time", micros).cast(pl.Datetime("us")),
        "category": g["category"][order],
        "amount": g["amount"][order],
    })
    labels = pl.DataFrame({"client_id": np.arange(n_clients, dtype=np.int64), "label": g["label"].astype(np.int64)})
    return events, labels
