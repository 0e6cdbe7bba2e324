"""seqlab.io: atomic writes and JSON reading with errors that name the file."""

import os

import pytest

import seqlab.io
from seqlab.errors import CheckpointError
from seqlab.io import atomic_write_text, read_json


def test_atomic_write_replaces_the_file_and_creates_missing_folders(tmp_path):
    path = tmp_path / "a" / "b.txt"
    atomic_write_text(path, "first")
    atomic_write_text(path, "second\n")
    assert path.read_text() == "second\n"
    assert os.listdir(path.parent) == ["b.txt"]


def test_atomic_write_failure_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "config.yaml"
    atomic_write_text(path, "old")

    def fail(fd):
        raise OSError("disk full")

    monkeypatch.setattr(seqlab.io.os, "fsync", fail)  # fails after the data went to the temp file
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(path, "new content")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["config.yaml"]


@pytest.mark.parametrize("content, phrase", [
    (None, "file not found"),
    (b"\xff\xfe{", "not UTF-8 text"),
    (b'{"a": ', "not valid JSON"),
])
def test_read_json_names_the_file_and_what_was_expected(tmp_path, content, phrase):
    path = tmp_path / "x.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=f"{path}: {phrase}.*expected a test file"):
        read_json(path, "a test file")


def test_read_json_returns_the_value(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"a": [1, 2.5, "é"]}', encoding="utf-8")
    assert read_json(path, "a test file") == {"a": [1, 2.5, "é"]}
