"""One report per study: the claim, the setup, a table, plots, a verdict with its numbers.

A study fills a :class:`Report` and calls :meth:`Report.write`, which writes into the study's
folder::

    report.md       the claim in one sentence, setup, table, figures, verdict and why
    results.json    every number of the report (and the verdict), for scripts and reruns
    *.png           the figures (matplotlib, no GUI backend)

The verdict is one of ``supported``, ``not supported`` or ``depends``, and always comes with the
numbers that decided it: a study reports what it measured, whether or not the course agrees.
"""

from __future__ import annotations

import json
import math
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure

from seqlab.evaluation.plots import save_figure
from seqlab.io import atomic_write_text

__all__ = ["VERDICTS", "Report", "machine", "table_text"]

VERDICTS = ("supported", "not supported", "depends")


def machine() -> dict:
    """The CPU and what it offers, recorded with every measurement."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "threads": torch.get_num_threads(), "load_average_1min": os.getloadavg()[0],
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None, "torch": torch.__version__}


def table_text(text: str) -> str:
    """``text`` safe inside a Markdown table cell (a "|" would end the cell, as in ||dL/dh_t||)."""
    return text.replace("|", "\\|")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.3g}" if abs(value) < 1e-2 or abs(value) >= 1e4 else f"{value:.3f}".rstrip("0").rstrip(".")
    return table_text(str(value))


def _jsonable(value: Any) -> Any:
    """Numbers as JSON allows them: nan and inf become strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


@dataclass
class Report:
    """What a study found, written as Markdown and JSON.

    Args:
        name: the study's name (``seqlab study NAME``).
        claim: the course's claim, in one sentence.
        setup: how it was measured (models, sizes, data, steps), Markdown.
        quick: True for the toy-size run (``--quick``), said in the report.
    """

    name: str
    claim: str
    setup: str
    quick: bool = False
    tables: list[tuple[str, list[str], list[list[Any]]]] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)
    verdict: str = ""
    reason: str = ""
    seconds: float | None = None
    """Wall-clock time of the study (set by :func:`seqlab.studies.run_study`), in the report and JSON."""
    _unsaved: list[tuple[Figure, str]] = field(default_factory=list, repr=False)

    def table(self, title: str, header: list[str], rows: list[list[Any]]) -> None:
        """Add a table (one list of cells per row)."""
        self.tables.append((title, header, rows))

    def figure(self, fig: Figure, filename: str, caption: str) -> None:
        """Keep ``fig`` to write as ``filename`` (a .png) with ``caption``."""
        self.figures.append((filename, caption))
        self._unsaved.append((fig, filename))

    def decide(self, verdict: str, reason: str) -> None:
        """Set the verdict and the sentence, with numbers, that decides it."""
        if verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, got {verdict!r}")
        self.verdict, self.reason = verdict, reason

    def markdown(self) -> str:
        size = "quick (toy size, for a first look; rerun without --quick for the full study)" if self.quick else "full"
        lines = [f"# Study: {self.name}", "", f"**Claim.** {self.claim}", "",
                 f"**Verdict: {self.verdict or 'undecided'}.** {self.reason}", "", "## Setup", "", self.setup, "",
                 f"Size: {size}. Machine: {self._machine_line()}."
                 + ("" if self.seconds is None else f" Wall-clock time: {self.seconds:.0f} s."), ""]
        for title, header, rows in self.tables:
            lines += [f"## {title}", "", "| " + " | ".join(map(table_text, header)) + " |", "|" + "---|" * len(header)]
            lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
            lines.append("")
        if self.figures:
            lines += ["## Figures", ""]
            for filename, caption in self.figures:
                lines += [f"![{caption}]({filename})", "", f"*{caption}*", ""]
        return "\n".join(lines)

    def _machine_line(self) -> str:
        m = self.numbers.get("machine", {})
        return (f"{m.get('cpu', '?')} ({m.get('cpu_capability', '?')}), {m.get('threads', '?')} torch threads, "
                f"load average {m.get('load_average_1min', float('nan')):.1f} when the study ended"
                + (f", GPU {m['cuda']}" if m.get("cuda") else ""))

    def write(self, out: str | Path) -> Path:
        """Write report.md, results.json and the figures into ``out``; returns report.md's path."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        for fig, filename in self._unsaved:
            save_figure(fig, out / filename)
        self.numbers.setdefault("machine", machine())
        record = {"study": self.name, "claim": self.claim, "quick": self.quick, "verdict": self.verdict,
                  "reason": self.reason, "seconds": self.seconds, "numbers": self.numbers}
        atomic_write_text(out / "results.json", json.dumps(_jsonable(record), indent=1) + "\n")
        atomic_write_text(out / "report.md", self.markdown())
        return out / "report.md"
