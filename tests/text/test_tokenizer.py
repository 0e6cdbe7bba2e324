import json
import unicodedata

import pytest

from seqlab.config import TokenizerConfig
from seqlab.errors import CheckpointError
from seqlab.text.specials import EOS, PAD, SOS, SPECIALS, UNK
from seqlab.text.tokenizer import (
    BPETokenizer,
    CharTokenizer,
    Tokenizer,
    WordTokenizer,
    detokenize_words,
    train_tokenizer,
)

CORPUS = [
    "Lucas está no Chile.",
    "A canção não é nova, mas é boa!",
    "Ela disse: \"olá\" (baixinho).",
    "The dog runs; the cat sleeps.",
    "Where is the station? It's near the bridge.",
    "A informação chegou à estação às três horas.",
    "Você não sabe? Eu também não!",
    "My brother's car is red, isn't it?",
] * 4

ROUND_TRIP = [
    "Lucas está no Chile.",
    "A canção não é nova, mas é boa!",
    "Ela disse: \"olá\" (baixinho).",
    "Where is the car? The cat sleeps near the station.",
    "Eu também não sabe à informação.",
]


@pytest.fixture(scope="module")
def bpe():
    return train_tokenizer(CORPUS, TokenizerConfig(kind="bpe", vocab_size=120, min_frequency=2))


@pytest.fixture(scope="module")
def char():
    return train_tokenizer(CORPUS, TokenizerConfig(kind="char", vocab_size=200, min_frequency=1))


@pytest.fixture(scope="module")
def word():
    return train_tokenizer(CORPUS, TokenizerConfig(kind="word", vocab_size=1000, min_frequency=1))


@pytest.mark.parametrize("name", ["bpe", "char"])
@pytest.mark.parametrize("text", ROUND_TRIP)
def test_round_trip(name, text, request):
    tok = request.getfixturevalue(name)
    ids = tok.encode(text)
    assert UNK not in ids
    assert tok.decode(ids) == text
    assert len(tok.tokens(text)) == len(ids)


@pytest.mark.parametrize("name", ["bpe", "word", "char"])
def test_specials_at_fixed_ids(name, request):
    tok = request.getfixturevalue(name)
    assert [tok.id_to_token(i) for i in range(4)] == SPECIALS == ["<pad>", "<sos>", "<eos>", "<unk>"]
    assert (PAD, SOS, EOS, UNK) == (0, 1, 2, 3)


def test_bpe_vocab_size_and_merges(bpe):
    assert bpe.vocab_size == 120
    big = BPETokenizer.train(CORPUS, vocab_size=1000, min_frequency=2)
    # frequent words become single pieces; punctuation is never merged into a word
    assert big.tokens("Lucas está no Chile.") == ["▁Lucas", "▁está", "▁no", "▁Chile", "."]
    assert big.tokens('disse: "olá"') == ["▁disse", ":", '▁"', "olá", '"']
    assert big.vocab_size < 1000  # merges ran out (min_frequency) before the size was reached


def test_nfc_normalisation(bpe, char):
    decomposed = unicodedata.normalize("NFD", "canção não")
    assert decomposed != "canção não"
    assert bpe.encode(decomposed) == bpe.encode("canção não")
    assert char.encode(decomposed) == char.encode("canção não")


def test_unknown_pieces_become_unk(bpe, char, word):
    a, b = char.encode("ab")
    assert char.encode("aΩb") == [a, UNK, b]
    assert bpe.tokens("aΩb") == ["▁", "a", "<unk>", "b"]
    assert bpe.encode("aΩb")[2] == UNK
    assert word.encode("Lucas Ωmega .") == [word.encode("Lucas")[0], UNK, word.encode(".")[0]]


def test_decode_drops_specials(bpe, char, word):
    for tok in (bpe, char, word):
        ids = tok.encode("Lucas está no Chile.")
        assert tok.decode([SOS, *ids, UNK, EOS, PAD, PAD]) == "Lucas está no Chile."


def test_word_tokens_and_ids(word):
    assert word.tokens("Lucas está no Chile.") == ["Lucas", "está", "no", "Chile", "."]
    assert word.tokens("It's my brother's guarda-chuva, isn't it?") == [
        "It's", "my", "brother's", "guarda-chuva", ",", "isn't", "it", "?",
    ]
    ids = word.encode("Lucas visitou Chile.")
    assert ids[1] == UNK and ids[0] == word.encode("Lucas")[0]


def test_word_vocab_by_frequency_min_frequency_and_size():
    texts = ["b a a", "c a b", "d"]
    tok = WordTokenizer.train(texts, vocab_size=6, min_frequency=2)
    assert tok.vocab == SPECIALS + ["a", "b"]  # c, d seen once
    tok = WordTokenizer.train(texts, vocab_size=5, min_frequency=1)
    assert tok.vocab == SPECIALS + ["a"]  # capped at 5 entries


def test_word_lowercase():
    tok = WordTokenizer.train(["The cat. the CAT"], vocab_size=10, min_frequency=1, lowercase=True)
    assert tok.vocab == SPECIALS + ["cat", "the", "."]
    assert tok.decode(tok.encode("The Cat.")) == "the cat."


@pytest.mark.parametrize(
    "words, text",
    [
        (["Lucas", "está", "no", "Chile", "."], "Lucas está no Chile."),
        (["Ela", "disse", ":", '"', "olá", '"', "(", "baixinho", ")", "."], 'Ela disse: "olá" (baixinho).'),
        (["¿", "Qué", "?", "Espera", ".", ".", ".", "sim", "!"], "¿Qué? Espera... sim!"),
        (["«", "Bom", "dia", "»", ",", "100", "%"], "«Bom dia», 100%"),
    ],
)
def test_detokenize_words(words, text):
    assert detokenize_words(words) == text


def test_word_round_trip(word):
    for text in ["Lucas está no Chile.", 'Ela disse: "olá" (baixinho).', "My brother's car is red, isn't it?"]:
        assert word.decode(word.encode(text)) == text


@pytest.mark.parametrize("name", ["bpe", "word", "char"])
def test_save_load_identical(name, request, tmp_path):
    tok = request.getfixturevalue(name)
    path = tmp_path / "sub" / "tok.json"
    tok.save(path)
    loaded = Tokenizer.load(path)
    assert type(loaded) is type(tok) and loaded.kind == name
    assert loaded.vocab_size == tok.vocab_size
    texts = ROUND_TRIP + ["Ω unseen ção"]
    assert loaded.encode_batch(texts) == tok.encode_batch(texts)
    assert [p.name for p in path.parent.iterdir()] == ["tok.json"]  # no temp file left behind


@pytest.mark.parametrize("name", ["bpe", "word", "char"])
def test_encode_batch_equals_encode(name, request):
    tok = request.getfixturevalue(name)
    assert tok.encode_batch(ROUND_TRIP) == [tok.encode(t) for t in ROUND_TRIP]


def test_load_corrupt_file_names_path(tmp_path):
    path = tmp_path / "tok.json"
    path.write_text('{"kind": "bpe", "hf": ', encoding="utf-8")
    with pytest.raises(CheckpointError, match=f"{path}.*not valid JSON.*tokenizer"):
        Tokenizer.load(path)


def test_load_wrong_content_names_path(tmp_path):
    path = tmp_path / "tok.json"
    path.write_text(json.dumps({"kind": "sentencepiece"}), encoding="utf-8")
    with pytest.raises(CheckpointError, match=f"{path}: unknown tokenizer kind 'sentencepiece'; expected"):
        Tokenizer.load(path)
    path.write_text(json.dumps({"kind": "bpe", "lowercase": False, "hf": "{}"}), encoding="utf-8")
    with pytest.raises(CheckpointError, match=f"{path}: malformed 'bpe' tokenizer"):
        Tokenizer.load(path)


def test_load_missing_file_names_path(tmp_path):
    path = tmp_path / "nope.json"
    with pytest.raises(CheckpointError, match=f"{path}: file not found"):
        Tokenizer.load(path)


def test_char_vocab_by_frequency():
    tok = CharTokenizer.train(["aab", "a c"], vocab_size=100, min_frequency=1)
    assert tok.vocab == SPECIALS + ["a", " ", "b", "c"]
    assert tok.tokens("ab c") == ["a", "b", " ", "c"]


def test_bpe_lowercase():
    tok = BPETokenizer.train(["Hello World", "hello world"], vocab_size=40, min_frequency=1, lowercase=True)
    assert tok.encode("HELLO") == tok.encode("hello")
    assert tok.decode(tok.encode("Hello World")) == "hello world"


@pytest.mark.parametrize("kind", ["bpe", "word", "char"])
def test_reserved_specials_get_ids_after_the_four_and_survive_saving(kind, tmp_path):
    cfg = TokenizerConfig(kind=kind, vocab_size=150, min_frequency=1, specials=["<sep>", "<bot>"])
    tok = train_tokenizer([s + " <sep> " + s for s in CORPUS], cfg)
    assert tok.specials == SPECIALS + ["<sep>", "<bot>"]
    assert (tok.special_id("<sep>"), tok.special_id("<bot>")) == (4, 5)
    a, b = "Lucas está no Chile.", "The dog runs; the cat sleeps."
    assert tok.encode(f"{a} <sep> {b}") == tok.encode(a) + [4] + tok.encode(b)
    assert tok.encode_batch([f"{a}<sep>{b}", a]) == [tok.encode(a) + [4] + tok.encode(b), tok.encode(a)]
    assert tok.tokens(f"{a} <sep> {b}")[len(tok.encode(a))] == "<sep>"
    assert "sep" not in tok.decode(tok.encode(f"{a} <sep> {b}"))  # decode drops every special
    assert 4 not in tok.encode("<se p>")
    tok.save(tmp_path / "t.json")
    again = Tokenizer.load(tmp_path / "t.json")
    assert again.specials == tok.specials and again.encode(f"{a} <sep> {b}") == tok.encode(f"{a} <sep> {b}")


@pytest.mark.parametrize("name", ["bpe", "char", "word"])
def test_a_tokenizer_file_without_reserved_specials_still_loads(name, request, tmp_path):
    tok = request.getfixturevalue(name)
    data = tok.to_dict()
    del data["reserved"]  # as written before reserved specials existed
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    old = Tokenizer.load(path)
    assert old.specials == SPECIALS and old.encode(CORPUS[0]) == tok.encode(CORPUS[0])


def test_bad_reserved_specials_are_config_errors():
    from seqlab.config import config_from_dict
    from seqlab.errors import ConfigError

    with pytest.raises(ConfigError, match="tokenizer.specials.*must look like <name>"):
        config_from_dict({"tokenizer": {"specials": ["sep"]}})
    with pytest.raises(ConfigError, match="tokenizer.specials.*already one of the fixed"):
        config_from_dict({"tokenizer": {"specials": ["<eos>"]}})
