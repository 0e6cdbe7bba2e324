"""seqlab: neural sequence models from the equations up."""

__version__ = "0.1.0"

__all__ = ["__version__", "load"]


def load(run_dir, *, checkpoint: str = "best", device: str = "auto", precision: str | None = None,
         engine: str = "native"):
    """Load a trained run folder: a :class:`seqlab.api.Translator` for a translation run, a
    :class:`seqlab.api.Classifier` for a classification run.

    ``precision`` (``auto``, ``fp32``, ``bf16``, ``fp16``; default: the run's ``decode.precision``) is the
    precision it decodes in; see :mod:`seqlab.precision`. A translation run may also decode in ``int8``
    and through ``engine`` ``ctranslate2`` or ``onnx`` (exported into ``RUN/export/`` on first use).

    Example:
        >>> model = seqlab.load("runs/en-pt-transformer")      # doctest: +SKIP
        >>> model.translate(["The book is on the table."], beam=5)  # doctest: +SKIP
    """
    from seqlab.api import Classifier, Translator, run_task

    opener = {"translation": Translator, "classification": Classifier}.get(run_task(run_dir))
    if opener is None:
        from seqlab.errors import SeqlabError

        raise SeqlabError(f"{run_dir}: seqlab.load opens translation and classification runs, "
                          f"not {run_task(run_dir)!r} runs")
    if opener is Translator:
        return Translator.load(run_dir, checkpoint=checkpoint, device=device, precision=precision, engine=engine)
    if engine != "native":
        from seqlab.errors import SeqlabError

        raise SeqlabError(f"{run_dir}: engine {engine!r} decodes translation runs only")
    return opener.load(run_dir, checkpoint=checkpoint, device=device)
