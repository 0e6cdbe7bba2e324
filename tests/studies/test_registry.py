"""The registry and the `seqlab study` command."""

import importlib

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
