"""The UCR/UEA ``.ts`` text format: header tags, then one line per series (Dau et al. 2019; Bagnall et al. 2018).

:func:`parse_ts` reads a file into a :class:`TsTable` (its :class:`TsHeader`, the series as
``float32`` arrays of shape ``(C, T_i)`` with ``NaN`` for missing values, and the labels);
every malformed line is a ``DataError`` naming the file and line.  :class:`~.readers.TsReader`
turns tables into ``Samples`` and finds the archive's problems.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from contrastkit.core import DataError


_BOOL_TAGS = {"timestamps": "timeStamps", "missing": "missing", "univariate": "univariate", "equallength": "equalLength"}
_INT_TAGS = {"dimensions": "dimensions", "serieslength": "seriesLength"}
_COMMENT = ("#", "%")  # '%' as in ARFF, used by a few archive files
_KNOWN_TAGS = ("problemName", "timeStamps", "missing", "univariate", "dimensions", "equalLength",
               "seriesLength", "classLabel", "targetLabel", "data")


@dataclass
class TsHeader:
    """The header of one ``.ts`` file (tags are case-insensitive in the file)."""

    problem: str = ""
    timestamps: bool = False
    missing: bool | None = None
    univariate: bool | None = None
    dimensions: int | None = None
    equal_length: bool | None = None
    series_length: int | None = None
    class_label: bool = False
    class_values: list[str] = field(default_factory=list)
    target_label: bool = False
    data_line: int = 0  # 1-based line number of @data

    @property
    def labelled(self) -> bool:
        return self.class_label or self.target_label


@dataclass
class TsTable:
    """One parsed ``.ts`` file."""

    path: Path
    header: TsHeader
    items: list[np.ndarray]
    labels: list[str] | None  # class labels as in the file, or targets as floats
    n_dims: int


def _where(path: Path, line: int) -> str:
    return f"{path.name} line {line}"


def _parse_bool(path: Path, lineno: int, tag: str, token: str | None) -> bool:
    low = (token or "").lower()
    if low in ("true", "false"):
        return low == "true"
    found = f"'{token}'" if token else "nothing"
    raise DataError(f"{_where(path, lineno)}: expected true or false after @{tag}, found {found}.")


def _parse_header(path: Path, lines: Sequence[str]) -> TsHeader:
    """Read the header tags up to ``@data``; raise :class:`DataError` on anything unexpected."""
    head = TsHeader()
    seen_problem = False
    for lineno, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith(_COMMENT):
            continue
        if not line.startswith("@"):
            raise DataError(
                f"{_where(path, lineno)}: expected a header tag starting with '@' (the header must end with "
                f"@data before the series), found '{line[:40]}'."
            )
        tokens = line.split()
        tag, args = tokens[0][1:], tokens[1:]
        key = tag.lower()
        if key == "data":
            head.data_line = lineno
            _check_header(path, head)
            return head
        if key == "problemname":
            if not seen_problem:  # some archive files repeat the tag; the first one names the problem
                head.problem = " ".join(args)
                seen_problem = True
        elif key in _BOOL_TAGS:
            setattr(head, {"timestamps": "timestamps", "missing": "missing", "univariate": "univariate",
                           "equallength": "equal_length"}[key],
                    _parse_bool(path, lineno, _BOOL_TAGS[key], args[0] if args else None))
        elif key in _INT_TAGS:
            token = args[0] if args else ""
            if not token.isdigit() or int(token) < 1:
                found = f"'{token}'" if token else "nothing"
                raise DataError(
                    f"{_where(path, lineno)}: expected a positive whole number after @{_INT_TAGS[key]}, found {found}."
                )
            setattr(head, "dimensions" if key == "dimensions" else "series_length", int(token))
        elif key == "classlabel":
            head.class_label = _parse_bool(path, lineno, "classLabel", args[0] if args else None)
            head.class_values = list(args[1:]) if head.class_label else []
        elif key == "targetlabel":
            head.target_label = _parse_bool(path, lineno, "targetLabel", args[0] if args else None)
        else:
            raise DataError(
                f"{_where(path, lineno)}: unknown header tag '@{tag}'; expected one of "
                + ", ".join("@" + t for t in _KNOWN_TAGS) + "."
            )
    raise DataError(
        f"{_where(path, max(len(lines), 1))}: reached the end of the file without an @data line; "
        "expected the header to end with @data followed by one series a line."
    )


def _check_header(path: Path, head: TsHeader) -> None:
    where = _where(path, head.data_line)
    if head.timestamps:
        raise DataError(
            f"{where}: the file declares @timeStamps true, and time-stamped .ts files are not supported; "
            "expected @timeStamps false (write the series as comma-separated values, or use the long format)."
        )
    if head.class_label and head.target_label:
        raise DataError(f"{where}: the header declares both @classLabel true and @targetLabel true; expected at most one.")
    if head.univariate and head.dimensions not in (None, 1):
        raise DataError(f"{where}: the header declares @univariate true and @dimensions {head.dimensions}; expected 1.")


def _parse_values(path: Path, lineno: int, text: str, dim: int) -> np.ndarray:
    """Comma-separated numbers ('?' = missing) as float32."""
    tokens = text.split(",")
    try:
        values = np.array([t if t.strip() != "?" else "nan" for t in tokens] if "?" in text else tokens,
                          dtype=np.float64)
    except ValueError:
        for pos, tok in enumerate(tokens, start=1):
            t = tok.strip()
            if t == "?":
                continue
            try:
                float(t)
            except ValueError:
                found = f"'{t[:30]}'" if t else "an empty value"
                raise DataError(
                    f"{_where(path, lineno)}: expected a number or '?' as value {pos} of dimension {dim}, "
                    f"found {found}."
                ) from None
        raise  # pragma: no cover - numpy refused something float() accepts
    return values.astype(np.float32)


def _data_lines(lines: Sequence[str], start: int) -> Iterable[tuple[int, str]]:
    """(1-based line number, stripped text) of the series lines after ``@data``."""
    for lineno in range(start + 1, len(lines) + 1):
        line = lines[lineno - 1].strip()
        if line and not line.startswith(_COMMENT):
            yield lineno, line


def parse_ts(path: str | Path) -> TsTable:
    """Parse one ``.ts`` file into float32 ``(C, T_i)`` arrays and labels.

    Raises :class:`DataError` naming the file and line for malformed input.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file ({exc.strerror or exc}).") from None
    lines = text.splitlines()
    head = _parse_header(path, lines)
    n_dims = 1 if head.univariate else head.dimensions
    labelled = head.labelled
    declared = set(head.class_values)
    items: list[np.ndarray] = []
    labels: list = [] if labelled else None  # type: ignore[assignment]
    for lineno, line in _data_lines(lines, head.data_line):
        if "(" in line:
            raise DataError(
                f"{_where(path, lineno)}: found a time-stamped value '(...)' but the header declares no time "
                "stamps; expected comma-separated numbers."
            )
        fields = line.split(":")
        if n_dims is None:  # @dimensions absent: the first series decides
            n_dims = len(fields) - labelled
            if n_dims < 1:
                raise DataError(f"{_where(path, lineno)}: expected at least one dimension before the label, found none.")
        if len(fields) != n_dims + labelled:
            label_note = " and a label" if labelled else ""
            raise DataError(
                f"{_where(path, lineno)}: expected {n_dims} dimension(s) separated by ':'{label_note}, "
                f"found {len(fields) - labelled}."
            )
        if labelled:
            label = fields[-1].strip()
            if head.class_label:
                if declared and label not in declared:
                    raise DataError(
                        f"{_where(path, lineno)}: expected a class label among the @classLabel values "
                        f"{' '.join(head.class_values)}, found '{label}'."
                    )
                labels.append(label)
            else:
                try:
                    labels.append(float(label))
                except ValueError:
                    raise DataError(
                        f"{_where(path, lineno)}: expected a numeric target after the last ':', found '{label[:30]}'."
                    ) from None
        dims = [_parse_values(path, lineno, f, d) for d, f in enumerate(fields[:n_dims], start=1)]
        lengths = {len(d) for d in dims}
        if head.equal_length and head.series_length is not None and lengths != {head.series_length}:
            raise DataError(
                f"{_where(path, lineno)}: expected {head.series_length} values per dimension (@seriesLength "
                f"{head.series_length}), found {', '.join(str(n) for n in sorted(lengths))}."
            )
        if len(lengths) == 1:
            item = np.stack(dims) if n_dims > 1 else dims[0][None, :]
        else:  # channels of one case with different lengths: pad at the end with NaN
            item = np.full((n_dims, max(lengths)), np.nan, dtype=np.float32)
            for c, d in enumerate(dims):
                item[c, : len(d)] = d
        items.append(np.ascontiguousarray(item, dtype=np.float32))
    if not items:
        raise DataError(f"{_where(path, head.data_line)}: no series after @data; expected one series a line.")
    return TsTable(path=path, header=head, items=items, labels=labels, n_dims=int(n_dims or 1))
