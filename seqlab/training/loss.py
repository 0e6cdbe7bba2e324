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
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from seqlab.text.specials import PAD

__all__ = ["label_smoothed_nll"]


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
    if not 0.0 <= epsilon < 1.0:
        raise ValueError(f"label smoothing epsilon must be in [0, 1), got {epsilon}")
    if logits.shape[:-1] != target.shape:
        raise ValueError(f"logits {tuple(logits.shape)} do not match target {tuple(target.shape)} (expected (..., V))")
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
