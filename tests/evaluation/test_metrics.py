import math

import pytest
import torch
from evaluation_toys import CopyToy

from seqlab.evaluation.metrics import bleu, chrf, perplexity, teacher_forced_nll, translate_batch
from seqlab.text.specials import EOS, SOS


def test_identical_corpus_scores_100():
    text = ["The cat sat on the mat.", "A dog barked loudly at night."]
    assert bleu(text, text) == pytest.approx(100.0)
    assert chrf(text, text) == pytest.approx(100.0)


def test_empty_hypotheses_score_0():
    refs = ["The cat sat on the mat.", "A dog barked."]
    assert bleu(["", ""], refs) == 0.0
    assert chrf(["", ""], refs) == 0.0


def test_mismatched_or_misshapen_inputs_raise():
    with pytest.raises(ValueError, match="bleu: 2 hypotheses but 3 references"):
        bleu(["a", "b"], ["a", "b", "c"])
    with pytest.raises(ValueError, match=r"chrf\(hyps, refs\) expects two lists of strings.*refs"):
        chrf(["a b"], [["a b"]])  # sacrebleu's list-of-reference-streams convention
    with pytest.raises(ValueError, match="bleu: no sentences"):
        bleu([], [])


def test_perplexity_is_exp_of_mean_nll():
    assert perplexity(10 * math.log(4.0), 10) == pytest.approx(4.0)
    assert perplexity(1e6, 1) == math.inf
    with pytest.raises(ValueError, match="n_tokens=0"):
        perplexity(1.0, 0)


SOURCES = [[4, 5, 6], [7], [8, 9, 10, 11, 4], [], [5, 5], [6, 7, 8, 9]]


@pytest.mark.parametrize("beam", [1, 3])
def test_the_former_translate_batch_keywords_still_decode_in_input_order(beam):
    """The keyword form kept in metrics (beam search; greedy for beam 1) for callers written before settings."""
    model = CopyToy()
    model.train()
    out = translate_batch(
        model,
        SOURCES,
        beam=beam,
        length_penalty=0.6,
        max_len_ratio=1.0,
        max_len_offset=2,
        batch_size=2,
        return_attention=True,
    )
    assert out.tokens == SOURCES
    assert model.training  # the previous mode is restored
    for src, attention in zip(SOURCES, out.attention):
        expected = torch.eye(len(src) + 1, len(src)) if src else torch.zeros(0, 0)
        expected[len(src) :, len(src) - 1 :] = 1.0  # the <eos> step looks at the last token
        torch.testing.assert_close(attention, expected)


def test_translate_batch_length_limit_and_nbest():
    out = translate_batch(
        CopyToy(),
        SOURCES,
        beam=3,
        length_penalty=0.0,
        max_len_ratio=0.5,
        max_len_offset=0,
        batch_size=4,
        n_best=2,
    )
    assert out.tokens == [s[: math.ceil(len(s) / 2)] for s in SOURCES]
    assert [hyps[0][0] for hyps in out.nbest] == out.tokens
    assert all(len(hyps) == 2 for src, hyps in zip(SOURCES, out.nbest) if src)


def test_teacher_forced_nll_equals_a_manual_sum():
    model = CopyToy(seed=3)
    src_ids = [[4, 5, 6], [7], [8, 9, 10, 11]]
    tgt_ids = [[4, 6], [7, 7, 7], []]
    total, n_tokens = teacher_forced_nll(model, src_ids, tgt_ids, batch_size=2)
    expected = 0.0
    model.eval()  # teacher_forced_nll runs in eval mode
    for src, tgt in zip(src_ids, tgt_ids):
        state = model.encode(torch.tensor([src]))
        for y_prev, y in zip([SOS] + tgt, tgt + [EOS]):
            logits, state = model.decode_step(state, torch.tensor([y_prev]))
            expected -= float(torch.log_softmax(logits[0].detach(), dim=-1)[y])
    assert n_tokens == 3 + 4 + 1
    assert total == pytest.approx(expected, rel=1e-5)


def test_teacher_forced_nll_rejects_misaligned_or_empty_input():
    with pytest.raises(ValueError, match="2 source sentences but 1 target sentences"):
        teacher_forced_nll(CopyToy(), [[4], [5]], [[4]])
    with pytest.raises(ValueError, match="source sentence 1 is empty"):
        teacher_forced_nll(CopyToy(), [[4], []], [[4], [5]])
