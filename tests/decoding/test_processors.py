import pytest
import torch

from seqlab.decoding.processors import (
    block_ngram_repeats,
    build_processor,
    min_length_mask,
    repetition_penalty,
)
from seqlab.text.specials import EOS, PAD, SOS


def test_repetition_penalty_divides_positive_and_multiplies_negative_logits_of_seen_tokens():
    logits = torch.tensor([[0.5, 0.5, 1.0, 2.0, -1.0, 3.0]])
    history = torch.tensor([[3, 4, 3, PAD]])
    out = repetition_penalty(logits, history, 2.0)
    expected = torch.tensor([[0.5, 0.5, 1.0, 1.0, -2.0, 3.0]])  # <pad> in the history is not "seen"
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(repetition_penalty(logits, history, 1.0), logits)
    with pytest.raises(ValueError, match="repetition_penalty must be > 0"):
        repetition_penalty(logits, history, 0.0)


def test_no_repeat_ngram_bans_exactly_the_tokens_that_complete_a_seen_ngram():
    logits = torch.zeros(2, 8)
    history = torch.tensor([[4, 5, 6, 4, 5, 7, 4], [4, 5, PAD, PAD, PAD, PAD, PAD]])
    out = block_ngram_repeats(logits, history, 2)
    # row 0 ends with 4; bigrams starting with 4 were (4, 5) twice: only 5 is banned
    assert torch.isinf(out[0]).nonzero().flatten().tolist() == [5]
    # row 1 (4, 5) ends with 5; no bigram starts with 5 yet
    assert not torch.isinf(out[1]).any()
    # trigrams: row 0 ends with (7, 4), which never started a trigram before
    assert not torch.isinf(block_ngram_repeats(logits, history, 3)[0]).any()
    assert torch.isinf(block_ngram_repeats(logits, history, 1)[0]).nonzero().flatten().tolist() == [4, 5, 6, 7]


def test_min_length_blocks_eos_only_while_too_few_tokens_are_out():
    logits = torch.zeros(1, 6)
    assert torch.isinf(min_length_mask(logits, torch.zeros(1, 2, dtype=torch.long), 3)[0, EOS])
    assert not torch.isinf(min_length_mask(logits, torch.zeros(1, 3, dtype=torch.long), 3)).any()


def test_build_processor_masks_specials_and_composes_in_order():
    logits = torch.tensor([[5.0, 5.0, 2.0, 1.0, 4.0, -1.0]])
    history = torch.tensor([[4]])
    out = build_processor(repetition=2.0, min_length=2)(logits, history)
    assert out[0, PAD] == out[0, SOS] == out[0, EOS] == float("-inf")
    assert out[0, 4] == 2.0 and out[0, 5] == -1.0
    assert build_processor()(logits, history)[0, 4] == 4.0


def _banned_by_python(row: list[int], n: int) -> set[int]:
    """The tokens that complete a seen n-gram, by listing the row's n-grams (it ends at <pad>)."""
    if PAD in row:
        row = row[: row.index(PAD)]
    if len(row) < n - 1:
        return set()
    prefix = tuple(row[len(row) - n + 1:]) if n > 1 else ()
    return {row[i + n - 1] for i in range(len(row) - n + 1) if tuple(row[i:i + n - 1]) == prefix}


@pytest.mark.parametrize("n", [1, 2, 3])
def test_no_repeat_ngram_on_the_device_equals_listing_the_ngrams(n):
    g = torch.Generator().manual_seed(n)
    history = torch.randint(4, 7, (40, 9), generator=g)  # three tokens: many repeats
    ends = torch.randint(0, 10, (40,), generator=g)
    history = history.masked_fill(torch.arange(9) >= ends[:, None], PAD)  # rows of 0 to 9 tokens
    for width in range(10):
        out = block_ngram_repeats(torch.zeros(40, 8), history[:, :width], n)
        for b in range(40):
            banned = set(torch.isinf(out[b]).nonzero().flatten().tolist())
            assert banned == _banned_by_python(history[b, :width].tolist(), n), (b, width)
