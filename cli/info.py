"""`contrastkit plugins` and `contrastkit datasets`."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from .options import Json

from contrastkit.core.errors import PLURALS as PLURAL


def plugins(json_out: Json = False) -> None:
    """What is installed: every plugin, its distribution and version, what it registered, and failures."""
    from contrastkit.core.plugins import DISABLE_ENV, get_host

    host = get_host()
    infos = [p.as_dict() for p in host.plugins.values()]
    if json_out:
        typer.echo(json.dumps({"plugins": infos, "disable_env": DISABLE_ENV}, indent=2))
        return
    for p in infos:
        dist = f"{p['distribution']} {p['version'] or ''}".strip() if p["distribution"] else "in-process"
        typer.echo(f"{p['name']}  [{p['status']}]  {dist}  ({p['module']})")
        if p["error"]:
            typer.echo(f"    error: {p['error']}")
        by_kind: dict[str, list[str]] = {}
        for c in p["registered"]:
            label = c["name"] if c["modality"] in ("*", c["name"]) else f"{c['name']}"
            by_kind.setdefault(c["kind"], []).append(label)
        for kind, names in by_kind.items():
            typer.echo(f"    {PLURAL.get(kind, kind + 's'):<14} {', '.join(names)}")


def datasets(
    json_out: Json = False,
    plugin: Annotated[Optional[str], typer.Option("--plugin", "-p", help="Only this modality.")] = None,
) -> None:
    """Named data sets that the installed readers offer (they ship with installed packages)."""
    from contrastkit.core.plugins import get_host
    from contrastkit.core.sources import named_datasets

    host = get_host()
    if plugin is not None:
        host.modality(plugin)  # unknown names fail with the list of valid ones
    rows = [r for r in named_datasets(host.registry, plugin) if r.get("name")]
    if json_out:
        typer.echo(json.dumps({"datasets": rows}, indent=2))
        return
    if not rows:
        typer.echo("no named data sets are installed.")
    for r in rows:
        typer.echo(f"{r['modality']:<12} {r['name']:<24} {r['description']}")


def add_to(app: typer.Typer) -> None:
    app.command("plugins")(plugins)
    app.command("datasets")(datasets)
