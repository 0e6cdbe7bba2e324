"""The linear layer y = x W^T + b, with a pre-packed weight for bf16 decoding on the CPU.

``torch.nn.functional.linear`` hands oneDNN a plain (out, in) weight, which oneDNN rearranges into
its blocked layout at every call. For training that is lost in the cost of large products; in
step-by-step decoding the products are small (a few dozen rows) and the rearrangement is a large
part of each one: on the 2-core dev machine a 32 x 256 by 256 x 256 bf16 product took about 50 us
through ``F.linear`` and 30 us with the weight packed once (``benchmarks/translation_speed.py``
measures the whole effect on decoding).

:class:`Linear` is ``nn.Linear`` (same parameters, same state-dict keys) whose forward takes the
packed path only when all of these hold: autograd is off, the input is on the CPU, the product
runs in bf16 (under bf16 autocast, or with bf16 weights), and PyTorch has the oneDNN operators.
Otherwise it is exactly ``nn.Linear``. The packed weight is cached and rebuilt when the weight may
have changed (see :func:`tensor_identity`). ``tests/nn/test_linear.py`` holds both paths equal.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim.optimizer import register_optimizer_step_post_hook

__all__ = ["Linear", "PackedWeight", "packed_linear_available", "tensor_identity"]


def packed_linear_available() -> bool:
    """Whether this PyTorch build has the oneDNN packed-linear operators."""
    return (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")
            and hasattr(torch.ops.mkldnn, "_linear_pointwise"))


_AVAILABLE = packed_linear_available()


def _product_dtype(x: Tensor, weight: Tensor) -> torch.dtype:
    if torch.is_autocast_enabled(x.device.type):
        return torch.get_autocast_dtype(x.device.type)
    return weight.dtype


_optimizer_steps = 0
"""Steps taken by any ``torch.optim`` optimizer in this process (counted by the hook below)."""


def _count_optimizer_step(optimizer, args, kwargs) -> None:
    global _optimizer_steps
    _optimizer_steps += 1


register_optimizer_step_post_hook(_count_optimizer_step)


def tensor_identity(t: Tensor) -> tuple[int, int, int]:
    """(storage address, version, optimizer steps): changes whenever ``t`` may have changed.

    The address moves when ``t`` is replaced (a new parameter, tying, loading into a new tensor), the
    version counter when an ordinary in-place operation writes it (``copy_``, ``add_``,
    ``load_state_dict``). Neither moves under a fused optimizer step: ``torch.optim.Adam(fused=True)``,
    which the trainer uses, rewrites its parameters without moving their version counters. So the
    count of optimizer steps taken in this process is part of the key too: a cache built for
    decoding is rebuilt after every step of any optimizer. In-place writes through ``.data``
    move nothing and are not seen.

    Tensors made under ``torch.inference_mode()`` have no version counter; they cannot be modified
    in place outside inference mode, and seqlab never modifies the ones it caches.
    """
    return t.data_ptr(), 0 if t.is_inference() else t._version, _optimizer_steps


class PackedWeight:
    """A weight (and bias) packed once for oneDNN bf16 products, rebuilt when they change."""

    def __init__(self):
        self._key: tuple | None = None
        self._packed: Tensor | None = None
        self._bias: Tensor | None = None

    def applies(self, x: Tensor, weight: Tensor) -> bool:
        """True when the packed path serves this call (see the module docstring)."""
        return (_AVAILABLE and not torch.is_grad_enabled() and x.device.type == "cpu"
                and _product_dtype(x, weight) == torch.bfloat16)

    def linear(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        """x W^T + b in bf16 with the packed W; x (..., in) -> (..., out). Call only when :meth:`applies`."""
        key = (tensor_identity(weight), None if bias is None else tensor_identity(bias))
        packed, packed_bias = self._packed, self._bias
        if key != self._key:  # (re)pack into locals first: a thread decoding meanwhile keeps a consistent pair
            packed = torch.ops.mkldnn._reorder_linear_weight(weight.detach().to(torch.bfloat16))
            packed_bias = None if bias is None else bias.detach().to(torch.bfloat16)
            self._packed, self._bias, self._key = packed, packed_bias, key
        rows = x.reshape(-1, x.size(-1)).to(torch.bfloat16)  # (N, in)
        y = torch.ops.mkldnn._linear_pointwise(rows, packed, packed_bias, "none", [], "")  # (N, out)
        return y.view(*x.shape[:-1], y.size(-1))


class Linear(nn.Linear):
    """``nn.Linear`` with the packed bf16 path for decoding (see the module docstring)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__(in_features, out_features, bias=bias)
        self._packed = PackedWeight()

    def forward(self, x: Tensor) -> Tensor:
        if self._packed.applies(x, self.weight):
            return self._packed.linear(x, self.weight, self.bias)
        return F.linear(x, self.weight, self.bias)
