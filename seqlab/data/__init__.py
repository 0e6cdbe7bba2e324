"""Corpora: readers for parallel text, the built-in synthetic corpus, and downloads."""

from seqlab.data.download import download_tatoeba, split_tsv
from seqlab.data.readers import BUILTIN_CORPORA, DataWarning, read_lines, read_parallel
from seqlab.data.synthetic import builtin_split, generate_pairs

__all__ = [
    "BUILTIN_CORPORA",
    "DataWarning",
    "builtin_split",
    "download_tatoeba",
    "generate_pairs",
    "read_lines",
    "read_parallel",
    "split_tsv",
]
