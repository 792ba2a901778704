"""check_reader."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any, Sequence


from .compare import _expect_error, _same_item
from .report import Report, _Checker, _label, _one_line

# --------------------------------------------------------------------------- readers


_GARBAGE = b"\x00\xff\xfe garbage \x01\x02, not a file of this kind;\n\x03\x04 ,,\n"


def check_reader(
    reader: Any,
    *,
    sources: Sequence[str] | None = None,
    options: dict | None = None,
    name: str | None = None,
    where: str = "",
    tmp_path: str | Path | None = None,
    raise_: bool = True,
) -> Report:
    """Check a reader: its named data sets, and its errors for missing, empty and malformed input.

    ``sources`` are read and checked (default: its first named data set);
    ``options`` are the ``data_options`` passed to ``read``.
    """
    if tmp_path is None:
        with tempfile.TemporaryDirectory(prefix="contrastkit-testkit-") as tmp:
            return check_reader(reader, sources=sources, options=options, name=name, where=where, tmp_path=tmp,
                                raise_=raise_)
    from ..data import TEST, TRAIN, Samples

    c = _Checker(_label("reader", name, reader, where))
    options = dict(options or {})
    try:
        offered = reader.datasets()
        ok = isinstance(offered, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in offered.items())
        c.expect("list its named data sets as {name: description}", ok, f"datasets() returned {offered!r:.120}")
    except Exception as exc:  # noqa: BLE001
        offered = {}
        c.failed("list its named data sets as {name: description}", f"datasets() raised {_one_line(exc)}")
    if sources is None:
        sources = sorted(offered)[:1] if isinstance(offered, dict) else []
    if not sources:
        c.skipped("read a data set into Samples", "it offers no named data set and no source was given")
    for src in sources:
        prop = f"read '{src}' into Samples"
        opts = copy.deepcopy(options)
        try:
            first = reader.read(src, opts)
        except Exception as exc:  # noqa: BLE001
            c.failed(prop, f"read raised {_one_line(exc)}")
            continue
        empty = " with no items" if isinstance(first, Samples) else ""
        if not c.expect(prop, isinstance(first, Samples) and len(first) > 0,
                        f"read returned {type(first).__name__}{empty}"):
            continue
        c.expect("leave the options unmodified", opts == options, f"read changed its options to {opts!r:.120}")
        if first.split is not None:
            bad = sorted({str(s) for s in first.split} - {TRAIN, TEST})
            c.expect("give a split of 'train'/'test'", not bad, f"'{src}' has split values {bad[:3]}")
        try:
            second = reader.read(src, copy.deepcopy(options))
            same = (first.ids == second.ids and first.fingerprint == second.fingerprint
                    and first.labels == second.labels and first.split == second.split
                    and all(_same_item(a, b) for a, b in zip(first.items, second.items)))
            c.expect(f"read '{src}' the same way twice", same, "two reads gave different ids, labels, split, items or "
                                                            "fingerprint")
        except Exception as exc:  # noqa: BLE001
            c.failed(f"read '{src}' the same way twice", f"the second read raised {_one_line(exc)}")

    tmp = Path(tmp_path) / f"reader-{abs(hash((id(reader), name))) % 10**8}"
    tmp.mkdir(parents=True, exist_ok=True)
    suffixes = list(getattr(reader, "suffixes", ()) or ())
    bad: list[tuple[str, Any]] = []
    for i, suffix in enumerate(suffixes):
        missing = tmp / f"missing-{i}{suffix}"
        empty = tmp / f"empty-{i}{suffix}"
        empty.write_bytes(b"")
        garbage = tmp / f"malformed-{i}{suffix}"
        garbage.write_bytes(_GARBAGE)
        bad += [(f"a missing file {missing.name}", str(missing)), (f"an empty file {empty.name}", str(empty)),
                (f"a malformed file {garbage.name}", str(garbage))]
    if getattr(reader, "reads_folders", False):
        folder = tmp / "empty-folder"
        folder.mkdir(exist_ok=True)
        bad.append(("an empty folder", str(folder)))
    if bad:
        _expect_error(c, "raise a ContrastkitError on missing, empty or malformed input",
                      lambda src: reader.read(src, copy.deepcopy(options)), bad)
    else:
        c.skipped("raise a ContrastkitError on missing, empty or malformed input", "it reads no file type")
    return c.done(raise_)
