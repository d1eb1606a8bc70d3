"""Composite functions built only from the primitive ops of :mod:`tinygrad_rnn.ops`.

Nothing here has a backward of its own: the tape differentiates the composition.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinygrad_rnn import ops
from tinygrad_rnn.backend import get_array_module
from tinygrad_rnn.tensor import OpError, Tensor, as_tensor

__all__ = ["check_dropout_probability", "linear", "softmax", "log_softmax", "cross_entropy", "nll_loss", "mse_loss",
           "l1_loss", "dropout", "sigmoid", "tanh", "relu", "embedding", "pad", "one_hot", "binary_cross_entropy",
           "binary_cross_entropy_with_logits"]

sigmoid = ops.sigmoid
tanh = ops.tanh
log_softmax = ops.log_softmax
softmax = ops.softmax
pad = ops.pad


def relu(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002 - PyTorch's names
    """``max(input, 0)`` (``inplace`` is accepted and ignored: the result is a new tensor)."""
    return ops.relu(input)


def embedding(input: Any, weight: Tensor, padding_idx: int | None = None, max_norm: Any = None,  # noqa: A002
              norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Rows of ``weight`` (V, D) picked by the integer ``input`` (any shape) -> (..., D), as
    ``torch.nn.functional.embedding``. With ``padding_idx``, that row receives no gradient.

    Raises:
        OpError: non-integer or out-of-range indices; an unsupported option (``max_norm``,
            ``scale_grad_by_freq``, ``sparse``).
    """
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise OpError("embedding: max_norm, scale_grad_by_freq and sparse are not supported")
    if padding_idx is None:
        return ops.embedding(input, weight)
    data = input.array if isinstance(input, Tensor) else get_array_module(weight.array).asarray(input)
    idx = padding_idx % weight.shape[0]
    keep = (data != idx)[..., None].astype(weight.dtype)
    return ops.embedding(data, weight) * keep + ops.embedding(data, weight.detach()) * (1 - keep)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ weightᵀ + bias``: x (..., in), weight (out, in), bias (out,) -> (..., out).

    A 2-D ``x`` with a bias is one :func:`~tinygrad_rnn.ops.addmm` node; otherwise ``@`` then ``+``. An input
    with more than 2 axes is flattened to (N, in) first (one matrix product, as PyTorch does: the weight's
    gradient is then one (in, N) @ (N, out) product, not one per leading index and a sum).
    """
    if x.dtype.kind != "f":  # PyTorch refuses too; NumPy would promote an integer input silently
        raise OpError(f"Linear/linear: expected a floating-point input, got dtype {x.dtype}; convert it first, "
                      f"e.g. x.to({weight.dtype}) or x.float()")
    if x.ndim > 2:
        lead = x.shape[:-1]
        return linear(x.reshape(-1, x.shape[-1]), weight, bias).reshape(*lead, weight.shape[0])
    if bias is not None and x.ndim == 2:
        return ops.addmm(bias, x, weight.T)
    out = x @ weight.T
    return out if bias is None else out + bias


def _class_last(name: str, input: Tensor, target: Any) -> tuple[Tensor, Any, tuple[int, ...]]:  # noqa: A002
    """PyTorch's layouts for class scores: (C,) with a 0-d target, (N, C) with (N,), (N, C, d1, ...) with
    (N, d1, ...). Returns the scores as (M, C), the target as (M,) and the shape of an unreduced loss."""
    xp = get_array_module(input.array)
    t = target.array if isinstance(target, Tensor) else xp.asarray(target)
    if input.ndim == 1 and t.ndim == 0:
        return input.unsqueeze(0), t.reshape(1), ()
    if input.ndim >= 2 and t.shape == input.shape[:1] + input.shape[2:]:
        if input.ndim == 2:
            return input, t, t.shape
        moved = input.permute(0, *range(2, input.ndim), 1)
        return moved.reshape(-1, input.shape[1]), t.reshape(-1), t.shape
    raise OpError(f"{name}: expected input (N, C) and target (N,) (or (N, C, d1, ...) and (N, d1, ...), or (C,) and "
                  f"a 0-d target), got input {tuple(input.shape)} and target {tuple(t.shape)}")


def _no_legacy(name: str, size_average: Any, reduce: Any) -> None:
    if size_average is not None or reduce is not None:
        raise OpError(f"{name}: size_average and reduce are deprecated in PyTorch and not supported; use reduction=")


def nll_loss(input: Tensor, target: Any, weight: Any = None, size_average: Any = None,  # noqa: A002
             ignore_index: int = -100, reduce: Any = None, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of integer targets, as ``torch.nn.functional.nll_loss``.

    Args:
        input: log-probabilities, (N, C), (N, C, d1, ...) (classes on dim 1) or (C,).
        target: integer class indices in ``[0, C)`` or ``ignore_index``: (N,), (N, d1, ...) or 0-d.
        weight: optional (C,) class weights: each term is scaled by ``weight[target]``.
        ignore_index: targets with this value contribute nothing.
        reduction: ``'mean'`` (divided by the summed weights of the targets not ignored; NaN when all are,
            as PyTorch), ``'sum'`` or ``'none'`` (the target's shape, 0 at ignored positions).

    Raises:
        OpError: wrong shapes, a non-integer target, a target out of range, an unknown reduction.
    """
    _no_legacy("nll_loss", size_average, reduce)
    if reduction not in ("mean", "sum", "none"):
        raise OpError(f"nll_loss: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    log_probs, t, out_shape = _class_last("cross_entropy/nll_loss", input, target)
    xp = get_array_module(log_probs.array)
    if t.dtype.kind not in "iu":
        raise OpError(f"cross_entropy/nll_loss: target must hold integer class indices, got dtype {t.dtype}")
    if weight is None:  # one op (tinygrad_rnn.capture replays it on new targets)
        out = ops.NLLLoss.apply(log_probs, as_tensor(t), reduction=reduction, ignore_index=ignore_index)
        return out.reshape(out_shape) if reduction == "none" else out
    n, c = log_probs.shape
    valid = t != ignore_index
    safe = xp.where(valid, t, 0)
    if safe.size and (int(safe.min()) < 0 or int(safe.max()) >= c):
        raise OpError(f"cross_entropy/nll_loss: target values must lie in [0, {c}) or equal ignore_index "
                      f"({ignore_index}), got values in [{int(t.min())}, {int(t.max())}]")
    picked = log_probs[xp.arange(n), safe]  # (N,)
    scale = valid.astype(log_probs.dtype)
    if weight is not None:
        w = weight.array if isinstance(weight, Tensor) else xp.asarray(weight)
        if w.shape != (c,):
            raise OpError(f"nll_loss: weight must have shape ({c},), got {tuple(w.shape)}")
        scale = scale * w.astype(log_probs.dtype)[safe]
    if weight is not None or not bool(valid.all()):
        picked = picked * scale
    if reduction == "none":
        return (-picked).reshape(out_shape)
    total = -picked.sum()
    if reduction == "sum":
        return total
    return total / log_probs.dtype.type(scale.sum()) if n else total / log_probs.dtype.type(0)


def cross_entropy(input: Tensor, target: Any, weight: Any = None, size_average: Any = None,  # noqa: A002
                  ignore_index: int = -100, reduce: Any = None, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """Softmax cross-entropy of class scores against integer targets, as ``torch.nn.functional.cross_entropy``:
    ``nll_loss(log_softmax(input, dim=1), target, ...)`` with the classes on dim 1 ((N, C), (N, C, d1, ...))
    or the only dim ((C,)). The gradient with respect to the logits is ``(softmax - onehot(target)) / N_valid``
    for ``'mean'``; it comes from the tape. Stable for any logits.

    Raises:
        OpError: as :func:`nll_loss`; ``label_smoothing`` other than 0 (not supported).
    """
    if label_smoothing:
        raise OpError("cross_entropy: label_smoothing is not supported")
    if input.ndim == 0:
        raise OpError(f"cross_entropy: expected class scores of shape (N, C) or (C,), got {tuple(input.shape)}")
    dim = 0 if input.ndim == 1 else 1
    return nll_loss(ops.log_softmax(input, dim), target, weight=weight, ignore_index=ignore_index,
                    reduction=reduction, size_average=size_average, reduce=reduce)


def _reduce(name: str, loss: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    raise OpError(f"{name}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def l1_loss(input: Tensor, target: Any, size_average: Any = None, reduce: Any = None,  # noqa: A002
            reduction: str = "mean") -> Tensor:
    """Mean absolute error ``mean(|input - target|)`` (or ``'sum'``/``'none'``); shapes must match exactly.

    Raises:
        OpError: the shapes differ (no silent broadcasting).
    """
    target_shape = target.shape if hasattr(target, "shape") else np.shape(target)
    if tuple(target_shape) != tuple(input.shape):
        raise OpError(f"l1_loss: input {tuple(input.shape)} and target {tuple(target_shape)} must have the same shape")
    _no_legacy("l1_loss", size_average, reduce)
    return _reduce("l1_loss", ops.abs(input - target), reduction)


def binary_cross_entropy(input: Tensor, target: Any, weight: Any = None, size_average: Any = None,  # noqa: A002
                         reduce: Any = None, reduction: str = "mean") -> Tensor:
    """``-(y·log p + (1-y)·log(1-p))`` of probabilities ``input`` against ``target`` in [0, 1] (same shape); the
    logs are clamped at -100 as in PyTorch."""
    if tuple(getattr(target, "shape", np.shape(target))) != tuple(input.shape):
        raise OpError(f"binary_cross_entropy: input {tuple(input.shape)} and target "
                      f"{tuple(getattr(target, 'shape', np.shape(target)))} must have the same shape")
    _no_legacy("binary_cross_entropy", size_average, reduce)
    tiny = math.exp(-100)  # clamping the argument (not the log) keeps the gradient finite at 0 and 1
    log_p = ops.log(ops.clip(input, tiny, None))
    log_q = ops.log(ops.clip(1 - input, tiny, None))
    loss = -(target * log_p + (1 - target) * log_q)
    return _reduce("binary_cross_entropy", loss if weight is None else loss * weight, reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Any, weight: Any = None,  # noqa: A002
                                     size_average: Any = None, reduce: Any = None, reduction: str = "mean",
                                     pos_weight: Any = None) -> Tensor:
    """``binary_cross_entropy(sigmoid(input), target)`` computed stably from the logits:
    ``(1 - y)·x + (1 + (w_pos - 1)·y)·log(1 + exp(-x))`` with ``log(1 + exp(-x)) = max(-x, 0) + log1p(exp(-|x|))``."""
    if tuple(getattr(target, "shape", np.shape(target))) != tuple(input.shape):
        raise OpError(f"binary_cross_entropy_with_logits: input {tuple(input.shape)} and target "
                      f"{tuple(getattr(target, 'shape', np.shape(target)))} must have the same shape")
    _no_legacy("binary_cross_entropy_with_logits", size_average, reduce)
    # log(1 + exp(-x)) = -log σ(x), from the log-softmax of the pair (x, 0): stable, and smooth at x = 0
    # (relu and abs have no derivative there; the tape would give 0 instead of -1/2)
    softplus_neg = -ops.log_softmax(ops.stack([input, input * 0], -1), -1)[..., 0]
    coef = 1 if pos_weight is None else 1 + (pos_weight - 1) * target
    loss = (1 - target) * input + coef * softplus_neg
    return _reduce("binary_cross_entropy_with_logits", loss if weight is None else loss * weight, reduction)


def one_hot(tensor: Any, num_classes: int = -1) -> Tensor:
    """int64 one-hot vectors ``(..., num_classes)`` of integer class indices (``num_classes=-1``: max + 1)."""
    data = tensor.array if isinstance(tensor, Tensor) else np.asarray(tensor)
    xp = get_array_module(data)
    if data.dtype.kind not in "iu":
        raise OpError(f"one_hot: expected integer class indices, got dtype {data.dtype}")
    if isinstance(num_classes, (bool, np.bool_)) or not isinstance(num_classes, (int, np.integer)) \
            or num_classes < -1:
        raise OpError(f"one_hot: num_classes must be an int >= 0 (or -1: max + 1), got {num_classes!r}")
    if num_classes <= 0 and not data.size:
        raise OpError(f"one_hot: num_classes={num_classes} with an empty tensor: cannot infer the number of "
                      "classes (as PyTorch)")
    n = int(data.max()) + 1 if num_classes == -1 else int(num_classes)
    if data.size and (int(data.min()) < 0 or int(data.max()) >= n):
        raise OpError(f"one_hot: class values must lie in [0, {n})")
    return as_tensor((data[..., None] == xp.arange(n)).astype(np.int64))


def mse_loss(input: Tensor, target: Any, size_average: Any = None, reduce: Any = None,  # noqa: A002
             reduction: str = "mean") -> Tensor:
    """Mean squared error ``mean((input - target)²)`` (or ``'sum'``/``'none'``); shapes must match exactly.

    Raises:
        OpError: the shapes differ (no silent broadcasting).
    """
    target_shape = target.shape if hasattr(target, "shape") else np.shape(target)
    if tuple(target_shape) != tuple(input.shape):
        raise OpError(f"mse_loss: input {tuple(input.shape)} and target {tuple(target_shape)} must have the same shape")
    _no_legacy("mse_loss", size_average, reduce)
    diff = input - target
    return _reduce("mse_loss", diff * diff, reduction)


def check_dropout_probability(p: Any, where: str) -> float:
    """``p`` if it is a dropout probability (a number in [0, 1]); the one check of it, used by
    :func:`dropout`, ``nn.Dropout`` and the recurrent layers' ``dropout``.

    Raises:
        OpError: ``p`` is not a number in [0, 1] (``where`` names the caller).
    """
    if isinstance(p, bool) or not isinstance(p, (int, float, np.floating, np.integer)) or not 0 <= p <= 1:
        raise OpError(f"{where}: dropout probability must be a number in [0, 1], got {p!r}")
    return float(p)


def dropout(x: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Inverted dropout: zero each element with probability ``p``, scale the rest by ``1/(1-p)``.

    Identity when ``training`` is False or ``p == 0``; zeros when ``p == 1`` (as PyTorch). The mask comes
    from the device's generator (see :func:`tinygrad_rnn.manual_seed`). Backward: ``g·mask/(1-p)`` through
    the tape.

    Raises:
        OpError: ``p`` outside [0, 1] (:func:`check_dropout_probability`).
    """
    check_dropout_probability(p, "dropout")
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0.0
    return ops.Dropout.apply(x, p=p)
