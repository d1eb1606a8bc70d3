"""Gradient clipping (``torch.nn.utils.clip_grad_norm_``, ``clip_grad_value_``), in place on ``.grad``."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np

from tinygrad_rnn.backend import device_of, get_array_module
from tinygrad_rnn.tensor import OpError, Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_", "clip_grads_with_norm_", "get_total_norm"]


def _tensor_list(name: str, tensors: Iterable[Tensor] | Tensor) -> list[Tensor]:
    if isinstance(tensors, Tensor):
        return [tensors]
    try:
        items = list(tensors)
    except TypeError:
        raise OpError(f"{name}: expected a Tensor or an iterable of Tensors, got {type(tensors).__name__}") from None
    for i, t in enumerate(items):
        if not isinstance(t, Tensor):
            raise OpError(f"{name}: expected an iterable of Tensors, item {i} is {type(t).__name__}")
    return items


def _real(name: str, what: str, value: Any, allow_inf: bool = False) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or math.isnan(float(value)) \
            or (not allow_inf and math.isinf(float(value))):
        raise OpError(f"{name}: {what} must be a {'' if allow_inf else 'finite '}real number, got {value!r}")
    return float(value)


def _grads(parameters: list[Tensor]) -> list[Any]:
    return [p.grad.array for p in parameters if p.grad is not None]


def _total_norm(name: str, arrays: list[Any], norm_type: Any, error_if_nonfinite: bool) -> Any:
    """The joint norm of ``arrays`` as a 0-d array of at least float32."""
    p = _real(name, "norm_type", norm_type, allow_inf=True)
    devices = {device_of(a) for a in arrays}
    if len(devices) > 1:
        raise OpError(f"{name}: all gradients must be on one device, got {sorted(devices)}")
    xp = get_array_module(arrays[0])
    acc = np.result_type(*[a.dtype for a in arrays], np.float32)

    def norm(x: Any) -> Any:
        x = xp.abs(x.astype(acc, copy=False)).reshape(-1)
        if x.size == 0:
            return xp.asarray(math.inf if p == -math.inf else 0.0, dtype=acc)
        if p == math.inf:
            return x.max()
        if p == -math.inf:
            return x.min()
        if p == 0:
            return (x != 0).sum().astype(acc)
        if p == 1:
            return x.sum()
        if p == 2:
            return xp.sqrt((x * x).sum())
        return (x**p).sum() ** (1.0 / p)

    total = norm(xp.stack([norm(a) for a in arrays]))
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise OpError(f"{name}: the total norm of order {norm_type} of the gradients is {float(total)}, so it "
                      "cannot be clipped (pass error_if_nonfinite=False to scale by it anyway)")
    return total


def get_total_norm(tensors: Iterable[Tensor] | Tensor, norm_type: float = 2.0,
                   error_if_nonfinite: bool = False, foreach: bool | None = None) -> Tensor:
    """The ``norm_type``-norm of all ``tensors`` together, as if concatenated into one vector.

    ``‖x‖_p = (Σ_i |x_i|^p)^(1/p)``; ``inf``: ``max |x_i|``; ``-inf``: ``min |x_i|``; ``0``: the count of
    non-zeros. Computed as the norm of the per-tensor norms (as PyTorch), accumulated in at least float32
    (float16 gradients do not overflow at a norm of 256), returned as a 0-d Tensor of the tensors' dtype.

    Raises:
        OpError: ``norm_type`` is not a real number, tensors on different devices, or (with
            ``error_if_nonfinite``) a NaN or infinite total norm.
    """
    arrays = [t.array for t in _tensor_list("get_total_norm", tensors)]
    if not arrays:
        return Tensor(0.0)
    total = _total_norm("get_total_norm", arrays, norm_type, error_if_nonfinite)
    return Tensor(total.astype(np.result_type(*[a.dtype for a in arrays])))


def _clip(grads: list[Any], max_norm: float, total: Any) -> None:
    xp = get_array_module(grads[0])
    coef = xp.minimum(max_norm / (total + 1e-6), 1.0)
    for g in grads:
        g *= coef.astype(g.dtype)


def clip_grads_with_norm_(parameters: Iterable[Tensor] | Tensor, max_norm: float, total_norm: Tensor | float,
                          foreach: bool | None = None) -> None:
    """Multiply every gradient by ``min(1, max_norm / (total_norm + 1e-6))`` in place (PyTorch's rule).

    Raises:
        OpError: ``max_norm`` is not a finite real number.
    """
    max_norm = _real("clip_grads_with_norm_", "max_norm", max_norm)
    grads = _grads(_tensor_list("clip_grads_with_norm_", parameters))
    if not grads:
        return
    xp = get_array_module(grads[0])
    total = xp.asarray(total_norm.array if isinstance(total_norm, Tensor) else total_norm)
    _clip(grads, max_norm, total.astype(np.result_type(total.dtype, np.float32)))


def clip_grad_norm_(parameters: Iterable[Tensor] | Tensor, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach: bool | None = None) -> Tensor:
    """Scale all gradients together, in place, so that their joint norm is at most ``max_norm``.

    The total norm ``‖g‖`` is taken over all gradients as if concatenated into one vector (see
    :func:`get_total_norm`); each gradient is multiplied by ``min(1, max_norm / (‖g‖ + 1e-6))``, as
    ``torch.nn.utils.clip_grad_norm_`` (Pascanu, Mikolov & Bengio, 2013, "On the difficulty of training
    recurrent neural networks"). Parameters without a gradient are skipped. ``foreach`` is accepted for
    PyTorch compatibility and ignored.

    Returns:
        The total norm before clipping, as a 0-d Tensor of the gradients' dtype (0.0 when none has a gradient).

    Raises:
        OpError: bad ``max_norm``/``norm_type``, gradients on different devices, or (with
            ``error_if_nonfinite``) a NaN or infinite total norm.
    """
    max_norm = _real("clip_grad_norm_", "max_norm", max_norm)
    grads = _grads(_tensor_list("clip_grad_norm_", parameters))
    if not grads:
        _real("clip_grad_norm_", "norm_type", norm_type, allow_inf=True)
        return Tensor(0.0)
    total = _total_norm("clip_grad_norm_", grads, norm_type, error_if_nonfinite)
    _clip(grads, max_norm, total)
    return Tensor(total.astype(np.result_type(*[g.dtype for g in grads])))


def clip_grad_value_(parameters: Iterable[Tensor] | Tensor, clip_value: float, foreach: bool | None = None) -> None:
    """Clamp every gradient, in place, to ``[-clip_value, clip_value]`` (``torch.nn.utils.clip_grad_value_``).

    Raises:
        OpError: ``clip_value`` is not a real number >= 0 (NaN included).
    """
    value = _real("clip_grad_value_", "clip_value", clip_value, allow_inf=True)
    if value < 0:
        raise OpError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value!r}")
    for g in _grads(_tensor_list("clip_grad_value_", parameters)):
        xp = get_array_module(g)
        xp.clip(g, -value, value, out=g)
