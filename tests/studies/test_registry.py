"""The registry and the `seqlab study` command."""

import importlib

import pytest

from seqlab.cli import main
from seqlab.studies import STUDIES, describe


def test_every_study_module_declares_itself():
    for name, module_name in STUDIES.items():
        module = importlib.import_module(module_name)
        assert module.NAME == name
        assert module.CLAIM.endswith(".") and module.COST
        assert callable(module.run)


def test_study_list_names_every_study(capsys):
    assert main(["study", "list"]) == 0
    out = capsys.readouterr().out
    for name, claim, _ in describe():
        assert name in out and claim in out


def test_unknown_study_and_missing_out_are_errors(capsys, tmp_path):
    assert main(["study", "gradient", "--out", str(tmp_path)]) == 2
    assert "unknown study 'gradient'" in capsys.readouterr().err
    assert main(["study", "gradients"]) == 2
    assert "needs --out" in capsys.readouterr().err


def test_study_all_writes_an_index_of_verdicts(tmp_path, monkeypatch, capsys):
    import sys
    import types

    from seqlab import studies
    from seqlab.studies.report import Report

    fake = types.ModuleType("fake_study")
    fake.NAME, fake.CLAIM, fake.COST = "fake", "Fakes exist.", "1 s"

    def run(out, *, quick):
        report = Report("fake", fake.CLAIM, "none", quick=quick)
        report.decide("not supported", f"quick={quick}")
        return report

    fake.run = run
    monkeypatch.setitem(sys.modules, "fake_study", fake)
    monkeypatch.setattr(studies, "STUDIES", {"fake": "fake_study"})
    assert main(["study", "all", "--quick", "--out", str(tmp_path)]) == 0
    index = (tmp_path / "index.md").read_text()
    assert "| [fake](fake/report.md) | not supported |" in index and "quick=True" in index
    assert "**Verdict: not supported.** quick=True" in (tmp_path / "fake" / "report.md").read_text()


def test_threads_option_sets_the_threads_a_study_measures_with(tmp_path, monkeypatch, capsys):
    import sys
    import types

    import torch

    from seqlab import studies
    from seqlab.studies.report import Report

    seen = []
    fake = types.ModuleType("fake_timing_study")
    fake.NAME, fake.CLAIM, fake.COST = "timing", "Threads are honoured.", "1 s"

    def run(out, *, quick):
        seen.append(torch.get_num_threads())
        report = Report("timing", fake.CLAIM, "none", quick=quick)
        report.decide("supported", "ran")
        return report

    fake.run = run
    monkeypatch.setitem(sys.modules, "fake_timing_study", fake)
    monkeypatch.setattr(studies, "STUDIES", {"timing": "fake_timing_study"})
    before = torch.get_num_threads()
    try:
        assert main(["study", "timing", "--quick", "--threads", "1", "--out", str(tmp_path / "a")]) == 0
        assert main(["study", "all", "--quick", "--threads", "2", "--out", str(tmp_path / "b")]) == 0
    finally:
        torch.set_num_threads(before)
    assert seen == [1, 2]
    capsys.readouterr()
    with pytest.raises(SystemExit) as refused:
        main(["study", "timing", "--threads", "0", "--out", str(tmp_path / "c")])
    assert refused.value.code == 2 and "--threads: must be at least 1, got 0" in capsys.readouterr().err
    assert seen == [1, 2]  # the refused command ran nothing
