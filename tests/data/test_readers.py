import json
import warnings

import pytest

from seqlab.data.readers import DataWarning, read_lines, read_parallel
from seqlab.data.synthetic import builtin_split
from seqlab.errors import DataError

PAIRS = [("Hello.", "Olá."), ("The red cars.", "Os carros vermelhos."), ("São Paulo is big.", "São Paulo é grande.")]


def write(path, content):
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return str(path)


def test_tsv_jsonl_and_two_files_agree(tmp_path):
    # Anki/Tatoeba style: an attribution column, Windows line ends, a BOM and trailing blank lines.
    tsv = write(tmp_path / "c.tsv", "\ufeff" + "".join(f"{s}\t{t}\tCC-BY #1\r\n" for s, t in PAIRS) + "\n\n")
    jsonl = write(tmp_path / "c.jsonl", "".join(json.dumps({"src": s, "tgt": t}) + "\n" for s, t in PAIRS))
    src = write(tmp_path / "c.en", "".join(s + "\n" for s, _ in PAIRS))
    tgt = write(tmp_path / "c.pt", "".join(t + "\r\n" for _, t in PAIRS))
    assert read_parallel(tsv) == PAIRS
    assert read_parallel(jsonl) == PAIRS
    assert read_parallel([src, tgt]) == PAIRS
    assert read_parallel(tsv, format="tsv") == read_parallel([src, tgt], format="text")


def test_reverse_swaps_sides(tmp_path):
    tsv = write(tmp_path / "c.tsv", "".join(f"{s}\t{t}\n" for s, t in PAIRS))
    assert read_parallel(tsv, reverse=True) == [(t, s) for s, t in PAIRS]


def test_builtin_corpora():
    assert read_parallel("builtin:synthetic-en-pt-dev") == builtin_split("dev")
    assert read_parallel("builtin:synthetic-en-pt-test", reverse=True)[0] == builtin_split("test")[0][::-1]
    with pytest.raises(DataError, match="unknown built-in corpus.*builtin:synthetic-en-pt-dev"):
        read_parallel("builtin:nope")


@pytest.mark.parametrize("name, content, line, message", [
    ("a.tsv", "a\tb\nno tab here\nc\td\n", 2, "no tab found; expected 'source<TAB>target'"),
    ("a.tsv", "a\tb\n\tonly target\n", 2, "empty source (column 1)"),
    ("a.tsv", "a\tb\nonly source\t  \n", 2, "empty target (column 2)"),
    ("a.tsv", "a\tb\n\nc\td\n", 2, "blank line"),
    ("a.tsv", b"a\tb\nc\t\xffd\n", 2, "invalid UTF-8 byte 0xff at byte offset 2 of the line (offset 6 in the file)"),
    ("a.jsonl", '{"src": "a", "tgt": "b"}\n{"src": "a",\n', 2, "invalid JSON"),
    ("a.jsonl", '{"src": "a"}\n', 1, "missing key 'tgt'"),
    ("a.jsonl", '["a", "b"]\n', 1, "found a JSON list"),
])
def test_malformed_line_names_file_and_line(tmp_path, name, content, line, message):
    path = write(tmp_path / name, content)
    with pytest.raises(DataError) as info:
        read_parallel(path)
    assert info.value.path == path and info.value.line == line
    assert str(info.value).startswith(f"{path}:{line}: ")
    assert message in str(info.value)


def test_whole_file_problems(tmp_path):
    with pytest.raises(DataError, match="missing.tsv: file not found"):
        read_parallel(str(tmp_path / "missing.tsv"))
    empty = write(tmp_path / "empty.tsv", "\n\n")
    with pytest.raises(DataError, match="empty.tsv: no sentence pairs found") as info:
        read_parallel(empty)
    assert info.value.line is None


def test_two_files_of_different_lengths_name_both(tmp_path):
    src = write(tmp_path / "a.en", "one\ntwo\nthree\n")
    tgt = write(tmp_path / "a.pt", "um\ndois\n")
    with pytest.raises(DataError) as info:
        read_parallel([src, tgt], on_error="skip")  # a whole-file problem raises even in skip mode
    assert str(info.value) == (f"{src}: has 3 lines but {tgt} has 2; "
                               "expected two aligned files with one sentence per line")


def test_two_files_empty_line_names_the_file_with_it(tmp_path):
    src = write(tmp_path / "a.en", "one\ntwo\nthree\n")
    tgt = write(tmp_path / "a.pt", "um\n \ntrês\n")
    with pytest.raises(DataError) as info:
        read_parallel([src, tgt])
    assert (info.value.path, info.value.line) == (tgt, 2)
    assert f"aligned with line 2 of {src}" in str(info.value)


def test_skip_mode_drops_bad_lines_and_warns_once(tmp_path):
    content = b"a\tb\nbad\nc\td\n\t\n\xff\tx\ne\tf\n"
    path = write(tmp_path / "a.tsv", content)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pairs = read_parallel(path, on_error="skip")
    assert pairs == [("a", "b"), ("c", "d"), ("e", "f")]
    assert len(caught) == 1 and caught[0].category is DataWarning
    assert str(caught[0].message) == f"{path}: skipped 3 malformed line(s) (lines 2, 4, 5)"


def test_skip_mode_raises_when_nothing_is_left(tmp_path):
    path = write(tmp_path / "a.tsv", "bad\nworse\n")
    with pytest.raises(DataError, match=r"no sentence pairs found \(2 malformed lines were skipped\)"):
        read_parallel(path, on_error="skip")


def test_text_format_needs_two_files(tmp_path):
    path = write(tmp_path / "a.txt", "x\n")
    with pytest.raises(DataError, match="expects a list of two files"):
        read_parallel(path, format="text")


def test_read_lines_keeps_inner_blank_lines_and_reports_bad_bytes(tmp_path):
    path = write(tmp_path / "in.txt", "  first \r\n\nthird\n\n\n")
    assert read_lines(path) == ["first", "", "third"]
    bad = write(tmp_path / "bad.txt", b"ok\nalso ok\n\xc3(\n")
    with pytest.raises(DataError) as info:
        read_lines(bad)
    assert (info.value.line, "byte offset 0 of the line (offset 11 in the file)" in str(info.value)) == (3, True)
    with pytest.raises(DataError, match="no lines found"):
        read_lines(write(tmp_path / "empty.txt", ""))


def test_read_lines_can_keep_blank_lines_at_the_end(tmp_path):
    path = tmp_path / "tail.txt"
    path.write_bytes(b"first\r\n\nthird\n\n \n")
    assert read_lines(path) == ["first", "", "third"]
    assert read_lines(path, keep_blank_tail=True) == ["first", "", "third", "", ""]
    no_newline = tmp_path / "no_newline.txt"
    no_newline.write_bytes(b"one\ntwo")
    assert read_lines(no_newline, keep_blank_tail=True) == ["one", "two"]
