"""MiniRocket: random-convolution features of time series, and the baseline evaluator built on it.

Dempster, Schmidt & Webb, "MINIROCKET: A Very Fast (Almost) Deterministic Transform for Time
Series Classification", KDD 2021 (arXiv:2012.08791).  Written here from the paper's description, in
vectorised numpy (no numba); its features equal aeon's ``MiniRocket`` given the same random state
(tests/plugins/timeseries/test_minirocket.py).

The transform, for a series ``x`` of length ``T``:

- **Kernels.**  84 kernels of length 9: weight ``-1`` at six positions and ``2`` at three, one
  kernel per choice of the three positions ``{a, b, c} ⊂ {0..8}`` (C(9,3) = 84).  Since
  ``w = -1 + 3·1[j ∈ {a,b,c}]``, the convolution at dilation ``d`` is

  ``C_k(t) = α(t) + γ_a(t) + γ_b(t) + γ_c(t)``,  ``α(t) = -Σ_{j=0..8} x(t + (j-4)d)``,
  ``γ_j(t) = 3·x(t + (j-4)d)``

  (zero outside the series): nine shifted copies serve all 84 kernels.
- **Dilations.**  ``min(F/84, 32)`` values ``⌊2^e⌋``, ``e`` evenly spaced in ``[0, log2((T-1)/8)]``;
  duplicates merge, and the ``F/84`` features of each kernel are spread over the distinct
  dilations in proportion to their multiplicity (the remainder one by one from the smallest).
  ``F = 10,000`` gives ``84·119 = 9,996`` features.
- **Padding.**  Kernel ``k`` at dilation index ``i`` uses the whole ("same"-padded) output when
  ``(i + k)`` is even and only the part computed without padding, ``t ∈ [4d, T-4d)``, when odd.
- **Biases.**  For each (dilation, kernel) one training example is drawn at random; its padded
  output's quantiles at ``{n·φ mod 1}`` (φ the golden ratio, ``n`` the running feature number) are
  that kernel's biases.
- **Features.**  PPV, the proportion of positive values of ``C_k(t) - bias`` over ``t``.
- **Multivariate** (the paper's multivariate variant): each (dilation, kernel) combination sums the
  convolution over ``⌊2^u⌋`` channels (``u ~ U[0, log2(min(C, 9) + 1))``) drawn without replacement.

Random draws follow aeon's (NumPy's legacy Mersenne Twister seeded with ``seed``: the channel
counts and channels from one stream, the bias examples from a second one seeded alike), so a seed
gives the features aeon's ``MiniRocket(random_state=seed)`` gives.

Beyond the paper: missing values (NaN) are filled by linear interpolation per channel; series
shorter than 9 steps are padded with zeros at the end to 9 steps (aeon asks the caller to do
exactly this); series of other lengths than the fitted one are transformed at their own length
with the fitted dilations, and where a series is too short for the unpadded part of a dilation
(``T ≤ 8d``) that feature uses the padded output.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from contrastkit.core import ConfigError, DataError, FeatureBaseline, Samples, check_int

__all__ = ["MiniRocket", "MiniRocketParameters", "MiniRocketBaseline", "fit_dilations", "quantile_sequence",
           "KERNEL_INDICES", "EVALUATORS"]

#: The positions of the three weights ``2`` of each of the 84 kernels (lexicographic order).
KERNEL_INDICES = np.array(list(itertools.combinations(range(9), 3)), dtype=np.int64)
N_KERNELS = 84
KERNEL_LENGTH = 9
#: Floats of the largest intermediate array (84 kernels × items × channels × steps) per chunk.
_CHUNK_FLOATS = 1 << 23


def fit_dilations(length: int, n_features: int = 10_000, max_dilations_per_kernel: int = 32
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The distinct dilations for series of ``length`` steps and the features of each kernel at each.

    ``min(n_features // 84, max_dilations_per_kernel)`` exponents evenly spaced in
    ``[0, log2((length - 1) / 8)]``, dilations ``⌊2^e⌋``; a dilation drawn ``m`` times gets
    ``⌊m · (n_features//84) / n⌋`` features per kernel, the remainder handed out one by one from the
    smallest dilation.  Returns (dilations, features per dilation), both int64, summing to
    ``n_features // 84`` features per kernel.
    """
    if length < KERNEL_LENGTH:
        raise DataError(f"MiniRocket needs series of at least {KERNEL_LENGTH} steps to fit dilations, got {length}.")
    per_kernel = n_features // N_KERNELS
    n = min(per_kernel, max_dilations_per_kernel)
    multiplier = per_kernel / n
    exponent = np.log2((length - 1) / (KERNEL_LENGTH - 1))
    drawn = np.logspace(0, exponent, n, base=2).astype(np.int32)
    dilations, counts = np.unique(drawn, return_counts=True)
    per_dilation = (counts * multiplier).astype(np.int32).astype(np.int64)
    left = per_kernel - int(per_dilation.sum())
    for i in range(left):
        per_dilation[i % len(per_dilation)] += 1
    return dilations.astype(np.int64), per_dilation


def quantile_sequence(n: int) -> np.ndarray:
    """``{i·φ mod 1}`` for ``i = 1..n`` (φ = (1+√5)/2), float32: the quantiles the biases sit at."""
    phi = (np.sqrt(5.0) + 1.0) / 2.0
    return ((np.arange(1, n + 1, dtype=np.float64) * phi) % 1.0).astype(np.float32)


def _quantiles_like_aeon(values: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Linear interpolation between closest ranks, in float64, as aeon's numba ``np.quantile``
    computes it (rank ``1 + (n-1)·q``), rounded to float32."""
    s = np.sort(values.astype(np.float64))
    n = len(s)
    if n == 1:
        return np.full(len(q), s[0], dtype=np.float32)
    pct = q.astype(np.float64) * 100.0
    rank = 1.0 + (n - 1) * (pct / 100.0)
    f = np.floor(rank)
    m = rank - f
    lo = f.astype(np.int64) - 1
    hi = np.minimum(lo + 1, n - 1)
    return (s[lo] * (1.0 - m) + s[hi] * m).astype(np.float32)


@dataclass
class MiniRocketParameters:
    """What a fitted MiniRocket holds (aeon's ``parameters`` tuple, in the same order of fields).

    ``channel_counts[i]`` channels of combination ``i`` (``i = dilation_index·84 + kernel``) are
    ``channel_indices[sum(channel_counts[:i]) : sum(channel_counts[:i+1])]``; ``biases`` has
    ``84 · sum(features_per_dilation)`` entries, dilation-major then kernel then feature.
    """

    channel_counts: np.ndarray
    channel_indices: np.ndarray
    dilations: np.ndarray
    features_per_dilation: np.ndarray
    biases: np.ndarray

    def __post_init__(self) -> None:
        self.channel_counts = np.asarray(self.channel_counts, dtype=np.int64)
        self.channel_indices = np.asarray(self.channel_indices, dtype=np.int64)
        self.dilations = np.asarray(self.dilations, dtype=np.int64)
        self.features_per_dilation = np.asarray(self.features_per_dilation, dtype=np.int64)
        self.biases = np.asarray(self.biases, dtype=np.float32)
        n_comb = N_KERNELS * len(self.dilations)
        if len(self.features_per_dilation) != len(self.dilations):
            raise ConfigError(f"MiniRocket parameters: {len(self.dilations)} dilations but "
                              f"{len(self.features_per_dilation)} feature counts; expected one per dilation.")
        if len(self.channel_counts) != n_comb or int(self.channel_counts.sum()) != len(self.channel_indices):
            raise ConfigError(f"MiniRocket parameters: expected {n_comb} channel counts summing to the "
                              f"{len(self.channel_indices)} channel indices.")
        if len(self.biases) != N_KERNELS * int(self.features_per_dilation.sum()):
            raise ConfigError(f"MiniRocket parameters: {len(self.biases)} biases; expected "
                              f"{N_KERNELS * int(self.features_per_dilation.sum())} (84 × features per kernel).")

    @property
    def n_features(self) -> int:
        return len(self.biases)

    def combinations(self) -> list[np.ndarray]:
        """The channels of each (dilation, kernel) combination, in the order they are summed."""
        ends = np.cumsum(self.channel_counts)
        return [self.channel_indices[e - c:e] for c, e in zip(self.channel_counts, ends)]


# --------------------------------------------------------------------------- convolution


def _alpha_gammas(x: np.ndarray, d: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """α (… × T) and the nine γ_j (views, … × T) of ``x`` at dilation ``d``.

    ``x`` is zero-padded by 4d on both sides once; ``γ_j(t) = 3·x(t + (j-4)d)`` is then the slice
    starting at ``j·d`` (no copy).  α sums −x over the centre, then the offsets −4d…−d, then +d…+4d,
    in that order (float32 rounding as in aeon's transform)."""
    t, pad = x.shape[-1], 4 * d
    width = [(0, 0)] * (x.ndim - 1) + [(pad, pad)]
    neg = np.pad(-x, width)
    g = np.pad(3 * x, width)
    alpha = neg[..., pad:pad + t].copy()
    for j in (0, 1, 2, 3, 5, 6, 7, 8):
        alpha += neg[..., j * d:j * d + t]
    return alpha, [g[..., j * d:j * d + t] for j in range(9)]


def _kernel_outputs(x: np.ndarray, d: int) -> np.ndarray:
    """All 84 kernels' outputs at dilation ``d``: ``84 × N × C × T`` for ``x`` of ``N × C × T``,
    each ``((α + γ_a) + γ_b) + γ_c``."""
    alpha, g = _alpha_gammas(x, d)
    out = np.empty((N_KERNELS,) + x.shape, dtype=np.float32)
    for k, (a, b, c) in enumerate(KERNEL_INDICES):
        np.add(alpha, g[a], out=out[k])
        out[k] += g[b]
        out[k] += g[c]
    return out


def _combine(out: np.ndarray, combos: Sequence[np.ndarray]) -> np.ndarray:
    """``84 × N × T``: kernel k's output summed over its combination's channels, in their order."""
    k, n, c, t = out.shape
    if c == 1:
        return out[:, :, 0]
    total = np.empty((k, n, t), dtype=np.float32)
    for i, ch in enumerate(combos):
        total[i] = out[i, :, ch[0]]
        for extra in ch[1:]:
            total[i] += out[i, :, extra]
    return total


def _ppv(conv: np.ndarray, biases: np.ndarray) -> np.ndarray:
    """Proportion of ``conv`` (``K × N × L``) above each bias (``K × F``): ``K × N × F`` float32.

    The count is exact (an integer per feature) and divided in float64, as aeon's ``mean`` of 0/1."""
    k, n, length = conv.shape
    counts = np.empty((k, n, biases.shape[1]), dtype=np.int32)
    for j in range(biases.shape[1]):
        counts[:, :, j] = (conv > biases[:, j, None, None]).sum(-1, dtype=np.int32)
    return (counts.astype(np.float64) / length).astype(np.float32)


class MiniRocket:
    """The MiniRocket transform (Dempster, Schmidt & Webb, KDD 2021); see the module docstring.

    Example::

        mr = MiniRocket(seed=0).fit(train_items)      # items: C × T float arrays
        X = mr.transform(items)                       # N × 9,996 float32

    Args:
        n_features: features wanted; ``84 · (n_features // 84)`` are made (at least 84).
        max_dilations_per_kernel: the most dilations per kernel (32 in the paper).
        seed: the random state of the channel combinations and the bias examples; the same seed
            gives the same features (and the features aeon gives with ``random_state=seed``).
    """

    def __init__(self, n_features: int = 10_000, max_dilations_per_kernel: int = 32, seed: int = 0) -> None:
        owner = type(self).__name__
        self.n_features = check_int(owner, "n_features", n_features, 1)
        self.max_dilations_per_kernel = check_int(owner, "max_dilations_per_kernel", max_dilations_per_kernel, 1)
        self.seed = check_int(owner, "seed", seed, 0)
        if self.seed >= 2**32:
            raise ConfigError(f"{owner}: seed must be below 2**32 (a Mersenne Twister seed), got {seed!r}.")
        self.parameters: MiniRocketParameters | None = None
        self.channels: int | None = None

    def __repr__(self) -> str:
        return (f"MiniRocket(n_features={self.n_features}, max_dilations_per_kernel="
                f"{self.max_dilations_per_kernel}, seed={self.seed})")

    @classmethod
    def from_parameters(cls, parameters: MiniRocketParameters | Sequence[Any], channels: int) -> "MiniRocket":
        """A MiniRocket with given fitted parameters (e.g. aeon's ``MiniRocket().parameters``)."""
        if not isinstance(parameters, MiniRocketParameters):
            parameters = MiniRocketParameters(*parameters)
        mr = cls(n_features=max(N_KERNELS, parameters.n_features))
        mr.parameters, mr.channels = parameters, int(channels)
        return mr

    # ---- input

    @staticmethod
    def _items(items: Any, who: str) -> list[np.ndarray]:
        if isinstance(items, np.ndarray) and items.ndim == 3:
            items = list(items)
        out = []
        for i, x in enumerate(items):
            a = np.asarray(x, dtype=np.float32)
            if a.ndim == 1:
                a = a[None, :]
            if a.ndim != 2:
                raise DataError(f"MiniRocket.{who}: item {i} has shape {a.shape}; expected (channels, time steps).")
            observed = ~np.isnan(a).all(axis=0)
            if not observed.any():
                raise DataError(f"MiniRocket.{who}: item {i} has no observed value.")
            a = a[:, : int(np.flatnonzero(observed)[-1]) + 1]  # drop end padding
            if np.isnan(a).any():
                a = _fill_missing(a)
            if a.shape[1] < KERNEL_LENGTH:  # too short for one kernel: zero-pad at the end
                a = np.concatenate([a, np.zeros((a.shape[0], KERNEL_LENGTH - a.shape[1]), np.float32)], axis=1)
            out.append(np.ascontiguousarray(a))
        if not out:
            raise DataError(f"MiniRocket.{who}: no series.")
        channels = {a.shape[0] for a in out}
        if len(channels) > 1:
            raise DataError(f"MiniRocket.{who}: the series have {sorted(channels)} channels; expected one count.")
        return out

    # ---- fit

    def fit(self, items: Any) -> "MiniRocket":
        """Fit dilations (from the longest series), channel combinations and biases on ``items``."""
        xs = self._items(items, "fit")
        c = xs[0].shape[0]
        length = max(a.shape[1] for a in xs)
        dilations, per_dilation = fit_dilations(length, max(self.n_features, N_KERNELS), self.max_dilations_per_kernel)
        n_comb = N_KERNELS * len(dilations)
        rng = np.random.RandomState(self.seed)
        counts = (2 ** rng.uniform(0, np.log2(min(c, 9) + 1), n_comb)).astype(np.int32).astype(np.int64)
        channels = np.concatenate([rng.choice(c, k, replace=False) for k in counts]).astype(np.int64)
        quantiles = quantile_sequence(N_KERNELS * int(per_dilation.sum()))
        biases = np.zeros(len(quantiles), dtype=np.float32)
        examples = np.random.RandomState(self.seed)
        params = MiniRocketParameters(counts, channels, dilations, per_dilation, biases)
        combos = params.combinations()
        start = 0
        for i, d in enumerate(dilations.tolist()):
            nf = int(per_dilation[i])
            chosen = [int(examples.randint(len(xs))) for _ in range(N_KERNELS)]
            for k in range(N_KERNELS):
                x = xs[chosen[k]][combos[i * N_KERNELS + k]]
                alpha, gammas = _alpha_gammas(x, int(d))
                a, b, cc = KERNEL_INDICES[k]
                # α + ((γ_a + γ_b) + γ_c): the float32 order aeon's compiled fit evaluates (its transform
                # adds left to right, as _kernel_outputs does); the biases then equal aeon's bit for bit.
                conv = alpha + ((gammas[a] + gammas[b]) + gammas[cc])
                total = conv[0].copy()
                for row in range(1, conv.shape[0]):
                    total += conv[row]
                biases[start:start + nf] = _quantiles_like_aeon(total, quantiles[start:start + nf])
                start += nf
        params.biases = biases
        self.parameters, self.channels = params, c
        return self

    # ---- transform

    def transform(self, items: Any) -> np.ndarray:
        """``N × n_features`` float32 PPV features of ``items`` (any lengths; see the module docstring)."""
        if self.parameters is None:
            raise ConfigError("MiniRocket.transform was called before fit.")
        xs = self._items(items, "transform")
        if xs[0].shape[0] != self.channels:
            raise DataError(f"MiniRocket.transform: the series have {xs[0].shape[0]} channel(s), but it was fitted "
                            f"on {self.channels}.")
        out = np.zeros((len(xs), self.parameters.n_features), dtype=np.float32)
        by_length: dict[int, list[int]] = {}
        for i, a in enumerate(xs):
            by_length.setdefault(a.shape[1], []).append(i)
        for length, rows in by_length.items():
            step = max(1, _CHUNK_FLOATS // (N_KERNELS * self.channels * length))
            for s in range(0, len(rows), step):
                part = rows[s:s + step]
                out[part] = self._transform_equal(np.stack([xs[i] for i in part]))
        return out

    def _transform_equal(self, x: np.ndarray) -> np.ndarray:
        p = self.parameters
        combos = p.combinations()
        n, _, t = x.shape
        feats = np.zeros((n, p.n_features), dtype=np.float32)
        start = 0
        for i, d in enumerate(p.dilations.tolist()):
            nf = int(p.features_per_dilation[i])
            conv = _combine(_kernel_outputs(x, int(d)), combos[i * N_KERNELS:(i + 1) * N_KERNELS])  # 84 × N × T
            bias = p.biases[start:start + N_KERNELS * nf].reshape(N_KERNELS, nf)
            pad = 4 * int(d)
            if t - 2 * pad <= 0:  # too short for an unpadded part: every kernel uses the padded output
                block = _ppv(conv, bias)
            else:  # kernel k uses the padded output when (i + k) is even, the unpadded part when odd
                block = np.empty((N_KERNELS, n, nf), dtype=np.float32)
                padded, unpadded = i % 2, 1 - i % 2
                block[padded::2] = _ppv(conv[padded::2], bias[padded::2])
                block[unpadded::2] = _ppv(conv[unpadded::2, :, pad:t - pad], bias[unpadded::2])
            feats[:, start:start + N_KERNELS * nf] = block.transpose(1, 0, 2).reshape(n, N_KERNELS * nf)
            start += N_KERNELS * nf
        return feats


def _fill_missing(a: np.ndarray) -> np.ndarray:
    """Linear interpolation of NaN per channel (constant beyond the ends; zeros for an empty channel)."""
    a = a.copy()
    t = np.arange(a.shape[1])
    for ch in range(a.shape[0]):
        bad = np.isnan(a[ch])
        if bad.all():
            a[ch] = 0.0
        elif bad.any():
            a[ch, bad] = np.interp(t[bad], t[~bad], a[ch, ~bad])
    return a


# --------------------------------------------------------------------------- the baseline


class MiniRocketBaseline(FeatureBaseline):
    """MiniRocket features (Dempster, Schmidt & Webb, KDD 2021) in place of the encoder's embeddings.

    :meth:`fit` fits the transform (dilations from the longest training series, biases from training
    examples) on the training items only, and, with ``standardize``, each feature's mean and standard
    deviation over those items; :meth:`features` transforms any series of the same channel count to
    ``(PPV - mean) / std`` (a constant feature keeps std 1).  The paper fits its ridge classifier on
    normalised features; standardised, the RBF SVM and k-NN probes see every feature on one scale.
    On its own (``--evaluator minirocket``) the SVM, linear and k-NN probes of the recipe are fitted
    on the 9,996 features (metrics ``svm.accuracy``, ``linear.accuracy``, ``knn.accuracy``, …).

    Args:
        n_features: MiniRocket features (default 10,000 → 9,996).
        max_dilations_per_kernel: at most this many dilations per kernel (32).
        seed: MiniRocket's random state (channel combinations, bias examples).
        standardize: standardise each feature with the training items' mean and std (default true).
    """

    name = "minirocket"
    protocol = "minirocket-features"
    version = "1"
    description = "MiniRocket features (84 kernels, PPV; Dempster et al. 2021) with the SVM, linear and k-NN probes."
    probes = ("svm", "linear", "knn")
    primary_metric = "svm.accuracy"

    def __init__(self, n_features: int = 10_000, max_dilations_per_kernel: int = 32, seed: int = 0,
                 standardize: bool = True) -> None:
        if not isinstance(standardize, bool):
            raise ConfigError(f"minirocket: standardize must be true or false, got {standardize!r}.")
        self.transform = MiniRocket(n_features, max_dilations_per_kernel, seed)
        self.standardize = standardize
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None

    def fit(self, train: Samples, meta: dict[str, Any]) -> None:
        if len(train) == 0:
            raise DataError(f"{train.source or 'the data'}: no training series to fit MiniRocket on.")
        self.transform.fit(train.items)
        if self.standardize:
            f = self.transform.transform(train.items).astype(np.float64)
            std = f.std(axis=0)
            self.mean, self.std = f.mean(axis=0), np.where(std > 1e-12, std, 1.0)

    def features(self, samples: Samples) -> np.ndarray:
        f = self.transform.transform(samples.items)
        if self.mean is None:
            return f
        return ((f - self.mean) / self.std).astype(np.float32)


EVALUATORS: dict[str, type] = {"minirocket": MiniRocketBaseline}
