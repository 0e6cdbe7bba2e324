"""Decoding over the :class:`~seqlab.models.base.Seq2SeqModel` interface: greedy, beam, sampling.

Every function here talks only to ``encode`` / ``decode_step`` / ``DecoderState.select``, so it
works for every architecture (and sampling also for language models).
"""

from seqlab.decoding.beam import beam_search, gnmt_length_penalty
from seqlab.decoding.greedy import DecodeOutput, greedy_search, stepwise_decode
from seqlab.decoding.lengths import as_length_tensor, max_target_lengths
from seqlab.decoding.sampling import sample, sample_next, top_k_filter, top_p_filter

__all__ = [
    "DecodeOutput",
    "as_length_tensor",
    "beam_search",
    "gnmt_length_penalty",
    "greedy_search",
    "max_target_lengths",
    "sample",
    "sample_next",
    "stepwise_decode",
    "top_k_filter",
    "top_p_filter",
]
