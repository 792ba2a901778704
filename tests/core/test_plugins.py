"""The plugin host: entry points, attribution, failures, duplicates, disabling.

Fake plugins are real modules written to a temporary folder put on sys.path,
each shipped by a fake distribution (a ``.dist-info`` folder with METADATA and
entry_points.txt), so the entry points carry their distribution exactly as an
installed third-party package's would.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import sys
import textwrap
from pathlib import Path

import pytest

from contrastkit.core.plugins import CORE_PLUGIN, DISABLE_ENV, ENTRY_POINT_GROUP, PluginHost, warn_failures

GOOD = '''
"""A well-behaved fake plugin."""
import torch
from contrastkit.core import Augmentation, Modality, hookimpl


class Shift(Augmentation):
    """Shift every sample by one."""

    def apply(self, batch, generator):
        return batch + 1.0


class TinyEncoder(torch.nn.Module):
    out_dim = 3


@hookimpl
def register_modalities(register):
    register(Modality(name="fakemod", collate=list, default_data="none", description="a fake modality"))


@hookimpl
def register_augmentations(register):
    register(Shift, name="shift", modality="fakemod")


@hookimpl
def register_encoders(register):
    register(TinyEncoder, name="tiny", modality="fakemod", description="a tiny encoder")
'''

BROKEN = '''
raise RuntimeError("this plugin is broken on purpose")
'''

# registers the name that "good" already uses (entry points load in name order: good < twin)
TWIN = '''
from contrastkit.core import Augmentation, hookimpl


class OtherShift(Augmentation):
    def apply(self, batch, generator):
        return batch - 1.0


@hookimpl
def register_augmentations(register):
    register(OtherShift, name="shift", modality="fakemod")
'''

# registers the name of core's loss
LOSSY = '''
import torch
from contrastkit.core import hookimpl


class MyLoss(torch.nn.Module):
    pass


@hookimpl
def register_losses(register):
    register(MyLoss, name="infonce", modality="*")
'''

# registers a reader and an augmentation, then fails in a later hook (register_encoders)
HALF = '''
from contrastkit.core import Augmentation, Reader, hookimpl


class HalfReader(Reader):
    """A reader of a half-working plugin."""


class HalfShift(Augmentation):
    def apply(self, batch, generator):
        return batch


@hookimpl
def register_readers(register):
    register(HalfReader, name="halfreader", modality="*")


@hookimpl
def register_augmentations(register):
    register(HalfShift, name="halfshift", modality="*")


@hookimpl
def register_encoders(register):
    raise RuntimeError("encoders broken on purpose")
'''

PLUGINS = {  # entry-point name -> (module, distribution, version, source)
    "good": ("ckfake_good_mod", "ckfake-good", "1.0", GOOD),
    "broken": ("ckfake_broken_mod", "ckfake-broken", "0.1", BROKEN),
    "twin": ("ckfake_twin_mod", "ckfake-twin", "0.2", TWIN),
    "lossy": ("ckfake_lossy_mod", "ckfake-lossy", "3.0", LOSSY),
    "half": ("ckfake_half_mod", "ckfake-half", "0.3", HALF),
}


@pytest.fixture
def fake_eps(tmp_path: Path, monkeypatch) -> dict[str, md.EntryPoint]:
    """Entry points of fake installed distributions, by entry-point name."""
    monkeypatch.delenv(DISABLE_ENV, raising=False)
    eps = {}
    for ep_name, (module, dist, version, source) in PLUGINS.items():
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
        info = tmp_path / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{ep_name} = {module}\n")
        (ep,) = [e for e in md.Distribution.at(info).entry_points if e.group == ENTRY_POINT_GROUP]
        eps[ep_name] = ep
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    yield eps
    for module, *_ in PLUGINS.values():
        sys.modules.pop(module, None)


def test_fake_entry_points_carry_their_distribution(fake_eps):
    assert fake_eps["good"].dist.metadata["Name"] == "ckfake-good"
    assert fake_eps["good"].value == "ckfake_good_mod"


def test_plugin_components_attributed(fake_eps):
    host = PluginHost(entry_points=[fake_eps["good"]])
    info = host.plugins["good"]
    assert (info.status, info.error) == ("loaded", None)
    assert (info.module, info.distribution, info.version) == ("ckfake_good_mod", "ckfake-good", "1.0")
    assert {(c.kind, c.modality, c.name) for c in info.components} == {
        ("modality", "fakemod", "fakemod"),
        ("augmentation", "fakemod", "shift"),
        ("encoder", "fakemod", "tiny"),
    }
    shift = host.registry.get("augmentation", "shift", "fakemod")
    assert shift.plugin == "good" and shift.distribution == "ckfake-good" and shift.version == "1.0"
    assert shift.obj.__name__ == "Shift"
    assert shift.description == "Shift every sample by one."  # first docstring line
    assert host.registry.get("encoder", "tiny", "fakemod").description == "a tiny encoder"
    assert host.modality("fakemod").description == "a fake modality"
    # core is there too, attributed to core
    loss = host.registry.get("loss", "infonce", "fakemod")
    assert loss.plugin == CORE_PLUGIN and loss.distribution == "contrastkit"
    assert host.failures() == []
    d = info.as_dict()
    assert d["status"] == "loaded" and d["distribution"] == "ckfake-good"
    assert {"kind": "augmentation", "modality": "fakemod", "name": "shift",
            "description": "Shift every sample by one."} in d["registered"]


def test_broken_import_recorded_others_load(fake_eps, capsys):
    host = PluginHost(entry_points=[fake_eps["broken"], fake_eps["good"]])
    broken = host.plugins["broken"]
    assert broken.status == "failed"
    assert broken.error == "RuntimeError: this plugin is broken on purpose"
    assert broken.components == []
    assert broken.distribution == "ckfake-broken"
    assert host.failures() == [broken]
    # the good plugin and core are unaffected
    assert host.plugins["good"].status == "loaded"
    assert host.registry.get("augmentation", "shift", "fakemod").plugin == "good"
    assert host.registry.get("loss", "infonce").plugin == CORE_PLUGIN
    warn_failures(host, sys.stderr)
    err = capsys.readouterr().err
    assert "plugin 'broken' was skipped" in err and "broken on purpose" in err


def test_duplicate_between_plugins_marks_later_failed(fake_eps):
    host = PluginHost(entry_points=[fake_eps["twin"], fake_eps["good"]])
    good, twin = host.plugins["good"], host.plugins["twin"]
    assert good.status == "loaded"
    assert twin.status == "failed"
    assert "duplicate augmentation 'shift'" in twin.error
    assert "plugin 'good' (distribution ckfake-good 1.0)" in twin.error
    assert "plugin 'twin' (distribution ckfake-twin 0.2)" in twin.error
    # the first registration is the one in the registry
    assert host.registry.get("augmentation", "shift", "fakemod").plugin == "good"
    assert host.failures() == [twin]


def test_plugin_failing_in_a_later_hook_is_rolled_back(fake_eps):
    host = PluginHost(entry_points=[fake_eps["half"], fake_eps["good"]])
    half = host.plugins["half"]
    assert half.status == "failed"
    assert half.error == "RuntimeError: encoders broken on purpose (in register_encoders)"
    # nothing of it stays: neither its reader (an earlier hook) nor its augmentation
    assert half.components == [] and half.as_dict()["registered"] == []
    assert not [c for c in host.registry if c.plugin == "half"]
    assert host.registry.find("reader", "halfreader") is None
    assert host.registry.find("augmentation", "halfshift") is None
    # the others are unaffected
    assert host.plugins["good"].status == "loaded"
    assert host.registry.get("augmentation", "shift", "fakemod").plugin == "good"
    assert host.failures() == [half]


def test_duplicate_rolls_back_the_failed_plugins_earlier_components(fake_eps):
    host = PluginHost(entry_points=[fake_eps["twin"], fake_eps["good"]])
    assert host.plugins["twin"].components == []
    assert {c.plugin for c in host.registry} == {CORE_PLUGIN, "good"} | {
        n for n, p in host.plugins.items() if p.status == "loaded"}


def test_duplicate_of_core_component(fake_eps):
    host = PluginHost(entry_points=[fake_eps["lossy"], fake_eps["good"]])
    lossy = host.plugins["lossy"]
    assert lossy.status == "failed"
    assert "duplicate loss 'infonce'" in lossy.error
    assert f"plugin '{CORE_PLUGIN}' (distribution contrastkit" in lossy.error
    assert "plugin 'lossy' (distribution ckfake-lossy 3.0)" in lossy.error
    loss = host.registry.get("loss", "infonce")
    assert loss.plugin == CORE_PLUGIN and loss.obj.__name__ == "InfoNCE"
    assert host.plugins["good"].status == "loaded"


def test_disable_by_env(fake_eps, monkeypatch):
    monkeypatch.setenv(DISABLE_ENV, " broken , good")
    host = PluginHost(entry_points=list(fake_eps.values()))
    assert host.plugins["good"].status == "disabled"
    assert host.plugins["broken"].status == "disabled"
    assert host.plugins["good"].error is None and host.plugins["good"].components == []
    assert host.plugins["good"].distribution == "ckfake-good"
    # a disabled plugin is not even imported, and registers nothing
    assert "ckfake_good_mod" not in sys.modules
    assert "ckfake_broken_mod" not in sys.modules
    assert host.registry.find("encoder", "tiny", "fakemod") is None
    assert "good" not in {c.plugin for c in host.registry}
    # with "good" gone, "twin"'s shift is no longer a duplicate
    assert host.plugins["twin"].status == "loaded"
    shift = host.registry.get("augmentation", "shift", "fakemod")
    assert shift.plugin == "twin" and shift.obj.__name__ == "OtherShift"
    assert sorted(p.name for p in host.failures()) == ["half", "lossy"]


def test_register_object_in_process(fake_eps):
    host = PluginHost(entry_points=[])
    import ckfake_good_mod

    host.register_object("inproc", ckfake_good_mod, distribution="mine")
    assert host.plugins["inproc"].status == "loaded"
    c = host.registry.get("encoder", "tiny", "fakemod")
    assert (c.plugin, c.distribution) == ("inproc", "mine")


@pytest.fixture(scope="module")
def real_host():
    return PluginHost()


def test_real_host_lists_builtin_timeseries(real_host):
    ts = real_host.plugins["timeseries"]
    assert ts.status == "loaded", ts.error
    assert ts.distribution == "contrastkit"
    assert ts.version == md.version("contrastkit")
    assert ts.module == "contrastkit.plugins.timeseries"
    kinds = {c.kind for c in ts.components}
    assert {"modality", "reader", "augmentation", "encoder"} <= kinds
    assert all(c.plugin == "timeseries" and c.distribution == "contrastkit" for c in ts.components)
    assert all(c.modality == "timeseries" for c in ts.components)
    assert real_host.modality("timeseries").name == "timeseries"
    assert real_host.registry.names("reader", "timeseries")
    assert real_host.registry.names("augmentation", "timeseries")
    assert real_host.registry.names("encoder", "timeseries")


def test_real_host_core_loss(real_host):
    core = real_host.plugins[CORE_PLUGIN]
    assert core.status == "loaded" and core.distribution == "contrastkit"
    infonce = real_host.registry.get("loss", "infonce", "timeseries")
    assert infonce.plugin == CORE_PLUGIN and infonce.modality == "*"
    assert infonce in core.components
    assert real_host.failures() == []


def test_modalities_lists_registered_modalities(fake_eps, real_host):
    assert PluginHost(entry_points=[fake_eps["good"]]).modalities() == ["fakemod"]
    assert "timeseries" in real_host.modalities()


def test_unknown_modality_lists_valid_ones(fake_eps, real_host):
    from contrastkit.core.errors import RegistryError

    with pytest.raises(RegistryError, match=r"unknown modality 'nosuch'; valid modalities: .*timeseries"):
        real_host.modality("nosuch")
    host = PluginHost(entry_points=[fake_eps["good"]])
    with pytest.raises(RegistryError, match=r"^unknown modality 'nosuch'; valid modalities: fakemod\.$"):
        host.modality("nosuch")
