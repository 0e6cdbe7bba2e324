"""Tokenisation: special tokens, BPE / word / character tokenizers, and the source/target pair."""

from seqlab.text.pair import TOKENIZER_FILE, TokenizerPair
from seqlab.text.specials import EOS, PAD, SOS, SPECIALS, UNK
from seqlab.text.tokenizer import (
    BPETokenizer,
    CharTokenizer,
    Tokenizer,
    WordTokenizer,
    train_tokenizer,
)

__all__ = [
    "EOS",
    "PAD",
    "SOS",
    "SPECIALS",
    "TOKENIZER_FILE",
    "UNK",
    "BPETokenizer",
    "CharTokenizer",
    "Tokenizer",
    "TokenizerPair",
    "WordTokenizer",
    "train_tokenizer",
]
