"""Turn SRC (a path or a named data set) into Samples with the right reader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .data import Reader, Samples
from .errors import DataError
from .registry import Registry


def named_datasets(registry: Registry, modality: str | None = None) -> list[dict[str, Any]]:
    """Every named data set the installed readers offer."""
    out = []
    for comp in registry.of_kind("reader", modality):
        try:
            sets = comp.obj.datasets()
        except Exception as exc:  # a reader's listing must not break the others
            sets = {}
            out.append({"name": None, "modality": comp.modality, "reader": comp.name, "error": str(exc)})
        for name, desc in sorted(sets.items()):
            out.append({"name": name, "modality": comp.modality, "reader": comp.name, "plugin": comp.plugin,
                        "description": desc})
    return out


def read_source(registry: Registry, modality: str, source: str, options: dict | None = None) -> Samples:
    """Read ``source`` for ``modality``: a named data set first, else a file or folder."""
    options = dict(options or {})
    readers = registry.of_kind("reader", modality)
    if not readers:
        raise DataError(f"no reader is installed for modality '{modality}'.")
    lowered = str(source).lower()
    for comp in readers:
        reader: Reader = comp.obj
        names = {n.lower(): n for n in reader.datasets()}
        if lowered in names:
            return reader.read(names[lowered], options)
    path = Path(source).expanduser()
    if not path.exists():
        offered = sorted(n for c in readers for n in c.obj.datasets())
        hint = f"; named data sets for '{modality}': {', '.join(offered)}" if offered else ""
        raise DataError(f"{source}: no such file or folder, nor a named data set{hint}.")
    for comp in readers:
        if comp.obj.accepts(path):
            return comp.obj.read(str(path), options)
    suffixes = sorted({s for c in readers for s in c.obj.suffixes})
    what = "a folder" if path.is_dir() else "a file of this type"
    raise DataError(
        f"{source}: no '{modality}' reader takes {what}; readable file types: {', '.join(suffixes) or 'none'}."
    )
