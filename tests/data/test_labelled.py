"""Labelled CSV/TSV: columns by header name, thresholds, label sets, and errors naming file and line."""

import pytest

from seqlab.data.labelled import LabelledData, LabelSet, read_labelled
from seqlab.data.synthetic_sentiment import builtin_sentiment_split
from seqlab.errors import CheckpointError, DataError


def write(path, content):
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return str(path)


def test_tsv_and_csv_read_the_named_columns(tmp_path):
    tsv = write(tmp_path / "a.tsv", '\ufeffid\tlabel\ttext\r\n1\tpos\tA "quoted" film.\n\n2\tneg\tDull.\n')
    csv = write(tmp_path / "a.csv", 'text,label\n"Good, really.",pos\n"Two\nlines",neg\n')
    data = read_labelled(tsv)
    assert (data.texts, data.labels, data.lines) == (['A "quoted" film.', "Dull."], ["pos", "neg"], [2, 4])
    data = read_labelled(csv)
    assert (data.texts, data.labels, data.lines) == (["Good, really.", "Two\nlines"], ["pos", "neg"], [2, 3])
    other = write(tmp_path / "a.txt", "body|y\nfine|1\n")
    assert read_labelled(other, text_column="body", label_column="y", delimiter="|").labels == ["1"]


def test_threshold_turns_scores_into_two_classes(tmp_path):
    path = write(tmp_path / "s.tsv", "text\tscore\na\t-1.5\nb\t0\nc\t0.25\nd\t2e0\n")
    data = read_labelled(path, label_column="score", threshold=0.0)
    assert data.labels == ["negative", "negative", "positive", "positive"]
    assert read_labelled(path, label_column="score", threshold=0.3).labels == ["negative"] * 3 + ["positive"]
    assert LabelSet.from_data(data, thresholded=True).names == ["negative", "positive"]
    assert data.scores == [-1.5, 0.0, 0.25, 2.0]  # kept for soft targets
    assert read_labelled(path, label_column="score").scores is None  # class names: no scores


def test_label_set_maps_names_and_rejects_unseen_labels(tmp_path):
    train = read_labelled(write(tmp_path / "t.tsv", "text\tlabel\na\tsport\nb\tart\nc\tnews\n"))
    labels = LabelSet.from_data(train)
    assert labels.names == ["art", "news", "sport"]
    assert labels.encode(train) == [2, 0, 1]
    dev = read_labelled(write(tmp_path / "d.tsv", "text\tlabel\na\tart\nb\tweather\n"))
    with pytest.raises(DataError, match=r"d\.tsv:3: label 'weather' was not seen in the training data; "
                                        r"known labels: art, news, sport"):
        labels.encode(dev)
    labels.save(tmp_path)
    assert LabelSet.load(tmp_path).names == labels.names
    with pytest.raises(CheckpointError, match="labels.json: missing"):
        LabelSet.load(tmp_path / "elsewhere")
    single = LabelledData("x.tsv", ["a", "b"], ["one", "one"], [2, 3])
    with pytest.raises(DataError, match="x.tsv: every row has the label 'one'"):
        LabelSet.from_data(single)


@pytest.mark.parametrize("content, options, message", [
    ("txt\tlabel\na\tb\n", {}, r"f\.tsv:1: no column 'text' \(data.text_column\); the header has: 'txt', 'label'"),
    ("text\tscore\na\t1\n", {}, r"f\.tsv:1: no column 'label' \(data.label_column\); the header has: 'text', 'score'"),
    ("text\tlabel\na\tpos\n\tneg\n", {}, r"f\.tsv:3: empty text in column 'text'"),
    ("text\tlabel\na\tpos\nb\t \n", {}, r"f\.tsv:3: empty label in column 'label'"),
    ("text\tlabel\na\tpos\nb\n", {}, r"f\.tsv:3: 1 field\(s\), expected at least 2"),
    ("text\tlabel\na\t1\nb\tgood\n", {"threshold": 0.0}, r"f\.tsv:3: score 'good' is not a number"),
    ("text\tlabel\na\t1\nb\tnan\n", {"threshold": 0.0}, r"f\.tsv:3: score 'nan' is not a number"),
    ("", {}, r"f\.tsv: empty file"),
    ("\n \n", {}, r"f\.tsv: empty file"),
    ("text\tlabel\n", {}, r"f\.tsv: no rows after the header"),
    (b"text\tlabel\na\tpos\ncaf\xe9\tneg\n", {}, r"f\.tsv:3: invalid UTF-8 byte 0xe9"),
])
def test_bad_files_name_file_and_line(tmp_path, content, options, message):
    path = write(tmp_path / "f.tsv", content)
    with pytest.raises(DataError, match=message):
        read_labelled(path, **options)


def test_missing_file_and_unknown_extension(tmp_path):
    with pytest.raises(DataError, match="nope.tsv: file not found"):
        read_labelled(tmp_path / "nope.tsv")
    with pytest.raises(DataError, match=r"cannot tell the delimiter from the extension '\.txt'"):
        read_labelled(write(tmp_path / "a.txt", "text\tlabel\na\tb\n"))


def test_builtin_sentiment_splits_are_disjoint_and_balanced():
    train, dev, test = (builtin_sentiment_split(s) for s in ("train", "dev", "test"))
    assert (len(train), len(dev), len(test)) == (3000, 300, 300)
    texts = [t for t, _ in train + dev + test]
    assert len(set(texts)) == len(texts)
    share = sum(lab == "positive" for _, lab in train) / len(train)
    assert 0.4 < share < 0.6
    data = read_labelled("builtin:synthetic-sentiment-dev")
    assert list(zip(data.texts, data.labels)) == dev
    assert LabelSet.from_data(data).names == ["negative", "positive"]
    with pytest.raises(DataError, match="unknown built-in data set"):
        read_labelled("builtin:nope")


def test_builtin_sentiment_depends_on_word_order():
    # "A but B" takes B's polarity: the same words in the other order have the other label.
    train = builtin_sentiment_split("train")
    but = [(t, lab) for t, lab in train if " but " in t]
    assert but
    for text, label in but[:50]:
        first, second = text[:-2].split(" but ")
        assert "but" not in first + second
        assert (label == "positive") == (_polarity(second) > 0)
        assert _polarity(first) == -_polarity(second)


def _polarity(clause: str) -> int:
    from seqlab.data import synthetic_sentiment as g

    words = clause.split()
    positive = set(g._POSITIVE) | {p for p, _ in g._VERBS_POSITIVE} | {b for _, b in g._VERBS_POSITIVE}
    value = 1 if any(w in positive for w in words) else -1
    return -value if "not" in words else value
