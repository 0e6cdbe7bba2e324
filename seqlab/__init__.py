"""seqlab: neural sequence models from the equations up."""

__version__ = "0.1.0"

__all__ = ["__version__", "load"]


def load(run_dir, *, checkpoint: str = "best", device: str = "auto", precision: str | None = None,
         engine: str = "native"):
    """Load a trained run folder: a :class:`seqlab.api.Translator` for a translation run, a
    :class:`seqlab.api.Chatbot` for a chat run, a :class:`seqlab.api.Classifier` for a
    classification run (``seqlab.api.run_task`` says which).

    ``precision`` (``auto``, ``fp32``, ``bf16``, ``fp16``; default: the run's ``decode.precision``) is the
    precision it decodes in; see :mod:`seqlab.precision`. A translation run may also decode in ``int8``
    and through ``engine`` ``ctranslate2`` or ``onnx`` (exported into ``RUN/export/`` on first use);
    another engine than ``native`` for a chat or classification run is an error.

    Example:
        >>> model = seqlab.load("runs/en-pt-transformer")      # doctest: +SKIP
        >>> model.translate(["The book is on the table."], beam=5)  # doctest: +SKIP
    """
    from seqlab.api import load as load_run

    return load_run(run_dir, checkpoint=checkpoint, device=device, precision=precision, engine=engine)
