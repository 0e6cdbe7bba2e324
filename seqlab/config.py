"""Typed experiment configuration: dataclasses, validated on load.

One YAML file describes one experiment::

    name: en-pt-transformer
    data: {train: builtin:synthetic-en-pt, dev: builtin:synthetic-en-pt-dev}
    tokenizer: {kind: bpe, vocab_size: 8000}
    model: {type: transformer, layers: 3, d_model: 256, heads: 4, ffn: 1024}
    train: {batch_tokens: 4096, max_steps: 4000}

Every section is a dataclass below. Unknown keys, wrong types, values outside a field's
``Literal`` choices and numbers outside a field's :class:`Range` raise
:class:`~seqlab.errors.ConfigError` naming the dotted key and what was expected. Command-line
overrides use the same dotted keys (``model.layers=4``) and are parsed as YAML scalars.

The schema depends on the task. ``task`` (default ``translation``, so configs and run folders
written before tasks existed still load) picks a task class from :mod:`seqlab.tasks`, which names
the dataclass of the ``data`` section and the model dataclasses its ``model.type`` may choose
from; each architecture only accepts its own keys. ``tokenizer``, ``train`` and ``decode`` are
shared by every task.

Every ``data`` and ``model`` dataclass has a ``check(cfg)`` method that validates its own keys
against the rest of the experiment (raising :class:`~seqlab.errors.ConfigError` with the dotted
key); a model dataclass also has ``width``, the d of the ``noam`` schedule. The translation
sections live here; other tasks define theirs next to their task or model.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from seqlab.errors import ConfigError
from seqlab.io import atomic_write_text
from seqlab.text.specials import check_reserved

__all__ = [
    "DataConfig",
    "DecodeConfig",
    "ExperimentConfig",
    "GPTConfig",
    "GenerationConfig",
    "ModelConfig",
    "RecurrentConfig",
    "TokenizerConfig",
    "TrainConfig",
    "TransformerConfig",
    "apply_overrides",
    "at_least",
    "config_from_dict",
    "config_to_dict",
    "generation_config",
    "load_config",
    "positive",
    "probability",
    "save_config",
]


@dataclass(frozen=True)
class Range:
    """The valid values of a numeric config field (each element, for a list); None always passes."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    """``low`` itself is excluded (``lr > 0``)."""
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def __str__(self) -> str:
        if self.high is not None:
            return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"
        if self.low == 0:
            return "positive" if self.low_open else "0 or more"
        return f"above {self.low:g}" if self.low_open else f"at least {self.low:g}"


def _ranged(default: Any, low: float | None = None, high: float | None = None, *, low_open: bool = False,
            high_open: bool = False) -> Any:
    """A dataclass field whose value must lie in :class:`Range` (checked on load, naming the key)."""
    return field(default=default, metadata={"range": Range(low, high, low_open, high_open)})


def positive(default: Any) -> Any:
    return _ranged(default, 0, low_open=True)


def at_least(n: int, default: Any) -> Any:
    return _ranged(default, n)


def probability(default: float, *, one: bool = True) -> Any:
    """In [0, 1], or [0, 1) with ``one=False`` (dropout, smoothing: 1 would remove everything)."""
    return _ranged(default, 0, 1, high_open=not one)


@dataclass
class DataConfig:
    """Where the parallel corpus comes from.

    ``train``/``dev``/``test`` are a path to a TSV (``source<TAB>target``) or JSONL (``src``/``tgt``)
    file, a list of two aligned plain-text files ``[source.txt, target.txt]``, or a built-in corpus
    such as ``builtin:synthetic-en-pt`` (the embedded grammar generator, no download).
    """

    train: str | list[str] = "builtin:synthetic-en-pt"
    dev: str | list[str] | None = "builtin:synthetic-en-pt-dev"
    test: str | list[str] | None = None
    format: Literal["auto", "tsv", "jsonl", "text"] = "auto"
    reverse: bool = False
    """Swap the columns (translate target->source, e.g. pt->en from an en-pt file)."""
    max_len: int = at_least(1, 128)
    """Longest sentence, in subword tokens, kept for training."""
    on_error: Literal["raise", "skip"] = "raise"
    """``raise`` stops at the first malformed line; ``skip`` drops it and warns with a count."""
    dev_size: int = at_least(1, 500)
    """Sentences of dev data used for BLEU during training (all of it for loss)."""

    def check(self, cfg: ExperimentConfig) -> None:
        if self.max_len + 1 > cfg.model.max_positions:
            raise ConfigError("data.max_len", f"{self.max_len} tokens plus <sos>/<eos> need more than "
                              f"model.max_positions={cfg.model.max_positions}")

    def with_absolute_paths(self) -> DataConfig:
        """This section with file paths made absolute, so ``--resume`` works from any directory."""
        return dataclasses.replace(self, train=absolute_data_path(self.train), dev=absolute_data_path(self.dev),
                                   test=absolute_data_path(self.test))


def absolute_data_path(spec: Any) -> Any:
    """A data path (or a list of them) made absolute; ``None`` and ``builtin:`` names unchanged."""
    if spec is None:
        return None
    if isinstance(spec, list):
        return [absolute_data_path(s) for s in spec]
    return spec if spec.startswith("builtin:") else str(Path(spec).resolve())


@dataclass
class TokenizerConfig:
    """Subword (BPE), word or character tokenisation, shared or per side."""

    kind: Literal["bpe", "word", "char"] = "bpe"
    vocab_size: int = at_least(8, 8000)
    joint: bool = True
    """One vocabulary for both sides (needed for ``model.share_embeddings``)."""
    lowercase: bool = False
    min_frequency: int = at_least(1, 2)
    specials: list[str] = field(default_factory=list)
    """Reserved specials after the four fixed ones (ids 4, 5, ...), e.g. ``["<sep>"]`` for chat."""


@dataclass
class TransformerConfig:
    """The encoder-decoder Transformer of Vaswani et al. (2017)."""

    type: Literal["transformer"] = "transformer"
    layers: int = at_least(1, 3)
    """N, the number of encoder layers and of decoder layers."""
    decoder_layers: int | None = at_least(1, None)
    """Decoder depth when it differs from ``layers``."""
    d_model: int = at_least(1, 256)
    heads: int = at_least(1, 4)
    ffn: int = at_least(1, 1024)
    dropout: float = probability(0.1, one=False)
    attention_dropout: float = probability(0.0, one=False)
    norm: Literal["post", "pre", "none"] = "post"
    """Layer normalisation after the residual sum (``post``, the paper), before each sub-layer
    (``pre``), or none at all (an ablation)."""
    residual: bool = True
    """Residual connections around every sub-layer (``false`` is an ablation)."""
    positions: Literal["sinusoidal", "learned", "none"] = "sinusoidal"
    """``none`` adds no positional encoding: the model cannot see word order (an ablation)."""
    max_positions: int = at_least(1, 512)
    share_embeddings: bool = False
    """One embedding matrix for source and target (requires ``tokenizer.joint``)."""
    tie_output: bool = True
    """Output projection shares the target embedding matrix."""
    init: Literal["xavier", "kaiming", "normal"] = "xavier"
    embeddings_from: str | None = None
    """word2vec text file (``word v1 v2 ...``, e.g. from ``seqlab embed export``) to initialise the
    token embeddings E from (d_model numbers a word)."""

    @property
    def width(self) -> int:
        return self.d_model

    def check(self, cfg: ExperimentConfig) -> None:
        t = cfg.train
        _check_heads(self)
        _check_sizes(self)
        decays_below_one = t.teacher_forcing_decay_steps > 0 and t.teacher_forcing_min < 1.0
        if t.teacher_forcing < 1.0 or decays_below_one:
            raise ConfigError(
                "train.teacher_forcing" if t.teacher_forcing < 1.0 else "train.teacher_forcing_min",
                "a Transformer decodes all positions in parallel and is trained with teacher forcing "
                "only; set 1.0 (scheduled sampling is for recurrent models)",
            )
        _check_shared_embeddings(self, cfg)


def _check_heads(m: TransformerConfig | GPTConfig) -> None:
    if m.d_model % m.heads:
        raise ConfigError("model.heads", f"d_model={m.d_model} must be divisible by heads={m.heads}")


def _check_sizes(m: TransformerConfig | RecurrentConfig | GPTConfig) -> None:
    """At least one layer and one position."""
    for name, value in (("layers", m.layers), ("max_positions", m.max_positions)):
        if value < 1:
            raise ConfigError(f"model.{name}", "must be at least 1")


def _check_shared_embeddings(m: TransformerConfig | RecurrentConfig, cfg: ExperimentConfig) -> None:
    if m.share_embeddings and not cfg.tokenizer.joint:
        raise ConfigError("model.share_embeddings", "needs tokenizer.joint: true (one vocabulary)")


@dataclass
class RecurrentConfig:
    """A recurrent encoder-decoder (Sutskever et al. 2014; Bahdanau et al. 2015; Luong et al. 2015)."""

    type: Literal["rnn", "lstm", "gru"] = "lstm"
    attention: Literal["none", "dot", "general", "additive"] = "additive"
    layers: int = at_least(1, 2)
    embedding: int = at_least(1, 256)
    hidden: int = at_least(1, 256)
    bidirectional: bool = True
    """Bidirectional encoder; its two directions are concatenated and projected to ``hidden``."""
    input_feeding: bool = True
    """Feed the previous attentional vector into the next decoder step (Luong et al. 2015)."""
    dropout: float = probability(0.2, one=False)
    nonlinearity: Literal["tanh", "relu"] = "tanh"
    """Activation of the vanilla RNN (``type: rnn``): h_t = tanh(...) or max(0, ...)."""
    cells: Literal["fused", "explicit"] = "fused"
    """``fused`` uses torch.nn.RNN/LSTM/GRU; ``explicit`` unrolls the textbook cells in Python."""
    gru_reset: Literal["after", "before"] = "after"
    """Where the GRU reset gate acts: ``after`` the hidden projection (PyTorch, cuDNN) or
    ``before`` it (Cho et al. 2014). Only ``after`` can use the fused kernel."""
    max_positions: int = at_least(1, 1024)
    share_embeddings: bool = False
    tie_output: bool = False
    init: Literal["xavier", "kaiming", "uniform"] = "xavier"
    recurrent_init: Literal["orthogonal", "same"] = "orthogonal"
    embeddings_from: str | None = None
    """word2vec text file (``word v1 v2 ...``) to initialise word embeddings from."""

    @property
    def width(self) -> int:
        return self.hidden

    def check(self, cfg: ExperimentConfig) -> None:
        _check_sizes(self)
        _check_shared_embeddings(self, cfg)


@dataclass
class GPTConfig:
    """A decoder-only Transformer language model (Radford et al. 2018, 2019): causal blocks only."""

    type: Literal["gpt"] = "gpt"
    layers: int = at_least(1, 4)
    d_model: int = at_least(1, 128)
    heads: int = at_least(1, 4)
    ffn: int = at_least(1, 512)
    dropout: float = probability(0.0, one=False)
    attention_dropout: float = probability(0.0, one=False)
    norm: Literal["post", "pre"] = "pre"
    positions: Literal["sinusoidal", "learned"] = "learned"
    max_positions: int = at_least(1, 256)
    """Longest context, in tokens (at least ``data.block_size``)."""
    tie_output: bool = True
    """Output projection shares the token embedding matrix."""
    init: Literal["xavier", "kaiming", "normal"] = "normal"
    embedding_scale: Literal["none", "sqrt_d"] = "none"
    """h_0 = E[x] + P with E ~ N(0, 0.02) (``none``, GPT-2), or sqrt(d) E[x] + P with E ~ N(0, 1/d)
    (``sqrt_d``, the encoder-decoder's convention; with a tied output layer it starts by predicting
    the input token again: about 11 nats/char at step 0 on Shakespeare, against ln V = 4.5)."""

    @property
    def width(self) -> int:
        return self.d_model

    def check(self, cfg: ExperimentConfig) -> None:
        _check_heads(self)
        _check_sizes(self)


ModelConfig = Union[TransformerConfig, RecurrentConfig, GPTConfig]


@dataclass
class TrainConfig:
    """Optimisation, schedule, budget and checkpointing."""

    seed: int = at_least(0, 1)
    batch_tokens: int = at_least(1, 4096)
    """Target tokens per batch; batches are built from length-sorted buckets."""
    max_steps: int = at_least(1, 4000)
    max_epochs: int | None = at_least(1, None)
    max_minutes: float | None = positive(None)
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    """``sgd`` is plain stochastic gradient descent, theta <- theta - lr_t g (word2vec's optimiser)."""
    lr: float = positive(1e-3)
    """Peak learning rate (for ``noam`` it is the scale factor on d_model^-0.5 * ...)."""
    betas: list[float] = field(default_factory=lambda: [0.9, 0.98], metadata={"range": Range(0, 1, high_open=True)})
    eps: float = positive(1e-9)
    weight_decay: float = at_least(0, 0.0)
    schedule: Literal["noam", "cosine", "linear", "constant", "inverse_sqrt"] = "cosine"
    warmup_steps: int = at_least(0, 400)
    min_lr_ratio: float = probability(0.05)
    label_smoothing: float = probability(0.1, one=False)
    clip_norm: float | None = positive(1.0)
    clip_value: float | None = positive(None)
    teacher_forcing: float = probability(1.0)
    """Probability of feeding the gold previous token (1.0 = pure teacher forcing)."""
    teacher_forcing_min: float = probability(1.0)
    teacher_forcing_decay_steps: int = at_least(0, 0)
    """Linearly decay ``teacher_forcing`` to ``teacher_forcing_min`` over this many steps."""
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    """``auto``: bf16 autocast where the hardware computes bf16 natively, fp16 with loss scaling on
    GPUs without bf16, else fp32 (seqlab.precision)."""
    eval_every: int = at_least(1, 500)
    log_every: int = at_least(1, 50)
    checkpoint_every: int | None = at_least(1, None)
    """Save ``last`` every N steps (always at each evaluation and at the end)."""
    patience: int | None = at_least(1, None)
    """Stop after this many evaluations without improvement of the best metric."""
    best_metric: str | None = None
    """The dev metric that picks checkpoint ``best`` and drives ``patience``: any metric the task
    reports (translation: ``bleu``, ``chrf``, ``loss``; language models: ``loss``); null is
    the task's default."""
    threads: int | None = at_least(1, None)
    device: str = "auto"
    """``auto`` (CUDA when available, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``."""


@dataclass
class DecodeConfig:
    """Generation settings: defaults for ``translate``, ``chat``, ``evaluate`` and the API.

    The same keys are the keyword arguments of ``Translator.translate`` / ``Chatbot.reply`` and
    the options of the CLI (``--top-k`` for ``top_k``); :func:`generation_config` merges them.
    """

    strategy: Literal["greedy", "beam", "sample"] = "beam"
    """``beam`` with ``beam: 1`` is greedy search; ``sample`` draws with temperature/top-k/top-p."""
    beam: int = at_least(1, 5)
    length_penalty: float = at_least(0, 0.6)
    max_len_ratio: float = positive(1.5)
    max_len_offset: int = at_least(0, 10)
    """Without ``max_new_tokens`` the output limit is ceil(max_len_ratio * source length) + offset."""
    max_new_tokens: int | None = at_least(1, None)
    """Most output tokens, ``<eos>`` included (chat replies); replaces the source-length limit."""
    min_length: int = at_least(0, 0)
    """``<eos>`` is blocked until this many tokens are out."""
    temperature: float | None = at_least(0, None)
    """Sampling temperature tau (default 1.0; 0 = argmax). Sampling only."""
    top_k: int | None = at_least(1, None)
    top_p: float | None = _ranged(None, 0, 1, low_open=True)
    repetition_penalty: float = positive(1.0)
    """CTRL's penalty theta for tokens already generated (1 = off)."""
    no_repeat_ngram: int = at_least(0, 0)
    """No n-gram of this size appears twice in an output (0 = off)."""
    seed: int | None = at_least(0, None)
    """Seed of the sampler: the same input, seed and settings give the same sample."""
    n_best: int = at_least(1, 1)
    precision: Literal["auto", "fp32", "bf16", "fp16", "int8"] = "auto"
    """``bf16`` decodes under bf16 autocast (about twice as fast on CPUs with bf16 units, 10-100x slower
    on CPUs without); ``auto`` chooses bf16 exactly where the hardware computes it natively; ``int8``
    decodes with int8 linear layers (:mod:`seqlab.export.int8`; the fast native path on CPUs without
    bf16) or an int8 CTranslate2 model (:mod:`seqlab.export.engines`)."""

    def __post_init__(self) -> None:
        _check_decode(self)


GenerationConfig = DecodeConfig
"""The generation settings under the name other toolkits use."""


def _check_decode(d: DecodeConfig) -> None:
    """Range and consistency checks of the ``decode`` section (keys named ``decode.*``)."""
    _check_ranges(d, "decode")
    if d.strategy != "sample":
        for key in ("temperature", "top_k", "top_p"):
            if getattr(d, key) is not None:
                raise ConfigError(f"decode.{key}", f"applies to decode.strategy: sample only, "
                                  f"not {d.strategy!r}")
    if d.n_best > 1 and (d.strategy != "beam" or d.n_best > d.beam):
        raise ConfigError("decode.n_best", f"n_best={d.n_best} needs decode.strategy: beam with a beam of at least "
                          f"{d.n_best} (strategy {d.strategy!r}, beam={d.beam})")
    if d.max_new_tokens is not None and d.min_length >= d.max_new_tokens:
        raise ConfigError("decode.min_length", f"{d.min_length} leaves no room for <eos> within "
                          f"decode.max_new_tokens={d.max_new_tokens}")


_SAMPLING_KEYS = ("temperature", "top_k", "top_p")


def generation_config(base: DecodeConfig, **options: Any) -> DecodeConfig:
    """``base`` with the given generation options, validated like the ``decode`` section.

    Options set to None are ignored (they keep the run's value). When ``strategy`` is not given,
    it follows from the options: a sampling option (``temperature``, ``top_k``, ``top_p``) means
    ``sample``, a ``beam`` means ``beam`` (beam 1 is greedy search); sampling options of the base
    are dropped when the result is not sampling.

    Raises:
        ConfigError: naming ``decode.<key>`` for an unknown option or a bad value.
    """
    given = {k: v for k, v in options.items() if v is not None}
    if "strategy" not in given:
        if any(k in given for k in _SAMPLING_KEYS):
            given["strategy"] = "sample"
        elif "beam" in given:
            given["strategy"] = "beam"
    merged = {**config_to_dict(base), **given}
    if merged["strategy"] != "sample":
        for key in _SAMPLING_KEYS:
            if key not in given:
                merged[key] = None
    return _build(DecodeConfig, merged, "decode", None)


@dataclass
class ExperimentConfig:
    """One experiment. ``data`` and ``model`` default to the task's defaults (see :mod:`seqlab.tasks`)."""

    name: str = "experiment"
    task: str = "translation"
    data: Any = None
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: Any = None
    train: TrainConfig = field(default_factory=TrainConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)

    def __post_init__(self) -> None:
        task = _task_class(self.task)
        if self.data is None:
            self.data = task.data_config()
        if self.model is None:
            self.model = next(iter(task.model_configs.values()))()
        if self.train.best_metric is None:
            self.train.best_metric = task.best_metric
        if not isinstance(self.data, task.data_config):
            raise ConfigError("data", f"task {self.task!r} needs a {task.data_config.__name__} section, "
                              f"got {type(self.data).__name__}")
        if type(self.model) not in task.model_configs.values():
            raise ConfigError("model.type", f"task {self.task!r} takes a model.type of "
                              f"{', '.join(task.model_configs)}, got a {type(self.model).__name__}")
        if self.train.best_metric not in task.metrics:
            raise ConfigError("train.best_metric", f"task {self.task!r} reports {', '.join(task.metrics)}; "
                              f"got {self.train.best_metric!r}")
        _check_consistency(self)


def _task_class(name: str, path: str | None = None) -> Any:
    """The task class registered as ``name`` (imported late: tasks import this module)."""
    from seqlab.tasks import TASKS, get_task

    if name not in TASKS:
        raise ConfigError("task", f"unknown task {name!r}; valid: {', '.join(TASKS)}", path)
    return get_task(name)


# --------------------------------------------------------------------------------------------
# validation


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        (inner,) = typing.get_args(tp)
        return f"a list of {_type_name(inner)}"
    if tp is type(None):
        return "null"
    return {int: "an integer", float: "a number", str: "a string", bool: "true/false"}.get(tp, str(tp))


_FLOAT_RE = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def _coerce(value: Any, tp: Any, key: str, path: str | None) -> Any:
    """Return ``value`` checked against the annotation ``tp``; raise ConfigError naming ``key``."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
    elif origin in (Union, types.UnionType):
        for option in typing.get_args(tp):
            try:
                return _coerce(value, option, key, path)
            except ConfigError:
                continue
    elif origin is list:
        (inner,) = typing.get_args(tp)
        if isinstance(value, (list, tuple)):
            return [_coerce(v, inner, f"{key}[{i}]", path) for i, v in enumerate(value)]
    elif tp is type(None):
        if value is None:
            return None
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _FLOAT_RE.match(value.strip()):
            return float(value)  # YAML 1.1 reads 3e-4 (no dot) as a string
    elif tp is str:
        if isinstance(value, str):
            return value
    raise ConfigError(key, f"expected {_type_name(tp)}, got {value!r}", path)


def _build(cls: type, data: Any, prefix: str, path: str | None) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(prefix or None, f"expected a mapping of keys, got {data!r}", path)
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        key = f"{prefix}.{unknown[0]}" if prefix else unknown[0]
        raise ConfigError(key, f"unknown key; valid keys here are: {', '.join(sorted(names))}", path)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        key = f"{prefix}.{f.name}" if prefix else f.name
        value = data[f.name]
        if cls is ExperimentConfig and f.name in ("data", "model"):
            task = _task_class(_coerce(data.get("task", "translation"), str, "task", path), path)
            build = _build_model if f.name == "model" else _build
            kwargs[f.name] = build(task.model_configs if f.name == "model" else task.data_config, value, key, path)
        elif dataclasses.is_dataclass(hints[f.name]):
            kwargs[f.name] = _build(hints[f.name], value, key, path)
        else:
            kwargs[f.name] = _coerce(value, hints[f.name], key, path)
    try:
        return cls(**kwargs)
    except ConfigError as err:
        if err.path is None and path is not None:
            raise ConfigError(err.key, str(err).split(": ", 1)[-1], path) from None
        raise


def _build_model(configs: dict[str, type], data: Any, key: str, path: str | None) -> Any:
    """The ``model`` section as the dataclass its ``type`` names (the first of ``configs`` by default)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(key, f"expected a mapping of keys, got {data!r}", path)
    kind = data.get("type", next(iter(configs)))
    if kind not in configs:
        raise ConfigError(f"{key}.type", f"unknown model type {kind!r}; valid: {', '.join(configs)}", path)
    return _build(configs[kind], data, key, path)


def _check_ranges(section: Any, prefix: str) -> None:
    """Every field of ``section`` declared with a :class:`Range` holds a value in it."""
    for f in dataclasses.fields(section):
        valid = f.metadata.get("range")
        value = getattr(section, f.name)
        if valid is None or value is None:
            continue
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v not in valid:
                nullable = type(None) in typing.get_args(typing.get_type_hints(type(section))[f.name])
                null = ", or null" if nullable else ""
                raise ConfigError(f"{prefix}.{f.name}", f"must be {valid}{null}, got {value}")


def _check_consistency(cfg: ExperimentConfig) -> None:
    """Checks of the shared sections; then the task's data and model sections check themselves."""
    for name in ("data", "tokenizer", "model", "train", "decode"):
        _check_ranges(getattr(cfg, name), name)
    t = cfg.train
    if len(cfg.train.betas) != 2:
        raise ConfigError("train.betas", f"expected two numbers [beta_1, beta_2], got {cfg.train.betas}")
    if t.schedule in ("cosine", "linear") and t.warmup_steps >= t.max_steps:
        raise ConfigError("train.warmup_steps", f"the {t.schedule} schedule needs warmup_steps ({t.warmup_steps}) "
                          f"below train.max_steps ({t.max_steps})")
    if t.schedule == "noam" and t.warmup_steps < 1:
        raise ConfigError("train.warmup_steps", "the noam schedule needs at least 1 warmup step")
    try:
        check_reserved(cfg.tokenizer.specials)
    except ValueError as err:
        raise ConfigError("tokenizer.specials", str(err)) from None
    from seqlab.devices import (
        check_device,  # devices imports torch; config loads without it
    )

    check_device(t.device)
    cfg.data.check(cfg)
    cfg.model.check(cfg)


# --------------------------------------------------------------------------------------------
# loading, overrides, saving


def config_from_dict(data: dict, path: str | None = None) -> ExperimentConfig:
    """Validate a plain dict (as read from YAML) into an :class:`ExperimentConfig`."""
    return _build(ExperimentConfig, data, "", path)


def config_to_dict(cfg: Any) -> dict:
    """The config as plain data (round-trips through :func:`config_from_dict`)."""
    return dataclasses.asdict(cfg)


def _set_dotted(data: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(key, f"'{part}' is not a section")
        node = child
    node[parts[-1]] = value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply ``key.sub=value`` overrides (values parsed as YAML scalars) to a raw config dict."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(None, f"override {item!r} is not of the form key.sub=value")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(None, f"override {item!r} has an empty key")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        _set_dotted(data, key, value)
    return data


def read_yaml(path: str | Path) -> dict:
    """Read a YAML mapping, with errors that name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(None, "config file not found", str(path))
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise ConfigError(None, f"not UTF-8 text ({err.reason} at byte {err.start})", str(path)) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(None, f"invalid YAML: {getattr(err, 'problem', err)}", where) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(None, "expected a mapping of sections at the top level", str(path))
    return data


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> ExperimentConfig:
    """Load a YAML experiment (or the defaults when ``path`` is None) and apply overrides."""
    data = read_yaml(path) if path is not None else {}
    apply_overrides(data, list(overrides or []))
    return config_from_dict(data, str(path) if path is not None else None)


def save_config(cfg: ExperimentConfig, path: str | Path) -> None:
    """Write the resolved config as YAML (atomically)."""
    atomic_write_text(Path(path), yaml.safe_dump(config_to_dict(cfg), sort_keys=False, allow_unicode=True))
