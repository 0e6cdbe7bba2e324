"""The linear layer y = x W^T + b, with an optional pre-packed weight for bf16 decoding on the CPU.

``torch.nn.functional.linear`` hands oneDNN a plain (out, in) weight, which oneDNN rearranges into
its blocked layout at every call. For training that is lost in the cost of large products; in
step-by-step decoding the products are small (a few dozen rows) and the rearrangement is a large
part of each one: on the 2-core dev machine (AVX-512 BF16) a 32 x 256 by 256 x 256 bf16 product
took about 50 us through ``F.linear`` and 30 us with the weight packed once
(``benchmarks/translation_speed.py`` measures the whole effect on decoding).

Packing is an explicit step that the decoding side owns, never a side effect of ``forward``:
:func:`pack_for_decoding` (called by :class:`seqlab.api.Translator` when it decodes in bf16)
stores an immutable :class:`PackedWeight` on every :class:`Linear` (and :class:`PackedModule`) of
a model; ``pack_for_decoding(model, enabled=False)`` drops them. A packed weight is a snapshot:
after the weights change (training, averaging, loading), pack again. ``forward`` only reads it, so
several threads may decode with one model.

The packed path is taken only when all of these hold: the module was packed, autograd is off, the
input is on the CPU, and the product runs in bf16 (under bf16 autocast, or with bf16 inputs).
Otherwise :class:`Linear` is exactly ``nn.Linear`` (same parameters, same state-dict keys).

The packing operators are private to PyTorch (``torch.ops.mkldnn._reorder_linear_weight`` and
``_linear_pointwise``) and refuse to run on CPUs without AVX-512 (or AVX-NE-CONVERT). So
:func:`pack_for_decoding` packs only where the CPU computes bf16 natively
(:func:`seqlab.precision.native_bf16`) and a probe at first use shows that the operators exist,
accept the expected arguments and give the result of ``F.linear`` (:func:`packed_linear_works`);
anywhere else it packs nothing and decoding runs the plain product. ``tests/nn/test_linear.py``
holds both paths equal and forces each answer of the probe.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqlab import precision

__all__ = [
    "Linear",
    "PackedModule",
    "PackedWeight",
    "bf16_product",
    "linear",
    "pack_for_decoding",
    "packed_linear_works",
]


def _probe(ops) -> bool:
    """Whether the oneDNN namespace ``ops`` packs and multiplies a small bf16 product correctly."""
    try:
        weight = torch.linspace(-1.0, 1.0, 6 * 8).reshape(6, 8).to(torch.bfloat16)  # (out, in)
        bias = torch.linspace(0.0, 1.0, 6).to(torch.bfloat16)
        x = torch.linspace(-2.0, 2.0, 3 * 8).reshape(3, 8).to(torch.bfloat16)  # (N, in)
        with torch.no_grad():
            packed = ops._reorder_linear_weight(weight)
            y = ops._linear_pointwise(x, packed, bias, "none", [], "")
            reference = F.linear(x, weight, bias)
        return (isinstance(y, Tensor) and y.shape == reference.shape and y.dtype == torch.bfloat16
                and torch.allclose(y.float(), reference.float(), rtol=1e-2, atol=1e-2))
    except Exception:  # a private operator may be missing, refuse this CPU, or change its signature
        return False


@functools.cache
def _packed_ops_work() -> bool:
    return _probe(torch.ops.mkldnn)


def packed_linear_works() -> bool:
    """Whether decoding may use packed bf16 weights here: native bf16 and working oneDNN operators."""
    return precision.native_bf16("cpu") and _packed_ops_work()


class PackedWeight:
    """W and b packed once for oneDNN bf16 products; read-only after construction."""

    __slots__ = ("weight", "bias")

    def __init__(self, weight: Tensor, bias: Tensor | None):
        with torch.no_grad():
            self.weight = torch.ops.mkldnn._reorder_linear_weight(weight.detach().to(torch.bfloat16))
            self.bias = None if bias is None else bias.detach().to(torch.bfloat16)

    def __call__(self, x: Tensor) -> Tensor:
        """x W^T + b in bf16: x (..., in) -> (..., out)."""
        rows = x.reshape(-1, x.size(-1)).to(torch.bfloat16)  # (N, in)
        y = torch.ops.mkldnn._linear_pointwise(rows, self.weight, self.bias, "none", [], "")  # (N, out)
        return y.view(*x.shape[:-1], y.size(-1))


def bf16_product(x: Tensor) -> bool:
    """Whether a product with input ``x`` runs in bf16 on the CPU (bf16 autocast, or bf16 ``x``)."""
    if x.device.type != "cpu":
        return False
    if torch.is_autocast_enabled("cpu"):
        return torch.get_autocast_dtype("cpu") == torch.bfloat16
    return x.dtype == torch.bfloat16


def linear(x: Tensor, weight: Tensor, bias: Tensor | None, packed: PackedWeight | None = None) -> Tensor:
    """x W^T + b; through ``packed`` (the same W and b, packed) when that path applies (see above)."""
    if packed is not None and not torch.is_grad_enabled() and bf16_product(x):
        return packed(x)
    return F.linear(x, weight, bias)


class PackedModule:
    """A module that keeps packed weights for decoding; :func:`pack_for_decoding` sets them."""

    def _pack_for_decoding(self, enabled: bool) -> None:
        """Pack this module's own weights (not its children's) when ``enabled``, else drop them."""
        raise NotImplementedError


def pack_for_decoding(module: nn.Module, *, enabled: bool) -> bool:
    """Pack the weights of every :class:`PackedModule` in ``module`` for bf16 decoding, or drop them.

    Call it when the weights are final (after loading, after training) and before decoding in
    bf16; call it again after they change. It packs only where :func:`packed_linear_works` and the
    module's parameters are on the CPU.

    Returns:
        Whether the weights are packed now.
    """
    enabled = enabled and packed_linear_works() and all(p.device.type == "cpu" for p in module.parameters())
    for m in module.modules():
        if isinstance(m, PackedModule):
            m._pack_for_decoding(enabled)
    return enabled


class Linear(nn.Linear, PackedModule):
    """``nn.Linear`` with the packed bf16 path for decoding (see the module docstring)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__(in_features, out_features, bias=bias)
        self.packed: PackedWeight | None = None

    def _pack_for_decoding(self, enabled: bool) -> None:
        self.packed = PackedWeight(self.weight, self.bias) if enabled else None

    def forward(self, x: Tensor) -> Tensor:
        return linear(x, self.weight, self.bias, self.packed)
