"""Array arithmetic shared by the tape and by the oracles that check it, on raw backend arrays (no tape).

It imports only :mod:`tinygrad_rnn.backend`, so ``ops`` (the tape's sigmoid), ``gradcheck`` (finite
differences through the tape) and ``article`` (hand-derived BPTT, which must not use the tape it checks)
all use the same two routines:

* :func:`sigmoid`: the logistic function, overflow-free and accurate in both tails;
* :func:`central_differences`: the gradient of any scalar function of some arrays, one element at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tinygrad_rnn.backend import get_array_module

__all__ = ["sigmoid", "central_differences"]


def sigmoid(a: Any) -> Any:
    """``σ(a) = 1 / (1 + exp(-a))`` of a NumPy/CuPy array, computed without overflow.

    Computed as ``exp(min(a, 0)) / (1 + exp(-|a|))``, which is ``1/(1+exp(-a))`` for ``a >= 0`` and
    ``exp(a)/(1+exp(a))`` for ``a < 0``: both exponents are ≤ 0, so nothing overflows, and the tails keep
    full relative precision (``σ(-100) = 3.72e-44`` in float64). (No ``where``: it costs more than an ``exp``.)
    """
    xp = get_array_module(a)
    return xp.exp(xp.minimum(a, 0)) / (1 + xp.exp(-xp.abs(a)))


def central_differences(loss: Callable[[], float], arrays: Sequence[Any], eps: float = 1e-6) -> list[Any]:
    """Central finite differences ``∂loss/∂a[i] ≈ (loss(a + ε e_i) − loss(a − ε e_i)) / 2ε`` for every
    element ``i`` of every array.

    Args:
        loss: computes the scalar from the current contents of ``arrays`` (no arguments).
        arrays: float64 NumPy/CuPy arrays; each is changed in place, one element at a time, and restored.
        eps: the step ε. The estimate's error is O(ε²) (truncation) plus O(1e-16/ε) (rounding): with
            float64 and ε = 1e-6 about 1e-8 relative on well-scaled functions.

    Returns:
        One float64 array per input, on the input's device, shaped like it. It costs two ``loss`` calls per
        element: keep the sizes small.
    """
    grads = []
    for array in arrays:
        xp = get_array_module(array)
        grad = xp.zeros(array.shape, dtype=xp.float64)
        for index in np.ndindex(*array.shape):
            original = array[index].item()
            array[index] = original + eps
            plus = loss()
            array[index] = original - eps
            minus = loss()
            array[index] = original
            grad[index] = (plus - minus) / (2 * eps)
        grads.append(grad)
    return grads
