"""Primitive ops: each a :class:`~tinygrad_rnn.tensor.Function` with its forward and backward side by side.

Notation in the docstrings: ``g`` is the gradient of the loss with respect to the op's output (same shape
as the output); the backward returns ``∂L/∂input`` for each input. Gradients of broadcast inputs are
summed back to the input's shape by the engine (:func:`tinygrad_rnn.tensor.sum_to`), so the formulas below
are written for equal shapes.

Where an op's public entry points live (one rule for every op): its ``Function`` subclass here, and one
module-level function here (``tanh``, ``sum``, ``split``, ...) that validates arguments and calls
``apply``. ``Tensor`` methods call that function; ``tinygrad_rnn``, ``tinygrad_rnn.functional`` and
``nn.functional`` re-export it under the same name (PyTorch's aliases such as ``cat``/``concat`` are the
same object); composites of several ops live in :mod:`tinygrad_rnn.functional`. A new op therefore
touches this module (class + function + ``__all__``), plus one line per namespace that exports it.

Every public function here takes Tensors (or, for binary ops, Python scalars and NumPy/CuPy arrays on
either side) and returns Tensors. Binary ops promote dtypes by NumPy 2's rules (NEP 50): a Python scalar
takes the tensor's dtype, float32 with float64 gives float64.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from tinygrad_rnn import numerics
from tinygrad_rnn import tensor as _tape
from tinygrad_rnn.backend import get_array_module, scatter_add, to_device, to_numpy
from tinygrad_rnn.tensor import Function, OpError, OpTypeError, Tensor, _check_numeric_dtype, _defaults, _sizes

__all__ = [
    # arithmetic
    "Add", "Sub", "Mul", "Div", "Pow", "PowScalar", "Neg", "MatMul", "AddMM",
    "add", "sub", "mul", "div", "pow", "neg", "matmul", "addmm", "compare", "equal", "isclose", "allclose",
    # elementwise
    "Exp", "Log", "Sqrt", "Tanh", "Sigmoid", "ReLU", "Abs", "Clip", "Cast", "ToDevice",
    "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "abs", "clip", "cast",
    # reductions
    "Sum", "Mean", "Max", "Maximum", "sum", "mean", "var", "std", "return_types", "max", "min", "amax", "amin",
    "argmax", "argmin", "maximum", "minimum", "Gather", "gather", "topk", "sort", "multinomial",
    # shapes and indexing
    "Reshape", "Permute", "Expand", "GetItem", "Concat", "Stack", "Split", "Unbind", "Where", "Embedding",
    "Repeat", "Clone", "Pad", "reshape", "permute", "transpose", "expand", "squeeze", "unsqueeze", "flatten",
    "repeat", "clone", "pad", "getitem", "concat", "cat", "concatenate", "stack", "split", "chunk", "unbind",
    "where", "embedding",
    # losses, dropout, masks
    "LogSoftmax", "log_softmax", "softmax", "NLLLoss", "Dropout", "LengthMask",
]

# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


def _reads_values(op: str, *tensors: Any) -> None:
    """``op`` decides something from these tensors' values outside the tape (a mask, an index): tell
    :func:`tinygrad_rnn.capture` when it is recording, which refuses it for computed tensors (a replay would
    reuse the old decision) and keys its programs by value for arguments."""
    if _tape._recorder is not None:
        for t in tensors:
            if isinstance(t, Tensor):
                _tape._recorder.read(t, f"{op}()")


def _const(value: Any, like: Tensor, name: str = "operand") -> Tensor:
    """Wrap a Python scalar or a NumPy/CuPy array as a constant tensor next to ``like``.

    A Python scalar gets the dtype NumPy 2 would give it in an op with ``like`` (a float never upcasts
    float32); an array keeps its dtype and must be on ``like``'s device.
    """
    if isinstance(value, Tensor):
        return value
    xp = get_array_module(like.array)
    if isinstance(value, (bool, int, float)):
        try:
            return Tensor._wrap(xp.asarray(value, dtype=np.result_type(like.array.dtype, value)))
        except OverflowError:
            raise OpError(f"{name}: the Python int {value} does not fit the tensor's dtype {like.dtype} "
                          f"(shape {tuple(like.shape)}); a value of that size is not wrapped around") from None
    if value is None or isinstance(value, (str, bytes, complex)):
        raise OpTypeError(f"{name}: expected a tensor, a real number or an array as the other operand, got "
                          f"{value!r} ({type(value).__name__})")
    if get_array_module(value) is not xp:
        raise OpError(
            f"{name}: cannot combine a {type(value).__module__}.{type(value).__name__} with a tensor on {like.device}; "
            "move one of them with .to(device)"
        )
    try:
        value = xp.asarray(value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise OpError(f"{name}: cannot use {type(value).__name__} as an operand ({exc})") from None
    _check_numeric_dtype(name, value.dtype, "an operand of dtype")
    return Tensor._wrap(value)


def _pair(a: Any, b: Any, name: str = "operand") -> tuple[Tensor, Tensor]:
    if isinstance(a, Tensor):
        if isinstance(b, Tensor):  # the common case, answered first
            return a, b
        return a, _const(b, a, name)
    if isinstance(b, Tensor):
        return _const(a, b, name), b
    raise TypeError(f"expected at least one Tensor, got {type(a).__name__} and {type(b).__name__}")


def _check_same_device(name: str, *tensors: Tensor) -> None:
    first = type(tensors[0].array)
    for t in tensors[1:]:
        if type(t.array) is not first or (first is not np.ndarray and t.device != tensors[0].device):
            devices = ", ".join(f"{tuple(x.shape)} on {x.device}" for x in tensors)
            raise OpError(f"{name}: all inputs must be on one device, got {devices}; move them with .to(device)")


def _normalize_axes(axis: Any, ndim: int, name: str = "") -> tuple[int, ...]:
    """``axis`` (None: all; an int or a sequence of ints) as non-negative ints, each in ``[-ndim, ndim)``
    (``[-1, 0]`` for a 0-d tensor). ``name`` prefixes the message (ops inside ``forward`` get theirs from
    the engine).

    Raises:
        OpTypeError: an axis that is not an int (a float, a bool, a string).
        OpError: an axis out of range.
    """
    if axis is None:
        return tuple(range(ndim))
    if type(axis) is int and -ndim <= axis < ndim:  # the common case first, cheaply
        return (axis % ndim,)
    prefix = f"{name}: " if name else ""
    if isinstance(axis, (int, np.integer)) and not isinstance(axis, (bool, np.bool_)):
        axes: Any = (axis,)
    elif isinstance(axis, (tuple, list)):
        axes = axis
    else:
        raise OpTypeError(f"{prefix}dim must be an int or a tuple of ints, got {axis!r} ({type(axis).__name__})")
    n = ndim or 1
    out = []
    for a in axes:
        if isinstance(a, (bool, np.bool_)) or not isinstance(a, (int, np.integer)):
            raise OpTypeError(f"{prefix}dim must be an int or a tuple of ints, got {axis!r}")
        if not -n <= a < n:
            raise OpError(f"{prefix}dim {a} is out of range for a tensor with {ndim} dimension(s) "
                          f"(expected one in [{-n}, {n - 1}])")
        out.append(int(a) % n)
    if len(set(out)) != len(out):
        raise OpError(f"{prefix}dim {tuple(axes)} repeats an axis")
    return tuple(out)


def _dim(name: str, dim: Any, axis: Any, default: Any = None) -> Any:
    """PyTorch's ``dim=`` or its NumPy alias ``axis=`` (one of them; ``default`` when neither is given).

    Raises:
        TypeError: both were given.
    """
    if axis is None:
        return default if dim is None else dim
    if dim is not None:
        raise TypeError(f"{name}: got both dim={dim!r} and its alias axis={axis!r}; pass one")
    return axis


def _keep(name: str, keepdim: Any, keepdims: Any) -> bool:
    """PyTorch's ``keepdim=`` or its NumPy alias ``keepdims=`` (False when neither is given).

    Raises:
        TypeError: both were given.
    """
    if keepdims is None:
        return bool(keepdim)
    if keepdim is not None:
        raise TypeError(f"{name}: got both keepdim={keepdim!r} and its alias keepdims={keepdims!r}; pass one")
    return bool(keepdims)


def _one_dim(name: str, dim: Any, ndim: int) -> int:
    """A single axis ``dim`` in ``[-ndim, ndim)`` as a non-negative int (0 for a 0-d tensor's dim 0 or -1).

    Raises:
        OpError: ``dim`` is not an int, or out of range.
    """
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, (bool, np.bool_)):
        raise OpTypeError(f"{name}: dim must be an int, got {dim!r}")
    n = ndim or 1
    if not -n <= dim < n:
        raise OpError(f"{name}: dim {dim} is out of range for a tensor with {ndim} dimension(s)")
    return int(dim) % n


# --------------------------------------------------------------------------------------------------
# Arithmetic
# --------------------------------------------------------------------------------------------------


class Add(Function):
    """``a + b`` (broadcasting). Backward: ``∂a = g``, ``∂b = g``."""

    def forward(self, a, b):
        return a + b

    def backward(self, g):
        return g, g


class Sub(Function):
    """``a - b`` (broadcasting). Backward: ``∂a = g``, ``∂b = -g``."""

    def forward(self, a, b):
        return a - b

    def backward(self, g):
        return g, -g


class Mul(Function):
    """``a * b`` (broadcasting). Backward: ``∂a = g·b``, ``∂b = g·a``."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, g):
        a_needs, b_needs = self.needs_input_grad
        return (g * self.b if a_needs else None), (g * self.a if b_needs else None)


class Div(Function):
    """``a / b`` (broadcasting). Backward: ``∂a = g / b``, ``∂b = -g·a / b²``."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, g):
        a_needs, b_needs = self.needs_input_grad
        ga = g / self.b if a_needs else None
        gb = -g * self.a / (self.b * self.b) if b_needs else None
        return ga, gb


class Pow(Function):
    """``a ** b`` with both operands tensors (broadcasting).

    Backward: ``∂a = g·b·a^(b-1)``, ``∂b = g·a^b·log(a)``. Where ``a == 0`` and ``b >= 0`` the limit
    ``∂b = 0`` is used (as in PyTorch); for ``a < 0`` the real logarithm is undefined and ``∂b`` is NaN.
    """

    def forward(self, a, b):
        self.a, self.b = a, b
        self.out = a**b
        return self.out

    def backward(self, g):
        xp = get_array_module(g)
        a, b = self.a, self.b
        ga = gb = None
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.needs_input_grad[0]:
                ga = g * xp.where(b == 0, 0, b * a ** (b - 1))
            if self.needs_input_grad[1]:
                gb = g * xp.where((a == 0) & (b >= 0), 0, self.out * xp.log(a))
        return ga, gb


class PowScalar(Function):
    """``a ** p`` for a Python number ``p``.

    Backward: ``∂a = g·p·a^(p-1)``; for ``p == 0`` the gradient is 0 everywhere (also at ``a == 0``, where
    the formula would give ``0·∞``).
    """

    def forward(self, a, exponent):
        self.a, self.exponent = a, exponent
        return a**exponent

    def backward(self, g):
        p = self.exponent
        if p == 0:
            return get_array_module(g).zeros_like(self.a)
        if p == 1:
            return g
        if p == 2:
            return g * (2 * self.a)
        with np.errstate(divide="ignore", invalid="ignore"):
            return g * (p * self.a ** (p - 1))


class Neg(Function):
    """``-a``. Backward: ``∂a = -g``."""

    def forward(self, a):
        return -a

    def backward(self, g):
        return -g


class MatMul(Function):
    """``a @ b`` with NumPy's rules: 1-D operands are promoted, leading (batch) axes broadcast.

    Shapes: ``(..., n, k) @ (..., k, m) -> (..., n, m)``. Backward: ``∂a = g @ bᵀ``, ``∂b = aᵀ @ g``
    (ᵀ swaps the last two axes; summed over broadcast batch axes).

    Raises:
        OpError: when the inner dimensions differ (the message names both shapes).
    """

    def forward(self, a, b):
        try:
            if a.ndim > 2 and b.ndim == 2 and a.shape[-1] == b.shape[0]:  # one 2-D product, not one per batch index
                out = (a.reshape(-1, a.shape[-1]) @ b).reshape(a.shape[:-1] + b.shape[1:])
            else:
                out = a @ b
        except ValueError:  # say why in our words (checked only when the backend refused)
            if a.ndim == 0 or b.ndim == 0:
                raise ValueError(
                    f"matmul needs operands with at least 1 dimension, got shapes {a.shape} and {b.shape}") from None
            k_a = a.shape[-1]
            k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
            if k_a != k_b:
                raise ValueError(
                    f"shapes {a.shape} and {b.shape} are not aligned: "
                    f"a's last dimension ({k_a}) must equal b's {'only' if b.ndim == 1 else 'second-to-last'} "
                    f"dimension ({k_b})"
                ) from None
            raise
        self.a, self.b = a, b
        return out

    def backward(self, g):
        a, b = self.a, self.b
        if a.ndim == 2 and b.ndim == 2:  # the common case: (n, k) @ (k, m)
            ga = g @ b.T if self.needs_input_grad[0] else None
            gb = a.T @ g if self.needs_input_grad[1] else None
            return ga, gb
        xp = get_array_module(g)
        if a.ndim == 1 and b.ndim == 1:
            return g * b, g * a
        if b.ndim <= 2 and a.ndim > 2:  # (..., n, k) @ (k, m): b is shared by every batch index
            return self._backward_shared_b(g, xp)
        if a.ndim == 2 and b.ndim > 2:  # (n, k) @ (..., k, m): a is shared
            return self._backward_shared_a(g, xp)
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = g
        if a.ndim == 1:
            g2 = xp.expand_dims(g2, -2)
        if b.ndim == 1:
            g2 = xp.expand_dims(g2, -1)
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = g2 @ xp.swapaxes(b2, -1, -2)
            if a.ndim == 1:
                ga = ga[..., 0, :]
        if self.needs_input_grad[1]:
            gb = xp.swapaxes(a2, -1, -2) @ g2
            if b.ndim == 1:
                gb = gb[..., 0]
        return ga, gb


    # A broadcast operand's gradient is reduced inside the product (one 2-D matmul, as PyTorch does), never
    # built as a (..., k, m) stack of per-batch gradients for the engine to sum: for a Linear on a (T, B, H)
    # input that stack would be T copies of the weight's shape.
    def _backward_shared_b(self, g, xp):
        a, b = self.a, self.b
        k = a.shape[-1]
        ga = gb = None
        if self.needs_input_grad[0]:  # b 1-D: ga[..., n, k] = g[..., n] b[k]
            ga = (g.reshape(-1, b.shape[1]) @ b.T).reshape(a.shape) if b.ndim == 2 else g[..., None] * b
        if self.needs_input_grad[1]:
            flat_a = a.reshape(-1, k)
            gb = flat_a.T @ (g.reshape(-1, b.shape[1]) if b.ndim == 2 else g.reshape(-1))
        return ga, gb

    def _backward_shared_a(self, g, xp):
        a, b = self.a, self.b
        n, k = a.shape
        ga = gb = None
        if self.needs_input_grad[0]:  # Σ over the batch of g_i @ b_iᵀ as one (n, B·m) @ (B·m, k) product
            g_cols = xp.moveaxis(g, -2, 0).reshape(n, -1)
            b_cols = xp.moveaxis(xp.broadcast_to(b, g.shape[:-2] + b.shape[-2:]), -2, 0).reshape(k, -1)
            ga = g_cols @ b_cols.T
        if self.needs_input_grad[1]:
            gb = a.T @ g
        return ga, gb


class AddMM(Function):
    """``c + a @ b`` as one node (PyTorch's ``addmm``): a (n, k), b (k, m), c broadcastable to (n, m).

    The recurrent step's ``x W_ihᵀ + b + h W_hhᵀ`` is this op. Forward: the product, then ``c`` added into it
    in place (one temporary, one node on the tape where ``+`` and ``@`` would record two). The output dtype
    is that of ``c + a @ b`` (NumPy 2 promotion).
    Backward: ``∂c = g`` (summed back to c's shape by the engine), ``∂a = g @ bᵀ``, ``∂b = aᵀ @ g``.

    Raises:
        OpError: ``a`` or ``b`` not 2-D, inner dimensions that differ, or ``c`` that does not broadcast to
            (n, m); the message names the shapes.
    """

    def forward(self, c, a, b):
        if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
            raise ValueError(f"addmm needs a (n, k) and b (k, m), got shapes {a.shape} and {b.shape}")
        out = a @ b
        try:
            if c.dtype == out.dtype and c.ndim <= 2:
                out += c  # in place; raises unless c broadcasts to out's shape (n, m)
            else:  # c promotes the result (a float64 c with float32 a and b), or has too many axes
                out = out + c
                if out.shape != (a.shape[0], b.shape[1]):
                    raise ValueError
        except ValueError:
            raise ValueError(
                f"c of shape {c.shape} does not broadcast to (n, m) = {(a.shape[0], b.shape[1])}") from None
        self.a, self.b = a, b
        return out

    def backward(self, g):
        gc = g if self.needs_input_grad[0] else None
        ga = g @ self.b.T if self.needs_input_grad[1] else None
        gb = self.a.T @ g if self.needs_input_grad[2] else None
        return gc, ga, gb


def add(a: Any, b: Any) -> Tensor:
    """``a + b`` (see :class:`Add`)."""
    a, b = _pair(a, b, "add")
    return Add.apply(a, b)


def sub(a: Any, b: Any) -> Tensor:
    """``a - b`` (see :class:`Sub`)."""
    a, b = _pair(a, b, "sub")
    return Sub.apply(a, b)


def mul(a: Any, b: Any) -> Tensor:
    """``a * b`` (see :class:`Mul`)."""
    a, b = _pair(a, b, "mul")
    return Mul.apply(a, b)


def div(a: Any, b: Any) -> Tensor:
    """``a / b`` (see :class:`Div`)."""
    a, b = _pair(a, b, "div")
    return Div.apply(a, b)


def pow(a: Any, b: Any) -> Tensor:  # noqa: A001 - the operator's name
    """``a ** b`` (see :class:`PowScalar` for a number exponent, :class:`Pow` otherwise)."""
    if isinstance(a, Tensor) and isinstance(b, (int, float)) and not isinstance(b, bool):
        try:
            return PowScalar.apply(a, exponent=b)
        except OverflowError:  # an int exponent beyond int64, or negative for an unsigned tensor
            raise OpError(f"pow: the exponent {b} does not fit the tensor's dtype {a.dtype}") from None
    a, b = _pair(a, b, "pow")
    return Pow.apply(a, b)


def neg(a: Tensor) -> Tensor:
    """``-a`` (see :class:`Neg`)."""
    return Neg.apply(a)


def matmul(a: Any, b: Any) -> Tensor:
    """``a @ b`` (see :class:`MatMul`)."""
    a, b = _pair(a, b, "matmul")
    return MatMul.apply(a, b)


def addmm(c: Any, a: Tensor, b: Tensor) -> Tensor:
    """``c + a @ b`` for 2-D ``a``, ``b`` as one op (see :class:`AddMM`); ``c`` may be a tensor, array or number."""
    a, b = _pair(a, b, "addmm")
    return AddMM.apply(_const(c, a, "addmm"), a, b)


_COMPARISONS = {"lt": "less", "le": "less_equal", "gt": "greater", "ge": "greater_equal", "eq": "equal",
                "ne": "not_equal"}


def _operand(value: Any, like: Tensor, name: str = "compare") -> Tensor:
    """``value`` as a tensor next to ``like``: a tensor as it is, a list/tuple as an array on its device."""
    if isinstance(value, (list, tuple)):
        try:
            value = get_array_module(like.array).asarray(value)
        except (ValueError, TypeError, OverflowError) as exc:
            raise OpError(f"{name}: cannot use {value!r} as an operand ({exc})") from None
    return _const(value, like, name)


def compare(a: Any, b: Any, op: str) -> Tensor:
    """Elementwise comparison (``lt le gt ge eq ne``) with broadcasting, as a boolean tensor; not differentiable.

    Raises:
        OpError: shapes that do not broadcast, or operands on different devices.
    """
    if isinstance(a, Tensor):
        b = _operand(b, a, op)
    else:
        a = _operand(a, b, op)
    _check_same_device(op, a, b)
    _reads_values(op, a, b)
    try:
        out = getattr(get_array_module(a.array), _COMPARISONS[op])(a.array, b.array)
    except ValueError as exc:
        raise OpError(f"{op}: shapes {tuple(a.shape)} and {tuple(b.shape)} do not broadcast ({exc})") from None
    return Tensor._wrap(out)


def equal(a: Tensor, b: Any) -> bool:
    """``torch.equal``: True when both have the same shape and the same values."""
    b = _operand(b, a)
    if a.shape != b.shape:
        return False
    _check_same_device("equal", a, b)
    _reads_values("equal", a, b)
    return bool((a.array == b.array).all())


def isclose(a: Tensor, b: Any, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> Tensor:
    """``torch.isclose``: elementwise ``|a - b| <= atol + rtol·|b|`` as a boolean tensor."""
    b = _operand(b, a)
    _check_same_device("isclose", a, b)
    _reads_values("isclose", a, b)
    return Tensor._wrap(get_array_module(a.array).isclose(a.array, b.array, rtol=rtol, atol=atol, equal_nan=equal_nan))


def allclose(a: Tensor, b: Any, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> bool:
    """``torch.allclose``: True when :func:`isclose` holds everywhere.

    Raises:
        OpError: shapes that do not broadcast.
    """
    try:
        return bool(isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan).array.all())
    except ValueError as exc:
        raise OpError(f"allclose: shapes {tuple(a.shape)} and {tuple(getattr(b, 'shape', ()))} do not broadcast "
                      f"({exc})") from None


# --------------------------------------------------------------------------------------------------
# Elementwise functions
# --------------------------------------------------------------------------------------------------


class Exp(Function):
    """``exp(a)``. Backward: ``∂a = g·exp(a)`` (the saved output)."""

    def forward(self, a):
        self.out = get_array_module(a).exp(a)
        return self.out

    def backward(self, g):
        return g * self.out


class Log(Function):
    """Natural logarithm ``log(a)``. Backward: ``∂a = g / a``."""

    def forward(self, a):
        self.a = a
        return get_array_module(a).log(a)

    def backward(self, g):
        return g / self.a


class Sqrt(Function):
    """``sqrt(a)``. Backward: ``∂a = g / (2·sqrt(a))`` (the saved output)."""

    def forward(self, a):
        self.out = get_array_module(a).sqrt(a)
        return self.out

    def backward(self, g):
        return g / (2 * self.out)


class Tanh(Function):
    """``tanh(a)``. Backward: ``∂a = g·(1 - tanh(a)²)`` (from the saved output)."""

    def forward(self, a):
        self.out = get_array_module(a).tanh(a)
        return self.out

    def backward(self, g):
        grad = 1 - self.out * self.out
        grad *= g  # in place on our own temporary
        return grad


class Sigmoid(Function):
    """Logistic ``σ(a) = 1 / (1 + exp(-a))``, computed without overflow and accurate in both tails as
    ``exp(min(a, 0)) / (1 + exp(-|a|))`` (:func:`tinygrad_rnn.numerics.sigmoid`, shared with ``article``).
    Backward: ``∂a = g·σ(a)·(1 - σ(a))`` (from the saved output).
    """

    def forward(self, a):
        self.out = numerics.sigmoid(a)
        return self.out

    def backward(self, g):
        out = self.out
        grad = 1 - out
        grad *= out  # in place on our own temporary: σ(1 - σ)
        grad *= g
        return grad


class ReLU(Function):
    """``max(a, 0)``. Backward: ``∂a = g`` where ``a > 0``, else 0."""

    def forward(self, a):
        self.mask = a > 0
        out = get_array_module(a).maximum(a, 0).astype(a.dtype, copy=False)  # not a·mask: -inf·0 is NaN
        if out.dtype.kind == "f":
            out += 0  # -0. becomes 0., as PyTorch; NaN stays NaN
        return out

    def backward(self, g):
        return g * self.mask


class Abs(Function):
    """``|a|``. Backward: ``∂a = g·sign(a)`` (0 at ``a == 0``, as PyTorch)."""

    def forward(self, a):
        self.a = a
        return get_array_module(a).abs(a)

    def backward(self, g):
        return g * get_array_module(g).sign(self.a)


class Clip(Function):
    """``min(max(a, low), high)`` (either bound may be None).

    Backward: ``∂a = g`` where ``low <= a <= high`` (bounds included, as PyTorch's ``clamp``), else 0.
    """

    def forward(self, a, low, high):
        xp = get_array_module(a)
        mask = xp.ones(a.shape, dtype=bool)
        if low is not None:
            mask &= a >= low
        if high is not None:
            mask &= a <= high
        self.mask = mask
        return xp.clip(a, low, high).astype(a.dtype, copy=False)

    def backward(self, g):
        return g * self.mask


class Cast(Function):
    """A copy with another dtype. Backward: ``∂a = g`` cast back to ``a``'s dtype."""

    def forward(self, a, dtype):
        return a.astype(dtype)

    def backward(self, g):
        return g  # the engine casts to the input's dtype


class ToDevice(Function):
    """A copy of ``a`` on another device. Backward: the gradient copied back to ``a``'s device."""

    def forward(self, a, device):
        from tinygrad_rnn.backend import device_of

        self.source = device_of(a)
        return to_device(a, device)

    def backward(self, g):
        return to_device(g, self.source)


def _floating(a: Tensor) -> Tensor:
    """``a`` itself when floating; a bool or integer tensor converted to the default dtype (float32), as
    PyTorch's floating functions (``exp``, ``sigmoid``...) do — NumPy would give float16 for uint8/int8 and
    float64 for int64."""
    if a.array.dtype.kind == "f":
        return a
    return Tensor._wrap(a.array.astype(_defaults.dtype))


def exp(a: Tensor) -> Tensor:
    """Elementwise ``e**a`` (see :class:`Exp`); integer input gives the default float dtype."""
    return Exp.apply(_floating(a))


def log(a: Tensor) -> Tensor:
    """Elementwise natural logarithm (see :class:`Log`); integer input gives the default float dtype."""
    return Log.apply(_floating(a))


def sqrt(a: Tensor) -> Tensor:
    """Elementwise square root (see :class:`Sqrt`); integer input gives the default float dtype."""
    return Sqrt.apply(_floating(a))


def tanh(a: Tensor) -> Tensor:
    """Elementwise hyperbolic tangent (see :class:`Tanh`); integer input gives the default float dtype."""
    return Tanh.apply(_floating(a))


def sigmoid(a: Tensor) -> Tensor:
    """Elementwise logistic function, overflow-free (see :class:`Sigmoid`); integer input gives the default
    float dtype."""
    return Sigmoid.apply(_floating(a))


def relu(a: Tensor) -> Tensor:
    """Elementwise ``max(a, 0)`` (see :class:`ReLU`)."""
    return ReLU.apply(a)


def abs(a: Tensor) -> Tensor:  # noqa: A001
    """Elementwise absolute value (see :class:`Abs`)."""
    return Abs.apply(a)


def clip(a: Tensor, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002 - PyTorch's names
    """Clamp ``a`` to ``[min, max]`` (Python numbers; either may be None). See :class:`Clip`.

    An integer or bool tensor with a float bound becomes the default float dtype first, as in PyTorch
    (``clamp(tensor([1, 5]), 1.5, 3.5)`` is ``[1.5, 3.5]``, not ``[1, 3]``).

    Raises:
        OpError: neither bound given; an int bound outside the tensor's integer dtype.
        OpTypeError: a bound that is not a real number.
    """
    if min is None and max is None:
        raise OpError("clip: at least one of min and max must be given")
    for bound in (min, max):
        if bound is not None and (isinstance(bound, (bool, np.bool_))
                                  or not isinstance(bound, (int, float, np.integer, np.floating))):
            raise OpTypeError(f"clip: min and max must be real numbers or None, got {bound!r}")
    if a.array.dtype.kind != "f" and (isinstance(min, (float, np.floating)) or isinstance(max, (float, np.floating))):
        a = _floating(a)
    elif a.array.dtype.kind in "iu":
        info = np.iinfo(a.array.dtype)
        for bound in (min, max):
            if bound is not None and not info.min <= bound <= info.max:
                raise OpError(f"clip: bound {bound} is outside the range of the tensor's dtype {a.dtype}")
    return Clip.apply(a, low=min, high=max)


def cast(a: Tensor, dtype: Any) -> Tensor:
    """``a`` converted to ``dtype`` (see :class:`Cast`); ``a`` itself when it already has it."""
    dtype = np.dtype(dtype)
    if a.dtype == dtype:
        return a
    if a.requires_grad and dtype.kind not in "fc":
        _reads_values("cast", a)
        return Tensor._wrap(a.array.astype(dtype))  # integer results carry no gradient
    return Cast.apply(a, dtype=dtype)


# --------------------------------------------------------------------------------------------------
# Reductions
# --------------------------------------------------------------------------------------------------


def _all_if_empty(dim: Any) -> Any:
    """PyTorch reads ``dim=()`` (or ``[]``) as every dim; NumPy's ``axis=()`` would reduce none."""
    return None if isinstance(dim, (tuple, list)) and not dim else dim


def _need_floating(name: str, a: Tensor) -> None:
    if a.array.dtype.kind != "f":
        raise OpError(f"{name}: needs a floating-point tensor, got dtype {a.dtype} (as PyTorch; convert with "
                      ".float() or .double() first)")


def _expand_reduced(g: Any, axes: tuple[int, ...], keepdims: bool, shape: tuple[int, ...]) -> Any:
    """Broadcast a reduced gradient back to ``shape`` (a read-only view, no copy)."""
    xp = get_array_module(g)
    if not keepdims:
        g = g.reshape([1 if i in axes else n for i, n in enumerate(shape)])
    return xp.broadcast_to(g, shape)


class Sum(Function):
    """Sum over ``axis`` (None: all; int or tuple). Backward: ``∂a = g`` broadcast over the summed axes."""

    def forward(self, a, axis, keepdims):
        axes = _normalize_axes(axis, a.ndim)
        self.axes = axes if a.ndim else ()  # a 0-d tensor's dim 0 or -1: the tensor itself
        self.keepdims, self.input_shape = keepdims, a.shape
        return a.sum(axis=self.axes, keepdims=keepdims)

    def backward(self, g):
        return _expand_reduced(g, self.axes, self.keepdims, self.input_shape)


class Mean(Function):
    """Mean over ``axis``. Backward: ``∂a = g / N`` broadcast, N the number of averaged elements."""

    def forward(self, a, axis, keepdims):
        axes = _normalize_axes(axis, a.ndim)
        self.axes = axes if a.ndim else ()  # a 0-d tensor's dim 0 or -1: the tensor itself
        self.keepdims, self.input_shape = keepdims, a.shape
        self.count = int(np.prod([a.shape[i] for i in self.axes])) if self.axes else 1
        return a.mean(axis=self.axes, keepdims=keepdims)

    def backward(self, g):
        return _expand_reduced(g / self.count, self.axes, self.keepdims, self.input_shape)


class Max(Function):
    """Maximum over ``axis`` (``mode='max'``) or minimum (``mode='min'``).

    Backward: ``g`` goes to the elements equal to the extremum; **ties split it evenly** (each of k tied
    elements receives ``g / k``), as PyTorch's ``amax``/``amin`` do. The result is a subgradient.
    """

    def forward(self, a, axis, keepdims, mode):
        if a.size == 0:
            raise ValueError(f"{mode} of an empty tensor of shape {a.shape}")
        axes = _normalize_axes(axis, a.ndim)
        self.axes = axes if a.ndim else ()  # a 0-d tensor's dim 0 or -1: the tensor itself
        self.keepdims, self.a = keepdims, a
        reduce = a.max if mode == "max" else a.min
        self.out = reduce(axis=self.axes, keepdims=True)
        return self.out if keepdims else self.out.reshape([n for i, n in enumerate(a.shape) if i not in self.axes])

    @property
    def name(self) -> str:
        return "max/min"

    def backward(self, g):
        mask = self.a == self.out
        count = mask.sum(axis=self.axes, keepdims=True)
        g = _expand_reduced(g, self.axes, self.keepdims, self.a.shape)
        return g * mask / count.astype(g.dtype)


def sum(a: Tensor, dim: Any = None, keepdim: Any = None, *, axis: Any = None,  # noqa: A001
        keepdims: Any = None) -> Tensor:
    """Sum over ``dim`` (None: all; an int or a tuple); ``axis``/``keepdims`` are aliases (see :class:`Sum`).
    Bool and integer tensors sum to int64, as in PyTorch (NumPy would give uint64 for unsigned ones)."""
    if a.array.dtype.kind in "bu" or (a.array.dtype.kind == "i" and a.array.dtype.itemsize < 8):
        a = Tensor._wrap(a.array.astype(np.int64))
    return Sum.apply(a, axis=_all_if_empty(_dim("sum", dim, axis)), keepdims=_keep("sum", keepdim, keepdims))


def mean(a: Tensor, dim: Any = None, keepdim: Any = None, *, axis: Any = None, keepdims: Any = None) -> Tensor:
    """Mean over ``dim`` (None: all; an int or a tuple); ``axis``/``keepdims`` are aliases (see :class:`Mean`).

    Raises:
        OpError: a bool or integer tensor (as PyTorch: convert with ``.float()`` first).
    """
    _need_floating("mean", a)
    return Mean.apply(a, axis=_all_if_empty(_dim("mean", dim, axis)), keepdims=_keep("mean", keepdim, keepdims))


def var(a: Tensor, dim: Any = None, unbiased: bool | None = None, keepdim: Any = None, *, correction: Any = None,
        axis: Any = None, keepdims: Any = None) -> Tensor:
    """Variance over ``dim`` with Bessel's ``correction`` (default 1; ``unbiased=False`` means 0), as
    ``torch.var``: ``Σ (a - mean)² / (N - correction)``. Composite: the tape differentiates it."""
    dim, keep = _dim("var", dim, axis), _keep("var", keepdim, keepdims)
    _need_floating("var/std", a)
    if correction is None:
        correction = 0 if unbiased is False else 1
    axes = _normalize_axes(dim, a.ndim, "var/std")
    n = int(np.prod([a.shape[i] for i in axes])) if axes else 1
    centred = a - mean(a, axes, keepdim=True)
    return sum(centred * centred, axes, keepdim=keep) / (n - correction if n > correction else 0)


def std(a: Tensor, dim: Any = None, unbiased: bool | None = None, keepdim: Any = None, *, correction: Any = None,
        axis: Any = None, keepdims: Any = None) -> Tensor:
    """Standard deviation: ``sqrt(var(...))`` with the same arguments (see :func:`var`)."""
    return sqrt(var(a, dim, unbiased, keepdim, correction=correction, axis=axis, keepdims=keepdims))


class _ReturnTypes:
    """The named tuples of PyTorch's ``torch.return_types``: ``values`` and ``indices``."""

    max = collections.namedtuple("max", ["values", "indices"])
    min = collections.namedtuple("min", ["values", "indices"])
    topk = collections.namedtuple("topk", ["values", "indices"])
    sort = collections.namedtuple("sort", ["values", "indices"])


return_types = _ReturnTypes


def _extremum(name: str, a: Tensor, dim: Any, keepdim: Any, axis: Any, keepdims: Any) -> Any:
    """``max``/``min`` in PyTorch's three meanings (see :func:`max`)."""
    if isinstance(dim, Tensor):
        return (maximum if name == "max" else minimum)(a, dim)
    if dim is not None and (isinstance(dim, (bool, np.bool_)) or not isinstance(dim, (int, np.integer))):
        if isinstance(dim, (tuple, list)):
            raise OpError(f"{name}: dim must be one int (got {dim!r}); use a{name}(dim=...) for several dims")
        raise OpTypeError(f"{name}: expected an int dim or another Tensor, got {dim!r} ({type(dim).__name__}); "
                          f"use {'maximum' if name == 'max' else 'minimum'}(a, value) for a number")
    dim, keep = _dim(name, dim, axis), _keep(name, keepdim, keepdims)
    if dim is None:
        if keep:
            raise TypeError(f"{name}: keepdim needs a dim")
        return Max.apply(a, axis=None, keepdims=False, mode=name)
    d = _one_dim(name, dim, a.ndim)
    if a.shape and a.shape[d] == 0:
        raise OpError(f"{name}: dim {dim} of shape {a.shape} is empty")
    xp = get_array_module(a.array)
    _reads_values(name, a)  # the index is decided here, outside the tape
    pick = xp.argmax if name == "max" else xp.argmin
    index = pick(a.array, axis=d if a.ndim else None, keepdims=True).astype(np.int64)
    if a.ndim == 0:
        index = index.reshape(())
        values = a
    else:
        values = Gather.apply(a, index=index, axis=d)
    if not keep and a.ndim:
        values, index = squeeze(values, d), index.squeeze(d)
    return getattr(return_types, name)(values, Tensor._wrap(index))


def max(a: Tensor, dim: Any = None, keepdim: Any = None, *, axis: Any = None,  # noqa: A001
        keepdims: Any = None) -> Any:
    """PyTorch's ``max``, in its three meanings.

    * ``max(a)``: the largest element, a 0-d tensor; tied maxima share the gradient evenly (see :class:`Max`).
    * ``max(a, dim, keepdim=False)``: the named tuple ``(values, indices)`` along ``dim`` (an int); the
      gradient goes to the element ``indices`` picks (the first maximum), as in PyTorch.
    * ``max(a, other)``: the elementwise maximum of two tensors (see :func:`maximum`).

    ``axis``/``keepdims`` are aliases of ``dim``/``keepdim``. For several dims use :func:`amax`.

    Raises:
        OpError: a dim out of range or a tuple of dims; an empty tensor.
    """
    return _extremum("max", a, dim, keepdim, axis, keepdims)


def min(a: Tensor, dim: Any = None, keepdim: Any = None, *, axis: Any = None,  # noqa: A001
        keepdims: Any = None) -> Any:
    """PyTorch's ``min``: the smallest element, ``(values, indices)`` along ``dim``, or the elementwise
    minimum with another tensor (see :func:`max`)."""
    return _extremum("min", a, dim, keepdim, axis, keepdims)


def amax(a: Tensor, dim: Any = None, keepdim: Any = None, *, axis: Any = None, keepdims: Any = None) -> Tensor:
    """Maximum over ``dim`` (None: all; an int or a tuple) as a tensor; ties share the gradient evenly
    (``torch.amax``, see :class:`Max`)."""
    return Max.apply(a, axis=_all_if_empty(_dim("amax", dim, axis)), keepdims=_keep("amax", keepdim, keepdims),
                     mode="max")


def amin(a: Tensor, dim: Any = None, keepdim: Any = None, *, axis: Any = None, keepdims: Any = None) -> Tensor:
    """Minimum over ``dim`` as a tensor; ties share the gradient evenly (``torch.amin``, see :class:`Max`)."""
    return Max.apply(a, axis=_all_if_empty(_dim("amin", dim, axis)), keepdims=_keep("amin", keepdim, keepdims),
                     mode="min")


def _arg_extremum(name: str, a: Tensor, dim: Any, keepdim: Any, axis: Any, keepdims: Any) -> Tensor:
    dim, keep = _dim(name, dim, axis), _keep(name, keepdim, keepdims)
    xp = get_array_module(a.array)
    if dim is not None:
        dim = _one_dim(name, dim, a.ndim)
        if a.ndim == 0:
            dim = None
    if a.array.size == 0:
        raise OpError(f"{name}: an empty tensor of shape {a.shape} has no {name[3:]}imum")
    _reads_values(name, a)
    out = getattr(xp, name)(a.array, axis=dim, keepdims=keep)
    return Tensor._wrap(xp.asarray(out, dtype=np.int64))


def argmax(a: Tensor, dim: Any = None, keepdim: Any = None, *, axis: Any = None, keepdims: Any = None) -> Tensor:
    """Index of the maximum along ``dim`` (of the flattened tensor when None; first one on ties) as an int64
    tensor; not differentiable. ``axis``/``keepdims`` are aliases."""
    return _arg_extremum("argmax", a, dim, keepdim, axis, keepdims)


def argmin(a: Tensor, dim: Any = None, keepdim: Any = None, *, axis: Any = None, keepdims: Any = None) -> Tensor:
    """Index of the minimum along ``dim`` (first one on ties) as an int64 tensor; not differentiable."""
    return _arg_extremum("argmin", a, dim, keepdim, axis, keepdims)


class Maximum(Function):
    """Elementwise ``maximum(a, b)`` (``mode='max'``) or ``minimum`` (broadcasting).

    Backward: ``g`` goes to the larger (smaller) operand; where they are equal each receives ``g/2``, as in
    PyTorch.
    """

    def forward(self, a, b, mode):
        xp = get_array_module(a)
        self.a, self.b, self.mode = a, b, mode
        return (xp.maximum if mode == "max" else xp.minimum)(a, b)

    @property
    def name(self) -> str:
        return "maximum" if self.mode == "max" else "minimum"

    def backward(self, g):
        a, b = self.a, self.b
        wins = (a > b) if self.mode == "max" else (a < b)
        tie = (a == b).astype(g.dtype) * g.dtype.type(0.5)
        share_a = wins.astype(g.dtype) + tie
        ga = g * share_a if self.needs_input_grad[0] else None
        gb = g * (1 - share_a) if self.needs_input_grad[1] else None
        return ga, gb


def maximum(a: Any, b: Any) -> Tensor:
    """Elementwise maximum (see :class:`Maximum`)."""
    a, b = _pair(a, b, "maximum")
    return Maximum.apply(a, b, mode="max")


def minimum(a: Any, b: Any) -> Tensor:
    """Elementwise minimum (see :class:`Maximum`)."""
    a, b = _pair(a, b, "minimum")
    return Maximum.apply(a, b, mode="min")


class Gather(Function):
    """``torch.gather(a, dim, index)``: ``out[i][j][k] = a[i][index[i][j][k]][k]`` (for dim 1).

    ``index`` is an int64 array with ``a``'s number of dimensions and, off ``dim``, sizes no larger than
    ``a``'s. Backward: ``g`` scatter-added into zeros of ``a``'s shape at the gathered positions (repeated
    indices add up).
    """

    def forward(self, a, index, axis):
        if index.ndim != a.ndim:
            raise ValueError(f"index must have {a.ndim} dimensions like the input, got shape {index.shape}")
        for d in range(a.ndim):
            if d != axis and index.shape[d] > a.shape[d]:
                raise ValueError(f"index shape {index.shape} exceeds input shape {a.shape} off dim {axis}")
        if index.size and (int(index.min()) < -a.shape[axis] or int(index.max()) >= a.shape[axis]):
            raise IndexError(f"index values must lie in [0, {a.shape[axis]}) along dim {axis}")
        xp = get_array_module(a)
        grids = list(xp.ogrid[tuple(slice(0, n) for n in index.shape)]) if index.ndim else []
        if grids:
            grids[axis] = index
        self.where, self.input_shape = tuple(grids), a.shape
        return a[self.where] if grids else a

    def backward(self, g):
        if not self.where:
            return g
        grad = get_array_module(g).zeros(self.input_shape, dtype=g.dtype)
        scatter_add(grad, self.where, g)
        return grad


def gather(a: Tensor, dim: int, index: Any) -> Tensor:
    """``torch.gather`` (see :class:`Gather`); ``index`` an integer Tensor or array."""
    index = index.array if isinstance(index, Tensor) else get_array_module(a.array).asarray(index)
    if index.dtype.kind not in "iu":
        raise OpError(f"gather: index must hold integers, got dtype {index.dtype}")
    return Gather.apply(a, index=index.astype(np.int64, copy=False), axis=_one_dim("gather", dim, a.ndim))


def topk(a: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> Any:  # noqa: A002
    """The ``k`` largest (``largest=False``: smallest) elements along ``dim`` and their indices, as the named
    tuple ``(values, indices)`` of ``torch.topk``, in order (ties: the lower index first). The values are
    gathered from ``a``, so the gradient reaches the picked elements.

    Raises:
        OpError: ``k`` outside ``[0, size of dim]``.
    """
    d = _one_dim("topk", dim, a.ndim)
    n = a.shape[d] if a.ndim else 1
    if not 0 <= k <= n:
        raise OpError(f"topk: k={k} is out of range for dim {dim} of size {n}")
    xp = get_array_module(a.array)
    if a.ndim == 0:
        return return_types.topk(a, Tensor._wrap(xp.zeros((), dtype=np.int64)))
    _reads_values("topk", a)
    key = -a.array if largest else a.array
    order = xp.argsort(key, axis=d, kind="stable")
    index = xp.take(order, xp.arange(k), axis=d).astype(np.int64)
    return return_types.topk(Gather.apply(a, index=index, axis=d), Tensor._wrap(index))


def sort(a: Tensor, dim: int = -1, descending: bool = False, stable: bool = True) -> Any:
    """``torch.sort``: ``(values, indices)`` along ``dim`` (stable); the values are gathered, so differentiable."""
    d = _one_dim("sort", dim, a.ndim)
    values, indices = topk(a, a.shape[d] if a.ndim else 1, d, largest=descending)
    return return_types.sort(values, indices)


def multinomial(probs: Tensor, num_samples: int, replacement: bool = False, generator: Any = None) -> Tensor:
    """``torch.multinomial``: for each row of non-negative weights ``probs`` ((C,) or (N, C)), ``num_samples``
    category indices drawn in proportion to the weights (without replacement by default). Uses the device's
    generator (:func:`tinygrad_rnn.manual_seed`) unless a NumPy ``generator`` is given. Not differentiable.

    Raises:
        OpError: wrong rank, negative/non-finite weights, a row summing to 0, or more samples than
            categories with a non-zero weight without replacement.
    """
    from tinygrad_rnn.tensor import default_rng

    if probs.ndim not in (1, 2):
        raise OpError(f"multinomial: probs must be 1-D or 2-D, got shape {probs.shape}")
    _reads_values("multinomial", probs)
    rows = to_numpy(probs.array).astype(np.float64).reshape(-1, probs.shape[-1])
    if not np.isfinite(rows).all() or (rows < 0).any():
        raise OpError("multinomial: probs must be finite and non-negative")
    totals = rows.sum(axis=1)
    if (totals <= 0).any():
        raise OpError("multinomial: every row of probs must have a positive sum")
    if not replacement and num_samples > int((rows > 0).sum(axis=1).min()):
        raise OpError(f"multinomial: cannot draw {num_samples} samples without replacement from "
                      f"{int((rows > 0).sum(axis=1).min())} categories with non-zero weight")
    rng = generator if generator is not None else default_rng("cpu")
    out = np.stack([rng.choice(rows.shape[1], size=num_samples, replace=replacement, p=row / row.sum())
                    for row in rows]).astype(np.int64)
    out = out.reshape(num_samples) if probs.ndim == 1 else out
    return Tensor._wrap(to_device(out, probs.device))


# --------------------------------------------------------------------------------------------------
# Shape ops
# --------------------------------------------------------------------------------------------------


class Reshape(Function):
    """The same elements in a new shape (one entry may be -1). Backward: ``g`` reshaped to ``a``'s shape."""

    def forward(self, a, shape):
        self.input_shape = a.shape
        return a.reshape(shape)

    def backward(self, g):
        return g.reshape(self.input_shape)


class Permute(Function):
    """Reorder the axes: ``out.shape[i] = a.shape[axes[i]]``. Backward: ``g`` permuted by the inverse order."""

    def forward(self, a, axes):
        if sorted(axes) != list(range(a.ndim)):
            raise ValueError(f"axes {axes} are not a permutation of the {a.ndim} axes of shape {a.shape}")
        self.inverse = tuple(int(i) for i in np.argsort(axes))
        return a.transpose(axes)

    def backward(self, g):
        return g.transpose(self.inverse)


class Expand(Function):
    """Broadcast ``a`` to ``shape`` (a view; -1 keeps a size). Backward: ``g`` summed back (by the engine)."""

    def forward(self, a, shape):
        lead = len(shape) - a.ndim
        shape = tuple(a.shape[i - lead] if s == -1 else s for i, s in enumerate(shape))
        return get_array_module(a).broadcast_to(a, shape)

    def backward(self, g):
        return g


class GetItem(Function):
    """``a[index]`` with NumPy's basic (ints, slices, None, Ellipsis) and advanced (integer/bool arrays) indexing.

    Backward: a zero array of ``a``'s shape with ``g`` written at ``index``; with advanced indexing repeated
    indices **add up** (scatter-add), so ``a[[0, 0]]`` sends ``2·g`` to ``a[0]``.

    Raises:
        OpError: an index out of range (naming the axis and its size).
    """

    def forward(self, a, index):
        self.input_shape, self.index = a.shape, index
        self.advanced = _is_advanced(index)
        return a[index]

    def backward(self, g):
        xp = get_array_module(g)
        grad = xp.zeros(self.input_shape, dtype=g.dtype)
        if self.advanced:
            scatter_add(grad, self.index, g)
        else:
            grad[self.index] = g
        return grad


def _is_advanced(index: Any) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(not isinstance(i, (int, np.integer, slice, type(None), type(Ellipsis))) for i in items)


class Concat(Function):
    """Join tensors along an existing ``axis``. Backward: ``g`` split back into the pieces' sizes."""

    def forward(self, *arrays, axis):
        self.axis = axis % arrays[0].ndim
        self.bounds = tuple(itertools.accumulate(x.shape[self.axis] for x in arrays[:-1]))  # Python ints
        return get_array_module(arrays[0]).concatenate(arrays, axis=self.axis)

    def backward(self, g):
        return tuple(get_array_module(g).split(g, self.bounds, axis=self.axis))


class Stack(Function):
    """Join equal-shape tensors along a new ``axis``. Backward: slice ``i`` of ``g`` to input ``i``."""

    def forward(self, *arrays, axis):
        self.axis = axis % (arrays[0].ndim + 1)
        return get_array_module(arrays[0]).stack(arrays, axis=self.axis)

    def backward(self, g):
        before = (slice(None),) * self.axis
        return tuple(g[before + (i,)] for i in range(g.shape[self.axis]))  # views, no copies


class Split(Function):
    """Cut ``a`` along ``axis`` at ``bounds`` into several outputs (one node, views of ``a``).

    Backward: the outputs' gradients concatenated (zeros for an output that received none).
    """

    def forward(self, a, bounds, axis):
        self.axis, self.input_shape, self.input_dtype = axis, a.shape, a.dtype
        edges = [0, *bounds, a.shape[axis]]
        self.sizes = tuple(stop - start for start, stop in zip(edges, edges[1:], strict=False))
        before = (slice(None),) * axis
        return tuple(a[before + (slice(start, stop),)] for start, stop in zip(edges, edges[1:], strict=False))

    def backward(self, *grads):
        xp = get_array_module(next(g for g in grads if g is not None))
        full = []
        for g, size in zip(grads, self.sizes, strict=False):
            if g is None:
                shape = list(self.input_shape)
                shape[self.axis] = size
                g = xp.zeros(shape, dtype=self.input_dtype)
            full.append(g)
        return xp.concatenate(full, axis=self.axis)


class Unbind(Function):
    """All slices ``a[i]`` along ``axis`` (the axis removed) as outputs of one node.

    Backward: the slices' gradients stacked (zeros for a slice that received none). A recurrent layer uses it
    to take the time steps of a precomputed input projection without an O(T²) chain of getitems.
    """

    def forward(self, a, axis):
        self.axis, self.input_shape, self.input_dtype = axis, a.shape, a.dtype
        before = (slice(None),) * axis
        return tuple(a[before + (i,)] for i in range(a.shape[axis]))  # views of a, no copies

    def backward(self, *grads):
        some = next(g for g in grads if g is not None)
        xp = get_array_module(some)
        zero = None
        full = []
        for g in grads:
            if g is None:
                if zero is None:
                    zero = xp.zeros_like(some)
                g = zero
            full.append(g)
        return xp.stack(full, axis=self.axis)


class Where(Function):
    """``where(condition, a, b)``: ``a`` where the boolean condition holds, ``b`` elsewhere (broadcasting).

    Backward: ``∂a = g`` where the condition holds (0 elsewhere), ``∂b = g`` where it does not. Both
    branches are evaluated in the forward pass, so a branch that is ±inf or NaN where it is *not* taken still
    poisons its own inputs' gradients through its own ops (``0·inf = NaN``); write the safe pattern
    ``log(where(x > 0, x, 1))`` instead of ``where(x > 0, log(x), 0)``.
    """

    def forward(self, a, b, condition):
        self.condition = condition
        return get_array_module(a).where(condition, a, b)

    def backward(self, g):
        xp = get_array_module(g)
        zero = xp.zeros((), dtype=g.dtype)
        ga = xp.where(self.condition, g, zero) if self.needs_input_grad[0] else None
        gb = xp.where(self.condition, zero, g) if self.needs_input_grad[1] else None
        return ga, gb


class Embedding(Function):
    """Gather rows: ``out[...] = weight[indices[...]]``; ``weight`` (V, D), int ``indices`` (...) -> (..., D).

    Backward: ``∂weight[v] = Σ_{positions p with indices[p] = v} g[p]`` (scatter-add; repeated ids add up).

    Raises:
        OpError: an index outside ``[0, V)``.
    """

    def forward(self, weight, indices):
        if indices.size and (int(indices.min()) < 0 or int(indices.max()) >= weight.shape[0]):
            raise IndexError(
                f"indices must lie in [0, {weight.shape[0]}) for a weight of shape {weight.shape}, "
                f"got values in [{int(indices.min())}, {int(indices.max())}]"
            )
        self.indices, self.input_shape = indices, weight.shape
        return weight[indices]

    def backward(self, g):
        xp = get_array_module(g)
        grad = xp.zeros(self.input_shape, dtype=g.dtype)
        scatter_add(grad, self.indices.reshape(-1), g.reshape(-1, self.input_shape[1]))
        return grad


def _put_along_axis(target: Any, index: Any, values: Any, axis: int) -> None:
    """``target[..., index, ...] = values`` along ``axis`` (NumPy's ``put_along_axis``; a mask where the
    backend lacks it)."""
    xp = get_array_module(target)
    if hasattr(xp, "put_along_axis"):
        xp.put_along_axis(target, index, values, axis=axis)
    else:  # pragma: no cover - an older CuPy
        shape = [1] * target.ndim
        shape[axis] = target.shape[axis]
        xp.copyto(target, xp.asarray(values, dtype=target.dtype),
                  where=xp.arange(target.shape[axis]).reshape(shape) == index)


class LogSoftmax(Function):
    """``log_softmax(a)_i = a_i - log Σ_j exp(a_j)`` along ``axis``, computed stably (max subtracted first).

    With ``s = a - max(a)`` and one maximum ``m`` picked per slice (``argmax``), ``exp(s_m) = 1``, so
    ``log Σ_j exp(s_j) = log1p(r)`` with ``r = Σ_{j≠m} exp(s_j)`` (other tied maxima add exactly 1 each): no
    overflow for any finite logits, and the entry of a dominant class keeps full relative precision
    (``log_softmax([0, -50])[0] = -1.9e-22``, where ``log(1 + r)`` would round to 0).
    The forward makes one exp pass and keeps ``softmax = exp(s) / (1 + r)`` for the backward.

    Backward: ``∂a = g - softmax(a)·Σ_j g_j``.
    """

    def forward(self, a, axis):
        xp = get_array_module(a)
        self.axis = axis
        top = xp.expand_dims(a.argmax(axis=axis), axis)  # one maximum per slice
        peak = xp.take_along_axis(a, top, axis=axis)
        shifted = a - peak
        e = xp.exp(shifted)
        _put_along_axis(e, top, 0, axis)  # the picked maximum's exp(0) = 1 stays out of r
        rest = e.sum(axis=axis, keepdims=True)
        shifted -= xp.log1p(rest)  # in place: our own temporary is the output
        scale = 1 / (1 + rest)
        e *= scale
        _put_along_axis(e, top, scale, axis)
        infinite = xp.isinf(peak)  # (one value per slice: cheap)
        if infinite.any():  # a slice whose maximum is ±inf is NaN throughout, as PyTorch's (inf - inf)
            shifted, e = xp.where(infinite, xp.nan, shifted), xp.where(infinite, xp.nan, e)
        self.softmax = e
        return shifted

    def backward(self, g):
        grad = self.softmax * -g.sum(axis=self.axis, keepdims=True)
        grad += g
        return grad


def reshape(a: Tensor, shape: Sequence[int]) -> Tensor:
    """``a`` with a new shape of the same size (see :class:`Reshape`).

    Raises:
        OpTypeError: a size that is not an int.
        OpError: a negative size other than one -1; a shape of another size.
    """
    shape = _sizes("reshape", tuple(shape), minus_one=True)
    if shape == a.shape:
        return a
    return Reshape.apply(a, shape=shape)


def permute(a: Tensor, axes: Sequence[int]) -> Tensor:
    """Reorder axes (see :class:`Permute`).

    Raises:
        OpError: not one entry per axis, an axis out of range or repeated.
        OpTypeError: an axis that is not an int.
    """
    axes = tuple(axes)
    if len(axes) != a.ndim:
        raise OpError(f"permute: expected {a.ndim} dims (one per axis of shape {tuple(a.shape)}), got {axes}")
    return Permute.apply(a, axes=_normalize_axes(axes, a.ndim, "permute"))


def transpose(a: Tensor, dim0: int = -2, dim1: int = -1) -> Tensor:
    """Swap two axes (``torch.transpose``; see :class:`Permute`); a tensor with fewer than 2 dims is returned
    as it is.

    Raises:
        OpError: a dim out of range. OpTypeError: a dim that is not an int.
    """
    i, j = _one_dim("transpose", dim0, a.ndim), _one_dim("transpose", dim1, a.ndim)
    if a.ndim < 2 or i == j:
        return a
    axes = list(range(a.ndim))
    axes[i], axes[j] = axes[j], axes[i]
    return Permute.apply(a, axes=tuple(axes))


def expand(a: Tensor, shape: Sequence[int]) -> Tensor:
    """Broadcast ``a`` to ``shape`` (see :class:`Expand`); -1 keeps an existing axis' size.

    Raises:
        OpError: fewer sizes than ``a`` has axes, -1 for a new leading axis, another negative size, or a
            size an axis of length other than 1 cannot broadcast to.
        OpTypeError: a size that is not an int.
    """
    shape = tuple(shape)
    for i, n in enumerate(shape):
        if isinstance(n, (int, np.integer)) and n == -1 and i < len(shape) - a.ndim:
            raise OpError(f"expand: -1 is not allowed for the new leading axis {i} of {shape} "
                          f"(from shape {tuple(a.shape)})")
    given = [n for n in shape]
    for i, n in enumerate(given):
        if isinstance(n, (int, np.integer)) and n == -1:
            given[i] = a.shape[i - (len(shape) - a.ndim)]
    sizes = _sizes("expand", given)
    if len(sizes) < a.ndim:
        raise OpError(f"expand: the target {shape} has fewer axes than the tensor's shape {tuple(a.shape)}")
    return Expand.apply(a, shape=sizes)


def squeeze(a: Tensor, dim: Any = None, *, axis: Any = None) -> Tensor:
    """Remove axes of size 1: all of them (``dim=None``), or those among ``dim`` (an int or a tuple) that
    have size 1 — a listed axis of another size stays, as in PyTorch. ``axis`` is an alias."""
    dim = _dim("squeeze", dim, axis)
    if dim is None:
        return reshape(a, [n for n in a.shape if n != 1])
    axes = _normalize_axes(dim, a.ndim, "squeeze")
    return reshape(a, [n for i, n in enumerate(a.shape) if not (i in axes and n == 1)])


def unsqueeze(a: Tensor, dim: Any = None, *, axis: Any = None) -> Tensor:
    """Insert an axis of size 1 at position ``dim`` (negative counts from the end of the result)."""
    dim = _dim("unsqueeze", dim, axis)
    if dim is None:
        raise OpTypeError("unsqueeze: missing the dim to insert")
    axis = _one_dim("unsqueeze", dim, a.ndim + 1)
    shape = list(a.shape)
    shape.insert(axis, 1)
    return reshape(a, shape)


def flatten(a: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dims ``start_dim..end_dim`` into one (``torch.flatten``); a 0-d tensor becomes (1,)."""
    start, end = _one_dim("flatten", start_dim, a.ndim), _one_dim("flatten", end_dim, a.ndim)
    if a.ndim == 0:
        return reshape(a, (1,))
    if start > end:
        raise OpError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for shape {a.shape}")
    shape = a.shape[:start] + (int(np.prod(a.shape[start:end + 1])),) + a.shape[end + 1:]
    return reshape(a, shape)


class Repeat(Function):
    """``torch.repeat``: ``a`` tiled ``repeats[i]`` times along axis ``i`` (leading repeats add axes).

    Backward: ``g`` reshaped to ``(r0, n0, r1, n1, ...)`` and summed over the repeat axes.
    """

    def forward(self, a, repeats):
        shape = (1,) * (len(repeats) - a.ndim) + a.shape
        self.padded_shape, self.repeats, self.input_shape = shape, repeats, a.shape  # (not .shape: the engine's)
        return get_array_module(a).tile(a.reshape(shape), repeats)

    def backward(self, g):
        split = [n for pair in zip(self.repeats, self.padded_shape, strict=False) for n in pair]
        return g.reshape(split).sum(axis=tuple(range(0, len(split), 2))).reshape(self.input_shape)


def repeat(a: Tensor, *repeats: Any) -> Tensor:
    """Tile ``a`` (see :class:`Repeat`); ``repeats`` has at least ``a.ndim`` entries.

    Raises:
        OpError: fewer repeats than dims, or a negative repeat.
    """
    if len(repeats) == 1 and isinstance(repeats[0], (tuple, list)):
        repeats = tuple(repeats[0])
    repeats = _sizes("repeat", repeats)
    if len(repeats) < a.ndim or any(r < 0 for r in repeats):
        raise OpError(f"repeat: needs at least {a.ndim} non-negative repeats for shape {a.shape}, got {repeats}")
    return Repeat.apply(a, repeats=repeats)


class Clone(Function):
    """A copy in a new (C-contiguous) array. Backward: ``∂a = g``."""

    def forward(self, a):
        return a.copy()

    def backward(self, g):
        return g


def clone(a: Tensor) -> Tensor:
    """A differentiable copy that shares no memory with ``a`` (see :class:`Clone`)."""
    return Clone.apply(a)


class Pad(Function):
    """Constant padding: ``pad`` is ``((before, after), ...)`` per axis. Backward: the middle of ``g``."""

    def forward(self, a, pad, value):
        self.middle = tuple(slice(lo, lo + n) for (lo, _), n in zip(pad, a.shape, strict=False))
        return get_array_module(a).pad(a, pad, mode="constant", constant_values=value)

    def backward(self, g):
        return g[self.middle]


def pad(a: Tensor, pad: Sequence[int], mode: str = "constant", value: float = 0.0) -> Tensor:
    """``torch.nn.functional.pad`` for ``mode='constant'``: ``pad`` lists (before, after) pairs starting at the
    **last** dim, e.g. ``(1, 2)`` pads the last dim with 1 in front and 2 behind (non-negative only).

    Raises:
        OpError: another mode, an odd-length or too long ``pad``, a negative amount.
    """
    if mode != "constant":
        raise OpError(f"pad: only mode='constant' is supported, got {mode!r}")
    pad = list(_sizes("pad", tuple(pad)))
    if len(pad) % 2 or len(pad) // 2 > a.ndim or any(p < 0 for p in pad):
        raise OpError(f"pad: expected an even number of non-negative amounts for at most {a.ndim} dims, got {pad}")
    pairs = [(0, 0)] * a.ndim
    for k in range(len(pad) // 2):
        pairs[a.ndim - 1 - k] = (pad[2 * k], pad[2 * k + 1])
    return Pad.apply(a, pad=tuple(pairs), value=value)


def _index_on_device(array: Any, index: Any) -> Any:
    """An index for ``array``: Tensor indices by value, lists and NumPy index arrays on ``array``'s device."""
    xp = get_array_module(array)

    def on_device(i: Any) -> Any:
        if isinstance(i, Tensor):
            return i.array
        if xp is not np and isinstance(i, np.ndarray):
            return xp.asarray(i)
        return i

    if isinstance(index, tuple):
        return tuple(on_device(i) for i in index)
    if isinstance(index, list):
        return xp.asarray(index)
    return on_device(index)


def getitem(a: Tensor, index: Any) -> Tensor:
    """``a[index]`` (see :class:`GetItem`); Tensor indices are used by value, and lists and NumPy index
    arrays are moved to ``a``'s device. Basic indexing gives a view that shares ``a``'s memory."""
    return GetItem.apply(a, index=_index_on_device(a.array, index))


def _gather_tensors(name: str, tensors: Sequence[Tensor]) -> list[Tensor]:
    tensors = list(tensors)
    if not tensors:
        raise OpError(f"{name}: needs at least one tensor")
    _check_same_device(name, *tensors)
    return tensors


def concat(tensors: Sequence[Tensor], dim: int | None = None, *, axis: int | None = None) -> Tensor:
    """Join along an existing ``dim`` (default 0; ``axis`` is an alias). See :class:`Concat`.

    Raises:
        OpError: no tensors, a 0-d tensor, a dim out of range, tensors on several devices or of shapes that
            differ outside ``dim``.
    """
    tensors = _gather_tensors("cat", tensors)
    for i, t in enumerate(tensors):
        if t.ndim == 0:
            raise OpError(f"cat: a 0-d tensor (at position {i}) cannot be concatenated; use stack")
    axis = _one_dim("cat", _dim("cat", dim, axis, 0), tensors[0].ndim)
    return Concat.apply(*tensors, axis=axis)


cat = concat
concatenate = concat


def stack(tensors: Sequence[Tensor], dim: int | None = None, *, axis: int | None = None) -> Tensor:
    """Join equal-shape tensors along a new ``dim`` (default 0; ``axis`` is an alias). See :class:`Stack`.

    Raises:
        OpError: no tensors, a dim out of range, shapes that differ, tensors on several devices.
    """
    tensors = _gather_tensors("stack", tensors)
    axis = _one_dim("stack", _dim("stack", dim, axis, 0), tensors[0].ndim + 1)
    return Stack.apply(*tensors, axis=axis)


def split(a: Tensor, split_size_or_sections: Any, dim: int | None = None, *, axis: int | None = None
          ) -> tuple[Tensor, ...]:
    """PyTorch's ``split`` along ``dim`` (default 0): pieces of ``split_size`` (the last may be smaller), or
    of the listed sizes.

    Raises:
        OpError: a 0-d tensor; a split size that is not positive; listed sizes that are negative or do not add
            up to the axis length.
        OpTypeError: sizes that are not ints.
    """
    if a.ndim == 0:
        raise OpError("split: a 0-d tensor cannot be split")
    axis = _one_dim("split", _dim("split", dim, axis, 0), a.ndim)
    n = a.shape[axis]
    if not isinstance(split_size_or_sections, (tuple, list)):
        size = _sizes("split", (split_size_or_sections,))[0]
        if size <= 0 and n > 0:
            raise OpError(f"split: split_size must be positive, got {size}")
        sizes = [size] * (n // size) + ([n % size] if n % size else []) if size else [0]
    else:
        sizes = list(_sizes("split", tuple(split_size_or_sections)))
        total = int(np.sum(np.asarray(sizes, dtype=np.int64)))
        if total != n:
            raise OpError(f"split: sizes {sizes} sum to {total}, but axis {axis} of {a.shape} has {n}")
    bounds = list(itertools.accumulate(sizes[:-1]))
    return Split.apply(a, bounds=bounds, axis=axis)


def chunk(a: Tensor, chunks: int, dim: int | None = None, *, axis: int | None = None) -> tuple[Tensor, ...]:
    """PyTorch's ``chunk`` along ``dim`` (default 0): pieces of size ``ceil(n / chunks)`` (the last may be
    smaller).

    Raises:
        OpError: ``chunks`` not positive, a 0-d tensor, a dim out of range. OpTypeError: ``chunks`` not an int.
    """
    chunks = _sizes("chunk", (chunks,))[0]
    if chunks <= 0:
        raise OpError(f"chunk: chunks must be positive, got {chunks}")
    if a.ndim == 0:
        raise OpError("chunk: a 0-d tensor cannot be chunked")
    dim = _dim("chunk", dim, axis, 0)
    n = a.shape[_one_dim("chunk", dim, a.ndim)]
    return split(a, -(-n // chunks) or 1, dim)


def unbind(a: Tensor, dim: int | None = None, *, axis: int | None = None) -> tuple[Tensor, ...]:
    """The slices along ``dim`` (default 0), that axis removed (see :class:`Unbind`)."""
    if a.ndim == 0:
        raise OpError("unbind: a 0-d tensor has no dim to unbind")
    return Unbind.apply(a, axis=_one_dim("unbind", _dim("unbind", dim, axis, 0), a.ndim))


def where(condition: Any, a: Any, b: Any) -> Tensor:
    """``a`` where ``condition`` else ``b`` (see :class:`Where`); ``a``/``b`` may be numbers, ``condition`` a
    boolean Tensor, array or list (moved to the tensors' device)."""
    if isinstance(condition, Tensor):
        condition = condition.array
    a, b = _pair(a, b, "where")
    _check_same_device("where", a, b)
    condition = get_array_module(a.array).asarray(condition)
    if condition.dtype != bool:
        raise OpError(f"where: the condition must be a bool tensor, got dtype {condition.dtype} (as PyTorch; "
                      "compare first, e.g. mask != 0)")
    return Where.apply(a, b, condition=condition)


def embedding(indices: Any, weight: Tensor) -> Tensor:
    """Rows of ``weight`` (V, D) picked by integer ``indices`` (any shape) -> (..., D). See :class:`Embedding`."""
    data = indices.array if isinstance(indices, Tensor) else get_array_module(weight.array).asarray(indices)
    if data.dtype.kind not in "iu":
        raise OpError(f"embedding: indices must be integers, got dtype {data.dtype}")
    return Embedding.apply(weight, indices=data)


def log_softmax(a: Tensor, dim: int | None = None, *, axis: int | None = None, dtype: Any = None) -> Tensor:
    """Stable log-softmax along ``dim`` (default -1; ``axis`` is an alias), see :class:`LogSoftmax`;
    ``dtype`` casts the input first, as in PyTorch."""
    if dtype is not None:
        a = cast(a, dtype)
    _need_floating("log_softmax/softmax", a)
    return LogSoftmax.apply(a, axis=_one_dim("log_softmax", _dim("log_softmax", dim, axis, -1), a.ndim))


def softmax(a: Tensor, dim: int | None = None, *, axis: int | None = None, dtype: Any = None) -> Tensor:
    """``exp(log_softmax(a))`` along ``dim`` (default -1; ``axis`` is an alias): stable for any logits."""
    return exp(log_softmax(a, dim, axis=axis, dtype=dtype))


# --------------------------------------------------------------------------------------------------
# Ops whose forward reads data-dependent values (targets) or draws random numbers: these stay inside one
# Function so that tinygrad_rnn.capture can replay them on new data (see capture.py).
# --------------------------------------------------------------------------------------------------


class NLLLoss(Function):
    """Negative log-likelihood of integer targets: log_probs (N, C), int target (N,) -> 0-d, or (N,) for 'none'.

    With ``valid_n = target_n != ignore_index`` and ``p_n = log_probs[n, target_n]`` (0 where not valid):
    ``'none'``: ``-p`` (N,); ``'sum'``: ``-Σ p``; ``'mean'``: ``-Σ p / count(valid)`` (NaN when no target is
    valid, as PyTorch). Backward: ``∂log_probs[n, target_n] = -g_n`` ('none'), ``-g`` ('sum'),
    ``-(g / count)`` ('mean'), at valid n only; 0 elsewhere.

    Raises:
        OpError: a target outside ``[0, C)`` that is not ``ignore_index``.
    """

    name = "cross_entropy/nll_loss"

    def forward(self, log_probs, target, reduction, ignore_index):
        xp = get_array_module(log_probs)
        n, c = log_probs.shape
        valid = target != ignore_index
        safe = xp.where(valid, target, 0)
        if safe.size and (int(safe.min()) < 0 or int(safe.max()) >= c):
            raise IndexError(f"target values must lie in [0, {c}) or equal ignore_index ({ignore_index}), "
                             f"got values in [{int(target.min())}, {int(target.max())}]")
        self.rows, self.safe, self.input_shape, self.reduction = xp.arange(n), safe, log_probs.shape, reduction
        self.valid = None if bool(valid.all()) else valid.astype(log_probs.dtype)
        picked = log_probs[self.rows, safe]
        if self.valid is not None:
            picked = picked * self.valid
        if reduction == "none":
            return -picked
        total = -picked.sum()
        if reduction == "sum":
            return total
        self.count = log_probs.dtype.type(int(valid.sum()))
        with np.errstate(divide="ignore", invalid="ignore"):
            return total / self.count

    def backward(self, g):
        xp = get_array_module(g)
        if self.reduction == "mean":
            with np.errstate(divide="ignore", invalid="ignore"):
                coef = -(g / self.count)
        else:
            coef = -g
        if self.valid is not None:
            coef = coef * self.valid
        grad = xp.zeros(self.input_shape, dtype=g.dtype)
        grad[self.rows, self.safe] = coef
        return grad, None


class Dropout(Function):
    """Inverted dropout: ``out = a · keep / (1 - p)`` with ``keep = U[0, 1) >= p`` drawn in the forward from
    the device's generator (:func:`~tinygrad_rnn.tensor.default_rng`). Backward: ``∂a = g · keep / (1 - p)``."""

    def forward(self, a, p):
        from tinygrad_rnn.backend import device_of
        from tinygrad_rnn.tensor import default_rng

        keep = default_rng(device_of(a)).random(a.shape, dtype=np.float32) >= p
        self.scale = keep.astype(a.dtype) * a.dtype.type(1 / (1 - p))
        return a * self.scale

    def backward(self, g):
        return g * self.scale


class LengthMask(Function):
    """The (T, B, 1) boolean mask ``t < lengths[b]`` of the real steps of B sequences (no gradient).

    ``lengths`` (B,) integers in 1..``steps``, on any device; the mask is made on ``device``. A recurrent layer
    uses it for ``lengths=``; being an op, a captured step (tinygrad_rnn.capture) recomputes it from new
    lengths at every replay.

    Raises:
        OpError: a length outside 1..steps.
    """

    def forward(self, lengths, steps, device):
        from tinygrad_rnn.backend import to_numpy

        values = to_numpy(lengths)
        if values.size and (int(values.min()) < 1 or int(values.max()) > steps):
            raise ValueError(f"every length must lie in 1..T = 1..{steps}, got {values.tolist()}")
        mask = np.arange(steps)[:, None, None] < values[None, :, None]
        return to_device(mask, device)

    def backward(self, g):  # pragma: no cover - integer input, never on a tape
        return None
