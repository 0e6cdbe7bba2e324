"""Figures: cross-attention heatmaps, training curves and confusion matrices.

Figures are drawn on a bare :class:`matplotlib.figure.Figure` (no pyplot, so no GUI backend and
no global state is touched) and written atomically: to a temporary file in the target folder,
then ``os.replace``. The format follows the extension: ``.png``, ``.svg`` or ``.pdf``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

__all__ = ["plot_attention", "plot_confusion", "plot_curves", "save_figure"]

_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}


def save_figure(fig: Figure, path: str | os.PathLike) -> Path:
    """Write ``fig`` to ``path`` atomically, in the format its extension names."""
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unsupported figure format; use one of {', '.join(_FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, format=fmt, bbox_inches="tight", dpi=150)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def plot_attention(
    weights,
    src_tokens: Sequence[str],
    tgt_tokens: Sequence[str],
    path: str | os.PathLike,
    title: str | None = None,
) -> Path:
    """Draw a (T, S) attention matrix as a heatmap: row t is where target token t looked.

    Args:
        weights: (T, S) tensor or array; rows are target steps, columns source positions.
        src_tokens: the S source labels (x axis, rotated).
        tgt_tokens: the T target labels (y axis); include ``</s>`` when the weights include
            the ``<eos>`` step.
        path: output file, ``.png``, ``.svg`` or ``.pdf``.
        title: optional figure title.

    Returns:
        The written path.

    Raises:
        ValueError: when the weights are not 2-D or their shape differs from the label counts.
    """
    if hasattr(weights, "detach"):
        weights = weights.detach().cpu().float().numpy()
    matrix = np.asarray(weights, dtype=float)
    expected = (len(tgt_tokens), len(src_tokens))
    if matrix.ndim != 2 or matrix.shape != expected:
        raise ValueError(
            f"attention weights have shape {tuple(matrix.shape)} but the labels give "
            f"(target, source) = {expected}"
        )
    T, S = expected
    fig = Figure(figsize=(max(3.0, 0.45 * S + 1.5), max(2.5, 0.4 * T + 1.0)))
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="viridis", aspect="auto", vmin=0.0, vmax=max(1e-9, matrix.max()))
    ax.set_xticks(
        range(S), labels=list(src_tokens), rotation=60, ha="right", rotation_mode="anchor"
    )
    ax.set_yticks(range(T), labels=list(tgt_tokens))
    ax.set_xlabel("source")
    ax.set_ylabel("target")
    if title:
        ax.set_title(title)
    fig.colorbar(image, ax=ax)
    return save_figure(fig, path)


def plot_curves(
    records: Sequence[dict],
    keys: Sequence[str],
    path: str | os.PathLike,
    *,
    x: str = "step",
) -> Path:
    """Plot training curves: one panel per key, ``x`` against the key's value.

    Records are the lines of a metrics JSONL (``{"step": 100, "loss": 3.2, ...}``); a record
    without a key (a training line has no ``bleu``) is skipped for that key's panel.

    Args:
        records: metric dictionaries, in any order (sorted by ``x`` here).
        keys: the metrics to plot, e.g. ``["loss", "dev_bleu"]``.
        path: output file, ``.png``, ``.svg`` or ``.pdf``.
        x: the key of the horizontal axis.

    Returns:
        The written path.

    Raises:
        ValueError: when no key is given or a key never appears together with ``x``.
    """
    if not keys:
        raise ValueError("plot_curves needs at least one key to plot")
    series = {}
    for key in keys:
        points = sorted(
            (r[x], r[key]) for r in records if r.get(x) is not None and r.get(key) is not None
        )
        if not points:
            seen = sorted({k for r in records for k in r})
            raise ValueError(f"no record has both '{x}' and '{key}'; keys present: {seen}")
        series[key] = points
    fig = Figure(figsize=(6.0, 2.4 * len(keys)))
    axes = fig.subplots(len(keys), 1, sharex=True, squeeze=False)[:, 0]
    for ax, key in zip(axes, keys):
        xs, ys = zip(*series[key])
        ax.plot(xs, ys, marker="." if len(xs) < 50 else None)
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel(x)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_confusion(confusion, labels: Sequence[str], path: str | os.PathLike, title: str | None = None) -> Path:
    """Draw a (C, C) confusion matrix: row = true class, column = predicted, counts in the cells.

    Cell colours are the row-normalised rates (each true class's share predicted as each class),
    so a small class is as readable as a large one; the numbers are the counts.

    Args:
        confusion: (C, C) counts, a tensor or array.
        labels: the C class names.
        path: output file, ``.png``, ``.svg`` or ``.pdf``.
        title: optional figure title.

    Returns:
        The written path.

    Raises:
        ValueError: when the matrix is not square or its size differs from the number of labels.
    """
    if hasattr(confusion, "detach"):
        confusion = confusion.detach().cpu().numpy()
    counts = np.asarray(confusion, dtype=float)
    C = len(labels)
    if counts.shape != (C, C):
        raise ValueError(f"confusion matrix has shape {tuple(counts.shape)} but {C} labels were given")
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    fig = Figure(figsize=(max(3.5, 0.6 * C + 2.0), max(3.0, 0.6 * C + 1.5)))
    ax = fig.add_subplot()
    image = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    for i in range(C):
        for j in range(C):
            ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center",
                    color="white" if rates[i, j] > 0.5 else "black")
    ax.set_xticks(range(C), labels=list(labels), rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(C), labels=list(labels))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, label="share of the true class")
    return save_figure(fig, path)
