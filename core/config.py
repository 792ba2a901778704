"""Run configuration: defaults, TOML files, command-line overrides, checking, hashing.

A run's config is one nested dict with plain values.  It is resolved in one
place, :func:`build`, from layers — core's defaults, the modality's default
recipe, the user's ``--config FILE.toml`` (or, with ``--resume``, the run's
saved ``config.json`` instead of the first two), then command-line flags —
and checked whole against the typed model :class:`RunConfig` (pydantic v2,
frozen) *before* anything is read or created: every key at every depth, with
the dotted path of the first bad one and a "did you mean" for unknown keys.
A plugin declares the schema of its ``data_options`` through its modality
(``Modality.options``, a :class:`DataOptions` subclass); component tables
(``[encoder]``, ``[loss]``, ``[head]``, ``augmentations[i]``, ``joint_view``)
are checked against the component's constructor signature through the
registry (:func:`check_components`).

The rest of the code reads the result as a plain dict (``cfg["epochs"]``);
that dict is a validated deep copy, written to the run directory as
``config.json`` unchanged in format.  The *config hash* covers everything
that changes what is trained (not ``epochs``, ``devices`` or ``num_workers``,
so a run can be resumed for more epochs or on other hardware).
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import inspect
import json
import tomllib
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Iterator, Literal, Mapping, Union, get_args, get_origin

import annotated_types as at
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from .errors import ConfigError, ContrastkitError

#: The ``[momentum]`` table: an EMA target network (MoCo/BYOL) and a queue of negatives (MoCo v2).
MOMENTUM_DEFAULTS: dict[str, Any] = {"enabled": False, "momentum": 0.99, "queue_size": 0, "schedule": "constant"}

#: Core defaults; a modality's ``defaults`` and the user's file override them.
BASE_CONFIG: dict[str, Any] = {
    "plugin": None,
    "data": None,
    "data_options": {},
    "seed": 0,
    "epochs": 40,
    "max_steps": None,
    # "train": pretrain on the training split only (inductive); "all": on every item, test split included
    # (the transductive protocol of GraphCL/InfoGraph/GRACE: labels are never seen in pretraining).
    "pretrain_on": "train",
    "batch_size": 16,
    "views": 2,
    "lr": 1e-3,
    "weight_decay": 1e-5,
    "warmup_epochs": 0,
    # "swa": the exported encoder is the running average of the encoder's weights over every optimiser
    # step (TS2Vec's torch.optim.swa_utils.AveragedModel); "none": the last weights.
    "weight_average": "none",
    "devices": 1,
    "accelerator": "auto",
    "precision": "32-true",
    "num_workers": 0,
    "keep_checkpoints": 2,
    "encoder": {"name": None},
    "head": {"name": "mlp", "out_dim": 128, "hidden_dim": None, "layers": 2},
    "loss": {"name": "infonce", "temperature": 0.1},
    "augmentations": [],
    "joint_view": None,
    "evaluate": {"evaluators": None, "seeds": [0, 1, 2]},
    "momentum": dict(MOMENTUM_DEFAULTS),
}

#: Keys that may change between a run and its resumption.
NOT_HASHED = ("epochs", "max_steps", "devices", "num_workers", "accelerator", "keep_checkpoints")

#: Keys added after runs were first saved: hashed only when they differ from this value, so that the
#: hash (and --resume) of a run saved before the key existed is unchanged.
HASHED_UNLESS = {"weight_average": "none"}


#: Tables that name a component: a table naming another component replaces the old one whole
#: (its parameters belong to the old component).
COMPONENT_TABLES = ("encoder", "loss", "head", "joint_view")

#: Where a value of a resolved config came from (``contrastkit config show``).
SOURCES = ("default", "recipe", "saved run", "file", "flag", "argument")


# ============================================================================ the typed model
def _expected(text: str) -> Any:
    """Field metadata: how an error message names what the field takes."""
    return Field(json_schema_extra={"expected": text})


class _Table(BaseModel):
    """A table of the run config: strict types (no "1" for 1, no true for 1), unknown keys refused."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class DataOptions(_Table):
    """Base class of a plugin's ``data_options`` schema (``Modality.options``).

    Declare every key the plugin's readers and ``prepare`` read, each with a
    type and a default (``None`` where the plugin picks one itself); unknown
    keys are then an error with a "did you mean".  Values are only checked:
    the plugin still receives the ``data_options`` dict as the user wrote it.
    """


class ComponentConfig(BaseModel):
    """A component table: ``name`` and the component's parameters (checked against its constructor)."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)

    name: Annotated[str, at.MinLen(1), _expected("the name of a registered component")]


class MomentumConfig(_Table):
    """``[momentum]``: an EMA target network and a queue of negatives (see docs/configuration.md)."""

    enabled: bool = MOMENTUM_DEFAULTS["enabled"]
    momentum: Annotated[float, at.Ge(0), at.Le(1)] = MOMENTUM_DEFAULTS["momentum"]
    queue_size: Annotated[int, at.Ge(0)] = MOMENTUM_DEFAULTS["queue_size"]
    schedule: Literal["constant", "cosine"] = MOMENTUM_DEFAULTS["schedule"]

    @model_validator(mode="after")
    def _queue_needs_target(self) -> "MomentumConfig":
        if self.queue_size and not self.enabled:
            raise ValueError("queue_size needs momentum.enabled = true (the queue holds target keys)")
        return self


class EvaluateConfig(_Table):
    """``[evaluate]``: the defaults of ``contrastkit evaluate``."""

    evaluators: list[str] | None = None
    seeds: list[int] = Field(default_factory=lambda: list(BASE_CONFIG["evaluate"]["seeds"]))
    #: the evaluators' own options (free-form: each evaluator checks its own)
    options: dict[str, Any] = Field(default_factory=dict)
    label_fractions: Annotated[list[Annotated[float, at.Gt(0), at.Le(1)]] | None,
                               _expected("a list of numbers in (0, 1]")] = None
    protocol: str | None = None


_B = BASE_CONFIG


class RunConfig(_Table):
    """The run configuration, typed.  Built by :func:`build`; frozen.

    ``data_options`` is any table here; :func:`run_config_model` gives the
    model with a plugin's own ``data_options`` schema in its place.
    """

    plugin: str | None = _B["plugin"]
    data: str | None = _B["data"]
    data_options: dict[str, Any] = Field(default_factory=dict)
    seed: int = _B["seed"]
    epochs: Annotated[int, at.Ge(1)] = _B["epochs"]
    max_steps: Annotated[int, at.Ge(1)] | None = _B["max_steps"]
    pretrain_on: Literal["train", "all"] = _B["pretrain_on"]
    batch_size: Annotated[int, at.Ge(2)] = _B["batch_size"]
    views: Annotated[int, at.Ge(2)] = _B["views"]
    lr: Annotated[float, at.Gt(0)] = _B["lr"]
    weight_decay: Annotated[float, at.Ge(0)] = _B["weight_decay"]
    warmup_epochs: Annotated[float, at.Ge(0)] = _B["warmup_epochs"]
    weight_average: Literal["none", "swa"] = _B["weight_average"]
    devices: Annotated[int, at.Ge(1)] = _B["devices"]
    accelerator: str = _B["accelerator"]
    precision: str | int = _B["precision"]
    num_workers: Annotated[int, at.Ge(0)] = _B["num_workers"]
    keep_checkpoints: Annotated[int, at.Ge(1)] = _B["keep_checkpoints"]
    encoder: ComponentConfig
    head: ComponentConfig = Field(default_factory=lambda: ComponentConfig(**_B["head"]))
    loss: ComponentConfig = Field(default_factory=lambda: ComponentConfig(**_B["loss"]))
    augmentations: Annotated[list[ComponentConfig], _expected("a list of tables, each with a 'name'")] = \
        Field(default_factory=list)
    joint_view: Annotated[ComponentConfig | None,
                          _expected("a table with a 'name', or \"none\" to switch it off")] = _B["joint_view"]
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    #: None in runs made before the table existed (then: no momentum)
    momentum: MomentumConfig | None = Field(default_factory=MomentumConfig)


_MODELS: dict[type, type[RunConfig]] = {}


def run_config_model(options: type[BaseModel] | None = None) -> type[RunConfig]:
    """:class:`RunConfig` with ``data_options`` typed by a plugin's schema (``Modality.options``)."""
    if options is None:
        return RunConfig
    if options not in _MODELS:
        _MODELS[options] = create_model(f"RunConfig_{options.__name__}", __base__=RunConfig,
                                        data_options=(options, Field(default_factory=options)))
    return _MODELS[options]


# ============================================================================ error messages
_PLURAL = {"an integer": "integers", "a number": "numbers", "a string": "strings", "true or false": "booleans",
           "a table": "tables", "a value": "values"}


def _bounds(meta: tuple) -> str:
    lo = hi = None
    lo_open = hi_open = False
    for m in meta:
        if isinstance(m, at.Ge):
            lo = m.ge
        elif isinstance(m, at.Gt):
            lo, lo_open = m.gt, True
        elif isinstance(m, at.Le):
            hi = m.le
        elif isinstance(m, at.Lt):
            hi, hi_open = m.lt, True
    if lo is not None and hi is not None:
        return f" in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    if lo is not None:
        return f" {'>' if lo_open else '≥'} {lo:g}"
    if hi is not None:
        return f" {'<' if hi_open else '≤'} {hi:g}"
    return ""


def _describe(tp: Any, meta: tuple = (), plural: bool = False) -> str:
    """How a message names what the type ``tp`` takes: "an integer ≥ 1", "a list of integers", ..."""
    origin = get_origin(tp)
    if origin is Annotated:
        base, *more = get_args(tp)
        for m in more:
            extra = getattr(m, "json_schema_extra", None)
            if isinstance(extra, dict) and "expected" in extra:
                return extra["expected"]
        return _describe(base, (*meta, *more), plural)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        return " or ".join(_describe(a, meta if len(args) == 1 else (), plural) for a in args)
    if origin is Literal:
        return "one of " + ", ".join(json.dumps(v) for v in get_args(tp))
    if origin in (list, tuple, set):
        args = get_args(tp)
        return "lists" if plural else ("a list of " + _describe(args[0], (), True) if args else "a list")
    if origin is dict or tp is dict or (isinstance(tp, type) and issubclass(tp, BaseModel)):
        word = "a table"
    else:
        word = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(tp, "a value")
    if plural:
        word = _PLURAL.get(word, word)
    return word + _bounds(meta)


def _field_expected(info) -> str:
    extra = info.json_schema_extra
    if isinstance(extra, dict) and "expected" in extra:
        return str(extra["expected"])
    return _describe(info.annotation, tuple(info.metadata))


def _model_in(tp: Any) -> type[BaseModel] | None:
    """The model class that a field of type ``tp`` holds (through Optional/Annotated), if any."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp
    origin = get_origin(tp)
    if origin is Annotated:
        return _model_in(get_args(tp)[0])
    if origin in (Union, types.UnionType):
        found = [m for m in (_model_in(a) for a in get_args(tp)) if m is not None]
        return found[0] if len(found) == 1 else None
    return None


def _list_item_model(tp: Any) -> type[BaseModel] | None:
    origin = get_origin(tp)
    if origin is Annotated:
        return _list_item_model(get_args(tp)[0])
    if origin in (Union, types.UnionType):
        found = [m for m in (_list_item_model(a) for a in get_args(tp)) if m is not None]
        return found[0] if len(found) == 1 else None
    if origin is list and get_args(tp):
        return _model_in(get_args(tp)[0])
    return None


def show(value: Any) -> str:
    """A value as a message shows it: strings quoted, booleans as TOML writes them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    return repr(value)


def did_you_mean(key: str, valid: list[str] | tuple[str, ...] | set[str]) -> str:
    """"; did you mean 'x'?" for the closest valid name, else "; valid keys: ..."."""
    close = difflib.get_close_matches(key, sorted(valid), n=1, cutoff=0.6)
    if close:
        return f"; did you mean '{close[0]}'?"
    return f"; valid keys: {', '.join(sorted(valid)) or 'none'}."


def _explain(exc: ValidationError, data: Any, model: type[BaseModel], prefix: str = "") -> str:
    """One sentence for the first error of ``exc``: the dotted path, what was expected, what was given."""
    errors = exc.errors(include_url=False)
    err = errors[0]
    loc = err["loc"]
    parts: list[str] = [prefix] if prefix else []
    current: type[BaseModel] | None = model
    value: Any = data
    info = None
    i = 0
    while i < len(loc):
        key = loc[i]
        if isinstance(key, str) and current is not None and key in current.model_fields:
            info = current.model_fields[key]
            parts.append(key)
            value = value.get(key) if isinstance(value, Mapping) else None
            current = _model_in(info.annotation)
        elif isinstance(key, int) and info is not None and isinstance(value, list) \
                and _list_item_model(info.annotation) is not None and key < len(value):
            current = _list_item_model(info.annotation)
            parts[-1] += f"[{key}]"
            value = value[key]
            info = None
        elif isinstance(key, str) and err["type"] == "extra_forbidden" and current is not None and i == len(loc) - 1:
            parts.append(key)
            path = ".".join(parts)
            return f"{path}: unknown key{did_you_mean(key, list(current.model_fields))}"
        else:
            break
        i += 1
    path = ".".join(parts) or "config"
    if err["type"] in ("value_error", "assertion_error"):
        msg = str(err.get("ctx", {}).get("error", err["msg"]))
        return f"{path}: {msg}."
    if info is None:
        expected = "a table" if current is not None else "a value"
    else:
        expected = _field_expected(info)
    if err["type"] == "missing":
        return f"{path}: missing; expected {expected}."
    return f"{path}: expected {expected}, got {show(value)}."


def _validate(model: type[BaseModel], data: Any, prefix: str = "") -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, data, model, prefix)) from None


def validate(cfg: Mapping[str, Any], options: type[BaseModel] | None = None) -> RunConfig:
    """The typed, frozen :class:`RunConfig` of ``cfg``; the first bad key is a ConfigError naming its dotted path.

    ``options`` is the plugin's ``data_options`` schema (``Modality.options``); without one,
    ``data_options`` may hold any table (plugins that declare none, e.g. third-party ones).
    """
    return _validate(run_config_model(options), cfg)  # type: ignore[return-value]


# ============================================================================ merging and resolving
def deep_merge(base: dict, override: dict) -> dict:
    """A copy of ``base`` with ``override`` merged in (dicts recursively; other values replaced)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        same_component = key not in COMPONENT_TABLES or (
            isinstance(value, dict) and isinstance(out.get(key), dict)
            and value.get("name", out[key].get("name")) == out[key].get("name"))
        if isinstance(value, dict) and (value or key != "joint_view") and isinstance(out.get(key), dict) \
                and same_component:
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_toml(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p}: no such file.")
    try:
        with open(p, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {p}: not valid TOML ({exc}).") from None


def _switch_off_joint_view(cfg: dict) -> None:
    jv = cfg.get("joint_view")
    if jv is False or jv == "none" or jv == {}:
        cfg["joint_view"] = None


def _leaves(d: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, value) of every leaf; lists and empty tables are leaves."""
    if isinstance(d, dict) and d:
        for k, v in d.items():
            yield from _leaves(v, f"{prefix}{k}.")
    elif prefix:
        yield prefix[:-1], d


def _track(sources: dict[str, str], merged: dict, layer: dict, label: str) -> dict[str, str]:
    given = {p for p, _ in _leaves(layer)}
    return {p: label if p in given else sources.get(p, label) for p, _ in _leaves(merged)}


@dataclass(frozen=True)
class Resolved:
    """A built run config: the dict the run uses, its typed frozen model, and where each value came from."""

    config: dict
    model: RunConfig
    sources: dict[str, str] = field(default_factory=dict)

    def leaves(self) -> list[tuple[str, Any, str]]:
        """(dotted key, value, source) of every leaf, in the config's order."""
        return [(p, v, self.sources.get(p, "default")) for p, v in _leaves(self.config)]


def build(modality: Any, plugin: str, file_config: dict | None = None, flags: dict | None = None,
          saved: dict | None = None, registry: Any = None) -> Resolved:
    """The one place a run config is made: defaults ← recipe ← file ← flags, checked whole.

    ``modality``: the plugin's :class:`~contrastkit.core.modality.Modality` (its ``defaults``,
    ``default_data`` and ``options`` schema).  ``saved``: a run's ``config.json`` (``--resume``),
    which then takes the place of defaults and recipe.  ``flags``: command-line values, ``None``
    meaning "not given"; ``loss``/``encoder`` name a component (another name replaces the table).
    ``registry``: when given, component tables are checked against their constructors too.
    Nothing is read or created; a bad key is a ConfigError with its dotted path.
    """
    layers: list[tuple[str, dict]] = (
        [("saved run", saved)] if saved is not None
        else [("default", BASE_CONFIG), ("recipe", dict(getattr(modality, "defaults", None) or {}))])
    if file_config:
        if not isinstance(file_config, dict):
            raise ConfigError("config file: expected a table of settings.")
        layers.append(("file", file_config))
    cfg: dict = {}
    sources: dict[str, str] = {}
    for label, layer in layers:
        merged = deep_merge(cfg, layer)
        sources = _track(sources, merged, layer, label)
        cfg = merged
    cfg["plugin"] = plugin
    sources["plugin"] = "argument"
    if saved is None and cfg.get("data") is None:
        cfg["data"] = getattr(modality, "default_data", None)
        sources["data"] = "recipe"
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    for section in ("loss", "encoder"):
        name = flags.pop(section, None)
        if name is not None and (not isinstance(cfg.get(section), dict) or cfg[section].get("name") != name):
            cfg[section] = {"name": name}
            sources = {p: s for p, s in sources.items() if p != section and not p.startswith(section + ".")}
            sources[f"{section}.name"] = "flag"
    if flags:
        merged = deep_merge(cfg, flags)
        sources = _track(sources, merged, flags, "flag")
        cfg = merged
    _switch_off_joint_view(cfg)
    model = validate(cfg, getattr(modality, "options", None))
    if registry is not None:
        check_components(cfg, registry, plugin)
    return Resolved(copy.deepcopy(cfg), model, sources)


def resolve(modality_defaults: dict, file_config: dict | None, overrides: dict) -> dict:
    """Merge the layers (base ← modality defaults ← file ← overrides) and check the result."""
    cfg = deep_merge(BASE_CONFIG, modality_defaults)
    if file_config:
        cfg = deep_merge(cfg, file_config)
    cfg = deep_merge(cfg, {k: v for k, v in overrides.items() if v is not None})
    check(cfg)
    return cfg


def check(cfg: dict, options: type[BaseModel] | None = None) -> RunConfig:
    """Check a merged config in place (``joint_view = "none"`` becomes None) and return its typed model."""
    _switch_off_joint_view(cfg)
    return validate(cfg, options)


def check_momentum(section: Any) -> None:
    """Check the ``[momentum]`` table (absent in runs made before it existed: then off)."""
    if section is None:
        return
    _validate(MomentumConfig, section, "momentum")


# ============================================================================ components
def _component_tables(cfg: Mapping[str, Any]) -> Iterator[tuple[str, str, dict]]:
    """(dotted path, kind, table) of every component table of a config."""
    for section, kind in (("encoder", "encoder"), ("loss", "loss"), ("head", "head")):
        if isinstance(cfg.get(section), dict):
            yield section, kind, cfg[section]
    for i, spec in enumerate(cfg.get("augmentations") or []):
        yield f"augmentations[{i}]", "augmentation", spec
    if isinstance(cfg.get("joint_view"), dict):
        yield "joint_view", "augmentation", cfg["joint_view"]


def accepted_parameters(obj: Any) -> tuple[set[str], bool] | None:
    """(keyword parameters of ``obj``'s constructor, whether it takes ``**kwargs``); None if unknown."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    names = {n for n, p in sig.parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return names, any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())


def check_params(path: str, kind: str, name: str, obj: Any, given: Mapping[str, Any]) -> None:
    """Refuse parameters that ``obj``'s constructor does not take, naming the first by its dotted path."""
    found = accepted_parameters(obj)
    if found is None or found[1]:
        return
    accepted, _ = found
    for key in given:
        if key not in accepted:
            close = difflib.get_close_matches(key, sorted(accepted), n=1, cutoff=0.6)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ConfigError(f"{path}.{key}: {kind} '{name}' has no parameter '{key}'; {hint}"
                              f"valid parameters: {', '.join(sorted(accepted)) or 'none'}.")


def check_components(cfg: Mapping[str, Any], registry: Any, modality: str) -> None:
    """Every component table names a component registered for ``modality`` and only parameters that
    its constructor takes (checked at config time, before data are read; the build checks again)."""
    for path, kind, table in _component_tables(cfg):
        name = table.get("name")
        if kind == "head":
            from .heads import HEADS

            if name == "none":
                continue
            if name not in HEADS:
                raise ConfigError(f"{path}.name: unknown head '{name}'; valid heads: "
                                  f"{', '.join(sorted([*HEADS, 'none']))}.")
            check_params(path, "head", name, HEADS[name], params(table))
            continue
        try:
            comp = registry.get(kind, name, modality)
        except ContrastkitError as exc:
            raise ConfigError(f"{path}.name: {exc}") from None
        check_params(path, kind, comp.name, comp.obj, params(table))


def params(section: dict) -> dict:
    """A component table without its 'name'."""
    return {k: v for k, v in section.items() if k != "name"}


# ============================================================================ hashing and diffs
def config_hash(cfg: dict) -> str:
    hashed = {k: v for k, v in cfg.items()
              if k not in NOT_HASHED and not (k in HASHED_UNLESS and v == HASHED_UNLESS[k])}
    blob = json.dumps(hashed, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def diff_keys(a: dict, b: dict, prefix: str = "") -> list[str]:
    """The dotted keys whose values differ between two configs (hashed keys only)."""
    out = []
    for key in sorted(set(a) | set(b)):
        if not prefix and key in NOT_HASHED:
            continue
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out.extend(diff_keys(va, vb, f"{prefix}{key}."))
        elif va != vb:
            out.append(f"{prefix}{key}")
    return out
