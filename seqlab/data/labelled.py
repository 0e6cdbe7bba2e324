"""Labelled text for classification: CSV/TSV files with a header, and the built-in sentiment task.

A file has a header line naming its columns; the config names the text column and the label
column (``data.text_column``, ``data.label_column``). The delimiter follows the extension
(``.tsv``/``.tab``: tab, ``.csv``: comma) unless given. CSV fields may be quoted (RFC 4180, via
:mod:`csv`); TSV fields are taken literally (a ``"`` is an ordinary character), as in most TSV
exports.

Labels are either strings (``label_column`` holds class names: each distinct name in the training
data is a class, in sorted order, saved with the run as a :class:`LabelSet`), or numeric scores
turned into two classes by a threshold: score > threshold is ``positive``, otherwise ``negative``.

Every problem is a :class:`~seqlab.errors.DataError` naming the file and the 1-based line (the
header is line 1): a missing column (naming the header found), a row with too few fields, an empty
text or label, a score that is not a number, a label of dev/test data not seen in training, bytes
that are not UTF-8; and the file for an empty file or one with no rows after the header.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from seqlab.data.readers import read_bytes
from seqlab.data.synthetic_sentiment import LABELS as SENTIMENT_LABELS
from seqlab.data.synthetic_sentiment import builtin_sentiment_split
from seqlab.errors import CheckpointError, DataError

__all__ = ["BUILTIN_LABELLED", "LABELS_FILE", "LabelSet", "LabelledData", "read_labelled"]

BUILTIN_LABELLED = {
    "builtin:synthetic-sentiment": "train",
    "builtin:synthetic-sentiment-dev": "dev",
    "builtin:synthetic-sentiment-test": "test",
}
"""Built-in labelled data accepted wherever a data path is, and the split each names."""

LABELS_FILE = "labels.json"
THRESHOLD_LABELS = ("negative", "positive")
"""Class names of a thresholded score: score <= threshold, score > threshold."""

_DELIMITERS = {".tsv": "\t", ".tab": "\t", ".csv": ","}


@dataclass
class LabelledData:
    """Texts and their labels (class names), with the line each came from.

    Attributes:
        source: the file (or built-in name) read.
        texts, labels: one entry a row.
        lines: the 1-based line of each row in ``source`` (for error messages).
        scores: the numeric score of each row when the labels come from a threshold, else None.
    """

    source: str
    texts: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    scores: list[float] | None = None

    def __len__(self) -> int:
        return len(self.texts)


def _delimiter(path: str, delimiter: str | None) -> str:
    if delimiter is not None:
        return delimiter
    suffix = Path(path).suffix.lower()
    if suffix not in _DELIMITERS:
        raise DataError(path, None, f"cannot tell the delimiter from the extension {suffix!r}; name the file "
                                    ".tsv or .csv, or set data.delimiter")
    return _DELIMITERS[suffix]


def _read_text(path: str) -> str:
    """The file as text, with a UTF-8 byte-order mark removed; errors name the line of a bad byte."""
    data = read_bytes(path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
        at = e.start + bom
        line = data[:at].count(b"\n") + 1
        raise DataError(path, line, f"invalid UTF-8 byte 0x{data[at:at + 1].hex()} at byte offset {at} of the "
                                    "file; expected UTF-8 text") from None
    if not text.strip():
        raise DataError(path, None, "empty file; expected a header line naming the columns, then one row a line")
    return text


def _column(header: list[str], name: str, key: str, path: str) -> int:
    names = [h.strip() for h in header]
    if name not in names:
        found = ", ".join(repr(h) for h in names)
        raise DataError(path, 1, f"no column {name!r} (data.{key}); the header has: {found}")
    return names.index(name)


def _score(raw: str, path: str, line: int) -> float:
    try:
        score = float(raw)
    except ValueError:
        score = math.nan
    if math.isnan(score):
        raise DataError(path, line, f"score {raw!r} is not a number; data.threshold expects numeric scores")
    return score


def _read_file(path: str, *, text_column: str, label_column: str, delimiter: str | None,
               threshold: float | None) -> LabelledData:
    sep = _delimiter(path, delimiter)
    quoting = csv.QUOTE_NONE if sep == "\t" else csv.QUOTE_MINIMAL
    reader = csv.reader(io.StringIO(_read_text(path), newline=""), delimiter=sep, quoting=quoting)
    try:
        header = next(reader)
        text_i = _column(header, text_column, "text_column", path)
        label_i = _column(header, label_column, "label_column", path)
        data = LabelledData(path, scores=None if threshold is None else [])
        need = max(text_i, label_i) + 1
        start = reader.line_num + 1
        for row in reader:
            line, start = start, reader.line_num + 1
            if not any(cell.strip() for cell in row):
                continue  # blank lines carry no example
            if len(row) < need:
                raise DataError(path, line, f"{len(row)} field(s), expected at least {need} (columns "
                                            f"{', '.join(h.strip() for h in header)})")
            text, label = row[text_i].strip(), row[label_i].strip()
            if not text:
                raise DataError(path, line, f"empty text in column {text_column!r}")
            if not label:
                raise DataError(path, line, f"empty label in column {label_column!r}")
            data.texts.append(text)
            if threshold is None:
                data.labels.append(label)
            else:
                score = _score(label, path, line)
                data.scores.append(score)
                data.labels.append(THRESHOLD_LABELS[score > threshold])
            data.lines.append(line)
    except csv.Error as e:
        raise DataError(path, reader.line_num, f"malformed {'TSV' if sep == chr(9) else 'CSV'}: {e}") from None
    if not data.texts:
        raise DataError(path, None, "no rows after the header")
    return data


def read_labelled(spec: str | os.PathLike, *, text_column: str = "text", label_column: str = "label",
                  delimiter: str | None = None, threshold: float | None = None) -> LabelledData:
    """Read texts and labels from a CSV/TSV file with a header, or a built-in task.

    Args:
        spec: a ``.csv``/``.tsv`` path, or a name from :data:`BUILTIN_LABELLED`.
        text_column, label_column: the header names of the two columns used (others are ignored).
        delimiter: the field separator; ``None`` follows the extension.
        threshold: turn the label column, read as numbers, into ``negative`` (score <= threshold)
            and ``positive`` (score > threshold); ``None`` keeps the labels as class names.

    Returns:
        The rows as :class:`LabelledData` (with the ``scores`` when ``threshold`` is given).

    Raises:
        DataError: naming the file and line; see the module docstring for the cases.
    """
    spec = str(spec)
    if spec.startswith("builtin:"):
        if spec not in BUILTIN_LABELLED:
            raise DataError(spec, None, f"unknown built-in data set; expected one of {', '.join(BUILTIN_LABELLED)}")
        rows = builtin_sentiment_split(BUILTIN_LABELLED[spec])
        return LabelledData(spec, [t for t, _ in rows], [lab for _, lab in rows], list(range(1, len(rows) + 1)))
    return _read_file(spec, text_column=text_column, label_column=label_column, delimiter=delimiter,
                      threshold=threshold)


class LabelSet:
    """The classes of a task: class name <-> id, fixed when training starts and saved with the run.

    Args:
        names: the class names; id i is ``names[i]``.
    """

    def __init__(self, names: list[str]):
        if len(names) < 2:
            raise ValueError(f"a classifier needs at least two classes, got {names}")
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate class names in {names}")
        self.names = list(names)
        self._ids = {n: i for i, n in enumerate(self.names)}

    def __len__(self) -> int:
        return len(self.names)

    @classmethod
    def from_data(cls, data: LabelledData, *, thresholded: bool = False) -> LabelSet:
        """The sorted distinct labels of ``data`` (the training set); both classes when ``thresholded``.

        Raises:
            DataError: the data holds a single class.
        """
        if thresholded or data.source in BUILTIN_LABELLED:
            return cls(list(THRESHOLD_LABELS if thresholded else SENTIMENT_LABELS))
        names = sorted(set(data.labels))
        if len(names) < 2:
            raise DataError(data.source, None, f"every row has the label {names[0]!r}; a classifier needs at "
                                               "least two classes")
        return cls(names)

    def encode(self, data: LabelledData) -> list[int]:
        """The class id of every row of ``data``.

        Raises:
            DataError: naming the file and line of a label that is not one of the classes.
        """
        ids = []
        for label, line in zip(data.labels, data.lines):
            if label not in self._ids:
                raise DataError(data.source, line, f"label {label!r} was not seen in the training data; "
                                                   f"known labels: {', '.join(self.names)}")
            ids.append(self._ids[label])
        return ids

    def save(self, run_dir: str | Path) -> Path:
        """Write ``run_dir/labels.json`` (atomically) and return its path."""
        from seqlab.training.checkpoint import atomic_write_text

        path = Path(run_dir) / LABELS_FILE
        atomic_write_text(path, json.dumps({"labels": self.names}, ensure_ascii=False))
        return path

    @classmethod
    def load(cls, run_dir: str | Path) -> LabelSet:
        """Read ``run_dir/labels.json``. Raises CheckpointError naming the file when missing or malformed."""
        path = Path(run_dir) / LABELS_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls([str(n) for n in data["labels"]])
        except FileNotFoundError:
            raise CheckpointError(f"{path}: missing; a classification run keeps its class names there") from None
        except (ValueError, KeyError, TypeError) as e:
            raise CheckpointError(f"{path}: malformed ({e}); expected {{\"labels\": [names...]}}") from None
