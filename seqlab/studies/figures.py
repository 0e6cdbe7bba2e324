"""The few figure shapes the studies draw: curves on shared axes, in one or several panels.

Figures are bare :class:`matplotlib.figure.Figure` objects (no pyplot); :class:`Report` writes them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from matplotlib.figure import Figure

__all__ = ["Series", "curves"]

Series = dict[str, tuple[Sequence[float], Sequence[float]]]
"""label -> (xs, ys)."""


def _finite(xs: Sequence[float], ys: Sequence[float]) -> tuple[list[float], list[float]]:
    points = [(x, y) for x, y in zip(xs, ys) if math.isfinite(float(y))]
    return [p[0] for p in points], [p[1] for p in points]


def curves(panels: dict[str, Series], *, xlabel: str, ylabel: str, logy: bool = False, logx: bool = False,
           title: str | None = None, sharey: bool = True) -> Figure:
    """One panel per entry of ``panels`` (its title -> series), side by side.

    ``sharey=False`` when the panels plot different quantities (a loss beside a gradient norm).

    Points whose y is nan or inf are left out (a diverged run's curve simply stops).
    """
    n = len(panels)
    fig = Figure(figsize=(4.2 * n + 0.6, 3.4))
    axes = fig.subplots(1, n, sharey=sharey, squeeze=False)[0]
    for ax, (panel, series) in zip(axes, panels.items()):
        for label, (xs, ys) in series.items():
            xs, ys = _finite(xs, ys)
            ax.plot(xs, ys, label=label, marker="." if len(xs) <= 12 else None)
        if logy:
            ax.set_yscale("log")
        if logx:
            ax.set_xscale("log", base=2)
        ax.set_xlabel(xlabel)
        ax.set_title(panel, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel(ylabel)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
