"""check_plugin: every component of a plugin, on batches of its default data set; conformance_tests."""

from __future__ import annotations

import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

try:  # the kit works without pytest; only the fixture and conformance_tests need it
    import pytest
except ImportError:  # pragma: no cover
    pytest = None  # type: ignore[assignment]

from .augmentations import check_augmentation
from .encoders import check_encoder
from .evaluators import check_evaluator
from .losses import check_loss
from .modalities import check_modality
from .readers import check_reader
from .report import BATCH_ITEMS, ConformanceError, FAILED, Finding, Report, _Checker, _label, _one_line, _own_rng

# --------------------------------------------------------------------------- whole plugins


@dataclass
class _Bench:
    """Data of one modality, read and prepared as ``pretrain`` does, to check components on."""

    modality: Any
    source: str
    cfg: dict
    raw_train: Any
    train: Any
    everything: Any
    meta: dict
    batch_items: int = BATCH_ITEMS
    device: Any = "cpu"

    def batch(self) -> Any:
        from ..runs import move_to

        return move_to(self.modality.collate(list(self.train.items[: self.batch_items])), self.device)

    def single(self) -> Any:
        from ..runs import move_to

        return move_to(self.modality.collate(list(self.train.items[:1])), self.device)


#: Benches by plugin host, then by (modality, source, batch items): data is read once per session.
_BENCHES: "weakref.WeakKeyDictionary[Any, dict[tuple, _Bench | Exception]]" = weakref.WeakKeyDictionary()


def _bench(host: Any, modality_name: str, source: str | None, batch_items: int, device: Any = "cpu") -> _Bench:
    cache = _BENCHES.setdefault(host, {})
    key = (modality_name, source, batch_items, str(device))
    if key not in cache:
        try:
            cache[key] = _make_bench(host, modality_name, source, batch_items, device)
        except Exception as exc:  # noqa: BLE001 - reported per component
            cache[key] = exc
    found = cache[key]
    if isinstance(found, Exception):
        raise found
    return found


def _make_bench(host: Any, modality_name: str, source: str | None, batch_items: int, device: Any) -> _Bench:
    import torch

    from ..config import resolve
    from ..data import TRAIN
    from ..sources import read_source

    modality = host.modality(modality_name)
    cfg = resolve(modality.defaults or {}, None, {})
    cfg["plugin"] = modality_name
    src = source or modality.default_data
    raw = read_source(host.registry, modality_name, src, cfg["data_options"]).with_split()
    raw_train = raw.part(TRAIN)
    if len(raw_train) < 2:  # e.g. one long series for a forecast evaluator, split in time by the evaluator
        raw_train = raw
    if modality.prepare is not None:
        train, state = modality.prepare(raw_train, None, cfg["data_options"])
        everything, _ = modality.prepare(raw, state, cfg["data_options"])
    else:
        train, everything = raw_train, raw
    return _Bench(modality, src, cfg, raw_train, train, everything, dict(train.meta), batch_items,
                  torch.device(device))


def _resolve_plugin(host: Any, plugin: str) -> tuple[str, list]:
    """The plugin's name and components; a modality's name stands for the plugins that registered for it."""
    from ..errors import RegistryError

    info = host.plugins.get(plugin)
    if info is not None:
        if info.status != "loaded":
            raise RegistryError(f"plugin '{plugin}' is {info.status}: {info.error or 'switched off'}.")
        return plugin, list(info.components)
    comps = [comp for comp in host.registry if comp.modality == plugin]
    if not comps:
        names = sorted(p for p in host.plugins)
        raise RegistryError(f"no plugin or modality '{plugin}' is installed; installed plugins: {', '.join(names)}.")
    return plugin, comps


def plugin_components(plugin: str, host: Any = None) -> list[tuple[str, str, str]]:
    """``(kind, modality, name)`` of every component ``plugin`` registered (for parametrised tests)."""
    host = host or _host()
    _, comps = _resolve_plugin(host, plugin)
    return [comp.key for comp in comps]


def _host() -> Any:
    from ..plugins import get_host

    return get_host()


def _where(comp: Any) -> str:
    return f"modality '{comp.modality}', plugin '{comp.plugin}'"


def _recipe_params(cfg: dict, kind: str, name: str) -> dict:
    """The constructor arguments that the default recipe gives the component, if it names it."""
    from ..config import params as table_params

    if kind == "encoder" and cfg["encoder"]["name"] == name:
        return table_params(cfg["encoder"])
    if kind == "loss" and cfg["loss"]["name"] == name:
        return table_params(cfg["loss"])
    if kind == "augmentation":
        if cfg.get("joint_view") and cfg["joint_view"]["name"] == name:
            return table_params(cfg["joint_view"])
        for spec in cfg.get("augmentations") or []:
            if spec["name"] == name:
                return table_params(spec)
    return {}


def _check_component(
    host: Any,
    comp: Any,
    *,
    modality: str | None,
    data: str | Mapping[str, str] | None,
    params: Mapping[str, dict],
    keeps_shape: Mapping[str, bool],
    options: Mapping[str, Any],
    batch_items: int,
    tmp_path: Path,
    device: Any = "cpu",
) -> Report:
    label = _label(comp.kind, comp.name, comp.obj, _where(comp))
    c = _Checker(label)
    target = comp.modality if comp.modality != "*" else modality
    if comp.kind == "loss":
        return check_loss(comp.obj, params=params.get(comp.name), name=comp.name, where=_where(comp), raise_=False)
    if comp.kind == "reader":
        sources = None
        try:
            offered = comp.obj.datasets()
            default = host.modality(comp.modality).default_data if comp.modality != "*" else None
            src = _data_for(data, comp)
            if isinstance(data, Mapping) and data.get(comp.name):  # a source named for this very reader
                sources = [str(data[comp.name])]
            elif src is not None and str(src).lower() in {k.lower() for k in offered}:
                sources = [src]
            elif default is not None and str(default).lower() in {k.lower() for k in offered}:
                sources = [next(k for k in offered if k.lower() == str(default).lower())]
        except Exception:  # noqa: BLE001 - check_reader reports it
            pass
        opts = None
        if comp.modality != "*":
            try:
                opts = (host.modality(comp.modality).defaults or {}).get("data_options")
            except Exception:  # noqa: BLE001
                opts = None
        return check_reader(comp.obj, sources=sources, options=opts, name=comp.name, where=_where(comp),
                            tmp_path=tmp_path, raise_=False)
    if target is None:
        c.skipped("work with a modality", "it is registered for every modality ('*'); pass modality=NAME to check it")
        return c.report
    try:
        bench = _bench(host, target, _data_for(data, comp, target), batch_items, device)
    except Exception as exc:  # noqa: BLE001
        c.failed("get checked on the modality's default data", f"reading and preparing "
                 f"'{_data_for(data, comp, target) or 'the default data set'}' for modality '{target}' raised "
                 f"{_one_line(exc)}")
        return c.report
    size_fn = bench.modality.batch_size
    if comp.kind == "modality":
        return check_modality(comp.obj, bench.raw_train, host=host, batch_items=batch_items,
                              where=f"plugin '{comp.plugin}'", tmp_path=tmp_path, device=bench.device, raise_=False)
    if comp.kind == "augmentation":
        p = params.get(comp.name, _recipe_params(bench.cfg, "augmentation", comp.name))
        return check_augmentation(comp.obj, bench.batch(), single=bench.single(), params=p, name=comp.name,
                                  where=_where(comp), k=int(bench.cfg.get("views", 2)), batch_size=size_fn,
                                  keeps_shape=keeps_shape.get(comp.name), raise_=False, meta=bench.meta)
    if comp.kind == "encoder":
        p = params.get(comp.name, _recipe_params(bench.cfg, "encoder", comp.name))
        return check_encoder(comp.obj, bench.batch(), params=p, meta=bench.meta, single=bench.single(),
                             name=comp.name, where=_where(comp), batch_size=size_fn, raise_=False)
    if comp.kind == "evaluator":
        return _check_evaluator_on(bench, host, comp, options, c)
    c.skipped("get checked", f"the kit has no checks for a {comp.kind}")
    return c.report


def _data_for(data: str | Mapping[str, str] | None, comp: Any, modality: str | None = None) -> str | None:
    if data is None or isinstance(data, str):
        return data
    return data.get(comp.name) or data.get(modality or comp.modality)


def _check_evaluator_on(bench: _Bench, host: Any, comp: Any, options: Mapping[str, Any], c: _Checker) -> Report:
    import torch

    from ..components import build_encoder
    from ..capabilities import declared
    from ..evaluation import EvalContext, Evaluator, default_evaluators
    from ..runs import embed_items

    if comp.name not in default_evaluators(host.registry, bench.modality.name, bench.everything, [comp.name]):
        need = declared(comp.obj, Evaluator, "requires")
        c.skipped("run on the modality's data", f"'{bench.source}' does not fit its requirement "
                  f"requires='{need}'; pass data={{'{comp.name}': SRC}} with data that does")
        return c.report
    torch.manual_seed(0)
    encoder = build_encoder(host.registry, bench.modality.name, bench.cfg, bench.meta).to(bench.device).eval()

    def embed(samples):
        return embed_items(encoder, bench.modality, samples.items, bench.device, 256)

    opts = {**dict((bench.cfg.get("evaluate") or {}).get("options", {})), **dict(options.get(comp.name, {}))}
    ctx = EvalContext(samples=bench.everything, embed=embed, seeds=[0], options=opts, meta=bench.meta)
    return check_evaluator(comp.obj, ctx, name=comp.name, where=_where(comp), raise_=False)


@_own_rng
def check_plugin(
    plugin: str,
    *,
    host: Any = None,
    modality: str | None = None,
    data: str | Mapping[str, str] | None = None,
    params: Mapping[str, dict] | None = None,
    keeps_shape: Mapping[str, bool] | None = None,
    options: Mapping[str, dict] | None = None,
    skip: Iterable[str] = (),
    only: Iterable[tuple[str, str, str]] | None = None,
    batch_items: int = BATCH_ITEMS,
    device: str | None = None,
    tmp_path: str | Path | None = None,
    raise_: bool = True,
) -> Report:
    """Run every check on every component that ``plugin`` registered.

    ``plugin`` is an entry-point name as ``contrastkit plugins`` lists it (or a
    modality's name: then every component registered for it).  Batches come
    from the modality's default data set, read and prepared as ``pretrain``
    does (``data`` overrides it: one source, or ``{component or modality
    name: source}``).  ``params`` gives constructor arguments by component
    name (default: the recipe's, else none); ``keeps_shape`` marks
    augmentations that change the size of a sample (``{"random_crop":
    False}``); ``options`` gives evaluators their ``ctx.options`` by name;
    ``skip`` leaves out components by name; ``modality`` is the data for
    components registered for every modality (``"*"``); ``device`` (an
    accelerator's torch device) runs batches and encoders there, so "keeps devices" and
    generators on the batch's device are checked for real.  Raises
    :class:`ConformanceError` listing every failure unless ``raise_=False``.
    """
    if tmp_path is None:
        with tempfile.TemporaryDirectory(prefix="contrastkit-testkit-") as tmp:
            return check_plugin(plugin, host=host, modality=modality, data=data, params=params, keeps_shape=keeps_shape,
                                options=options, skip=skip, only=only, batch_items=batch_items, device=device,
                                tmp_path=tmp, raise_=raise_)
    host = host or _host()
    report = Report()
    try:
        _, comps = _resolve_plugin(host, plugin)
    except Exception as exc:  # noqa: BLE001
        report.findings.append(Finding(f"plugin '{plugin}'", "load", FAILED, f"plugin '{plugin}' cannot be checked: "
                                       f"{str(exc).rstrip('.')}."))
        return report.raise_for_failures() if raise_ else report
    own = [comp.modality for comp in comps if comp.kind == "modality"]
    modality = modality or (own[0] if own else None)
    skip = set(skip)
    wanted = set(only) if only is not None else None
    if not comps:
        report.findings.append(Finding(f"plugin '{plugin}'", "register components", FAILED,
                                       f"plugin '{plugin}' registered no component."))
    for comp in comps:
        if comp.name in skip or (wanted is not None and comp.key not in wanted):
            continue
        report.extend(_check_component(host, comp, modality=modality, data=data, params=dict(params or {}),
                                       keeps_shape=dict(keeps_shape or {}), options=dict(options or {}),
                                       batch_items=batch_items, tmp_path=Path(tmp_path), device=device or "cpu"))
    return report.raise_for_failures() if raise_ else report


def conformance_tests(plugin: str, **kwargs: Any) -> Callable[..., None]:
    """A pytest test function, parametrised with one case per component of ``plugin``.

    In a plugin's test module::

        test_conformance = conformance_tests("audio", params={"crop": {"length": 100}})

    collects ``test_conformance[augmentation:audio:gain]``, … ; each case runs
    :func:`check_plugin` on one component and fails with the sentences of its
    failed properties.  ``kwargs`` are those of :func:`check_plugin`.
    """
    try:
        keys = plugin_components(plugin, kwargs.get("host"))
        ids = [":".join(key) for key in keys]
    except Exception as exc:  # noqa: BLE001 - reported by the one case
        keys, ids = [("plugin", plugin, str(exc))], [f"plugin:{plugin}"]
    if pytest is None:  # pragma: no cover
        raise ImportError("conformance_tests needs pytest; pip install pytest.")
    skip = set(kwargs.get("skip", ()))
    marks = [pytest.param(k, id=i, marks=pytest.mark.skip(reason="skipped by the caller")) if k[2] in skip
             else pytest.param(k, id=i) for k, i in zip(keys, ids)]

    @pytest.mark.parametrize("component", marks)
    def test_conformance(component, tmp_path):
        __tracebackhide__ = True
        if component[0] == "plugin":
            why = component[2].rstrip(".")
            raise ConformanceError(Report([Finding(f"plugin '{plugin}'", "load", FAILED,
                                                   f"plugin '{plugin}' cannot be checked: {why}.")]))
        report = check_plugin(plugin, only=[component], tmp_path=tmp_path, **{**kwargs, "raise_": False})
        report.raise_for_failures()

    test_conformance.__doc__ = f"Conformance of every component of contrastkit plugin '{plugin}'."
    return test_conformance
