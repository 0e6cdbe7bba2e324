"""Language modelling: predict each token of a plain text from the ones before it.

    p(x) = prod_t p(x_t | x_<t)        loss = -1/N sum_t log p(x_t | x_<t)   (nats per token)
    perplexity = exp(loss)              bits per character = loss / ln 2      (character models)

The text (any UTF-8 file; ``builtin:hello`` for the courses' first example) becomes one stream of
token ids, each document followed by ``<eos>``: the whole file is one document
(``data.documents: file``, newlines are characters), or every line is
(``data.documents: line``). Training batches are windows of ``data.block_size`` tokens
(:class:`~seqlab.data.text.BlockBatcher`, ``train.batch_tokens / block_size`` windows a batch);
dev metrics come from the non-overlapping windows of the dev text.

The model is a decoder-only Transformer (``model.type: gpt``, :mod:`seqlab.models.gpt`) or a
recurrent LM (``rnn``/``lstm``/``gru``, :mod:`seqlab.models.recurrent_lm`); both implement
:class:`~seqlab.models.base.LanguageModel`, so :func:`generate` samples from either through
:func:`seqlab.decoding.generate.generate` and the model's cache, a batch of prompts of any lengths
at once.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F
from torch import nn

from seqlab.config import DecodeConfig, ExperimentConfig, GPTConfig, RecurrentConfig, absolute_data_path
from seqlab.data.text import BlockBatcher, LMBatch, read_text, windows
from seqlab.decoding.generate import generate as decode
from seqlab.decoding.generate import pad_rows
from seqlab.errors import ConfigError, DataError, SeqlabError
from seqlab.models.base import LanguageModel
from seqlab.tasks.base import TaskData
from seqlab.text.specials import EOS
from seqlab.text.tokenizer import Tokenizer, train_tokenizer
from seqlab.training.loss import label_smoothed_nll

__all__ = ["LMDataConfig", "LanguageModelTask", "NextTokenLoss", "evaluate_text", "generate", "text_metrics",
           "token_stream"]

if TYPE_CHECKING:
    from seqlab.tasks.run import LoadedRun

TOKENIZER_FILE = "tokenizer.json"


@dataclass
class LMDataConfig:
    """Plain text files (or ``builtin:hello``) and how training windows are cut from them."""

    train: str = "builtin:hello"
    dev: str | None = None
    block_size: int = 64
    """T, tokens per training window (the context the model learns to use)."""
    windows: Literal["random", "tiled"] = "random"
    """``random`` window starts (nanoGPT) or the ``tiled`` non-overlapping windows, shuffled."""
    documents: Literal["file", "line"] = "file"
    """``file``: the whole file is one document; ``line``: each line is one, ended by ``<eos>``."""
    dev_tokens: int | None = None
    """Evaluate on the first this many tokens of the dev text (all of it when null)."""

    def check(self, cfg: ExperimentConfig) -> None:
        t = cfg.train
        if self.block_size < 1:
            raise ConfigError("data.block_size", f"must be at least 1, got {self.block_size}")
        if self.block_size > cfg.model.max_positions:
            raise ConfigError("data.block_size", f"{self.block_size} tokens is more than "
                              f"model.max_positions={cfg.model.max_positions}")
        if t.batch_tokens < self.block_size:
            raise ConfigError("train.batch_tokens", f"{t.batch_tokens} is less than one window of "
                              f"data.block_size={self.block_size} tokens")
        if t.teacher_forcing < 1.0 or (t.teacher_forcing_decay_steps > 0 and t.teacher_forcing_min < 1.0):
            raise ConfigError("train.teacher_forcing", "a language model is trained with teacher forcing only; set 1.0")
        if t.best_metric == "bpc" and cfg.tokenizer.kind != "char":
            raise ConfigError("train.best_metric", "bits per character (bpc) is reported for tokenizer.kind: char "
                              "only; use loss")
        if self.dev_tokens is not None and self.dev_tokens < 2:
            raise ConfigError("data.dev_tokens", f"must be at least 2 (or null for all), got {self.dev_tokens}")

    def with_absolute_paths(self) -> LMDataConfig:
        return dataclasses.replace(self, train=absolute_data_path(self.train), dev=absolute_data_path(self.dev))


def _documents(lines: list[str], documents: str) -> list[str]:
    """The texts that each end with ``<eos>``: the file (newlines kept) or each non-blank line."""
    if documents == "line":
        return [line for line in lines if line.strip()]
    return ["".join(line + "\n" for line in lines)]


def token_stream(tokenizer: Tokenizer, lines: list[str], documents: str) -> torch.Tensor:
    """(N,) ids of the documents of ``lines``, each followed by ``<eos>``."""
    ids: list[int] = []
    for doc in _documents(lines, documents):
        pieces = doc.splitlines(keepends=True)  # encoded a line at a time (the same ids, less memory)
        for row in tokenizer.encode_batch(pieces):
            ids.extend(row)
        ids.append(EOS)
    return torch.tensor(ids, dtype=torch.long)


class NextTokenLoss(nn.Module):
    """The training objective of a :class:`LanguageModel`: -sum_t log p(x_{t+1} | x_<=t), label-smoothed.

    Args:
        model: the language model (called through its ``forward``).
        label_smoothing: epsilon of :func:`label_smoothed_nll`.
    """

    def __init__(self, model: LanguageModel, *, label_smoothing: float):
        super().__init__()
        self.model, self.label_smoothing = model, label_smoothing

    def forward(self, batch: LMBatch, *, step: int):
        """Returns (loss sum, NLL sum, tokens) over the B x T targets of ``batch``."""
        logits = self.model(batch.inputs)  # (B, T, V)
        return label_smoothed_nll(logits, batch.targets, epsilon=self.label_smoothing)


class LanguageModelTask:
    """Plain text in, a :class:`LanguageModel` (GPT or recurrent) trained on it."""

    data_config = LMDataConfig
    model_configs = {"gpt": GPTConfig, "rnn": RecurrentConfig, "lstm": RecurrentConfig, "gru": RecurrentConfig}
    metrics = {"loss": "min", "ppl": "min", "bpc": "min"}
    best_metric = "loss"

    def __init__(self, cfg: ExperimentConfig):
        self.cfg = cfg

    def prepare(self, run_dir: Path, *, resume: bool) -> TaskData:
        cfg, d = self.cfg, self.cfg.data
        lines = read_text(d.train)
        dev_lines = read_text(d.dev) if d.dev else None
        if resume:
            tokenizer = Tokenizer.load(Path(run_dir) / TOKENIZER_FILE)
        else:
            pieces = (line for doc in _documents(lines, d.documents) for line in doc.splitlines(keepends=True))
            tokenizer = train_tokenizer(pieces, cfg.tokenizer)  # a line at a time, as token_stream encodes
            tokenizer.save(Path(run_dir) / TOKENIZER_FILE)
        ids = token_stream(tokenizer, lines, d.documents)
        rows = cfg.train.batch_tokens // d.block_size
        batcher = BlockBatcher(ids, block_size=d.block_size, rows=rows, windows=d.windows, seed=cfg.train.seed,
                               source=str(d.train))
        dev = None
        if dev_lines is not None:
            dev = token_stream(tokenizer, dev_lines, d.documents)[: d.dev_tokens]
            if dev.numel() < 2:
                raise DataError(d.dev, None, "fewer than 2 tokens; nothing to evaluate")
        return TaskData(batches=batcher, dev=dev, text=tokenizer,
                        description=f"{ids.numel()} training tokens in {len(batcher)} batches of {rows} x "
                                    f"{d.block_size}, vocab {tokenizer.vocab_size}")

    def load(self, run_dir: Path) -> TaskData:
        return TaskData(batches=None, dev=None, text=Tokenizer.load(Path(run_dir) / TOKENIZER_FILE))

    def build_model(self, data: TaskData) -> LanguageModel:
        m, tokenizer = self.cfg.model, data.text
        if isinstance(m, GPTConfig):
            from seqlab.models.gpt import build_gpt

            return build_gpt(m, tokenizer.vocab_size)
        from seqlab.models.recurrent_lm import build_recurrent_lm

        vocab = [tokenizer.id_to_token(i) for i in range(tokenizer.vocab_size)]
        return build_recurrent_lm(m, tokenizer.vocab_size, vocab=vocab)

    def objective(self, model: LanguageModel) -> NextTokenLoss:
        return NextTokenLoss(model, label_smoothing=self.cfg.train.label_smoothing)

    def evaluate(self, model: LanguageModel, data: TaskData) -> dict[str, float]:
        """Loss (nats/token), perplexity and, for character models, bits per character on the
        non-overlapping windows of the dev text (:func:`text_metrics`)."""
        if data.dev is None:
            return {}
        return text_metrics(model, data.dev, block_size=self.cfg.data.block_size,
                            batch_tokens=self.cfg.train.batch_tokens, per_character=self.cfg.tokenizer.kind == "char")

    def summary(self, metrics: dict[str, float]) -> str:
        line = f"dev loss {metrics['loss']:.4f} nats/token, ppl {metrics['ppl']:.2f}"
        return line + (f", {metrics['bpc']:.3f} bits/char" if "bpc" in metrics else "")


@torch.inference_mode()
def text_metrics(model: LanguageModel, ids: torch.Tensor, *, block_size: int, batch_tokens: int,
                 per_character: bool) -> dict[str, float]:
    """Loss -1/N sum_t log p(x_t | x_<t) in nats per token, its perplexity and bits per character.

    The N predictions are those of the non-overlapping windows of ``block_size`` tokens (each
    window's first token is predicted from nothing before it), ``batch_tokens / block_size``
    windows a batch: the dev metrics of training and of ``seqlab evaluate``.

    Args:
        model: the language model (put in eval mode for the pass, then restored).
        ids: (N + 1,) token ids, N >= 1.
        block_size: T, tokens per window (fewer when the text is shorter).
        batch_tokens: tokens per batch.
        per_character: the tokens are characters: also report ``bpc`` = loss / ln 2.

    Returns:
        ``{"loss", "ppl"}`` and, with ``per_character``, ``"bpc"``.
    """
    T = min(block_size, ids.numel() - 1)
    rows = max(1, batch_tokens // T)
    starts = torch.arange((ids.numel() - 1) // T) * T
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    nll, n = 0.0, 0
    for chunk in starts.split(rows):
        batch = windows(ids, chunk, T).to(device)
        logits = model(batch.inputs)  # (B, T, V)
        nll += float(F.cross_entropy(logits.flatten(0, 1).float(), batch.targets.flatten(), reduction="sum"))
        n += batch.targets.numel()
    model.train(was_training)
    metrics = {"loss": nll / n, "ppl": math.exp(min(nll / n, 50))}
    if per_character:
        metrics["bpc"] = nll / n / math.log(2)
    return metrics


def evaluate_text(run: LoadedRun, path: str) -> dict[str, float]:
    """:func:`text_metrics` of a trained language-model run on a plain text file.

    The file becomes tokens as the run's training text did (its tokenizer, ``data.documents``);
    windows and batches are the run's ``data.block_size`` and ``train.batch_tokens``.

    Returns:
        ``loss`` (nats/token), ``ppl``, ``bpc`` (character tokenizers) and ``tokens`` (N).

    Raises:
        DataError: naming the file (and line): missing, not UTF-8, empty, under 2 tokens.
    """
    cfg = run.config
    ids = token_stream(run.data.text, read_text(path), cfg.data.documents)
    if ids.numel() < 2:
        raise DataError(path, None, "fewer than 2 tokens; nothing to evaluate")
    metrics = text_metrics(run.model, ids, block_size=cfg.data.block_size, batch_tokens=cfg.train.batch_tokens,
                           per_character=cfg.tokenizer.kind == "char")
    return {**metrics, "tokens": ids.numel() - 1}


@torch.inference_mode()
def generate(model: LanguageModel, tokenizer: Tokenizer, prompt: str | list[str], *, max_tokens: int = 200,
             temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
             seed: int | None = None) -> str | list[str]:
    """The prompt and a sampled continuation, up to ``<eos>`` or ``max_tokens`` tokens.

    The prompts are read at once (``model.start`` on the right-padded batch, filling the cache);
    each new token then costs one cached ``decode_step``, through the decoding package's
    :func:`~seqlab.decoding.generate.generate` (the one implementation every task decodes with).
    An empty prompt starts a new document (after ``<eos>``). With a ``seed`` every prompt has its
    own generator, so its text does not depend on the other prompts of the list.

    Args:
        model: a trained language model (put in eval mode here).
        tokenizer: the run's tokenizer.
        prompt: the text to continue, or a list of them.
        max_tokens: most tokens drawn (fewer when the model's positions run out: in a list, every
            prompt has the room the longest one leaves).
        temperature, top_k, top_p: see :func:`seqlab.decoding.sampling.sample_next`; temperature 0
            is greedy.
        seed: seeds the draws (the same seed, prompt and model give the same text).

    Returns:
        The text (a string per prompt for a list).
    """
    model.eval()
    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    if not prompts:
        return []
    rows = [tokenizer.encode(p) or [EOS] for p in prompts]
    longest = max(len(ids) for ids in rows)
    room = model.max_positions - longest
    if room < 1:
        raise SeqlabError(f"a prompt has {longest} tokens; this model reads at most {model.max_positions - 1}")
    settings = DecodeConfig(strategy="sample", temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)
    device = next(model.parameters()).device
    logits, state = model.start(pad_rows(rows, device))
    out = decode(model.decode_step, state, logits=logits, settings=settings, max_len=min(max_tokens, room))
    texts = []
    for text, ids, new in zip(prompts, rows, out.tokens):
        # decoded together with the prompt, so a subword tokenizer puts the space between them
        head, full = tokenizer.decode(ids), tokenizer.decode(ids + new)
        texts.append(text + (full[len(head):] if full.startswith(head) else tokenizer.decode(new)))
    return texts[0] if isinstance(prompt, str) else texts
