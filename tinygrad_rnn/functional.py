"""Composite functions built only from the primitive ops of :mod:`tinygrad_rnn.ops`.

Nothing here has a backward of its own: the tape differentiates the composition.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_rnn import ops
from tinygrad_rnn.backend import get_array_module
from tinygrad_rnn.tensor import OpError, Tensor

__all__ = ["check_dropout_probability", "linear", "softmax", "log_softmax", "cross_entropy", "nll_loss", "mse_loss", "dropout",
           "sigmoid", "tanh", "relu", "embedding"]

sigmoid = ops.sigmoid
tanh = ops.tanh
relu = ops.relu
log_softmax = ops.log_softmax
embedding = ops.embedding


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ weightᵀ + bias``: x (..., in), weight (out, in), bias (out,) -> (..., out).

    A 2-D ``x`` with a bias is one :func:`~tinygrad_rnn.ops.addmm` node; otherwise ``@`` then ``+``. An input
    with more than 2 axes is flattened to (N, in) first (one matrix product, as PyTorch does: the weight's
    gradient is then one (in, N) @ (N, out) product, not one per leading index and a sum).
    """
    if x.ndim > 2:
        lead = x.shape[:-1]
        return linear(x.reshape(-1, x.shape[-1]), weight, bias).reshape(*lead, weight.shape[0])
    if bias is not None and x.ndim == 2:
        return ops.addmm(bias, x, weight.T)
    out = x @ weight.T
    return out if bias is None else out + bias


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """``exp(log_softmax(x))`` along ``axis`` (stable)."""
    return ops.exp(ops.log_softmax(x, axis))


def nll_loss(log_probs: Tensor, target: Any, reduction: str = "mean", ignore_index: int = -100) -> Tensor:
    """Negative log-likelihood of integer targets, as ``torch.nn.functional.nll_loss``.

    Args:
        log_probs: (N, C) log-probabilities.
        target: (N,) integer class indices in ``[0, C)``, or ``ignore_index``.
        reduction: ``'mean'`` (over the targets that are not ignored; NaN when all are, as PyTorch),
            ``'sum'`` or ``'none'`` ((N,), 0 at ignored positions).
        ignore_index: targets with this value contribute nothing.

    Raises:
        OpError: wrong ranks, a target count that differs from N, a non-integer target, a target out of range.
    """
    if reduction not in ("mean", "sum", "none"):
        raise OpError(f"nll_loss: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    xp = get_array_module(log_probs.array)
    t = target.array if isinstance(target, Tensor) else xp.asarray(target)
    if log_probs.ndim != 2 or t.ndim != 1 or t.shape[0] != log_probs.shape[0]:
        raise OpError(
            f"cross_entropy/nll_loss: expected input (N, C) and target (N,), got input {log_probs.shape} "
            f"and target {tuple(t.shape)}"
        )
    if t.dtype.kind not in "iu":
        raise OpError(f"cross_entropy/nll_loss: target must hold integer class indices, got dtype {t.dtype}")
    return ops.NLLLoss.apply(log_probs, Tensor._wrap(t), reduction=reduction, ignore_index=ignore_index)


def cross_entropy(logits: Tensor, target: Any, reduction: str = "mean", ignore_index: int = -100) -> Tensor:
    """Softmax cross-entropy of (N, C) logits against (N,) integer targets, as ``torch.nn.functional.cross_entropy``.

    ``loss_n = -log_softmax(logits)[n, target_n]``, reduced as in :func:`nll_loss`. The gradient with respect to
    the logits is ``(softmax(logits) - onehot(target)) / N_valid`` for ``'mean'``; it comes from the tape.
    Stable for any logits (log-softmax subtracts the row maximum).
    """
    if logits.ndim != 2:
        raise OpError(f"cross_entropy: expected logits of shape (N, C), got {logits.shape}")
    return nll_loss(ops.log_softmax(logits, axis=1), target, reduction=reduction, ignore_index=ignore_index)


def mse_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:  # noqa: A002 - PyTorch's name
    """Mean squared error ``mean((input - target)²)`` (or ``'sum'``/``'none'``); shapes must match exactly.

    Raises:
        OpError: the shapes differ (no silent broadcasting).
    """
    target_shape = target.shape if hasattr(target, "shape") else np.shape(target)
    if tuple(target_shape) != tuple(input.shape):
        raise OpError(f"mse_loss: input {tuple(input.shape)} and target {tuple(target_shape)} must have the same shape")
    diff = input - target
    sq = diff * diff
    if reduction == "none":
        return sq
    return sq.sum() if reduction == "sum" else sq.mean()


def check_dropout_probability(p: Any, where: str) -> float:
    """``p`` if it is a dropout probability (a number in [0, 1]); the one check of it, used by
    :func:`dropout`, ``nn.Dropout`` and the recurrent layers' ``dropout``.

    Raises:
        ValueError: ``p`` is not a number in [0, 1] (``where`` names the caller).
    """
    if isinstance(p, bool) or not isinstance(p, (int, float, np.floating, np.integer)) or not 0 <= p <= 1:
        raise ValueError(f"{where}: dropout probability must be a number in [0, 1], got {p!r}")
    return float(p)


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Inverted dropout: zero each element with probability ``p``, scale the rest by ``1/(1-p)``.

    Identity when ``training`` is False or ``p == 0``; zeros when ``p == 1`` (as PyTorch). The mask comes
    from the device's generator (see :func:`tinygrad_rnn.manual_seed`). Backward: ``g·mask/(1-p)`` through
    the tape.

    Raises:
        ValueError: ``p`` outside [0, 1] (:func:`check_dropout_probability`).
    """
    check_dropout_probability(p, "dropout")
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0.0
    return ops.Dropout.apply(x, p=p)
