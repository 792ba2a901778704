"""The typed run config: every key at every depth checked before anything is read or created;
sources of values; the JSON schema; plugins' data_options schemas."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contrastkit.core import config as cfgmod
from contrastkit.core.config import RunConfig, build, config_hash, run_config_model
from contrastkit.core.errors import ConfigError
from contrastkit.core.plugins import get_host


@pytest.fixture(scope="module")
def host():
    return get_host()


@pytest.mark.parametrize("toml,expected", [
    ('[data_options]\nid_colum = "id"\n', "error: data_options.id_colum: unknown key; did you mean 'id_column'?"),
    ('[data_options]\nnormalise = "instance"\n', "error: data_options.normalise: unknown key; did you mean 'normalize'?"),
    ('[data_options]\nnormalize = "instanse"\n',
     'error: data_options.normalize: expected one of "global", "instance", "none", got \'instanse\'.'),
    ('[evaluate]\nseeds = "0,1"\n', "error: evaluate.seeds: expected a list of integers, got '0,1'."),
    ('[evaluate]\nlabel_fractions = [0.1, 1.5]\n',
     "error: evaluate.label_fractions: expected a list of numbers in (0, 1], got [0.1, 1.5]."),
    ('[evaluate]\nprotocol = 3\n', "error: evaluate.protocol: expected a string, got 3."),
    ('[encoder]\nhiddn = 3\n', "error: encoder.hiddn: encoder 'dilated_conv' has no parameter 'hiddn'; "
                               "did you mean 'hidden'?"),
    ('[[augmentations]]\nname = "jitter"\nsigmaa = 0.1\n', "error: augmentations[0].sigmaa: augmentation 'jitter' "
                                                           "has no parameter 'sigmaa'; did you mean 'sigma'?"),
    ('[[augmentations]]\nname = "nosuch"\n', "error: augmentations[0].name: unknown augmentation 'nosuch'"),
    ('[joint_view]\nname = "contextual_crop"\nmin_overlapp = 0.5\n', "error: joint_view.min_overlapp: augmentation "
                                                                    "'contextual_crop' has no parameter"),
    ('[head]\nout_dimm = 3\n', "error: head.out_dimm: head 'mlp' has no parameter 'out_dimm'; did you mean 'out_dim'?"),
    ('[momentum]\nenabled = "yes"\n', "error: momentum.enabled: expected true or false, got 'yes'."),
    ('epoch = 3\n', "error: epoch: unknown key; did you mean 'epochs'?"),
    ('batch_size = 1.5\n', "error: batch_size: expected an integer ≥ 2, got 1.5."),
])
def test_bad_config_one_error_and_nothing_created(cli, tmp_path, toml, expected):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(toml)
    run = tmp_path / "run"
    r = cli("pretrain", "timeseries", "--data", tmp_path / "never-read.parquet", "--config", cfg, "--out", run)
    line = r.one_error_line()
    assert line.startswith(expected), line
    assert not run.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]


def test_evaluate_accepts_the_new_keys(host):
    file_cfg = {"evaluate": {"label_fractions": [0.01, 0.1, 1.0], "protocol": "linear", "options": {"x": {"y": 1}},
                             "evaluators": None}}
    res = build(host.modality("timeseries"), "timeseries", file_cfg, {}, registry=host.registry)
    assert res.config["evaluate"]["label_fractions"] == [0.01, 0.1, 1.0]
    assert res.model.evaluate.protocol == "linear"
    with pytest.raises(Exception):
        res.model.epochs = 3  # frozen


def test_resolved_is_a_plain_validated_copy_and_the_hash_is_unchanged(host):
    """The built dict is exactly the merged dict of the old resolver (same hash for existing configs)."""
    modality = host.modality("timeseries")
    file_cfg = {"lr": 0.01, "loss": {"temperature": 0.2}}
    res = build(modality, "timeseries", file_cfg, {"epochs": 3, "seed": None, "loss": "infonce"})
    old = cfgmod.resolve(modality.defaults, file_cfg, {})
    old["plugin"], old["data"] = "timeseries", modality.default_data
    old = cfgmod.deep_merge(old, {"epochs": 3})
    assert res.config == old and config_hash(res.config) == config_hash(old)
    assert type(res.config) is dict and json.loads(json.dumps(res.config)) == res.config
    assert res.sources["epochs"] == "flag" and res.sources["lr"] == "file" and res.sources["seed"] == "default"
    assert res.sources["loss.temperature"] == "file" and res.sources["loss.name"] == "recipe"
    assert res.sources["encoder.name"] == "recipe" and res.sources["plugin"] == "argument"


def test_flag_naming_another_component_replaces_the_table(host):
    res = build(host.modality("timeseries"), "timeseries", {"loss": {"temperature": 0.2}}, {"loss": "dcl"},
                registry=host.registry)
    assert res.config["loss"] == {"name": "dcl"} and res.sources["loss.name"] == "flag"
    assert "loss.temperature" not in res.sources


def test_resume_uses_the_saved_config(host):
    modality = host.modality("timeseries")
    saved = build(modality, "timeseries", None, {}).config
    saved.pop("momentum")  # a run from before the table existed keeps its hash
    h = config_hash(saved)
    res = build(modality, "timeseries", None, {"epochs": 99}, saved=saved)
    assert config_hash(res.config) == h and res.config["epochs"] == 99
    assert res.sources["lr"] == "saved run" and res.sources["epochs"] == "flag"


@pytest.mark.parametrize("plugin", ["timeseries", "events", "graphs", "points", "volumes"])
def test_every_plugin_declares_its_data_options_and_its_recipe_validates(host, plugin):
    modality = host.modality(plugin)
    assert modality.options is not None
    res = build(modality, plugin, None, {}, registry=host.registry)
    assert set(res.config["data_options"]) <= set(modality.options.model_fields)
    schema = run_config_model(modality.options).model_json_schema()
    assert schema["properties"]["data_options"]["$ref"].endswith(modality.options.__name__)


def test_plugin_option_literals_match_the_plugins_own_checks():
    from contrastkit.plugins.events import modality as ev
    from contrastkit.plugins.events.options import EventsOptions
    from contrastkit.plugins.graphs import modality as gr
    from contrastkit.plugins.graphs.options import GraphsOptions
    from contrastkit.plugins.points import modality as pt
    from contrastkit.plugins.points.options import PointsOptions
    from contrastkit.plugins.timeseries import modality as ts
    from contrastkit.plugins.timeseries.options import TimeseriesOptions
    from contrastkit.plugins.volumes import modality as vo
    from contrastkit.plugins.volumes import readers as vr
    from contrastkit.plugins.volumes.options import VolumesOptions
    from typing import get_args

    def lit(model, key):
        return get_args(model.model_fields[key].annotation)

    assert lit(TimeseriesOptions, "normalize") == ts.NORMALIZE and lit(TimeseriesOptions, "missing") == ts.MISSING
    assert lit(EventsOptions, "numeric_transform") == ev.TRANSFORMS and lit(EventsOptions, "scaling") == ev.SCALINGS
    assert lit(GraphsOptions, "normalize") == gr.NORMALIZE and lit(PointsOptions, "normalize") == pt.NORMALIZE
    assert lit(VolumesOptions, "normalize") == vo.NORMALIZE
    assert lit(VolumesOptions, "granularity") == vr.GRANULARITIES and lit(VolumesOptions, "split") == vr.SPLITS
    assert set(vr.OPTION_DEFAULTS) <= set(VolumesOptions.model_fields)
    for key, value in vr.OPTION_DEFAULTS.items():  # the readers' defaults are valid values of the schema
        VolumesOptions.model_validate({key: value})


def test_a_plugin_without_a_schema_accepts_any_data_options():
    class Bare:
        defaults = {"encoder": {"name": "x"}}
        default_data = "d"
        options = None

    res = build(Bare(), "bare", {"data_options": {"anything": {"goes": [1]}}}, {})
    assert res.config["data_options"] == {"anything": {"goes": [1]}}


def test_config_show_and_schema_cli(cli, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("lr = 0.01\n[data_options]\nnormalize = \"instance\"\n")
    r = cli("config", "show", "timeseries", "--config", cfg, "--epochs", "3", "--json")
    assert r.code == 0, r
    doc = json.loads(r.out)
    assert doc["config"]["epochs"] == 3 and doc["sources"]["epochs"] == "flag"
    assert doc["sources"]["lr"] == "file" and doc["sources"]["data_options.normalize"] == "file"
    assert doc["sources"]["data_options.missing"] == "recipe" and doc["sources"]["weight_decay"] == "default"
    r = cli("config", "show", "timeseries", "--epochs", "3")
    assert r.code == 0 and "epochs" in r.out and "# flag" in r.out and "# recipe" in r.out
    r = cli("config", "schema", "volumes")
    assert r.code == 0, r
    schema = json.loads(r.out)
    opts = schema["$defs"]["VolumesOptions"]
    assert opts["additionalProperties"] is False and "ignore_label" in opts["properties"]
    assert schema["properties"]["evaluate"]["$ref"].endswith("EvaluateConfig")
    r = cli("config", "show", tmp_path)
    assert "not a contrastkit run directory" in r.one_error_line()


# ---------------------------------------------------------------------------- property test
_TABLES = ("", "evaluate", "momentum", "data_options")


def _valid_base(host) -> tuple[dict, object]:
    modality = host.modality("timeseries")
    return build(modality, "timeseries", None, {}).config, modality


def _checked_paths(cfg: dict, modality) -> list[tuple[str, ...]]:
    """Leaves whose type the config checks (not the free-form component parameters or evaluate.options)."""
    paths = [(k,) for k, v in cfg.items() if not isinstance(v, dict) and k not in ("augmentations", "plugin")]
    paths += [("evaluate", k) for k in ("evaluators", "seeds", "label_fractions", "protocol")]
    paths += [("momentum", k) for k in cfg["momentum"]]
    paths += [("data_options", k) for k in modality.options.model_fields]
    paths += [(c, "name") for c in ("encoder", "loss", "head")]
    return paths


WRONG = st.sampled_from([{"zz": 1}, [{"zz": 1}], "0,1", 2.5, True, -3, [1, "a"]])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_property_any_wrong_key_or_type_names_its_dotted_path(host, tmp_path, data):
    base, modality = _valid_base(host)
    cfg = copy.deepcopy(base)
    if data.draw(st.booleans(), label="unknown key"):
        table = data.draw(st.sampled_from(_TABLES), label="table")
        key = "zz_" + data.draw(st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8), label="key")
        (cfg[table] if table else cfg)[key] = data.draw(st.integers() | st.text(max_size=3), label="value")
        path = f"{table}.{key}" if table else key
        needle = f"{path}: unknown key"
    else:
        where = data.draw(st.sampled_from(_checked_paths(cfg, modality)), label="path")
        value = data.draw(WRONG, label="value")
        parent = cfg
        for k in where[:-1]:
            parent = parent[k]
        try:  # a value that happens to fit (e.g. True for a bool): not a wrong-type case
            probe = copy.deepcopy(cfg)
            tgt = probe
            for k in where[:-1]:
                tgt = tgt[k]
            tgt[where[-1]] = value
            cfgmod.validate(probe, modality.options)
            return
        except ConfigError:
            pass
        parent[where[-1]] = value
        path = ".".join(where)
        needle = f"{path}: expected"
    before = sorted(tmp_path.iterdir())
    with pytest.raises(ConfigError) as info:
        build(modality, "timeseries", cfg, {}, saved=None, registry=host.registry)
    msg = str(info.value)
    assert msg.startswith(needle), (msg, needle)
    assert "\n" not in msg
    assert sorted(tmp_path.iterdir()) == before  # nothing created


def test_typed_model_defaults_are_the_base_config():
    fields = RunConfig.model_fields
    for key, value in cfgmod.BASE_CONFIG.items():
        if key in ("encoder", "head", "loss", "evaluate", "momentum", "data_options"):
            continue
        default = fields[key].default_factory() if fields[key].default_factory else fields[key].default
        assert default == value, key
    assert RunConfig.model_fields["momentum"].default_factory().model_dump() == cfgmod.MOMENTUM_DEFAULTS


_READ = __import__("re").compile(r"""\b(?:options|opts|o)(?:\.get\(|\[|\.setdefault\()\s*["']([a-z_][a-z0-9_]*)["']""")
#: modules whose ``options`` are the evaluators' (``[evaluate] options``), not ``data_options``
_EVALUATOR_MODULES = ("evaluators.py", "forecast.py")


@pytest.mark.parametrize("plugin", ["timeseries", "events", "graphs", "points", "volumes"])
def test_every_data_option_a_plugin_reads_is_declared(host, plugin):
    """Grep the plugin's readers and modality for the option keys they read: each must be in its schema."""
    from pathlib import Path

    import contrastkit.plugins as plugins_pkg

    folder = Path(plugins_pkg.__file__).parent / plugin
    read = set()
    for f in folder.glob("*.py"):
        if f.name not in _EVALUATOR_MODULES:
            read |= set(_READ.findall(f.read_text()))
    declared = set(host.modality(plugin).options.model_fields)
    assert read, plugin
    assert read <= declared, sorted(read - declared)
