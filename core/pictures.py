"""Pictures: a 2-D map of embeddings, and an atomic ``savefig`` shared by every picture.

Figures are built with :class:`matplotlib.figure.Figure` directly, never
through ``pyplot``: no global figure state, no GUI backend, and rendering goes
through Agg whatever backend the host process has chosen.  Files are written to
a temporary file in the target folder and renamed, so a failed or interrupted
write never leaves half a picture behind.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .errors import ConfigError, DataError

#: Up to this many classes get a legend; beyond it, numeric labels get a colour bar.
MAX_LEGEND_CLASSES = 20
METHODS = ("pca", "umap")


def check_picture_path(path: str | os.PathLike, fig: Any = None) -> str:
    """The format a picture at ``path`` is written in (from its suffix; PNG without one).

    Raises ConfigError for a suffix matplotlib cannot write, so callers can
    check before doing any work.
    """
    path = Path(path)
    fmt = path.suffix[1:].lower() or "png"
    if fig is None:
        from matplotlib.figure import Figure

        fig = Figure()
    supported = fig.canvas.get_supported_filetypes()
    if fmt not in supported:
        raise ConfigError(
            f"cannot write a picture to {path}: '.{fmt}' is not a supported format "
            f"(use one of {', '.join('.' + f for f in sorted(supported))})."
        )
    return fmt


def atomic_savefig(fig: Any, path: str | os.PathLike, **savefig_kwargs: Any) -> Path:
    """Save a matplotlib figure to ``path`` atomically; return the path.

    The format comes from the file's suffix (PNG without one).  The figure is
    rendered into a temporary file in the same folder, which then replaces
    ``path`` in one rename; on any failure the temporary file is removed.  The
    folder is created if needed.  The figure is not closed.
    """
    path = Path(path)
    fmt = check_picture_path(path, fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, format=fmt, **savefig_kwargs)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; give it a normal file's mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def project_2d(h: np.ndarray, method: str = "pca", seed: int = 0) -> tuple[np.ndarray, tuple[str, str]]:
    """Project ``h`` (N × D) to N × 2 with PCA or UMAP; also return the axis titles."""
    if method not in METHODS:
        raise ConfigError(f"unknown projection method '{method}'; valid methods: {', '.join(METHODS)}.")
    n, d = h.shape
    if method == "umap":
        try:
            import umap  # type: ignore[import-not-found]
        except ImportError:
            raise ConfigError(
                "method 'umap' needs umap-learn, which is not installed; `pip install umap-learn` or use method 'pca'."
            ) from None
        if n < 3:
            raise DataError(f"a UMAP map needs at least 3 embeddings, got {n}.")
        xy = umap.UMAP(n_components=2, n_neighbors=min(15, n - 1), random_state=seed).fit_transform(h)
        return np.asarray(xy, dtype=np.float64), ("UMAP 1", "UMAP 2")

    from sklearn.decomposition import PCA

    k = min(2, n, d)
    pca = PCA(n_components=k, random_state=seed)
    with np.errstate(invalid="ignore", divide="ignore"):  # one point, or no variance at all
        xy = pca.fit_transform(h)
        ratio = np.nan_to_num(pca.explained_variance_ratio_).tolist()
    if k < 2:  # one sample or one dimension: lay the points on a line
        xy = np.concatenate([xy, np.zeros((n, 2 - k))], axis=1)
        ratio += [0.0] * (2 - k)
    titles = (f"PC1 ({ratio[0]:.0%} of variance)", f"PC2 ({ratio[1]:.0%} of variance)")
    return np.nan_to_num(xy), titles


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _is_known(v: Any) -> bool:
    """A label is unknown when it is None or a float NaN."""
    return v is not None and not (isinstance(v, (float, np.floating)) and np.isnan(v))


def embedding_map(
    h: np.ndarray,
    labels: Sequence[Any] | None,
    path: str | os.PathLike,
    title: str = "",
    method: str = "pca",
    seed: int = 0,
) -> Path:
    """Draw a 2-D map of embeddings coloured by label and write it to ``path``.

    ``h`` is N × D; ``labels`` has one entry per row (None or NaN = unlabelled,
    drawn grey) or is None.  With at most :data:`MAX_LEGEND_CLASSES` distinct labels
    each gets a colour and a legend entry; with more, numeric labels are drawn
    on a colour scale with a colour bar and other labels get colours without a
    legend.  ``method`` is ``"pca"`` (scikit-learn) or ``"umap"`` (needs
    umap-learn).  The file is written atomically (:func:`atomic_savefig`);
    returns its path.
    """
    from matplotlib.figure import Figure

    h = np.asarray(h, dtype=np.float64)
    if h.ndim != 2 or h.shape[0] == 0 or h.shape[1] == 0:
        raise DataError(f"embedding_map needs a non-empty N × D array of embeddings, got shape {h.shape}.")
    if not np.isfinite(h).all():
        raise DataError("the embeddings contain NaN or infinite values; cannot draw a map of them.")
    n = h.shape[0]
    if labels is not None and len(labels) != n:
        raise DataError(f"embedding_map got {len(labels)} labels for {n} embeddings; give one label per row.")
    check_picture_path(path)
    xy, (xlabel, ylabel) = project_2d(h, method, seed)

    fig = Figure(figsize=(7, 5.5), dpi=100)
    ax = fig.add_subplot()
    size = float(np.clip(3000 / n, 3, 40))
    known = np.array([_is_known(lbl) for lbl in labels]) if labels is not None else np.zeros(n, dtype=bool)
    if (~known).any():
        grey = dict(s=size, c="0.7", linewidths=0)
        ax.scatter(xy[~known, 0], xy[~known, 1], label="unlabelled" if known.any() else None, **grey)
    if known.any():
        values = [labels[i] for i in np.flatnonzero(known)]
        distinct = _sorted_distinct(values)
        pts = xy[known]
        if len(distinct) <= MAX_LEGEND_CLASSES:
            cmap = _categorical_cmap(len(distinct))
            for i, value in enumerate(distinct):
                sel = np.array([v == value for v in values])
                ax.scatter(pts[sel, 0], pts[sel, 1], s=size, color=cmap(i), linewidths=0, label=str(value))
            ax.legend(
                title="label", loc="center left", bbox_to_anchor=(1.01, 0.5),
                fontsize="small", markerscale=max(1.0, 20 / size),
            )
        elif all(_is_number(v) for v in values):
            colour = np.asarray(values, dtype=float)
            sc = ax.scatter(pts[:, 0], pts[:, 1], s=size, c=colour, cmap="viridis", linewidths=0)
            fig.colorbar(sc, ax=ax, label="label")
        else:
            code = {v: i for i, v in enumerate(distinct)}
            ax.scatter(pts[:, 0], pts[:, 1], s=size, c=[code[v] for v in values], cmap="nipy_spectral", linewidths=0)
            title = f"{title} ({len(distinct)} classes)" if title else f"{len(distinct)} classes"
        if (~known).any() and len(distinct) > MAX_LEGEND_CLASSES:
            ax.legend(loc="best", fontsize="small")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return atomic_savefig(fig, path, bbox_inches="tight")


def _sorted_distinct(values: list) -> list:
    distinct = list(dict.fromkeys(values))
    try:
        return sorted(distinct)
    except TypeError:
        return sorted(distinct, key=repr)


def _categorical_cmap(k: int):
    import matplotlib

    return matplotlib.colormaps["tab10" if k <= 10 else "tab20"]


def label_efficiency_curve(result: dict, path: str | os.PathLike, title: str = "") -> Path:
    """Draw the label-efficiency curves of an ``evaluate`` result: one panel per evaluator (its
    primary metric against the fraction of training labels, log scale), one line per row
    (pretrained, random init, fitted random init, the non-learned baselines), ± std as a band."""
    from matplotlib.figure import Figure

    le = result.get("label_efficiency") or {}
    panels = [(name, metric) for name, metric in (le.get("primary_metric") or {}).items() if metric]
    if not panels:
        raise DataError("no label-efficiency curve to draw: no evaluator fitted on labels.")
    fig = Figure(figsize=(4.6 * len(panels), 3.8))
    styles = {"pretrained": ("C0", "-", "o"), "random_init": ("C7", "--", "s"),
              "random_init_fitted": ("C1", "--", "^")}
    rows = [r["name"] for r in result.get("rows", [])] or list(le.get("curves", {}))
    for i, (name, metric) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        extra = 2
        for row in rows:
            pts = [p for p in le["curves"].get(row, {}).get(name, {}).get(metric, []) if p.get("mean") is not None]
            if not pts:
                continue
            colour, ls, marker = styles.get(row, (f"C{extra}", ":", "D"))
            if row not in styles:
                extra += 1
            x = np.array([p["fraction"] for p in pts])
            y = np.array([p["mean"] for p in pts])
            s = np.array([p["std"] or 0.0 for p in pts])
            ax.plot(x, y, ls=ls, marker=marker, color=colour, label=row.replace("_", " "))
            ax.fill_between(x, y - s, y + s, color=colour, alpha=0.15, linewidth=0)
        ax.set_xscale("log")
        ax.set_xlabel("fraction of training labels")
        ax.set_ylabel(metric)
        ax.set_title(name, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return atomic_savefig(fig, path, dpi=110)
