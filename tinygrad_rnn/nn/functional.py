"""``tinygrad_rnn.nn.functional``: PyTorch's ``torch.nn.functional`` path (``import tinygrad_rnn.nn.functional as F``).

Everything of :mod:`tinygrad_rnn.functional` is re-exported here. The losses below take PyTorch's full
signatures, including its deprecated ``size_average``/``reduce``: ``cross_entropy`` and ``nll_loss`` check
their arguments and hand the plain case to :mod:`tinygrad_rnn.functional` (one NLL op on the tape), and add
``label_smoothing`` and probability targets; ``mse_loss``, ``l1_loss`` and the binary cross-entropies
follow PyTorch's dtype rules (a float64 target promotes, an integer target takes the input's dtype, the
binary cross-entropies refuse mixed dtypes) and refuse integer input. All are composed from primitive ops,
so their gradients come from the tape.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinygrad_rnn import functional as _base
from tinygrad_rnn import ops
from tinygrad_rnn.backend import get_array_module

# tinygrad_rnn.functional's names, re-exported as they are (the losses below replace six of them, adding
# PyTorch's legacy keywords, label smoothing and probability targets)
from tinygrad_rnn.functional import (
    check_dropout_probability,
    dropout,
    embedding,
    linear,
    log_softmax,
    one_hot,
    pad,
    relu,
    sigmoid,
    softmax,
    tanh,
)
from tinygrad_rnn.tensor import OpError, Tensor, as_tensor

__all__ = [
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "check_dropout_probability", "cross_entropy",
    "dropout", "embedding", "flatten", "l1_loss", "linear", "log_softmax", "logsigmoid", "mse_loss", "nll_loss",
    "one_hot", "pad", "relu", "sigmoid", "softmax", "tanh",
]

_REDUCTIONS = ("mean", "sum", "none")


def _legacy_reduction(size_average: Any, reduce: Any, reduction: str) -> str:
    """PyTorch's deprecated ``size_average``/``reduce`` pair, turned into a ``reduction`` name."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if not reduce:
        return "none"
    return "mean" if size_average else "sum"


def _check_reduction(name: str, reduction: Any) -> None:
    if reduction not in _REDUCTIONS:
        raise OpError(f"{name}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.mean()


def _check_input(name: str, input: Any) -> None:  # noqa: A002 - PyTorch's name
    """Losses take a floating-point Tensor (PyTorch refuses integer input: "not implemented for 'Long'")."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}: input must be a Tensor, got {type(input).__name__}")
    if input.dtype.kind != "f":
        raise OpError(f"{name}: input must be floating point, got dtype {input.dtype}")


def _target_tensor(name: str, target: Any, like: Tensor, same_dtype: bool = False) -> Tensor:
    """The target as a tensor on ``like``'s device, with exactly ``like``'s shape (no silent broadcasting).

    Integer and bool targets take the input's dtype; a floating-point target keeps its own, so the loss is
    computed in the promoted dtype (float32 input, float64 target -> float64), as in PyTorch. With
    ``same_dtype`` (the binary cross-entropies, where PyTorch refuses mixed dtypes) a typed target (Tensor or
    array) must have the input's dtype; a Python list or number is converted to it.
    """
    xp = get_array_module(like.array)
    typed = isinstance(target, Tensor) or hasattr(target, "dtype")
    if same_dtype and typed:
        dtype = target.dtype
        if dtype != like.dtype:
            raise OpError(f"{name}: target dtype {dtype} must equal input dtype {like.dtype} (as in PyTorch); "
                          "cast one of them")
    array = target.array if isinstance(target, Tensor) else xp.asarray(target, dtype=None if typed or not same_dtype
                                                                       else like.dtype)
    if array.dtype.kind not in "biuf":
        raise OpError(f"{name}: target must hold real numbers, got dtype {array.dtype}")
    if tuple(array.shape) != tuple(like.shape):
        raise OpError(f"{name}: target shape {tuple(array.shape)} must equal input shape {tuple(like.shape)}")
    if array.dtype.kind != "f":
        return as_tensor(array.astype(like.dtype))
    return target if isinstance(target, Tensor) else as_tensor(array)


def _weight_array(name: str, weight: Any, n_classes: int, like: Tensor) -> Any:
    if weight is None:
        return None
    xp = get_array_module(like.array)
    w = xp.asarray(weight.array if isinstance(weight, Tensor) else weight, dtype=like.dtype)
    if w.shape != (n_classes,):
        raise OpError(f"{name}: weight must have shape ({n_classes},) (one per class), got {tuple(w.shape)}")
    return w


def _classes_last(name: str, input: Tensor, target: Any) -> tuple[Tensor, Any, tuple[int, ...], bool]:
    """``(N, C, d1, ...)`` input -> (M, C) with the class dimension last; the (M,) or (M, C) target; the shape a
    ``'none'`` result takes; whether the target holds class probabilities (same shape as the input)."""
    if input.ndim == 0:
        raise OpError(f"{name}: expected input (C,), (N, C) or (N, C, d1, ...), got a 0-d tensor")
    xp = get_array_module(input.array)
    t = target.array if isinstance(target, Tensor) else xp.asarray(target)
    probs = t.dtype.kind == "f"
    out_shape = () if input.ndim == 1 else (input.shape[0],) + tuple(input.shape[2:])
    c = input.shape[0] if input.ndim == 1 else input.shape[1]
    if probs:
        if tuple(t.shape) != tuple(input.shape):
            raise OpError(f"{name}: probability targets must have the input's shape {tuple(input.shape)}, "
                          f"got {tuple(t.shape)}")
    elif t.dtype.kind not in "iu":
        raise OpError(f"{name}: target must hold integer class indices (or float probabilities), got dtype {t.dtype}")
    elif tuple(t.shape) != out_shape:
        raise OpError(f"{name}: expected target of shape {out_shape} for input of shape {tuple(input.shape)}, "
                      f"got {tuple(t.shape)}")
    if input.ndim == 1:  # unbatched (C,)
        input, t = input.reshape(1, c), t.reshape(1, c) if probs else t.reshape(1)
    elif input.ndim > 2:  # (N, C, d1, ...) -> (N·d1·..., C)
        input = input.permute(*([0] + list(range(2, input.ndim)) + [1])).reshape(-1, c)
        t = xp.moveaxis(t, 1, -1).reshape(-1, c) if probs else t
    if not probs:
        t = t.reshape(-1)
    return input, t, out_shape, probs


def nll_loss(input: Tensor, target: Any, weight: Any = None, size_average: Any = None,
             ignore_index: int = -100, reduce: Any = None, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of class indices, as ``torch.nn.functional.nll_loss``.

    ``loss_n = -w[t_n] · input[n, t_n]`` (``w`` = 1 without ``weight``; 0 where ``t_n == ignore_index``).
    ``'mean'`` divides the sum by ``Σ_n w[t_n]`` (NaN when every target is ignored, as PyTorch);
    ``'none'`` returns shape (N, d1, ...).

    Args:
        input: log-probabilities (C,), (N, C) or (N, C, d1, ...).
        target: integer class indices (), (N,) or (N, d1, ...), each in ``[0, C)`` or ``ignore_index``.
        weight: optional (C,) class weights.

    Raises:
        OpError: wrong shapes, non-integer targets, targets out of range, an unknown reduction.
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction("nll_loss", reduction)
    _check_input("nll_loss", input)
    flat, t, out_shape, probs = _classes_last("nll_loss", input, target)  # checks the layouts
    if probs:
        raise OpError("nll_loss: target must hold integer class indices, got a floating-point target")
    w = _weight_array("nll_loss", weight, flat.shape[1], flat)
    return _base.nll_loss(input, target, weight=w, ignore_index=ignore_index, reduction=reduction)


def cross_entropy(input: Tensor, target: Any, weight: Any = None, size_average: Any = None,
                  ignore_index: int = -100, reduce: Any = None, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """Softmax cross-entropy, as ``torch.nn.functional.cross_entropy``: ``nll_loss(log_softmax(input, 1), ...)``.

    With ``label_smoothing`` ε and C classes the loss is ``(1-ε)·nll + ε/C · Σ_c -w_c·log p_c`` (reduced like
    ``nll``; PyTorch's formula). A floating-point ``target`` of the input's shape holds class probabilities:
    ``loss_n = -Σ_c w_c·target_nc·log p_nc`` (``'mean'`` divides by N). The gradient with respect to the
    logits is ``softmax - onehot`` (scaled), from the tape. Stable for any logits.

    Args:
        input: logits (C,), (N, C) or (N, C, d1, ...).
        target: class indices (N, d1, ...) or probabilities (the input's shape).
        weight: optional (C,) class weights. ignore_index: targets to skip (index targets only).
        label_smoothing: ε in [0, 1].

    Raises:
        OpError: wrong shapes or dtypes, targets out of range, ε outside [0, 1], an unknown reduction.
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction("cross_entropy", reduction)
    _check_input("cross_entropy", input)
    if not (isinstance(label_smoothing, (int, float)) and 0.0 <= label_smoothing <= 1.0):
        raise OpError(f"cross_entropy: label_smoothing must be a number in [0, 1], got {label_smoothing!r}")
    flat, t, out_shape, probs = _classes_last("cross_entropy", input, target)
    c = flat.shape[1]
    w = _weight_array("cross_entropy", weight, c, flat)
    eps = float(label_smoothing)
    if not probs and not eps:  # the plain case: the core loss (its NLL is one op on the tape)
        return _base.cross_entropy(input, target, weight=w, ignore_index=ignore_index, reduction=reduction)
    logp = ops.log_softmax(flat, 1)
    if probs:
        xp = get_array_module(flat.array)
        if eps:
            t = t * (1 - eps) + eps / c
        coef = t if w is None else t * w
        loss = -(logp * coef).sum(1)  # a float64 target promotes a float32 loss, as in PyTorch
        if reduction == "none":
            return loss.reshape(*out_shape) if out_shape else loss.reshape(())
        return loss.sum() if reduction == "sum" else loss.sum() / xp.asarray(flat.shape[0], dtype=flat.dtype)
    nll = _base.nll_loss(logp, t, weight=w, ignore_index=ignore_index, reduction=reduction)
    if reduction == "none":
        nll = nll.reshape(*out_shape) if out_shape else nll.reshape(())
    valid = (t != ignore_index).astype(flat.dtype)
    smooth = -((logp if w is None else logp * w).sum(1) * valid)  # (M,)
    if reduction == "none":
        smooth = smooth.reshape(*out_shape) if out_shape else smooth.reshape(())
    elif reduction == "sum":
        smooth = smooth.sum()
    else:
        xp = get_array_module(flat.array)
        denom = valid.sum() if w is None else (w[xp.where(t != ignore_index, t, 0)] * valid).sum()
        with np.errstate(invalid="ignore", divide="ignore"):
            smooth = smooth.sum() / xp.asarray(denom, dtype=flat.dtype)
    return nll * (1 - eps) + smooth * (eps / c)


def mse_loss(input: Tensor, target: Any, size_average: Any = None, reduce: Any = None,
             reduction: str = "mean") -> Tensor:
    """Mean squared error ``(input - target)²``, reduced; shapes must match exactly (no silent broadcasting).

    Gradient ``2·(input - target)/N`` for ``'mean'``, from the tape. Raises OpError on a shape mismatch.
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction("mse_loss", reduction)
    _check_input("mse_loss", input)
    diff = input - _target_tensor("mse_loss", target, input)
    return _reduce(diff * diff, reduction)


def l1_loss(input: Tensor, target: Any, size_average: Any = None, reduce: Any = None,
            reduction: str = "mean") -> Tensor:
    """Mean absolute error ``|input - target|``, reduced; shapes must match exactly.

    Gradient ``sign(input - target)/N`` for ``'mean'`` (0 where they are equal, as PyTorch).
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction("l1_loss", reduction)
    _check_input("l1_loss", input)
    return _reduce(ops.abs(input - _target_tensor("l1_loss", target, input)), reduction)


def _log_sigmoid_pair(x: Tensor) -> tuple[Tensor, Tensor]:
    """``(log σ(x), log σ(-x))``, stable and smooth: the log-softmax of the pair ``(x, 0)``."""
    pair = ops.log_softmax(ops.stack([x, x * 0], -1), -1)
    return pair[..., 0], pair[..., 1]


def logsigmoid(input: Tensor) -> Tensor:
    """``log σ(x) = -log(1 + exp(-x))``, stable for any x (via a two-way log-softmax)."""
    return _log_sigmoid_pair(input)[0]


def binary_cross_entropy(input: Tensor, target: Any, weight: Any = None, size_average: Any = None,
                         reduce: Any = None, reduction: str = "mean") -> Tensor:
    """``-w·(y·log x + (1-y)·log(1-x))`` for probabilities ``x`` in [0, 1], as PyTorch.

    Each log is clamped at -100 (PyTorch's clamp), so ``x = 0`` or 1 gives a finite loss.
    Gradient ``w·(x - y)/(x(1-x))`` from the tape (0 where the clamp is active).

    Raises:
        OpError: shapes differ, or ``input`` has values outside [0, 1].
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction("binary_cross_entropy", reduction)
    _check_input("binary_cross_entropy", input)
    y = _target_tensor("binary_cross_entropy", target, input, same_dtype=True)
    xp = get_array_module(input.array)
    if input.array.size and not bool(((input.array >= 0) & (input.array <= 1)).all()):
        raise OpError("binary_cross_entropy: all elements of input must lie in [0, 1] (probabilities); "
                      "use binary_cross_entropy_with_logits for logits")
    tiny = math.exp(-100)
    log_x = ops.log(ops.clip(input, tiny, None))
    log_1mx = ops.log(ops.clip(1 - input, tiny, None))
    loss = -(y * log_x + (1 - y) * log_1mx)
    if weight is not None:
        loss = loss * as_tensor(xp.asarray(weight.array if isinstance(weight, Tensor) else weight, dtype=input.dtype))
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Any, weight: Any = None,
                                     size_average: Any = None, reduce: Any = None, reduction: str = "mean",
                                     pos_weight: Any = None) -> Tensor:
    """``-w·(p·y·log σ(x) + (1-y)·log σ(-x))`` for logits ``x``, as PyTorch (``p`` = ``pos_weight``, 1 by default).

    Stable for any logits (log σ from a two-way log-softmax). Gradient ``w·((1 + (p-1)y)·σ(x) - p·y)``.

    Raises:
        OpError: shapes differ, or an unknown reduction.
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction("binary_cross_entropy_with_logits", reduction)
    _check_input("binary_cross_entropy_with_logits", input)
    y = _target_tensor("binary_cross_entropy_with_logits", target, input, same_dtype=True)
    xp = get_array_module(input.array)

    def const(v: Any) -> Tensor:
        return as_tensor(xp.asarray(v.array if isinstance(v, Tensor) else v, dtype=input.dtype))

    log_p, log_q = _log_sigmoid_pair(input)
    pos = y if pos_weight is None else y * const(pos_weight)
    loss = -(pos * log_p + (1 - y) * log_q)
    if weight is not None:
        loss = loss * const(weight)
    return _reduce(loss, reduction)


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dimensions ``start_dim..end_dim`` into one (``torch.flatten``)."""
    nd = input.ndim
    if nd == 0:
        return input.reshape(1)
    s = start_dim + nd if start_dim < 0 else start_dim
    e = end_dim + nd if end_dim < 0 else end_dim
    if not (0 <= s < nd and 0 <= e < nd) or s > e:
        raise OpError(f"flatten: start_dim={start_dim}, end_dim={end_dim} are out of range or out of order "
                      f"for a {nd}-d tensor")
    shape = tuple(input.shape)
    return input.reshape(*(shape[:s] + (-1,) + shape[e + 1:])) if 0 not in shape else \
        input.reshape(*(shape[:s] + (int(np.prod(shape[s:e + 1])),) + shape[e + 1:]))


# ---------------------------------------------------------------- more activations, normalize (issue 11)
def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:  # noqa: A002
    """``log(1 + exp(beta·x)) / beta``, and ``x`` itself where ``beta·x > threshold`` (PyTorch's rule); the
    exponent is clipped at ``threshold`` first, so the unused branch never overflows into the gradient."""
    from tinygrad_rnn.more_ops import log1p  # noqa: PLC0415 - more_ops imports the tensor module late

    z = input * beta if beta != 1 else input
    smooth = log1p(ops.exp(ops.clip(z, None, threshold)))
    return ops.where(z > threshold, input, smooth / beta if beta != 1 else smooth)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:  # noqa: A002
    """``x·Φ(x)`` with ``Φ`` the standard normal CDF, ``0.5·x·(1 + erf(x/√2))``; ``approximate='tanh'``:
    ``0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))``. Both as PyTorch."""
    from tinygrad_rnn.more_ops import erf  # noqa: PLC0415

    if approximate == "none":
        return input * 0.5 * (erf(input * (1 / math.sqrt(2.0))) + 1)
    if approximate == "tanh":
        inner = (input + input * input * input * 0.044715) * math.sqrt(2 / math.pi)
        return input * 0.5 * (ops.tanh(inner) + 1)
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:  # noqa: A002
    """``x`` where ``x > 0``, ``negative_slope·x`` elsewhere (gradient ``negative_slope`` at 0, as PyTorch).
    ``inplace`` is accepted and ignored."""
    return ops.where(input > 0, input, input * negative_slope)


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out: Any = None) -> Tensor:  # noqa: A002
    """``x / max(‖x‖_p, eps)`` along ``dim`` (PyTorch's ``F.normalize``)."""
    if out is not None:
        raise TypeError("normalize: out= is not supported; use the returned tensor")
    if p == 2:  # max(sqrt(Σx²), eps) as sqrt(max(Σx², eps²)): the same, with a finite gradient at x = 0
        return input / ops.sqrt(ops.clip(ops.sum(input * input, dim, keepdim=True), eps * eps, None))
    return input / ops.clip(input.norm(p, dim, keepdim=True), eps, None)


__all__ = sorted(set(__all__) | {"softplus", "gelu", "leaky_relu", "normalize"})
