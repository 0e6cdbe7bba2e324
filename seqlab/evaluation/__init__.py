"""Evaluation: corpus metrics, NLL passes, attention and curve plots.

The plotting functions are imported on first use, so that importing the metrics does not load
matplotlib.
"""

from seqlab.evaluation.metrics import (
    bleu,
    chrf,
    perplexity,
    teacher_forced_nll,
)

__all__ = [
    "bleu",
    "chrf",
    "perplexity",
    "plot_attention",
    "plot_confusion",
    "plot_curves",
    "teacher_forced_nll",
]


def __getattr__(name: str):
    if name in ("plot_attention", "plot_confusion", "plot_curves"):
        from seqlab.evaluation import plots

        return getattr(plots, name)
    raise AttributeError(f"module 'seqlab.evaluation' has no attribute '{name}'")
