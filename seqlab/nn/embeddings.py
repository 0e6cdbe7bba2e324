"""Word vectors in word2vec text format: read, write, and initialise embeddings from them.

The format (Mikolov et al. 2013, also written by gensim and fastText, and GloVe without the
header) is one word per line followed by its d numbers, separated by spaces::

    3 4                      <- optional header: number of vectors, dimension d
    the 0.1 -0.2 0.3 0.05
    cat 0.4 0.1 -0.7 0.2
    ...

:func:`load_word2vec_text` is the one reader (models initialise their embeddings through it, and
``seqlab embed`` reads exported files with it); :func:`save_word2vec_text` writes the format with
the header, which gensim's ``KeyedVectors.load_word2vec_format(path)`` reads
(``tests/nn/test_embeddings.py`` checks the round trip through gensim).

Rows whose token has a vector are overwritten; the others keep their initialisation. Tokens are
matched exactly, so subword vocabularies only find vectors for tokens spelled as whole words.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from seqlab.errors import ConfigError, DataError
from seqlab.io import atomic_write_text
from seqlab.text.specials import PAD

__all__ = ["init_embedding_from", "init_embeddings_from_file", "load_word2vec_text", "save_word2vec_text"]


def _is_header(fields: list[str]) -> bool:
    return len(fields) == 2 and all(f.isdigit() for f in fields)


def load_word2vec_text(path: str | Path) -> dict[str, Tensor]:
    """Read a word2vec text file into ``{word: vector (d,)}``.

    The dimension d comes from the header when there is one, else from the first vector line.
    Blank lines are skipped; when a word repeats, its first vector is kept.

    Args:
        path: UTF-8 text file.

    Returns:
        A dict from word to float32 tensor (d,).

    Raises:
        DataError: naming the file and line, for a line without exactly d numbers after the word,
            a value that is not a number, a header whose count disagrees with the file, a file
            that is not UTF-8, missing or without vectors.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(str(path), None, "word vector file not found")
    vectors: dict[str, Tensor] = {}
    dim: int | None = None
    announced: int | None = None
    count = 0
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataError(str(path), lineno, f"not UTF-8 text ({err.reason})") from None
            fields = line.split()
            if not fields:
                continue
            if lineno == 1 and _is_header(fields):
                announced, dim = int(fields[0]), int(fields[1])
                continue
            if dim is None:
                dim = len(fields) - 1
                if dim < 1:
                    raise DataError(str(path), lineno, "expected a word followed by its vector, got one field")
            if len(fields) != dim + 1:
                raise DataError(
                    str(path), lineno, f"expected a word followed by {dim} numbers, got {len(fields) - 1}"
                )
            try:
                values = [float(v) for v in fields[1:]]
            except ValueError as err:
                raise DataError(str(path), lineno, f"expected {dim} numbers after the word ({err})") from None
            count += 1
            vectors.setdefault(fields[0], torch.tensor(values, dtype=torch.float32))
    if announced is not None and announced != count:
        raise DataError(str(path), 1, f"header announces {announced} vectors but the file has {count}")
    if not vectors:
        raise DataError(str(path), None, "no word vectors found")
    return vectors


def save_word2vec_text(path: str | Path, words: Sequence[str], vectors: Tensor) -> None:
    """Write ``V d`` and then one ``word v_1 ... v_d`` line per word (UTF-8, atomically).

    Values are written with 9 significant digits, so float32 vectors read back exactly.

    Args:
        path: the file to write.
        words: V words, none empty or containing whitespace.
        vectors: (V, d) tensor.

    Raises:
        ValueError: the counts differ, or a word is empty or contains whitespace (the format
            could not be read back).
    """
    if len(words) != vectors.shape[0]:
        raise ValueError(f"{len(words)} words but {vectors.shape[0]} vectors")
    bad = next((w for w in words if not w or len(w.split()) != 1 or w != w.strip()), None)
    if bad is not None:
        raise ValueError(f"word {bad!r} cannot be written in word2vec text format (empty or with whitespace)")
    rows = vectors.detach().float().cpu().tolist()
    lines = [f"{len(words)} {vectors.shape[1]}\n"]
    lines += [w + " " + " ".join(f"{x:.9g}" for x in row) + "\n" for w, row in zip(words, rows)]
    atomic_write_text(Path(path), "".join(lines))


def init_embedding_from(
    embedding: nn.Embedding,
    tokenizer_vocab: list[str],
    vectors: Mapping[str, Tensor] | str | Path,
) -> int:
    """Copy pretrained vectors into the rows of ``embedding`` whose token has one.

    Row i belongs to ``tokenizer_vocab[i]``. The ``<pad>`` row is never set.

    Args:
        embedding: (V, d) embedding to update in place.
        tokenizer_vocab: token of every id, at most V entries.
        vectors: ``{word: (d,)}`` from :func:`load_word2vec_text`, or a path to such a file.

    Returns:
        How many rows were set.

    Raises:
        ConfigError: the vectors' dimension differs from the embedding's (key ``model.embedding``),
            or the vocabulary is larger than the embedding.
    """
    if not isinstance(vectors, Mapping):
        vectors = load_word2vec_text(vectors)
    V, E = embedding.weight.shape
    d = next(iter(vectors.values())).numel() if vectors else E
    if d != E:
        raise ConfigError(
            "model.embedding",
            f"the word vectors have dimension {d} but the embedding has {E}; set model.embedding: {d}",
        )
    if len(tokenizer_vocab) > V:
        raise ConfigError(None, f"the vocabulary has {len(tokenizer_vocab)} tokens but the embedding only {V} rows")
    rows = [i for i, token in enumerate(tokenizer_vocab) if i != PAD and token in vectors]
    if rows:
        with torch.no_grad():
            values = torch.stack([vectors[tokenizer_vocab[i]] for i in rows])  # (n, d)
            embedding.weight[torch.tensor(rows)] = values.to(embedding.weight)
    return len(rows)


def init_embeddings_from_file(path: str | Path, src_embedding: nn.Embedding, tgt_embedding: nn.Embedding,
                              src_vocab: Sequence[str] | None, tgt_vocab: Sequence[str] | None = None) -> None:
    """Initialise a model's source and target embeddings (one module when shared) from a word2vec file.

    What ``model.embeddings_from`` does for every sequence-to-sequence model.

    Args:
        path: word2vec text file.
        src_embedding, tgt_embedding: the model's token embeddings (the same module when shared).
        src_vocab: source tokens by id.
        tgt_vocab: target tokens by id; None with a joint vocabulary (same size as the source's).

    Raises:
        ConfigError: ``src_vocab`` is None (key ``model.embeddings_from``), or a dimension differs.
    """
    if src_vocab is None:
        raise ConfigError("model.embeddings_from", "needs the vocabulary: pass src_vocab= to the model builder")
    vectors = load_word2vec_text(path)
    init_embedding_from(src_embedding, list(src_vocab), vectors)
    if tgt_embedding is not src_embedding:
        if tgt_vocab is None and tgt_embedding.num_embeddings == src_embedding.num_embeddings:
            tgt_vocab = src_vocab
        if tgt_vocab is not None:
            init_embedding_from(tgt_embedding, list(tgt_vocab), vectors)
