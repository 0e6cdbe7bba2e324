"""Studies: the claims of the courses, measured on this machine and reported with plots.

Each study is a module with ``NAME``, ``CLAIM`` (one sentence), ``COST`` (how long the full run
takes) and ``run(out, *, quick) -> Report``. It is a short script of configurations over the
library (cells, models, the trainer, decoding), not new model code. ``seqlab study list`` prints
this registry; ``seqlab study NAME --out DIR`` runs one; ``seqlab study all`` runs every study and
writes an index of the verdicts.
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path

from seqlab.errors import SeqlabError
from seqlab.io import atomic_write_text
from seqlab.studies.report import Report, table_text

__all__ = ["STUDIES", "Report", "describe", "run_all", "run_study"]

STUDIES = {
    "gradients": "seqlab.studies.gradients",
    "long-range": "seqlab.studies.long_range",
    "positions": "seqlab.studies.positions",
    "parallelism": "seqlab.studies.parallelism",
    "lstm-gru": "seqlab.studies.lstm_gru",
    "remedies": "seqlab.studies.remedies",
    "transformer-norm": "seqlab.studies.transformer_norm",
    "heads": "seqlab.studies.heads",
}
"""Study name -> module, in the order ``study all`` runs them."""


def _module(name: str):
    if name not in STUDIES:
        raise SeqlabError(f"unknown study {name!r}; `seqlab study list` names them: {', '.join(STUDIES)}")
    return importlib.import_module(STUDIES[name])


def describe() -> list[tuple[str, str, str]]:
    """(name, claim, cost) of every study."""
    return [(name, _module(name).CLAIM, _module(name).COST) for name in STUDIES]


def run_study(name: str, out: str | Path, *, quick: bool = False) -> Report:
    """Run study ``name`` and write its report, results and figures into ``out``."""
    import torch

    module = _module(name)
    threads = torch.get_num_threads()
    try:
        report = module.run(Path(out), quick=quick)
    finally:
        torch.set_num_threads(threads)
    report.write(out)
    return report


def run_all(out: str | Path, *, quick: bool = False, echo=print) -> list[Report]:
    """Run every study into ``out/NAME`` and write ``out/index.md`` with each verdict and its time."""
    out = Path(out)
    reports, rows = [], []
    start = time.monotonic()
    for name in STUDIES:
        began = time.monotonic()
        report = run_study(name, out / name, quick=quick)
        seconds = time.monotonic() - began
        reports.append(report)
        rows.append(f"| [{name}]({name}/report.md) | {report.verdict} | {seconds:.0f} s | {table_text(report.reason)} |")
        echo(f"{name}: {report.verdict} ({seconds:.0f} s)")
    total = time.monotonic() - start
    atomic_write_text(out / "index.md", "\n".join([
        f"# Studies{' (quick)' if quick else ''}", "", f"All {len(reports)} studies in {total:.0f} s.", "",
        "| study | verdict | time | why |", "|---|---|---|---|", *rows, ""]))
    echo(f"all studies in {total:.0f} s; index at {out / 'index.md'}")
    return reports
