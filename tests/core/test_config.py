"""Run configuration: merging, resolution, checks, hashing and diffs."""

from __future__ import annotations

import copy

import pytest

from contrastkit.core.config import (
    BASE_CONFIG,
    NOT_HASHED,
    check,
    config_hash,
    deep_merge,
    diff_keys,
    load_toml,
    params,
    resolve,
)
from contrastkit.core.errors import ConfigError

MODALITY_DEFAULTS = {"encoder": {"name": "conv", "hidden": 8}, "batch_size": 8}


def valid_cfg(**over) -> dict:
    return deep_merge(deep_merge(BASE_CONFIG, MODALITY_DEFAULTS), over)


def test_deep_merge_recursive_and_copying():
    base = {"a": 1, "n": {"x": 1, "y": {"p": 1, "q": 2}}, "l": [1, 2]}
    over = {"n": {"y": {"q": 3}, "z": 4}, "l": [9], "b": 2}
    out = deep_merge(base, over)
    assert out == {"a": 1, "n": {"x": 1, "y": {"p": 1, "q": 3}, "z": 4}, "l": [9], "b": 2}
    # inputs untouched, output shares nothing with them
    assert base == {"a": 1, "n": {"x": 1, "y": {"p": 1, "q": 2}}, "l": [1, 2]}
    assert over == {"n": {"y": {"q": 3}, "z": 4}, "l": [9], "b": 2}
    out["n"]["y"]["p"] = 100
    out["l"].append(5)
    assert base["n"]["y"]["p"] == 1 and over["l"] == [9]


def test_deep_merge_replaces_non_dicts_and_joint_view():
    assert deep_merge({"a": {"x": 1}}, {"a": 3}) == {"a": 3}
    assert deep_merge({"a": 3}, {"a": {"x": 1}}) == {"a": {"x": 1}}
    # a joint view table is replaced whole: another joint view's options must not leak in
    base = {"joint_view": {"name": "contextual_crop", "min_overlap": 0.5}}
    assert deep_merge(base, {"joint_view": {"name": "subseq"}}) == {"joint_view": {"name": "subseq"}}


def test_component_table_renamed_replaces_whole():
    base = {"encoder": {"name": "conv", "hidden": 8, "depth": 3}, "loss": {"name": "infonce", "temperature": 0.1}}
    # another component: the old one's parameters do not leak into it
    assert deep_merge(base, {"encoder": {"name": "transformer", "heads": 2}})["encoder"] == {
        "name": "transformer", "heads": 2}
    # the same component, named or not: parameters merge
    assert deep_merge(base, {"encoder": {"name": "conv", "depth": 5}})["encoder"] == {
        "name": "conv", "hidden": 8, "depth": 5}
    assert deep_merge(base, {"loss": {"temperature": 0.5}})["loss"] == {"name": "infonce", "temperature": 0.5}
    # other tables always merge
    assert deep_merge({"data_options": {"a": 1}}, {"data_options": {"b": 2}}) == {"data_options": {"a": 1, "b": 2}}


@pytest.mark.parametrize("off", ["none", False, {}])
def test_joint_view_switched_off(off):
    defaults = {**MODALITY_DEFAULTS, "joint_view": {"name": "contextual_crop", "min_overlap": 0.5}}
    assert resolve(defaults, None, {})["joint_view"] == {"name": "contextual_crop", "min_overlap": 0.5}
    assert resolve(defaults, {"joint_view": off}, {})["joint_view"] is None


def test_resolve_layers():
    cfg = resolve(MODALITY_DEFAULTS, {"lr": 0.01, "encoder": {"hidden": 16}}, {"epochs": 3, "seed": None})
    assert cfg["batch_size"] == 8  # modality default over base
    assert cfg["lr"] == 0.01  # file over base
    assert cfg["encoder"] == {"name": "conv", "hidden": 16}  # merged, not replaced
    assert cfg["epochs"] == 3  # command line over everything
    assert cfg["seed"] == 0  # a None override means "not given"
    assert cfg["loss"] == {"name": "infonce", "temperature": 0.1}
    assert set(cfg) == set(BASE_CONFIG)


def test_resolve_command_line_beats_file():
    cfg = resolve(MODALITY_DEFAULTS, {"lr": 0.01, "batch_size": 32}, {"lr": 0.5})
    assert cfg["lr"] == 0.5 and cfg["batch_size"] == 32


def test_resolve_unknown_file_keys():
    with pytest.raises(ConfigError) as info:
        resolve(MODALITY_DEFAULTS, {"lr": 0.01, "learning_rate": 0.1, "zzz": 1}, {})
    msg = str(info.value)
    assert msg.startswith("learning_rate: unknown key")  # the first unknown key, by its dotted path
    assert "valid keys:" in msg and "batch_size" in msg


def test_resolve_checks_the_result():
    with pytest.raises(ConfigError, match="^views: "):
        resolve(MODALITY_DEFAULTS, {"views": 1}, {})
    with pytest.raises(ConfigError, match=r"^encoder\.name: "):
        resolve({}, None, {})  # no modality default encoder


def test_valid_config_passes_check():
    check(valid_cfg())
    check(valid_cfg(joint_view={"name": "crop"}, augmentations=[{"name": "jitter", "sigma": 0.1}], weight_decay=0))


@pytest.mark.parametrize(
    "override,needle",
    [
        ({"epochs": 0}, "epochs: expected an integer ≥ 1, got 0."),
        ({"epochs": 2.5}, "epochs: expected an integer ≥ 1, got 2.5."),
        ({"epochs": True}, "epochs: expected an integer ≥ 1, got true."),
        ({"batch_size": 1}, "batch_size: expected an integer ≥ 2, got 1."),
        ({"views": 1}, "views: expected an integer ≥ 2, got 1."),
        ({"devices": 0}, "devices: expected an integer ≥ 1, got 0."),
        ({"num_workers": -1}, "num_workers: expected an integer ≥ 0, got -1."),
        ({"seed": "1"}, "seed: expected an integer, got '1'."),
        ({"lr": 0}, "lr: expected a number > 0, got 0."),
        ({"lr": -0.1}, "lr: expected a number > 0, got -0.1."),
        ({"lr": "fast"}, "lr: expected a number > 0, got 'fast'."),
        ({"weight_decay": -1e-3}, "weight_decay: expected a number ≥ 0, got -0.001."),
        ({"loss": {"name": ""}}, "loss.name: expected the name of a registered component, got ''."),
        ({"head": "mlp"}, "head: expected a table"),
        ({"augmentations": {"name": "jitter"}}, "augmentations: expected a list of tables"),
        ({"augmentations": [{"sigma": 0.1}]}, "augmentations[0].name: missing"),
        ({"joint_view": {"min_overlap": 0.5}}, "joint_view.name: missing"),
        ({"joint_view": "crop"}, "joint_view: expected a table"),
    ],
)
def test_check_rejects_bad_values(override, needle):
    cfg = valid_cfg()
    cfg.update(override)
    with pytest.raises(ConfigError) as info:
        check(cfg)
    assert needle in str(info.value)


def test_params():
    assert params({"name": "jitter", "sigma": 0.1}) == {"sigma": 0.1}


def test_config_hash_ignores_runtime_keys():
    cfg = valid_cfg()
    h = config_hash(cfg)
    assert len(h) == 16 and int(h, 16) >= 0
    assert config_hash(copy.deepcopy(cfg)) == h
    for key, value in {"epochs": 999, "devices": 4, "num_workers": 3, "accelerator": "cpu", "keep_checkpoints": 7}.items():
        assert key in NOT_HASHED
        assert config_hash({**cfg, key: value}) == h, key


def test_config_hash_sees_training_keys():
    cfg = valid_cfg()
    h = config_hash(cfg)
    assert config_hash({**cfg, "lr": 0.002}) != h
    assert config_hash({**cfg, "seed": 1}) != h
    assert config_hash(deep_merge(cfg, {"loss": {"temperature": 0.2}})) != h
    assert config_hash(deep_merge(cfg, {"encoder": {"hidden": 9}})) != h


def test_config_hash_independent_of_key_order():
    cfg = valid_cfg()
    reordered = dict(reversed(list(cfg.items())))
    reordered["encoder"] = dict(reversed(list(cfg["encoder"].items())))
    assert config_hash(reordered) == config_hash(cfg)


def test_diff_keys():
    a = valid_cfg()
    b = deep_merge(a, {"lr": 0.5, "epochs": 100, "loss": {"temperature": 0.5}, "encoder": {"depth": 3}})
    assert diff_keys(a, b) == ["encoder.depth", "loss.temperature", "lr"]
    assert diff_keys(a, copy.deepcopy(a)) == []
    assert diff_keys({"x": {"y": 1}}, {"x": 2}) == ["x"]
    # runtime keys are ignored only at the top level
    assert diff_keys({"devices": 1, "n": {"devices": 1}}, {"devices": 2, "n": {"devices": 2}}) == ["n.devices"]


def test_load_toml(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('lr = 0.01\n[loss]\nname = "infonce"\ntemperature = 0.2\n[[augmentations]]\nname = "jitter"\n')
    assert load_toml(p) == {"lr": 0.01, "loss": {"name": "infonce", "temperature": 0.2}, "augmentations": [{"name": "jitter"}]}
    with pytest.raises(ConfigError, match="no such file"):
        load_toml(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("lr = = 1\n")
    with pytest.raises(ConfigError, match="bad.toml: not valid TOML"):
        load_toml(bad)
