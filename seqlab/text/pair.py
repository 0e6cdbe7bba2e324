"""The source and target tokenizers of a translation run, saved together as ``tokenizer.json``."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from seqlab.errors import CheckpointError
from seqlab.io import atomic_write_text, read_json
from seqlab.text.tokenizer import Tokenizer, train_tokenizer

if TYPE_CHECKING:
    from seqlab.config import TokenizerConfig

__all__ = ["TOKENIZER_FILE", "TokenizerPair"]

TOKENIZER_FILE = "tokenizer.json"
"""File name of the tokenizer pair inside a run folder."""


class TokenizerPair:
    """A source tokenizer and a target tokenizer, or one shared (joint) vocabulary.

    Args:
        src: tokenizer of the source side.
        tgt: tokenizer of the target side; ``None`` (or ``src`` itself) for a joint vocabulary.

    Attributes:
        src, tgt: the tokenizers (the same object when :attr:`joint`).
        joint: whether both sides share one vocabulary.
    """

    def __init__(self, src: Tokenizer, tgt: Tokenizer | None = None):
        self.src = src
        self.tgt = src if tgt is None else tgt

    @property
    def joint(self) -> bool:
        return self.src is self.tgt

    @classmethod
    def train(cls, pairs: Sequence[tuple[str, str]], cfg: TokenizerConfig) -> TokenizerPair:
        """Train on the sentence pairs: one tokenizer on both columns when ``cfg.joint``, else one
        per column, each with ``cfg.vocab_size`` entries."""
        if cfg.joint:
            texts = itertools.chain((s for s, _ in pairs), (t for _, t in pairs))
            return cls(train_tokenizer(texts, cfg))
        src = train_tokenizer((s for s, _ in pairs), cfg)
        tgt = train_tokenizer((t for _, t in pairs), cfg)
        return cls(src, tgt)

    def encode_pairs(self, pairs: Sequence[tuple[str, str]]) -> list[tuple[list[int], list[int]]]:
        """Token ids of every (source, target) pair, without specials (batched, so fast)."""
        src_ids = self.src.encode_batch([s for s, _ in pairs])
        tgt_ids = self.tgt.encode_batch([t for _, t in pairs])
        return list(zip(src_ids, tgt_ids))

    def to_dict(self) -> dict:
        """``{"joint": bool, "src": {...}, "tgt": {...}}`` (``tgt`` repeats ``src`` when joint)."""
        src = self.src.to_dict()
        return {"joint": self.joint, "src": src, "tgt": src if self.joint else self.tgt.to_dict()}

    @classmethod
    def from_dict(cls, data: object) -> TokenizerPair:
        """Inverse of :meth:`to_dict`. Raises CheckpointError when ``data`` is malformed."""
        if not isinstance(data, dict) or not {"joint", "src", "tgt"} <= set(data):
            raise CheckpointError('expected a JSON object with keys "joint", "src" and "tgt"')
        src = Tokenizer.from_dict(data["src"])
        return cls(src, None if data["joint"] else Tokenizer.from_dict(data["tgt"]))

    def save(self, run_dir: str | Path) -> Path:
        """Write ``run_dir/tokenizer.json`` (atomically) and return its path."""
        path = Path(run_dir) / TOKENIZER_FILE
        atomic_write_text(path, json.dumps(self.to_dict(), ensure_ascii=False))
        return path

    @classmethod
    def load(cls, run_dir: str | Path) -> TokenizerPair:
        """Read ``run_dir/tokenizer.json``.

        Raises:
            CheckpointError: the file is missing or malformed; the message names it.
        """
        path = Path(run_dir) / TOKENIZER_FILE
        data = read_json(path, "the run's tokenizer pair written by TokenizerPair.save")
        try:
            return cls.from_dict(data)
        except CheckpointError as err:
            raise CheckpointError(f"{path}: {err}") from None
