"""Decoding over the :class:`~seqlab.models.base.Seq2SeqModel` interface: greedy, beam, sampling.

Every function here talks only to ``encode`` / ``decode_step`` / ``DecoderState.select`` (or a
language model's ``start``), so it works for every architecture. :func:`generate` dispatches on
the ``decode`` settings; :func:`translate_batch` drives it over many sources.
"""

from seqlab.decoding.beam import beam_decode, beam_search, gnmt_length_penalty
from seqlab.decoding.generate import generate, generate_steps, translate_batch
from seqlab.decoding.greedy import DecodeOutput, greedy, greedy_search, stepwise_decode
from seqlab.decoding.lengths import as_length_tensor, max_target_lengths, output_limits
from seqlab.decoding.processors import (
    block_ngram_repeats,
    build_processor,
    min_length_mask,
    repetition_penalty,
)
from seqlab.decoding.sampling import sample, sample_next, top_k_filter, top_p_filter

__all__ = [
    "DecodeOutput",
    "as_length_tensor",
    "beam_decode",
    "beam_search",
    "block_ngram_repeats",
    "build_processor",
    "generate",
    "generate_steps",
    "gnmt_length_penalty",
    "greedy",
    "greedy_search",
    "max_target_lengths",
    "min_length_mask",
    "output_limits",
    "repetition_penalty",
    "sample",
    "sample_next",
    "stepwise_decode",
    "top_k_filter",
    "top_p_filter",
    "translate_batch",
]
