"""check_modality and the default recipe's check."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any


from .compare import _batch_size, _copy, _device_of, _expect_error, _first_difference, _same_item
from .report import BATCH_ITEMS, Report, _Checker, _label, _one_line, _own_rng

# --------------------------------------------------------------------------- modalities


@_own_rng
def check_modality(
    modality: Any,
    samples: Any,
    *,
    host: Any = None,
    options: dict | None = None,
    batch_items: int = BATCH_ITEMS,
    where: str = "",
    tmp_path: str | Path | None = None,
    seed: int = 0,
    device: Any = "cpu",
    raise_: bool = True,
) -> Report:
    """Check a :class:`~contrastkit.core.modality.Modality` on raw (unprepared) training ``samples``.

    With ``host`` (a :class:`~contrastkit.core.plugins.PluginHost`), also check
    that the default recipe resolves to registered components and runs one
    training step, and that a reader offers the default data set.
    """
    if tmp_path is None:
        with tempfile.TemporaryDirectory(prefix="contrastkit-testkit-") as tmp:
            return check_modality(modality, samples, host=host, options=options, batch_items=batch_items,
                                  where=where, tmp_path=tmp, seed=seed, device=device, raise_=raise_)
    import torch

    c = _Checker(_label("modality", modality.name, modality, where))
    options = dict(options if options is not None else (modality.defaults or {}).get("data_options", {}))

    # prepare
    prepared, state = samples, {}
    if modality.prepare is None:
        c.skipped("fit a preprocessing state of plain values", "the modality has no prepare")
    else:
        snapshot = copy.deepcopy(list(samples.items))
        try:
            prepared, state = modality.prepare(samples, None, copy.deepcopy(options))
        except Exception as exc:  # noqa: BLE001
            c.failed("prepare valid data", f"prepare raised {_one_line(exc)}")
            return c.done(raise_)
        unchanged = all(_same_item(a, b) for a, b in zip(snapshot, samples.items))
        c.expect("leave the samples unmodified in prepare", unchanged, "prepare changed the items it was given")
        try:
            import io

            buf = io.BytesIO()
            torch.save({"prep_state": state}, buf)
            buf.seek(0)
            loaded = torch.load(buf, weights_only=True)["prep_state"]
            c.expect("fit a preprocessing state of plain values", _first_difference(loaded, state) is None,
                     "the state changed through a checkpoint")
        except Exception as exc:  # noqa: BLE001
            c.failed("fit a preprocessing state of plain values",
                     f"the state does not survive torch.save/torch.load(weights_only=True): {_one_line(exc)}")
        try:
            again, state2 = modality.prepare(samples, state, copy.deepcopy(options))
            same = all(_same_item(a, b) for a, b in zip(prepared.items, again.items)) and len(again) == len(prepared)
            c.expect("prepare alike with the fitted state", same,
                     "prepare with the fitted state gives other items than prepare that fitted it")
        except Exception as exc:  # noqa: BLE001
            c.failed("prepare alike with the fitted state", f"prepare with the fitted state raised {_one_line(exc)}")

    # collate
    items = list(prepared.items[:batch_items])
    snapshot = copy.deepcopy(items)
    try:
        batch = modality.collate(items)
    except Exception as exc:  # noqa: BLE001
        c.failed("collate a list of items", f"collate raised {_one_line(exc)}")
        return c.done(raise_)
    size_fn = modality.batch_size
    n = _batch_size(batch, size_fn)
    c.expect("collate a list of items into a batch of that size", n == len(items),
             f"{len(items)} items gave a batch of {n}")
    c.expect("leave the items unmodified in collate", all(_same_item(a, b) for a, b in zip(items, snapshot)),
             "collate changed the items it was given")
    try:
        one = modality.collate(items[:1])
        got = _batch_size(one, size_fn)
        c.expect("collate a single item", got == 1, f"one item gave a batch of {got}")
    except Exception as exc:  # noqa: BLE001
        c.failed("collate a single item", f"collate raised {_one_line(exc)}")
    _expect_error(c, "raise a ContrastkitError for an empty list", modality.collate, [("an empty list", [])])

    views_fn = None
    if host is not None:
        from ..runs import move_to

        views_fn = _check_recipe(c, modality, host, prepared, move_to(_copy(batch), device), seed)
    if modality.plot_views is not None:
        try:
            from ..views import make_generator

            small = modality.collate(items[:2])
            views = views_fn(_copy(small), make_generator(seed)) if views_fn is not None else [small, small]
            path = Path(tmp_path) / f"{modality.name}-views.png"
            modality.plot_views(small, views, path, title="conformance", ids=list(prepared.ids[:2]))
            c.expect("draw its views to a picture", path.is_file() and path.stat().st_size > 0,
                     f"plot_views wrote nothing to {path.name}")
        except Exception as exc:  # noqa: BLE001
            c.failed("draw its views to a picture", f"plot_views raised {_one_line(exc)}")
    return c.done(raise_)


def _check_recipe(c: _Checker, modality: Any, host: Any, prepared: Any, batch: Any, seed: int) -> Any:
    """The default recipe resolves, names registered components, and trains one step; returns its views."""
    import torch

    from ..config import resolve
    from ..sources import named_datasets
    from ..views import make_generator

    offered = {str(d["name"]).lower() for d in named_datasets(host.registry, modality.name) if d.get("name")}
    c.expect("offer its default data set through a reader", str(modality.default_data).lower() in offered,
             f"default_data '{modality.default_data}' is not a named data set of its readers "
             f"({', '.join(sorted(offered)) or 'none'})")
    try:
        cfg = resolve(modality.defaults or {}, None, {})
    except Exception as exc:  # noqa: BLE001
        c.failed("have a default recipe that resolves", _one_line(exc))
        return None
    cfg["plugin"] = modality.name
    missing = []
    reg = host.registry
    wanted = [("encoder", cfg["encoder"]["name"]), ("loss", cfg["loss"]["name"])]
    wanted += [("augmentation", a["name"]) for a in cfg.get("augmentations") or []]
    if cfg.get("joint_view"):
        wanted.append(("augmentation", cfg["joint_view"]["name"]))
    wanted += [("evaluator", e) for e in (cfg.get("evaluate") or {}).get("evaluators") or []]
    for kind, cname in wanted:
        if reg.find(kind, cname, modality.name) is None:
            missing.append(f"{kind} '{cname}'")
    if not c.expect("name registered components in its default recipe", not missing,
                    f"the recipe names {', '.join(missing)}, which no plugin registered"):
        return None
    views_fn = None
    try:
        if modality.check is not None:
            modality.check(prepared, cfg)
        from ..components import build_views
        from ..runs import build_model

        torch.manual_seed(seed)
        dev = _device_of(batch)
        model = build_model(host, cfg, dict(prepared.meta)).to(dev)
        views_fn = build_views(reg, modality.name, cfg, meta=dict(prepared.meta))
        views = views_fn(_copy(batch), make_generator(seed, dev))
        out = model(views)
        out.loss.backward()
        ok = bool(torch.isfinite(out.loss.detach()).all())
        c.expect("train one step with its default recipe", ok, f"the loss is {out.loss.item()}")
    except Exception as exc:  # noqa: BLE001
        c.failed("train one step with its default recipe", f"it raised {_one_line(exc)}")
    return views_fn
