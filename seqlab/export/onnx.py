"""A seqlab Transformer as two ONNX graphs, run by ONNX Runtime behind seqlab's own decoding.

The graphs are the two halves of :class:`~seqlab.models.base.Seq2SeqModel`'s decoding interface:

* ``encoder.onnx``: ``src`` (B, S) int64 -> ``memory_mask`` (B, S) bool and, per decoder layer l,
  ``cross_k_l``, ``cross_v_l`` (B, h, S, d_k): the cross-attention keys and values of the encoder
  output, computed once per sentence;
* ``decoder_step.onnx``: ``y_prev`` (B,) int64, ``step`` (1,) int64 (the position t of y_prev),
  ``memory_mask``, the cross keys/values and, per layer, the self-attention cache ``self_k_l``,
  ``self_v_l`` (B, h, t, d_k) -> ``logits`` (B, V) of y_{t+1} and the cache grown to t + 1 positions.

The step graph computes what :meth:`~seqlab.models.transformer.TransformerSeq2Seq.decode_step`
computes, with the position a tensor input (``sqrt(d) E[y_prev] + PE(step)``) so one graph serves
every step. :class:`OnnxSeq2Seq` implements ``encode``/``decode_step`` over the two sessions, so
greedy and beam search, the length limits and the output are seqlab's own
(:mod:`seqlab.decoding`): ``tests/export/test_onnx.py`` holds its logits and translations equal to
the PyTorch model's. Each beam row carries its own copy of the cross keys/values (the graph is
traced with one query row per key row).

Graphs are written with ``torch.onnx.export``'s TorchScript-based exporter (``dynamo=False``),
with dynamic batch, source and cache lengths; it needs the ``onnx`` package, decoding needs
``onnxruntime``.
"""

from __future__ import annotations

import copy
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from seqlab.errors import SeqlabError
from seqlab.export.weights import position_table, transformer_of
from seqlab.models.base import DecoderState, Seq2SeqModel

__all__ = ["OnnxSeq2Seq", "OnnxState", "export_onnx"]

OPSET = 17


class _EncoderGraph(nn.Module):
    """src -> memory_mask, cross_k_0, cross_v_0, ... (what the decoder needs from the source)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, src: Tensor) -> tuple[Tensor, ...]:
        memory, mask = self.model.run_encoder(src)  # (B, S, d), (B, 1, 1, S)
        outputs = [mask[:, 0, 0, :]]  # (B, S)
        for layer in self.model.decoder_layers:
            outputs += layer.cross_attn.project_kv(memory, memory)  # 2 x (B, h, S, d_k)
        return tuple(outputs)


class _DecoderStepGraph(nn.Module):
    """One cached decoder step with the position as a tensor (see the module docstring)."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.register_buffer("table", position_table(model.tgt_embed).clone(), persistent=False)

    def forward(self, y_prev: Tensor, step: Tensor, memory_mask: Tensor, *caches: Tensor) -> tuple[Tensor, ...]:
        model, n = self.model, len(self.model.decoder_layers)
        embed = model.tgt_embed
        y = embed.embedding(y_prev[:, None]) * embed.scale + self.table.index_select(0, step)  # (B, 1, d)
        mask = memory_mask[:, None, None, :]  # (B, 1, 1, S)
        cross, past = caches[: 2 * n], caches[2 * n:]
        new_cache = []
        for i, layer in enumerate(model.decoder_layers):
            y, _, (k, v) = layer(y, past[2 * i], past[2 * i + 1], cross[2 * i], cross[2 * i + 1], mask, causal=False)
            new_cache += [k, v]  # (B, h, t + 1, d_k) each
        logits = model.generator(model.decoder_norm(y))[:, 0, :]  # (B, V)
        return (logits, *new_cache)


def _names(prefix: str, n: int) -> list[str]:
    return [f"{prefix}_{kind}_{i}" for i in range(n) for kind in ("k", "v")]


def export_onnx(model: nn.Module, out: str | Path) -> Path:
    """Write ``encoder.onnx``, ``decoder_step.onnx`` and ``seqlab.json`` into the folder ``out``.

    Raises:
        SeqlabError: a model that is not a Transformer, or no ``onnx`` package.
    """
    model = transformer_of(model, "ONNX export")
    if next(model.parameters()).device.type != "cpu":
        model = copy.deepcopy(model).cpu()  # traced on the CPU; ONNX Runtime runs it on the CPU
    try:
        import onnx  # noqa: F401  (torch.onnx.export needs it)
    except ImportError:
        raise SeqlabError("ONNX export needs the onnx package: pip install 'seqlab[export]'") from None
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    n = len(model.decoder_layers)
    was_training = model.training
    model.eval()
    try:
        src = torch.tensor([[4, 5, 6], [7, 8, 0]])  # (2, 3), any ids: tracing only needs shapes
        with torch.no_grad():
            encoded = _EncoderGraph(model)(src)
        batch, source, past = {0: "batch"}, {0: "batch", 1: "source"}, {0: "batch", 2: "past"}
        cross = _names("cross", n)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer and deprecation warnings: the test checks the graphs
            torch.onnx.export(
                _EncoderGraph(model), (src,), str(out / "encoder.onnx"), dynamo=False, opset_version=OPSET,
                input_names=["src"], output_names=["memory_mask", *cross],
                dynamic_axes={"src": source, "memory_mask": source,
                              **{c: {0: "batch", 2: "source"} for c in cross}})
            h, d_k = encoded[1].size(1), encoded[1].size(3)
            cache = [torch.zeros(2, h, 1, d_k) for _ in range(2 * n)]  # one position already cached
            step = torch.tensor([1])
            self_in, self_out = _names("self", n), _names("new_self", n)
            torch.onnx.export(
                _DecoderStepGraph(model), (torch.tensor([4, 5]), step, encoded[0], *encoded[1:], *cache),
                str(out / "decoder_step.onnx"), dynamo=False, opset_version=OPSET,
                input_names=["y_prev", "step", "memory_mask", *cross, *self_in],
                output_names=["logits", *self_out],
                dynamic_axes={"y_prev": batch, "memory_mask": source, "logits": batch,
                              **{c: {0: "batch", 2: "source"} for c in cross},
                              **{c: past for c in self_in}, **{c: {0: "batch", 2: "next"} for c in self_out}})
    finally:
        model.train(was_training)
    info = {"format": "onnx", "layers": n, "max_positions": int(model.max_positions),
            "src_vocab_size": int(model.src_vocab_size), "tgt_vocab_size": int(model.tgt_vocab_size)}
    (out / "seqlab.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return out


@dataclass
class OnnxState(DecoderState):
    """The decoder state of :class:`OnnxSeq2Seq`: every field one row per hypothesis.

    Attributes:
        memory_mask: (B, S) bool, True at real source tokens.
        cross: per layer k then v, (B, h, S, d_k).
        cache: per layer k then v, (B, h, t, d_k): the self-attention keys/values so far.
        step: t, the number of target positions already consumed.
    """

    memory_mask: Tensor | None = None
    cross: list[Tensor] = field(default_factory=list)
    cache: list[Tensor] = field(default_factory=list)
    step: int = 0


class OnnxSeq2Seq(Seq2SeqModel):
    """``encode``/``decode_step`` through the ONNX Runtime sessions of an :func:`export_onnx` folder.

    A module without parameters: seqlab's decoding functions drive it like any model (decoding only;
    ``features`` is not available).

    Args:
        path: the exported folder.
        threads: intra-op threads (default ``torch.get_num_threads()``).
    """

    def __init__(self, path: str | Path, *, threads: int | None = None):
        super().__init__()
        try:
            import onnxruntime as ort
        except ImportError:
            raise SeqlabError("the onnx engine needs onnxruntime: pip install 'seqlab[export]'") from None
        path = Path(path)
        info_path = path / "seqlab.json"
        if not info_path.is_file():
            raise SeqlabError(f"{path}: not an ONNX export of seqlab (no seqlab.json)")
        info = json.loads(info_path.read_text(encoding="utf-8"))
        self.layers, self.max_positions = int(info["layers"]), int(info["max_positions"])
        self.src_vocab_size, self.tgt_vocab_size = int(info["src_vocab_size"]), int(info["tgt_vocab_size"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        self.encoder = ort.InferenceSession(str(path / "encoder.onnx"), options, providers=providers)
        self.decoder = ort.InferenceSession(str(path / "decoder_step.onnx"), options, providers=providers)
        self._cross, self._self = _names("cross", self.layers), _names("self", self.layers)

    def features(self, src: Tensor, tgt_in: Tensor, *, teacher_forcing: float = 1.0) -> Tensor:
        raise SeqlabError("the onnx engine decodes only (no teacher-forced pass)")

    @property
    def output_layer(self) -> nn.Linear:
        raise SeqlabError("the onnx engine decodes only (no output layer to read)")

    def encode(self, src: Tensor) -> OnnxState:
        outputs = self.encoder.run(None, {"src": src.cpu().numpy()})
        cross = [torch.from_numpy(a) for a in outputs[1:]]
        empty = cross[0].new_zeros(cross[0].size(0), cross[0].size(1), 0, cross[0].size(3))  # (B, h, 0, d_k)
        return OnnxState(memory_mask=torch.from_numpy(outputs[0]), cross=cross, cache=[empty] * (2 * self.layers))

    def decode_step(self, state: OnnxState, y_prev: Tensor) -> tuple[Tensor, OnnxState]:
        feeds = {"y_prev": y_prev.cpu().numpy(), "step": np.array([state.step], dtype=np.int64),
                 "memory_mask": state.memory_mask.numpy()}
        feeds.update({name: t.numpy() for name, t in zip(self._cross, state.cross)})
        feeds.update({name: t.contiguous().numpy() for name, t in zip(self._self, state.cache)})
        outputs = self.decoder.run(None, feeds)
        new = OnnxState(memory_mask=state.memory_mask, cross=state.cross, step=state.step + 1, group=state.group,
                        cache=[torch.from_numpy(a) for a in outputs[1:]])
        return torch.from_numpy(outputs[0]), new
