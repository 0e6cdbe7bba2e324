"""Tokenizers: text <-> token ids, for subwords (BPE), words and characters.

Every vocabulary starts with the four specials of :mod:`seqlab.text.specials`
(``<pad>`` = 0, ``<sos>`` = 1, ``<eos>`` = 2, ``<unk>`` = 3), then the tokenizer's *reserved*
specials, if any (``tokenizer.specials`` in the config, e.g. ``<sep>`` between chat turns), at ids
4, 5, ...; they are saved with the tokenizer, and files written before they existed load with
none. A reserved special written literally in the text (``"hi <sep> hello"``) encodes to its id,
the text on either side being encoded on its own, stripped. ``encode`` adds no specials and
``decode`` drops them, so callers put ``<sos>``/``<eos>`` where they need them and cut a decoded
hypothesis at ``<eos>`` themselves.

All three kinds normalise text to Unicode NFC first (so "ção" typed with a combining cedilla and
the precomposed "ção" get the same ids) and can lowercase it. For NFC input with single spaces
between words, ``decode(encode(s)) == s`` for the BPE and character tokenizers whenever every
character of ``s`` was seen in training; the word tokenizer restores the usual spacing around
punctuation.

A tokenizer serialises to a JSON-able dict (``to_dict``/``Tokenizer.from_dict``, dispatching on
``kind``) and to a JSON file (``save``/``Tokenizer.load``).
"""

from __future__ import annotations

import abc
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from seqlab.errors import CheckpointError
from seqlab.io import atomic_write_text, read_json
from seqlab.text.specials import SPECIALS, UNK, check_reserved

if TYPE_CHECKING:
    from seqlab.config import TokenizerConfig

__all__ = [
    "BPETokenizer",
    "CharTokenizer",
    "Tokenizer",
    "WordTokenizer",
    "detokenize_words",
    "train_tokenizer",
]

_METASPACE = "\u2581"  # "▁", marks a word start in BPE pieces


def _normalize(text: str, lowercase: bool) -> str:
    text = unicodedata.normalize("NFC", text)
    return text.lower() if lowercase else text


class Tokenizer(abc.ABC):
    """Maps text to token ids and back.

    Attributes:
        kind: ``"bpe"``, ``"word"`` or ``"char"``; the key :meth:`from_dict` dispatches on.
    """

    kind: ClassVar[str]
    _registry: ClassVar[dict[str, type[Tokenizer]]] = {}
    reserved: tuple[str, ...] = ()
    """Reserved specials after the four fixed ones, at ids 4, 5, ..."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            Tokenizer._registry[cls.kind] = cls

    @property
    @abc.abstractmethod
    def vocab_size(self) -> int:
        """Number of ids, specials included."""

    @property
    def specials(self) -> list[str]:
        """Every special token, in id order: the four fixed ones, then the reserved ones."""
        return SPECIALS + list(self.reserved)

    def special_id(self, name: str) -> int:
        """The id of special token ``name`` (e.g. ``"<sep>"``); KeyError naming the known ones."""
        if name not in self.specials:
            raise KeyError(f"{name!r} is not a special token of this tokenizer (it has {', '.join(self.specials)})")
        return self.specials.index(name)

    @abc.abstractmethod
    def _encode_plain(self, text: str) -> list[int]:
        """Token ids of text without reserved specials."""

    def _encode_plain_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [self._encode_plain(t) for t in texts]

    @abc.abstractmethod
    def _tokens_plain(self, text: str) -> list[str]:
        """Pieces of text without reserved specials."""

    def _split_reserved(self, text: str) -> tuple[list[str], list[int]]:
        """Text segments (stripped when split) and the reserved ids between them."""
        if not self.reserved or not any(r in text for r in self.reserved):
            return [text], []
        pattern = "(" + "|".join(re.escape(r) for r in self.reserved) + ")"
        parts = re.split(pattern, text)
        return [p.strip() for p in parts[0::2]], [self.special_id(r) for r in parts[1::2]]

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no ``<sos>``/``<eos>`` added; unknown pieces become ``<unk>``)."""
        return self.encode_batch([text])[0]

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """``encode`` for many texts at once, in order."""
        split = [self._split_reserved(t) for t in texts]
        flat = iter(self._encode_plain_batch([seg for segments, _ in split for seg in segments]))
        out = []
        for segments, marks in split:
            ids = list(next(flat))
            for mark in marks:
                ids += [mark, *next(flat)]
            out.append(ids)
        return out

    @abc.abstractmethod
    def decode(self, ids: Iterable[int]) -> str:
        """The text of ``ids``, with every special token (``<unk>`` included) dropped."""

    def tokens(self, text: str) -> list[str]:
        """The surface pieces ``encode`` maps to ids, one per id (labels for attention plots)."""
        segments, marks = self._split_reserved(text)
        pieces = self._tokens_plain(segments[0])
        for mark, segment in zip(marks, segments[1:]):
            pieces += [self.specials[mark], *self._tokens_plain(segment)]
        return pieces

    @abc.abstractmethod
    def id_to_token(self, i: int) -> str:
        """The piece with id ``i``."""

    @abc.abstractmethod
    def to_dict(self) -> dict:
        """JSON-able description; ``Tokenizer.from_dict(t.to_dict())`` rebuilds ``t``."""

    @classmethod
    @abc.abstractmethod
    def _from_dict(cls, data: dict) -> Tokenizer:
        """Rebuild from ``to_dict`` output (``data["kind"]`` already checked)."""

    @staticmethod
    def from_dict(data: Any) -> Tokenizer:
        """Rebuild any tokenizer from :meth:`to_dict` output.

        Raises:
            CheckpointError: ``data`` is not a tokenizer description.
        """
        if not isinstance(data, dict) or data.get("kind") not in Tokenizer._registry:
            kind = data.get("kind") if isinstance(data, dict) else None
            raise CheckpointError(
                f"unknown tokenizer kind {kind!r}; expected a dict with kind one of "
                f"{', '.join(sorted(Tokenizer._registry))}"
            )
        cls = Tokenizer._registry[data["kind"]]
        try:
            return cls._from_dict(data)
        except CheckpointError:
            raise
        except Exception as err:  # malformed fields of any sort
            raise CheckpointError(f"malformed {data['kind']!r} tokenizer ({type(err).__name__}: {err})") from None

    def save(self, path: str | Path) -> None:
        """Write the tokenizer as JSON to ``path`` (atomically)."""
        atomic_write_text(Path(path), json.dumps(self.to_dict(), ensure_ascii=False))

    @staticmethod
    def load(path: str | Path) -> Tokenizer:
        """Read a tokenizer written by :meth:`save`.

        Raises:
            CheckpointError: the file is missing, not JSON, or not a tokenizer; the message names it.
        """
        data = read_json(path, "a seqlab tokenizer JSON file")
        try:
            return Tokenizer.from_dict(data)
        except CheckpointError as err:
            raise CheckpointError(f"{path}: {err}") from None

    def _check_id(self, i: int) -> None:
        if not 0 <= i < self.vocab_size:
            raise IndexError(f"token id {i} outside the vocabulary [0, {self.vocab_size})")


# --------------------------------------------------------------------------------------------
# subwords


class BPETokenizer(Tokenizer):
    """Byte-pair-encoding subwords (Sennrich et al. 2016), trained with HuggingFace ``tokenizers``.

    Words are marked with a leading "▁" (Metaspace) so spaces survive the round trip, punctuation
    (with the space before it) is split from words before merges are learnt, and characters never
    seen in training become ``<unk>``.

    Args:
        hf: a trained ``tokenizers.Tokenizer`` whose ids 0..3 are ``<pad> <sos> <eos> <unk>``.
        lowercase: whether ``hf`` lowercases (recorded for :meth:`to_dict`).
    """

    kind = "bpe"

    def __init__(self, hf: Any, *, lowercase: bool = False, reserved: Sequence[str] = ()):
        self.reserved = check_reserved(reserved)
        for i, name in enumerate(SPECIALS + list(self.reserved)):
            if hf.token_to_id(name) != i:
                raise ValueError(f"BPE vocabulary must have {name} at id {i}, got {hf.token_to_id(name)}")
        self.hf = hf
        self.lowercase = lowercase

    @classmethod
    def train(
        cls, texts: Iterable[str], *, vocab_size: int, min_frequency: int = 2, lowercase: bool = False,
        reserved: Sequence[str] = (),
    ) -> BPETokenizer:
        """Learn merges from ``texts`` until the vocabulary has ``vocab_size`` entries (or no pair
        occurs ``min_frequency`` times)."""
        from tokenizers import (
            Regex,
            decoders,
            models,
            normalizers,
            pre_tokenizers,
            trainers,
        )
        from tokenizers import Tokenizer as HFTokenizer

        hf = HFTokenizer(models.BPE(unk_token=SPECIALS[UNK]))
        steps = [normalizers.NFC()] + ([normalizers.Lowercase()] if lowercase else [])
        hf.normalizer = normalizers.Sequence(steps)
        hf.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Metaspace(replacement=_METASPACE, prepend_scheme="always", split=True),
                # isolate punctuation, keeping a preceding "▁": 'disse: "olá"' -> ▁disse : ▁" olá "
                pre_tokenizers.Split(Regex(rf"{_METASPACE}?[^\w\s{_METASPACE}]"), behavior="isolated"),
            ]
        )
        hf.decoder = decoders.Metaspace(replacement=_METASPACE, prepend_scheme="always", split=True)
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=SPECIALS + list(reserved),
            show_progress=False,
        )
        hf.train_from_iterator(texts, trainer=trainer)
        return cls(hf, lowercase=lowercase, reserved=reserved)

    @property
    def vocab_size(self) -> int:
        return self.hf.get_vocab_size()

    def _encode_plain(self, text: str) -> list[int]:
        return self.hf.encode(text, add_special_tokens=False).ids

    def _encode_plain_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self.hf.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Iterable[int]) -> str:
        return self.hf.decode([int(i) for i in ids], skip_special_tokens=True)

    def _tokens_plain(self, text: str) -> list[str]:
        return self.hf.encode(text, add_special_tokens=False).tokens

    def id_to_token(self, i: int) -> str:
        self._check_id(i)
        return self.hf.id_to_token(i)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "lowercase": self.lowercase, "reserved": list(self.reserved),
                "hf": self.hf.to_str()}

    @classmethod
    def _from_dict(cls, data: dict) -> BPETokenizer:
        from tokenizers import Tokenizer as HFTokenizer

        return cls(HFTokenizer.from_str(data["hf"]), lowercase=bool(data["lowercase"]),
                   reserved=[str(r) for r in data.get("reserved", [])])


# --------------------------------------------------------------------------------------------
# words and characters: an explicit vocabulary list


class _VocabTokenizer(Tokenizer):
    """A tokenizer whose pieces come from a rule and whose ids index a list ``vocab``."""

    def __init__(self, vocab: Sequence[str], *, lowercase: bool = False, reserved: Sequence[str] = ()):
        vocab = list(vocab)
        self.reserved = check_reserved(reserved)
        if vocab[: len(self.specials)] != self.specials:
            raise ValueError(f"vocabulary must start with {self.specials}, got {vocab[: len(self.specials)]}")
        if len(set(vocab)) != len(vocab):
            raise ValueError("vocabulary has duplicate entries")
        self.vocab = vocab
        self.lowercase = lowercase
        self._ids = {tok: i for i, tok in enumerate(vocab)}

    @staticmethod
    @abc.abstractmethod
    def _split(text: str) -> list[str]:
        """Pieces of already-normalised text."""

    @staticmethod
    @abc.abstractmethod
    def _join(pieces: list[str]) -> str:
        """Inverse of :meth:`_split`."""

    @classmethod
    def train(
        cls, texts: Iterable[str], *, vocab_size: int, min_frequency: int = 1, lowercase: bool = False,
        reserved: Sequence[str] = (),
    ) -> _VocabTokenizer:
        """Keep the ``vocab_size - len(specials)`` most frequent pieces seen at least
        ``min_frequency`` times (ties broken alphabetically, so training is deterministic)."""
        specials = SPECIALS + list(check_reserved(reserved))
        pattern = re.compile("|".join(re.escape(r) for r in reserved)) if reserved else None
        counts: Counter[str] = Counter()
        for text in texts:
            text = _normalize(text, lowercase)
            for segment in pattern.split(text) if pattern else [text]:
                counts.update(cls._split(segment))
        for name in specials:
            counts.pop(name, None)
        ranked = sorted((p for p, c in counts.items() if c >= min_frequency), key=lambda p: (-counts[p], p))
        kept = ranked[: max(0, vocab_size - len(specials))]
        return cls(specials + kept, lowercase=lowercase, reserved=reserved)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def _tokens_plain(self, text: str) -> list[str]:
        return self._split(_normalize(text, self.lowercase))

    def _encode_plain(self, text: str) -> list[int]:
        return [self._ids.get(p, UNK) for p in self._tokens_plain(text)]

    def decode(self, ids: Iterable[int]) -> str:
        pieces, n_specials = [], len(self.specials)
        for i in ids:
            i = int(i)
            if i >= n_specials:
                self._check_id(i)
                pieces.append(self.vocab[i])
        return self._join(pieces)

    def id_to_token(self, i: int) -> str:
        self._check_id(i)
        return self.vocab[i]

    def to_dict(self) -> dict:
        return {"kind": self.kind, "lowercase": self.lowercase, "reserved": list(self.reserved),
                "vocab": list(self.vocab)}

    @classmethod
    def _from_dict(cls, data: dict) -> _VocabTokenizer:
        return cls([str(v) for v in data["vocab"]], lowercase=bool(data["lowercase"]),
                   reserved=[str(r) for r in data.get("reserved", [])])


# a word (letters/digits, with inner apostrophes or hyphens: "don't", "d'água", "guarda-chuva")
# or any single other non-space character
_WORD_RE = re.compile(r"\w+(?:['’-]\w+)*|[^\w\s]")
_NO_SPACE_BEFORE = set(".,!?;:%)]}»”’…")
_NO_SPACE_AFTER = set("([{«“‘¿¡")
_TOGGLE_QUOTES = set("\"'")


def detokenize_words(words: Sequence[str]) -> str:
    """Join word tokens with single spaces, except before closing punctuation (``.,!?;:)``...) and
    after opening brackets and quotes; straight quotes alternate between opening and closing.

    >>> detokenize_words(["Ela", "disse", ":", '"', "olá", '"', "(", "baixinho", ")", "."])
    'Ela disse: "olá" (baixinho).'
    """
    out: list[str] = []
    glue_next = True  # no space before the first word
    open_quotes: set[str] = set()
    for w in words:
        glue = glue_next or w in _NO_SPACE_BEFORE
        glue_next = w in _NO_SPACE_AFTER
        if w in _TOGGLE_QUOTES:
            if w in open_quotes:  # closing quote: attach to the previous word
                open_quotes.discard(w)
                glue = True
            else:  # opening quote: attach to the next word
                open_quotes.add(w)
                glue_next = True
        if out and not glue:
            out.append(" ")
        out.append(w)
    return "".join(out)


class WordTokenizer(_VocabTokenizer):
    """Whole words and single punctuation marks, e.g.
    ``"Lucas está no Chile."`` -> ``["Lucas", "está", "no", "Chile", "."]``.

    Words outside the vocabulary become ``<unk>``; ``decode`` restores conventional spacing
    (:func:`detokenize_words`).
    """

    kind = "word"

    @staticmethod
    def _split(text: str) -> list[str]:
        return _WORD_RE.findall(text)

    @staticmethod
    def _join(pieces: list[str]) -> str:
        return detokenize_words(pieces)


class CharTokenizer(_VocabTokenizer):
    """One id per character, spaces included; characters outside the vocabulary become ``<unk>``."""

    kind = "char"

    @staticmethod
    def _split(text: str) -> list[str]:
        return list(text)

    @staticmethod
    def _join(pieces: list[str]) -> str:
        return "".join(pieces)


def train_tokenizer(texts: Iterable[str], cfg: TokenizerConfig) -> Tokenizer:
    """Train the tokenizer that ``cfg`` describes on ``texts``.

    Args:
        texts: training sentences (read once).
        cfg: ``kind`` (bpe/word/char), ``vocab_size`` (specials included), ``min_frequency``,
            ``lowercase``, ``specials`` (the reserved ones).

    Returns:
        The trained tokenizer; its ids 0..3 are ``<pad> <sos> <eos> <unk>``, then the reserved
        specials.
    """
    classes: dict[str, Any] = {"bpe": BPETokenizer, "word": WordTokenizer, "char": CharTokenizer}
    if cfg.kind not in classes:
        from seqlab.errors import ConfigError

        raise ConfigError("tokenizer.kind", f"expected one of {', '.join(classes)}, got {cfg.kind!r}")
    return classes[cfg.kind].train(
        texts, vocab_size=cfg.vocab_size, min_frequency=cfg.min_frequency, lowercase=cfg.lowercase,
        reserved=cfg.specials,
    )
