"""Studies: the claims of the courses, measured on this machine and reported with plots.

Each study is a module with ``NAME``, ``CLAIM`` (one sentence), ``COST`` (how long the full run
takes) and ``run(out, *, quick) -> Report``. It is a short script of configurations over the
library (cells, models, the trainer, decoding), not new model code. ``seqlab study list`` prints
this registry; ``seqlab study NAME --out DIR`` runs one; ``seqlab study all`` runs every study and
writes an index of the verdicts.

A study that measures existing runs takes them as keyword options of ``run`` (``runs``, ``data``:
``seqlab study long-sentences --runs RUN ... --data FILE``); when they are not there it raises
:class:`StudyInputMissing`, and ``study all`` skips it with that message.
"""

from __future__ import annotations

import importlib
import inspect
import time
from pathlib import Path

from seqlab.errors import SeqlabError
from seqlab.io import atomic_write_text
from seqlab.studies.report import Report, table_text

__all__ = ["STUDIES", "Report", "StudyInputMissing", "describe", "options_of", "run_all", "run_study"]

STUDIES = {
    "gradients": "seqlab.studies.gradients",
    "long-range": "seqlab.studies.long_range",
    "positions": "seqlab.studies.positions",
    "parallelism": "seqlab.studies.parallelism",
    "lstm-gru": "seqlab.studies.lstm_gru",
    "remedies": "seqlab.studies.remedies",
    "transformer-norm": "seqlab.studies.transformer_norm",
    "heads": "seqlab.studies.heads",
    "long-sentences": "seqlab.studies.long_sentences",
}
"""Study name -> module, in the order ``study all`` runs them."""


class StudyInputMissing(SeqlabError):
    """A study's input (trained runs, a data file) is not there; the message says what makes it."""


def _module(name: str):
    if name not in STUDIES:
        raise SeqlabError(f"unknown study {name!r}; `seqlab study list` names them: {', '.join(STUDIES)}")
    return importlib.import_module(STUDIES[name])


def describe() -> list[tuple[str, str, str]]:
    """(name, claim, cost) of every study."""
    return [(name, _module(name).CLAIM, _module(name).COST) for name in STUDIES]


def options_of(name: str) -> set[str]:
    """The keyword options (beyond ``quick``) that study ``name``'s ``run`` takes, e.g. ``{"runs", "data"}``."""
    return set(inspect.signature(_module(name).run).parameters) - {"out", "quick"}


def run_study(name: str, out: str | Path, *, quick: bool = False, **options) -> Report:
    """Run study ``name`` and write its report, results and figures into ``out``.

    ``options`` (``runs``, ``data``) go to studies that take them; None means the study's default.
    """
    import torch

    module = _module(name)
    options = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(options) - options_of(name))
    if unknown:
        takers = [s for s in STUDIES if set(unknown) <= options_of(s)]
        raise SeqlabError(f"study {name} takes no {', '.join('--' + k for k in unknown)}"
                          + (f" (only {', '.join(takers)} does)" if takers else ""))
    threads = torch.get_num_threads()
    began = time.monotonic()
    try:
        report = module.run(Path(out), quick=quick, **options)
    finally:
        torch.set_num_threads(threads)
    report.seconds = time.monotonic() - began
    report.write(out)
    return report


def run_all(out: str | Path, *, quick: bool = False, echo=print, **options) -> list[Report]:
    """Run every study into ``out/NAME`` and write ``out/index.md`` with each verdict and its time.

    ``options`` go to the studies that take them; a study whose input is missing
    (:class:`StudyInputMissing`) is skipped with a line saying why.
    """
    out = Path(out)
    reports, rows = [], []
    start = time.monotonic()
    for name in STUDIES:
        began = time.monotonic()
        try:
            report = run_study(name, out / name, quick=quick,
                               **{k: v for k, v in options.items() if k in options_of(name)})
        except StudyInputMissing as missing:
            rows.append(f"| {name} | skipped | | {table_text(' '.join(str(missing).split()))} |")
            echo(f"{name}: skipped: {missing}")
            continue
        seconds = time.monotonic() - began
        reports.append(report)
        rows.append(f"| [{name}]({name}/report.md) | {report.verdict} | {seconds:.0f} s | {table_text(report.reason)} |")
        echo(f"{name}: {report.verdict} ({seconds:.0f} s)")
    total = time.monotonic() - start
    atomic_write_text(out / "index.md", "\n".join([
        f"# Studies{' (quick)' if quick else ''}", "", f"{len(reports)} of {len(rows)} studies in {total:.0f} s.", "",
        "| study | verdict | time | why |", "|---|---|---|---|", *rows, ""]))
    echo(f"all studies in {total:.0f} s; index at {out / 'index.md'}")
    return reports
