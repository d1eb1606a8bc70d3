"""Every differentiable op, every edge: one hypothesis test factory over a table of op specs.

Each entry of :data:`SPECS` is a hypothesis strategy that draws one *case*: the op applied to freshly drawn
inputs (dtypes float32/float64 drawn per input, shapes drawn small, mutually broadcastable shapes for the
broadcasting ops, values kept away from the op's singularities and kinks) plus which inputs require a
gradient. :func:`test_op_backward` then draws an upstream gradient and checks, for every case:

* the tape's gradient of every input against float64 central differences (computed on the CPU, so a GPU
  run is also checked against NumPy);
* the gradient's shape, dtype and device equal the input's (also for float32 inputs; also when a float32
  input meets a float64 one), and inputs that do not require a gradient get none;
* the output dtype follows NumPy 2 promotion (NEP 50);
* no gradient shares memory with another gradient, with the upstream gradient or with an input;
* neither the inputs nor the upstream gradient were mutated;
* every Function of the graph was released (``parents is None``, no saved arrays left).

Examples per op: the hypothesis profile's ``max_examples`` (``ci``: 25, derandomized; ``dev``: 100).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import tinygrad_rnn as tg
from tinygrad_rnn import functional as F
from tinygrad_rnn import numerics
from tinygrad_rnn.backend import get_array_module, to_device, to_numpy
from tinygrad_rnn.tensor import Function, Tensor

# --------------------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------------------

DTYPES = st.sampled_from([np.float32, np.float64])
SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3)  # zero-size arrays included
NONEMPTY = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3)
BROADCAST2 = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=0, max_side=3)
MATMUL = hnp.mutually_broadcastable_shapes(signature=np.matmul.signature, max_dims=1, max_side=3)
ONE_OR_BOTH = st.sampled_from([(True, True), (True, False), (False, True)])


def floats(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def away_from_zero(lo: float, hi: float) -> st.SearchStrategy[float]:
    """Floats with ``lo <= |x| <= hi`` (keeps divisions, kinks and logs well conditioned)."""
    return floats(lo, hi) | floats(-hi, -lo)


VALUES = floats(-3, 3)


def draw_array(draw: Any, shape: tuple[int, ...], elements: st.SearchStrategy[float], dtype: Any = None) -> np.ndarray:
    dtype = draw(DTYPES) if dtype is None else dtype
    return draw(hnp.arrays(np.float64, shape, elements=elements)).astype(dtype)


def draw_flags(draw: Any, n: int) -> tuple[bool, ...]:
    """Which of ``n`` inputs require a gradient (at least one)."""
    flags = draw(st.lists(st.booleans(), min_size=n, max_size=n).filter(any))
    return tuple(flags)


@st.composite
def axes_for(draw: Any, ndim: int) -> Any:
    """An ``axis`` argument for a reduction: None, an int (negative allowed) or a tuple of distinct axes."""
    if ndim == 0:
        return draw(st.sampled_from([None, ()]))
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none":
        return None
    if kind == "int":
        return draw(st.integers(-ndim, ndim - 1))
    axes = draw(st.lists(st.integers(0, ndim - 1), unique=True, max_size=ndim))
    return tuple(a - ndim if draw(st.booleans()) else a for a in axes)


def on_device_of(value: Any, t: Tensor) -> Any:
    """A NumPy constant moved next to ``t`` (a no-op on the CPU)."""
    return to_device(value, t.device) if isinstance(value, np.ndarray) else value


# --------------------------------------------------------------------------------------------------
# The table of op specs
# --------------------------------------------------------------------------------------------------


@dataclass
class Case:
    """One drawn application of an op."""

    fn: Callable[..., Any]  # Tensors -> Tensor, or a tuple of Tensors for a multi-output op
    arrays: list[np.ndarray]  # the inputs' values
    grad: tuple[bool, ...]  # which inputs require a gradient
    out_dtype: Any = None  # the output dtype NumPy 2 promotion gives (checked when set)
    reference: Callable[..., Any] | None = None  # the same function for the finite differences, if fn rounds


SPECS: dict[str, Callable[[], st.SearchStrategy[Case]]] = {}


def spec(name: str) -> Callable[[Callable[..., Case]], Callable[..., Case]]:
    def register(draw_case: Callable[..., Case]) -> Callable[..., Case]:
        assert name not in SPECS, name
        SPECS[name] = st.composite(draw_case)
        return draw_case

    return register


# ---- arithmetic between tensors (broadcasting, float32/float64 mixed) ----


def binary_spec(name: str, op: Callable[[Any, Any], Any], a_values: Any, b_values: Any,
                shapes: Any = BROADCAST2) -> None:
    @spec(name)
    def draw_case(draw: Any) -> Case:
        shape_a, shape_b = draw(shapes).input_shapes
        a, b = draw_array(draw, shape_a, a_values), draw_array(draw, shape_b, b_values)
        return Case(op, [a, b], draw(ONE_OR_BOTH), np.result_type(a.dtype, b.dtype))


binary_spec("add", operator.add, VALUES, VALUES)
binary_spec("sub", operator.sub, VALUES, VALUES)
binary_spec("mul", operator.mul, VALUES, VALUES)
binary_spec("div", operator.truediv, VALUES, away_from_zero(0.5, 2))
binary_spec("pow", operator.pow, floats(0.5, 2), floats(-2, 2))
binary_spec("matmul", operator.matmul, VALUES, VALUES, MATMUL)
# a batched operand against a shared (1-D or 2-D) one: its gradient is reduced inside the product
binary_spec("matmul_batched", operator.matmul, VALUES, VALUES,
            hnp.mutually_broadcastable_shapes(signature=np.matmul.signature, max_dims=3, max_side=3))


@spec("addmm")
def _addmm(draw: Any) -> Case:
    """``c + a @ b`` with c of any shape that broadcasts to (n, m), mixed float32/float64."""
    n, k, m = (draw(st.integers(0, 3)) for _ in range(3))
    shape_c = draw(st.sampled_from([(), (m,), (1, m), (n, 1), (n, m)]))
    c, a, b = (draw_array(draw, shape, VALUES) for shape in (shape_c, (n, k), (k, m)))
    return Case(tg.addmm, [c, a, b], draw_flags(draw, 3), np.result_type(c.dtype, a.dtype, b.dtype))


# ---- a Python scalar or a NumPy array on either side ----

SCALAR_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "t+c": lambda t, c: t + c, "c+t": lambda t, c: c + t,
    "t-c": lambda t, c: t - c, "c-t": lambda t, c: c - t,
    "t*c": lambda t, c: t * c, "c*t": lambda t, c: c * t,
    "t/c": lambda t, c: t / c, "c/t": lambda t, c: c / t,
    "c**t": lambda t, c: c**t,
}


@spec("scalar_operand")
def _scalar_operand(draw: Any) -> Case:
    """``t op c`` and ``c op t`` for a Python int/float or a NumPy scalar ``c`` (reflected operators)."""
    name = draw(st.sampled_from(sorted(SCALAR_OPS)))
    kind = draw(st.sampled_from([int, float, np.float32, np.float64]))
    if name == "c**t":
        c = kind(draw(st.sampled_from([0.5, 1, 2, 3])) if kind is not int else draw(st.integers(1, 3)))
    elif name == "t/c":
        c = kind(draw(st.sampled_from([-2, -1, 1, 2, 4])) if kind is int else draw(away_from_zero(0.5, 3)))
    else:
        c = kind(draw(st.integers(-3, 3)) if kind is int else draw(floats(-3, 3)))
    values = away_from_zero(0.5, 2) if name == "c/t" else VALUES
    a = draw_array(draw, draw(SHAPES), values)
    op = SCALAR_OPS[name]
    # NEP 50: a Python scalar is "weak" and takes the tensor's dtype; a NumPy scalar promotes like an array
    expected = a.dtype if kind in (int, float) else np.promote_types(a.dtype, np.dtype(kind))
    return Case(lambda t: op(t, c), [a], (True,), expected)


@spec("array_operand")
def _array_operand(draw: Any) -> Case:
    """``t op arr`` and ``arr op t`` for a NumPy (CuPy on a GPU) constant ``arr`` (reflected operators)."""
    name = draw(st.sampled_from(sorted(SCALAR_OPS) + ["t@c", "c@t"]))
    if name in ("t@c", "c@t"):
        shape_c, shape_t = draw(MATMUL).input_shapes
        if name == "t@c":
            shape_c, shape_t = shape_t, shape_c
    else:
        shape_c, shape_t = draw(BROADCAST2).input_shapes
    c = draw_array(draw, shape_c, floats(0.5, 3) if name in ("t/c", "c**t") else VALUES)
    a = draw_array(draw, shape_t, away_from_zero(0.5, 2) if name == "c/t" else VALUES)
    ops = {**SCALAR_OPS, "t@c": lambda t, c: t @ c, "c@t": lambda t, c: c @ t}
    op = ops[name]
    return Case(lambda t: op(t, on_device_of(c, t)), [a], (True,), np.result_type(a.dtype, c.dtype))


# ---- elementwise functions ----


def unary_spec(name: str, op: Callable[[Any], Any], values: Any, shapes: Any = SHAPES) -> None:
    @spec(name)
    def draw_case(draw: Any) -> Case:
        a = draw_array(draw, draw(shapes), values)
        return Case(op, [a], (True,), a.dtype)


unary_spec("neg", operator.neg, VALUES)
unary_spec("exp", tg.exp, VALUES)
unary_spec("log", lambda t: t.log(), floats(0.1, 3))
unary_spec("sqrt", tg.sqrt, floats(0.1, 3))
unary_spec("tanh", lambda t: t.tanh(), floats(-4, 4))
unary_spec("sigmoid", tg.sigmoid, floats(-6, 6))
unary_spec("relu", lambda t: t.relu(), away_from_zero(0.01, 3))  # away from the kink at 0
unary_spec("abs", abs, away_from_zero(0.01, 3))
unary_spec("erf", tg.erf, floats(-3, 3))
unary_spec("log1p", lambda t: t.log1p(), floats(-0.9, 3))
unary_spec("nan_to_num", lambda t: t.nan_to_num(), VALUES)  # finite values: the identity and its gradient


@spec("clip")
def _clip(draw: Any) -> Case:
    low = draw(st.none() | floats(-1, 0))
    high = draw(floats(0.1, 1) if low is None else st.none() | floats(0.1, 1))
    bounds = [b for b in (low, high) if b is not None]
    values = floats(-2, 2).filter(lambda x: all(abs(x - b) > 0.01 for b in bounds))  # away from the kinks
    a = draw_array(draw, draw(SHAPES), values)
    return Case(lambda t: t.clip(low, high), [a], (True,), a.dtype)



@spec("pow_scalar")
def _pow_scalar(draw: Any) -> Case:
    """``t ** p`` for a Python number p; a negative base only with an integer exponent."""
    p = draw(st.sampled_from([0, 1, 2, 3, -1, -2, 2.0, 3.0, 0.5, -0.5, 1.5]))
    integral = float(p).is_integer()
    a = draw_array(draw, draw(SHAPES), away_from_zero(0.3, 2) if integral else floats(0.3, 2))
    return Case(lambda t: t**p, [a], (True,), a.dtype)


@spec("cast")
def _cast(draw: Any) -> Case:
    a = draw_array(draw, draw(SHAPES), VALUES)
    to = np.float64 if a.dtype == np.float32 else np.float32
    how = draw(st.sampled_from(["astype", "method"]))

    def identity(t: Tensor) -> Tensor:  # the reference: a float32 cast would round the differences away
        return t

    if how == "astype":
        return Case(lambda t: t.astype(to), [a], (True,), to, identity)
    return Case(lambda t: t.double() if to == np.float64 else t.float(), [a], (True,), to, identity)


# ---- reductions ----


def reduction_spec(name: str, method: str, shapes: Any, values: Callable[[Any, tuple[int, ...]], np.ndarray]) -> None:
    @spec(name)
    def draw_case(draw: Any) -> Case:
        shape = draw(shapes)
        a = values(draw, shape)
        axis, keepdims = draw(axes_for(len(shape))), draw(st.booleans())
        return Case(lambda t: getattr(t, method)(axis=axis, keepdims=keepdims), [a], (True,), a.dtype)


def _distinct(draw: Any, shape: tuple[int, ...]) -> np.ndarray:
    """Values on a 0.05 grid, all different: no ties, so max/min are differentiable there."""
    grid = draw(hnp.arrays(np.int64, shape, elements=st.integers(-60, 60), unique=True))
    return (grid * 0.05).astype(draw(DTYPES))


reduction_spec("sum", "sum", SHAPES, lambda draw, shape: draw_array(draw, shape, VALUES))
reduction_spec("mean", "mean", NONEMPTY, lambda draw, shape: draw_array(draw, shape, VALUES))
reduction_spec("amax", "amax", NONEMPTY, _distinct)
reduction_spec("amin", "amin", NONEMPTY, _distinct)


@spec("max_min_dim")
def _max_min_dim(draw: Any) -> Case:
    """PyTorch's ``max(dim)``/``min(dim)`` values (the gradient goes to the picked element), ``max()``/``min()``,
    and ``topk``/``sort`` values; ``dim=``/``axis=``, ``keepdim=``/``keepdims=`` spellings."""
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3))
    a = _distinct(draw, shape)
    d = draw(st.integers(-len(shape), len(shape) - 1))
    keep = draw(st.booleans())
    kind = draw(st.sampled_from(["max", "min", "max_axis", "all", "topk", "sort"]))
    if kind == "max":
        return Case(lambda t: t.max(d, keep).values, [a], (True,), a.dtype)
    if kind == "min":
        return Case(lambda t: tg.min(t, dim=d, keepdim=keep)[0], [a], (True,), a.dtype)
    if kind == "max_axis":
        return Case(lambda t: t.max(axis=d, keepdims=keep).values, [a], (True,), a.dtype)
    if kind == "all":
        return Case(lambda t: t.max() - t.min(), [a], (True,), a.dtype)
    if kind == "topk":
        k = draw(st.integers(0, shape[d]))
        largest = draw(st.booleans())
        return Case(lambda t: t.topk(k, dim=d, largest=largest).values, [a], (True,), a.dtype)
    return Case(lambda t: t.sort(dim=d, descending=keep)[0], [a], (True,), a.dtype)


@spec("log_softmax")
def _log_softmax(draw: Any) -> Case:
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=3))
    a = draw_array(draw, shape, floats(-5, 5))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    how = draw(st.sampled_from(["log_softmax", "softmax"]))
    if how == "softmax":
        return Case(lambda t: F.softmax(t, axis), [a], (True,), a.dtype)
    return Case(lambda t: t.log_softmax(axis), [a], (True,), a.dtype)


@spec("cross_entropy")
def _cross_entropy(draw: Any) -> Case:
    n, c = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    logits = draw_array(draw, (n, c), floats(-5, 5))
    target = np.array(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)), dtype=np.int64)
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    ignore_index = draw(st.sampled_from([-100, 0]))
    ignored = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    if reduction == "mean":
        ignored[0] = False  # at least one counted target (all ignored gives NaN, as in PyTorch)
    target = np.where(ignored, ignore_index, target)
    if ignore_index == 0 and reduction == "mean" and not (target != 0).any():
        ignore_index = -100
    return Case(lambda t: F.cross_entropy(t, on_device_of(target, t), reduction=reduction, ignore_index=ignore_index),
                [logits], (True,), logits.dtype)


@spec("mse_loss")
def _mse_loss(draw: Any) -> Case:
    shape = draw(NONEMPTY)
    a, b = draw_array(draw, shape, VALUES), draw_array(draw, shape, VALUES)
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    return Case(lambda x, y: F.mse_loss(x, y, reduction=reduction), [a, b], draw(ONE_OR_BOTH), np.result_type(a, b))


@spec("linear")
def _linear(draw: Any) -> Case:
    lead = draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=3))
    n_in, n_out = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dtype = draw(DTYPES)
    x = draw_array(draw, (*lead, n_in), VALUES, dtype)
    w = draw_array(draw, (n_out, n_in), VALUES, dtype)
    b = draw_array(draw, (n_out,), VALUES, dtype)
    return Case(F.linear, [x, w, b], draw_flags(draw, 3), dtype)


# ---- shape ops ----


@spec("reshape")
def _reshape(draw: Any) -> Case:
    shape = draw(NONEMPTY)
    n = int(np.prod(shape))
    d = draw(st.sampled_from([k for k in range(1, n + 1) if n % k == 0]))
    new = draw(st.sampled_from([(n,), (-1,), (1, n), (n, 1), tuple(reversed(shape)), (d, -1), (-1, d, 1), shape]))
    a = draw_array(draw, shape, VALUES)
    if draw(st.booleans()):
        return Case(lambda t: t.reshape(new), [a], (True,), a.dtype)
    return Case(lambda t: t.reshape(*new), [a], (True,), a.dtype)


@spec("permute")
def _permute(draw: Any) -> Case:
    shape = draw(SHAPES)
    axes = tuple(a - len(shape) if draw(st.booleans()) else a for a in draw(st.permutations(range(len(shape)))))
    a = draw_array(draw, shape, VALUES)
    how = draw(st.sampled_from(["permute", "T", "transpose"]))
    if how == "T":
        return Case(lambda t: t.T, [a], (True,), a.dtype)
    if how == "transpose" and len(shape) >= 2:
        i, j = draw(st.integers(-len(shape), len(shape) - 1)), draw(st.integers(-len(shape), len(shape) - 1))
        return Case(lambda t: t.transpose(i, j), [a], (True,), a.dtype)
    return Case(lambda t: t.permute(*axes), [a], (True,), a.dtype)


@spec("expand")
def _expand(draw: Any) -> Case:
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=2))
    target = [draw(st.integers(0, 3)) if n == 1 else n for n in shape]
    target = [-1 if draw(st.booleans()) and n == m else m for n, m in zip(shape, target, strict=False)]
    target = draw(st.lists(st.integers(1, 3), max_size=2)) + target  # new leading axes
    a = draw_array(draw, shape, VALUES)
    how = draw(st.sampled_from(["expand", "broadcast_to"]))
    if how == "broadcast_to":
        full = [m if m != -1 else shape[i - (len(target) - len(shape))] for i, m in enumerate(target)]
        return Case(lambda t: t.broadcast_to(full), [a], (True,), a.dtype)
    return Case(lambda t: t.expand(*target), [a], (True,), a.dtype)


@spec("squeeze_unsqueeze")
def _squeeze(draw: Any) -> Case:
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=2))
    a = draw_array(draw, shape, VALUES)
    ndim = len(shape)
    if draw(st.booleans()):
        axis = draw(st.integers(-ndim - 1, ndim))
        return Case(lambda t: t.unsqueeze(axis), [a], (True,), a.dtype)
    ones = [i for i, n in enumerate(shape) if n == 1]
    axis = draw(st.none() | st.lists(st.sampled_from(ones), unique=True).map(tuple) if ones else st.none())
    return Case(lambda t: t.squeeze(axis), [a], (True,), a.dtype)


@spec("getitem_basic")
def _getitem_basic(draw: Any) -> Case:
    shape = draw(NONEMPTY)
    index = draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    a = draw_array(draw, shape, VALUES)
    return Case(lambda t: t[index], [a], (True,), a.dtype)


@spec("getitem_advanced")
def _getitem_advanced(draw: Any) -> Case:
    """Integer arrays (repeated indices scatter-add), Python lists, boolean masks, mixed with slices."""
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3))
    a = draw_array(draw, shape, VALUES)
    kind = draw(st.sampled_from(["arrays", "one_axis", "list", "mask"]))
    if kind == "arrays":
        index = draw(hnp.integer_array_indices(
            shape, result_shape=hnp.array_shapes(min_dims=1, max_dims=2, max_side=4)))
    elif kind == "one_axis":
        axis = draw(st.integers(0, len(shape) - 1))
        idx = draw(hnp.arrays(np.int64, draw(hnp.array_shapes(min_dims=1, max_dims=2, max_side=4)),
                              elements=st.integers(-shape[axis], shape[axis] - 1)))
        index = (slice(None),) * axis + (idx,)
    elif kind == "list":
        index = draw(st.lists(st.integers(-shape[0], shape[0] - 1), min_size=1, max_size=5))
    else:
        prefix = draw(st.integers(1, len(shape)))
        index = draw(hnp.arrays(np.bool_, shape[:prefix]))

    def fn(t: Tensor) -> Tensor:
        if isinstance(index, tuple):
            return t[tuple(on_device_of(i, t) for i in index)]
        return t[on_device_of(index, t)]

    return Case(fn, [a], (True,), a.dtype)


@spec("concat")
def _concat(draw: Any) -> Case:
    base = list(draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3)))
    axis = draw(st.integers(-len(base), len(base) - 1))
    k = draw(st.integers(1, 3))
    arrays = []
    for _ in range(k):
        base[axis] = draw(st.integers(0, 3))
        arrays.append(draw_array(draw, tuple(base), VALUES))
    how = draw(st.sampled_from([tg.concat, tg.cat]))
    return Case(lambda *ts: how(list(ts), axis=axis), arrays, draw_flags(draw, k), np.result_type(*arrays))


@spec("stack")
def _stack(draw: Any) -> Case:
    shape = draw(SHAPES)
    axis = draw(st.integers(-len(shape) - 1, len(shape)))
    k = draw(st.integers(1, 3))
    arrays = [draw_array(draw, shape, VALUES) for _ in range(k)]
    return Case(lambda *ts: tg.stack(ts, axis=axis), arrays, draw_flags(draw, k), np.result_type(*arrays))


def _pick(draw: Any, n_outputs: int) -> list[int]:
    """Which outputs of a multi-output op the loss uses (the others get no gradient)."""
    return draw(st.lists(st.integers(0, n_outputs - 1), min_size=1, max_size=n_outputs, unique=True))


@spec("split_chunk_unbind")
def _split(draw: Any) -> Case:
    shape = list(draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    n = shape[axis]
    a = draw_array(draw, tuple(shape), VALUES)
    kind = draw(st.sampled_from(["split_size", "split_sizes", "chunk", "unbind"]))
    if kind == "split_size":
        size = draw(st.integers(1, n + 1))
        count, op = -(-n // size), lambda t: t.split(size, axis)
    elif kind == "split_sizes":
        cuts = sorted(draw(st.lists(st.integers(0, n), max_size=3)))
        sizes = list(np.diff([0, *cuts, n]))
        count, op = len(sizes), lambda t: t.split(sizes, axis)
    elif kind == "chunk":
        chunks = draw(st.integers(1, 5))
        count, op = len(range(0, n, -(-n // chunks))), lambda t: t.chunk(chunks, axis)
    else:
        count, op = n, lambda t: t.unbind(axis)
    used = _pick(draw, count)

    def fn(t: Tensor) -> tuple[Tensor, ...]:
        outs = op(t)
        assert len(outs) == count, (kind, len(outs), count)
        return tuple(outs[i] for i in used)

    return Case(fn, [a], (True,), a.dtype)


@spec("maximum_minimum")
def _maximum(draw: Any) -> Case:
    """Elementwise ``maximum``/``minimum`` (also spelled ``max(other)``); values apart, so no ties."""
    shape_a, shape_b = draw(BROADCAST2).input_shapes
    a = draw_array(draw, shape_a, floats(-3, 3))
    b = draw_array(draw, shape_b, floats(-3, 3).filter(lambda v: np.all(np.abs(a - v) > 0.01) if a.size else True))
    how = draw(st.sampled_from(["maximum", "minimum", "max_other"]))
    ops = {"maximum": tg.maximum, "minimum": tg.minimum, "max_other": lambda x, y: x.max(y)}
    return Case(ops[how], [a, b], draw(ONE_OR_BOTH), np.result_type(a.dtype, b.dtype))


@spec("gather_repeat_pad_clone")
def _gather_repeat(draw: Any) -> Case:
    """``gather`` (repeated indices add up), ``repeat``, constant ``F.pad``, ``clone``, ``var``."""
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3))
    a = draw_array(draw, shape, VALUES)
    kind = draw(st.sampled_from(["gather", "repeat", "pad", "clone", "var"]))
    if kind == "gather":
        d = draw(st.integers(0, len(shape) - 1))
        ishape = tuple(draw(st.integers(1, 4)) if i == d else draw(st.integers(1, n)) for i, n in enumerate(shape))
        index = draw(hnp.arrays(np.int64, ishape, elements=st.integers(0, shape[d] - 1)))
        return Case(lambda t: t.gather(d, on_device_of(index, t)), [a], (True,), a.dtype)
    if kind == "repeat":
        reps = [draw(st.integers(0, 2)) for _ in range(len(shape) + draw(st.integers(0, 1)))]
        return Case(lambda t: t.repeat(*reps), [a], (True,), a.dtype)
    if kind == "pad":
        amounts = draw(st.lists(st.integers(0, 2), min_size=0, max_size=2 * len(shape))
                       .filter(lambda p: len(p) % 2 == 0))
        return Case(lambda t: F.pad(t, amounts, value=0.5), [a], (True,), a.dtype)
    if kind == "clone":
        return Case(lambda t: t.clone() * t.T.contiguous().T, [a], (True,), a.dtype)
    d = draw(st.integers(-len(shape), len(shape) - 1))
    unbiased = draw(st.booleans()) and shape[d] > 1  # (std is checked against PyTorch in test_dialect.py)
    return Case(lambda t: t.var(dim=d, unbiased=unbiased, keepdim=unbiased), [a], (True,), a.dtype)


@spec("where")
def _where(draw: Any) -> Case:
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3, min_side=0, max_side=3))
    cond = draw(hnp.arrays(np.bool_, shapes.input_shapes[0]))
    a = draw_array(draw, shapes.input_shapes[1], VALUES)
    b = draw_array(draw, shapes.input_shapes[2], VALUES)
    kind = draw(st.sampled_from(["tensors", "scalar_a", "scalar_b"]))
    if kind == "scalar_a":
        return Case(lambda t: tg.where(on_device_of(cond, t), 0.5, t), [b], (True,), b.dtype)
    if kind == "scalar_b":
        return Case(lambda t: tg.where(on_device_of(cond, t), t, -1), [a], (True,), a.dtype)
    return Case(lambda x, y: tg.where(on_device_of(cond, x), x, y), [a, b], draw(ONE_OR_BOTH), np.result_type(a, b))


@spec("embedding")
def _embedding(draw: Any) -> Case:
    vocab, dim = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    weight = draw_array(draw, (vocab, dim), VALUES)
    indices = draw(hnp.arrays(np.int64, draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=4)),
                              elements=st.integers(0, vocab - 1)))  # repeated ids scatter-add
    how = draw(st.sampled_from([tg.embedding, F.embedding]))
    return Case(lambda w: how(on_device_of(indices, w), w), [weight], (True,), weight.dtype)


# --------------------------------------------------------------------------------------------------
# The one test
# --------------------------------------------------------------------------------------------------


def graph_functions(outputs: tuple[Tensor, ...]) -> list[Function]:
    """Every Function reachable from ``outputs`` (iteratively)."""
    found: dict[int, Function] = {}
    stack = [o._ctx for o in outputs if o._ctx is not None]
    while stack:
        fn = stack.pop()
        if id(fn) in found:
            continue
        found[id(fn)] = fn
        stack.extend(p._ctx for p in fn.parents if p._ctx is not None)
    return list(found.values())


def central_differences(case: Case, upstream: list[np.ndarray], eps: float = 1e-6) -> list[np.ndarray | None]:
    """∂(Σ_k Σ out_k ⊙ upstream_k)/∂input by float64 central differences on the CPU."""
    inputs = [Tensor(a.astype(np.float64)) for a in case.arrays]
    fn = case.reference or case.fn

    def loss() -> float:
        outs = fn(*inputs)
        outs = outs if isinstance(outs, tuple) else (outs,)
        return float(sum(np.sum(o.numpy().astype(np.float64) * v) for o, v in zip(outs, upstream, strict=False)))

    with tg.no_grad():
        wanted_arrays = [t.array for t, g in zip(inputs, case.grad, strict=False) if g]
        grads = iter(numerics.central_differences(loss, wanted_arrays, eps))
    return [next(grads) if wanted else None for wanted in case.grad]


@pytest.mark.parametrize("name", sorted(SPECS))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(data=st.data())
def test_op_backward(name: str, device: str, data: st.DataObject) -> None:
    case = data.draw(SPECS[name](), label="case")
    tensors = [Tensor(a, requires_grad=g, device=device) for a, g in zip(case.arrays, case.grad, strict=False)]
    outs = case.fn(*tensors)
    outs = outs if isinstance(outs, tuple) else (outs,)
    if case.out_dtype is not None:
        for o in outs:
            assert o.dtype == case.out_dtype, (
                f"{name}: output dtype {o.dtype}, NumPy 2 promotion gives {case.out_dtype}")
    for o in outs:
        assert o.device == tensors[0].device
    upstream = [data.draw(hnp.arrays(np.float64, o.shape, elements=floats(-2, 2)), label="upstream").astype(o.dtype)
                for o in outs]
    upstream_dev = [to_device(v.copy(), tensors[0].device) for v in upstream]
    graph = graph_functions(outs)

    if len(outs) == 1:
        outs[0].backward(upstream_dev[0])
    else:
        loss = None
        for o, v in zip(outs, upstream_dev, strict=False):
            term = (o * v).sum()
            loss = term if loss is None else loss + term
        loss.backward()

    # inputs and the upstream gradient untouched
    for t, a in zip(tensors, case.arrays, strict=False):
        np.testing.assert_array_equal(to_numpy(t.array), a, err_msg=f"{name}: an input was mutated")
    for v_dev, v in zip(upstream_dev, upstream, strict=False):
        np.testing.assert_array_equal(to_numpy(v_dev), v, err_msg=f"{name}: the upstream gradient was mutated")

    # the graph was released
    for fn in graph:
        assert fn.parents is None, f"{name}: {fn.name} kept its inputs after backward"
        assert set(vars(fn)) <= {"parents", "n_outputs"}, f"{name}: {fn.name} kept {sorted(vars(fn))}"

    # gradient shapes, dtypes, devices; no aliasing
    for t, wanted in zip(tensors, case.grad, strict=False):
        if not wanted:
            assert t.grad is None
            continue
        assert t.grad is not None, f"{name}: no gradient reached an input"
        assert t.grad.shape == t.shape and t.grad.dtype == t.dtype and t.grad.device == t.device, (
            f"{name}: gradient {t.grad.shape} {t.grad.dtype} on {t.grad.device} for input {t.shape} {t.dtype}"
        )
        assert not t.grad.requires_grad
    xp = get_array_module(tensors[0].array)
    grads = [t.grad.array for t in tensors if t.grad is not None]
    others = upstream_dev + [t.array for t in tensors] + [o.array for o in outs]
    for i, g in enumerate(grads):
        for other in grads[i + 1:] + others:
            assert not xp.shares_memory(g, other), f"{name}: a gradient shares memory with another array"

    # the values, against float64 central differences
    numeric = central_differences(case, [v.astype(np.float64) for v in upstream])
    low_precision = any(a.dtype == np.float32 for a in case.arrays)
    for k, (t, num) in enumerate(zip(tensors, numeric, strict=False)):
        if num is None:
            continue
        tape = to_numpy(t.grad.array).astype(np.float64)
        if low_precision:
            scale = max(1.0, float(np.abs(num).max(initial=0)))
            np.testing.assert_allclose(tape, num, rtol=1e-3, atol=1e-3 * scale, err_msg=f"{name}: input {k}")
        else:
            np.testing.assert_allclose(tape, num, rtol=1e-5, atol=1e-6, err_msg=f"{name}: input {k}")



# --------------------------------------------------------------------------------------------------
# Reflected operators and NumPy 2 promotion, spelled out
# --------------------------------------------------------------------------------------------------


def test_reflected_operators_and_numpy2_promotion(device):
    f32 = Tensor(np.array([1.0, 2.0], np.float32), device=device)
    f64 = Tensor(np.array([1.0, 2.0]), device=device)
    i64 = tg.tensor([1, 2], device=device)
    xp = get_array_module(f32.array)
    arr64, arr32 = xp.asarray([2.0, 4.0]), xp.asarray([2.0, 4.0], dtype=np.float32)
    cases = [
        # a Python scalar is weak: it never upcasts a float32 tensor (NEP 50)
        ("2 - f32", 2 - f32, np.float32, [1.0, 0.0]),
        ("2.5 * f32", 2.5 * f32, np.float32, [2.5, 5.0]),
        ("f32 / 2", f32 / 2, np.float32, [0.5, 1.0]),
        ("1 / f32", 1 / f32, np.float32, [1.0, 0.5]),
        ("2 ** f32", 2**f32, np.float32, [2.0, 4.0]),
        ("f32 ** 2", f32**2, np.float32, [1.0, 4.0]),
        ("1e-3 + f32", 1e-3 + f32, np.float32, [1.001, 2.001]),
        # float32 with float64 gives float64, whichever side
        ("f32 + f64", f32 + f64, np.float64, [2.0, 4.0]),
        ("f64 - f32", f64 - f32, np.float64, [0.0, 0.0]),
        # arrays and NumPy scalars are not weak
        ("arr64 * f32", arr64 * f32, np.float64, [2.0, 8.0]),
        ("f32 - arr64", f32 - arr64, np.float64, [-1.0, -2.0]),
        ("arr64 / f32", arr64 / f32, np.float64, [2.0, 2.0]),
        ("arr64 ** f32", arr64**f32, np.float64, [2.0, 16.0]),
        ("arr32 * f32", arr32 * f32, np.float32, [2.0, 8.0]),
        ("arr64 @ f32", arr64 @ f32, np.float64, 10.0),
        ("f32 @ arr32", f32 @ arr32, np.float32, 10.0),
        ("np.float64(2) * f32", np.float64(2) * f32, np.float64, [2.0, 4.0]),
        ("f32 * np.float32(2)", f32 * np.float32(2), np.float32, [2.0, 4.0]),
        ("f32 ** np.float64(2)", f32 ** np.float64(2), np.float64, [1.0, 4.0]),
        # integers
        ("i64 * 2", i64 * 2, np.int64, [2, 4]),
        ("3 - i64", 3 - i64, np.int64, [2, 1]),
        ("i64 * 2.5", i64 * 2.5, np.float64, [2.5, 5.0]),
        ("i64 / 2", i64 / 2, np.float64, [0.5, 1.0]),
        ("i64 + f32", i64 + f32, np.float64, [2.0, 4.0]),
        ("Tensor(2.0) * f32", tg.tensor(2.0, device=device) * f32, np.float32, [2.0, 4.0]),
    ]
    for text, result, dtype, values in cases:
        assert isinstance(result, Tensor), text
        assert result.dtype == dtype, f"{text}: {result.dtype}, expected {np.dtype(dtype).name}"
        assert result.device == f32.device, text
        np.testing.assert_allclose(result.numpy(), values, rtol=1e-6, err_msg=text)


def test_reflected_operators_carry_gradients(device):
    x = Tensor(np.array([1.0, 2.0], np.float32), requires_grad=True, device=device)
    arr = get_array_module(x.array).asarray([3.0, 5.0])
    loss = (2 - x).sum() + (arr * x).sum() + (1 / x).sum() + (2**x).sum() + (arr @ x)
    loss.backward()
    assert loss.dtype == np.float64 and x.grad.dtype == np.float32
    expected = -1 + np.array([3.0, 5.0]) - 1 / np.array([1.0, 4.0]) + np.log(2) * np.array([2.0, 4.0]) + [3.0, 5.0]
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-6)


# --------------------------------------------------------------------------------------------------
# Non-differentiable ops and PyTorch's split/chunk meanings
# --------------------------------------------------------------------------------------------------


def test_argmax_argmin_are_int64_without_history(device):
    x = Tensor(np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 0.0]]), requires_grad=True, device=device)
    for result, expected in [(x.argmax(), 1), (x.argmax(axis=1), [1, 0]), (x.argmin(axis=1), [0, 1]),
                             (tg.argmax(x, axis=0, keepdims=True), [[1, 0, 0]]), (tg.argmin(x), 4)]:
        assert result.dtype == np.int64 and not result.requires_grad and result._ctx is None
        np.testing.assert_array_equal(result.numpy(), expected)  # the first index on ties


@pytest.mark.parametrize("n, how, expected", [
    (5, ("split", 2), [2, 2, 1]), (6, ("split", 3), [3, 3]), (2, ("split", 5), [2]),
    (5, ("split", [1, 4]), [1, 4]), (5, ("split", [0, 5]), [0, 5]),
    (5, ("chunk", 3), [2, 2, 1]), (6, ("chunk", 4), [2, 2, 2]), (5, ("chunk", 5), [1, 1, 1, 1, 1]),
    (3, ("chunk", 5), [1, 1, 1]), (7, ("chunk", 2), [4, 3]),
])
def test_split_and_chunk_have_pytorchs_meanings(device, n, how, expected):
    x = Tensor(np.arange(2.0 * n).reshape(2, n), device=device)
    kind, arg = how
    pieces = getattr(x, kind)(arg, axis=1) if kind == "split" else x.chunk(arg, axis=-1)
    assert [p.shape[1] for p in pieces] == expected
    np.testing.assert_array_equal(np.concatenate([p.numpy() for p in pieces], axis=1), x.numpy())
    torch = pytest.importorskip("torch")
    theirs = getattr(torch.arange(2.0 * n).reshape(2, n), kind)(arg, 1)
    assert [p.shape[1] for p in theirs] == expected


# --------------------------------------------------------------------------------------------------
# PyTorch as a reference at the edges (float64; skipped without torch)
# --------------------------------------------------------------------------------------------------

EDGE_CASES = {
    # name: (ours, torch's, inputs) — inputs picked at kinks, ties, zeros and bounds
    "pow_at_zero_and_negative_bases": (lambda a, b: a**b, lambda a, b: a**b,
                                       [[0.0, 0.0, 0.0, 0.0, -2.0, -2.0, 2.0], [2.0, 1.0, 0.5, 0.0, 3.0, -1.0, -0.5]]),
    "pow_scalar_at_zero": (lambda a: a**0 + a**1 + a**2 + a**3, lambda a: a**0 + a**1 + a**2 + a**3,
                           [[0.0, -1.5, 2.0]]),
    "max_ties": (lambda a: a.amax(axis=1), lambda a: a.amax(dim=1), [[[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]]),
    "max_dim_ties": (lambda a: a.max(dim=1).values + a.min(1, keepdim=True)[0].sum(),
                     lambda a: a.max(dim=1).values + a.min(1, keepdim=True)[0].sum(),
                     [[[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]]),
    "elementwise_max_ties": (lambda a, b: a.max(b) + tg.minimum(a, b), lambda a, b: a.max(b) + torch_minimum(a, b),
                             [[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]]),
    "min_ties_all": (lambda a: a.min(), lambda a: a.amin(), [[[1.0, 0.0, 0.0], [0.0, 2.0, 2.0]]]),
    "relu_abs_at_zero": (lambda a: a.relu() + abs(a), lambda a: a.relu() + a.abs(), [[-1.0, 0.0, 1.0]]),
    "clip_at_the_bounds": (lambda a: a.clip(-1.0, 1.0), lambda a: a.clamp(-1.0, 1.0), [[-2.0, -1.0, 0.0, 1.0, 2.0]]),
    "sqrt_at_zero": (lambda a: a.sqrt(), lambda a: a.sqrt(), [[0.0, 4.0]]),
    "sigmoid_tanh_tails": (lambda a: a.sigmoid() * 3 + a.tanh(), lambda a: a.sigmoid() * 3 + a.tanh(),
                           [[-1000.0, -100.0, -30.0, 0.0, 30.0, 1000.0]]),
    "log_softmax_extremes": (lambda a: a.log_softmax(1), lambda a: a.log_softmax(1),
                             [[[-1000.0, 1000.0, 0.0], [1e8, 1e8, 1e8], [0.0, -50.0, 3.0]]]),
    "div_and_rdiv": (lambda a, b: a / b + 2 / b, lambda a, b: a / b + 2 / b, [[1.0, -3.0], [0.5, -4.0]]),
    "broadcast_mul_sub": (lambda a, b: a * b - b, lambda a, b: a * b - b, [[[1.0], [2.0]], [3.0, -1.0, 0.5]]),
    "where_mixed": (lambda a, b: tg.where(a > b, a, b), lambda a, b: torch_where(a > b, a, b),
                    [[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]]),
    "getitem_repeated": (lambda a: a[[0, 0, 2]] * 2, lambda a: a[[0, 0, 2]] * 2, [[1.0, 2.0, 3.0]]),
    "mean_keepdims": (lambda a: a.mean(axis=0, keepdims=True), lambda a: a.mean(dim=0, keepdim=True),
                      [[[1.0, 2.0], [3.0, 5.0]]]),
}


def torch_where(c, a, b):
    import torch

    return torch.where(c, a, b)


def torch_minimum(a, b):
    import torch

    return torch.minimum(a, b)


@pytest.mark.parametrize("name", sorted(EDGE_CASES))
def test_edges_match_pytorch(device, name):
    torch = pytest.importorskip("torch")
    ours_fn, theirs_fn, values = EDGE_CASES[name]
    ours = [Tensor(np.array(v), requires_grad=True, device=device) for v in values]
    theirs = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in values]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = ours_fn(*ours)
        ref = theirs_fn(*theirs)
        upstream = np.linspace(0.5, 1.5, ref.numel()).reshape(tuple(ref.shape))
        out.backward(upstream)
    ref.backward(torch.tensor(upstream))
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-13, atol=0, err_msg=f"{name}: value")
    for k, (o, t) in enumerate(zip(ours, theirs, strict=False)):  # infinities and NaNs must match exactly
        np.testing.assert_allclose(o.grad.numpy(), t.grad.numpy(), rtol=1e-13, atol=1e-15,
                                   err_msg=f"{name}: gradient of input {k}")
