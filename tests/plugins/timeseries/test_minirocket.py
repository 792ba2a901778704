"""MiniRocket: equal to aeon's implementation, to a slow reference written here, and as a baseline evaluator.

aeon's numba MiniRocket is the reference (the `test` extra installs numba and deprecated, which its
import needs); the aeon tests skip where it does not import.  The reference below recomputes every
feature from the paper's definitions with explicit kernel weights in float64.
"""

from __future__ import annotations

import numpy as np
import pytest

from contrastkit.core.data import Samples
from contrastkit.core.errors import ConfigError, DataError
from contrastkit.core.evaluation import EvalContext
from contrastkit.plugins.timeseries.minirocket import (
    KERNEL_INDICES, MiniRocket, MiniRocketBaseline, MiniRocketParameters, fit_dilations, quantile_sequence)

try:  # aeon's MiniRocket needs numba (and deprecated) besides aeon itself
    from aeon.transformations.collection.convolution_based import MiniRocket as AeonMiniRocket
except Exception:  # pragma: no cover - depends on the environment
    AeonMiniRocket = None

needs_aeon = pytest.mark.skipif(AeonMiniRocket is None, reason="aeon's MiniRocket (numba) does not import")


def _ucr(name: str):
    from contrastkit.plugins.timeseries.readers import TsReader

    try:
        s = TsReader().read(name)
    except DataError:  # pragma: no cover - the archive files ship with aeon
        pytest.skip(f"{name} is not installed")
    return s.part("train"), s.part("test")


# --------------------------------------------------------------------------- a slow reference


def reference_features(x: np.ndarray, p: MiniRocketParameters) -> np.ndarray:
    """Every feature of one series ``x`` (C × T) from the definitions: explicit weights, float64."""
    c, t = x.shape
    combos = p.combinations()
    out, f = [], 0
    for i, d in enumerate(p.dilations):
        for k in range(84):
            w = np.full(9, -1.0)
            w[list(KERNEL_INDICES[k])] = 2.0
            conv = np.zeros(t)
            for ch in combos[i * 84 + k]:
                for pos in range(t):  # "same" convolution with zero padding
                    for j in range(9):
                        src = pos + (j - 4) * d
                        if 0 <= src < t:
                            conv[pos] += w[j] * x[ch, src]
            if (i + k) % 2 == 1:  # odd combinations: only the part computed without padding
                conv = conv[4 * d: t - 4 * d]
            for _ in range(p.features_per_dilation[i]):
                out.append(np.mean(conv > p.biases[f]))
                f += 1
    return np.array(out)


def test_transform_equals_the_reference_on_generated_multivariate_series():
    rng = np.random.default_rng(0)
    train = [rng.standard_normal((3, 40)).astype(np.float32) for _ in range(6)]
    mr = MiniRocket(n_features=84 * 4, seed=1).fit(train)
    p = mr.parameters
    # 40 steps: exponents up to log2(39/8) = 2.29 over 4 draws -> dilations 1, 1, 2, 4 -> (1: 2, 2: 1, 4: 1)
    np.testing.assert_array_equal(p.dilations, [1, 2, 4])
    np.testing.assert_array_equal(p.features_per_dilation, [2, 1, 1])
    assert all(1 <= len(ch) <= 3 and len(set(ch.tolist())) == len(ch) for ch in p.combinations())
    got = mr.transform(train[:2])
    for n in range(2):
        ref = reference_features(train[n].astype(np.float64), p)
        # float32 vs float64 sums may flip a value that sits exactly on a bias: at most one step apart
        assert np.abs(got[n] - ref).max() <= 1 / 8 + 1e-6  # the shortest unpadded part: 40 - 32 steps
        assert np.mean(np.isclose(got[n], ref, atol=1e-6)) >= 0.99


def test_dilations_and_quantiles_by_hand():
    # 9 steps: exponent 0, one dilation holding all 119 features of each kernel
    d, n = fit_dilations(9)
    assert d.tolist() == [1] and n.tolist() == [119]
    # 24 steps (ItalyPowerDemand): 2^e, e = 1.52·i/31 < 1 for i = 0..20 -> 21 ones, 11 twos;
    # ⌊21 · 119/32⌋ = 78, ⌊11 · 119/32⌋ = 40, one left over goes to the first
    d, n = fit_dilations(24)
    assert d.tolist() == [1, 2] and n.tolist() == [79, 40]
    d, n = fit_dilations(150)
    assert n.sum() == 119 and d[0] == 1 and d[-1] == 18  # ⌊(150-1)/8⌋ = 18
    q = quantile_sequence(3)
    phi = (1 + 5 ** 0.5) / 2
    np.testing.assert_allclose(q, [phi % 1, (2 * phi) % 1, (3 * phi) % 1], rtol=1e-6)
    with pytest.raises(DataError, match="at least 9 steps"):
        fit_dilations(8)


def test_features_are_deterministic_given_the_seed():
    rng = np.random.default_rng(3)
    items = [rng.standard_normal((4, 60)).astype(np.float32) for _ in range(10)]
    a = MiniRocket(seed=5).fit(items).transform(items)
    b = MiniRocket(seed=5).fit(items).transform(items)
    c = MiniRocket(seed=6).fit(items).transform(items)
    assert a.shape == (10, 9_996) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert ((a >= 0) & (a <= 1)).all()


def test_short_series_are_zero_padded_to_nine_steps_and_lengths_may_differ():
    rng = np.random.default_rng(1)
    short = [rng.standard_normal((1, 5)).astype(np.float32) for _ in range(4)]
    padded = [np.concatenate([x, np.zeros((1, 4), np.float32)], axis=1) for x in short]
    mr = MiniRocket(seed=0).fit(short)
    np.testing.assert_array_equal(mr.transform(short), MiniRocket(seed=0).fit(padded).transform(padded))
    # series of other lengths: each at its own length, the same features as transformed alone
    mixed = [rng.standard_normal((1, n)).astype(np.float32) for n in (30, 12, 30, 50)]
    mr = MiniRocket(seed=0).fit(mixed)
    together = mr.transform(mixed)
    for i, x in enumerate(mixed):
        np.testing.assert_array_equal(together[i], mr.transform([x])[0])
    # a NaN inside a series is interpolated; a NaN tail is end padding
    x = rng.standard_normal((1, 30)).astype(np.float32)
    holed, tailed = x.copy(), np.concatenate([x, np.full((1, 5), np.nan, np.float32)], axis=1)
    holed[0, 10] = np.nan
    filled = x.copy()
    filled[0, 10] = (x[0, 9] + x[0, 11]) / 2
    np.testing.assert_array_equal(mr.transform([holed]), mr.transform([filled]))
    np.testing.assert_array_equal(mr.transform([tailed]), mr.transform([x]))


def test_checks():
    with pytest.raises(ConfigError, match="n_features"):
        MiniRocket(n_features=0)
    with pytest.raises(ConfigError, match="below 2"):
        MiniRocket(seed=2**32)
    with pytest.raises(ConfigError, match="before fit"):
        MiniRocket().transform([np.zeros((1, 20), np.float32)])
    mr = MiniRocket().fit([np.random.default_rng(0).standard_normal((2, 20)).astype(np.float32)] * 2)
    with pytest.raises(DataError, match="3 channel"):
        mr.transform([np.zeros((3, 20), np.float32)])
    with pytest.raises(ConfigError, match="standardize"):
        MiniRocketBaseline(standardize="yes")


# --------------------------------------------------------------------------- equal to aeon


@needs_aeon
@pytest.mark.parametrize("name,channels,length", [("GunPoint", 1, 150), ("BasicMotions", 6, 100),
                                                  ("ItalyPowerDemand", 1, 24)])
def test_equal_to_aeon(name, channels, length):
    train, test = _ucr(name)
    X_tr, X_te = np.stack(train.items), np.stack(test.items)
    assert X_tr.shape[1:] == (channels, length)
    aeon = AeonMiniRocket(random_state=7).fit(X_tr)
    ours = MiniRocket(seed=7).fit(train.items)
    counts, channels_, dilations, per_dilation, biases = aeon.parameters
    p = ours.parameters
    # the fit: same dilations and feature counts, same random draws (channel combinations, bias examples)
    np.testing.assert_array_equal(p.dilations, dilations)
    np.testing.assert_array_equal(p.features_per_dilation, per_dilation)
    np.testing.assert_array_equal(p.channel_counts, counts)
    np.testing.assert_array_equal(p.channel_indices, channels_)
    np.testing.assert_allclose(p.biases, biases, rtol=1e-6, atol=1e-6)
    expected = aeon.transform(X_te)
    # the transform given aeon's fitted parameters: equal to float tolerance (PPV counts: exactly)
    given = MiniRocket.from_parameters(aeon.parameters, channels).transform(test.items)
    np.testing.assert_allclose(given, expected, atol=1e-7)
    # and our own fit end to end
    got = ours.transform(test.items)
    assert got.shape == (len(test), 9_996)
    assert np.mean(got == expected) > 0.9999 and np.abs(got - expected).max() <= 1 / length + 1e-6


@pytest.mark.slow
def test_ridge_accuracy_on_gunpoint_matches_the_published_minirocket():
    """MiniRocket + RidgeClassifierCV as in the paper: GunPoint test accuracy 1.00 published (UCR
    results of Dempster et al. 2021)."""
    from sklearn.linear_model import RidgeClassifierCV

    train, test = _ucr("GunPoint")
    mr = MiniRocket(seed=0).fit(train.items)
    clf = RidgeClassifierCV(alphas=np.logspace(-3, 3, 10)).fit(mr.transform(train.items), train.labels)
    assert clf.score(mr.transform(test.items), test.labels) >= 0.98


# --------------------------------------------------------------------------- the evaluator


def _gunpoint_ctx(label_fraction=None) -> EvalContext:
    from contrastkit.plugins.timeseries.modality import prepare
    from contrastkit.plugins.timeseries.readers import TsReader

    try:
        s = TsReader().read("GunPoint")
    except DataError:  # pragma: no cover
        pytest.skip("GunPoint is not installed")
    s, _ = prepare(s, None, {"normalize": "global"})  # as `evaluate` hands it over: prepared
    return EvalContext(samples=s, embed=lambda _: pytest.fail("the baseline called the encoder"), seeds=[0],
                       label_fraction=label_fraction)


@pytest.mark.slow
def test_minirocket_evaluator_on_gunpoint_is_near_the_published_accuracy():
    result = MiniRocketBaseline()(_gunpoint_ctx())
    m = result["metrics"]
    assert result["evaluator"] == "minirocket" and result["protocol"] == "minirocket-features"
    assert {"svm.accuracy", "linear.accuracy", "knn.accuracy", "svm.f1_macro"} <= set(m)
    assert abs(m["svm.accuracy"] - 1.0) <= 0.02  # published MiniRocket GunPoint accuracy: 1.00
    assert m["linear.accuracy"] >= 0.95 and m["knn.accuracy"] >= 0.95


def test_registered_for_timeseries_and_features_fit_on_training_items_only():
    from contrastkit.core.plugins import get_host

    comp = get_host().registry.get("evaluator", "minirocket", "timeseries")
    assert comp.obj is MiniRocketBaseline and comp.obj.uses_encoder is False and comp.obj.label_efficiency
    rng = np.random.default_rng(0)
    items = [rng.standard_normal((1, 30)).astype(np.float32) for _ in range(8)]
    split = ["train"] * 5 + ["test"] * 3
    s = Samples(ids=list(range(8)), items=items, labels=list("abababab"), split=split)
    base = MiniRocketBaseline(n_features=84, seed=2)
    embed = base.embedder(s, {})
    plain = MiniRocket(n_features=84, seed=2).fit(items[:5])  # the training items alone
    np.testing.assert_array_equal(base.transform.parameters.biases, plain.parameters.biases)
    f = plain.transform(items[:5]).astype(np.float64)
    sd = np.where(f.std(0) > 1e-12, f.std(0), 1.0)
    np.testing.assert_allclose(embed(s), (plain.transform(items) - f.mean(0)) / sd, rtol=1e-5, atol=1e-5)
    # any other items of the modality (e.g. augmented copies)
    other = Samples(ids=[0], items=[items[0] * 2], labels=None, split=None)
    assert embed(other).shape == (1, 84)
