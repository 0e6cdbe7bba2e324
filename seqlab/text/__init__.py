"""Tokenisation: special tokens, BPE / word / character tokenizers, and the source/target pair."""

from seqlab.text.pair import TOKENIZER_FILE, TokenizerPair
from seqlab.text.specials import EOS, PAD, SOS, SPECIALS, UNK
from seqlab.text.tokenizer import BPETokenizer, CharTokenizer, Tokenizer, WordTokenizer, train_tokenizer

__all__ = [
    "PAD",
    "SOS",
    "EOS",
    "UNK",
    "SPECIALS",
    "Tokenizer",
    "BPETokenizer",
    "WordTokenizer",
    "CharTokenizer",
    "train_tokenizer",
    "TokenizerPair",
    "TOKENIZER_FILE",
]
