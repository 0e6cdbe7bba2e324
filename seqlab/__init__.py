"""seqlab: neural sequence models from the equations up."""

__version__ = "0.1.0"

__all__ = ["__version__", "load"]


def load(run_dir, *, checkpoint: str = "best", device: str = "auto"):
    """Load a trained run folder and return a :class:`seqlab.api.Translator`.

    Example:
        >>> model = seqlab.load("runs/en-pt-transformer")      # doctest: +SKIP
        >>> model.translate(["The book is on the table."], beam=5)  # doctest: +SKIP
    """
    from seqlab.api import Translator

    return Translator.load(run_dir, checkpoint=checkpoint, device=device)
