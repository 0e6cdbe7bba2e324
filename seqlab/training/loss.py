"""Label-smoothed cross-entropy (Szegedy et al. 2016; Vaswani et al. 2017, section 5.4).

Instead of the one-hot target, the model is trained towards the smoothed distribution

    q'(k) = (1 - eps) * 1[k = y] + eps / (V - 1) * 1[k != PAD]

i.e. the smoothing mass ``eps`` is spread uniformly over the V - 1 classes other than ``<pad>``
(``<pad>`` is never a valid output, so it gets no probability mass; the target class gets
``1 - eps + eps / (V - 1)``). The loss per position is the cross-entropy

    L = -sum_k q'(k) log p(k) = (1 - eps) * (-log p(y)) + eps / (V - 1) * sum_{k != PAD} -log p(k)

summed over the non-pad target positions. When ``ignore_index`` is not a vocabulary id (e.g.
``-100``) there is no pad column to exclude and ``eps`` is spread over all V classes, which is
exactly ``F.cross_entropy(..., label_smoothing=eps)``.

Two functions compute the same values:

* :func:`label_smoothed_nll` takes the logits and writes the loss out, autograd doing the rest
  (readable; the reference the fast path is tested against);
* :func:`output_layer_nll` is the training path. It takes the decoder outputs h and the output
  layer (W, b) instead of the logits, drops padded rows, and computes, block by block of rows,

      z = h W^T + b,   L,   dL/dz_k = p(k) - q'(k)   (p = softmax(z)),   dL/dh = (p - q') W,
      dL/dW = (p - q')^T h

  in the forward pass, so the float32 logits and their log-softmax never exist in full (only
  the gradient G = p - q', in the compute dtype, for the two products at the end).
  With autograd the same gradient costs a log-softmax backward, a zero-filled (N, V) tensor for the
  gather's backward and the sum's broadcast, each a fresh allocation of tens of MB (which on this
  CPU costs as much as the arithmetic, in page faults). ``tests/training/test_loss.py`` holds values
  and gradients of the two equal.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from seqlab.text.specials import PAD

__all__ = ["label_smoothed_nll", "output_layer_nll"]


def _check_arguments(name: str, scores: Tensor, target: Tensor, epsilon: float) -> None:
    """epsilon in [0, 1) and ``scores`` (..., X) matching ``target`` (...)."""
    if not 0.0 <= epsilon < 1.0:
        raise ValueError(f"label smoothing epsilon must be in [0, 1), got {epsilon}")
    if scores.shape[:-1] != target.shape:
        raise ValueError(f"{name} {tuple(scores.shape)} do not match target {tuple(target.shape)} (expected (..., "
                         f"{'V' if name == 'logits' else 'd'}))")




def label_smoothed_nll(
    logits: Tensor, target: Tensor, *, epsilon: float, ignore_index: int = PAD
) -> tuple[Tensor, Tensor, int]:
    """Label-smoothed loss and plain negative log-likelihood, summed over real tokens.

    Computed in float32 whatever the dtype of ``logits`` (e.g. bf16), since log-softmax over a
    large vocabulary loses too much precision in half types.

    Args:
        logits: (B, T, V) unnormalised scores (any leading shape works: (..., V)).
        target: (B, T) gold ids; positions equal to ``ignore_index`` contribute nothing.
        epsilon: smoothing mass eps in [0, 1); 0 gives the plain cross-entropy.
        ignore_index: the padding id (excluded from the loss and, when it is a vocabulary id,
            from the smoothing distribution).

    Returns:
        ``(loss_sum, nll_sum, n_tokens)``: the smoothed loss summed over real tokens (0-dim
        float32 tensor, differentiable), the unsmoothed NLL sum -sum log p(y) (0-dim float32, for
        perplexity exp(nll_sum / n_tokens)), and the number of real tokens (int).
    """
    _check_arguments("logits", logits, target, epsilon)
    V = logits.size(-1)
    log_p = F.log_softmax(logits.float(), dim=-1)  # (B, T, V) float32
    real = target.ne(ignore_index)  # (B, T)
    safe_target = target.masked_fill(~real, 0)
    nll = -log_p.gather(-1, safe_target.unsqueeze(-1)).squeeze(-1)  # (B, T): -log p(y)
    nll = nll.masked_fill(~real, 0.0)
    nll_sum = nll.sum()
    if epsilon == 0.0:
        return nll_sum, nll_sum.detach(), int(real.sum())

    # sum_{k != PAD} -log p(k), and the number of classes sharing eps
    uniform = -log_p.sum(dim=-1)  # (B, T)
    n_classes = V
    if 0 <= ignore_index < V:
        uniform = uniform + log_p[..., ignore_index]
        n_classes = V - 1
    uniform = uniform.masked_fill(~real, 0.0)
    loss_sum = (1.0 - epsilon) * nll_sum + (epsilon / n_classes) * uniform.sum()
    return loss_sum, nll_sum.detach(), int(real.sum())



def output_layer_nll(
    features: Tensor, weight: Tensor, bias: Tensor | None, target: Tensor, *, epsilon: float,
    ignore_index: int = PAD, chunk_rows: int = 256,
) -> tuple[Tensor, Tensor, int]:
    """The output layer z = h W^T + b and :func:`label_smoothed_nll` of z, fused; same returns.

    Equal to ``label_smoothed_nll(F.linear(features, weight, bias), target, ...)``. Under CPU
    autocast the products run in the autocast dtype, as ``F.linear`` would, and the softmax in
    float32.

    Args:
        features: (..., d) decoder outputs h.
        weight: (V, d) output matrix W. bias: (V,) or None.
        target: (...) gold ids; rows equal to ``ignore_index`` are dropped before the product.
        epsilon, ignore_index: as in :func:`label_smoothed_nll`.
        chunk_rows: rows per block (memory and speed only; results do not depend on it).
    """
    _check_arguments("features", features, target, epsilon)
    V = weight.size(0)
    flat_target = target.reshape(-1)
    real = flat_target.ne(ignore_index).nonzero().squeeze(1)  # (N,) indices of real rows
    h = features.reshape(-1, features.size(-1)).index_select(0, real)  # (N, d)
    y = flat_target.index_select(0, real)  # (N,)
    pad_column = ignore_index if 0 <= ignore_index < V else None
    device_type = h.device.type
    dtype = torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type) else h.dtype
    with torch.autocast(device_type, enabled=False):
        loss_sum, nll_sum = _OutputLayerNLL.apply(h, weight, bias, y, epsilon, pad_column, dtype, chunk_rows)
    return loss_sum, nll_sum, int(real.numel())


class _OutputLayerNLL(torch.autograd.Function):
    """Block by block over rows: z = h W^T + b, the loss and G = dL/dz = p - q'; then at once

        dL/dh = G W        dL/dW = G^T h        dL/db = sum_rows G

    so neither the float32 logits nor their log-softmax exist in full (G is kept in the compute
    dtype). The saved gradients are scaled by the upstream gradient in :meth:`backward`.
    """

    @staticmethod
    def forward(ctx, h: Tensor, weight: Tensor, bias: Tensor | None, y: Tensor, epsilon: float,
                pad_column: int | None, dtype: torch.dtype, chunk_rows: int):
        V = weight.size(0)
        n_classes = V if pad_column is None else V - 1
        h_c = h.to(dtype)  # (N, d)
        W = weight.to(dtype)  # (V, d)
        b = None if bias is None else bias.to(dtype)
        G = torch.empty(h.size(0), V, dtype=dtype, device=h.device)  # (N, V) dL/dz
        loss_sum = torch.zeros((), dtype=torch.float32, device=h.device)
        nll_sum = torch.zeros((), dtype=torch.float32, device=h.device)
        for start in range(0, h.size(0), chunk_rows):
            rows = slice(start, start + chunk_rows)
            y_c = y[rows, None]  # (n, 1)
            z = h_c[rows] @ W.T if b is None else torch.addmm(b, h_c[rows], W.T)  # (n, V)
            log_p = F.log_softmax(z, dim=-1, dtype=torch.float32)  # (n, V)
            nll = -log_p.gather(1, y_c).sum()
            loss = (1.0 - epsilon) * nll
            if epsilon > 0.0:
                uniform = -log_p.sum()  # sum over rows and k of -log p(k)
                if pad_column is not None:
                    uniform = uniform + log_p[:, pad_column].sum()
                loss = loss + (epsilon / n_classes) * uniform
            loss_sum += loss
            nll_sum += nll
            p_c = log_p.exp_()  # p(k), in place: log_p is not needed any more
            if epsilon > 0.0:
                p_c.sub_(epsilon / n_classes)  # p - q' off the target and pad columns
                if pad_column is not None:
                    p_c[:, pad_column] += epsilon / n_classes  # q'(PAD) = 0
            p_c.scatter_add_(1, y_c, p_c.new_full(y_c.shape, -(1.0 - epsilon)))  # the target's 1 - eps
            G[rows] = p_c
        grad_h = G @ W  # (N, d)
        grad_W = (G.T @ h_c).float()  # (V, d)
        grad_b = None if bias is None else G.sum(dim=0, dtype=torch.float32)
        ctx.save_for_backward(grad_h, grad_W, grad_b)
        ctx.dtypes = (h.dtype, weight.dtype, None if bias is None else bias.dtype)
        ctx.mark_non_differentiable(nll_sum)
        return loss_sum, nll_sum

    @staticmethod
    def backward(ctx, grad_loss: Tensor, grad_nll: Tensor):
        grad_h, grad_W, grad_b = ctx.saved_tensors
        h_dtype, W_dtype, b_dtype = ctx.dtypes
        grads = [
            (grad_h * grad_loss).to(h_dtype) if ctx.needs_input_grad[0] else None,
            grad_W.mul_(grad_loss).to(W_dtype) if ctx.needs_input_grad[1] else None,
            (grad_b * grad_loss).to(b_dtype) if grad_b is not None and ctx.needs_input_grad[2] else None,
        ]
        return (*grads, None, None, None, None, None)
