import json

import pytest

from seqlab.config import TokenizerConfig
from seqlab.errors import CheckpointError
from seqlab.text.pair import TOKENIZER_FILE, TokenizerPair
from seqlab.text.tokenizer import CharTokenizer, WordTokenizer

PAIRS = [
    ("The cat sleeps.", "O gato dorme."),
    ("The dog runs.", "O cão corre."),
    ("Where is the station?", "Onde fica a estação?"),
    ("I am in Chile.", "Estou no Chile."),
] * 3


def test_joint_shares_one_tokenizer_trained_on_both_sides():
    pair = TokenizerPair.train(PAIRS, TokenizerConfig(kind="word", vocab_size=100, min_frequency=1))
    assert pair.joint and pair.src is pair.tgt
    assert "gato" in pair.src.vocab and "cat" in pair.src.vocab


def test_separate_vocabularies():
    pair = TokenizerPair.train(PAIRS, TokenizerConfig(kind="word", vocab_size=100, min_frequency=1, joint=False))
    assert not pair.joint
    assert "cat" in pair.src.vocab and "cat" not in pair.tgt.vocab
    assert "gato" in pair.tgt.vocab and "gato" not in pair.src.vocab


def test_encode_pairs_matches_per_side_encode():
    pair = TokenizerPair.train(PAIRS, TokenizerConfig(kind="bpe", vocab_size=80, min_frequency=2, joint=False))
    encoded = pair.encode_pairs(PAIRS[:4])
    assert encoded == [(pair.src.encode(s), pair.tgt.encode(t)) for s, t in PAIRS[:4]]
    assert [pair.tgt.decode(t) for _, t in encoded] == [t for _, t in PAIRS[:4]]


@pytest.mark.parametrize("joint", [True, False])
def test_save_load(tmp_path, joint):
    cfg = TokenizerConfig(kind="bpe", vocab_size=80, min_frequency=2, joint=joint)
    pair = TokenizerPair.train(PAIRS, cfg)
    path = pair.save(tmp_path)
    assert path == tmp_path / TOKENIZER_FILE
    data = json.loads(path.read_text(encoding="utf-8"))
    assert set(data) == {"joint", "src", "tgt"} and data["joint"] is joint
    loaded = TokenizerPair.load(tmp_path)
    assert loaded.joint is joint and (loaded.src is loaded.tgt) is joint
    assert loaded.encode_pairs(PAIRS) == pair.encode_pairs(PAIRS)


def test_mixed_kinds_round_trip(tmp_path):
    pair = TokenizerPair(WordTokenizer.train(["a b"], vocab_size=10), CharTokenizer.train(["xy"], vocab_size=10))
    pair.save(tmp_path)
    loaded = TokenizerPair.load(tmp_path)
    assert (loaded.src.kind, loaded.tgt.kind) == ("word", "char")
    assert loaded.encode_pairs([("a b", "yx")]) == [([4, 5], [5, 4])]


def test_load_errors_name_the_file(tmp_path):
    path = tmp_path / TOKENIZER_FILE
    with pytest.raises(CheckpointError, match=f"{path}: file not found"):
        TokenizerPair.load(tmp_path)
    path.write_text('{"src": {}}', encoding="utf-8")
    with pytest.raises(CheckpointError, match=f'{path}: expected a JSON object with keys "joint"'):
        TokenizerPair.load(tmp_path)
    path.write_text('{"joint": true, "src": {"kind": "word", "vocab": 3}, "tgt": null}', encoding="utf-8")
    with pytest.raises(CheckpointError, match=f"{path}: malformed 'word' tokenizer"):
        TokenizerPair.load(tmp_path)
