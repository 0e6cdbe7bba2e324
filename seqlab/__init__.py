"""seqlab: neural sequence models from the equations up."""

__version__ = "0.1.0"

__all__ = ["__version__", "load"]


def load(run_dir, *, checkpoint: str = "best", device: str = "auto", engine: str = "native",
         precision: str | None = None):
    """Load a trained run folder and return a :class:`seqlab.api.Translator`.

    ``engine``: ``native`` (PyTorch), ``ctranslate2`` or ``onnx`` (exported into ``RUN/export/`` on
    first use); ``precision``: ``fp32``, ``bf16`` (native), ``int8`` (native, ctranslate2).

    Example:
        >>> model = seqlab.load("runs/en-pt-transformer")      # doctest: +SKIP
        >>> model.translate(["The book is on the table."], beam=5)  # doctest: +SKIP
    """
    from seqlab.api import Translator

    return Translator.load(run_dir, checkpoint=checkpoint, device=device, engine=engine, precision=precision)
