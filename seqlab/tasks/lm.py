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
:func:`seqlab.decoding.sampling.sample` and the model's cache.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from seqlab.config import ExperimentConfig, GPTConfig, RecurrentConfig, absolute_data_path
from seqlab.data.text import BlockBatcher, LMBatch, read_text, windows
from seqlab.decoding.sampling import sample
from seqlab.errors import ConfigError, DataError, SeqlabError
from seqlab.models.base import LanguageModel
from seqlab.tasks.base import TaskData
from seqlab.text.specials import EOS
from seqlab.text.tokenizer import Tokenizer, train_tokenizer
from seqlab.training.loss import label_smoothed_nll

__all__ = ["LMDataConfig", "LanguageModelTask", "NextTokenLoss", "generate", "token_stream"]

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

    @torch.inference_mode()
    def evaluate(self, model: LanguageModel, data: TaskData) -> dict[str, float]:
        """Loss (nats/token), perplexity and, for character models, bits per character on the
        non-overlapping windows of the dev text."""
        if data.dev is None:
            return {}
        ids = data.dev
        T = min(self.cfg.data.block_size, ids.numel() - 1)
        rows = max(1, self.cfg.train.batch_tokens // T)
        starts = torch.arange((ids.numel() - 1) // T) * T
        was_training = model.training
        model.eval()
        nll, n = 0.0, 0
        for chunk in starts.split(rows):
            batch = windows(ids, chunk, T)
            logits = model(batch.inputs)  # (B, T, V)
            nll += float(F.cross_entropy(logits.flatten(0, 1).float(), batch.targets.flatten(), reduction="sum"))
            n += batch.targets.numel()
        model.train(was_training)
        metrics = {"loss": nll / n, "ppl": math.exp(min(nll / n, 50))}
        if self.cfg.tokenizer.kind == "char":
            metrics["bpc"] = nll / n / math.log(2)
        return metrics

    def summary(self, metrics: dict[str, float]) -> str:
        line = f"dev loss {metrics['loss']:.4f} nats/token, ppl {metrics['ppl']:.2f}"
        return line + (f", {metrics['bpc']:.3f} bits/char" if "bpc" in metrics else "")


@torch.inference_mode()
def generate(model: LanguageModel, tokenizer: Tokenizer, prompt: str, *, max_tokens: int = 200,
             temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
             seed: int | None = None) -> str:
    """The prompt and a sampled continuation, up to ``<eos>`` or ``max_tokens`` tokens.

    The prompt is read once (``model.start``, filling the cache); each new token then costs one
    cached ``decode_step``. An empty prompt starts a new document (after ``<eos>``).

    Args:
        model: a trained language model (put in eval mode here).
        tokenizer: the run's tokenizer.
        prompt: the text to continue.
        max_tokens: most tokens drawn (fewer when the model's positions run out).
        temperature, top_k, top_p: see :func:`seqlab.decoding.sampling.sample_next`; temperature 0
            is greedy.
        seed: seeds the draws (the same seed, prompt and model give the same text).
    """
    model.eval()
    ids = tokenizer.encode(prompt) or [EOS]
    room = model.max_positions - len(ids)
    if room < 1:
        raise SeqlabError(f"the prompt has {len(ids)} tokens; this model reads at most {model.max_positions - 1}")
    device = next(model.parameters()).device
    logits, state = model.start(torch.tensor([ids], device=device))
    generator = torch.Generator(device=device).manual_seed(seed) if seed is not None else None
    out = sample(model.decode_step, state, logits=logits, max_len=min(max_tokens, room), temperature=temperature,
                 top_k=top_k, top_p=top_p, generator=generator)
    # decoded together with the prompt, so a subword tokenizer puts the space between them
    head, full = tokenizer.decode(ids), tokenizer.decode(ids + out.tokens[0])
    return prompt + (full[len(head):] if full.startswith(head) else tokenizer.decode(out.tokens[0]))
