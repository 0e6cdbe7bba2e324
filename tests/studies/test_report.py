"""The report writer: Markdown with the verdict and its numbers, JSON that parses, figures on disk."""

import json

import pytest
from matplotlib.figure import Figure

from seqlab.studies.report import Report


def test_report_writes_markdown_json_and_figures(tmp_path):
    report = Report("demo", "Attention helps.", "Two models.", quick=True)
    report.table("Accuracy", ["model", "accuracy"], [["fixed", 0.1], ["attention", float("nan")], ["||g||", 1.0]])
    fig = Figure()
    fig.add_subplot().plot([1, 2], [3, 4])
    report.figure(fig, "plot.png", "a line")
    report.decide("supported", "attention 0.9 against fixed 0.1.")
    report.numbers = {"accuracy": {"fixed": 0.1, "attention": float("inf")}}
    path = report.write(tmp_path)
    text = path.read_text()
    assert "**Claim.** Attention helps." in text
    assert "**Verdict: supported.** attention 0.9 against fixed 0.1." in text
    assert "| fixed | 0.1 |" in text and "| attention | nan |" in text
    assert "| \\|\\|g\\|\\| | 1 |" in text  # a "|" in a cell is escaped, or it would split the cell
    assert "![a line](plot.png)" in text
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    record = json.loads((tmp_path / "results.json").read_text())
    assert record["verdict"] == "supported"
    assert record["numbers"]["accuracy"]["attention"] == "inf"  # JSON has no inf
    assert "cpu_capability" in record["numbers"]["machine"]


def test_unknown_verdict_is_an_error():
    with pytest.raises(ValueError, match="verdict must be one of"):
        Report("demo", "c", "s").decide("probably", "")
