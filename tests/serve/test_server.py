"""``seqlab serve``: loopback by default, a warning for any other address, runs named by folder."""

from __future__ import annotations

import shutil

import pytest

from seqlab.cli import main
from seqlab.errors import SeqlabError
from seqlab.serve import server
from seqlab.serve.models import load_models


@pytest.mark.parametrize("host,loopback", [("127.0.0.1", True), ("localhost", True), ("::1", True),
                                           ("127.0.0.2", True), ("0.0.0.0", False), ("192.168.1.5", False),
                                           ("example.org", False)])
def test_is_loopback(host, loopback):
    assert server.is_loopback(host) is loopback


@pytest.fixture
def started(monkeypatch):
    """Replace uvicorn.run: record what would be served instead of serving it."""
    import uvicorn

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, host, port, log_level: calls.append((app, host, port)))
    return calls


def test_serve_binds_loopback_by_default_and_names_models_by_folder(tiny_run, started, capsys):
    assert main(["serve", str(tiny_run.path), "--port", "8123"]) == 0
    app, host, port = started[0]
    assert (host, port) == ("127.0.0.1", 8123)
    assert list(app.state.seqlab.models) == ["run"]
    captured = capsys.readouterr()
    assert "http://127.0.0.1:8123/" in captured.out and "warning" not in captured.err


def test_serve_elsewhere_warns_and_limits_come_from_the_options(tiny_run, started, capsys):
    assert main(["serve", str(tiny_run.path), "--host", "0.0.0.0", "--max-texts", "3", "--no-batching"]) == 0
    state = started[0][0].state.seqlab
    assert state.limits.max_texts == 3 and state.batchers["run"].max_batch == 1
    assert "warning: serving on 0.0.0.0, not loopback" in capsys.readouterr().err


def test_runs_with_the_same_folder_name_or_another_task_are_refused(tiny_run, tmp_path):
    other = shutil.copytree(tiny_run.path, tmp_path / "run")
    with pytest.raises(SeqlabError, match="two runs are named 'run'"):
        load_models([tiny_run.path, other])
    assert main(["serve", str(tmp_path / "missing")]) == 2
    lm = tmp_path / "lm"
    lm.mkdir()
    (lm / "config.yaml").write_text("task: lm\n", encoding="utf-8")
    with pytest.raises(SeqlabError, match="a 'lm' run; seqlab serve serves translation and chat runs"):
        load_models([lm])


def test_serve_engine_and_precision_reach_every_run(tiny_run, tiny_chat_run, copy_run, started):
    # --engine onnx serves the run's exported model: its translations are the native engine's.
    pytest.importorskip("onnxruntime", reason="the onnxruntime package is not installed")
    run = copy_run(tiny_run)
    assert main(["serve", str(run), "--engine", "onnx"]) == 0
    served = started[0][0].state.seqlab.models["run-copy"]
    assert served.translator.engine == "onnx" and (run / "export" / "onnx-fp32").is_dir()
    texts = ["Maria is tired.", "Is my brother tall?"]
    native = load_models([run])["run-copy"]
    assert served.translate(texts, {"beam": 2}) == native.translate(texts, {"beam": 2})
    assert load_models([run], precision="int8")["run-copy"].translator.precision == "int8"
    with pytest.raises(SeqlabError, match="'chat' run; engine 'onnx' decodes translation runs only"):
        load_models([tiny_chat_run.path], engine="onnx")
