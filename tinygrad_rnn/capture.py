"""Capture once, replay at hand-written speed: a tracing JIT for whole training steps.

``step = tinygrad_rnn.capture(fn)`` (or ``@capture`` on ``fn``) returns a callable. Its first call with a given
*signature* (the shapes, dtypes and devices of the tensor and array arguments, and the values of the other
arguments) runs ``fn`` eagerly, as usual, while a recorder writes down every op that ``fn`` runs, forward and
in the ``backward()`` inside it. Later calls with the same signature do not run ``fn``: they copy the new
arguments into the recorded program's input buffers and run the program, a flat list of backend calls
(``numpy.tanh(x, out)``, ``numpy.matmul(a, b, out)``, ...). There are no Function objects, no graph walk and
no per-call allocation in it; reshapes, splits, unbinds, transposes and broadcasts are views made once, and
buffers are reused as soon as their values are dead (liveness), so the step's memory is at most eager's.

What is recorded and replayed:

* every primitive op's forward, on tensors of the arguments, on parameters (any leaf tensor that requires a
  gradient, read fresh at each call: an optimizer step between calls is seen; if a parameter's array is
  replaced, the program relinks to the new one), and on constants created inside ``fn``;
* the ``backward()`` inside ``fn``: the engine's order, the gradient sums, the reductions that undo
  broadcasting, and the accumulation into each ``.grad`` exactly as eager does it (a ``.grad`` that is
  ``None`` at the call is created, an existing one is added into: ``zero_grad()`` between calls is honoured);
* random ops (dropout) draw fresh numbers from the device's generator at every replay, in eager's order.

By default the replay is bitwise equal to eager: every backend call is the one the eager op makes, with an
``out=`` buffer of the same layout. The opt-ins ``fast_sigmoid=True`` and ``fuse_weight_grads=True`` trade
this for speed (see :func:`capture`).

What is refused (:class:`CaptureError`, at the recording call):

* ``.item()``, ``.numpy()``, ``float()``, ``bool()`` ... of a tensor computed inside ``fn`` (Python control
  flow could depend on the value, and a replay does not run Python);
* random numbers drawn outside an op (``tg.randn`` inside ``fn``);
* parameters or their gradients changed in place by code outside the tape inside ``fn`` (an optimizer step or
  ``clip_grad_norm_`` inside ``fn``: call them between the captured calls);
* a ``backward()`` that reaches ops recorded before the call (a tensor with history kept from an earlier
  call: ``detach()`` it), ``retain_grad()`` inside ``fn``, a returned tensor whose graph was not
  backpropagated inside ``fn``;
* at a replay: a parameter whose shape, dtype or device changed.

What cannot be detected (documented limits):

* an argument whose values ``fn`` reads outside the ops (a NumPy array turned into a new tensor inside ``fn``,
  a value read with ``.numpy()``) is treated as static: its values become part of the signature, so a new value
  records a new program (correct, but a new recording per value: a warning says so after ``cache_size``
  recordings). Lists and numbers are static too. (The ``lengths=`` of the recurrent layers are data when given
  as an array or tensor: their mask is an op, recomputed at every replay.) An argument that ops use *and* that
  ``fn`` also reads outside them is not detected;
* state that ``fn`` reads from outside other than arguments and parameters is baked in at the recording: a
  module's ``train()``/``eval()`` mode, a Python number, a tensor that does not require a gradient held in a
  closure (its array is used by reference: writes into it are seen, rebinding the name is not);
* arrays written behind the tape's back between calls other than parameters (an input held in a closure
  and changed through its ``.array``) are seen only when written in place.

The recorder is one process-wide slot (one check per op on the hot path): while a call is being recorded, ops
that other threads run would be recorded into it, so record from one thread at a time.

Returned tensors are new tensors without history (the values of eager's: e.g. a final recurrent state to carry
to the next call, which a truncated-BPTT loop detaches anyway); ``p.grad`` returned is the parameter's ``.grad``
after the replay. A function that returns a tensor with history must call ``backward()`` inside (otherwise
the caller would expect to backpropagate through it).
"""

from __future__ import annotations

import bisect
import collections
import functools
import itertools
import sys
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from tinygrad_rnn import ops as _ops
from tinygrad_rnn.backend import get_array_module, scatter_add
from tinygrad_rnn.tensor import Function, Tensor, _Edge

_tm: Any = sys.modules["tinygrad_rnn.tensor"]  # the module (the package's name `tensor` is the creation function)

__all__ = ["CaptureError", "Captured", "capture"]


class CaptureError(RuntimeError):
    """``fn`` does something that a recorded program cannot replay faithfully (the message says what to change)."""


def _is_array(x: Any) -> bool:
    return isinstance(x, np.ndarray) or (
        type(x).__module__.startswith("cupy") and hasattr(x, "__cuda_array_interface__"))


# --------------------------------------------------------------------------------------------------
# Slots: the values of the program (buffers, views of them, arguments, parameters, constants)
# --------------------------------------------------------------------------------------------------


def _perm_of(strides: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
    """The axes in memory order, outermost first (identity for C order)."""
    ndim = len(shape)
    return tuple(sorted(range(ndim), key=lambda i: (-abs(strides[i]) if shape[i] > 1 else 0, i)))


def _proto(shape: tuple[int, ...], dtype: Any, perm: tuple[int, ...] | None) -> np.ndarray:
    """A metadata-only array (no memory of its own) with the strides of a buffer laid out in ``perm`` order."""
    dtype = np.dtype(dtype)
    ndim = len(shape)
    perm = tuple(range(ndim)) if perm is None else perm
    strides = [0] * ndim
    step = dtype.itemsize
    for axis in reversed(perm):
        strides[axis] = step
        step *= max(shape[axis], 1)
    return np.lib.stride_tricks.as_strided(np.zeros(1, dtype), shape, strides, writeable=False)


class _Slot:
    """One value of the program. ``kind``: buf (a root buffer), view (of ``base``, by ``fn``), arg (argument
    ``ref``), param (leaf tensor ``ref``, read at every call), const (array ``ref``)."""

    __slots__ = ("base", "dtype", "fn", "id", "kind", "perm", "proto", "ref", "scalar", "shape", "xp")
    _ids = itertools.count()

    def __init__(self, kind: str, shape: Any, dtype: Any, xp: Any, perm: Any = None, proto: Any = None,
                 base: Any = None, fn: Any = None, ref: Any = None):
        self.kind, self.shape, self.dtype, self.xp = kind, tuple(shape), np.dtype(dtype), xp
        self.perm = tuple(range(len(self.shape))) if perm is None else tuple(perm)
        self.proto = _proto(self.shape, self.dtype, self.perm) if proto is None else proto
        self.base, self.fn, self.ref, self.scalar = base, fn, ref, False
        self.id = next(_Slot._ids)

    def root(self) -> _Slot:
        s = self
        while s.kind == "view":
            s = s.base
        return s

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:  # for debugging
        return f"<{self.kind} {self.id} {self.shape} {self.dtype}>"


class _Need:
    """What an op's backward may ask of ``self.parents[i]`` at a replay."""

    __slots__ = ("dtype", "requires_grad", "shape")

    def __init__(self, parent: Any):
        self.requires_grad, self.shape, self.dtype = parent.requires_grad, parent.shape, parent.dtype


# --------------------------------------------------------------------------------------------------
# Instructions run by a replay (resolved arrays in place of slots)
# --------------------------------------------------------------------------------------------------


class _Box:
    """A mutable cell that linking leaves alone (lists and tuples in instructions are resolved, copied)."""

    __slots__ = ("value",)

    def __init__(self, value: Any = None):
        self.value = value


def _acc_leaf(t: Tensor, g: Any) -> None:
    _tm._accumulate_leaf(t, g)


def _acc_arg(holder: _Box, index: int, g: Any) -> None:
    _tm._accumulate_leaf(holder.value[index], g)


def _sum_keep(a: Any, axes: tuple[int, ...], out: Any) -> None:
    a.sum(axis=axes, keepdims=True, out=out)


def _sum_to_out(a: Any, axes: tuple[int, ...], keepdims: bool, out: Any) -> None:
    a.sum(axis=axes, keepdims=keepdims, out=out)


def _where_out(cond: Any, a: Any, b: Any, out: Any) -> None:
    xp = get_array_module(out)
    xp.copyto(out, b, casting="unsafe")
    xp.copyto(out, a, casting="unsafe", where=cond)


def _concat_out(arrays: list, axis: int, out: Any) -> None:
    get_array_module(out).concatenate(arrays, axis=axis, out=out)


def _stack_out(arrays: list, axis: int, out: Any) -> None:
    get_array_module(out).stack(arrays, axis=axis, out=out)


def _matmul_out(a: Any, b: Any, out: Any) -> None:
    get_array_module(out).matmul(a, b, out=out)


def _matmul(xp: Any) -> Callable:
    """``matmul(a, b, out)``: NumPy's takes ``out`` positionally (the cheapest call); others by keyword."""
    return np.matmul if xp is np else _matmul_out


def _minimum_out(a: Any, b: Any, out: Any) -> None:
    get_array_module(out).minimum(a, b, out=out)


def _copy_out(src: Any, out: Any) -> None:
    get_array_module(out).copyto(out, src, casting="unsafe")


def _fill_zero(out: Any) -> None:
    out.fill(0)


def _embedding_fwd(weight: Any, indices: Any, out: Any) -> None:
    if indices.size and (int(indices.min()) < 0 or int(indices.max()) >= weight.shape[0]):
        raise _tm.OpError(f"embedding: indices must lie in [0, {weight.shape[0]}) for a weight of shape "
                          f"{weight.shape}, got values in [{int(indices.min())}, {int(indices.max())}]")
    get_array_module(out).take(weight, indices, axis=0, out=out)


def _embedding_bwd(g: Any, indices: Any, out: Any) -> None:
    out.fill(0)
    scatter_add(out, indices.reshape(-1), g.reshape(-1, out.shape[1]))


def _generic_fwd(cls: Any, attrs: dict, holder: _Box | None, n_in: int, options: dict, *arrays: Any) -> None:
    """Any op without a lowering: a fresh instance's forward, its output(s) copied into the buffers."""
    f = cls.__new__(cls)
    f.__dict__.update(attrs)
    try:
        result = f.forward(*arrays[:n_in], **options)
    except (ValueError, IndexError, TypeError) as exc:  # as Function.apply reports it
        raise _tm.OpError(f"{f.name}: {exc}") from exc
    outs = arrays[n_in:]
    if type(result) is tuple:
        for o, r in zip(outs, result, strict=False):
            get_array_module(o).copyto(o, r)
    else:
        get_array_module(outs[0]).copyto(outs[0], result)
    if holder is not None:
        holder.value = f


def _generic_bwd(holder: _Box, n_out: int, targets: tuple, *arrays: Any) -> None:
    """The backward of an op without a lowering; each gradient summed to its input's shape, cast, copied out."""
    f = holder.value
    holder.value = None
    grads = f.backward(arrays[0]) if n_out == 1 else f.backward(*arrays[:n_out])
    if type(grads) is not tuple:
        grads = (grads,)
    for g, (out, shape, _dtype) in zip(grads, targets, strict=False):
        if out is None:
            continue
        if g is None:
            raise CaptureError(f"capture: the backward of '{f.name}' returned no gradient at a replay where it "
                               "returned one when recorded")
        if g.shape != shape:
            g = _tm.sum_to(g, shape)
        get_array_module(out).copyto(out, g, casting="unsafe")


def _generic_bwd_targets(holder: _Box, n_out: int, shapes: tuple, *arrays: Any) -> None:
    targets = tuple((out, shape, dtype) for out, (shape, dtype) in zip(arrays[n_out:], shapes, strict=False))
    _generic_bwd(holder, n_out, targets, *arrays[:n_out])


# --------------------------------------------------------------------------------------------------
# The recorder: runs ops eagerly while writing the program
# --------------------------------------------------------------------------------------------------


class _Instr:
    __slots__ = ("args", "fn", "keep")

    def __init__(self, fn: Callable, args: tuple, keep: tuple = ()):
        self.fn, self.args, self.keep = fn, args, keep


def _slots_in(obj: Any, out: list) -> None:
    if type(obj) is _Slot:
        out.append(obj)
    elif type(obj) in (tuple, list):
        for o in obj:
            _slots_in(o, out)
    elif type(obj) is dict:
        for o in obj.values():
            _slots_in(o, out)


class _Recorder:
    def __init__(self, arg_arrays: list, fast_sigmoid: bool):
        # weight-gradient sums (for fuse_weight_grads): slot id -> (terms ((a, g, matmul instr), ...), add instrs,
        # result slot); every sum of two or more terms is also appended to ``wgrad_sums``
        self.wgrad: dict[int, tuple] = {}
        self.wgrad_sums: list[tuple] = []
        self.arrays: dict[int, tuple[Any, _Slot]] = {}  # id(array) -> (array kept alive, slot)
        self.program: list[_Instr] = []
        self.fn_info: dict[Function, tuple] = {}
        self.arg_slots: list[_Slot] = []
        self.arg_used: list[bool] = []
        self.arg_read: list[bool] = []
        self.params: dict[int, _Slot] = {}  # id(tensor) -> slot
        self.param_snapshots: list[tuple[Tensor, Any, Any]] = []
        self.grad_snapshots: dict[int, tuple[Tensor, Any, Any]] = {}
        self.in_op = False
        self.backwards = 0  # backward() calls inside fn
        self.fast_sigmoid = fast_sigmoid
        self.arg_tensors: dict[int, int] = {}  # id(tensor) -> argument index (tensors that may receive .grad)
        self.arg_holder = _Box(())  # the current call's arguments, for gradients into tensor arguments
        for i, (kind, obj) in enumerate(arg_arrays):
            array = obj.array if kind == "T" else obj
            slot = _Slot("arg", array.shape, array.dtype, get_array_module(array),
                         perm=_perm_of(array.strides, array.shape), ref=i)
            self.arg_slots.append(slot)
            self.arg_used.append(False)
            self.arg_read.append(False)
            self.arrays.setdefault(id(array), (array, slot))
            if kind == "T":
                self.arg_tensors[id(obj)] = i

    # ---------------------------------------------------------------- slots
    def emit(self, fn: Callable, *args: Any, keep: tuple = ()) -> None:
        self.program.append(_Instr(fn, args, keep))

    def buf(self, shape: Any, dtype: Any, xp: Any, like: _Slot | None = None) -> _Slot:
        shape = tuple(shape)
        perm = None
        if like is not None and like.shape == shape and like.ndim > 1:
            perm = _perm_of(like.proto.strides, shape)
        return _Slot("buf", shape, dtype, xp, perm=perm)

    def buf_from(self, array: Any) -> _Slot:
        """A buffer for an eager output array (its layout), registered under the array's identity."""
        slot = _Slot("buf", array.shape, array.dtype, get_array_module(array),
                     perm=_perm_of(array.strides, array.shape) if array.ndim > 1 else None)
        slot.scalar = isinstance(array, np.generic)
        return slot

    def view(self, base: _Slot, fn: Callable, shape: Any = None, dtype: Any = None) -> _Slot:
        proto = fn(base.proto)
        return _Slot("view", proto.shape, proto.dtype, base.xp, proto=proto, base=base, fn=fn)

    def register(self, array: Any, slot: _Slot) -> None:
        self.arrays[id(array)] = (array, slot)

    def slot_of(self, t: Tensor) -> _Slot:
        """The slot of an op's input tensor."""
        array = t.array
        known = self.arrays.get(id(array))
        if known is not None:
            slot: Any = known[1]
            if slot.kind == "arg":
                self.arg_used[slot.ref] = True
            return slot
        if t.requires_grad and t._ctx is None:  # a parameter (any leaf that requires a gradient): read at each call
            slot = self.params.get(id(t))
            if slot is None:
                slot = _Slot("param", array.shape, array.dtype, get_array_module(array),
                             perm=_perm_of(array.strides, array.shape), ref=t)
                slot.proto = np.lib.stride_tricks.as_strided(np.zeros(1, array.dtype), array.shape, array.strides,
                                                             writeable=False)
                self.params[id(t)] = slot
                self.param_snapshots.append((t, array, array.copy()))
            return slot
        if t._ctx is not None:
            raise CaptureError("capture: an op inside the captured function uses a tensor with history that was "
                               "computed outside it (e.g. a hidden state kept from an earlier call); pass it as an "
                               "argument or detach() it")
        slot = _Slot("const", array.shape, array.dtype, get_array_module(array), ref=array,
                     proto=np.lib.stride_tricks.as_strided(np.zeros(1, array.dtype), array.shape, array.strides,
                                                           writeable=False))
        slot.scalar = isinstance(array, np.generic)
        self.register(array, slot)
        return slot

    def option(self, value: Any) -> Any:
        """An op option with its arrays replaced by slots (arguments and op outputs stay live values)."""
        if _is_array(value):
            known = self.arrays.get(id(value))
            if known is not None:
                if known[1].kind == "arg":
                    self.arg_used[known[1].ref] = True
                return known[1]
            view = self.view_of_known(value)
            return value if view is None else view
        return self._option_container(value)

    def view_of_known(self, value: Any) -> _Slot | None:
        """A slot for an array that NumPy code made as a view of a recorded array (``mask[t]``), or None."""
        base = value.base
        known = None if base is None else self.arrays.get(id(base))
        if known is None or not base.flags.c_contiguous or known[1].kind not in ("buf", "view", "arg"):
            return None
        xp = get_array_module(value)
        if xp is np:
            offset = value.__array_interface__["data"][0] - base.__array_interface__["data"][0]
        else:  # pragma: no cover - needs a GPU
            offset = value.data.ptr - base.data.ptr
        if offset % value.itemsize or value.dtype != base.dtype:
            return None
        start, shape, strides = offset // value.itemsize, value.shape, value.strides

        def fn(a: Any) -> Any:
            return get_array_module(a).lib.stride_tricks.as_strided(a.reshape(-1)[start:], shape, strides)

        slot = self.view(known[1], fn)
        if known[1].kind == "arg":
            self.arg_used[known[1].ref] = True
        self.register(value, slot)
        return slot

    def _option_container(self, value: Any) -> Any:
        if type(value) in (tuple, list):
            return type(value)(self.option(v) for v in value)
        return value

    # ---------------------------------------------------------------- hooks called by tensor.py
    def read(self, t: Tensor, what: str) -> None:
        known = self.arrays.get(id(t.array))
        if known is not None and known[1].kind == "arg":
            self.arg_read[known[1].ref] = True
            return
        if known is None and not (t.requires_grad and t._ctx is None):
            return  # a constant made inside fn
        raise CaptureError(
            f"capture: {what} on a tensor inside the captured function reads a value that the data decides; Python "
            f"code that uses it would not run again at a replay. Return the tensor from the function and call "
            f"{what} on it outside, or run this function without capture")

    def inplace(self, array: Any) -> None:
        storage = _tm._storage_of(array)
        for t, param_array, _ in self.param_snapshots:
            if _tm._storage_of(param_array) is storage:
                raise CaptureError(
                    f"capture: a parameter of shape {tuple(t.shape)} was changed inside the captured function by "
                    "an in-place op; a replay would not repeat it. Call optimizer.step() between the captured calls")
        for known, slot in self.arrays.values():
            if slot.kind != "const" and _tm._storage_of(known) is storage:
                raise CaptureError(
                    "capture: an in-place op inside the captured function writes into an array that recorded ops "
                    f"read or wrote (a tensor of shape {tuple(array.shape)}); a replay would not repeat the write. "
                    "Use the out-of-place op (x = x + y) inside the function")

    def random(self, device: str) -> None:
        if not self.in_op:
            raise CaptureError(
                "capture: random numbers drawn outside an op inside the captured function (tg.randn, tg.rand, "
                "default_rng) would be the same at every replay; draw them outside and pass them as arguments "
                "(dropout is an op and is fine)")

    def apply(self, cls: Any, inputs: tuple, options: dict) -> Any:
        _tm._recorder = None
        self.in_op = True
        try:
            result = cls.apply(*inputs, **options)
        finally:
            _tm._recorder = self
            self.in_op = False
        outs = result if type(result) is tuple else (result,)
        fn = outs[0]._ctx if outs and outs[0]._ctx is not None else None
        in_slots = [self.slot_of(t) for t in inputs]
        opts = {k: self.option(v) for k, v in options.items()}
        lower = _LOWER.get(cls)
        out_arrays = [o.array for o in outs]
        if lower is not None:
            out_slots, state = lower[0](self, in_slots, opts, out_arrays, fn)
        else:
            out_slots, state = _generic_forward(self, cls, in_slots, opts, out_arrays, fn)
        for array, slot in zip(out_arrays, out_slots, strict=False):
            slot.scalar = isinstance(array, np.generic)
            self.register(array, slot)
        if fn is not None:
            self.fn_info[fn] = (cls, in_slots, out_slots, state)
        return result

    def backward(self, root: Tensor, grad: Any, retain_graph: bool) -> None:
        self.backwards += 1
        xp = get_array_module(grad)
        gslot = _Slot("const", grad.shape, grad.dtype, xp, ref=grad)
        root_fn = root._ctx
        if root_fn is None:
            self.acc_leaf(root, gslot)
        else:
            self._symbolic_backward(root, root_fn, gslot)
        _tm._recorder = None
        try:
            _tm._run_backward(root, grad, retain_graph)
        finally:
            _tm._recorder = self
        for key, (t, _, _) in list(self.grad_snapshots.items()):
            tgrad: Any = t.grad
            self.grad_snapshots[key] = (t, tgrad.array, tgrad.array.copy())

    def acc_leaf(self, t: Tensor, g: _Slot) -> None:
        index = self.arg_tensors.get(id(t))
        if index is not None:
            self.emit(_acc_arg, self.arg_holder, index, g)
        else:
            self.emit(_acc_leaf, t, g)
        self.grad_snapshots.setdefault(id(t), (t, None, None))

    def _symbolic_backward(self, root: Tensor, root_fn: Function, gslot: _Slot) -> None:
        """The engine's walk (tensor._run_backward), on slots: writes the backward program."""
        order = _tm._topological_order(root_fn)
        pending: dict[Any, Any] = {}
        if root_fn.n_outputs == 1:
            pending[root_fn] = gslot
        else:
            slots: Any = [None] * root_fn.n_outputs
            slots[root._index] = gslot
            pending[root_fn] = slots
        owned: set[int] = set()
        for fn in order:
            out_grad = pending.pop(fn, None)
            if owned:
                for g in out_grad if type(out_grad) is list else (out_grad,):
                    if g is not None:
                        owned.discard(g.id)
            if out_grad is None:
                continue
            if fn.retained is not None:
                raise CaptureError("capture: retain_grad() inside the captured function is not supported; return "
                                   "the tensor and compute what you need from it outside")
            info = self.fn_info.get(fn)
            if info is None:
                raise CaptureError("capture: backward() inside the captured function reaches ops recorded before "
                                   "the call (a tensor with history kept from an earlier call?); detach() it or "
                                   "compute it inside the function")
            cls, in_slots, out_slots, state = info
            grads_out = list(out_grad) if type(out_grad) is list else [out_grad]
            lower = _LOWER.get(cls)
            if lower is not None and lower[1] is not None:
                in_grads, final = lower[1](self, fn, in_slots, out_slots, state, grads_out), False
            else:
                in_grads, final = _generic_backward(self, fn, in_slots, out_slots, state, grads_out), True
            for parent, g in zip(fn.parents, in_grads, strict=False):
                if g is None or not parent.requires_grad:
                    continue
                if not final:
                    if g.shape != parent.shape:
                        g = self.sum_to(g, parent.shape)
                    if g.dtype != parent.dtype:
                        out = self.buf(g.shape, parent.dtype, g.xp, like=g)
                        self.emit(_copy_out, g, out)
                        g = out
                if isinstance(parent, Tensor):
                    self.acc_leaf(parent, g)
                elif type(parent) is _Edge:
                    ctx = parent._ctx
                    slots = pending.get(ctx)
                    if slots is None:
                        slots = pending[ctx] = [None] * ctx.n_outputs
                    slots[parent._index] = self.add(slots[parent._index], g, owned)
                else:
                    pending[parent] = self.add(pending.get(parent), g, owned)

    def add(self, previous: _Slot | None, g: _Slot, owned: set[int]) -> _Slot:
        if previous is None:
            return g
        if previous.id in owned:
            self.emit(previous.xp.add, previous, g, previous)
            total = previous
        else:
            total = self.buf(np.broadcast_shapes(previous.shape, g.shape), previous.dtype, g.xp, like=previous)
            self.emit(g.xp.add, previous, g, total)
            owned.add(total.id)
        # note sums of weight-gradient products (hᵀ @ g per step) for fuse_weight_grads
        p, q = self.wgrad.get(previous.id), self.wgrad.get(g.id)
        if p is not None and q is not None and previous.shape == g.shape == total.shape \
                and previous.dtype == g.dtype == total.dtype:
            self.wgrad[total.id] = entry = (p[0] + q[0], p[1] + q[1] + (self.program[-1],), total)
            self.wgrad_sums.append(entry)
        else:
            self.wgrad.pop(total.id, None)  # written in place: no longer a sum of products
        return total

    def sum_to(self, g: _Slot, shape: tuple[int, ...]) -> _Slot:
        lead = g.ndim - len(shape)
        axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1)
        if axes:
            kept = tuple(1 if i in axes else n for i, n in enumerate(g.shape))
            out = _Slot("buf", kept, g.dtype, g.xp)
            self.emit(_sum_keep, g, axes, out)
            g = out
        if g.shape == shape:
            return g
        return self.reshape(g, shape)

    def reshape(self, g: _Slot, shape: tuple[int, ...]) -> _Slot:
        """A view of ``g`` with ``shape`` when its layout allows one; otherwise a copy into a new buffer."""
        try:
            np.reshape(g.proto, shape, copy=False)
        except ValueError:
            out = _Slot("buf", g.shape, g.dtype, g.xp)  # C order: its reshape is always a view
            self.emit(_copy_out, g, out)
            g = out
        return self.view(g, lambda a, s=tuple(shape): a.reshape(s))

    def ufunc(self, f: Any, *operands: Any, like: _Slot | None = None) -> _Slot:
        """``f(*operands)`` into a new buffer (dtype and shape by NumPy's rules)."""
        shapes = [o.shape for o in operands if type(o) is _Slot]
        probe = [np.zeros((), o.dtype) if type(o) is _Slot else o for o in operands]
        dtype = np.dtype(getattr(np, f.__name__)(*probe).dtype)
        shape = np.broadcast_shapes(*shapes)
        first = like or next((o for o in operands if type(o) is _Slot and o.shape == shape), None)
        xp = next(o.xp for o in operands if type(o) is _Slot)
        out = self.buf(shape, dtype, xp, like=first)
        self.emit(f, *operands, out)
        return out

    # ---------------------------------------------------------------- the end of the recording call
    def check_state(self) -> None:
        for t, array, snapshot in self.param_snapshots:
            if t.array is not array or not _array_equal(array, snapshot):
                raise CaptureError(
                    f"capture: a parameter of shape {tuple(t.shape)} was changed inside the captured function by "
                    "code outside the tape (an optimizer step, an in-place write to .array/.data); a replay would "
                    "not repeat it. Call optimizer.step() between the captured calls")
        for t, array, snapshot in self.grad_snapshots.values():
            if array is None:
                continue
            if t.grad is None or t.grad.array is not array or not _array_equal(array, snapshot):
                raise CaptureError(
                    f"capture: the gradient of a tensor of shape {tuple(t.shape)} was changed inside the captured "
                    "function after backward() (clip_grad_norm_, zero_grad or an in-place write); a replay would "
                    "not repeat it. Do it between the captured calls")


def _array_equal(a: Any, b: Any) -> bool:
    xp = get_array_module(a)
    return bool(xp.array_equal(a, b, equal_nan=True)) if a.dtype.kind in "fc" else bool(xp.array_equal(a, b))


# --------------------------------------------------------------------------------------------------
# Lowerings: an op's forward and backward as backend calls into buffers, mirroring ops.py call for call
# --------------------------------------------------------------------------------------------------


def _generic_forward(rec: _Recorder, cls: type, in_slots: list, opts: dict, outs: list, fn: Any) -> tuple:
    out_slots = [rec.buf_from(o) for o in outs]
    holder = _Box() if fn is not None else None
    attrs: dict[str, Any] = {}
    if fn is not None:
        for k, v in fn.__dict__.items():
            if k == "parents":
                attrs[k] = tuple(_Need(p) for p in v)
            elif not _is_array(v) and not isinstance(v, np.generic) and k not in ("creation_stack", "retained"):
                attrs[k] = v
    rec.emit(_generic_fwd, cls, attrs, holder, len(in_slots), opts, *in_slots, *out_slots)
    return out_slots, (holder, opts)


def _generic_backward(rec: _Recorder, fn: Function, in_slots: list, out_slots: list, state: Any,
                      grads: list) -> list:
    holder, opts = state
    targets: list[_Slot | None] = []
    shapes = []
    for parent, slot in zip(fn.parents, in_slots, strict=False):
        if parent.requires_grad:
            perm = slot.perm if slot.shape == parent.shape else None
            t = _Slot("buf", parent.shape, parent.dtype, slot.xp, perm=perm)
            targets.append(t)
        else:
            targets.append(None)
        shapes.append((parent.shape, parent.dtype))
    keep_list: list = []
    _slots_in(opts, keep_list)
    rec.emit(_generic_bwd_targets, holder, len(grads), tuple(shapes), *grads, *targets,
             keep=tuple(in_slots) + tuple(out_slots) + tuple(keep_list))
    return targets


def _needs(fn: Function) -> tuple[bool, ...]:
    return fn.needs_input_grad


def _f_binary(name: str) -> Callable:
    def forward(rec, ins, opts, outs, fn):
        out = rec.buf_from(outs[0])
        rec.emit(getattr(ins[0].xp, name), ins[0], ins[1], out)
        return [out], None
    return forward


def _b_add(rec, fn, ins, outs, state, grads):
    g = grads[0]
    return [g, g]


def _b_sub(rec, fn, ins, outs, state, grads):
    g = grads[0]
    need_a, need_b = _needs(fn)
    return [g, rec.ufunc(g.xp.negative, g) if need_b else None]


def _b_mul(rec, fn, ins, outs, state, grads):
    g = grads[0]
    a, b = ins
    need_a, need_b = _needs(fn)
    return [rec.ufunc(g.xp.multiply, g, b) if need_a else None, rec.ufunc(g.xp.multiply, g, a) if need_b else None]


def _b_div(rec, fn, ins, outs, state, grads):
    g = grads[0]
    a, b = ins
    xp = g.xp
    need_a, need_b = _needs(fn)
    ga = rec.ufunc(xp.divide, g, b) if need_a else None
    gb = None
    if need_b:
        t = rec.ufunc(xp.multiply, rec.ufunc(xp.negative, g), a)
        gb = rec.ufunc(xp.divide, t, rec.ufunc(xp.multiply, b, b))
    return [ga, gb]


def _f_unary(name: str) -> Callable:
    def forward(rec, ins, opts, outs, fn):
        out = rec.buf_from(outs[0])
        rec.emit(getattr(ins[0].xp, name), ins[0], out)
        return [out], None
    return forward


def _b_neg(rec, fn, ins, outs, state, grads):
    return [rec.ufunc(grads[0].xp.negative, grads[0])]


def _b_exp(rec, fn, ins, outs, state, grads):
    return [rec.ufunc(grads[0].xp.multiply, grads[0], outs[0])]


def _b_tanh(rec, fn, ins, outs, state, grads):
    g, out = grads[0], outs[0]
    xp = g.xp
    t = rec.ufunc(xp.multiply, out, out)
    rec.emit(xp.subtract, 1, t, t)
    rec.emit(xp.multiply, t, g, t)
    return [t]


def _f_sigmoid(rec, ins, opts, outs, fn):
    a = ins[0]
    xp = a.xp
    out = rec.buf_from(outs[0])
    if rec.fast_sigmoid:  # opt-in: σ(a) = 0.5·tanh(0.5·a) + 0.5
        half = out.dtype.type(0.5)
        rec.emit(xp.multiply, a, half, out)
        rec.emit(xp.tanh, out, out)
        rec.emit(xp.multiply, out, half, out)
        rec.emit(xp.add, out, half, out)
        return [out], None
    t1 = rec.buf(a.shape, out.dtype, xp, like=out)
    rec.emit(_minimum_out, a, 0, t1)
    rec.emit(xp.exp, t1, t1)
    t2 = rec.ufunc(xp.absolute, a, like=out)
    rec.emit(xp.negative, t2, t2)
    rec.emit(xp.exp, t2, t2)
    rec.emit(xp.add, 1, t2, t2)
    rec.emit(xp.divide, t1, t2, out)
    return [out], None


def _b_sigmoid(rec, fn, ins, outs, state, grads):
    g, out = grads[0], outs[0]
    xp = g.xp
    t = rec.ufunc(xp.subtract, 1, out, like=out)
    rec.emit(xp.multiply, t, out, t)
    rec.emit(xp.multiply, t, g, t)
    return [t]


def _f_relu(rec, ins, opts, outs, fn):
    a = ins[0]
    xp = a.xp
    out = rec.buf_from(outs[0])
    mask = rec.ufunc(xp.greater, a, 0, like=out)
    rec.emit(xp.multiply, a, mask, out)
    return [out], mask


def _b_relu(rec, fn, ins, outs, state, grads):
    return [rec.ufunc(grads[0].xp.multiply, grads[0], state)]


def _f_matmul(rec, ins, opts, outs, fn):
    a, b = ins
    if a.ndim != 2 or b.ndim != 2:
        return _generic_forward(rec, _ops.MatMul, ins, opts, outs, fn)
    out = rec.buf_from(outs[0])
    rec.emit(_matmul(a.xp), a, b, out)
    return [out], "2d"


def _b_matmul(rec, fn, ins, outs, state, grads):
    if state != "2d":
        return _generic_backward(rec, fn, ins, outs, state, grads)
    return _b_mm(rec, fn, ins[0], ins[1], grads[0], _needs(fn))


def _b_mm(rec, fn, a, b, g, needs):
    ga = gb = None
    if needs[0]:
        ga = rec.buf((g.shape[0], b.shape[0]), np.result_type(g.dtype, b.dtype), g.xp)
        rec.emit(_matmul(a.xp), g, rec.view(b, _transpose2), ga)
    if needs[1]:
        gb = rec.buf((a.shape[1], g.shape[1]), np.result_type(a.dtype, g.dtype), g.xp)
        rec.emit(_matmul(a.xp), rec.view(a, _transpose2), g, gb)
        if a.dtype == g.dtype == gb.dtype:  # a candidate term of a fused weight gradient
            rec.wgrad[gb.id] = (((a, g, rec.program[-1]),), (), gb)
    return [ga, gb]


def _transpose2(a: Any) -> Any:
    return a.T


def _f_addmm(rec, ins, opts, outs, fn):
    c, a, b = ins
    out = rec.buf_from(outs[0])
    if c.dtype == out.dtype and c.ndim <= 2:
        rec.emit(_matmul(a.xp), a, b, out)
        rec.emit(out.xp.add, out, c, out)
    else:
        prod = rec.buf((a.shape[0], b.shape[1]), np.result_type(a.dtype, b.dtype), a.xp)
        rec.emit(_matmul(a.xp), a, b, prod)
        rec.emit(out.xp.add, prod, c, out)
    return [out], None


def _b_addmm(rec, fn, ins, outs, state, grads):
    g = grads[0]
    needs = _needs(fn)
    ga, gb = _b_mm(rec, fn, ins[1], ins[2], g, needs[1:])
    return [g if needs[0] else None, ga, gb]


def _f_reshape(rec, ins, opts, outs, fn):
    return [rec.reshape(ins[0], tuple(outs[0].shape))], None


def _b_reshape(rec, fn, ins, outs, state, grads):
    return [rec.reshape(grads[0], ins[0].shape)]


def _f_permute(rec, ins, opts, outs, fn):
    axes = tuple(opts["axes"])
    inverse = tuple(int(i) for i in np.argsort(axes))
    return [rec.view(ins[0], lambda a: a.transpose(axes))], inverse


def _b_permute(rec, fn, ins, outs, state, grads):
    return [rec.view(grads[0], lambda a, inv=state: a.transpose(inv))]


def _f_expand(rec, ins, opts, outs, fn):
    shape = tuple(outs[0].shape)
    return [rec.view(ins[0], lambda a: np.broadcast_to(a, shape) if type(a) is np.ndarray
                     else get_array_module(a).broadcast_to(a, shape))], None


def _b_pass(rec, fn, ins, outs, state, grads):
    return [grads[0]]


def _f_split(rec, ins, opts, outs, fn):
    a = ins[0]
    axis = opts["axis"]
    edges = [0, *opts["bounds"], a.shape[axis]]
    before = (slice(None),) * axis
    slots = [rec.view(a, lambda x, i=(*before, slice(s, e)): x[i]) for s, e in zip(edges, edges[1:], strict=False)]
    return slots, (axis, tuple(e - s for s, e in zip(edges, edges[1:], strict=False)))


def _zeros_const(rec, shape, dtype, xp) -> _Slot:
    array = xp.zeros(shape, dtype=dtype)
    return _Slot("const", shape, dtype, xp, ref=array)


def _b_split(rec, fn, ins, outs, state, grads):
    axis, sizes = state
    a = ins[0]
    full = []
    for g, o in zip(grads, outs, strict=False):
        full.append(g if g is not None else _zeros_const(rec, o.shape, a.dtype, a.xp))
    out = rec.buf(a.shape, np.result_type(*[f.dtype for f in full]), a.xp)
    rec.emit(_concat_out, full, axis, out)
    return [out]


def _f_unbind(rec, ins, opts, outs, fn):
    a = ins[0]
    axis = opts["axis"]
    before = (slice(None),) * axis
    return [rec.view(a, lambda x, i=(*before, k): x[i]) for k in range(a.shape[axis])], axis


def _b_unbind(rec, fn, ins, outs, state, grads):
    a = ins[0]
    some = next(g for g in grads if g is not None)
    zero = None
    full = []
    for g in grads:
        if g is None:
            if zero is None:
                zero = _zeros_const(rec, some.shape, some.dtype, some.xp)
            g = zero
        full.append(g)
    out = rec.buf(a.shape[:state] + (len(full),) + some.shape[state:], some.dtype, some.xp)
    rec.emit(_stack_out, full, state, out)
    return [out]


def _f_stack(rec, ins, opts, outs, fn):
    out = rec.buf_from(outs[0])
    axis = opts["axis"] % (ins[0].ndim + 1)
    rec.emit(_stack_out, list(ins), axis, out)
    return [out], axis


def _b_stack(rec, fn, ins, outs, state, grads):
    before = (slice(None),) * state
    g = grads[0]
    return [rec.view(g, lambda x, i=(*before, k): x[i]) for k in range(len(ins))]


def _f_concat(rec, ins, opts, outs, fn):
    out = rec.buf_from(outs[0])
    axis = opts["axis"] % ins[0].ndim
    rec.emit(_concat_out, list(ins), axis, out)
    return [out], axis


def _b_concat(rec, fn, ins, outs, state, grads):
    g = grads[0]
    axis = state
    before = (slice(None),) * axis
    result, start = [], 0
    for x in ins:
        stop = start + x.shape[axis]
        result.append(rec.view(g, lambda a, i=(*before, slice(start, stop)): a[i]))
        start = stop
    return result


def _f_where(rec, ins, opts, outs, fn):
    a, b = ins
    out = rec.buf_from(outs[0])
    rec.emit(_where_out, opts["condition"], a, b, out)
    return [out], opts["condition"]


def _b_where(rec, fn, ins, outs, state, grads):
    g = grads[0]
    xp = g.xp
    cond = state
    zero = _zeros_const(rec, (), g.dtype, xp)
    cshape = cond.shape
    shape = np.broadcast_shapes(cshape, g.shape)
    need_a, need_b = _needs(fn)
    ga = gb = None
    if need_a:
        ga = rec.buf(shape, g.dtype, xp, like=g)
        rec.emit(_where_out, cond, g, zero, ga)
    if need_b:
        gb = rec.buf(shape, g.dtype, xp, like=g)
        rec.emit(_where_out, cond, zero, g, gb)
    return [ga, gb]


def _f_sum(rec, ins, opts, outs, fn):
    a = ins[0]
    axes = _ops._normalize_axes(opts["axis"], a.ndim)
    keepdims = opts["keepdims"]
    out = rec.buf_from(outs[0])
    rec.emit(_sum_to_out, a, axes, keepdims, out)
    return [out], (axes, keepdims)


def _b_sum(rec, fn, ins, outs, state, grads):
    axes, keepdims = state
    g = grads[0]
    shape = ins[0].shape
    if not keepdims:
        g = rec.reshape(g, tuple(1 if i in axes else n for i, n in enumerate(shape)))
    return [rec.view(g, lambda a: get_array_module(a).broadcast_to(a, shape))]


def _f_embedding(rec, ins, opts, outs, fn):
    weight = ins[0]
    indices = opts["indices"]
    out = rec.buf_from(outs[0])
    rec.emit(_embedding_fwd, weight, indices, out)
    return [out], indices


def _b_embedding(rec, fn, ins, outs, state, grads):
    g = grads[0]
    weight = ins[0]
    out = rec.buf(weight.shape, g.dtype, g.xp)
    rec.emit(_embedding_bwd, g, state, out)
    return [out]


_LOWER: dict[type, tuple[Callable, Callable | None]] = {
    _ops.Add: (_f_binary("add"), _b_add),
    _ops.Sub: (_f_binary("subtract"), _b_sub),
    _ops.Mul: (_f_binary("multiply"), _b_mul),
    _ops.Div: (_f_binary("divide"), _b_div),
    _ops.Neg: (_f_unary("negative"), _b_neg),
    _ops.Exp: (_f_unary("exp"), _b_exp),
    _ops.Tanh: (_f_unary("tanh"), _b_tanh),
    _ops.Sigmoid: (_f_sigmoid, _b_sigmoid),
    _ops.ReLU: (_f_relu, _b_relu),
    _ops.MatMul: (_f_matmul, _b_matmul),
    _ops.AddMM: (_f_addmm, _b_addmm),
    _ops.Reshape: (_f_reshape, _b_reshape),
    _ops.Permute: (_f_permute, _b_permute),
    _ops.Expand: (_f_expand, _b_pass),
    _ops.Split: (_f_split, _b_split),
    _ops.Unbind: (_f_unbind, _b_unbind),
    _ops.Stack: (_f_stack, _b_stack),
    _ops.Concat: (_f_concat, _b_concat),
    _ops.Where: (_f_where, _b_where),
    _ops.Sum: (_f_sum, _b_sum),
    _ops.Embedding: (_f_embedding, _b_embedding),
}


# --------------------------------------------------------------------------------------------------
# The program: buffers allocated by liveness, instructions bound to arrays
# --------------------------------------------------------------------------------------------------


class _Arena:
    """Offsets in one buffer for blocks with known lifetimes: first fit among free intervals, coalesced on free."""

    def __init__(self) -> None:
        self.size = 0
        self.free_list: list[list[int]] = []  # [offset, size], sorted by offset

    def alloc(self, nbytes: int) -> int:
        need = max(64, -(-nbytes // 64) * 64)
        best = None
        for k, (_offset, size) in enumerate(self.free_list):
            if size >= need:
                best = k
                break
        if best is None:
            if self.free_list and self.free_list[-1][0] + self.free_list[-1][1] == self.size:  # grow the tail
                offset = self.free_list.pop()[0]
            else:
                offset = self.size
            self.size = offset + need
            return offset
        offset, size = self.free_list[best]
        if size == need:
            del self.free_list[best]
        else:
            self.free_list[best] = [offset + need, size - need]
        return offset

    def free(self, offset: int, nbytes: int) -> None:
        need = max(64, -(-nbytes // 64) * 64)
        fl = self.free_list
        k = bisect.bisect_left(fl, [offset, 0])
        fl.insert(k, [offset, need])
        if k + 1 < len(fl) and fl[k][0] + fl[k][1] == fl[k + 1][0]:  # merge with the next
            fl[k][1] += fl.pop(k + 1)[1]
        if k > 0 and fl[k - 1][0] + fl[k - 1][1] == fl[k][0]:  # and with the previous
            fl[k - 1][1] += fl.pop(k)[1]


def _materialize(block: Any, slot: _Slot) -> Any:
    n = int(np.prod(slot.shape)) if slot.shape else 1
    flat = block[: n * slot.dtype.itemsize].view(slot.dtype)
    perm = slot.perm
    if perm == tuple(range(len(perm))):
        return flat.reshape(slot.shape)
    inverse = tuple(int(i) for i in np.argsort(perm))
    return flat.reshape([slot.shape[p] for p in perm]).transpose(inverse)


# --------------------------------------------------------------------------------------------------
# fuse_weight_grads: one matmul for a weight's gradient over all time steps (opt-in, not bitwise)
# --------------------------------------------------------------------------------------------------

# functions whose only written slot is their last argument (the ufuncs' ``out``); _acc_* write no slot
_LAST_ARG_OUT = {np.matmul, _matmul_out, _copy_out, _sum_keep, _sum_to_out, _where_out, _concat_out, _stack_out,
                 _minimum_out, _fill_zero, _embedding_fwd, _embedding_bwd}


def _written_roots(ins: _Instr) -> set[int]:
    """Root ids of the buffers that ``ins`` may write (conservative: all its slots for an unknown function)."""
    if ins.fn in (_acc_leaf, _acc_arg):
        return set()
    if isinstance(ins.fn, np.ufunc) or ins.fn in _LAST_ARG_OUT or type(ins.fn).__name__ == "ufunc":
        last = ins.args[-1] if ins.args else None
        return {last.root().id} if type(last) is _Slot else set()
    found: list[_Slot] = []
    _slots_in(ins.args, found)
    return {s.root().id for s in found}


def _index0(arr: Any, j: int) -> Any:
    return arr[j]


def _fuse_weight_grads(instrs: list[_Instr], sums: list[tuple], outputs: Any) -> list[_Instr]:
    """Replace each sum ``Σ_t a_tᵀ @ g_t`` that the backward builds step by step (T matmuls and T-1 adds into one
    weight's gradient) by one ``A_allᵀ @ G_all`` over (T·B, ·) stacks, run where the last add ran.

    The per-step operands become views into the stacks when they are whole C-ordered buffers that nothing
    writes between their matmul and the fused one (the producer then writes straight into the stack);
    otherwise (a constant initial state, a view of a bigger array) they are copied into it at their step."""
    contained = {id(ins) for _, adds, _ in sums for ins in adds[:-1]}
    groups = [s for s in sums if id(s[1][-1]) not in contained]
    if not groups:
        return instrs
    pos = {id(ins): i for i, ins in enumerate(instrs)}
    refs: list[set[int]] = []
    for ins in instrs:
        found: list[_Slot] = []
        _slots_in(ins.args, found)
        _slots_in(ins.keep, found)
        refs.append({s.root().id for s in found})
    writes = [_written_roots(ins) for ins in instrs]
    out_slots: list[_Slot] = []
    _slots_in(outputs, out_slots)
    out_roots = {s.root().id for s in out_slots}
    replace: dict[int, list[_Instr]] = {}  # instruction index -> what runs there instead
    aliased: set[int] = set()
    for terms, adds, total in groups:
        a0, g0 = terms[0][0], terms[0][1]
        if len(terms) < 2 or any(a.shape != a0.shape or g.shape != g0.shape or a.dtype != a0.dtype
                                 or g.dtype != a0.dtype or a.ndim != 2 or g.ndim != 2 for a, g, _ in terms):
            continue
        member = [pos[id(m)] for _, _, m in terms] + [pos[id(x)] for x in adds]
        if any(i in replace for i in member):
            continue
        last = max(pos[id(x)] for x in adds)
        mine = set(member)
        inner = {ins.args[-1].root().id for ins in (m for _, _, m in terms)} | {x.args[-1].root().id for x in adds}
        inner.discard(total.root().id)
        if inner & out_roots or total.root().id in out_roots:
            continue
        ok = True
        for i, r in enumerate(refs):  # the partial sums are read by the group only; the total not before its end
            if i not in mine and (r & inner or (i < last and total.root().id in r)):
                ok = False
                break
        if not ok:
            continue
        n, (b, h), k = len(terms), a0.shape, g0.shape[1]
        xp, dtype = a0.xp, a0.dtype
        stack_a = _Slot("buf", (n, b, h), dtype, xp)
        stack_g = _Slot("buf", (n, b, k), dtype, xp)
        new: dict[int, list[_Instr]] = {i: [] for i in member}
        for j, (a, g, m) in enumerate(terms):
            i = pos[id(m)]
            for x, stack in ((a, stack_a), (g, stack_g)):
                proto = stack.proto[j]
                fn = functools.partial(_index0, j=j)
                whole = x.kind == "buf" and x.perm == tuple(range(x.ndim)) and x.id not in aliased
                if whole and not any(x.id in writes[w] for w in range(i + 1, last + 1) if w not in mine):
                    x.kind, x.base, x.fn, x.proto = "view", stack, fn, proto  # the producer writes into the stack
                    aliased.add(x.id)
                else:
                    view = _Slot("view", proto.shape, proto.dtype, xp, proto=proto, base=stack, fn=fn)
                    new[i].append(_Instr(_copy_out, (x, view)))
        flat_a = _Slot("view", (h, n * b), dtype, xp, proto=stack_a.proto.reshape(n * b, h).T, base=stack_a,
                       fn=lambda arr, s=(n * b, h): arr.reshape(s).T)
        flat_g = _Slot("view", (n * b, k), dtype, xp, proto=stack_g.proto.reshape(n * b, k), base=stack_g,
                       fn=lambda arr, s=(n * b, k): arr.reshape(s))
        new[last].append(_Instr(_matmul(xp), (flat_a, flat_g, total)))
        replace.update(new)
    return [x for i, ins in enumerate(instrs) for x in replace.get(i, (ins,))]


class _Program:
    """A recorded call: instructions over slots, linked to arrays; ``run`` replays it on new arguments."""

    def __init__(self, rec: _Recorder, outputs: Any, static: tuple[int, ...], fuse_weight_grads: bool = False):
        self.instrs = rec.program
        if fuse_weight_grads:
            self.instrs = _fuse_weight_grads(rec.program, rec.wgrad_sums, outputs)
        self.arg_slots = rec.arg_slots
        self.arg_holder = rec.arg_holder
        self.params = list(rec.params.values())
        self.outputs = outputs
        self.static = static
        self.blocks: dict[int, Any] = {}  # root slot id -> array
        self.arg_bufs: list = []
        self._allocate()
        self._link()

    def _allocate(self) -> None:
        n = len(self.instrs)
        first: dict[int, int] = {}
        last: dict[int, int] = {}
        roots: dict[int, _Slot] = {}
        for i, ins in enumerate(self.instrs):
            used: list[_Slot] = []
            _slots_in(ins.args, used)
            _slots_in(ins.keep, used)
            for s in used:
                r = s.root()
                if r.kind != "buf":
                    continue
                roots[r.id] = r
                first.setdefault(r.id, i)
                last[r.id] = i
        out_slots: list[_Slot] = []
        _slots_in(self.outputs, out_slots)
        for s in out_slots:
            r = s.root()
            if r.kind == "buf":
                roots[r.id] = r
                first.setdefault(r.id, n)
                last[r.id] = n
        starts: dict[int, list[int]] = collections.defaultdict(list)
        ends: dict[int, list[int]] = collections.defaultdict(list)
        for rid in roots:
            starts[first[rid]].append(rid)
            ends[last[rid]].append(rid)
        # offsets in one arena per backend, planned like malloc over the known lifetimes: first fit among the
        # free intervals (coalesced when freed), the arena grows only when none fits; 64-byte aligned
        arenas: dict[Any, _Arena] = {}
        offsets: dict[int, tuple[Any, int]] = {}
        self.peak_bytes = 0
        live = 0
        for i in range(n + 1):
            for rid in starts.get(i, ()):
                r = roots[rid]
                nbytes = (int(np.prod(r.shape)) if r.shape else 1) * r.dtype.itemsize
                key = r.xp
                arena = arenas.setdefault(key, _Arena())
                offsets[rid] = (key, arena.alloc(nbytes))
                live += nbytes
                self.peak_bytes = max(self.peak_bytes, live)
            for rid in ends.get(i, ()):
                r = roots[rid]
                key, offset = offsets[rid]
                nbytes = (int(np.prod(r.shape)) if r.shape else 1) * r.dtype.itemsize
                arenas[key].free(offset, nbytes)
                live -= nbytes
        memory = {xp: xp.empty(max(arena.size, 64), dtype=np.uint8) for xp, arena in arenas.items()}
        for rid, (key, offset) in offsets.items():
            self.blocks[rid] = memory[key][offset:]
        self.total_bytes = sum(int(m.nbytes) for m in memory.values())
        # arguments are used in place when they have the recorded strides (no copy); otherwise copied into a
        # buffer of the recorded layout, made at the first such call
        self.arg_bufs = [None] * len(self.arg_slots)
        self.arg_copies: list = [None] * len(self.arg_slots)

    def _array(self, slot: _Slot, memo: dict) -> Any:
        a = memo.get(slot.id)
        if a is not None:
            return a
        kind = slot.kind
        if kind == "buf":
            a = _materialize(self.blocks[slot.id], slot)
        elif kind == "view":
            a = slot.fn(self._array(slot.base, memo))
        elif kind == "arg":
            a = self.arg_bufs[slot.ref]
            if a is None:  # linked before any call: a placeholder of the recorded layout
                a = self.arg_bufs[slot.ref] = self._arg_copy(slot.ref)
        elif kind == "param":
            a = slot.ref.array
        else:
            a = slot.ref
        memo[slot.id] = a
        return a

    def _resolve(self, obj: Any, memo: dict) -> Any:
        if type(obj) is _Slot:
            return self._array(obj, memo)
        if type(obj) in (tuple, list):
            return type(obj)(self._resolve(o, memo) for o in obj)
        if type(obj) is dict:
            return {k: self._resolve(v, memo) for k, v in obj.items()}
        return obj

    def _link(self) -> None:
        for s in self.params:
            t = s.ref
            a = t.array
            if a.shape != s.shape or a.dtype != s.dtype or get_array_module(a) is not s.xp:
                raise CaptureError(
                    f"capture: a parameter recorded with shape {s.shape} {s.dtype} now has shape {tuple(a.shape)} "
                    f"{a.dtype} on {t.device}; the recorded program cannot replay it. Call .reset() on the captured "
                    "function (or capture a new one) after changing a model's parameters")
        memo: dict[int, Any] = {}
        self.code = [(ins.fn, self._resolve(ins.args, memo)) for ins in self.instrs]
        self.param_links = [(s.ref, s.ref.array) for s in self.params]
        self.out_arrays = {s.id: self._array(s, memo) for s in _collect_slots(self.outputs)}
        if not hasattr(self, "arg_code"):  # the instructions that read an argument (rebound at each call)
            def uses_arg(obj: Any) -> bool:
                found: list[_Slot] = []
                _slots_in(obj, found)
                return any(f.root().kind == "arg" for f in found)

            self.arg_code = [i for i, ins in enumerate(self.instrs) if uses_arg(ins.args)]
            self.arg_outputs = [sl for sl in _collect_slots(self.outputs) if sl.root().kind == "arg"]

    def _arg_copy(self, index: int) -> Any:
        s = self.arg_slots[index]
        if self.arg_copies[index] is None:
            nbytes = (int(np.prod(s.shape)) if s.shape else 1) * s.dtype.itemsize
            self.arg_copies[index] = _materialize(s.xp.empty(max(nbytes, 1), np.uint8), s)
        return self.arg_copies[index]

    def _bind_args(self, arrays: list) -> None:
        changed = False
        for i, (new, slot) in enumerate(zip(arrays, self.arg_slots, strict=False)):
            if new is self.arg_bufs[i]:
                continue
            if new.strides != slot.proto.strides or get_array_module(new) is not slot.xp:
                buf = self._arg_copy(i)
                get_array_module(buf).copyto(buf, new)
                new = buf
            if new is not self.arg_bufs[i]:
                self.arg_bufs[i] = new
                changed = True
        if changed:
            memo: dict[int, Any] = {}
            for i in self.arg_code:
                ins = self.instrs[i]
                self.code[i] = (ins.fn, self._resolve(ins.args, memo))
            for sl in self.arg_outputs:
                self.out_arrays[sl.id] = self._array(sl, memo)

    def run(self, arrays: list, tensors: list) -> Any:
        self._bind_args(arrays)
        for t, a in self.param_links:
            if t.array is not a:
                self._link()
                break
        self.arg_holder.value = tensors
        for f, a in self.code:
            f(*a)
        self.arg_holder.value = ()
        return self._build(self.outputs, tensors)

    def _build(self, spec: Any, tensors: list) -> Any:
        kind = spec[0]
        if kind == "slot":
            a = self.out_arrays[spec[1].id]
            return Tensor._wrap(a[()] if spec[1].scalar else a.copy())
        if kind == "value":
            return spec[1]
        if kind == "tensor":
            return spec[1]
        if kind == "arg":
            return tensors[spec[1]]
        if kind == "grad":
            return spec[1].grad
        if kind == "copy":
            return Tensor._wrap(spec[1].copy())
        if kind == "seq":
            items = [self._build(s, tensors) for s in spec[2]]
            return spec[1](items) if spec[1] in (list, tuple) else spec[1](*items)
        if kind == "dict":
            return spec[1]((k, self._build(s, tensors)) for k, s in spec[2])
        raise AssertionError(kind)  # pragma: no cover


def _collect_slots(spec: Any) -> list[_Slot]:
    out: list[_Slot] = []

    def walk(s: Any) -> None:
        if s[0] == "slot":
            out.append(s[1])
        elif s[0] == "seq":
            for x in s[2]:
                walk(x)
        elif s[0] == "dict":
            for _, x in s[2]:
                walk(x)

    walk(spec)
    return out


def _output_spec(rec: _Recorder, obj: Any) -> Any:
    if isinstance(obj, Tensor):
        if id(obj) in rec.arg_tensors:
            return ("arg", rec.arg_tensors[id(obj)])
        ctx = obj._ctx
        if ctx is not None and getattr(ctx, "parents", None) is not None and not rec.backwards:
            raise CaptureError(
                "capture: the captured function returns a tensor with history but calls no backward() inside; a "
                "replay keeps no graph. Call backward() inside the function, or run it under tg.no_grad()")
        if id(obj) in rec.params:
            return ("tensor", obj)
        for t, _, _ in rec.param_snapshots:
            if t.grad is obj:
                return ("grad", t)
        for t, _, _ in rec.grad_snapshots.values():
            if t.grad is obj:
                return ("grad", t)
        known = rec.arrays.get(id(obj.array))
        if known is not None and known[1].kind in ("buf", "view"):
            return ("slot", known[1])
        if known is not None and known[1].kind == "param":
            return ("tensor", obj)
        return ("copy", obj.array)
    if type(obj) in (tuple, list):
        return ("seq", type(obj), [_output_spec(rec, o) for o in obj])
    if hasattr(obj, "_fields") and isinstance(obj, tuple):  # a namedtuple
        return ("seq", type(obj), [_output_spec(rec, o) for o in obj])
    if isinstance(obj, dict):
        return ("dict", type(obj), [(k, _output_spec(rec, v)) for k, v in obj.items()])
    return ("value", obj)


# --------------------------------------------------------------------------------------------------
# Signatures and the public callable
# --------------------------------------------------------------------------------------------------


def _signature(obj: Any, arrays: list, key: list) -> None:
    """Flatten the arguments: arrays/tensors go to ``arrays`` (their shape, dtype, device and layout to the
    key), everything else to the key by value (or by identity when unhashable)."""
    if isinstance(obj, Tensor):
        a = obj.array
        if obj._ctx is not None and _tm.is_grad_enabled():
            raise CaptureError("capture: an argument is a tensor with history (the output of ops outside the "
                               "captured function); pass it detached (.detach()), or compute it inside")
        arrays.append(("T", obj))
        key.append(("T", a.shape, a.dtype.str, type(a), obj.requires_grad, _perm_of(a.strides, a.shape)))
    elif _is_array(obj):
        arrays.append(("A", obj))
        key.append(("A", obj.shape, obj.dtype.str, type(obj), _perm_of(obj.strides, obj.shape)))
    elif type(obj) in (tuple, list):
        key.append((type(obj), len(obj)))
        for o in obj:
            _signature(o, arrays, key)
    elif type(obj) is dict:
        key.append((dict, tuple(obj)))
        for o in obj.values():
            _signature(o, arrays, key)
    else:
        try:
            hash(obj)
            key.append(("v", type(obj), obj))
        except TypeError:
            key.append(("id", id(obj)))


def _value_key(arrays: list, static: tuple[int, ...]) -> tuple:
    out = []
    for i in static:
        kind, obj = arrays[i]
        a = obj.array if kind == "T" else obj
        xp = get_array_module(a)
        out.append(a.tobytes() if xp is np else xp.asnumpy(a).tobytes())
    return tuple(out)


class Captured:
    """The callable that :func:`capture` returns (see there). ``eager(...)`` runs the function without
    capture; ``reset()`` forgets the recorded programs; ``stats`` counts recordings and replays."""

    def __init__(self, fn: Callable, cache_size: int = 8, fast_sigmoid: bool = False,
                 fuse_weight_grads: bool = False):
        if not callable(fn):
            raise TypeError(f"capture: expected a function, got {type(fn).__name__}")
        if cache_size < 1:
            raise ValueError(f"capture: cache_size must be >= 1, got {cache_size}")
        functools.update_wrapper(self, fn)
        self.fn, self.cache_size, self.fast_sigmoid = fn, cache_size, fast_sigmoid
        self.fuse_weight_grads = fuse_weight_grads
        self._programs: collections.OrderedDict = collections.OrderedDict()
        self._static: dict[tuple, tuple[int, ...]] = {}
        self._recordings: collections.Counter = collections.Counter()
        self._warned = False
        self.stats = {"recorded": 0, "replayed": 0}

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        return self if obj is None else functools.partial(self.__call__, obj)

    def eager(self, *args: Any, **kwargs: Any) -> Any:
        """Run the function eagerly (no recording, no replay)."""
        return self.fn(*args, **kwargs)

    def buffer_bytes(self) -> int:
        """Bytes of the buffers that the recorded programs hold between calls (inputs, intermediates)."""
        return sum(p.total_bytes for p in self._programs.values())

    def reset(self) -> None:
        """Forget every recorded program (the next call records again)."""
        self._programs.clear()
        self._static.clear()
        self._recordings.clear()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if _tm._recorder is not None or _tm._mode.anomaly:  # inside another recording, or debugging: eager
            return self.fn(*args, **kwargs)
        arrays: list = []
        key: list = [_tm.is_grad_enabled()]
        _signature(args, arrays, key)
        if kwargs:
            _signature(dict(sorted(kwargs.items())), arrays, key)
        skey = tuple(key)
        static = self._static.get(skey)
        if static is not None:
            full = (skey, _value_key(arrays, static))
            program = self._programs.get(full)
            if program is not None:
                self._programs.move_to_end(full)
                self.stats["replayed"] += 1
                tensors = [obj for _, obj in arrays]
                return program.run([obj.array if kind == "T" else obj for kind, obj in arrays], tensors)
        return self._record(skey, arrays, args, kwargs)

    def _record(self, skey: tuple, arrays: list, args: tuple, kwargs: dict) -> Any:
        rec = _Recorder(arrays, self.fast_sigmoid)
        _tm._recorder = rec
        try:
            result = self.fn(*args, **kwargs)
        finally:
            _tm._recorder = None
        rec.check_state()
        outputs = _output_spec(rec, result)
        static = tuple(i for i in range(len(arrays)) if not rec.arg_used[i] or rec.arg_read[i])
        static = tuple(sorted(set(static) | set(self._static.get(skey, ()))))
        program = _Program(rec, outputs, static, self.fuse_weight_grads)
        self._static[skey] = static
        self._programs[(skey, _value_key(arrays, static))] = program
        while len(self._programs) > self.cache_size:
            self._programs.popitem(last=False)
        self.stats["recorded"] += 1
        self._recordings[skey] += 1
        if self._recordings[skey] > self.cache_size and not self._warned:
            self._warned = True
            warnings.warn(
                f"capture: {getattr(self.fn, '__name__', 'the function')} was recorded {self._recordings[skey]} "
                f"times for arguments of one shape: argument(s) {list(static)} are read by value outside the ops "
                "(e.g. a list, or an array turned into a new tensor inside the function), so each new value "
                "records a new program. Pass such data as tensors used by ops, or keep it fixed", stacklevel=3)
        return result


def capture(fn: Callable | None = None, *, cache_size: int = 8, fast_sigmoid: bool = False,
            fuse_weight_grads: bool = False) -> Any:
    """Record ``fn``'s ops (forward and the ``backward()`` inside it) at its first call, replay them later.

    Usable as ``step = capture(fn)``, ``@capture`` or ``@capture(cache_size=4)``. See the module docstring
    (:mod:`tinygrad_rnn.capture`) for what is recorded, replayed and refused.

    Args:
        fn: the function; it takes tensors, arrays and other values, and returns tensors, numbers or
            (nested) tuples/lists/dicts of them.
        cache_size: programs kept (least recently used dropped); one per signature (shapes, dtypes, devices
            of the tensor/array arguments, values of the others).
        fast_sigmoid: opt-in accuracy trade (default False: bitwise equal to eager). The replay computes
            ``sigmoid(a)`` as ``0.5·tanh(0.5·a) + 0.5`` (4 backend calls instead of 7); its absolute error
            is at most 2⁻²⁴ ≈ 6e-8 in float32 and 2⁻⁵³ ≈ 1.1e-16 in float64 (half an ulp of 1; measured over
            [-100, 100] in tests/test_capture.py, where the default formula's error is 8.9e-8 and 1.7e-16), but
            the relative error in the far negative tail is 100 % (σ(-20) = 2e-9 comes out 0 in float32, and
            so does its gradient). Use it where a sigmoid is a gate.
        fuse_weight_grads: opt-in accuracy trade (default False: bitwise equal to eager). Where the backward
            sums a weight's gradient step by step (``Σ_t h_tᵀ @ g_t``: one small matmul and one add per time
            step, as for a recurrent layer's ``weight_hh``), the replay makes one ``(H, T·B) @ (T·B, K)``
            product where the last add ran, over stacks that the per-step states and gradients are written
            into (copied into when they are not whole buffers, e.g. a constant initial state). Only the
            summation order changes: each entry is a sum of n = T·B products, and any order's error is at most
            γ_n·Σ|h||g| (γ_n = n·u/(1 - n·u), u = 2⁻²⁴ in float32, 2⁻⁵³ in float64), so
            |fused - eager| ≤ 2·γ_n·Σ_t |h_t|ᵀ|g_t| elementwise (checked in tests/test_capture.py; observed
            at most 0.5 % of that bound: 1e-6 of the largest entry in float32, 2e-15 in float64, T·B up to
            4,000). It keeps the
            per-step gradients alive until that product (T·B·K more elements per weight at the peak). A weight
            used directly as a leaf (``h @ W`` rather than through one transpose) is accumulated into ``.grad``
            step by step and is not fused.

    Returns:
        A :class:`Captured` callable with the signature of ``fn``.

    Raises:
        CaptureError: at a recording, for what a replay cannot reproduce (the message says what to change);
            at a replay, for a parameter whose shape, dtype or device changed.
    """
    if fn is None:
        return lambda f: Captured(f, cache_size=cache_size, fast_sigmoid=fast_sigmoid,
                                  fuse_weight_grads=fuse_weight_grads)
    return Captured(fn, cache_size=cache_size, fast_sigmoid=fast_sigmoid, fuse_weight_grads=fuse_weight_grads)
