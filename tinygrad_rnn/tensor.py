"""The Tensor and its tape.

A :class:`Tensor` wraps one backend array (``numpy.ndarray`` on the CPU, ``cupy.ndarray`` on a GPU). Every
primitive op is a subclass of :class:`Function` (see :mod:`tinygrad_rnn.ops`): its ``forward`` works on raw
arrays and its ``backward`` turns the gradient of its output(s) into one gradient per input. When an op runs
with gradients enabled and some input requires a gradient, the op's Function object is kept as the output's
``_ctx``: following ``_ctx.parents`` from a tensor walks the tape backwards.

A Function's ``parents`` are its leaf inputs themselves (their ``.grad`` is where gradients end up) and, for
inputs with history, where their gradient goes: the Function that produced the input, or, for one output of
a multi-output op (``split``, ``unbind``), an :class:`_Edge` naming that Function and the output's index.
The graph therefore holds no input *arrays*: an intermediate array stays alive only while the user holds it
or an op saved it for its backward (``tanh`` its output, ``*`` its factors), as in a hand-written BPTT.

``Tensor.backward`` then

1. orders the reachable Functions topologically with an explicit stack (no recursion, so a 10,000-step
   sequence is fine),
2. calls each ``backward`` once, from the output towards the leaves,
3. sums each gradient back to its input's shape (:func:`sum_to`, the one place broadcasting is undone) and
   casts it to the input's dtype,
4. accumulates: a tensor used twice receives the sum of both gradients (never an alias of either),
5. releases each Function's saved arrays unless ``retain_graph=True``.

Tensor methods such as ``__add__`` delegate to :mod:`tinygrad_rnn.ops`, which is imported at the bottom of
this file: ``ops`` builds on ``Function`` and ``Tensor``, and ``Tensor`` calls into ``ops`` only at run time.
"""

from __future__ import annotations

import contextlib
import itertools
import operator
import os
import threading
import traceback
import weakref
from typing import Any, Iterator, Sequence

import numpy as np

from tinygrad_rnn.backend import (
    DeviceError,
    device_of,
    get_array_module,
    is_torch_tensor,
    normalize_device,
    to_device,
    to_numpy,
)

__all__ = [
    "Tensor",
    "Size",
    "Function",
    "OpError",
    "no_grad",
    "enable_grad",
    "is_grad_enabled",
    "detect_anomaly",
    "sum_to",
    "tensor",
    "zeros",
    "ones",
    "full",
    "randn",
    "rand",
    "arange",
    "zeros_like",
    "ones_like",
    "manual_seed",
    "default_rng",
]

DEFAULT_FLOAT = np.float32


class OpError(ValueError):
    """An op was given inputs it cannot work with (shapes, dtypes, devices, indices)."""


# --------------------------------------------------------------------------------------------------
# Modes (thread-local, switched by context managers)
# --------------------------------------------------------------------------------------------------


class _Mode(threading.local):
    grad_enabled = True
    anomaly = False


_mode = _Mode()


def is_grad_enabled() -> bool:
    """True when ops record on the tape (the default); False inside :func:`no_grad`."""
    return _mode.grad_enabled


@contextlib.contextmanager
def _set_grad_enabled(enabled: bool) -> Iterator[None]:
    previous = _mode.grad_enabled
    _mode.grad_enabled = enabled
    try:
        yield
    finally:
        _mode.grad_enabled = previous


def no_grad() -> contextlib.AbstractContextManager[None]:
    """Context manager in which no op is recorded (inference, optimizer updates)."""
    return _set_grad_enabled(False)


def enable_grad() -> contextlib.AbstractContextManager[None]:
    """Context manager that turns recording back on inside :func:`no_grad`."""
    return _set_grad_enabled(True)


@contextlib.contextmanager
def detect_anomaly() -> Iterator[None]:
    """Context manager that makes the first op producing NaN or Inf raise.

    Inside it, every op checks its forward output, and ``backward`` checks every gradient an op returns.
    The error names the op and the line of user code that created it. It costs a finiteness check per op
    and a stack capture per recorded op: use it to debug, not to train.

    Raises:
        FloatingPointError: naming the op, forward or backward, and where the op was created.
    """
    previous = _mode.anomaly
    _mode.anomaly = True
    try:
        yield
    finally:
        _mode.anomaly = previous


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _creation_site(stack: list[traceback.FrameSummary] | None) -> str:
    """The innermost frame of ``stack`` outside this package: where user code created the op."""
    if not stack:
        return "unknown location"
    user = [f for f in stack if not os.path.abspath(f.filename).startswith(_PACKAGE_DIR)]
    frame = user[-1] if user else stack[-1]
    return f"{frame.filename}:{frame.lineno} in {frame.name}: {frame.line}"


def _all_finite(array: Any) -> bool:
    xp = get_array_module(array)
    return array.dtype.kind != "f" or bool(xp.isfinite(array).all())


# --------------------------------------------------------------------------------------------------
# Function: one node of the tape
# --------------------------------------------------------------------------------------------------


class Function:
    """Base class of every primitive op.

    A subclass implements

    * ``forward(self, *arrays, **options)``: raw backend arrays in, one array (or a tuple of arrays for a
      multi-output op) out; it may save what backward needs as attributes of ``self``;
    * ``backward(self, *grad_outputs)``: the gradient of the loss with respect to each output in (``None``
      for an output of a multi-output op that received none), one gradient per input out (``None`` where
      an input needs none). A returned gradient may have a broadcast shape: the engine sums it back.

    ``apply`` runs ``forward`` and, when recording, keeps the Function as the output's ``_ctx``.
    """

    parents: tuple["Tensor | Function | _Edge", ...] | None
    n_outputs: int = 1
    # As an entry of a consumer's ``parents``, a single-output Function stands for its output (see _Edge):
    shape: tuple[int, ...]  # the output's shape and dtype, set when the op is recorded
    dtype: Any
    requires_grad = True
    _index = 0
    creation_stack: list[traceback.FrameSummary] | None = None
    retained: dict[int, Any] | None = None  # output index -> weak reference to a tensor that retain_grad()
    seq: int  # creation order of recorded ops: a topological order of the tape (see _topological_order)

    def forward(self, *arrays: Any, **options: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, *grad_outputs: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def name(self) -> str:
        return type(self).__name__.lower()

    @property
    def _ctx(self) -> "Function":
        """The Function that produced this edge's tensor: itself (see the ``parents`` note above)."""
        return self

    @classmethod
    def apply(cls, *inputs: "Tensor", **options: Any) -> Any:
        """Run the op on tensors; record it on the tape when needed.

        Returns:
            A Tensor, or a tuple of Tensors for a multi-output op.

        Raises:
            OpError: the backend rejected the inputs (shape, dtype or index); the message names the op
                and every input's shape, dtype and device.
        """
        if _recorder is not None:  # tinygrad_rnn.capture is recording this call (see capture.py)
            return _recorder.apply(cls, inputs, options)
        fn = cls()
        try:  # most ops take one or two inputs and no options: call forward without building a list (hot path)
            if options or len(inputs) > 2:
                out = fn.forward(*[t.array for t in inputs], **options)
            elif len(inputs) == 2:
                out = fn.forward(inputs[0].array, inputs[1].array)
            else:
                out = fn.forward(inputs[0].array)
        except (ValueError, IndexError, TypeError) as exc:
            raise _op_error(fn.name, inputs, exc) from exc
        mode = _mode
        record = False
        if mode.grad_enabled:
            for t in inputs:
                if t.requires_grad:
                    record = True
                    break
        if mode.anomaly:
            _check_forward(fn, out, record)
        if not record:
            if type(out) is tuple:
                return tuple(Tensor._wrap(o) for o in out)
            return Tensor._wrap(out)
        # the graph keeps leaf inputs themselves and, for the others, an edge to where their gradient goes
        # (not their arrays): the producing Function itself, or an _Edge for an output of a multi-output op
        if len(inputs) == 2:
            a, b = inputs
            fn.parents = (a if a._ctx is None else _edge(a), b if b._ctx is None else _edge(b))
        else:
            fn.parents = tuple([t if t._ctx is None else _edge(t) for t in inputs])
        fn.seq = next(_creation_counter)
        if type(out) is tuple:
            fn.n_outputs = len(out)
            if len(out) == 1:  # e.g. unbind of a length-1 axis: a single output after all
                fn.shape, fn.dtype = out[0].shape, out[0].dtype
            return tuple(Tensor._wrap(o, fn, i) for i, o in enumerate(out))
        fn.shape, fn.dtype = out.shape, out.dtype
        return Tensor._wrap(out, fn)

    def release(self) -> None:
        """Drop the inputs and saved arrays (after backward); a later backward through it raises."""
        n_outputs = self.n_outputs
        self.__dict__.clear()
        self.parents = None
        if n_outputs != 1:  # (1 is the class default)
            self.n_outputs = n_outputs


_creation_counter = itertools.count()
# While tinygrad_rnn.capture records a call, its recorder: Function.apply and the backward pass hand their
# work to it (it runs them eagerly and writes down what they did); reads of tensor values are reported.
_recorder: Any = None
_by_creation = operator.attrgetter("seq")
_new_object = object.__new__  # Tensor._wrap's constructor, without Tensor.__init__'s conversions


def _edge(t: "Tensor") -> "Function | _Edge":
    """Where the gradient of ``t`` (a tensor with history) goes: its Function, or an _Edge to one output."""
    ctx = t._ctx
    return ctx if ctx.n_outputs == 1 else _Edge(t)


class _Edge:
    """What a Function keeps of an input made by a multi-output op (split, unbind): where its gradient goes.

    That is the Function that produced the input (``_ctx``) and which of its outputs the input was
    (``_index``), plus the input's shape and dtype, to sum the gradient back and cast it. Not the input's
    array: see the module docstring. (For an input made by a single-output op, that op is the edge.)
    """

    __slots__ = ("_ctx", "_index", "shape", "dtype")
    requires_grad = True  # only tensors with history get an edge, and those always require grad

    def __init__(self, t: "Tensor"):
        self._ctx, self._index = t._ctx, t._index
        self.shape, self.dtype = t.array.shape, t.array.dtype


def _check_forward(fn: Function, out: Any, record: bool) -> None:
    """Anomaly mode: raise if the forward produced NaN or Inf; remember where a recorded op was created."""
    outs = out if type(out) is tuple else (out,)
    if not all(_all_finite(o) for o in outs):
        raise FloatingPointError(f"anomaly: the forward of '{fn.name}' produced NaN or Inf "
                                 f"(created at {_creation_site(traceback.extract_stack())})")
    if record:
        fn.creation_stack = traceback.extract_stack()[:-2]


def _describe(t: Any) -> str:
    if isinstance(t, Tensor):
        return f"shape {tuple(t.shape)} {t.dtype} on {t.device}"
    return repr(t)


def _op_error(name: str, inputs: Sequence["Tensor"], exc: BaseException) -> OpError:
    devices = {t.device for t in inputs}
    detail = "; ".join(f"input {i}: {_describe(t)}" for i, t in enumerate(inputs))
    if len(devices) > 1:
        return OpError(f"{name}: inputs are on different devices ({detail}); move them with .to(device)")
    return OpError(f"{name}: {exc} ({detail})")


# --------------------------------------------------------------------------------------------------
# Broadcasting, undone in one place
# --------------------------------------------------------------------------------------------------


def sum_to(grad: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``grad`` over the axes that broadcasting added or stretched, so it takes ``shape``.

    This is the adjoint of broadcasting ``shape`` to ``grad.shape``: leading axes are summed away and axes
    where ``shape`` has size 1 are summed with ``keepdims``.
    """
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, size in enumerate(shape) if size == 1 and grad.shape[lead + i] != 1
    )
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


# --------------------------------------------------------------------------------------------------
# Tensor
# --------------------------------------------------------------------------------------------------


class Size(tuple):
    """A tensor's shape, as returned by :meth:`Tensor.size`: a tuple of ints (``torch.Size``)."""

    __slots__ = ()

    def numel(self) -> int:
        """The number of elements of a tensor of this shape."""
        n = 1
        for s in self:
            n *= s
        return n

    def __repr__(self) -> str:
        return f"Size({list(self)})"


def _to_array(data: Any, dtype: Any, device: str | None) -> Any:
    """A new backend array (always a copy) from user data, with the default-dtype rules of DESIGN §3."""
    if is_torch_tensor(data):  # a CPU torch tensor
        data = data.detach().numpy()
    xp = get_array_module(data)
    if isinstance(data, (np.ndarray, np.generic)) or xp is not np:
        array = xp.array(data, dtype=dtype, copy=True)  # arrays keep their dtype
    else:
        array = np.array(data, dtype=dtype)
        if dtype is None and array.dtype.kind == "f":
            array = array.astype(DEFAULT_FLOAT)
        elif dtype is None and array.dtype.kind in "iu":
            array = array.astype(np.int64)
        elif array.dtype == object:
            raise TypeError(f"cannot make a tensor from {type(data).__name__} of mixed or non-numeric items")
    if device is not None:
        array = to_device(array, device)
    return array


def _comparable(value: Any) -> bool:
    """Whether ``==`` with ``value`` compares elementwise: tensors, numbers, arrays and (nested) lists."""
    return isinstance(value, (Tensor, int, float, bool, list, tuple, np.ndarray, np.generic)) or hasattr(
        value, "__array_namespace__")


class Tensor:
    """An n-dimensional array on a device, recording the ops applied to it.

    Args:
        data: a Python scalar or (nested) list, a NumPy or CuPy array, or another Tensor; always copied
            (as ``torch.tensor``), so later writes to the source do not reach the tape.
            Python floats become float32 (the default dtype), Python ints int64, bools bool; arrays keep
            their dtype.
        requires_grad: if True, ``backward`` fills ``.grad`` for this tensor. Only floating-point tensors
            can require a gradient.
        dtype: a NumPy dtype to cast to (optional).
        device: ``"cpu"`` (default for non-arrays), ``"cuda"`` or ``"cuda:N"``; an array stays on its device
            unless one is given.

    Attributes:
        array: the raw backend array (``numpy.ndarray`` or ``cupy.ndarray``) holding the values.
        data: a Tensor sharing ``array``, not tracked (PyTorch's ``.data``).
        grad: a Tensor with the accumulated gradient, or None.
        requires_grad: whether gradients flow to this tensor.

    Raises:
        DeviceError: unknown device, or CUDA requested without CuPy or a GPU.
        TypeError: ``requires_grad=True`` on a non-floating dtype.
    """

    __slots__ = ("array", "requires_grad", "grad", "_ctx", "_index", "__weakref__")
    __array_ufunc__ = None  # make `numpy_array * tensor` call Tensor.__rmul__

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None, device: str | None = None):
        if isinstance(data, Tensor):
            data = data.array
        self.array = _to_array(data, dtype, None if device is None else normalize_device(device))
        self.grad: Tensor | None = None
        self._ctx: Function | None = None
        self._index = 0
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _wrap(cls, data: Any, ctx: Function | None = None, index: int = 0) -> "Tensor":
        """Fast constructor for op outputs: no conversion, no checks."""
        t = _new_object(cls)
        if type(data) is not np.ndarray and isinstance(data, np.generic):
            data = np.asarray(data)  # NumPy turns 0-d results into scalars; a tensor always holds an array
        t.array = data
        t.grad = None
        t._ctx = ctx
        t._index = index
        t.requires_grad = ctx is not None
        return t

    # ---------------------------------------------------------------- attributes
    @property
    def data(self) -> "Tensor":
        """This tensor's values as a new Tensor that shares its memory and is not tracked (PyTorch's ``.data``).

        Writes through it (``p.data.add_(g, alpha=-lr)``) change this tensor without being recorded;
        assigning ``p.data = t`` makes this tensor use ``t``'s storage. The raw backend array is
        :attr:`array`.
        """
        return Tensor._wrap(self.array)

    @data.setter
    def data(self, value: Any) -> None:
        if isinstance(value, Tensor):
            value = value.array
        elif not hasattr(value, "__array_namespace__") and not isinstance(value, np.ndarray):
            raise TypeError(f"Tensor.data must be assigned a Tensor (or a backend array), got {type(value).__name__}")
        self.array = value

    @property
    def shape(self) -> tuple[int, ...]:
        return self.array.shape

    @property
    def ndim(self) -> int:
        return self.array.ndim

    def size(self, dim: int | None = None) -> Any:
        """PyTorch's ``size()``: the shape as a :class:`Size` (a tuple), or the length of axis ``dim`` (an int).

        Raises:
            IndexError: ``dim`` outside ``[-ndim, ndim)``.
        """
        shape = self.array.shape
        if dim is None:
            return Size(shape)
        n = len(shape)
        if not -n <= dim < n:
            raise IndexError(f"size(): dimension {dim} is out of range for a tensor with {n} dimension(s) "
                             f"(expected one in [{-n}, {n - 1}])")
        return shape[dim]

    def numel(self) -> int:
        """The number of elements (NumPy's ``size``)."""
        return int(self.array.size)

    nelement = numel

    def dim(self) -> int:
        """The number of dimensions (``ndim``)."""
        return self.array.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype

    @property
    def device(self) -> str:
        return device_of(self.array)

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __repr__(self) -> str:
        body = np.array2string(to_numpy(self.array), separator=", ", prefix="Tensor(")
        extra = ""
        if self.dtype != DEFAULT_FLOAT:
            extra += f", dtype={self.dtype}"
        if self.device != "cpu":
            extra += f", device='{self.device}'"
        if self.requires_grad:
            extra += ", requires_grad=True"
        return f"Tensor({body}{extra})"

    def __iter__(self) -> Iterator["Tensor"]:
        """The slices along the first axis (one ``unbind`` node on the tape)."""
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return iter(_ops.unbind(self, 0))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        """``numpy.asarray(tensor)``: the values as a NumPy array (copied from the GPU if needed)."""
        array = self.numpy()
        return array if dtype is None else array.astype(dtype)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        if self.array.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous")
        return bool(self.item())

    # ---------------------------------------------------------------- gradients
    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        """Set ``requires_grad`` in place (leaf tensors only); returns self.

        Raises:
            TypeError: for a non-floating dtype.
        """
        if requires_grad and self.array.dtype.kind not in "fc":
            raise TypeError(f"only floating-point tensors can require gradients, got dtype {self.dtype}; "
                            "convert first, e.g. t.float() or Tensor(data, dtype=np.float32)")
        if not requires_grad and self._ctx is not None:
            raise RuntimeError("requires_grad_(False) on a non-leaf tensor: use .detach() instead")
        self.requires_grad = requires_grad
        return self

    def retain_grad(self) -> "Tensor":
        """Keep ``.grad`` for this non-leaf tensor during ``backward`` (leaves always keep it).

        The Function that produced the tensor remembers it (weakly), and ``backward`` copies the gradient of
        that output into ``.grad`` once it is complete.
        """
        ctx = self._ctx
        if ctx is not None:
            if ctx.retained is None:
                ctx.retained = {}
            ctx.retained[self._index] = weakref.ref(self)
        return self

    def zero_grad(self) -> None:
        """Forget the accumulated gradient (``.grad = None``)."""
        self.grad = None

    def detach(self) -> "Tensor":
        """A tensor that shares the data but has no history (cuts the tape: truncated BPTT)."""
        return Tensor._wrap(self.array)

    def backward(self, grad: Any = None, retain_graph: bool = False) -> None:
        """Backpropagate from this tensor, accumulating into the ``.grad`` of every leaf that requires it.

        Args:
            grad: the gradient of some scalar with respect to this tensor (same shape); may be omitted for a
                tensor with one element (then it is 1).
            retain_graph: keep the saved arrays so ``backward`` can run through the graph again.

        Raises:
            RuntimeError: the tensor does not require grad; it is not scalar and ``grad`` is missing;
                or the graph was already released by an earlier ``backward``.
            FloatingPointError: in :func:`detect_anomaly` mode, when a gradient is NaN or Inf.
        """
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad and has no grad_fn")
        xp = get_array_module(self.array)
        if grad is None:
            if self.array.size != 1:
                raise RuntimeError(
                    f"backward() on a non-scalar tensor of shape {self.shape} needs `grad` of that shape "
                    "(the gradient of the final scalar with respect to this tensor)"
                )
            grad_array = xp.ones(self.shape, dtype=self.dtype)
        else:
            grad_array = grad.array if isinstance(grad, Tensor) else grad
            grad_array = xp.array(grad_array, dtype=self.dtype, copy=True)
            if grad_array.shape != self.shape:
                raise RuntimeError(f"backward(): grad has shape {grad_array.shape}, expected {self.shape}")
        _run_backward(self, grad_array, retain_graph)

    # ---------------------------------------------------------------- conversion
    def numpy(self) -> np.ndarray:
        """The values as a NumPy array (copied from the GPU if needed; shares memory on the CPU)."""
        if _recorder is not None:
            _recorder.read(self, "numpy()")
        return to_numpy(self.array)

    def tolist(self) -> Any:
        return self.numpy().tolist()

    def item(self) -> Any:
        """The value of a one-element tensor as a Python number."""
        if self.array.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        if _recorder is not None:
            _recorder.read(self, "item()")
        return self.array.reshape(()).item()

    def to(self, device: str) -> "Tensor":
        """This tensor on ``device`` (self when already there). The copy is differentiable."""
        device = normalize_device(device)
        if device == self.device:
            return self
        return _ops.ToDevice.apply(self, device=device)

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def cuda(self, index: int = 0) -> "Tensor":
        return self.to(f"cuda:{index}")

    def astype(self, dtype: Any) -> "Tensor":
        """A copy cast to ``dtype`` (differentiable between floating dtypes)."""
        return _ops.cast(self, dtype)

    def float(self) -> "Tensor":
        return self.astype(np.float32)

    def double(self) -> "Tensor":
        return self.astype(np.float64)

    # ---------------------------------------------------------------- arithmetic
    def __add__(self, other: Any) -> "Tensor":
        return _ops.add(self, other)

    def __radd__(self, other: Any) -> "Tensor":
        return _ops.add(other, self)

    def __sub__(self, other: Any) -> "Tensor":
        return _ops.sub(self, other)

    def __rsub__(self, other: Any) -> "Tensor":
        return _ops.sub(other, self)

    def __mul__(self, other: Any) -> "Tensor":
        return _ops.mul(self, other)

    def __rmul__(self, other: Any) -> "Tensor":
        return _ops.mul(other, self)

    def __truediv__(self, other: Any) -> "Tensor":
        return _ops.div(self, other)

    def __rtruediv__(self, other: Any) -> "Tensor":
        return _ops.div(other, self)

    def __pow__(self, other: Any) -> "Tensor":
        return _ops.pow(self, other)

    def __rpow__(self, other: Any) -> "Tensor":
        return _ops.pow(other, self)

    def __matmul__(self, other: Any) -> "Tensor":
        return _ops.matmul(self, other)

    def __rmatmul__(self, other: Any) -> "Tensor":
        return _ops.matmul(other, self)

    def __neg__(self) -> "Tensor":
        return _ops.neg(self)

    def __pos__(self) -> "Tensor":
        return self

    def __abs__(self) -> "Tensor":
        return _ops.abs(self)

    # comparisons: elementwise, boolean tensors without history (PyTorch's meaning of == and !=)
    def __eq__(self, other: Any) -> Any:  # type: ignore[override]
        if other is None or not _comparable(other):
            return NotImplemented if other is not None else False
        return _ops.compare(self, other, "eq")

    def __ne__(self, other: Any) -> Any:  # type: ignore[override]
        if other is None or not _comparable(other):
            return NotImplemented if other is not None else True
        return _ops.compare(self, other, "ne")

    __hash__ = object.__hash__  # identity, as torch: tensors stay usable as dict keys and set members

    def __lt__(self, other: Any) -> "Tensor":
        return _ops.compare(self, other, "lt")

    def __le__(self, other: Any) -> "Tensor":
        return _ops.compare(self, other, "le")

    def __gt__(self, other: Any) -> "Tensor":
        return _ops.compare(self, other, "gt")

    def __ge__(self, other: Any) -> "Tensor":
        return _ops.compare(self, other, "ge")

    def eq(self, other: Any) -> "Tensor":
        """Elementwise ``self == other`` as a boolean tensor (broadcasting); no gradient."""
        return _ops.compare(self, other, "eq")

    def ne(self, other: Any) -> "Tensor":
        """Elementwise ``self != other`` as a boolean tensor; no gradient."""
        return _ops.compare(self, other, "ne")

    def lt(self, other: Any) -> "Tensor":
        """Elementwise ``self < other`` as a boolean tensor; no gradient."""
        return _ops.compare(self, other, "lt")

    def le(self, other: Any) -> "Tensor":
        """Elementwise ``self <= other`` as a boolean tensor; no gradient."""
        return _ops.compare(self, other, "le")

    def gt(self, other: Any) -> "Tensor":
        """Elementwise ``self > other`` as a boolean tensor; no gradient."""
        return _ops.compare(self, other, "gt")

    def ge(self, other: Any) -> "Tensor":
        """Elementwise ``self >= other`` as a boolean tensor; no gradient."""
        return _ops.compare(self, other, "ge")

    def equal(self, other: Any) -> bool:
        """True when ``other`` has the same shape and the same values (``torch.equal``)."""
        return _ops.equal(self, other)

    def allclose(self, other: Any, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> bool:
        """True when ``|self - other| <= atol + rtol·|other|`` everywhere (``torch.allclose``)."""
        return _ops.allclose(self, other, rtol=rtol, atol=atol, equal_nan=equal_nan)

    def isclose(self, other: Any, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> "Tensor":
        """Elementwise ``|self - other| <= atol + rtol·|other|`` as a boolean tensor (``torch.isclose``)."""
        return _ops.isclose(self, other, rtol=rtol, atol=atol, equal_nan=equal_nan)

    # ---------------------------------------------------------------- elementwise
    def exp(self) -> "Tensor":
        return _ops.exp(self)

    def log(self) -> "Tensor":
        return _ops.log(self)

    def sqrt(self) -> "Tensor":
        return _ops.sqrt(self)

    def tanh(self) -> "Tensor":
        return _ops.tanh(self)

    def sigmoid(self) -> "Tensor":
        return _ops.sigmoid(self)

    def relu(self) -> "Tensor":
        return _ops.relu(self)

    def abs(self) -> "Tensor":
        return _ops.abs(self)

    def clip(self, min: Any = None, max: Any = None) -> "Tensor":  # noqa: A002 - PyTorch's names
        return _ops.clip(self, min, max)

    clamp = clip

    # ---------------------------------------------------------------- reductions
    def sum(self, axis: Any = None, keepdims: bool = False) -> "Tensor":
        return _ops.sum(self, axis, keepdims)

    def mean(self, axis: Any = None, keepdims: bool = False) -> "Tensor":
        return _ops.mean(self, axis, keepdims)

    def max(self, axis: Any = None, keepdims: bool = False) -> "Tensor":
        return _ops.max(self, axis, keepdims)

    def min(self, axis: Any = None, keepdims: bool = False) -> "Tensor":
        return _ops.min(self, axis, keepdims)

    def argmax(self, axis: int | None = None, keepdims: bool = False) -> "Tensor":
        return _ops.argmax(self, axis, keepdims)

    def argmin(self, axis: int | None = None, keepdims: bool = False) -> "Tensor":
        return _ops.argmin(self, axis, keepdims)

    # ---------------------------------------------------------------- shape
    def reshape(self, *shape: Any) -> "Tensor":
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _ops.reshape(self, shape)

    view = reshape

    def flatten(self) -> "Tensor":
        return _ops.reshape(self, (-1,))

    def transpose(self, axis0: int = -2, axis1: int = -1) -> "Tensor":
        """Swap two axes (PyTorch's ``transpose(dim0, dim1)``); for a 2-D tensor the default swaps both."""
        return _ops.transpose(self, axis0, axis1)

    def permute(self, *axes: Any) -> "Tensor":
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return _ops.permute(self, axes)

    @property
    def T(self) -> "Tensor":  # noqa: N802 - NumPy's name
        """All axes reversed (the matrix transpose for 2-D)."""
        return _ops.permute(self, tuple(range(self.ndim - 1, -1, -1)))

    def expand(self, *shape: Any) -> "Tensor":
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _ops.expand(self, shape)

    def broadcast_to(self, shape: Sequence[int]) -> "Tensor":
        return _ops.expand(self, tuple(shape))

    def squeeze(self, axis: Any = None) -> "Tensor":
        return _ops.squeeze(self, axis)

    def unsqueeze(self, axis: int) -> "Tensor":
        return _ops.unsqueeze(self, axis)

    def split(self, split_size_or_sections: Any, axis: int = 0) -> tuple["Tensor", ...]:
        return _ops.split(self, split_size_or_sections, axis)

    def chunk(self, chunks: int, axis: int = 0) -> tuple["Tensor", ...]:
        return _ops.chunk(self, chunks, axis)

    def unbind(self, axis: int = 0) -> tuple["Tensor", ...]:
        return _ops.unbind(self, axis)

    def __getitem__(self, index: Any) -> "Tensor":
        return _ops.getitem(self, index)

    def log_softmax(self, axis: int = -1) -> "Tensor":
        return _ops.log_softmax(self, axis)


# --------------------------------------------------------------------------------------------------
# The backward pass
# --------------------------------------------------------------------------------------------------

_RELEASED = (
    "backward through a graph whose saved arrays were already released by an earlier backward(); "
    "call the first backward(retain_graph=True) to run backward through the same graph twice"
)


def _topological_order(root: Function) -> list[Function]:
    """Functions reachable from ``root``, each after every Function that consumes its outputs.

    An op is always created after the ops that produced its inputs, so the reverse of creation order
    (``Function.seq``) is such an order: collect the reachable Functions with an explicit stack (no
    recursion, any depth), then sort them newest first.
    """
    found = {root}
    stack = [root]
    while stack:
        parents = stack.pop().parents
        if parents is None:
            raise RuntimeError(_RELEASED)
        for parent in parents:
            if isinstance(parent, Tensor):  # a leaf
                continue
            ctx = parent._ctx if type(parent) is _Edge else parent  # (a Function is its own edge)
            if ctx not in found:
                found.add(ctx)
                stack.append(ctx)
    return sorted(found, key=_by_creation, reverse=True)


def _accumulate_leaf(leaf: Tensor, grad: Any) -> None:
    if leaf.grad is None:
        # copy: the array may be shared with another input's gradient or the upstream gradient
        leaf.grad = Tensor._wrap(grad.copy())
    else:
        leaf.grad.array += grad


def _fill_retained(fn: Function, out_grad: Any) -> None:
    """Add the complete gradient of each retained output of ``fn`` into that tensor's ``.grad``."""
    grads = (out_grad,) if fn.n_outputs == 1 else out_grad
    for index, ref in fn.retained.items():
        t, g = ref(), grads[index]
        if t is not None and g is not None:
            _accumulate_leaf(t, g)


def _add(previous: Any, g: Any, owned: set[int]) -> Any:
    """``previous + g`` for a gradient that receives another term.

    A sum made here is held by nobody else until its Function's backward runs, so later terms are added into
    it in place (``owned`` holds the ids of such sums) instead of allocating one new array per use: a weight
    used at every one of T time steps gets one buffer, not T.
    """
    if previous is None:
        return g
    if id(previous) in owned:
        previous += g
        return previous
    total = previous + g
    owned.add(id(total))
    return total


def _run_backward(root: Tensor, grad: Any, retain_graph: bool) -> None:
    if _recorder is not None:  # tinygrad_rnn.capture is recording (see capture.py)
        return _recorder.backward(root, grad, retain_graph)
    root_fn = root._ctx
    if root_fn is None:  # a leaf
        _accumulate_leaf(root, grad)
        return
    order = _topological_order(root_fn)
    anomaly = _mode.anomaly
    # pending[fn]: the gradient of fn's output (single-output) or the list of its outputs' gradients
    pending: dict[Function, Any] = {}
    if root_fn.n_outputs == 1:
        pending[root_fn] = grad
    else:
        slots = [None] * root_fn.n_outputs
        slots[root._index] = grad
        pending[root_fn] = slots
    owned: set[int] = set()  # ids of the sums in `pending` that _add made (see there)
    with _set_grad_enabled(False):
        for fn in order:
            out_grad = pending.pop(fn, None)
            if owned:  # the sums are passed on from here, and may then be held elsewhere
                for g in out_grad if type(out_grad) is list else (out_grad,):
                    owned.discard(id(g))
            if out_grad is None:
                if not retain_graph:
                    fn.release()
                continue
            if fn.retained is not None:
                _fill_retained(fn, out_grad)
            if fn.n_outputs == 1:
                in_grads = fn.backward(out_grad)
            else:
                in_grads = fn.backward(*out_grad)
            if type(in_grads) is not tuple:
                in_grads = (in_grads,)
            for parent, g in zip(fn.parents, in_grads):
                if g is None or not parent.requires_grad:
                    continue
                if g.shape != parent.shape:
                    g = sum_to(g, parent.shape)
                if g.dtype is not parent.dtype and g.dtype != parent.dtype:
                    g = g.astype(parent.dtype)
                if anomaly and not _all_finite(g):
                    raise FloatingPointError(
                        f"anomaly: the backward of '{fn.name}' produced NaN or Inf "
                        f"(the op was created at {_creation_site(fn.creation_stack)})"
                    )
                if isinstance(parent, Tensor):  # a leaf
                    _accumulate_leaf(parent, g)
                elif type(parent) is _Edge:  # one output of a multi-output op
                    ctx = parent._ctx
                    slots = pending.get(ctx)
                    if slots is None:
                        slots = pending[ctx] = [None] * ctx.n_outputs
                    slots[parent._index] = _add(slots[parent._index], g, owned)
                else:  # a single-output op: its Function is the edge
                    previous = pending.get(parent)
                    pending[parent] = g if previous is None else _add(previous, g, owned)
            if not retain_graph:
                fn.release()


# --------------------------------------------------------------------------------------------------
# Creation helpers and random numbers
# --------------------------------------------------------------------------------------------------


class _Generators(threading.local):
    def __init__(self) -> None:
        self.seed: int | None = None
        self.by_device: dict[str, Any] = {}


_generators = _Generators()


def manual_seed(seed: int) -> None:
    """Seed the random generators of every device (as ``torch.manual_seed``)."""
    _generators.seed = int(seed)
    _generators.by_device.clear()


def default_rng(device: str = "cpu") -> Any:
    """The random generator of a device: a ``numpy.random.Generator`` (cpu) or a CuPy generator (cuda).

    Seeded from :func:`manual_seed` when one was set, otherwise from fresh OS entropy.
    """
    device = normalize_device(device)
    if _recorder is not None:
        _recorder.random(device)
    rng = _generators.by_device.get(device)
    if rng is None:
        seed = _generators.seed
        if device == "cpu":
            rng = np.random.default_rng(seed)
        else:
            import cupy  # only reached when normalize_device found a usable GPU

            with cupy.cuda.Device(int(device.split(":")[1])):
                rng = cupy.random.default_rng(seed)
        _generators.by_device[device] = rng
    return rng


def _shape_args(shape: tuple[Any, ...]) -> tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(int(s) for s in shape[0])
    return tuple(int(s) for s in shape)


def tensor(data: Any, requires_grad: bool = False, dtype: Any = None, device: str | None = None) -> Tensor:
    """Same as ``Tensor(data, requires_grad, dtype, device)``."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, device=device)


def full(shape: Sequence[int], fill_value: float, dtype: Any = DEFAULT_FLOAT, device: str = "cpu",
         requires_grad: bool = False) -> Tensor:
    """A tensor of ``shape`` filled with ``fill_value``."""
    device = normalize_device(device)
    data = get_array_module(device).full(tuple(shape), fill_value, dtype=dtype)
    return Tensor(data, requires_grad=requires_grad, device=device)


def zeros(*shape: Any, dtype: Any = DEFAULT_FLOAT, device: str = "cpu", requires_grad: bool = False) -> Tensor:
    """A tensor of zeros (float32 unless ``dtype`` says otherwise)."""
    return full(_shape_args(shape), 0, dtype=dtype, device=device, requires_grad=requires_grad)


def ones(*shape: Any, dtype: Any = DEFAULT_FLOAT, device: str = "cpu", requires_grad: bool = False) -> Tensor:
    """A tensor of ones (float32 unless ``dtype`` says otherwise)."""
    return full(_shape_args(shape), 1, dtype=dtype, device=device, requires_grad=requires_grad)


def zeros_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return zeros(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def ones_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return ones(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def arange(start: float, stop: float | None = None, step: float = 1, dtype: Any = None,
           device: str = "cpu") -> Tensor:
    """``numpy.arange`` as a tensor (int64 for integer arguments, float32 otherwise)."""
    if stop is None:
        start, stop = 0, start
    if dtype is None:
        is_int = all(float(v).is_integer() and not isinstance(v, float) for v in (start, stop, step))
        dtype = np.int64 if is_int else DEFAULT_FLOAT
    return Tensor(np.arange(start, stop, step, dtype=dtype), device=device)


def randn(*shape: Any, dtype: Any = DEFAULT_FLOAT, device: str = "cpu", requires_grad: bool = False) -> Tensor:
    """Standard normal samples from the device's generator (see :func:`manual_seed`)."""
    data = default_rng(device).standard_normal(_shape_args(shape), dtype=dtype)
    return Tensor(data, requires_grad=requires_grad)


def rand(*shape: Any, dtype: Any = DEFAULT_FLOAT, device: str = "cpu", requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1) from the device's generator (see :func:`manual_seed`)."""
    data = default_rng(device).random(_shape_args(shape), dtype=dtype)
    return Tensor(data, requires_grad=requires_grad)


from tinygrad_rnn import ops as _ops  # noqa: E402  (ops builds on Function and Tensor above)

__all__ += ["DeviceError"]
