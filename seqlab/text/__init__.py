"""Tokenisation: special tokens, BPE / word / character tokenizers, and the source/target pair."""

from seqlab.text.specials import EOS, PAD, SOS, SPECIALS, UNK

__all__ = ["PAD", "SOS", "EOS", "UNK", "SPECIALS"]
