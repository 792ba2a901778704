"""The component registry: keys, the "*" fallback, duplicates and unknown names."""

from __future__ import annotations

import pytest

from contrastkit.core.errors import ContrastkitError, RegistryError
from contrastkit.core.registry import ANY, KINDS, Component, Registry


def comp(kind="encoder", modality="timeseries", name="conv", obj=None, plugin="p1", distribution="dist-one", version="1.0"):
    return Component(kind=kind, modality=modality, name=name, obj=obj if obj is not None else object(),
                     plugin=plugin, distribution=distribution, version=version)


@pytest.fixture
def reg() -> Registry:
    r = Registry()
    r.add(comp("encoder", "timeseries", "conv", obj="ts-conv"))
    r.add(comp("encoder", "timeseries", "transformer", obj="ts-transformer"))
    r.add(comp("encoder", "graph", "gin", obj="graph-gin"))
    r.add(comp("loss", ANY, "infonce", obj="infonce"))
    r.add(comp("loss", ANY, "vicreg", obj="vicreg"))
    r.add(comp("evaluator", ANY, "knn", obj="generic-knn"))
    r.add(comp("evaluator", "graph", "knn", obj="graph-knn"))  # a modality-specific override of a generic name
    return r


def test_add_returns_component_and_counts(reg):
    c = comp("reader", "timeseries", "ts")
    assert reg.add(c) is c
    assert len(reg) == 8
    assert c in list(reg)
    assert c.key == ("reader", "timeseries", "ts")


def test_get_and_find_exact(reg):
    assert reg.get("encoder", "conv", "timeseries").obj == "ts-conv"
    assert reg.find("encoder", "gin", "graph").obj == "graph-gin"
    # another modality's component is not visible
    assert reg.find("encoder", "gin", "timeseries") is None
    assert reg.find("encoder", "conv", "graph") is None
    # a kind mismatch is not a match
    assert reg.find("loss", "conv", "timeseries") is None


def test_any_fallback(reg):
    # losses registered for "*" are found for any concrete modality and for "*"
    assert reg.get("loss", "infonce", "timeseries").obj == "infonce"
    assert reg.get("loss", "infonce", "volumes").obj == "infonce"
    assert reg.get("loss", "infonce").obj == "infonce"
    # a modality-specific component wins over the generic one of the same name
    assert reg.get("evaluator", "knn", "graph").obj == "graph-knn"
    assert reg.get("evaluator", "knn", "timeseries").obj == "generic-knn"
    # a modality-specific component is not found through "*"
    assert reg.find("encoder", "conv") is None


def test_names(reg):
    assert reg.names("encoder", "timeseries") == ["conv", "transformer"]
    assert reg.names("encoder", "graph") == ["gin"]
    assert reg.names("loss", "timeseries") == ["infonce", "vicreg"]
    assert reg.names("loss") == ["infonce", "vicreg"]
    # generic and specific knn are one name
    assert reg.names("evaluator", "graph") == ["knn"]
    assert reg.names("reader", "timeseries") == []


def test_of_kind(reg):
    assert {c.obj for c in reg.of_kind("encoder")} == {"ts-conv", "ts-transformer", "graph-gin"}
    assert {c.obj for c in reg.of_kind("encoder", "graph")} == {"graph-gin"}
    assert {c.obj for c in reg.of_kind("evaluator", "timeseries")} == {"generic-knn"}


def test_duplicate_refused_naming_both_plugins(reg):
    dup = comp("encoder", "timeseries", "conv", plugin="p2", distribution="dist-two", version="2.5")
    with pytest.raises(RegistryError) as info:
        reg.add(dup)
    msg = str(info.value)
    assert "duplicate encoder 'conv'" in msg
    assert "'timeseries'" in msg
    assert "plugin 'p1'" in msg and "dist-one 1.0" in msg
    assert "plugin 'p2'" in msg and "dist-two 2.5" in msg
    # the first registration is kept
    assert reg.get("encoder", "conv", "timeseries").obj == "ts-conv"
    assert len(reg) == 7


def test_same_name_other_modality_or_kind_is_no_duplicate(reg):
    reg.add(comp("encoder", "graph", "conv", obj="graph-conv"))
    reg.add(comp("augmentation", "timeseries", "conv", obj="aug-conv"))
    assert reg.get("encoder", "conv", "graph").obj == "graph-conv"
    assert reg.get("encoder", "conv", "timeseries").obj == "ts-conv"
    assert reg.get("augmentation", "conv", "timeseries").obj == "aug-conv"


def test_unknown_name_lists_valid_names(reg):
    with pytest.raises(RegistryError) as info:
        reg.get("encoder", "resnet", "timeseries")
    msg = str(info.value)
    assert isinstance(info.value, ContrastkitError)
    assert "unknown encoder 'resnet'" in msg
    assert "modality 'timeseries'" in msg
    assert "valid encoders: conv, transformer." in msg
    assert "gin" not in msg  # another modality's encoder is not offered

    with pytest.raises(RegistryError) as info:
        reg.get("loss", "barlow", "graph")
    assert str(info.value) == "unknown loss 'barlow' for modality 'graph'; valid losses: infonce, vicreg."


def test_unknown_name_when_none_installed():
    with pytest.raises(RegistryError, match="unknown reader 'csv'.*none are installed"):
        Registry().get("reader", "csv", "timeseries")


def test_bad_kind_and_missing_name_refused():
    r = Registry()
    with pytest.raises(RegistryError, match="unknown kind 'optimizer'") as info:
        r.add(comp(kind="optimizer"))
    for k in KINDS:
        assert k in str(info.value)
    with pytest.raises(RegistryError, match="without a name"):
        r.add(comp(name=""))
    assert len(r) == 0


def test_component_origin_and_dict():
    c = comp(plugin="audio", distribution="contrastkit-audio", version="0.3")
    assert c.origin() == "plugin 'audio' (distribution contrastkit-audio 0.3)"
    assert comp(plugin="x", distribution=None).origin() == "plugin 'x'"
    d = c.as_dict()
    assert d == {"kind": "encoder", "modality": "timeseries", "name": "conv", "plugin": "audio",
                 "distribution": "contrastkit-audio", "version": "0.3", "description": ""}
