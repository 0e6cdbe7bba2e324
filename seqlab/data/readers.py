"""Readers for parallel and monolingual text: TSV, JSONL, two aligned files, built-in corpora.

Every reader checks its input line by line and reports a malformed line as a
:class:`~seqlab.errors.DataError` naming the file, the 1-based line and what was expected. With
``on_error="skip"`` malformed lines are dropped instead, and one warning says how many lines of
which file were skipped (with the first few line numbers); problems with the whole file (missing,
empty, two files of different lengths) always raise.

Line handling is the same for every format: a trailing ``\\r`` (Windows line ends) and a UTF-8
byte-order mark are removed, blank lines at the end of a file are ignored, and a blank line
anywhere else is malformed (it would misalign the pairs that follow).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

from seqlab.data.synthetic import builtin_split
from seqlab.errors import DataError

__all__ = ["BUILTIN_CORPORA", "DataWarning", "read_bytes", "read_lines", "read_parallel"]

BUILTIN_CORPORA = {
    "builtin:synthetic-en-pt": "train",
    "builtin:synthetic-en-pt-dev": "dev",
    "builtin:synthetic-en-pt-test": "test",
}
"""Built-in corpus names accepted wherever a data path is, and the synthetic split each names."""

_SHOW_LINES = 5
_TSV_EXPECTED = "expected 'source<TAB>target'"
_JSONL_EXPECTED = 'expected a JSON object like {"src": "...", "tgt": "..."}'

Spec = str | os.PathLike | Sequence[str | os.PathLike]


class DataWarning(UserWarning):
    """Malformed lines were skipped (``on_error="skip"``)."""


class _Problems:
    """Raise on the first malformed line, or collect line numbers and warn once at the end."""

    def __init__(self, path: str, on_error: str):
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.path, self.on_error, self.lines = path, on_error, []

    def report(self, line: int, message: str, path: str | None = None) -> None:
        if self.on_error == "raise":
            raise DataError(path or self.path, line, message)
        self.lines.append(line)

    def finish(self, pairs: list) -> list:
        """Raise if nothing is left, warn about skipped lines, and return ``pairs``."""
        skipped = f" ({len(self.lines)} malformed lines were skipped)" if self.lines else ""
        if not pairs:
            raise DataError(self.path, None, f"no sentence pairs found{skipped}")
        if self.lines:
            first = ", ".join(str(n) for n in self.lines[:_SHOW_LINES])
            more = ", ..." if len(self.lines) > _SHOW_LINES else ""
            warnings.warn(f"{self.path}: skipped {len(self.lines)} malformed line(s) (lines {first}{more})",
                          DataWarning, stacklevel=3)
        return pairs


def read_bytes(path: str) -> bytes:
    """The file's bytes. Raises DataError naming the file when it is missing or unreadable."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise DataError(path, None, "file not found") from None
    except OSError as e:
        raise DataError(path, None, f"cannot read the file: {e.strerror or e}") from None


def _raw_lines(path: str, *, keep_blank_tail: bool = False) -> list[tuple[int, int, bytes]]:
    """The lines of a file as ``(line number, byte offset of the line, bytes)``.

    Line ends (``\\n`` or ``\\r\\n``) and a leading byte-order mark are removed; blank lines at the
    end of the file are dropped unless ``keep_blank_tail`` (the newline ending the last line never
    starts a line of its own).

    Raises:
        DataError: the file does not exist or cannot be read.
    """
    data = read_bytes(path)
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    lines, offset = [], start
    for number, raw in enumerate(data[start:].split(b"\n"), start=1):
        lines.append((number, offset, raw[:-1] if raw.endswith(b"\r") else raw))
        offset += len(raw) + 1
    if lines and lines[-1][2] == b"":
        lines.pop()  # what follows the final newline
    while not keep_blank_tail and lines and not lines[-1][2].strip():
        lines.pop()
    return lines


def _decode(raw: bytes, number: int, offset: int, path: str, problems: _Problems) -> str | None:
    """Decode one line as UTF-8, reporting the byte at fault; None if it was reported."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        bad = raw[e.start:e.start + 1].hex()
        problems.report(number, f"invalid UTF-8 byte 0x{bad} at byte offset {e.start} of the line "
                                f"(offset {offset + e.start} in the file); expected UTF-8 text", path)
        return None


def _text_lines(path: str, problems: _Problems, *, keep_blank_tail: bool = False) -> Iterator[tuple[int, str]]:
    """Decoded lines ``(line number, text)``, skipping the ones reported as malformed."""
    for number, offset, raw in _raw_lines(path, keep_blank_tail=keep_blank_tail):
        text = _decode(raw, number, offset, path, problems)
        if text is not None:
            yield number, text


def _json_lines(path: str, problems: _Problems, expected: str) -> Iterator[tuple[int, object]]:
    """``(line number, parsed JSON value)`` of each line; a line that is not JSON is reported,
    with ``expected`` saying what should be there, and skipped."""
    for number, line in _text_lines(path, problems):
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as e:
            problems.report(number, f"invalid JSON ({e.msg} at column {e.colno}); {expected}")


def _read_tsv(path: str, problems: _Problems) -> list[tuple[str, str]]:
    pairs = []
    for number, line in _text_lines(path, problems):
        if not line.strip():
            problems.report(number, f"blank line; {_TSV_EXPECTED}")
            continue
        columns = line.split("\t")
        if len(columns) < 2:
            problems.report(number, f"no tab found; {_TSV_EXPECTED}")
            continue
        source, target = columns[0].strip(), columns[1].strip()
        if not source or not target:
            side = "source (column 1)" if not source else "target (column 2)"
            problems.report(number, f"empty {side}; {_TSV_EXPECTED}")
            continue
        pairs.append((source, target))
    return pairs


def _read_jsonl(path: str, problems: _Problems) -> list[tuple[str, str]]:
    pairs = []
    for number, record in _json_lines(path, problems, _JSONL_EXPECTED):
        if not isinstance(record, dict):
            problems.report(number, f"found a JSON {type(record).__name__}; {_JSONL_EXPECTED}")
            continue
        missing = [key for key in ("src", "tgt") if key not in record]
        if missing:
            problems.report(number, f"missing key {' and '.join(map(repr, missing))}; {_JSONL_EXPECTED}")
            continue
        if not all(isinstance(record[key], str) for key in ("src", "tgt")):
            problems.report(number, f"'src' and 'tgt' must be strings; {_JSONL_EXPECTED}")
            continue
        source, target = record["src"].strip(), record["tgt"].strip()
        if not source or not target:
            problems.report(number, f"empty {'src' if not source else 'tgt'}; {_JSONL_EXPECTED}")
            continue
        pairs.append((source, target))
    return pairs


def _read_text_pair(source_path: str, target_path: str, problems: _Problems) -> list[tuple[str, str]]:
    """Two aligned files, one sentence per line; line i of one translates line i of the other."""
    source_lines, target_lines = _raw_lines(source_path), _raw_lines(target_path)
    if len(source_lines) != len(target_lines):
        raise DataError(source_path, None,
                        f"has {len(source_lines)} lines but {target_path} has {len(target_lines)}; "
                        "expected two aligned files with one sentence per line")
    pairs = []
    for (number, s_off, s_raw), (_, t_off, t_raw) in zip(source_lines, target_lines):
        source = _decode(s_raw, number, s_off, source_path, problems)
        target = _decode(t_raw, number, t_off, target_path, problems) if source is not None else None
        if source is None or target is None:
            continue
        source, target = source.strip(), target.strip()
        if not source or not target:
            empty, other = (source_path, target_path) if not source else (target_path, source_path)
            problems.report(number, f"empty line; expected a sentence aligned with line {number} of {other}", empty)
            continue
        pairs.append((source, target))
    return pairs


def _format_of(spec: Spec, fmt: str) -> str:
    if fmt != "auto":
        if fmt not in ("tsv", "jsonl", "text"):
            raise ValueError(f"format must be auto, tsv, jsonl or text, got {fmt!r}")
        return fmt
    if not isinstance(spec, (str, os.PathLike)):
        return "text"
    return "jsonl" if Path(spec).suffix.lower() in (".jsonl", ".json") else "tsv"


def read_parallel(spec: Spec, *, format: Literal["auto", "tsv", "jsonl", "text"] = "auto",
                  on_error: Literal["raise", "skip"] = "raise", reverse: bool = False) -> list[tuple[str, str]]:
    """Read sentence pairs from a file, two aligned files or a built-in corpus.

    Args:
        spec: a TSV path (``source<TAB>target``; further columns, such as the attribution in
            Tatoeba/Anki exports, are ignored), a JSONL path (one ``{"src": ..., "tgt": ...}``
            object a line), a list ``[source.txt, target.txt]`` of two aligned plain-text files,
            or a built-in name from :data:`BUILTIN_CORPORA` such as ``"builtin:synthetic-en-pt"``.
        format: ``"auto"`` picks jsonl for ``.jsonl``/``.json``, text for a list of two paths and
            tsv otherwise.
        on_error: ``"raise"`` stops at the first malformed line; ``"skip"`` drops malformed lines
            and warns once (:class:`DataWarning`) with their count and first line numbers.
        reverse: swap the sides (e.g. pt->en from an en-pt file).

    Returns:
        ``[(source, target), ...]``, each side stripped of surrounding whitespace.

    Raises:
        DataError: naming the file and 1-based line of a malformed line (with ``"raise"``), or
            the file for a missing file, an empty file, or two files of different lengths.
    """
    if isinstance(spec, str) and spec.startswith("builtin:"):
        if spec not in BUILTIN_CORPORA:
            raise DataError(spec, None, f"unknown built-in corpus; expected one of {', '.join(BUILTIN_CORPORA)}")
        pairs = builtin_split(BUILTIN_CORPORA[spec])
    else:
        fmt = _format_of(spec, format)
        if fmt == "text":
            if isinstance(spec, (str, os.PathLike)) or len(spec) != 2:
                raise DataError(str(spec), None, "format 'text' expects a list of two files [source, target]")
            source_path, target_path = (str(p) for p in spec)
            problems = _Problems(f"{source_path} + {target_path}", on_error)
            pairs = problems.finish(_read_text_pair(source_path, target_path, problems))
        else:
            if not isinstance(spec, (str, os.PathLike)):
                raise DataError(str(spec), None, f"format {fmt!r} expects one file path, not a list")
            problems = _Problems(str(spec), on_error)
            reader = _read_jsonl if fmt == "jsonl" else _read_tsv
            pairs = problems.finish(reader(str(spec), problems))
    return [(t, s) for s, t in pairs] if reverse else pairs


def read_lines(path: str | os.PathLike, *, keep_blank_tail: bool = False) -> list[str]:
    """Read monolingual sentences, one a line (e.g. the input of ``seqlab translate``).

    Lines are stripped of surrounding whitespace; a blank line inside the file is kept as ``""``
    so that outputs stay aligned with inputs, and blank lines at the end are dropped unless
    ``keep_blank_tail`` (``seqlab translate`` keeps them: one output line per input line).

    Raises:
        DataError: the file is missing or has no lines, or a line is not UTF-8 (naming the line
            and the byte offset).
    """
    path = str(path)
    problems = _Problems(path, "raise")
    lines = [text.strip() for _, text in _text_lines(path, problems, keep_blank_tail=keep_blank_tail)]
    if not lines:
        raise DataError(path, None, "no lines found; expected one sentence a line")
    return lines
