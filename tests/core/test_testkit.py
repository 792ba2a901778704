"""The conformance kit: the built-in plugins pass it, and broken components are caught.

Each broken component below breaks exactly one promise; the test asserts that
the kit names that component and that property in one sentence.
"""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch
from torch import nn

from contrastkit.core import Augmentation, DataError, Evaluator, Modality, Reader, Samples, hookimpl
from contrastkit.core.evaluation import EvalContext
from contrastkit.core.plugins import CORE_PLUGIN, PluginHost
from contrastkit.core.testkit import (
    ConformanceError,
    check_augmentation,
    check_encoder,
    check_evaluator,
    check_loss,
    check_modality,
    check_plugin,
    check_reader,
    conformance_tests,
    plugin_components,
)
from contrastkit.plugins.timeseries.augmentations import Jitter
from contrastkit.plugins.timeseries.encoders import DilatedConvEncoder

#: RandomCrop needs its window length (it declares keeps_shape = False itself); small encoders keep
#: the checks fast (the modality's check still trains one step with the full default recipe).
TIMESERIES = {
    "params": {"random_crop": {"length": 0.5}, "dilated_conv": {"hidden": 16, "out_dim": 32, "depth": 3},
               "transformer": {"d_model": 16, "nhead": 2, "depth": 1, "dim_feedforward": 32, "out_dim": 16}},
}


def series_batch(b: int = 6, c: int = 2, t: int = 24) -> torch.Tensor:
    return torch.randn(b, c, t, generator=torch.Generator().manual_seed(0))


def failure_messages(report) -> list[str]:
    return [str(f) for f in report.failures]


# --------------------------------------------------------------------------- the built-in plugins pass


def test_timeseries_plugin_passes_every_check(tmp_path):
    report = check_plugin("timeseries", skip={"forecast"}, tmp_path=tmp_path, **TIMESERIES)
    assert report.ok
    checked = {f.component.split(" (")[0] for f in report.passed}
    for name in ("modality 'timeseries'", "reader 'ts'", "reader 'long'", "augmentation 'jitter'",
                 "augmentation 'random_crop'", "augmentation 'contextual_crop'", "encoder 'dilated_conv'",
                 "encoder 'transformer'"):
        assert name in checked
    props = {f.property for f in report.passed}
    assert {"leave its input unmodified", "re-draw its randomness at every call", "handle a batch of one",
            "give the same views for generators seeded alike", "raise a ContrastkitError on bad input",
            "pass a gradient to every parameter", "train one step with its default recipe",
            "raise a ContrastkitError on missing, empty or malformed input"} <= props


@pytest.mark.slow
def test_forecast_evaluator_passes_on_a_forecasting_data_set(tmp_path):
    report = check_plugin("timeseries", only=[("evaluator", "timeseries", "forecast")], data={"forecast": "airline"},
                          options={"forecast": {"max_epochs": 2, "hidden_size": 8}}, tmp_path=tmp_path)
    assert report.ok and len(report.passed) >= 7


def test_core_losses_and_probes_pass(tmp_path):
    wanted = [("loss", "*", "infonce"), ("loss", "*", "hierarchical"), ("evaluator", "*", "knn")]
    report = check_plugin(CORE_PLUGIN, modality="timeseries", only=wanted, tmp_path=tmp_path)
    assert report.ok
    assert {f.component.split(" (")[0] for f in report.passed} == {"loss 'infonce'", "loss 'hierarchical'",
                                                                    "evaluator 'knn'"}


def test_timeseries_without_crop_settings_fails_in_one_sentence(tmp_path):
    report = check_plugin("timeseries", only=[("augmentation", "timeseries", "random_crop")], tmp_path=tmp_path,
                          raise_=False)
    assert failure_messages(report) == [
        "augmentation 'random_crop' (modality 'timeseries', plugin 'timeseries') does not build from its parameters: "
        "RandomCrop(**{}) raised ConfigError: augmentation 'random_crop': RandomCrop.__init__() missing 1 required "
        "positional argument: 'length'."
    ]


def test_the_fixture_is_registered_through_the_pytest11_entry_point(contrastkit_conformance):
    report = contrastkit_conformance.check_augmentation(Jitter(sigma=0.1), series_batch())
    assert report.ok and not report.skipped


def test_conformance_tests_makes_one_case_per_component(tmp_path):
    test = conformance_tests("timeseries", **TIMESERIES)
    (mark,) = [m for m in test.pytestmark if m.name == "parametrize"]
    ids = [p.id for p in mark.args[1]]
    assert "augmentation:timeseries:jitter" in ids and "encoder:timeseries:dilated_conv" in ids
    assert len(ids) == len(plugin_components("timeseries"))
    test(("augmentation", "timeseries", "jitter"), tmp_path)  # one case runs the checks of one component


def test_an_unknown_plugin_fails_with_the_installed_ones():
    with pytest.raises(ConformanceError, match=r"plugin 'nosuch' cannot be checked: no plugin or modality 'nosuch' "
                                               r"is installed; installed plugins: .*timeseries"):
        check_plugin("nosuch")


# --------------------------------------------------------------------------- broken augmentations


class InPlace(Augmentation):
    """Scales the batch it is given."""

    def apply(self, batch, generator):
        return batch.mul_(1.0 + torch.rand((), generator=generator))


class SameEveryCall(Augmentation):
    """Seeds its own generator: the same 'random' views at every step."""

    def apply(self, batch, generator):
        return batch + torch.randn(batch.shape, generator=torch.Generator().manual_seed(0))


class GlobalRandom(Augmentation):
    """Ignores the generator and draws from torch's global random state."""

    def apply(self, batch, generator):
        return batch + torch.randn(batch.shape)


class DropsLastStep(Augmentation):
    """Returns one time step less."""

    def apply(self, batch, generator):
        return batch[..., :-1] + torch.randn(batch[..., :-1].shape, generator=generator)


class DropsASample(Augmentation):
    """Loses a sample."""

    def apply(self, batch, generator):
        return batch[1:] + torch.randn(batch[1:].shape, generator=generator)


class NoInputCheck(Augmentation):
    """Accepts anything (and fails only later, in the encoder)."""

    def apply(self, batch, generator):
        return batch + torch.randn(batch.shape, generator=generator)


class ToDouble(Augmentation):
    """Changes the dtype."""

    def apply(self, batch, generator):
        if batch.dim() != 3:
            raise DataError("expected B × C × T.")
        return batch.double() + torch.randn(batch.shape, generator=generator, dtype=torch.float64)


@pytest.mark.parametrize("cls,sentence", [
    (InPlace, "augmentation 'InPlace' does not leave its input unmodified: batch changed during the call."),
    (SameEveryCall, "augmentation 'SameEveryCall' does not re-draw its randomness at every call: four calls with "
                    "one generator gave identical views (it must draw new random parameters from the generator at "
                    "every call, or declare deterministic = True)."),
    (GlobalRandom, "augmentation 'GlobalRandom' does not give the same views for generators seeded alike: two calls "
                   "with generators seeded 0 gave different views (does it draw from torch's global random state "
                   "instead of the generator it is given?)."),
    (DropsLastStep, "augmentation 'DropsLastStep' does not keep shapes: batch changed from (6, 2, 24) to (6, 2, 23)."),
    (DropsASample, "augmentation 'DropsASample' does not keep the batch size: a batch of 6 became 5."),
    (ToDouble, "augmentation 'ToDouble' does not keep dtypes and devices: batch changed from torch.float32 to "
               "torch.float64 on cpu."),
])
def test_broken_augmentation_is_caught_in_one_sentence(cls, sentence):
    report = check_augmentation(cls(), series_batch(), raise_=False)
    assert sentence in failure_messages(report)
    with pytest.raises(ConformanceError, match="conformance check"):
        check_augmentation(cls(), series_batch())


def test_augmentation_without_input_checks_is_caught():
    report = check_augmentation(NoInputCheck(), series_batch(), raise_=False)
    assert failure_messages(report) == [
        "augmentation 'NoInputCheck' does not raise a ContrastkitError on bad input: a tensor of shape (1, 6, 2, 24) "
        "(one dimension too many) was accepted without an error; expected a ContrastkitError."
    ]


def test_a_good_augmentation_passes_and_its_p_is_checked():
    report = check_augmentation(Jitter, series_batch(), params={"sigma": 0.1}, name="jitter", where="a test")
    assert report.ok
    assert "reject p=1.5 with a ConfigError" in {f.property for f in report.passed}
    assert all(f.component == "augmentation 'jitter' (a test)" for f in report.findings)


def test_the_error_lists_every_failure_one_per_line():
    class Everything(Augmentation):
        def apply(self, batch, generator):
            batch.add_(1.0)
            return batch[1:, :, :-1]

    with pytest.raises(ConformanceError) as info:
        check_augmentation(Everything(), series_batch())
    lines = str(info.value).splitlines()
    assert lines[0].endswith("conformance checks failed:")
    assert all(line.startswith("- augmentation 'Everything' does not ") and line.endswith(".") for line in lines[1:])
    assert {"keep the batch size", "keep shapes", "leave its input unmodified"} <= {
        f.property for f in info.value.report.failures}


# --------------------------------------------------------------------------- broken encoders


class _Base(nn.Module):
    def __init__(self, in_channels: int, out_dim: int = 4):
        super().__init__()
        self.out_dim = out_dim
        self.proj = nn.Linear(in_channels, out_dim)

    def check(self, x):
        if x.dim() != 3:
            raise DataError(f"expected B × C × T, got {tuple(x.shape)}.")


class WrongWidth(_Base):
    def forward(self, x):
        self.check(x)
        return torch.cat([self.proj(x.mean(-1)), torch.zeros(len(x), 1)], dim=1)


class ModifiesInput(_Base):
    def forward(self, x):
        self.check(x)
        return self.proj(x.clamp_(min=0).mean(-1))


class UnusedLayer(_Base):
    def __init__(self, in_channels: int, out_dim: int = 4):
        super().__init__(in_channels, out_dim)
        self.spare = nn.Linear(3, 3)

    def forward(self, x):
        self.check(x)
        return self.proj(x.mean(-1))


class BatchDependent(_Base):
    def forward(self, x):
        self.check(x)
        h = self.proj(x.mean(-1))
        return h - h.mean(0, keepdim=True)  # centres over the batch, even in eval mode


@pytest.mark.parametrize("cls,sentence", [
    (WrongWidth, "encoder 'WrongWidth' does not return B × out_dim: a batch of 6 gave shape (6, 5), expected (6, 4)."),
    (ModifiesInput, "encoder 'ModifiesInput' does not leave its input unmodified: batch changed during forward."),
    (UnusedLayer, "encoder 'UnusedLayer' does not pass a gradient to every parameter: 2 parameter(s) get no "
                  "gradient, e.g. ['spare.weight', 'spare.bias'] (unused parameters make DDP fail)."),
])
def test_broken_encoder_is_caught_in_one_sentence(cls, sentence):
    report = check_encoder(cls, series_batch(), meta={"in_channels": 2}, raise_=False)
    assert sentence in failure_messages(report)


def test_batch_dependent_encoder_is_caught():
    report = check_encoder(BatchDependent, series_batch(), meta={"in_channels": 2}, raise_=False)
    (msg,) = failure_messages(report)
    assert msg.startswith("encoder 'BatchDependent' does not embed an item independently of the rest of its batch in "
                          "eval mode: the first item embedded alone differs from it embedded in a batch of 6 by ")


def test_builtin_encoder_passes_with_meta_and_params():
    report = check_encoder(DilatedConvEncoder, series_batch(), params={"hidden": 8, "out_dim": 8, "depth": 2},
                           meta={"in_channels": 2, "length": 24})
    assert report.ok and "build identically under one seed" in {f.property for f in report.passed}


# --------------------------------------------------------------------------- readers, evaluators, losses, modalities


class RawErrorsReader(Reader):
    name, suffixes = "raw", (".txt",)

    def datasets(self):
        return {"tiny": "three numbers"}

    def read(self, source, options):
        if source == "tiny":
            return Samples(ids=[0, 1, 2], items=[np.zeros(2), np.ones(2), np.full(2, 2.0)])
        return Samples(ids=[0], items=[np.loadtxt(source)])  # FileNotFoundError, ValueError, ...


def test_reader_leaking_raw_exceptions_is_caught(tmp_path):
    report = check_reader(RawErrorsReader(), tmp_path=tmp_path, raise_=False)
    assert "read 'tiny' into Samples" in {f.property for f in report.passed}
    (msg,) = failure_messages(report)
    assert msg.startswith("reader 'raw' does not raise a ContrastkitError on missing, empty or malformed input: "
                          "a missing file missing-0.txt raised FileNotFoundError")
    assert msg.endswith("instead of a ContrastkitError.")


def _labelled_ctx(labels=True) -> EvalContext:
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, (30, 3)), rng.normal(2, 1, (30, 3))]).astype(np.float32)
    samples = Samples(ids=list(range(60)), items=list(x), labels=["a"] * 30 + ["b"] * 30 if labels else None,
                      split=["test" if i % 5 == 0 else "train" for i in range(60)])
    return EvalContext(samples=samples, embed=lambda s: np.stack(s.items), seeds=[0, 1])


class Careless(Evaluator):
    name, protocol, version, requires = "careless", "careless", "1", "labels"

    def run(self, ctx):
        y = [lbl.upper() for lbl in ctx.samples.labels]  # TypeError without labels
        score = float(np.random.rand())  # global numpy state: not reproducible
        return {"accuracy": score, "accuracy_std": 0.0, "n": float(len(y))}


def test_careless_evaluator_is_caught():
    report = check_evaluator(Careless, _labelled_ctx(), raise_=False)
    messages = failure_messages(report)
    assert any(m.startswith("evaluator 'careless' does not give the same metrics for the same seeds: two runs with "
                            "seeds [0, 1] differ in ['accuracy']") for m in messages)
    assert ("evaluator 'careless' does not raise a ContrastkitError on unlabelled data: data without labels raised "
            "TypeError: 'NoneType' object is not iterable instead of a ContrastkitError." in messages)


def test_core_probe_passes_on_a_labelled_context():
    from contrastkit.core.probes import LinearProbe

    assert check_evaluator(LinearProbe, _labelled_ctx()).ok


class SumLoss(nn.Module):
    """Not a contrastive loss: no checks on its views."""

    def forward(self, views, labels=None):
        return types.SimpleNamespace(loss=sum(v.sum() for v in views), parts={})


def test_loss_without_view_checks_is_caught():
    report = check_loss(SumLoss, raise_=False)
    assert failure_messages(report) == [
        "loss 'SumLoss' does not raise a ContrastkitError on bad views: a single view was accepted without an error; "
        "expected a ContrastkitError."
    ]


def _vector_collate(items):
    if not items:
        raise DataError("cannot make a batch of no vectors.")
    return torch.from_numpy(np.stack(items).astype(np.float32))


def _numpy_state_prepare(samples, state, options):
    x = np.stack(samples.items)
    if state is None:
        state = {"mean": x.mean(0)}  # a numpy array: not loadable with torch.load(weights_only=True)
    return Samples(ids=samples.ids, items=list(x - state["mean"]), meta={"dim": x.shape[1]}), state


def test_modality_with_numpy_state_is_caught(tmp_path):
    modality = Modality(name="vec", collate=_vector_collate, default_data="none", prepare=_numpy_state_prepare)
    samples = Samples(ids=list(range(10)), items=[np.full(3, float(i)) for i in range(10)])
    report = check_modality(modality, samples, tmp_path=tmp_path, raise_=False)
    (msg,) = failure_messages(report)
    assert msg.startswith("modality 'vec' does not fit a preprocessing state of plain values: the state does not "
                          "survive torch.save/torch.load(weights_only=True): ")
    assert {"collate a list of items into a batch of that size", "collate a single item",
            "raise a ContrastkitError for an empty list", "prepare alike with the fitted state"} <= {
        f.property for f in report.passed}


# --------------------------------------------------------------------------- duplicates, registered in process


class _Shift(Augmentation):
    def apply(self, batch, generator):
        return batch + 1.0


def _plugin_module(name: str) -> types.ModuleType:
    module = types.ModuleType(name)

    @hookimpl
    def register_augmentations(register):
        register(_Shift, name="shift", modality="timeseries")

    module.register_augmentations = register_augmentations
    return module


def test_duplicate_registered_in_process_names_both_plugins():
    host = PluginHost(entry_points=[])
    host.register_object("first", _plugin_module("first_mod"), distribution="dist-one")
    host.register_object("second", _plugin_module("second_mod"), distribution="dist-two")
    first, second = host.plugins["first"], host.plugins["second"]
    assert first.status == "loaded" and second.status == "failed"
    assert second.error == ("duplicate augmentation 'shift' for modality 'timeseries': registered by plugin 'first' "
                            "(distribution dist-one) and by plugin 'second' (distribution dist-two).")
    assert host.registry.get("augmentation", "shift", "timeseries").plugin == "first"
    with pytest.raises(ConformanceError, match=r"plugin 'second' cannot be checked: plugin 'second' is failed: "
                                               r"duplicate augmentation 'shift'"):
        check_plugin("second", host=host)



def test_items_compare_by_value_whatever_their_container():
    """Dict items (event sequences) and PyG Data items (graphs) are compared by value, not identity."""
    import numpy as np
    import torch
    from torch_geometric.data import Data

    from contrastkit.core.testkit.compare import _same_item

    a = {"codes": np.array([1, 2, 3]), "amount": np.array([0.5, np.nan], dtype=np.float32)}
    b = {"codes": np.array([1, 2, 3]), "amount": np.array([0.5, np.nan], dtype=np.float32)}
    assert _same_item(a, b)
    b["codes"] = np.array([1, 2, 4])
    assert not _same_item(a, b)
    g = Data(x=torch.ones(3, 2), edge_index=torch.tensor([[0, 1], [1, 2]]))
    assert _same_item(g, g.clone())
    h = g.clone()
    h.x[0, 0] = 2.0
    assert not _same_item(g, h)


class Centre(Augmentation):
    """No randomness at all, declared as such."""

    deterministic = True

    def apply(self, batch, generator):
        return batch - batch.mean(dim=-1, keepdim=True)


class CentreUndeclared(Centre):
    deterministic = False


class ClaimsDeterministic(Augmentation):
    deterministic = True

    def apply(self, batch, generator):
        return batch + torch.rand((), generator=generator)


def test_deterministic_augmentations_are_checked_for_agreement():
    batch = torch.randn(6, 2, 24)
    report = check_augmentation(Centre(), batch, raise_=False)
    assert any("give the same result at every call" in str(f) for f in report.passed)
    assert not any("randomness" in str(f) or "same result" in str(f) for f in report.failures)
    report = check_augmentation(CentreUndeclared(), batch, raise_=False)
    assert any("re-draw its randomness" in str(f) for f in report.failures)
    report = check_augmentation(ClaimsDeterministic(), batch, raise_=False)
    assert any("give the same result at every call" in str(f) for f in report.failures)


def test_importing_the_kit_does_not_import_torch():
    """pytest loads the kit (entry point pytest11) in every run where contrastkit is installed: it stays light."""
    import subprocess
    import sys

    code = ("import sys, contrastkit.core.testkit as k; "
            "assert callable(k.check_plugin) and k.contrastkit_conformance is not None; "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_pytest_finds_the_kit_through_its_entry_point():
    import importlib.metadata as md

    (ep,) = [e for e in md.entry_points(group="pytest11") if e.name == "contrastkit"]
    assert ep.value == "contrastkit.core.testkit"
    module = ep.load()
    assert module.check_plugin is check_plugin and hasattr(module, "contrastkit_conformance")
