"""The linear layer y = x W^T + b, with an optional pre-packed weight for decoding on the CPU.

``torch.nn.functional.linear`` hands the plain (out, in) weight to a general matrix product, which
rearranges it at every call. For training that is lost in the cost of large products; in
step-by-step decoding the products are small (a few dozen rows: the batch, or batch x beam) and
the rearrangement is a large part of each one. oneDNN can pack W once into its blocked layout and
then multiply small batches much faster. On the 2-core dev machine (AMD EPYC Zen 4, AVX-512, one
thread): a 32 x 256 by 256 x 256 bf16 product took about 50 us through ``F.linear`` and 30 us
packed; in fp32 the output layer of a translator, 32 x 256 by 256 x 8000, took about 3.5 ms
through ``F.linear`` and 1.9 ms packed, and 5 rows 2.2 ms against 0.4 ms
(``benchmarks/translation_speed.py`` measures the whole effect on decoding).

Packing is an explicit step that the decoding side owns, never a side effect of ``forward``:
:func:`pack_for_decoding` (called by :class:`seqlab.api.Translator` before it decodes in fp32 or
bf16) stores an immutable :class:`PackedWeight` for that precision on every :class:`Linear` (and
:class:`PackedModule`) of a model, except fp32 weights too small to gain from it
(:data:`FP32_PACK_MIN_ELEMENTS`); ``pack_for_decoding(model, precision=None)`` drops them. A
packed weight is a snapshot: after the weights change (training, averaging, loading), pack again.
``forward`` only reads it, so several threads may decode with one model.

The packed path is taken only when all of these hold: the module was packed, autograd is off, the
input is on the CPU, and the product runs in the packed dtype (bf16: under bf16 autocast or with
bf16 inputs; fp32: fp32 inputs, no autocast). Otherwise :class:`Linear` is exactly ``nn.Linear``
(same parameters, same state-dict keys). The packed fp32 product sums in another order than
``F.linear``, so it agrees to rounding (about 1e-6 relative), not bit for bit.

The packing operators are private to PyTorch (``torch.ops.mkldnn._reorder_linear_weight`` and
``_linear_pointwise``); in bf16 they refuse to run on CPUs without AVX-512 (or AVX-NE-CONVERT), and
a later PyTorch may change or remove them. So :func:`pack_for_decoding` packs only where a probe at
first use shows that the operators exist, accept the expected arguments and give the result of
``F.linear`` in that dtype, and for bf16 only where the CPU computes bf16 natively
(:func:`seqlab.precision.native_bf16`) (:func:`packed_linear_works`); anywhere else it packs
nothing and decoding runs the plain product. ``tests/nn/test_linear.py`` holds both paths equal
and forces each answer of the probe.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqlab import precision as precision_module

__all__ = [
    "Linear",
    "PackedModule",
    "PackedWeight",
    "bf16_product",
    "product_dtype",
    "linear",
    "pack_for_decoding",
    "packed_linear_works",
    "worth_packing",
]


_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
"""The precisions a weight can be packed for, and the dtype of the products it then serves."""


def _probe(ops, dtype: torch.dtype = torch.bfloat16) -> bool:
    """Whether the oneDNN namespace ``ops`` packs and multiplies a small ``dtype`` product correctly."""
    try:
        weight = torch.linspace(-1.0, 1.0, 6 * 8).reshape(6, 8).to(dtype)  # (out, in)
        bias = torch.linspace(0.0, 1.0, 6).to(dtype)
        x = torch.linspace(-2.0, 2.0, 3 * 8).reshape(3, 8).to(dtype)  # (N, in)
        with torch.no_grad():
            packed = ops._reorder_linear_weight(weight)
            y = ops._linear_pointwise(x, packed, bias, "none", [], "")
            reference = F.linear(x, weight, bias)
        tolerance = 1e-2 if dtype == torch.bfloat16 else 1e-5
        return (isinstance(y, Tensor) and y.shape == reference.shape and y.dtype == dtype
                and torch.allclose(y.float(), reference.float(), rtol=tolerance, atol=tolerance))
    except Exception:  # a private operator may be missing, refuse this CPU, or change its signature
        return False


@functools.cache
def _packed_ops_work(dtype: torch.dtype = torch.bfloat16) -> bool:
    return _probe(torch.ops.mkldnn, dtype)


def packed_linear_works(precision: str = "bf16") -> bool:
    """Whether decoding may use weights packed for ``precision`` (``bf16`` or ``fp32``) here.

    bf16 needs native bf16 (:func:`seqlab.precision.native_bf16`) and working oneDNN operators;
    fp32 needs the working operators only.
    """
    if precision not in _DTYPES:
        return False
    if precision == "bf16" and not precision_module.native_bf16("cpu"):
        return False
    return _packed_ops_work(_DTYPES[precision])


FP32_PACK_MIN_ELEMENTS = 2 * 256 * 256
"""fp32 weights with fewer elements stay unpacked: oneDNN's packed product has a fixed cost of
about 20 us a call, which a small product does not earn back. Measured on the 2-core development
machine (AMD EPYC Zen 4, 2 threads), 32 rows by a 256 x 256 weight: 43 us through ``F.linear``
against 46 us packed with AVX-512, and 49 against 65 us with oneDNN and MKL limited to AVX2
(160 rows: 145 / 133 and 156 / 170 us); from 256 x 768 up packing wins in both (32 rows: 121 / 88
and 140 / 123 us; the 8,000-word output layer 1,802 / 749 and 2,847 / 1,017 us). bf16 weights are
packed at every size (32 x 256 by 256 x 256: 50 us through ``F.linear``, 30 us packed)."""


def worth_packing(weight: Tensor, dtype: torch.dtype) -> bool:
    """Whether ``weight`` (out, in) is large enough to pack for ``dtype`` products (see above)."""
    return dtype != torch.float32 or weight.numel() >= FP32_PACK_MIN_ELEMENTS


class PackedWeight:
    """W and b packed once for oneDNN products in ``dtype``; read-only after construction."""

    __slots__ = ("weight", "bias", "dtype")

    def __init__(self, weight: Tensor, bias: Tensor | None, dtype: torch.dtype = torch.bfloat16):
        self.dtype = dtype
        with torch.no_grad():
            self.weight = torch.ops.mkldnn._reorder_linear_weight(weight.detach().to(dtype))
            self.bias = None if bias is None else bias.detach().to(dtype)

    def __deepcopy__(self, memo: dict) -> PackedWeight:
        # immutable, and oneDNN's packed tensors have no storage to copy: a copied model shares it
        return self

    def __call__(self, x: Tensor) -> Tensor:
        """x W^T + b in ``self.dtype``: x (..., in) -> (..., out)."""
        rows = x.reshape(-1, x.size(-1)).to(self.dtype).contiguous()  # (N, in)
        y = torch.ops.mkldnn._linear_pointwise(rows, self.weight, self.bias, "none", [], "")  # (N, out)
        return y.view(*x.shape[:-1], y.size(-1))


def product_dtype(x: Tensor) -> torch.dtype | None:
    """The dtype a CPU product with input ``x`` runs in (the autocast dtype under CPU autocast); None off the CPU."""
    if x.device.type != "cpu":
        return None
    if torch.is_autocast_enabled("cpu") and x.is_floating_point():
        return torch.get_autocast_dtype("cpu")
    return x.dtype


def bf16_product(x: Tensor) -> bool:
    """Whether a product with input ``x`` runs in bf16 on the CPU (bf16 autocast, or bf16 ``x``)."""
    return product_dtype(x) == torch.bfloat16


def linear(x: Tensor, weight: Tensor, bias: Tensor | None, packed: PackedWeight | None = None) -> Tensor:
    """x W^T + b; through ``packed`` (the same W and b, packed) when that path applies (see above)."""
    if packed is not None and not torch.is_grad_enabled() and product_dtype(x) == packed.dtype:
        return packed(x)
    return F.linear(x, weight, bias)


class PackedModule:
    """A module that keeps packed weights for decoding; :func:`pack_for_decoding` sets them."""

    def _pack_for_decoding(self, dtype: torch.dtype | None) -> None:
        """Pack this module's own weights (not its children's) for ``dtype`` products; None drops them."""
        raise NotImplementedError


def pack_for_decoding(module: nn.Module, *, precision: str | None) -> bool:
    """Pack the weights of every :class:`PackedModule` in ``module`` for decoding, or drop them.

    Call it when the weights are final (after loading, after training) and before decoding in
    ``precision`` (``fp32`` or ``bf16``); call it again after they change. ``precision=None`` (or
    any other precision, such as ``int8``) drops the packs. It packs only where
    :func:`packed_linear_works` for that precision and the module's parameters are on the CPU.

    Returns:
        Whether packing is on now (fp32 weights below :data:`FP32_PACK_MIN_ELEMENTS` stay
        unpacked even then).
    """
    enabled = (precision is not None and packed_linear_works(precision)
               and all(p.device.type == "cpu" for p in module.parameters()))
    dtype = _DTYPES[precision] if enabled else None
    for m in module.modules():
        if isinstance(m, PackedModule):
            m._pack_for_decoding(dtype)
    return enabled


class Linear(nn.Linear, PackedModule):
    """``nn.Linear`` with the packed path for decoding (see the module docstring)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__(in_features, out_features, bias=bias)
        self.packed: PackedWeight | None = None

    def _pack_for_decoding(self, dtype: torch.dtype | None) -> None:
        keep = dtype is not None and worth_packing(self.weight, dtype)
        self.packed = PackedWeight(self.weight, self.bias, dtype) if keep else None

    def forward(self, x: Tensor) -> Tensor:
        return linear(x, self.weight, self.bias, self.packed)
