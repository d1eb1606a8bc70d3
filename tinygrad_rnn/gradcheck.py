"""Finite-difference gradient checks (float64 central differences).

The analytic gradient of ``L = Σ f(inputs) ⊙ v`` (``v`` a fixed random upstream gradient) from the tape is
compared with ``(L(x + ε e_i) - L(x - ε e_i)) / 2ε`` for every element ``i`` of every input. The truncation
error of central differences is O(ε²), so with float64 and ε = 1e-6 the two agree to about 1e-8.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tinygrad_rnn.backend import to_numpy
from tinygrad_rnn.numerics import central_differences
from tinygrad_rnn.tensor import Tensor, no_grad, tensor

__all__ = ["GradcheckError", "numerical_gradient", "gradcheck"]


class GradcheckError(AssertionError):
    """The tape's gradient and the finite-difference gradient disagree."""


def _scalar_loss(fn: Callable[..., Any], inputs: Sequence[Tensor], upstream: list[np.ndarray]) -> float:
    outs = fn(*inputs)
    outs = outs if isinstance(outs, (tuple, list)) else (outs,)
    return float(sum(np.sum(to_numpy(o.array) * v) for o, v in zip(outs, upstream, strict=False)))


def numerical_gradient(fn: Callable[..., Any], inputs: Sequence[Tensor], upstream: list[np.ndarray],
                       eps: float = 1e-6) -> list[np.ndarray]:
    """Central-difference gradient of ``Σ_k Σ fn(*inputs)[k] ⊙ upstream[k]`` for each input (NumPy arrays).

    The inputs' arrays are perturbed in place one element at a time and restored afterwards
    (:func:`tinygrad_rnn.numerics.central_differences`, the routine ``article`` uses too).
    """
    with no_grad():
        grads = central_differences(lambda: _scalar_loss(fn, inputs, upstream), [t.array for t in inputs], eps)
    return [to_numpy(g) for g in grads]


def gradcheck(fn: Callable[..., Any], inputs: Sequence[Tensor], eps: float = 1e-6, atol: float = 1e-6,
              rtol: float = 1e-5, seed: int = 0) -> bool:
    """Check the tape's gradients of ``fn`` at ``inputs`` against central differences.

    Args:
        fn: maps the input Tensors to one Tensor or a tuple of Tensors.
        inputs: float64 Tensors; those with ``requires_grad`` are checked.
        eps: the finite-difference step.
        atol, rtol: passes when ``|analytic - numeric| <= atol + rtol·|numeric|`` everywhere.
        seed: seeds the random upstream gradient.

    Returns:
        True when every gradient matches.

    Raises:
        GradcheckError: naming the input, the worst element and both values.
        TypeError: an input that is not float64 (float32 differences are too coarse to check).
    """
    checked = [t for t in inputs if t.requires_grad]
    for t in checked:
        if t.dtype != np.float64:
            raise TypeError(f"gradcheck needs float64 inputs, got {t.dtype} for an input of shape {t.shape}")
    rng = np.random.default_rng(seed)
    outs = fn(*inputs)
    outs = outs if isinstance(outs, (tuple, list)) else (outs,)
    upstream = [rng.standard_normal(o.shape) for o in outs]
    for t in checked:
        t.grad = None
    total: Any = None
    for o, v in zip(outs, upstream, strict=False):
        term = (o * tensor(v, dtype=o.dtype, device=o.device)).sum()
        total = term if total is None else total + term
    total.backward()
    numeric = numerical_gradient(fn, checked, upstream, eps)
    for index, (t, num) in enumerate(zip(checked, numeric, strict=False)):
        analytic = np.zeros(t.shape) if t.grad is None else to_numpy(t.grad.array)
        err = np.abs(analytic - num)
        bad = err > atol + rtol * np.abs(num)
        if bad.any():
            worst = np.unravel_index(np.argmax(err - rtol * np.abs(num)), err.shape) if err.ndim else ()
            raise GradcheckError(
                f"gradient of input {index} (shape {t.shape}) disagrees at {worst}: "
                f"tape {analytic[worst]!r} vs finite differences {num[worst]!r} (max abs error {err.max():.3e})"
            )
    return True
