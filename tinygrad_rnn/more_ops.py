"""Boolean and bitwise tensors, finiteness tests, ``nan_to_num``, ``nonzero`` and ``torch.*`` function spellings.

PyTorch's boolean dialect: ``~mask``, ``a & b``, ``a | b``, ``a ^ b`` (logical on bool tensors, bitwise on
integer tensors, refused on floating-point ones as PyTorch does), ``logical_not/and/or/xor`` (any dtype,
non-zero is true, a bool result), ``isnan``/``isfinite``/``isinf``, ``nonzero`` (also ``as_tuple``) and
``where(condition)`` with one argument. None of these has a gradient (their outputs are bool or integer),
except :func:`nan_to_num`, whose gradient passes where the input is finite (PyTorch's rule).

Importing this module installs the methods on :class:`~tinygrad_rnn.tensor.Tensor` (``tinygrad_rnn``
imports it), and ``Tensor.grad_fn``: the Function that produced a tensor, None for a leaf.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinygrad_rnn import ops as _ops
from tinygrad_rnn.backend import erf as backend_erf
from tinygrad_rnn.backend import get_array_module
from tinygrad_rnn.tensor import Function, OpError, Tensor

__all__ = [
    "bitwise_and",
    "bitwise_not",
    "bitwise_or",
    "bitwise_xor",
    "bmm",
    "erf",
    "flip",
    "isfinite",
    "isinf",
    "isnan",
    "log1p",
    "logical_and",
    "logical_not",
    "logical_or",
    "logical_xor",
    "logsumexp",
    "mm",
    "nan_to_num",
    "narrow",
    "nonzero",
    "norm",
    "where",
]


def _as_tensor(value: Any, like: Tensor | None = None) -> Tensor:
    if isinstance(value, Tensor):
        return value
    if like is not None:
        return _ops._operand(value, like)
    return Tensor(value)


def _binary(name: str, a: Any, b: Any) -> tuple[Tensor, Tensor]:
    a, b = (_as_tensor(a, b if isinstance(b, Tensor) else None), _as_tensor(b, a if isinstance(a, Tensor) else None))
    _ops._check_same_device(name, a, b)
    return a, b


def _broadcast(name: str, fn: Any, a: Tensor, b: Tensor) -> Tensor:
    _ops._reads_values(name, a, b)
    try:
        return Tensor._wrap(fn(a.array, b.array))
    except ValueError as exc:
        raise OpError(f"{name}: shapes {tuple(a.shape)} and {tuple(b.shape)} do not broadcast ({exc})") from None


# ---------------------------------------------------------------- logical (any dtype; non-zero is true)
def logical_not(input: Any) -> Tensor:
    """Elementwise ``not`` (non-zero is true), as a bool tensor."""
    t = _as_tensor(input)
    _ops._reads_values("logical_not", t)
    return Tensor._wrap(get_array_module(t.array).logical_not(t.array))


def logical_and(input: Any, other: Any) -> Tensor:
    """Elementwise ``and`` (broadcasting), as a bool tensor."""
    a, b = _binary("logical_and", input, other)
    return _broadcast("logical_and", get_array_module(a.array).logical_and, a, b)


def logical_or(input: Any, other: Any) -> Tensor:
    """Elementwise ``or`` (broadcasting), as a bool tensor."""
    a, b = _binary("logical_or", input, other)
    return _broadcast("logical_or", get_array_module(a.array).logical_or, a, b)


def logical_xor(input: Any, other: Any) -> Tensor:
    """Elementwise ``xor`` (broadcasting), as a bool tensor."""
    a, b = _binary("logical_xor", input, other)
    return _broadcast("logical_xor", get_array_module(a.array).logical_xor, a, b)


# ---------------------------------------------------------------- bitwise (bool and integer dtypes only)
def _integral(name: str, *tensors: Tensor) -> None:
    for t in tensors:
        if t.dtype.kind not in "biu":
            raise TypeError(f"{name}: only bool and integer tensors have bitwise ops, got dtype {t.dtype} "
                            "(PyTorch refuses them too); compare first, e.g. (x > 0) & (y > 0)")


def bitwise_not(input: Any) -> Tensor:
    """``~input``: logical not of a bool tensor, bitwise not of an integer one."""
    t = _as_tensor(input)
    _integral("bitwise_not", t)
    _ops._reads_values("bitwise_not", t)
    return Tensor._wrap(get_array_module(t.array).invert(t.array))


def _bitwise(name: str, ufunc: str, input: Any, other: Any) -> Tensor:
    if isinstance(other, (bool, np.bool_)) and isinstance(input, Tensor) and input.dtype == np.bool_:
        other = np.bool_(other)
    a, b = _binary(name, input, other)
    _integral(name, a, b)
    return _broadcast(name, getattr(get_array_module(a.array), ufunc), a, b)


def bitwise_and(input: Any, other: Any) -> Tensor:
    """``input & other`` (bool or integer tensors, broadcasting)."""
    return _bitwise("bitwise_and", "bitwise_and", input, other)


def bitwise_or(input: Any, other: Any) -> Tensor:
    """``input | other`` (bool or integer tensors, broadcasting)."""
    return _bitwise("bitwise_or", "bitwise_or", input, other)


def bitwise_xor(input: Any, other: Any) -> Tensor:
    """``input ^ other`` (bool or integer tensors, broadcasting)."""
    return _bitwise("bitwise_xor", "bitwise_xor", input, other)


# ---------------------------------------------------------------- finiteness
def isnan(input: Tensor) -> Tensor:
    """Elementwise ``x != x``, as a bool tensor."""
    _ops._reads_values("isnan", input)
    return Tensor._wrap(get_array_module(input.array).isnan(input.array))


def isinf(input: Tensor) -> Tensor:
    """Elementwise ``|x| == inf``, as a bool tensor."""
    _ops._reads_values("isinf", input)
    return Tensor._wrap(get_array_module(input.array).isinf(input.array))


def isfinite(input: Tensor) -> Tensor:
    """Elementwise: neither NaN nor infinite, as a bool tensor."""
    _ops._reads_values("isfinite", input)
    return Tensor._wrap(get_array_module(input.array).isfinite(input.array))


class NanToNum(Function):
    """NaN, +inf and -inf replaced by numbers. Backward: ``∂a = g`` where ``a`` is finite, else 0 (PyTorch's)."""

    def forward(self, a, nan, posinf, neginf):
        xp = get_array_module(a)
        self.finite = xp.isfinite(a)
        return xp.nan_to_num(a, nan=nan, posinf=posinf, neginf=neginf)

    def backward(self, g):
        return g * self.finite


def nan_to_num(input: Tensor, nan: float = 0.0, posinf: float | None = None,
               neginf: float | None = None) -> Tensor:
    """NaN -> ``nan``, +inf -> ``posinf``, -inf -> ``neginf`` (default: the dtype's largest/lowest finite
    value); differentiable (see :class:`NanToNum`). Integer and bool tensors come back unchanged."""
    if input.dtype.kind != "f":
        return input.clone() if hasattr(input, "clone") else Tensor._wrap(input.array.copy())
    return NanToNum.apply(input, nan=nan, posinf=posinf, neginf=neginf)


# ---------------------------------------------------------------- two differentiable primitives
class Erf(Function):
    """The error function. Backward: ``∂a = g·2/√π·exp(-a²)``."""

    def forward(self, a):
        self.a = a
        return backend_erf(a)

    def backward(self, g):
        xp = get_array_module(self.a)
        return g * (2.0 / math.sqrt(math.pi)) * xp.exp(-self.a * self.a)


class Log1p(Function):
    """``log(1 + a)``, accurate for small ``a``. Backward: ``∂a = g / (1 + a)``."""

    def forward(self, a):
        self.a = a
        return get_array_module(a).log1p(a)

    def backward(self, g):
        return g / (1 + self.a)


def erf(input: Tensor) -> Tensor:
    """``torch.erf``, elementwise; differentiable (see :class:`Erf`)."""
    if input.dtype.kind != "f":
        raise TypeError(f"erf: expected a floating-point tensor, got dtype {input.dtype}")
    return Erf.apply(input)


def log1p(input: Tensor) -> Tensor:
    """``torch.log1p``, elementwise ``log(1 + x)``; differentiable (see :class:`Log1p`)."""
    if input.dtype.kind != "f":
        raise TypeError(f"log1p: expected a floating-point tensor, got dtype {input.dtype}")
    return Log1p.apply(input)


# ---------------------------------------------------------------- indices
def nonzero(input: Tensor, *, as_tuple: bool = False) -> Any:
    """The indices of the non-zero elements: an (N, ndim) int64 tensor, or with ``as_tuple`` a tuple of
    ndim 1-D int64 tensors (a 0-d input counts as 1-d, as PyTorch's ``as_tuple``)."""
    _ops._reads_values("nonzero", input)
    xp = get_array_module(input.array)
    data = input.array
    if as_tuple:
        if data.ndim == 0:
            data = data.reshape(1)
        return tuple(Tensor._wrap(i.astype(np.int64)) for i in xp.nonzero(data))
    if data.ndim == 0:
        return Tensor._wrap(xp.zeros((int(bool(data)), 0), dtype=np.int64))
    return Tensor._wrap(xp.argwhere(data).astype(np.int64))


def where(condition: Any, input: Any = None, other: Any = None) -> Any:
    """``input`` where ``condition`` else ``other`` (differentiable); with ``condition`` alone,
    ``nonzero(condition, as_tuple=True)`` as PyTorch's one-argument ``torch.where``."""
    if input is None and other is None:
        return nonzero(_as_tensor(condition), as_tuple=True)
    if input is None or other is None:
        raise TypeError("where: give both input and other, or neither (the one-argument form)")
    return _ops.where(condition, input, other)


# ---------------------------------------------------------------- torch.* spellings of Tensor methods
def flip(input: Tensor, dims: Any) -> Tensor:
    """``torch.flip``: reverse the order along ``dims``."""
    return input.flip(dims)


def narrow(input: Tensor, dim: int, start: int, length: int) -> Tensor:
    """``torch.narrow``: elements ``start .. start+length-1`` along ``dim``."""
    return input.narrow(dim, start, length)


def norm(input: Tensor, p: Any = 2, dim: Any = None, keepdim: bool = False) -> Tensor:
    """``torch.norm``: the ``p``-norm (2, 'fro', 1, inf or -inf) over ``dim`` (all elements when None)."""
    return input.norm(p, dim, keepdim)


def mm(input: Tensor, mat2: Tensor) -> Tensor:
    """``torch.mm``: the product of two 2-D tensors (no broadcasting)."""
    if input.ndim != 2 or mat2.ndim != 2:
        raise OpError(f"mm: expected two 2-D tensors, got shapes {tuple(input.shape)} and {tuple(mat2.shape)}")
    return _ops.matmul(input, mat2)


def bmm(input: Tensor, mat2: Tensor) -> Tensor:
    """``torch.bmm``: batched products of (B, n, m) and (B, m, p) tensors (no broadcasting)."""
    if input.ndim != 3 or mat2.ndim != 3 or input.shape[0] != mat2.shape[0]:
        raise OpError(f"bmm: expected (B, n, m) and (B, m, p) tensors, got shapes {tuple(input.shape)} and "
                      f"{tuple(mat2.shape)}")
    return _ops.matmul(input, mat2)


def logsumexp(input: Tensor, dim: Any, keepdim: bool = False) -> Tensor:
    """``torch.logsumexp``: ``log Σ exp`` along ``dim``, stable."""
    return input.logsumexp(dim, keepdim)


def _grad_fn(self: Tensor) -> Function | None:
    """The Function that produced this tensor on the tape (PyTorch's ``grad_fn``); None for a leaf or a
    tensor made outside a recorded graph."""
    return self._ctx


def _install() -> None:
    methods = {
        "__invert__": bitwise_not,
        "__and__": bitwise_and, "__rand__": lambda self, other: bitwise_and(other, self),
        "__or__": bitwise_or, "__ror__": lambda self, other: bitwise_or(other, self),
        "__xor__": bitwise_xor, "__rxor__": lambda self, other: bitwise_xor(other, self),
        "bitwise_not": bitwise_not, "bitwise_and": bitwise_and, "bitwise_or": bitwise_or,
        "bitwise_xor": bitwise_xor, "logical_not": logical_not, "logical_and": logical_and,
        "logical_or": logical_or, "logical_xor": logical_xor, "isnan": isnan, "isinf": isinf,
        "isfinite": isfinite, "nan_to_num": nan_to_num, "nonzero": nonzero, "erf": erf, "log1p": log1p,
    }
    for name, fn in methods.items():
        if name not in Tensor.__dict__:  # never replace a method tensor.py defines itself
            setattr(Tensor, name, fn)
    if "grad_fn" not in Tensor.__dict__:
        Tensor.grad_fn = property(_grad_fn)  # type: ignore[attr-defined]


_install()
