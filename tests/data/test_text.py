"""Plain text for language models: clear errors for bad files; windows that resume and cover the text."""

import pytest
import torch

from seqlab.data.text import BlockBatcher, read_text
from seqlab.errors import DataError


def test_a_file_that_is_not_utf8_is_named_with_its_line(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("first line\nsecond line\nS\xe3o Paulo\n".encode("latin-1"))
    with pytest.raises(DataError, match=rf"{path}:3: invalid UTF-8 byte 0xe3"):
        read_text(str(path))


@pytest.mark.parametrize("content", ["", "\n\n  \n"], ids=["empty", "blank lines"])
def test_a_file_without_text_is_named(tmp_path, content):
    path = tmp_path / "empty.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=rf"{path}: the file is empty"):
        read_text(str(path))


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(DataError, match="nope.txt: file not found"):
        read_text(str(tmp_path / "nope.txt"))


def test_lines_keep_their_inner_spacing(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("  indented\n\nlast\r\n", encoding="utf-8")
    assert read_text(str(path)) == ["  indented", "", "last"]


def test_targets_are_the_inputs_shifted_by_one():
    ids = torch.arange(100, 150)
    _, _, batch = next(BlockBatcher(ids, block_size=8, rows=3, seed=0).iterate())
    assert batch.inputs.shape == batch.targets.shape == (3, 8)
    assert torch.equal(batch.targets[:, :-1], batch.inputs[:, 1:])
    assert torch.equal(batch.targets[:, -1], batch.inputs[:, -1] + 1)


@pytest.mark.parametrize("windows", ["random", "tiled"])
def test_iterating_from_a_position_gives_the_batches_of_an_uninterrupted_pass(windows):
    ids = torch.arange(4, 104)
    batcher = BlockBatcher(ids, block_size=5, rows=4, windows=windows, seed=3)
    it = batcher.iterate()
    straight = [next(it) for _ in range(2 * len(batcher) + 2)]
    epoch, pos, _ = straight[len(batcher) + 1]
    resumed = batcher.iterate(epoch, pos)
    for e, p, batch in straight[len(batcher) + 1:]:
        e2, p2, batch2 = next(resumed)
        assert (e, p) == (e2, p2)
        assert torch.equal(batch.inputs, batch2.inputs)
    assert not torch.equal(straight[0][2].inputs, straight[len(batcher)][2].inputs)  # a new epoch, a new order


def test_tiled_windows_make_every_token_a_target_once_an_epoch():
    ids = torch.arange(0, 41)  # 40 targets, 8 windows of 5
    batcher = BlockBatcher(ids, block_size=5, rows=4, windows="tiled", seed=1)
    it = batcher.iterate()
    targets = torch.cat([next(it)[2].targets.flatten() for _ in range(len(batcher))])
    assert sorted(targets.tolist()) == list(range(1, 41))


def test_a_text_shorter_than_one_window_is_an_error():
    with pytest.raises(DataError, match="train.txt: 4 tokens, fewer than data.block_size"):
        BlockBatcher(torch.arange(4), block_size=8, rows=1, source="train.txt")
