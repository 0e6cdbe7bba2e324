"""Dynamic int8 quantization of the linear layers, for fast decoding on the CPU.

Each weight matrix is quantized once, per output row (symmetric, zero point 0):

    s_j = max_i |W_ji| / 127,    Q_ji = round(W_ji / s_j)  in [-127, 127]

and at every call the input is quantized per tensor from its own range ("dynamic"), multiplied in
int8 with int32 accumulation, and scaled back to float32:  y ~= (s_x x_q) (Q^T diag(s)) + b.

:func:`quantize_int8` returns a copy of a model whose linear layers are :class:`Int8Linear`
(PyTorch's quantized ``linear_dynamic`` kernels, fbgemm/x86 engine: AVX2 or better). Embeddings,
layer norms and attention products stay float32. Products that read a linear layer's ``weight``
rows directly rather than calling it (the cross-attention's W_Q and [W_K; W_V], rows of the
stacked ``W_qkv`` of :class:`~seqlab.nn.attention.MultiHeadAttention`) keep computing in float32
from the original weight, which :class:`Int8Linear` keeps for them. ``tests/export/test_int8.py``
holds int8 logits close to float32 and most greedy translations equal.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import Tensor, nn

from seqlab.errors import SeqlabError

__all__ = ["Int8Linear", "int8_engine", "quantize_int8"]

_ENGINES = ("x86", "fbgemm")


def _supported_engines() -> list[str]:
    return list(torch.backends.quantized.supported_engines)


def int8_engine() -> str:
    """Select and return PyTorch's x86 quantized engine, or say why int8 decoding is unavailable."""
    supported = _supported_engines()
    for engine in _ENGINES:
        if engine in supported:
            if torch.backends.quantized.engine not in _ENGINES:
                torch.backends.quantized.engine = engine
            return torch.backends.quantized.engine
    raise SeqlabError("int8 decoding needs PyTorch's x86/fbgemm quantized engine (an x86 CPU with AVX2); "
                      f"this PyTorch has {', '.join(supported) or 'none'}: use --precision fp32")


class Int8Linear(nn.Module):
    """y = x W^T + b with W in int8 per output row and x quantized dynamically (see the module docstring).

    Args:
        linear: the float layer to quantize (not changed).
    """

    def __init__(self, linear: nn.Linear):
        super().__init__()
        int8_engine()
        w = linear.weight.detach().float()
        scale = (w.abs().amax(dim=1) / 127.0).clamp(min=1e-12)  # (out,) one scale per row
        bias = None if linear.bias is None else linear.bias.detach().float()
        with warnings.catch_warnings():  # PyTorch 2.13 marks quantized tensors deprecated (to move to torchao)
            warnings.simplefilter("ignore", UserWarning)
            q = torch.quantize_per_channel(w, scale.double(), torch.zeros_like(scale, dtype=torch.long), 0,
                                           torch.qint8)
            self._packed = torch.ops.quantized.linear_prepack(q, bias)
        self.in_features, self.out_features = linear.in_features, linear.out_features
        # the float weight, for modules that read it instead of calling this layer (not saved)
        self.register_buffer("weight", linear.weight.detach(), persistent=False)
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach(), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        """(..., in) float -> (..., out) float32."""
        shape = x.shape
        y = torch.ops.quantized.linear_dynamic(x.reshape(-1, shape[-1]).float().contiguous(), self._packed, True)
        return y.view(*shape[:-1], self.out_features)  # (..., out)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8 weights per row"


def quantize_int8(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (in eval mode) with every ``nn.Linear`` replaced by :class:`Int8Linear`.

    Raises:
        SeqlabError: when PyTorch has no x86/fbgemm quantized engine.
    """
    int8_engine()
    quantized = copy.deepcopy(model).eval()
    for parent in list(quantized.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Linear):
                setattr(parent, name, Int8Linear(child))
    return quantized
