"""word2vec text files: parsing, errors that name the line, and embedding initialisation."""

import pytest
import torch
from torch import nn

from seqlab.config import RecurrentConfig
from seqlab.errors import ConfigError, DataError
from seqlab.models.recurrent import build_recurrent
from seqlab.nn.embeddings import init_embedding_from, load_word2vec_text

VOCAB = ["<pad>", "<sos>", "<eos>", "<unk>", "the", "cat", "sat", "mat"]


def _write(tmp_path, text, name="vectors.txt"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_load_with_header_and_without(tmp_path):
    with_header = _write(tmp_path, "2 3\nthe 0.1 0.2 0.3\ncat -1 0 1.5\n", "a.txt")
    glove = _write(tmp_path, "the 0.1 0.2 0.3\ncat -1 0 1.5\n\n", "b.txt")
    for path in (with_header, glove):
        vectors = load_word2vec_text(path)
        assert sorted(vectors) == ["cat", "the"]
        assert torch.equal(vectors["cat"], torch.tensor([-1.0, 0.0, 1.5]))


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("2 3\nthe 0.1 0.2 0.3\ncat 0.1 0.2\n", 3, "expected a word followed by 3 numbers, got 2"),
        ("the 0.1 0.2\ncat 0.1 0.2\nsat 0.1 zero\n", 3, "expected 2 numbers"),
        ("3 2\nthe 0.1 0.2\ncat 0.1 0.2\n", 1, "header announces 3 vectors but the file has 2"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path, text, line, message):
    path = _write(tmp_path, text)
    with pytest.raises(DataError, match=message) as err:
        load_word2vec_text(path)
    assert err.value.line == line
    assert str(err.value).startswith(f"{path}:{line}: ")


def test_init_embedding_sets_the_right_rows(tmp_path):
    path = _write(tmp_path, "3 2\ncat 1 2\nmat 3 4\ndog 5 6\n")
    torch.manual_seed(0)
    embedding = nn.Embedding(len(VOCAB), 2, padding_idx=0)
    before = embedding.weight.detach().clone()
    n = init_embedding_from(embedding, VOCAB, load_word2vec_text(path))
    assert n == 2
    after = embedding.weight.detach()
    assert torch.equal(after[5], torch.tensor([1.0, 2.0])) and torch.equal(after[7], torch.tensor([3.0, 4.0]))
    untouched = [0, 1, 2, 3, 4, 6]
    assert torch.equal(after[untouched], before[untouched])


def test_dimension_mismatch_is_a_clear_error(tmp_path):
    embedding = nn.Embedding(len(VOCAB), 4)
    with pytest.raises(ConfigError, match="dimension 2 but the embedding has 4"):
        init_embedding_from(embedding, VOCAB, {"cat": torch.ones(2)})


def test_builder_applies_embeddings_from(tmp_path):
    path = _write(tmp_path, "cat 1 2 3 4\nsat 5 6 7 8\n")
    cfg = RecurrentConfig(embedding=4, hidden=6, layers=1, embeddings_from=str(path))
    model = build_recurrent(cfg, len(VOCAB), len(VOCAB), src_vocab=VOCAB)
    for embedding in (model.encoder.embedding, model.tgt_embedding):
        assert torch.equal(embedding.weight[6].detach(), torch.tensor([5.0, 6.0, 7.0, 8.0]))
    with pytest.raises(ConfigError, match="model.embeddings_from"):
        build_recurrent(cfg, len(VOCAB), len(VOCAB))


def test_save_and_load_round_trip_through_gensim(tmp_path):
    gensim_models = pytest.importorskip("gensim.models", reason="gensim is in the test extra")
    from seqlab.nn.embeddings import save_word2vec_text

    torch.manual_seed(0)
    words = ["deixa", "o", "piá", "jogar", "o'er"]
    vectors = torch.randn(5, 3)
    path = tmp_path / "vectors.txt"
    save_word2vec_text(path, words, vectors)
    ours = load_word2vec_text(path)
    assert list(ours) == words
    assert torch.equal(torch.stack(list(ours.values())), vectors)  # 9 digits: float32 exactly
    kv = gensim_models.KeyedVectors.load_word2vec_format(str(path))
    assert list(kv.index_to_key) == words
    assert torch.equal(torch.from_numpy(kv.vectors), vectors)
    again = tmp_path / "again.txt"
    kv.save_word2vec_format(str(again))  # and what gensim writes, we read
    assert torch.equal(torch.stack(list(load_word2vec_text(again).values())), vectors)


def test_save_refuses_words_the_format_cannot_hold(tmp_path):
    from seqlab.nn.embeddings import save_word2vec_text

    with pytest.raises(ValueError, match="whitespace"):
        save_word2vec_text(tmp_path / "v.txt", ["two words"], torch.zeros(1, 2))


def test_transformer_builder_applies_embeddings_from(tmp_path):
    from seqlab.config import TransformerConfig
    from seqlab.models.build import build_model

    path = _write(tmp_path, "cat 1 2 3 4\nsat 5 6 7 8\n")
    cfg = TransformerConfig(layers=1, d_model=4, heads=2, ffn=8, embeddings_from=str(path))
    model = build_model(cfg, len(VOCAB), len(VOCAB), src_vocab=VOCAB)
    for embed in (model.encoder.embed, model.tgt_embed):
        assert torch.equal(embed.embedding.weight[6].detach(), torch.tensor([5.0, 6.0, 7.0, 8.0]))
    assert torch.equal(model.generator.weight[5].detach(), torch.tensor([1.0, 2.0, 3.0, 4.0]))  # tied output
    with pytest.raises(ConfigError, match="model.embeddings_from"):
        build_model(cfg, len(VOCAB), len(VOCAB))
