"""One entry point for every decoding strategy: greedy, beam or sampling, from any start state.

:func:`generate_steps` reads a :class:`~seqlab.config.DecodeConfig` (the ``decode`` section, or
the keyword arguments of the API and CLI merged into it by :func:`~seqlab.config.generation_config`)
and runs

* ``greedy`` (or ``beam`` with beam 1 and n_best 1):  y_t = argmax_v z'_t,v
* ``sample``:  y_t ~ softmax(z'_t / tau), restricted by top-k / top-p
* ``beam``:  beam search (:mod:`seqlab.decoding.beam`)

where z'_t are the logits after the processors (:mod:`seqlab.decoding.processors`: repetition
penalty, no-repeat n-gram, minimum length). It starts from a model's state and either a first
token (``encode(src)`` with ``<sos>``) or first logits (a language model's ``start(prefix)``), so
sequence-to-sequence models and language models share it. Greedy search and sampling yield each
step's tokens as they come (streaming); beam search yields nothing and returns at the end.

:func:`translate_batch` is the batched sequence-to-sequence driver used by evaluation, the API,
the CLI and the trainer's dev pass: sort by length, pad, encode, generate, restore input order.
With a ``seed``, every input gets its own generator seeded with it, so a sample depends on the
input, the seed and the settings, never on which other inputs share its batch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Iterator

import torch
from torch import Tensor

from seqlab.config import DecodeConfig
from seqlab.decoding.beam import beam_decode
from seqlab.decoding.greedy import (
    DecodeOutput,
    StepFn,
    argmax,
    decode_steps,
    run_to_end,
    start_from,
)
from seqlab.decoding.lengths import output_limits
from seqlab.decoding.processors import Processor, build_processor
from seqlab.decoding.sampling import sampler
from seqlab.models.base import DecoderState, Seq2SeqModel, padding_mask
from seqlab.text.specials import PAD, SOS

__all__ = ["eval_mode", "generate", "generate_steps", "length_sorted_batches", "model_device", "pad_rows", "processor_for", "seeded_generators", "source_steps", "start_seq2seq", "translate_batch",
           "uses_beam"]


def processor_for(settings: DecodeConfig) -> Processor:
    """The logits processor of ``settings`` (repetition penalty, no-repeat n-gram, minimum length)."""
    return build_processor(repetition=settings.repetition_penalty, no_repeat_ngram=settings.no_repeat_ngram,
                           min_length=settings.min_length)


def uses_beam(settings: DecodeConfig) -> bool:
    """Whether ``settings`` need beam search (beam 1 without n-best is greedy search)."""
    return settings.strategy == "beam" and (settings.beam > 1 or settings.n_best > 1)


def seeded_generators(settings: DecodeConfig, n: int, device: torch.device | str = "cpu") -> list | None:
    """n generators seeded with ``settings.seed`` (one per row), or None without a seed."""
    if settings.seed is None:
        return None
    return [torch.Generator(device=device).manual_seed(settings.seed) for _ in range(n)]


@torch.inference_mode()
def generate_steps(
    step: StepFn,
    state: DecoderState,
    first_token: Tensor | None = None,
    *,
    logits: Tensor | None = None,
    settings: DecodeConfig,
    max_len: Tensor | int,
    generators: list | None = None,
    src_lengths: Tensor | None = None,
    return_attention: bool = False,
) -> Generator[Tensor, None, DecodeOutput]:
    """Decode with ``settings.strategy``; yield the (B,) tokens of each step; return the output.

    Args:
        step: the model's ``decode_step``.
        state: the state before the first step (``encode(src)`` or ``LanguageModel.start``).
        first_token: (B,) first decoder input, or None when ``logits`` are given.
        logits: (B, V) logits of the first step (a language model's ``start``).
        settings: the generation settings.
        max_len: int or (B,) most decoder steps per row, ``<eos>`` included.
        generators: per-row sampling generators (default: :func:`seeded_generators`).
        src_lengths: (B,) real source lengths, to crop attention.
        return_attention: also return each row's (T_i, S_i) cross-attention.
    """
    process = processor_for(settings)
    if uses_beam(settings):
        return beam_decode(step, state, first_token, logits=logits, beam=settings.beam, max_len=max_len,
                           length_penalty=settings.length_penalty, n_best=settings.n_best, process=process,
                           src_lengths=src_lengths, return_attention=return_attention)
        yield  # unreachable: makes this function a generator in every branch
    step, y_prev = start_from(step, first_token, logits)
    if settings.strategy == "sample":
        if generators is None:
            generators = seeded_generators(settings, y_prev.size(0), y_prev.device)
        temperature = 1.0 if settings.temperature is None else settings.temperature
        choose = sampler(temperature=temperature, top_k=settings.top_k, top_p=settings.top_p, generator=generators)
    else:
        choose = argmax
    return (yield from decode_steps(step, state, y_prev, max_len=max_len, choose=choose, process=process,
                                    src_lengths=src_lengths, return_attention=return_attention))


def generate(step: StepFn, state: DecoderState, first_token: Tensor | None = None, **kwargs) -> DecodeOutput:
    """:func:`generate_steps` run to the end (same arguments)."""
    return run_to_end(generate_steps(step, state, first_token, **kwargs))


# --------------------------------------------------------------------------------------------
# batched sequence-to-sequence decoding


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)


def model_device(model: torch.nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def pad_rows(rows: list[list[int]], device: torch.device | str = "cpu") -> Tensor:
    """Right-pad id lists with ``<pad>`` into a (B, max_len) long tensor."""
    width = max(len(r) for r in rows)
    out = torch.full((len(rows), width), PAD, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    return out.to(device)


def length_sorted_batches(lengths: list[int], batch_size: int) -> Iterator[list[int]]:
    """Indices in batches of ``batch_size``, longest first, so similar lengths share padding."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


def source_steps(model: Seq2SeqModel, src: Tensor, settings: DecodeConfig) -> Tensor:
    """(B,) step limits of a padded source batch under ``settings`` (see :mod:`seqlab.decoding.lengths`)."""
    return output_limits(src, ratio=settings.max_len_ratio, offset=settings.max_len_offset,
                         max_new_tokens=settings.max_new_tokens, limit=model.max_positions)


def start_seq2seq(model: Seq2SeqModel, src: Tensor) -> tuple[DecoderState, Tensor]:
    """The start of sequence-to-sequence decoding: ``encode(src)`` and a (B,) column of ``<sos>``."""
    return model.encode(src), torch.full((src.size(0),), SOS, dtype=torch.long, device=src.device)


def translate_batch(
    model: Seq2SeqModel,
    src_ids: list[list[int]],
    settings: DecodeConfig,
    *,
    batch_size: int = 64,
    return_attention: bool = False,
) -> DecodeOutput:
    """Decode many sources: sort by length, batch, pad, generate, restore the input order.

    The length limit of sentence i is ``settings.max_new_tokens`` when set, else
    min(model.max_positions, ceil(ratio * |x_i|) + offset) decoder steps. An empty source gives an
    empty output with score 0 without calling the model.

    Args:
        model: any sequence-to-sequence model; it runs on the device of its parameters.
        src_ids: source id sequences without padding.
        settings: the generation settings (strategy, beam, sampling, processors, lengths, seed).
        batch_size: sentences per batch.
        return_attention: also return each best hypothesis' (T_i, S_i) cross-attention.

    Returns:
        A :class:`~seqlab.decoding.greedy.DecodeOutput` with one entry per input, in input order.
    """
    n = len(src_ids)
    n_best = settings.n_best if uses_beam(settings) else 1
    tokens: list = [[] for _ in range(n)]
    scores: list = [0.0] * n
    attention: list = [torch.zeros(0, 0) for _ in range(n)]
    nbest: list = [[([], 0.0)] for _ in range(n)]
    has_attention = return_attention
    nonempty = [i for i in range(n) if src_ids[i]]
    device = model_device(model)
    with eval_mode(model):
        for batch in length_sorted_batches([len(src_ids[i]) for i in nonempty], batch_size):
            index = [nonempty[j] for j in batch]
            src = pad_rows([src_ids[i] for i in index], device)
            state, sos = start_seq2seq(model, src)
            out = generate(model.decode_step, state, sos, settings=settings, max_len=source_steps(model, src, settings),
                           src_lengths=padding_mask(src).sum(dim=1), return_attention=return_attention)
            has_attention = has_attention and out.attention is not None
            for j, i in enumerate(index):
                tokens[i], scores[i] = out.tokens[j], out.scores[j]
                if out.attention is not None:
                    attention[i] = out.attention[j]
                if out.nbest is not None:
                    nbest[i] = out.nbest[j]
    return DecodeOutput(
        tokens=tokens,
        scores=scores,
        attention=attention if has_attention else None,
        nbest=nbest if n_best > 1 else None,
    )
