"""Encoders of event sequences: per-event embedding, then a GRU/LSTM or a transformer.

* :class:`EventEmbedding` — one learned embedding per categorical field
  (id 0 is padding, id 1 out of vocabulary), the numeric fields as they come
  from ``prepare`` (signed log1p and robust scaling), and optionally two
  time features: log1p of the gap to the previous event and log1p of the time
  since the sequence's first event (both in the time column's unit, days for
  dates), and with ``absolute_time`` the event's time itself, centred and scaled
  by the training data's median and inter-quartile range (``prepare`` puts them
  in meta) — it tells the encoder *when* (e.g. how recent) the events are.
  Concatenated, like pytorch-lifestream's ``TrxEncoder``.
* :class:`RNNEncoder` (``gru``, ``lstm``) — CoLES' sequence encoder (Babaev et
  al., SIGMOD 2022): the embedded events run through a recurrent network and
  the entity's representation is the last hidden state.  Only real events are
  embedded and run: the batch is turned into a ``PackedSequence`` by index
  arithmetic (no padded step is computed).
* :class:`TransformerEventEncoder` (``transformer``) — a transformer encoder
  over the embedded events with sinusoidal positions and a key padding mask;
  the representation is the masked mean over the real events.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from contrastkit.core import ConfigError, Encoder

from .batch import check_batch, encode_views

__all__ = ["EventEmbedding", "RNNEncoder", "GRUEncoder", "LSTMEncoder", "TransformerEventEncoder", "ENCODERS"]


def _dims(cat_cardinalities: Sequence[int], cat_dim: int | Sequence[int]) -> list[int]:
    if isinstance(cat_dim, int) and not isinstance(cat_dim, bool):
        return [cat_dim] * len(cat_cardinalities)
    dims = list(cat_dim)
    if len(dims) != len(cat_cardinalities):
        raise ConfigError(f"cat_dim lists {len(dims)} sizes for {len(cat_cardinalities)} categorical field(s).")
    return dims


class EventEmbedding(nn.Module):
    """Per-event features: learned embeddings of categorical fields ⊕ numeric fields ⊕ time features."""

    def __init__(self, cat_cardinalities: Sequence[int] = (), num_features: int = 0, cat_dim: int | Sequence[int] = 16,
                 time_features: bool = True, absolute_time: bool = False, time_origin: float = 0.0,
                 time_scale: float = 1.0) -> None:
        super().__init__()
        cards = [int(c) for c in cat_cardinalities]
        if any(c < 2 for c in cards):
            raise ConfigError(f"cat_cardinalities must be ≥ 2 each (padding and out-of-vocabulary), got {cards}.")
        if isinstance(num_features, bool) or not isinstance(num_features, int) or num_features < 0:
            raise ConfigError(f"num_features must be an integer ≥ 0, got {num_features!r}.")
        dims = _dims(cards, cat_dim)
        self.cat_cardinalities, self.num_features, self.time_features = cards, num_features, bool(time_features)
        self.embeddings = nn.ModuleList(nn.Embedding(c, d, padding_idx=0) for c, d in zip(cards, dims))
        self.absolute_time = bool(absolute_time)
        self.time_origin, self.time_scale = float(time_origin), float(time_scale) if time_scale else 1.0
        self.out_dim = sum(dims) + num_features + (2 if self.time_features else 0) + int(self.absolute_time)
        if self.out_dim == 0:
            raise ConfigError("the events have no categorical or numeric field and time_features is off: "
                              "nothing to embed.")

    @staticmethod
    def time_inputs(time: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(gap to the previous event, time since the first event), (B, T) each, on padded times."""
        gap = torch.zeros_like(time)
        gap[:, 1:] = time[:, 1:] - time[:, :-1]
        since = time - time[:, :1]
        return gap, since

    def forward(self, cat: torch.Tensor, num: torch.Tensor, gap: torch.Tensor | None = None,
                since: torch.Tensor | None = None, time: torch.Tensor | None = None) -> torch.Tensor:
        """Events (…, C_cat) ids, (…, C_num) numbers, (…) gaps, elapsed and absolute times → (…, out_dim)."""
        parts = [emb(cat[..., j].clamp(0, emb.num_embeddings - 1)) for j, emb in enumerate(self.embeddings)]
        if self.num_features:
            parts.append(num.to(torch.float32))
        if self.time_features:
            parts.append(torch.log1p(gap.clamp_min(0)).to(torch.float32)[..., None])
            parts.append(torch.log1p(since.clamp_min(0)).to(torch.float32)[..., None])
        if self.absolute_time:
            parts.append(((time - self.time_origin) / self.time_scale).to(torch.float32)[..., None])
        return torch.cat(parts, dim=-1)

    def check_fields(self, batch: dict, who: str) -> None:
        if batch["cat"].shape[-1] != len(self.embeddings) or batch["num"].shape[-1] != self.num_features:
            raise ConfigError(f"{who}: the batch has {batch['cat'].shape[-1]} categorical and {batch['num'].shape[-1]} "
                              f"numeric field(s); the encoder was built for {len(self.embeddings)} and "
                              f"{self.num_features}.")


def _recurrence(gi: torch.Tensor, sizes: list[int], w_hh: torch.Tensor, b_hh: torch.Tensor | None, cell: str,
                keep_outputs: bool, matmul_dtype: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Run a GRU/LSTM layer over packed events whose input projections ``gi`` (N × G·H) are given.

    ``sizes[t]`` rows are alive at step t (rows sorted by decreasing length, as in a PackedSequence).
    Only alive rows are computed; every step's inputs come from one ``split`` (a slice per step would
    make autograd allocate an N-row gradient per step).  Returns the last hidden state of every row
    (B × H, sorted order) and, if asked, the outputs in packed order (N × H).  Same maths and gate
    order as ``torch.nn.GRU`` / ``torch.nn.LSTM``.  With ``matmul_dtype`` (inference only) the
    hidden-to-hidden product runs in that dtype (e.g. bfloat16) while the state and the gates
    stay in float32.
    """
    hidden = w_hh.shape[1]
    if matmul_dtype is not None:
        w_hh = w_hh.to(matmul_dtype)
    h = gi.new_zeros((sizes[0], hidden))
    c = gi.new_zeros((sizes[0], hidden)) if cell == "lstm" else None
    done_h: list[torch.Tensor] = []
    outs: list[torch.Tensor] = []
    for bs, g in zip(sizes, gi.split(sizes)):
        if bs < h.shape[0]:
            h, finished = h.split([bs, h.shape[0] - bs])
            done_h.append(finished)
            if c is not None:
                c = c[:bs]
        if matmul_dtype is None:
            gh = F.linear(h, w_hh, b_hh)
        else:
            gh = F.linear(h.to(matmul_dtype), w_hh).to(h.dtype)
            gh = gh + b_hh if b_hh is not None else gh
        if cell == "gru":
            rz = torch.sigmoid(g[:, : 2 * hidden] + gh[:, : 2 * hidden])
            r, z = rz.chunk(2, 1)
            n = torch.tanh(torch.addcmul(g[:, 2 * hidden:], r, gh[:, 2 * hidden:]))
            h = torch.lerp(n, h, z)  # (1 − z)·n + z·h
        else:
            gates = g + gh
            i, f, gg, o = gates.chunk(4, 1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(gg)
            h = torch.sigmoid(o) * torch.tanh(c)
        if keep_outputs:
            outs.append(h)
    done_h.append(h)
    last = torch.cat(done_h[::-1]) if len(done_h) > 1 else h
    return last, (torch.cat(outs) if keep_outputs else None)


def _tanh_(x: torch.Tensor) -> torch.Tensor:
    """tanh in place as 2·σ(2x) − 1 (absolute error ~1e-7): on x86 CPUs PyTorch's vectorised sigmoid
    is about 10× faster than its tanh, which was 11 % of a GRU embedding pass."""
    return x.mul_(2.0).sigmoid_().mul_(2.0).sub_(1.0)


def _inference_recurrence(x: torch.Tensor, sizes: list[int], w_ih: torch.Tensor, b_ih: torch.Tensor | None,
                          w_hh: torch.Tensor, b_hh: torch.Tensor | None, cell: str, keep_outputs: bool,
                          matmul_dtype: torch.dtype | None = None,
                          chunk_rows: int = 2048) -> tuple[torch.Tensor, torch.Tensor | None]:
    """:func:`_recurrence` without autograd (embedding, evaluation): the same operations in the same
    order, so the same numbers, at less cost.

    * The input projection ``x @ W_ihᵀ + b_ih`` is computed a block of steps at a time (at most
      ``chunk_rows`` packed rows, at least one step) into one reused buffer: one large product per
      block, and no N × G·H tensor (hundreds of MB for a batch of long sequences) written and
      faulted in once per batch.
    * The state, gate and candidate tensors are preallocated; every step writes into prefixes of
      them (the alive rows are a prefix, sorted by decreasing length), and the hidden state is
      updated in place, so rows that have ended keep their last state where they are: no per-step
      allocation, split, or final concatenation.
    """
    hidden = w_hh.shape[1]
    n_rows, n_first = x.shape[0], sizes[0]
    gates = w_hh.shape[0]
    w_ih_t = w_ih.t()
    w_hh_t = (w_hh.to(matmul_dtype) if matmul_dtype is not None else w_hh).t()
    state = x.new_zeros((n_first, hidden))
    cstate = x.new_zeros((n_first, hidden)) if cell == "lstm" else None
    gh_buf = x.new_empty((n_first, gates))
    a_buf = x.new_empty((n_first, 2 * hidden if cell == "gru" else gates))
    b_buf = x.new_empty((n_first, hidden))
    outs = x.new_empty((n_rows, hidden)) if keep_outputs else None
    gi_buf = x.new_empty((min(max(chunk_rows, n_first), n_rows), gates))
    offsets = [0]
    for bs in sizes:
        offsets.append(offsets[-1] + bs)
    chunk_start = chunk_end = 0
    for t, bs in enumerate(sizes):
        row = offsets[t]
        if row >= chunk_end:  # project the next block of steps
            last = t + 1
            while last < len(sizes) and offsets[last + 1] - row <= gi_buf.shape[0]:
                last += 1
            chunk_start, chunk_end = row, offsets[last]  # ≤ gi_buf's rows: one step is ≤ sizes[0] rows
            block = gi_buf[: chunk_end - chunk_start]
            if b_ih is not None:
                torch.addmm(b_ih, x[chunk_start:chunk_end], w_ih_t, out=block)
            else:
                torch.mm(x[chunk_start:chunk_end], w_ih_t, out=block)
        g = gi_buf[row - chunk_start: row - chunk_start + bs]
        h, gh = state[:bs], gh_buf[:bs]
        if matmul_dtype is None:
            if b_hh is not None:
                torch.addmm(b_hh, h, w_hh_t, out=gh)
            else:
                torch.mm(h, w_hh_t, out=gh)
        else:
            gh.copy_(torch.mm(h.to(matmul_dtype), w_hh_t))
            if b_hh is not None:
                gh.add_(b_hh)
        if cell == "gru":
            rz, n = a_buf[:bs], b_buf[:bs]
            torch.add(g[:, : 2 * hidden], gh[:, : 2 * hidden], out=rz).sigmoid_()
            torch.addcmul(g[:, 2 * hidden:], rz[:, :hidden], gh[:, 2 * hidden:], out=n)
            _tanh_(n)
            torch.lerp(n, h, rz[:, hidden:], out=h)  # (1 − z)·n + z·h, in place
        else:
            c, gs, tc = cstate[:bs], a_buf[:bs], b_buf[:bs]
            torch.add(g, gh, out=gs)
            i, f, gg, o = gs.chunk(4, 1)
            # c ← σ(f)·c + σ(i)·tanh(g); h ← σ(o)·tanh(c)
            torch.mul(torch.sigmoid(f), c, out=c)
            c.add_(torch.sigmoid(i) * _tanh_(gg.clone()))
            torch.mul(torch.sigmoid(o), _tanh_(tc.copy_(c)), out=h)
        if keep_outputs:
            outs[row: row + bs] = h
    return state, outs


class RNNEncoder(Encoder):
    """Embedded events → GRU (or LSTM) over the real events only → last hidden state (B × hidden).

    No padded step is ever computed: the events are gathered into packed (time-major, longest
    first) order by index arithmetic.  ``impl = "loop"`` runs the recurrence step by step on the
    alive rows only (fast forward *and* backward on CPU, where PyTorch's packed-sequence backward
    is slow); ``"native"`` hands a ``PackedSequence`` to ``torch.nn.GRU`` (cuDNN on a GPU);
    ``"auto"``: the loop on the CPU, native elsewhere.  Both compute the same function with the
    same parameters.  Without autograd (embedding, evaluation) the loop runs in preallocated
    buffers, in place (:func:`_inference_recurrence`): the same operations, so the same numbers.
    ``forward_views`` encodes the K views of a step together, in one pass over K·B sequences
    (the views of one :class:`~.augmentations.RandomSlices` draw without even a concatenation).

    Args:
        cat_cardinalities, num_features: filled from the data's meta.
        hidden: hidden size (CoLES: 256 at scale; 128 by default here, for CPU).
        cell: "gru" or "lstm".
        layers: stacked recurrent layers.
        cat_dim: embedding size of each categorical field (one int, or one per field).
        time_features: add log1p gap and log1p elapsed time to every event.
        dropout: between stacked layers.
        impl: "auto", "loop" or "native".
        absolute_time: add the event's scaled time (time_origin, time_scale: filled from meta).
        inference_matmul: "bfloat16" runs the hidden-state product of the loop in bfloat16 when no
            gradient is taken (embedding; about 2× faster on CPUs with bf16 units); training is
            unaffected.  Default "float32".
    """

    def __init__(self, cat_cardinalities: Sequence[int] = (), num_features: int = 0, hidden: int = 128,
                 cell: str = "gru", layers: int = 1, cat_dim: int | Sequence[int] = 16, time_features: bool = True,
                 dropout: float = 0.0, impl: str = "auto", absolute_time: bool = False, time_origin: float = 0.0,
                 time_scale: float = 1.0, inference_matmul: str = "float32") -> None:
        super().__init__()
        if inference_matmul not in ("float32", "bfloat16"):
            raise ConfigError(f"RNNEncoder: inference_matmul must be \"float32\" or \"bfloat16\", got "
                              f"{inference_matmul!r}.")
        self.inference_matmul = inference_matmul
        if cell not in ("gru", "lstm"):
            raise ConfigError(f"RNNEncoder: cell must be \"gru\" or \"lstm\", got {cell!r}.")
        if impl not in ("auto", "loop", "native"):
            raise ConfigError(f"RNNEncoder: impl must be \"auto\", \"loop\" or \"native\", got {impl!r}.")
        for name, v in (("hidden", hidden), ("layers", layers)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"RNNEncoder: {name} must be an integer ≥ 1, got {v!r}.")
        self.cell, self.hidden, self.layers, self.impl = cell, hidden, layers, impl
        self.embedding = EventEmbedding(cat_cardinalities, num_features, cat_dim, time_features, absolute_time,
                                        time_origin, time_scale)
        rnn = nn.GRU if cell == "gru" else nn.LSTM
        self.rnn = rnn(self.embedding.out_dim, hidden, num_layers=layers, batch_first=False,
                       dropout=dropout if layers > 1 else 0.0)
        self.out_dim = hidden

    def _packed_inputs(self, batch: dict):
        """Embedded real events in packed order, the batch sizes per step, the sort order and its inverse."""
        lengths = batch["lengths"].detach().cpu().clamp_min(1)
        dev = batch["time"].device
        sorted_len, order = torch.sort(lengths, descending=True)
        t_max = int(sorted_len[0])
        alive = torch.arange(t_max)[None, :] < sorted_len[:, None]  # (B, T) in sorted order
        t_idx, b_sorted = alive.T.nonzero(as_tuple=True)  # time-major: the packed order
        batch_sizes = alive.sum(0)
        src = order[b_sorted].to(dev)
        t_idx = t_idx.to(dev)
        gap, since = EventEmbedding.time_inputs(batch["time"][:, :t_max])
        x = self.embedding(batch["cat"][src, t_idx], batch["num"][src, t_idx], gap[src, t_idx], since[src, t_idx],
                           batch["time"][src, t_idx])
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(len(order))
        return x, batch_sizes, order, inverse

    def pack(self, batch: dict) -> PackedSequence:
        """The batch's real events, embedded, as a PackedSequence (time-major, longest entity first)."""
        x, batch_sizes, order, inverse = self._packed_inputs(batch)
        return PackedSequence(x, batch_sizes, order.to(x.device), inverse.to(x.device))

    def _encode(self, batch: dict) -> torch.Tensor:
        x, batch_sizes, order, inverse = self._packed_inputs(batch)
        use_loop = self.impl == "loop" or (self.impl == "auto" and x.device.type == "cpu")
        if not use_loop:
            _, h = self.rnn(PackedSequence(x, batch_sizes, order.to(x.device), inverse.to(x.device)))
            return (h[0] if self.cell == "lstm" else h)[-1]
        sizes = batch_sizes.tolist()
        inp = x
        for layer in range(self.layers):
            w_ih, w_hh = getattr(self.rnn, f"weight_ih_l{layer}"), getattr(self.rnn, f"weight_hh_l{layer}")
            b_ih, b_hh = getattr(self.rnn, f"bias_ih_l{layer}", None), getattr(self.rnn, f"bias_hh_l{layer}", None)
            last_layer = layer == self.layers - 1
            if torch.is_grad_enabled():
                last, outs = _recurrence(F.linear(inp, w_ih, b_ih), sizes, w_hh, b_hh, self.cell, not last_layer)
            else:
                half = torch.bfloat16 if self.inference_matmul == "bfloat16" else None
                last, outs = _inference_recurrence(inp, sizes, w_ih, b_ih, w_hh, b_hh, self.cell, not last_layer,
                                                   half)
            if not last_layer:
                inp = F.dropout(outs, self.rnn.dropout, self.training)
        return last[inverse.to(last.device)]

    def forward(self, batch: dict) -> torch.Tensor:
        check_batch(batch, f"encoder '{self.cell}'")
        self.embedding.check_fields(batch, f"encoder '{self.cell}'")
        return self._encode(batch)

    def forward_views(self, views: list[dict]) -> list[torch.Tensor]:
        """The K views in one pass over all their sequences (core's ``Pretrainer`` calls this)."""
        for v in views:
            check_batch(v, f"encoder '{self.cell}'")
            self.embedding.check_fields(v, f"encoder '{self.cell}'")
        return encode_views(self._encode, views)


class GRUEncoder(RNNEncoder):
    """:class:`RNNEncoder` with a GRU (CoLES' default)."""

    def __init__(self, cat_cardinalities: Sequence[int] = (), num_features: int = 0, hidden: int = 128,
                 layers: int = 1, cat_dim: int | Sequence[int] = 16, time_features: bool = True,
                 dropout: float = 0.0, impl: str = "auto", absolute_time: bool = False, time_origin: float = 0.0,
                 time_scale: float = 1.0, inference_matmul: str = "float32") -> None:
        super().__init__(cat_cardinalities, num_features, hidden, "gru", layers, cat_dim, time_features, dropout,
                         impl, absolute_time, time_origin, time_scale, inference_matmul)


class LSTMEncoder(RNNEncoder):
    """:class:`RNNEncoder` with an LSTM; the representation is the last hidden state h (not the cell state)."""

    def __init__(self, cat_cardinalities: Sequence[int] = (), num_features: int = 0, hidden: int = 128,
                 layers: int = 1, cat_dim: int | Sequence[int] = 16, time_features: bool = True,
                 dropout: float = 0.0, impl: str = "auto", absolute_time: bool = False, time_origin: float = 0.0,
                 time_scale: float = 1.0, inference_matmul: str = "float32") -> None:
        super().__init__(cat_cardinalities, num_features, hidden, "lstm", layers, cat_dim, time_features, dropout,
                         impl, absolute_time, time_origin, time_scale, inference_matmul)


class TransformerEventEncoder(Encoder):
    """Embedded events → linear to d_model + sinusoidal positions → transformer encoder with a key
    padding mask → masked mean over the real events (B × d_model)."""

    def __init__(self, cat_cardinalities: Sequence[int] = (), num_features: int = 0, d_model: int = 128,
                 heads: int = 4, layers: int = 2, ff_dim: int = 256, dropout: float = 0.1,
                 cat_dim: int | Sequence[int] = 16, time_features: bool = True, absolute_time: bool = False,
                 time_origin: float = 0.0, time_scale: float = 1.0) -> None:
        super().__init__()
        for name, v in (("d_model", d_model), ("heads", heads), ("layers", layers), ("ff_dim", ff_dim)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"TransformerEventEncoder: {name} must be an integer ≥ 1, got {v!r}.")
        if d_model % heads:
            raise ConfigError(f"TransformerEventEncoder: d_model ({d_model}) must be a multiple of heads ({heads}).")
        self.embedding = EventEmbedding(cat_cardinalities, num_features, cat_dim, time_features, absolute_time,
                                        time_origin, time_scale)
        self.proj = nn.Linear(self.embedding.out_dim, d_model)
        layer = nn.TransformerEncoderLayer(d_model, heads, ff_dim, dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.d_model = d_model
        self.out_dim = d_model

    def positional(self, t: int, device) -> torch.Tensor:
        pos = torch.arange(t, device=device, dtype=torch.float32)[:, None]
        freq = torch.exp(torch.arange(0, self.d_model, 2, device=device, dtype=torch.float32)
                         * (-math.log(10000.0) / self.d_model))
        pe = torch.zeros(t, self.d_model, device=device)
        pe[:, 0::2] = torch.sin(pos * freq)
        pe[:, 1::2] = torch.cos(pos * freq[: self.d_model // 2])
        return pe

    def forward(self, batch: dict) -> torch.Tensor:
        check_batch(batch, "encoder 'transformer'")
        self.embedding.check_fields(batch, "encoder 'transformer'")
        return self._encode(batch)

    def forward_views(self, views: list[dict]) -> list[torch.Tensor]:
        """The K views in one pass over all their sequences (core's ``Pretrainer`` calls this)."""
        for v in views:
            check_batch(v, "encoder 'transformer'")
            self.embedding.check_fields(v, "encoder 'transformer'")
        return encode_views(self._encode, views)

    def _encode(self, batch: dict) -> torch.Tensor:
        lengths = batch["lengths"].clamp_min(1)
        t = int(lengths.max())
        time = batch["time"][:, :t]
        pad = torch.arange(t, device=time.device)[None, :] >= lengths[:, None]
        gap, since = EventEmbedding.time_inputs(time)
        x = self.proj(self.embedding(batch["cat"][:, :t], batch["num"][:, :t], gap, since, time))
        x = x + self.positional(t, x.device)[None]
        y = self.norm(self.encoder(x, src_key_padding_mask=pad))
        w = (~pad).to(y.dtype)[..., None]
        return (y * w).sum(1) / w.sum(1)


ENCODERS = {"gru": GRUEncoder, "lstm": LSTMEncoder, "transformer": TransformerEventEncoder}
