"""Data as core sees it: a set of samples with ids, optional labels and a split.

A reader (supplied by a plugin) turns a file, a folder or a named data set into
:class:`Samples`.  Core never looks inside an item: the modality's ``collate``
turns a list of items into a batch, and its encoders consume that batch.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

from .errors import DataError

TRAIN, TEST = "train", "test"


@runtime_checkable
class SubsetItems(Protocol):
    """``Samples.items`` that take their own subset: ``subset(index) -> items`` of those positions.

    A declared protocol rather than a base class, because items are any sequence (a list, an
    array): the events plugin's memory-mapped ``EventStore`` implements it, so a split or a subset
    never materialises its items one by one; any other sequence is indexed item by item.
    """

    def subset(self, index: Sequence[int]) -> Any: ...


@dataclass
class Samples:
    """Items of one modality with their ids, and optionally labels and a split.

    ``ids``      one id per item (str or int), unique.
    ``items``    the samples, in whatever form the modality's collate accepts: a list, or any
                 sequence; a sequence with a ``subset(index)`` method (:class:`SubsetItems`, e.g. a
                 lazy store over memory-mapped files) is subset by it, so no item is materialised.
    ``labels``   optional per-item labels (None where unknown).
    ``split``    optional per-item "train"/"test", as the source defines it
                 (e.g. the UCR archive's official split).
    ``meta``     facts the encoder needs to be built (e.g. number of channels).
    ``source``   where the data came from, for messages and the run card.
    ``fingerprint`` a hash of the data, for the run card.
    """

    ids: list
    items: Sequence[Any]
    labels: list | None = None
    split: list[str] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    fingerprint: str = ""

    def __post_init__(self) -> None:
        n = len(self.ids)
        if len(self.items) != n:
            raise DataError(f"{self.source or 'data'}: {len(self.items)} items but {n} ids.")
        for name in ("labels", "split"):
            col = getattr(self, name)
            if col is not None and len(col) != n:
                raise DataError(f"{self.source or 'data'}: {len(col)} {name} but {n} ids.")
        if len(set(self.ids)) != n:
            seen: set = set()
            dup = next(i for i in self.ids if i in seen or seen.add(i))
            raise DataError(f"{self.source or 'data'}: id {dup!r} occurs more than once; ids must be unique.")

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def has_labels(self) -> bool:
        return self.labels is not None and any(lbl is not None for lbl in self.labels)

    def subset(self, index: Sequence[int]) -> "Samples":
        index = list(index)
        return replace(
            self,
            ids=[self.ids[i] for i in index],
            items=self.items.subset(index) if isinstance(self.items, SubsetItems) and callable(self.items.subset)
            else [self.items[i] for i in index],
            labels=None if self.labels is None else [self.labels[i] for i in index],
            split=None if self.split is None else [self.split[i] for i in index],
        )

    def with_split(self, test_fraction: float = 0.2) -> "Samples":
        """Give every item a split if the source defined none.

        The split is a pure function of the id (a hash), so the same entity
        lands on the same side in every run, for pretraining and evaluation
        alike, and no seed can leak test items into pretraining.
        """
        if self.split is not None:
            return self
        return replace(self, split=[hash_split(i, test_fraction) for i in self.ids])

    def part(self, name: str) -> "Samples":
        """The items of one split (all items if there is no split)."""
        if self.split is None:
            return self
        return self.subset([i for i, s in enumerate(self.split) if s == name])


def hash_split(item_id: Any, test_fraction: float = 0.2) -> str:
    digest = hashlib.sha256(str(item_id).encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    return TEST if u < test_fraction else TRAIN


def package_path(package: str, *parts: str) -> Path | None:
    """``<install folder of package>/<parts...>`` if it exists, else None.

    The package is found with :func:`importlib.util.find_spec`, which does not
    import it: data-only packages (aeon, lifetimes, grakel, nilearn, ...) are
    installed without their dependencies and would fail to import.
    """
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    roots = list(spec.submodule_search_locations or [])
    if not roots and spec.origin:
        roots = [os.path.dirname(spec.origin)]
    for root in roots:
        path = Path(root).joinpath(*parts)
        if path.exists():
            return path
    return None


def file_fingerprint(*paths: str | os.PathLike) -> str:
    """sha256 over the bytes of the given files (folders: every file inside, sorted)."""
    h = hashlib.sha256()
    files: list[Path] = []
    for p in paths:
        p = Path(p)
        files.extend(sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p])
    for f in files:
        h.update(f.name.encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


def array_fingerprint(arrays: Sequence[np.ndarray]) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


class Reader:
    """Base class for readers.

    Subclasses set ``name``, ``suffixes`` (file name endings they read, e.g.
    ``(".ts",)``; a folder is offered to readers with ``reads_folders``) and
    implement :meth:`read`.  :meth:`datasets` lists named data sets that ship
    with installed packages; :meth:`read` receives either such a name or an
    existing path.
    """

    name: str = ""
    suffixes: tuple[str, ...] = ()
    reads_folders: bool = False
    description: str = ""

    def datasets(self) -> dict[str, str]:
        """Named data sets this reader offers: name -> one-line description."""
        return {}

    def accepts(self, path: Path) -> bool:
        if path.is_dir():
            return self.reads_folders
        return any(path.name.lower().endswith(s) for s in self.suffixes)

    def read(self, source: str, options: dict[str, Any]) -> Samples:  # pragma: no cover - interface
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, suffixes={self.suffixes!r})"
