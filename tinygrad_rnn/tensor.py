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

import builtins
import collections
import contextlib
import functools
import itertools
import operator
import os
import threading
import traceback
import weakref
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from tinygrad_rnn.backend import (
    DeviceError,
    device,
    device_of,
    get_array_module,
    is_torch_tensor,
    normalize_device,
    random_generator,
    to_device,
    to_numpy,
)

__all__ = [
    "Tensor", "Size", "Function", "OpError", "OpTypeError", "no_grad", "enable_grad", "set_grad_enabled",
    "inference_mode",
    "is_grad_enabled", "detect_anomaly", "sum_to", "tensor", "as_tensor", "from_numpy", "is_tensor", "numel",
    "zeros", "ones", "full", "empty", "eye", "zeros_like", "ones_like", "full_like", "empty_like", "arange",
    "linspace", "randn", "rand", "randint", "randn_like", "rand_like", "randperm", "manual_seed", "initial_seed",
    "default_rng", "get_default_dtype", "set_default_dtype", "float32", "float64", "float16", "int64", "int32",
    "int16", "int8", "uint8", "bool_", "FloatTensor", "DoubleTensor", "HalfTensor", "LongTensor", "IntTensor",
    "ByteTensor", "BoolTensor", "Generator",
]

DEFAULT_FLOAT = np.float32  # the initial default dtype (see get_default_dtype)
_CPU = device("cpu")


class OpError(ValueError):
    """An op was given inputs it cannot work with (shapes, dtypes, devices, indices)."""


class OpTypeError(OpError, TypeError):
    """An op was given an argument of the wrong kind (a float or string where a size or an axis goes, a
    non-numeric dtype): both an :class:`OpError` and a ``TypeError``, as PyTorch raises ``TypeError`` there."""


_NUMERIC_KINDS = "biuf"  # bool, signed and unsigned integers, floats: the dtypes a tensor may hold


def _check_numeric_dtype(name: str, dtype: np.dtype, what: str = "dtype") -> np.dtype:
    """``dtype`` itself when a tensor may hold it (bool, integer, floating).

    Raises:
        OpTypeError: complex, string, bytes, object, datetime or structured dtypes.
    """
    if dtype.kind not in _NUMERIC_KINDS:
        kind = "complex numbers are not supported" if dtype.kind == "c" else "not a numeric dtype"
        raise OpTypeError(f"{name}: {what} {dtype} ({kind}); a tensor holds bool, integer or floating-point "
                          "values")
    return dtype


def _size(name: str, value: Any, what: str = "size") -> int:
    """``value`` as a Python int: an int, a NumPy integer or an integer 0-d tensor (not a bool or a float).

    Raises:
        OpTypeError: anything else.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer, Tensor)):
        raise OpTypeError(f"{name}: {what} must be an int, got {value!r} ({type(value).__name__})")
    if isinstance(value, Tensor):
        if value.ndim != 0 or value.dtype.kind not in "iu":
            raise OpTypeError(f"{name}: {what} must be an int, got a tensor of shape {value.shape} "
                              f"and dtype {value.dtype}")
        return int(value.item())
    return int(value)


def _sizes(name: str, values: Any, minus_one: bool = False) -> tuple[int, ...]:
    """A shape: a sequence of non-negative ints (one -1 allowed when ``minus_one``).

    Raises:
        OpTypeError: not a sequence of ints (floats, strings, bools).
        OpError: a negative size (or a second -1, or -1 where it is not allowed).
    """
    for v in values:  # the common case first, cheaply: plain non-negative Python ints
        if type(v) is not int or v < 0:
            break
    else:
        if isinstance(values, (tuple, list)):
            return tuple(values)
    if not isinstance(values, (tuple, list)):
        raise OpTypeError(f"{name}: expected a sequence of ints, got {values!r}")
    out = tuple(_size(name, v) for v in values)
    for i, v in enumerate(out):
        if v < 0 and not (minus_one and v == -1 and out.index(-1) == i):
            allowed = " (one -1 is allowed, to be inferred)" if minus_one else ""
            raise OpError(f"{name}: sizes must be non-negative{allowed}, got {list(out)}")
    return out


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


class _GradMode:
    """A context manager that sets the grad mode inside it, usable as a decorator too (with or without
    parentheses: ``@no_grad()`` and ``@no_grad``)."""

    enabled = False

    def __new__(cls, func: Any = None) -> Any:
        self = super().__new__(cls)
        if callable(func):  # used bare as a decorator: @no_grad
            return self(func)
        return self

    def __init__(self, func: Any = None) -> None:
        self._previous: list[bool] = []

    def __enter__(self) -> None:
        self._previous.append(_mode.grad_enabled)
        _mode.grad_enabled = self.enabled

    def __exit__(self, *exc: Any) -> None:
        _mode.grad_enabled = self._previous.pop()

    def __call__(self, func: Any) -> Any:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with type(self)():
                return func(*args, **kwargs)

        return wrapper


class no_grad(_GradMode):  # noqa: N801 - PyTorch's name
    """Context manager (or decorator) in which no op is recorded (inference, optimizer updates).

    The mode is per thread, as in PyTorch.
    """

    enabled = False


class enable_grad(_GradMode):  # noqa: N801 - PyTorch's name
    """Context manager (or decorator) that turns recording back on inside :class:`no_grad`."""

    enabled = True


inference_mode = no_grad  # (PyTorch's inference_mode is no_grad plus optimisations this project lacks)


class set_grad_enabled:  # noqa: N801 - PyTorch's name
    """``set_grad_enabled(mode)``: switch recording on or off now (a function call), or, used as a context
    manager, only inside the ``with`` block (the previous mode comes back at its end)."""

    def __init__(self, mode: bool) -> None:
        self._previous = _mode.grad_enabled
        _mode.grad_enabled = bool(mode)

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        _mode.grad_enabled = self._previous


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

    The backward contract, checked by the engine (``RuntimeError`` naming the op otherwise):

    * before ``backward`` runs, ``self.needs_input_grad`` is a tuple of bools, one per input (PyTorch's
      ``ctx.needs_input_grad``): an op computes the gradients asked for and returns ``None`` for the others;
      an op never reads the graph (``parents``);
    * ``backward`` returns exactly one gradient (a backend array, or ``None``) per input; a single input's
      may be returned bare, several as a tuple;
    * each gradient has its input's shape or a shape that input broadcasts to (the engine sums it back with
      :func:`sum_to`); the engine casts it to the input's dtype.
    """

    parents: tuple[Any, ...]  # each a leaf Tensor, a Function or an _Edge; None once released (see release)
    needs_input_grad: tuple[bool, ...]  # one per input, set when the op is recorded (before any backward)
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
    def _ctx(self) -> Function:
        """The Function that produced this edge's tensor: itself (see the ``parents`` note above)."""
        return self

    @classmethod
    def apply(cls, *inputs: Tensor, **options: Any) -> Any:
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
                out = fn.forward(*[t._array for t in inputs], **options)
            elif len(inputs) == 2:
                out = fn.forward(inputs[0]._array, inputs[1]._array)
            else:
                out = fn.forward(inputs[0]._array)
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
            fn.needs_input_grad = (a.requires_grad, b.requires_grad)
        elif len(inputs) == 1:
            fn.parents = (inputs[0] if inputs[0]._ctx is None else _edge(inputs[0]),)
            fn.needs_input_grad = _NEEDS_ONE  # recorded: the one input requires grad
        else:
            fn.parents = tuple([t if t._ctx is None else _edge(t) for t in inputs])
            fn.needs_input_grad = tuple([t.requires_grad for t in inputs])
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
        self.parents = None  # type: ignore[assignment]  # released: backward through it raises (_RELEASED)
        if n_outputs != 1:  # (1 is the class default)
            self.n_outputs = n_outputs


_creation_counter = itertools.count()
_NEEDS_ONE = (True,)
# While tinygrad_rnn.capture records a call, its recorder: Function.apply and the backward pass hand their
# work to it (it runs them eagerly and writes down what they did); reads of tensor values are reported.
_recorder: Any = None
_by_creation = operator.attrgetter("seq")
_new_object = object.__new__  # Tensor._wrap's constructor, without Tensor.__init__'s conversions


def _edge(t: Tensor) -> Function | _Edge:
    """Where the gradient of ``t`` (a tensor with history) goes: its Function, or an _Edge to one output."""
    ctx: Any = t._ctx
    return ctx if ctx.n_outputs == 1 else _Edge(t)


class _Edge:
    """What a Function keeps of an input made by a multi-output op (split, unbind): where its gradient goes.

    That is the Function that produced the input (``_ctx``) and which of its outputs the input was
    (``_index``), plus the input's shape and dtype, to sum the gradient back and cast it. Not the input's
    array: see the module docstring. (For an input made by a single-output op, that op is the edge.)
    """

    __slots__ = ("_ctx", "_index", "shape", "dtype")
    _ctx: Any  # the Function
    _index: int
    shape: tuple[int, ...]
    dtype: Any
    requires_grad = True  # only tensors with history get an edge, and those always require grad

    def __init__(self, t: Tensor):
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


def _op_error(name: str, inputs: Sequence[Tensor], exc: BaseException) -> OpError:
    devices = {t.device for t in inputs}
    detail = "; ".join(f"input {i}: {_describe(t)}" for i, t in enumerate(inputs))
    if len(devices) > 1:
        return OpError(f"{name}: inputs are on different devices ({detail}); move them with .to(device)")
    return OpError(f"{name}: {exc} ({detail})")


# --------------------------------------------------------------------------------------------------
# Broadcasting, undone in one place
# --------------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------------
# In-place changes: a version counter per storage (as PyTorch's)
# --------------------------------------------------------------------------------------------------
# Recording an op costs nothing extra: the op's creation number (Function.seq) says when it saved its arrays.
# An in-place change draws a number from the same counter and writes it down for the changed storage (the
# base array at the root of a view chain). backward() then checks, only for an op created before the last
# in-place change, whether one of the arrays it saved belongs to a storage changed after its creation.


class _Inplace:
    last = -1  # the creation number of the latest in-place change


_inplace = _Inplace()
# id(base array) -> [weak reference to it, version, recent change numbers (newest last)]
_storages: dict[int, list[Any]] = {}
_RECENT = 64


def _storage_of(array: Any) -> Any:
    """The array that owns ``array``'s memory (the root of its chain of views)."""
    base = array.base
    while base is not None and hasattr(base, "base") and hasattr(base, "shape"):
        array, base = base, base.base
    return array


def _forget(key: int) -> Any:
    return lambda _ref: _storages.pop(key, None)


def _bump(array: Any) -> None:
    """Record an in-place change of ``array``'s storage (version + 1)."""
    if _recorder is not None:  # tinygrad_rnn.capture: a write behind the tape while recording
        _recorder.inplace(array)
    base = _storage_of(array)
    key = id(base)
    entry = _storages.get(key)
    if entry is None or entry[0]() is not base:
        try:
            ref = weakref.ref(base, _forget(key))
        except TypeError:  # an array type without weak references: not tracked
            return
        entry = _storages[key] = [ref, 0, collections.deque(maxlen=_RECENT)]
    seq = next(_creation_counter)
    entry[1] += 1
    entry[2].append(seq)
    _inplace.last = seq


def _saved_arrays(fn: Function) -> Iterator[Any]:
    for value in fn.__dict__.values():
        if hasattr(value, "__array_namespace__") or type(value) is np.ndarray:
            yield value
        elif type(value) is tuple:
            for item in value:
                if hasattr(item, "__array_namespace__") or type(item) is np.ndarray:
                    yield item


def _check_saved(fn: Function) -> None:
    """Raise if an array ``fn`` saved for its backward was changed in place after ``fn`` was recorded."""
    for array in _saved_arrays(fn):
        base = _storage_of(array)
        entry = _storages.get(id(base))
        if entry is None or entry[0]() is not base or entry[2][-1] < fn.seq:
            continue
        later = sum(1 for seq in entry[2] if seq > fn.seq)
        before = entry[1] - later
        raise RuntimeError(
            f"{fn.name}: an input saved for backward was modified in place (version {before} -> {entry[1]}) "
            f"after the op was recorded, so its gradient would use the new values. Change it only after "
            f"backward() (e.g. call optimizer.step() after loss.backward()), or compute with a copy (.clone())."
        )


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


# --------------------------------------------------------------------------------------------------
# dtypes: PyTorch's names for NumPy dtype objects, and the default floating dtype
# --------------------------------------------------------------------------------------------------

float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
float16 = np.dtype(np.float16)
int64 = np.dtype(np.int64)
int32 = np.dtype(np.int32)
int16 = np.dtype(np.int16)
int8 = np.dtype(np.int8)
uint8 = np.dtype(np.uint8)
bool_ = np.dtype(np.bool_)
# (the package also exports float=float32, double=float64, half=float16, long=int64, int=int32, bool=bool_)

_TYPE_NAMES: dict[np.dtype, str] = {float32: "FloatTensor", float64: "DoubleTensor", float16: "HalfTensor",
                                     int64: "LongTensor", int32: "IntTensor", int16: "ShortTensor", int8: "CharTensor",
                                     uint8: "ByteTensor", bool_: "BoolTensor"}
_TYPE_BY_NAME: dict[str, np.dtype] = {name: dtype for dtype, name in _TYPE_NAMES.items()}


class _Defaults:
    dtype: np.dtype = float32  # process-wide, as torch.set_default_dtype


_defaults = _Defaults()


def get_default_dtype() -> np.dtype:
    """The dtype of tensors made from Python floats and of the float creation functions (float32 at start)."""
    return _defaults.dtype


def set_default_dtype(dtype: Any) -> None:
    """Set the default floating dtype (``torch.set_default_dtype``): float32, float64 or float16.

    Raises:
        TypeError: a non-floating dtype.
    """
    dtype = _as_dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"set_default_dtype: only floating dtypes can be the default, got {dtype}")
    _defaults.dtype = dtype


def _is_dtype(value: Any) -> bool:
    if isinstance(value, (np.dtype, _TensorType)) or value in (float, int, bool):
        return True
    return isinstance(value, type) and issubclass(value, np.generic)


def _as_dtype(value: Any) -> np.dtype:
    """A NumPy dtype from a dtype, a NumPy scalar type, a tensor type (``LongTensor``) or its name
    (``'torch.LongTensor'``), or a Python type (``float`` is the default dtype, ``int`` int64).

    Raises:
        TypeError: anything else.
    """
    if isinstance(value, np.dtype):
        return _check_numeric_dtype("dtype", value)
    if isinstance(value, _TensorType):
        return value.dtype
    if value is float:
        return _defaults.dtype
    if value is int:
        return int64
    if isinstance(value, str) and value.rsplit(".", 1)[-1] in _TYPE_BY_NAME:
        return _TYPE_BY_NAME[value.rsplit(".", 1)[-1]]
    try:
        dtype = np.dtype(value)
    except TypeError:
        raise OpTypeError(f"dtype: not a dtype: {value!r}") from None
    return _check_numeric_dtype("dtype", dtype)


class _TensorType(type):
    """The metaclass of :class:`FloatTensor` and friends: ``isinstance(t, LongTensor)`` checks the dtype."""

    dtype: np.dtype

    def __instancecheck__(cls, instance: Any) -> bool:
        return isinstance(instance, Tensor) and instance.dtype == cls.dtype

    def __repr__(cls) -> str:
        return f"<class 'tinygrad_rnn.{cls.__name__}'>"


def _legacy_constructor(cls: Any, *args: Any, device: Any = None) -> Tensor:
    if not args:
        return Tensor(np.zeros(0, dtype=cls.dtype), device=device)
    if all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in args):
        return zeros(*args, dtype=cls.dtype, device=device)  # PyTorch leaves the values undefined
    if len(args) == 1 and isinstance(args[0], tuple) and all(isinstance(a, int) for a in args[0]) and args[0]:
        return zeros(args[0], dtype=cls.dtype, device=device)
    if len(args) > 1:
        raise TypeError(f"{cls.__name__}() takes sizes or one sequence of values")
    return Tensor(args[0], dtype=cls.dtype, device=device)


class FloatTensor(metaclass=_TensorType):
    """``FloatTensor(data)``: a float32 tensor of ``data``; ``FloatTensor(2, 3)``: one of that shape (zeros)."""

    dtype: np.dtype = float32

    def __new__(cls, *args: Any, device: Any = None) -> Tensor:  # type: ignore[misc]
        return _legacy_constructor(cls, *args, device=device)


class DoubleTensor(FloatTensor):
    """A float64 tensor of data, or of a shape (see :class:`FloatTensor`)."""

    dtype = float64


class HalfTensor(FloatTensor):
    """A float16 tensor of data, or of a shape (see :class:`FloatTensor`)."""

    dtype = float16


class LongTensor(FloatTensor):
    """An int64 tensor of data, or of a shape (see :class:`FloatTensor`)."""

    dtype = int64


class IntTensor(FloatTensor):
    """An int32 tensor of data, or of a shape (see :class:`FloatTensor`)."""

    dtype = int32


class ByteTensor(FloatTensor):
    """A uint8 tensor of data, or of a shape (see :class:`FloatTensor`)."""

    dtype = uint8


class BoolTensor(FloatTensor):
    """A bool tensor of data, or of a shape (see :class:`FloatTensor`)."""

    dtype = bool_


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


def _legacy_sizes(data: Any, requires_grad: Any, dtype: Any, device: Any, more: tuple) -> tuple[int, ...] | None:
    """The shape when ``Tensor(...)`` got two or more plain ints positionally (``torch.Tensor(4, 3)``), else None.
    Ints land in ``data``, ``requires_grad``, then ``dtype`` and ``device``: a bool is never a size."""
    def plain(x: Any) -> bool:
        return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))

    if not (plain(data) and plain(requires_grad)):
        if more:
            raise TypeError(f"Tensor() takes data, requires_grad, dtype and device; got {len(more)} more "
                            "positional arguments")
        return None
    sizes = [data, requires_grad]
    for extra in (dtype, device):
        if extra is None:
            break
        if not plain(extra):
            raise TypeError(f"Tensor(*sizes): sizes must be ints, got {extra!r}; use tg.zeros(*sizes, dtype=...)")
        sizes.append(extra)
    if more and len(sizes) < 4:
        raise TypeError("Tensor(*sizes): sizes must be ints")
    for extra in more:
        if not plain(extra):
            raise TypeError(f"Tensor(*sizes): sizes must be ints, got {extra!r}")
    sizes += list(more)
    if any(int(n) < 0 for n in sizes):
        raise ValueError(f"Tensor(*sizes): negative size in {tuple(int(n) for n in sizes)}")
    return tuple(int(n) for n in sizes)


def _to_array(data: Any, dtype: Any, device: str | None) -> Any:
    """A new backend array (always a copy) from user data, with the default-dtype rules of DESIGN §3.

    Raises:
        OpTypeError: strings, bytes, objects, datetimes, complex numbers, or a non-numeric ``dtype``.
        OpError: a ragged nested sequence; a Python int outside int64's range.
    """
    if is_torch_tensor(data):  # a CPU torch tensor
        data = data.detach().numpy()
    if dtype is not None:
        dtype = _as_dtype(dtype)
    if isinstance(data, (str, bytes, bytearray)):
        raise OpTypeError(f"tensor: cannot make a tensor from {type(data).__name__} {_short(data)}; "
                          "a tensor holds bool, integer or floating-point values")
    xp = get_array_module(data)
    if isinstance(data, (np.ndarray, np.generic)) or xp is not np:
        _check_numeric_dtype("tensor", data.dtype, "data of dtype")
        array = xp.array(data, dtype=dtype, copy=True)  # arrays keep their dtype
    else:
        if isinstance(data, (str, bytes, bytearray)):
            raise OpTypeError(f"tensor: cannot make a tensor from {type(data).__name__} {data!r}; "
                              "a tensor holds bool, integer or floating-point values")
        try:
            array = np.array(data)  # NumPy's own dtype first, so that strings are never parsed as numbers
        except OverflowError:
            raise OpError(f"tensor: a Python int outside int64's range [-2**63, 2**63) in {_short(data)}") from None
        except ValueError as exc:
            if "inhomogeneous" in str(exc) or "sequence" in str(exc):
                raise OpError(f"tensor: ragged nested sequence {_short(data)}: every row must have the same "
                              "length") from None
            raise OpError(f"tensor: cannot convert {_short(data)} to dtype {dtype}: {exc}") from None
        except TypeError as exc:
            raise OpTypeError(f"tensor: cannot convert {_short(data)}: {exc}") from None
        if array.dtype == object or array.dtype.kind == "f":  # None, big ints (mixed with floats or not)
            _check_leaves(data, dtype, array.dtype == object)
        if dtype is not None and array.dtype.kind in _NUMERIC_KINDS + "O":
            try:
                array = np.array(data, dtype=dtype)
            except (ValueError, TypeError, OverflowError) as exc:
                raise OpError(f"tensor: cannot convert {_short(data)} to dtype {dtype}: {exc}") from None
        if array.dtype == object:
            big = any(isinstance(v, int) and not -2**63 <= v < 2**63 for v in _flat_items(data))
            what = ("a Python int outside int64's range [-2**63, 2**63)" if big
                    else "mixed, ragged or non-numeric items")
            raise OpTypeError(f"tensor: cannot make a tensor from {type(data).__name__} {_short(data)}: {what}")
        if dtype is None and array.dtype == np.uint64:  # Python ints >= 2**63: NumPy picks uint64
            raise OpError(f"tensor: a Python int outside int64's range [-2**63, 2**63) in {_short(data)}")
        _check_numeric_dtype("tensor", array.dtype, "data of dtype")
        if dtype is None and array.dtype.kind == "f":
            array = array.astype(_defaults.dtype)
        elif dtype is None and array.dtype.kind in "iu":
            array = array.astype(np.int64)
    if device is not None:
        array = to_device(array, device)
    return array


def _check_leaves(data: Any, dtype: Any, mixed: bool) -> None:
    """Refuse what NumPy would turn into NaN or a float silently: None, Python ints outside int64 unless a
    floating ``dtype`` asks for floats, and (``mixed``: NumPy made an object array) anything but numbers."""
    for v in _flat_items(data):
        if mixed and not isinstance(v, (bool, int, float, np.bool_, np.integer, np.floating, type(None))):
            raise OpTypeError(f"tensor: cannot make a tensor from {type(v).__name__} {_short(v)} "
                              f"(in {_short(data)}); a tensor holds bool, integer or floating-point values")
        if v is None:
            raise OpTypeError(f"tensor: None is not a number (in {_short(data)})")
        if type(v) is int and not -2**63 <= v < 2**63 and not (dtype is not None and dtype.kind == "f"):
            raise OpError(f"tensor: a Python int outside int64's range [-2**63, 2**63) in {_short(data)}")


def _short(data: Any) -> str:
    text = repr(data)
    return text if len(text) <= 60 else text[:57] + "..."


def _flat_items(data: Any) -> Iterator[Any]:
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(item)
        else:
            yield item


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

    __slots__ = ("_array", "requires_grad", "grad", "_ctx", "_index", "__weakref__")
    __array_ufunc__ = None  # make `numpy_array * tensor` call Tensor.__rmul__

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None, device: str | None = None,
                 *more_sizes: int):
        sizes = _legacy_sizes(data, requires_grad, dtype, device, more_sizes)
        if sizes is not None:  # Tensor(4, 3): PyTorch's legacy sizes form, zeros in the default dtype
            data, requires_grad, device = np.zeros(sizes, dtype=get_default_dtype()), False, None
            dtype = None
        if isinstance(data, Tensor):
            data = data.array
        self._array = _to_array(data, dtype, None if device is None else normalize_device(device))
        self.grad: Tensor | None = None
        self._ctx: Function | None = None
        self._index = 0
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _wrap(cls, data: Any, ctx: Function | None = None, index: int = 0) -> Tensor:
        """Fast constructor for op outputs: no conversion, no checks."""
        t = _new_object(cls)
        if type(data) is not np.ndarray and isinstance(data, np.generic):
            data = np.asarray(data)  # NumPy turns 0-d results into scalars; a tensor always holds an array
        t._array = data
        t.grad = None
        t._ctx = ctx
        t._index = index
        t.requires_grad = ctx is not None
        return t

    def _requires(self, requires_grad: bool) -> Tensor:
        """``requires_grad_`` only when asked (creation helpers on a fresh leaf); returns self."""
        if requires_grad:
            self.requires_grad_(True)
        return self

    # ---------------------------------------------------------------- attributes
    def _set_array(self, value: Any) -> None:
        if value is self._array:  # `t.array -= x` writes in place, then assigns the same array back
            _bump(value)
        else:
            self._array = value

    array = property(operator.attrgetter("_array"), _set_array, doc="""The raw backend array (``numpy.ndarray``
        or ``cupy.ndarray``) holding the values: the storage the tensor reads and writes. Assigning a new array
        replaces the storage; an augmented assignment (``t.array -= x``) counts as an in-place change (see
        :attr:`_version`). Item writes through it (``t.array[i] = v``) are invisible to the version counter:
        use ``t[i] = v`` or the in-place methods (``add_``, ``copy_``...) on tensors.""")

    @property
    def _version(self) -> int:
        """How many in-place changes this tensor's storage has seen (PyTorch's version counter)."""
        entry = _storages.get(id(_storage_of(self._array)))
        return 0 if entry is None or entry[0]() is None else entry[1]

    @property
    def data(self) -> Tensor:
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
        self._array = value

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
    def device(self) -> device:
        """Where the values live, as a :class:`~tinygrad_rnn.backend.device` (a str: ``"cpu"``, ``"cuda:0"``)."""
        if type(self.array) is np.ndarray:
            return _CPU
        return device(device_of(self.array))

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
        if self.dtype != _defaults.dtype:
            extra += f", dtype={self.dtype}"
        if self.device != "cpu":
            extra += f", device='{self.device}'"
        if self.requires_grad:
            extra += ", requires_grad=True"
        return f"Tensor({body}{extra})"

    def __iter__(self) -> Iterator[Tensor]:
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
    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
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

    def retain_grad(self) -> Tensor:
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

    def detach(self) -> Tensor:
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
    def numpy(self, force: bool = False) -> np.ndarray:
        """The values as a NumPy array (copied from the GPU if needed; shares memory on the CPU)."""
        if _recorder is not None:
            _recorder.read(self, "numpy()")
        return to_numpy(self.array)

    def tolist(self) -> Any:
        """The values as (nested) Python lists of numbers (a number for a 0-d tensor)."""
        return self.numpy().tolist()

    def item(self) -> Any:
        """The value of a one-element tensor as a Python number.

        Raises:
            ValueError: the tensor has more or fewer than one element.
        """
        if self.array.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        if _recorder is not None:
            _recorder.read(self, "item()")
        return self.array.reshape(()).item()

    def to(self, *args: Any, **kwargs: Any) -> Tensor:
        """PyTorch's ``to``: ``to(device)``, ``to(dtype)``, ``to(device, dtype)``, ``to(other_tensor)`` (its
        device and dtype), or keywords ``device=``, ``dtype=``, ``copy=`` (``non_blocking=`` is accepted and
        ignored). Returns self when nothing changes (unless ``copy=True``); the copy is differentiable.

        Raises:
            TypeError: an argument that is neither a device, a dtype nor a tensor.
        """
        device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
        copy = kwargs.pop("copy", False)
        kwargs.pop("non_blocking", None)
        kwargs.pop("memory_format", None)
        if kwargs:
            raise TypeError(f"to(): unexpected keyword(s) {sorted(kwargs)}")
        for arg in args:
            if isinstance(arg, Tensor):
                device, dtype = arg.device, arg.dtype
            elif isinstance(arg, str):
                device = arg
            elif isinstance(arg, bool):
                copy = copy or arg  # to(dtype, non_blocking, copy) positional flags
            elif _is_dtype(arg):
                dtype = arg
            else:
                raise TypeError(f"to(): expected a device, a dtype or a tensor, got {arg!r}")
        out = self
        if device is not None and normalize_device(device) != device_of(self.array):
            out = _ops.ToDevice.apply(out, device=normalize_device(device))
        if dtype is not None:
            out = _ops.cast(out, _as_dtype(dtype))
        if copy and out is self:
            out = _ops.clone(self)
        return out

    def cpu(self) -> Tensor:
        """This tensor on the CPU (self when already there)."""
        return self.to("cpu")

    def cuda(self, device: Any = None) -> Tensor:
        """This tensor on a CUDA GPU (``device``: an index, ``"cuda:N"`` or a :class:`device`; default 0)."""
        if device is None:
            device = "cuda:0"
        elif isinstance(device, int):
            device = f"cuda:{device}"
        return self.to(device)

    @property
    def is_cuda(self) -> bool:
        return type(self.array) is not np.ndarray

    def astype(self, dtype: Any) -> Tensor:
        """A copy cast to ``dtype`` (differentiable between floating dtypes); self when it has it."""
        return _ops.cast(self, _as_dtype(dtype))

    def type(self, dtype: Any = None) -> Any:
        """With no argument, the type name (``'tinygrad_rnn.FloatTensor'``...); otherwise :meth:`astype` to
        ``dtype`` (a dtype, a tensor type such as :class:`LongTensor`, or its name)."""
        if dtype is None:
            return f"tinygrad_rnn.{_TYPE_NAMES.get(np.dtype(self.dtype), str(self.dtype))}"
        return self.astype(dtype)

    def float(self) -> Tensor:
        """Cast to float32."""
        return self.astype(np.float32)

    def double(self) -> Tensor:
        """Cast to float64."""
        return self.astype(np.float64)

    def half(self) -> Tensor:
        """Cast to float16."""
        return self.astype(np.float16)

    def long(self) -> Tensor:
        """Cast to int64 (no gradient flows through an integer result)."""
        return self.astype(np.int64)

    def int(self) -> Tensor:
        """Cast to int32 (no gradient flows through an integer result)."""
        return self.astype(np.int32)

    def bool(self) -> Tensor:
        """Cast to bool (no gradient flows through it)."""
        return self.astype(np.bool_)

    def is_floating_point(self) -> builtins.bool:
        """True for float16/32/64."""
        return self.array.dtype.kind == "f"

    def element_size(self) -> builtins.int:
        """Bytes per element."""
        return int(self.array.dtype.itemsize)

    def new_tensor(self, data: Any, dtype: Any = None, device: Any = None,
                   requires_grad: builtins.bool = False) -> Tensor:
        """A new tensor from ``data`` (copied), with this tensor's dtype and device unless given."""
        return Tensor(data, dtype=self.dtype if dtype is None else _as_dtype(dtype),
                      device=self.device if device is None else device, requires_grad=requires_grad)

    def new_full(self, size: Any, fill_value: Any, dtype: Any = None, device: Any = None,
                 requires_grad: builtins.bool = False) -> Tensor:
        """A tensor of ``size`` filled with ``fill_value``, with this tensor's dtype and device unless given."""
        return full(_shape_args((size,)), fill_value, dtype=self.dtype if dtype is None else dtype,
                    device=self.device if device is None else device, requires_grad=requires_grad)

    def new_zeros(self, *size: Any, dtype: Any = None, device: Any = None,
                  requires_grad: builtins.bool = False) -> Tensor:
        """Zeros of ``size``, with this tensor's dtype and device unless given."""
        return self.new_full(_shape_args(size), 0, dtype=dtype, device=device, requires_grad=requires_grad)

    def new_ones(self, *size: Any, dtype: Any = None, device: Any = None,
                  requires_grad: builtins.bool = False) -> Tensor:
        """Ones of ``size``, with this tensor's dtype and device unless given."""
        return self.new_full(_shape_args(size), 1, dtype=dtype, device=device, requires_grad=requires_grad)

    def new_empty(self, *size: Any, dtype: Any = None, device: Any = None,
                  requires_grad: builtins.bool = False) -> Tensor:
        """Like :meth:`new_zeros` (the values are zeros here, where PyTorch leaves them undefined)."""
        return self.new_zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)

    # ---------------------------------------------------------------- arithmetic
    def __add__(self, other: Any) -> Tensor:
        return _ops.add(self, other)

    def __radd__(self, other: Any) -> Tensor:
        return _ops.add(other, self)

    def __sub__(self, other: Any) -> Tensor:
        return _ops.sub(self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return _ops.sub(other, self)

    def __mul__(self, other: Any) -> Tensor:
        return _ops.mul(self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return _ops.mul(other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return _ops.div(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return _ops.div(other, self)

    def __pow__(self, other: Any) -> Tensor:
        return _ops.pow(self, other)

    def __rpow__(self, other: Any) -> Tensor:
        return _ops.pow(other, self)

    def __matmul__(self, other: Any) -> Tensor:
        return _ops.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return _ops.matmul(other, self)

    def __neg__(self) -> Tensor:
        return _ops.neg(self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return _ops.abs(self)

    # comparisons: elementwise, boolean tensors without history (PyTorch's meaning of == and !=)
    def __eq__(self, other: Any) -> Any:
        if other is None or not _comparable(other):
            return NotImplemented if other is not None else False
        return _ops.compare(self, other, "eq")

    def __ne__(self, other: Any) -> Any:
        if other is None or not _comparable(other):
            return NotImplemented if other is not None else True
        return _ops.compare(self, other, "ne")

    __hash__ = object.__hash__  # identity, as torch: tensors stay usable as dict keys and set members

    def __lt__(self, other: Any) -> Tensor:
        return _ops.compare(self, other, "lt")

    def __le__(self, other: Any) -> Tensor:
        return _ops.compare(self, other, "le")

    def __gt__(self, other: Any) -> Tensor:
        return _ops.compare(self, other, "gt")

    def __ge__(self, other: Any) -> Tensor:
        return _ops.compare(self, other, "ge")

    def eq(self, other: Any) -> Tensor:
        """Elementwise ``self == other`` as a boolean tensor (broadcasting); no gradient."""
        return _ops.compare(self, other, "eq")

    def ne(self, other: Any) -> Tensor:
        """Elementwise ``self != other`` as a boolean tensor; no gradient."""
        return _ops.compare(self, other, "ne")

    def lt(self, other: Any) -> Tensor:
        """Elementwise ``self < other`` as a boolean tensor; no gradient."""
        return _ops.compare(self, other, "lt")

    def le(self, other: Any) -> Tensor:
        """Elementwise ``self <= other`` as a boolean tensor; no gradient."""
        return _ops.compare(self, other, "le")

    def gt(self, other: Any) -> Tensor:
        """Elementwise ``self > other`` as a boolean tensor; no gradient."""
        return _ops.compare(self, other, "gt")

    def ge(self, other: Any) -> Tensor:
        """Elementwise ``self >= other`` as a boolean tensor; no gradient."""
        return _ops.compare(self, other, "ge")

    def equal(self, other: Any) -> builtins.bool:
        """True when ``other`` has the same shape and the same values (``torch.equal``)."""
        return _ops.equal(self, other)

    def allclose(self, other: Any, rtol: builtins.float = 1e-05, atol: builtins.float = 1e-08,
                 equal_nan: builtins.bool = False) -> builtins.bool:
        """True when ``|self - other| <= atol + rtol·|other|`` everywhere (``torch.allclose``)."""
        return _ops.allclose(self, other, rtol=rtol, atol=atol, equal_nan=equal_nan)

    def isclose(self, other: Any, rtol: builtins.float = 1e-05, atol: builtins.float = 1e-08,
                equal_nan: builtins.bool = False) -> Tensor:
        """Elementwise ``|self - other| <= atol + rtol·|other|`` as a boolean tensor (``torch.isclose``)."""
        return _ops.isclose(self, other, rtol=rtol, atol=atol, equal_nan=equal_nan)

    # ---------------------------------------------------------------- elementwise
    def exp(self) -> Tensor:
        return _ops.exp(self)

    def log(self) -> Tensor:
        return _ops.log(self)

    def sqrt(self) -> Tensor:
        return _ops.sqrt(self)

    def tanh(self) -> Tensor:
        return _ops.tanh(self)

    def sigmoid(self) -> Tensor:
        return _ops.sigmoid(self)

    def relu(self) -> Tensor:
        return _ops.relu(self)

    def abs(self) -> Tensor:
        return _ops.abs(self)

    def clip(self, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002 - PyTorch's names
        return _ops.clip(self, min, max)

    clamp = clip

    # ---------------------------------------------------------------- reductions
    # dim/keepdim are PyTorch's names; axis/keepdims (NumPy's) are accepted as aliases (not both).
    def sum(self, dim: Any = None, keepdim: Any = None, *, axis: Any = None, keepdims: Any = None) -> Tensor:
        return _ops.sum(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def mean(self, dim: Any = None, keepdim: Any = None, *, axis: Any = None, keepdims: Any = None) -> Tensor:
        return _ops.mean(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def var(self, dim: Any = None, unbiased: Any = None, keepdim: Any = None, **kwargs: Any) -> Tensor:
        return _ops.var(self, dim, unbiased, keepdim, **kwargs)

    def std(self, dim: Any = None, unbiased: Any = None, keepdim: Any = None, **kwargs: Any) -> Tensor:
        return _ops.std(self, dim, unbiased, keepdim, **kwargs)

    def max(self, dim: Any = None, keepdim: Any = None, *, axis: Any = None, keepdims: Any = None) -> Any:
        """``max()`` the largest element; ``max(dim)`` the named tuple ``(values, indices)``; ``max(other)``
        the elementwise maximum (see :func:`tinygrad_rnn.ops.max`)."""
        return _ops.max(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def min(self, dim: Any = None, keepdim: Any = None, *, axis: Any = None, keepdims: Any = None) -> Any:
        """``min()``, ``min(dim)`` -> ``(values, indices)``, ``min(other)`` (see :meth:`max`)."""
        return _ops.min(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def amax(self, dim: Any = None, keepdim: Any = None, *, axis: Any = None, keepdims: Any = None) -> Tensor:
        return _ops.amax(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def amin(self, dim: Any = None, keepdim: Any = None, *, axis: Any = None, keepdims: Any = None) -> Tensor:
        return _ops.amin(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def maximum(self, other: Any) -> Tensor:
        return _ops.maximum(self, other)

    def minimum(self, other: Any) -> Tensor:
        return _ops.minimum(self, other)

    def argmax(self, dim: Any = None, keepdim: Any = None, *, axis: Any = None, keepdims: Any = None) -> Tensor:
        return _ops.argmax(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def argmin(self, dim: Any = None, keepdim: Any = None, *, axis: Any = None, keepdims: Any = None) -> Tensor:
        return _ops.argmin(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def topk(self, k: builtins.int, dim: builtins.int = -1, largest: builtins.bool = True,
             sorted: builtins.bool = True) -> Any:  # noqa: A002
        return _ops.topk(self, k, dim, largest, sorted)

    def sort(self, dim: builtins.int = -1, descending: builtins.bool = False, stable: builtins.bool = True) -> Any:
        return _ops.sort(self, dim, descending, stable)

    def gather(self, dim: builtins.int, index: Any) -> Tensor:
        return _ops.gather(self, dim, index)

    def multinomial(self, num_samples: builtins.int, replacement: builtins.bool = False,
                    generator: Any = None) -> Tensor:
        return _ops.multinomial(self, num_samples, replacement, generator)

    def softmax(self, dim: Any = None, *, axis: Any = None, dtype: Any = None) -> Tensor:
        return _ops.softmax(self, dim, axis=axis, dtype=dtype)

    def log_softmax(self, dim: Any = None, *, axis: Any = None, dtype: Any = None) -> Tensor:
        return _ops.log_softmax(self, dim, axis=axis, dtype=dtype)

    # ---------------------------------------------------------------- shape
    def reshape(self, *shape: Any) -> Tensor:
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _ops.reshape(self, shape)

    view = reshape

    def view_as(self, other: Tensor) -> Tensor:
        return _ops.reshape(self, other.shape)

    def reshape_as(self, other: Tensor) -> Tensor:
        return _ops.reshape(self, other.shape)

    def flatten(self, start_dim: builtins.int = 0, end_dim: builtins.int = -1) -> Tensor:
        return _ops.flatten(self, start_dim, end_dim)

    def transpose(self, dim0: builtins.int = -2, dim1: builtins.int = -1) -> Tensor:
        """Swap two axes (PyTorch's ``transpose(dim0, dim1)``); for a 2-D tensor the default swaps both."""
        return _ops.transpose(self, dim0, dim1)

    def t(self) -> Tensor:
        """The transpose of a tensor with at most 2 dims (``torch.t``).

        Raises:
            OpError: more than 2 dims.
        """
        if self.ndim > 2:
            raise OpError(f"t() expects a tensor with <= 2 dimensions, got shape {self.shape}; use transpose()")
        return _ops.transpose(self, 0, 1)

    def permute(self, *dims: Any) -> Tensor:
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        return _ops.permute(self, dims)

    @property
    def T(self) -> Tensor:  # noqa: N802 - NumPy's name
        """All axes reversed (the matrix transpose for 2-D)."""
        return _ops.permute(self, tuple(range(self.ndim - 1, -1, -1)))

    def expand(self, *shape: Any) -> Tensor:
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _ops.expand(self, shape)

    def expand_as(self, other: Tensor) -> Tensor:
        return _ops.expand(self, other.shape)

    def broadcast_to(self, shape: Sequence[builtins.int]) -> Tensor:
        return _ops.expand(self, tuple(shape))

    def repeat(self, *repeats: Any) -> Tensor:
        return _ops.repeat(self, *repeats)

    def contiguous(self) -> Tensor:
        """Self when its array is C-contiguous, else a differentiable contiguous copy."""
        if self.array.flags.c_contiguous:
            return self
        return _ops.clone(self)

    def is_contiguous(self) -> builtins.bool:
        return bool(self.array.flags.c_contiguous)

    def clone(self) -> Tensor:
        """A differentiable copy that shares no memory with this tensor."""
        return _ops.clone(self)

    def squeeze(self, dim: Any = None, *, axis: Any = None) -> Tensor:
        return _ops.squeeze(self, dim, axis=axis)

    def unsqueeze(self, dim: Any = None, *, axis: Any = None) -> Tensor:
        return _ops.unsqueeze(self, dim, axis=axis)

    def split(self, split_size_or_sections: Any, dim: Any = None, *, axis: Any = None) -> tuple[Tensor, ...]:
        return _ops.split(self, split_size_or_sections, dim, axis=axis)

    def chunk(self, chunks: builtins.int, dim: Any = None, *, axis: Any = None) -> tuple[Tensor, ...]:
        return _ops.chunk(self, chunks, dim, axis=axis)

    def unbind(self, dim: Any = None, *, axis: Any = None) -> tuple[Tensor, ...]:
        return _ops.unbind(self, dim, axis=axis)

    def __getitem__(self, index: Any) -> Tensor:
        return _ops.getitem(self, index)

    def masked_fill(self, mask: Any, value: Any) -> Tensor:
        """``value`` where the boolean ``mask`` holds (broadcasting), this tensor elsewhere; differentiable."""
        return _ops.where(mask, value, self)


    # ---------------------------------------------------------------- PyTorch's method spellings of ops
    def add(self, other: Any, alpha: Any = None) -> Tensor:
        """``self + alpha * other``."""
        return _ops.add(self, other if alpha is None or alpha == 1 else other * alpha)

    def sub(self, other: Any, alpha: Any = None) -> Tensor:
        """``self - alpha * other``."""
        return _ops.sub(self, other if alpha is None or alpha == 1 else other * alpha)

    def mul(self, other: Any) -> Tensor:
        return _ops.mul(self, other)

    def div(self, other: Any) -> Tensor:
        return _ops.div(self, other)

    def pow(self, exponent: Any) -> Tensor:
        return _ops.pow(self, exponent)

    def neg(self) -> Tensor:
        return _ops.neg(self)

    def matmul(self, other: Any) -> Tensor:
        return _ops.matmul(self, other)

    mm = bmm = matmul

    def dot(self, other: Tensor) -> Tensor:
        """The inner product of two 1-D tensors."""
        if self.ndim != 1 or other.ndim != 1:
            raise OpError(f"dot: expected two 1-D tensors, got shapes {self.shape} and {other.shape}")
        return _ops.matmul(self, other)

    def square(self) -> Tensor:
        return _ops.mul(self, self)

    def reciprocal(self) -> Tensor:
        return _ops.div(1.0, self)

    def rsqrt(self) -> Tensor:
        return _ops.div(1.0, _ops.sqrt(self))

    def sign(self) -> Tensor:
        """-1, 0 or 1 elementwise (no gradient, as its derivative is 0 almost everywhere)."""
        return Tensor._wrap(get_array_module(self._array).sign(self._array))

    def where(self, condition: Any, other: Any) -> Tensor:
        """``self`` where ``condition`` holds, ``other`` elsewhere (``torch.Tensor.where``)."""
        return _ops.where(condition, self, other)

    def all(self, dim: Any = None, keepdim: builtins.bool = False) -> Tensor:
        """Whether every element (along ``dim``) is non-zero, as a bool tensor."""
        _ops._reads_values("all", self)
        return Tensor._wrap(self._array.astype(bool).all(axis=dim, keepdims=keepdim))

    def any(self, dim: Any = None, keepdim: builtins.bool = False) -> Tensor:
        """Whether some element (along ``dim``) is non-zero, as a bool tensor."""
        _ops._reads_values("any", self)
        return Tensor._wrap(self._array.astype(bool).any(axis=dim, keepdims=keepdim))

    def argsort(self, dim: builtins.int = -1, descending: builtins.bool = False) -> Tensor:
        return _ops.sort(self, dim, descending).indices

    def narrow(self, dim: builtins.int, start: builtins.int, length: builtins.int) -> Tensor:
        """Elements ``start .. start+length-1`` along ``dim`` (a view sharing memory, as ``torch.narrow``)."""
        d = _ops._one_dim("narrow", dim, self.ndim)
        if start < 0:
            start += self.shape[d]
        if not 0 <= start <= start + length <= self.shape[d]:
            raise OpError(f"narrow: start {start} and length {length} do not fit dim {dim} of size {self.shape[d]}")
        return self[(slice(None),) * d + (slice(start, start + length),)]

    def index_select(self, dim: builtins.int, index: Any) -> Tensor:
        """The entries at the integer ``index`` (1-D) along ``dim`` (repeated indices add up in backward)."""
        d = _ops._one_dim("index_select", dim, self.ndim)
        return self[(slice(None),) * d + (index,)]

    def masked_select(self, mask: Any) -> Tensor:
        """The elements where the boolean ``mask`` holds, as a 1-D tensor."""
        _ops._reads_values("masked_select", mask)
        m = mask._array if isinstance(mask, Tensor) else mask
        return self[get_array_module(self._array).broadcast_to(m, self.shape)]

    def flip(self, *dims: Any) -> Tensor:
        """Reverse the order along ``dims`` (a view)."""
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        axes = set(_ops._normalize_axes(dims, self.ndim))
        return self[tuple(slice(None, None, -1) if i in axes else slice(None) for i in range(self.ndim))]

    def logsumexp(self, dim: Any, keepdim: builtins.bool = False) -> Tensor:
        """``log Σ exp`` along ``dim``, stable (the maximum taken out first; constant for the gradient)."""
        top = _ops.amax(self, dim, keepdim=True).detach()
        out = _ops.log(_ops.sum(_ops.exp(self - top), dim, keepdim=True)) + top
        return out if keepdim else _ops.squeeze(out, dim)

    def norm(self, p: Any = 2, dim: Any = None, keepdim: builtins.bool = False) -> Tensor:
        """The ``p``-norm (2 by default; 1 also) over ``dim`` (all elements when None)."""
        if p == 2 or p == "fro":
            return _ops.sqrt(_ops.sum(self * self, dim, keepdim=keepdim))
        if p == 1:
            return _ops.sum(_ops.abs(self), dim, keepdim=keepdim)
        if p == float("inf") or p == float("-inf"):  # the largest / smallest |x|
            big = p == float("inf")
            return (_ops.amax if big else _ops.amin)(_ops.abs(self), dim, keepdim=keepdim)
        raise OpError(f"norm: p={p!r} is not supported (2, 'fro', 1, inf or -inf)")

    # ---------------------------------------------------------------- in place (PyTorch's trailing _)
    # Allowed on tensors outside a recorded graph and under no_grad. Each bumps the storage's version
    # counter, so a backward() through an op that saved the old values raises instead of using the new ones.
    def _check_inplace(self, name: str, *others: Any) -> None:
        if not _mode.grad_enabled:
            return
        if self.requires_grad:
            if self._ctx is None:
                raise RuntimeError(f"{name}: a leaf Variable that requires grad is being used in an in-place "
                                   "operation; wrap the update in `with no_grad():` (as optimizers do) or use "
                                   "`.data`")
            raise RuntimeError(f"{name}: in-place ops on a tensor recorded on the tape are not supported here "
                               "(PyTorch would record them); use the out-of-place op (e.g. `x = x + y`)")
        for other in others:
            if isinstance(other, Tensor) and other.requires_grad:
                raise RuntimeError(f"{name}: an in-place op whose operand requires grad would have to be recorded; "
                                   "use the out-of-place op (e.g. `x = x + y`) or run it under no_grad")

    def _operand_array(self, name: str, other: Any) -> Any:
        if isinstance(other, Tensor):
            if type(other._array) is not type(self._array) or (
                    type(self._array) is not np.ndarray and other.device != self.device):
                raise OpError(f"{name}: the operand is on {other.device}, this tensor on {self.device}; "
                              "move it with .to(device)")
            return other._array
        if isinstance(other, (list, tuple)):
            return get_array_module(self._array).asarray(other)
        return other

    def _write(self, name: str, how: Any) -> Tensor:
        """Run ``how(array)`` (which writes into the array), translate backend errors, bump the version."""
        array = self._array
        try:
            how(array)
        except (ValueError, TypeError) as exc:
            if not array.flags.writeable:
                raise OpError(f"{name}: this tensor is a read-only view (e.g. made by expand); "
                              "make a copy with .clone() first") from None
            raise OpError(f"{name}: {exc} (this tensor: {_describe(self)})") from None
        _bump(array)
        return self

    def _binary_(self, name: str, other: Any, ufunc: str, alpha: Any = None) -> Tensor:
        self._check_inplace(name, other)
        value = self._operand_array(name, other)
        if alpha is not None and alpha != 1:
            value = value * alpha
        xp = get_array_module(self._array)
        return self._write(name, lambda a: getattr(xp, ufunc)(a, value, out=a))

    def add_(self, other: Any, alpha: Any = None) -> Tensor:
        """In place ``self += alpha * other`` (broadcast to this tensor's shape); returns self."""
        return self._binary_("add_", other, "add", alpha)

    def sub_(self, other: Any, alpha: Any = None) -> Tensor:
        """In place ``self -= alpha * other``; returns self."""
        return self._binary_("sub_", other, "subtract", alpha)

    def mul_(self, other: Any) -> Tensor:
        """In place ``self *= other``; returns self."""
        return self._binary_("mul_", other, "multiply")

    def div_(self, other: Any) -> Tensor:
        """In place ``self /= other`` (a floating tensor); returns self."""
        return self._binary_("div_", other, "true_divide")

    def pow_(self, other: Any) -> Tensor:
        """In place ``self **= other``; returns self."""
        return self._binary_("pow_", other, "power")

    def addcmul_(self, tensor1: Any, tensor2: Any, value: Any = 1) -> Tensor:
        """In place ``self += value * tensor1 * tensor2``; returns self."""
        self._check_inplace("addcmul_", tensor1, tensor2)
        product = self._operand_array("addcmul_", tensor1) * self._operand_array("addcmul_", tensor2) * value
        return self._write("addcmul_", lambda a: get_array_module(a).add(a, product, out=a))

    def addcdiv_(self, tensor1: Any, tensor2: Any, value: Any = 1) -> Tensor:
        """In place ``self += value * tensor1 / tensor2``; returns self."""
        self._check_inplace("addcdiv_", tensor1, tensor2)
        ratio = self._operand_array("addcdiv_", tensor1) / self._operand_array("addcdiv_", tensor2) * value
        return self._write("addcdiv_", lambda a: get_array_module(a).add(a, ratio, out=a))

    def neg_(self) -> Tensor:
        """In place ``self = -self``; returns self."""
        self._check_inplace("neg_")
        return self._write("neg_", lambda a: get_array_module(a).negative(a, out=a))

    def zero_(self) -> Tensor:
        """Fill with zeros in place; returns self."""
        return self.fill_(0)

    def fill_(self, value: Any) -> Tensor:
        """Fill with ``value`` (a number or a one-element tensor) in place; returns self."""
        self._check_inplace("fill_", value)
        if isinstance(value, Tensor):
            value = value.item()

        def fill(a: Any) -> None:
            a[...] = value

        return self._write("fill_", fill)

    def copy_(self, src: Any, non_blocking: builtins.bool = False) -> Tensor:
        """Copy ``src`` (broadcast to this shape, cast to this dtype, moved to this device) into this tensor;
        returns self."""
        self._check_inplace("copy_", src)
        value = src._array if isinstance(src, Tensor) else src
        if isinstance(value, (list, tuple)):
            value = np.asarray(value)
        if hasattr(value, "shape") and get_array_module(value) is not get_array_module(self._array):
            value = to_device(value, normalize_device(self.device))

        def copy(a: Any) -> None:
            a[...] = value

        return self._write("copy_", copy)

    def clamp_(self, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002 - PyTorch's names
        """Clamp to ``[min, max]`` in place; returns self."""
        self._check_inplace("clamp_")
        if min is None and max is None:
            raise OpError("clamp_: at least one of min and max must be given")
        return self._write("clamp_", lambda a: get_array_module(a).clip(a, min, max, out=a))

    clip_ = clamp_

    def uniform_(self, a: builtins.float = 0.0, b: builtins.float = 1.0, generator: Any = None) -> Tensor:
        """Fill with samples from U[a, b) (the device's generator, see :func:`manual_seed`); returns self."""
        self._check_inplace("uniform_")
        rng = default_rng(self.device) if generator is None else generator
        values = rng.random(self.shape) * (b - a) + a

        def fill(arr: Any) -> None:
            arr[...] = values

        return self._write("uniform_", fill)

    def normal_(self, mean: builtins.float = 0.0, std: builtins.float = 1.0, generator: Any = None) -> Tensor:
        """Fill with samples from N(mean, std²) (the device's generator); returns self."""
        self._check_inplace("normal_")
        rng = default_rng(self.device) if generator is None else generator
        values = rng.standard_normal(self.shape) * std + mean

        def fill(arr: Any) -> None:
            arr[...] = values

        return self._write("normal_", fill)

    def masked_fill_(self, mask: Any, value: Any) -> Tensor:
        """Write ``value`` where the boolean ``mask`` (broadcast to this shape) holds; returns self."""
        self._check_inplace("masked_fill_", value)
        m = self._operand_array("masked_fill_", mask)
        v = value.item() if isinstance(value, Tensor) else value
        return self._write("masked_fill_", lambda a: get_array_module(a).copyto(
            a, get_array_module(a).asarray(v, dtype=a.dtype), where=m))

    def unsqueeze_(self, dim: builtins.int) -> Tensor:
        """Insert an axis of size 1 at ``dim``, in place (the tensor's shape changes, its values do not)."""
        self._check_inplace("unsqueeze_")
        self._array = _ops.unsqueeze(Tensor._wrap(self._array), dim)._array
        _bump(self._array)  # (PyTorch counts a change of shape too)
        return self

    def squeeze_(self, dim: Any = None) -> Tensor:
        """Remove axes of size 1 (all, or those in ``dim``), in place; see :meth:`squeeze`."""
        self._check_inplace("squeeze_")
        self._array = _ops.squeeze(Tensor._wrap(self._array), dim)._array
        _bump(self._array)  # (PyTorch counts a change of shape too)
        return self

    def t_(self) -> Tensor:
        """Transpose a tensor of at most 2 dims in place (its shape changes)."""
        self._check_inplace("t_")
        self._array = Tensor._wrap(self._array).t()._array
        _bump(self._array)  # (PyTorch counts a change of shape too)
        return self

    def detach_(self) -> Tensor:
        """Cut this tensor from the tape in place: it becomes a leaf that does not require grad."""
        self._ctx, self.requires_grad, self._index = None, False, 0
        return self

    def __setitem__(self, index: Any, value: Any) -> None:
        """``t[index] = value`` in place (value broadcast and cast to the slice). Basic indexing returns views
        that share memory, so ``t[i][j] = v`` writes into ``t``, as in PyTorch."""
        self._check_inplace("__setitem__", value)
        index = _ops._index_on_device(self._array, index)
        v = self._operand_array("__setitem__", value)

        def assign(a: Any) -> None:
            a[index] = v

        self._write("__setitem__", assign)

    def _augmented(self, name: str, other: Any, inplace: str, out_of_place: Any) -> Tensor:
        # `t += x`: in place when nothing is recorded; a leaf that requires grad raises (as PyTorch); a tensor
        # on the tape (or an operand that requires grad) gets the out-of-place result, bound to the name
        if _mode.grad_enabled and (self.requires_grad or (isinstance(other, Tensor) and other.requires_grad)):
            if self.requires_grad and self._ctx is None:
                self._check_inplace(name)
            return out_of_place(self, other)
        return getattr(self, inplace)(other)

    def __iadd__(self, other: Any) -> Tensor:
        return self._augmented("+=", other, "add_", _ops.add)

    def __isub__(self, other: Any) -> Tensor:
        return self._augmented("-=", other, "sub_", _ops.sub)

    def __imul__(self, other: Any) -> Tensor:
        return self._augmented("*=", other, "mul_", _ops.mul)

    def __itruediv__(self, other: Any) -> Tensor:
        return self._augmented("/=", other, "div_", _ops.div)


# --------------------------------------------------------------------------------------------------
# The backward pass
# --------------------------------------------------------------------------------------------------

_RELEASED = (
    "backward through a graph whose saved arrays were already released by an earlier backward(); "
    "call the first backward(retain_graph=True) to run backward through the same graph twice"
)


_ndarray = np.ndarray


def _is_gradient_array(g: Any) -> bool:
    """A backend array or a NumPy scalar (what reductions return): anything else is no gradient."""
    return isinstance(g, np.generic) or (hasattr(g, "__cuda_array_interface__") and hasattr(g, "shape"))


def _position(grads: tuple[Any, ...], g: Any) -> int:
    """Which input ``g`` is the gradient of (for messages: the hot loop keeps no index)."""
    return next(i for i, x in enumerate(grads) if x is g)


def _contract_error(fn: Function, what: str) -> RuntimeError:
    return RuntimeError(f"{fn.name}: backward {what}")


def _sum_back(fn: Function, i: int, g: Any, shape: tuple[int, ...]) -> Any:
    """Sum the gradient ``g`` of input ``i`` back to the input's ``shape`` after checking that ``shape``
    broadcasts to ``g.shape`` (else the op's backward broke the contract: RuntimeError naming it)."""
    gshape = g.shape
    lead = len(gshape) - len(shape)
    if lead < 0 or any(n != 1 and n != m for n, m in zip(shape, gshape[lead:], strict=False)):
        raise _contract_error(fn, f"returned a gradient of shape {tuple(gshape)} for input {i} of shape "
                                  f"{tuple(shape)}, expected that shape or one it broadcasts to")
    return sum_to(g, shape)


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
        leaf.grad._array += grad  # (the slot, not the property: the engine's own buffer is no in-place change)


def _fill_retained(fn: Function, out_grad: Any) -> None:
    """Add the complete gradient of each retained output of ``fn`` into that tensor's ``.grad``."""
    grads = (out_grad,) if fn.n_outputs == 1 else out_grad
    for index, ref in (fn.retained or {}).items():
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
    pending: dict[Any, Any] = {}
    if root_fn.n_outputs == 1:
        pending[root_fn] = grad
    else:
        slots: Any = [None] * root_fn.n_outputs
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
            if fn.seq < _inplace.last and _storages:  # something was changed in place after fn was recorded
                _check_saved(fn)
            if fn.retained is not None:
                _fill_retained(fn, out_grad)
            if fn.n_outputs == 1:
                in_grads = fn.backward(out_grad)
            else:
                in_grads = fn.backward(*out_grad)
            parents = fn.parents
            if type(in_grads) is not tuple:
                in_grads = tuple(in_grads) if type(in_grads) is list else (in_grads,)
            if len(in_grads) != len(parents):
                raise _contract_error(fn, f"returned {len(in_grads)} gradient(s), expected {len(parents)} "
                                          f"(one per input, None where an input needs none)")
            for parent, g in zip(parents, in_grads, strict=False):  # (equal lengths: checked above)
                if g is None:
                    continue
                if type(g) is not _ndarray and not _is_gradient_array(g):
                    raise _contract_error(fn, f"returned a {type(g).__name__} as the gradient of input "
                                              f"{_position(in_grads, g)}, expected a backend array (or None)")
                if not parent.requires_grad:
                    continue
                if g.shape != parent.shape:
                    g = _sum_back(fn, _position(in_grads, g), g, parent.shape)
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


class _Generators:
    """The process-wide generators, one per device (shared by every thread, as PyTorch's default generator:
    seeding in one thread and drawing in another gives the seeded numbers)."""

    def __init__(self) -> None:
        self.seed: int | None = None
        self.cuda_seed: int | None = None
        self.by_device: dict[str, Any] = {}
        self.lock = threading.Lock()


_generators = _Generators()


def manual_seed(seed: int) -> None:
    """Seed the random generators of every device, for every thread (as ``torch.manual_seed``)."""
    with _generators.lock:
        _generators.seed = int(seed)
        _generators.cuda_seed = None
        _generators.by_device.clear()


def initial_seed() -> int | None:
    """The seed last given to :func:`manual_seed` (None when the generators use fresh OS entropy)."""
    return _generators.seed


def _manual_seed_cuda(seed: int) -> None:
    """Seed only the CUDA generators (``torch.cuda.manual_seed``; see :mod:`tinygrad_rnn.cuda`)."""
    with _generators.lock:
        _generators.cuda_seed = int(seed)
        for name in [d for d in _generators.by_device if d != "cpu"]:
            del _generators.by_device[name]


def default_rng(device: str = "cpu") -> Any:
    """The random generator of a device: a ``numpy.random.Generator`` (cpu) or a CuPy generator (cuda).

    Seeded from :func:`manual_seed` when one was set, otherwise from fresh OS entropy. One per device for
    the whole process (all threads).
    """
    device = normalize_device(device)
    if _recorder is not None:
        _recorder.random(device)
    rng = _generators.by_device.get(device)
    if rng is None:
        with _generators.lock:
            rng = _generators.by_device.get(device)
            if rng is None:
                seed = _generators.seed
                if device != "cpu" and _generators.cuda_seed is not None:
                    seed = _generators.cuda_seed
                rng = random_generator(device, seed)
                _generators.by_device[device] = rng
    return rng


_DeviceType = device  # the class; inside functions 'device' is usually a parameter


class Generator:
    """``torch.Generator``: a random generator of its own, to pass as ``generator=`` (``random_split``,
    ``randperm``, ``randn``, ``nn.init``). ``Generator(device="cpu").manual_seed(s)`` returns the generator, as
    PyTorch's does. It draws with a ``numpy.random.Generator`` (CuPy's for a CUDA device), so its numbers for a
    seed differ from PyTorch's; the draw methods (``permutation``, ``integers``, ``uniform``, ...) are NumPy's.

    Raises:
        DeviceError: an unknown or unusable device.
    """

    def __init__(self, device: Any = "cpu") -> None:
        self.device = _DeviceType(normalize_device(device))
        self._seed: int | None = None
        self._rng = self._make(None)

    def _make(self, seed: int | None) -> Any:
        return random_generator(self.device, seed)

    def manual_seed(self, seed: int) -> Generator:
        """Reseed; returns the generator."""
        self._seed = int(seed)
        self._rng = self._make(self._seed)
        return self

    def seed(self) -> int:
        """Reseed from fresh OS entropy; returns the new seed."""
        entropy: Any = np.random.SeedSequence().entropy
        self._seed = int(entropy % 2**63)
        self._rng = self._make(self._seed)
        return self._seed

    def initial_seed(self) -> int | None:
        """The seed last given (None: fresh entropy at creation)."""
        return self._seed

    def get_state(self) -> Any:
        """The generator's state (NumPy's bit-generator state dict)."""
        return self._rng.bit_generator.state

    def set_state(self, state: Any) -> Generator:
        """Restore a state from :meth:`get_state`; returns the generator."""
        self._rng.bit_generator.state = state
        return self

    def __getattr__(self, name: str) -> Any:  # the draw methods: permutation, integers, uniform, normal, ...
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._rng, name)


def _shape_args(shape: tuple[Any, ...], name: str = "size") -> tuple[int, ...]:
    """The sizes of ``zeros(2, 3)`` or ``zeros((2, 3))``, checked (see :func:`_sizes`)."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list, Size)):
        return _sizes(name, tuple(shape[0]))
    return _sizes(name, tuple(shape))


def _float_dtype(dtype: Any) -> np.dtype:
    return _defaults.dtype if dtype is None else _as_dtype(dtype)


def tensor(data: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (``torch.tensor``): see :class:`Tensor` for the dtype rules."""
    if isinstance(dtype, bool):  # the old positional order tensor(data, requires_grad)
        dtype, requires_grad = None, dtype
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, device=device)


def as_tensor(data: Any, dtype: Any = None, device: Any = None) -> Tensor:
    """``data`` as a tensor without a copy when it already is one, or a NumPy/CuPy array, of that dtype and
    device (then they share memory); otherwise a new tensor (``torch.as_tensor``)."""
    if isinstance(data, Tensor):
        return data.to(device=device, dtype=dtype) if (device is not None or dtype is not None) else data
    xp = get_array_module(data)
    if isinstance(data, np.ndarray) or xp is not np:
        _check_numeric_dtype("as_tensor", data.dtype, "an array of dtype")
        same_dtype = dtype is None or _as_dtype(dtype) == data.dtype
        same_device = device is None or normalize_device(device) == device_of(data)
        if same_dtype and same_device:
            return Tensor._wrap(data)
    return Tensor(data, dtype=dtype, device=device)


def from_numpy(array: np.ndarray) -> Tensor:
    """A CPU tensor that shares memory with the NumPy ``array`` (``torch.from_numpy``): writes to one show in
    the other; the dtype is kept.

    Raises:
        TypeError: ``array`` is not a ``numpy.ndarray``.
    """
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(array).__name__}")
    _check_numeric_dtype("from_numpy", array.dtype, "an array of dtype")
    return Tensor._wrap(array)


def is_tensor(obj: Any) -> bool:
    """True for a :class:`Tensor`."""
    return isinstance(obj, Tensor)


def numel(t: Tensor) -> int:
    """The number of elements of ``t``."""
    return t.numel()


def full(size: Any, fill_value: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of ``size`` filled with ``fill_value``; the dtype follows the value as in ``torch.full``
    (bool -> bool, int -> int64, float -> the default dtype) unless given.

    Raises:
        OpTypeError: a size that is not an int, a fill value that is not a real number.
        OpError: a negative size; an int fill value outside int64's range.
    """
    shape = _shape_args((size,), "full")
    if isinstance(fill_value, Tensor) and fill_value.ndim == 0:
        fill_value = fill_value.item()
    if not isinstance(fill_value, (bool, int, float, np.bool_, np.integer, np.floating)):
        raise OpTypeError(f"full: fill_value must be a real number, got {fill_value!r} ({type(fill_value).__name__})")
    if isinstance(fill_value, int) and not -2**63 <= fill_value < 2**63:
        raise OpError(f"full: fill_value {fill_value} is outside int64's range [-2**63, 2**63)")
    if dtype is None:
        if isinstance(fill_value, (bool, np.bool_)):
            dtype = bool_
        elif isinstance(fill_value, (int, np.integer)):
            dtype = int64
        else:
            dtype = _defaults.dtype
    device = normalize_device(device)
    data = get_array_module(device).full(shape, fill_value, dtype=_as_dtype(dtype))
    return Tensor._wrap(data)._requires(requires_grad)


def zeros(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros (the default dtype, float32, unless ``dtype`` says otherwise)."""
    return full(_shape_args(size, "zeros"), 0, dtype=_float_dtype(dtype), device=device,
                requires_grad=requires_grad)


def ones(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones (the default dtype unless ``dtype`` says otherwise)."""
    return full(_shape_args(size, "ones"), 1, dtype=_float_dtype(dtype), device=device,
                requires_grad=requires_grad)


def empty(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """``torch.empty``; here the values are zeros (PyTorch leaves them undefined)."""
    return full(_shape_args(size, "empty"), 0, dtype=_float_dtype(dtype), device=device, requires_grad=requires_grad)


def eye(n: int, m: int | None = None, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """The (n, m) identity matrix (m = n by default).

    Raises:
        OpTypeError / OpError: ``n`` or ``m`` not a non-negative int.
    """
    n, m = _sizes("eye", (n, n if m is None else m))
    device = normalize_device(device)
    data = get_array_module(device).eye(n, m, dtype=_float_dtype(dtype))
    return Tensor._wrap(data)._requires(requires_grad)


def _like(t: Tensor, dtype: Any, device: Any) -> tuple[np.dtype, Any]:
    return (t.dtype if dtype is None else _as_dtype(dtype)), (t.device if device is None else device)


def zeros_like(t: Tensor, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """Zeros with ``t``'s shape, dtype and device (unless given)."""
    dtype, device = _like(t, dtype, device)
    return zeros(t.shape, dtype=dtype, device=device, requires_grad=requires_grad)


def ones_like(t: Tensor, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """Ones with ``t``'s shape, dtype and device (unless given)."""
    dtype, device = _like(t, dtype, device)
    return ones(t.shape, dtype=dtype, device=device, requires_grad=requires_grad)


def full_like(t: Tensor, fill_value: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """``fill_value`` everywhere, with ``t``'s shape, dtype and device (unless given)."""
    dtype, device = _like(t, dtype, device)
    return full(t.shape, fill_value, dtype=dtype, device=device, requires_grad=requires_grad)


def empty_like(t: Tensor, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """Like :func:`zeros_like` (PyTorch leaves the values undefined)."""
    return zeros_like(t, dtype=dtype, device=device, requires_grad=requires_grad)


def arange(start: float, end: float | None = None, step: float = 1, dtype: Any = None,
           device: Any = None, requires_grad: bool = False) -> Tensor:
    """``torch.arange``: ``[start, end)`` by ``step`` (int64 for integer arguments, the default dtype otherwise)."""
    if end is None:
        start, end = 0, start
    for v in (start, end, step):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise OpTypeError(f"arange: start, end and step must be real numbers, got "
                              f"({start!r}, {end!r}, {step!r})")
        if not np.isfinite(v):
            raise OpError(f"arange: start, end and step must be finite, got "
                              f"({start!r}, {end!r}, {step!r})")
    if step == 0:
        raise OpError("arange: step must be nonzero")
    if (end - start) * step < 0:
        raise OpError(f"arange: the range [{start}, {end}) is not in the direction of step {step}")
    if dtype is None:
        is_int = all(float(v).is_integer() and not isinstance(v, float) for v in (start, end, step))
        dtype = int64 if is_int else _defaults.dtype
    return Tensor(np.arange(start, end, step, dtype=_as_dtype(dtype)), device=device, requires_grad=requires_grad)


def linspace(start: float, end: float, steps: int, dtype: Any = None, device: Any = None,
             requires_grad: bool = False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive (the default dtype unless given)."""
    steps = _sizes("linspace", (steps,))[0]
    return Tensor(np.linspace(start, end, steps), dtype=_float_dtype(dtype), device=device,
                  requires_grad=requires_grad)


def randn(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False,
          generator: Any = None) -> Tensor:
    """Standard normal samples from the device's generator (see :func:`manual_seed`), or from ``generator``."""
    rng = default_rng(device) if generator is None else generator
    data = rng.standard_normal(_shape_args(size, "randn"), dtype=_float_dtype(dtype))
    return Tensor._wrap(data)._requires(requires_grad)


def rand(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False,
         generator: Any = None) -> Tensor:
    """Uniform samples in [0, 1) from the device's generator (see :func:`manual_seed`), or from ``generator``."""
    rng = default_rng(device) if generator is None else generator
    data = rng.random(_shape_args(size, "rand"), dtype=_float_dtype(dtype))
    return Tensor._wrap(data)._requires(requires_grad)


def randint(low: int, high: int | None = None, size: Any = None, dtype: Any = None, device: Any = None,
            generator: Any = None, requires_grad: bool = False) -> Tensor:
    """``torch.randint(low=0, high, size)``: integers uniform in ``[low, high)`` (int64 unless given).

    Raises:
        TypeError: no ``size``.
    """
    if size is None:  # randint(high, size)
        if high is None or not isinstance(high, (tuple, list)):
            raise TypeError("randint: expected randint(low=0, high, size)")
        low, high, size = 0, low, high
    rng = default_rng(device) if generator is None else generator
    shape = _shape_args((size,), "randint")
    low, high = _size("randint", low, "low"), _size("randint", high, "high")
    if low >= high:
        raise OpError(f"randint: expected low < high, got low={low}, high={high}")
    data = rng.integers(low, high, size=shape, dtype=np.int64)
    return Tensor(data, dtype=int64 if dtype is None else dtype, device=device)


def randn_like(t: Tensor, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples with ``t``'s shape, dtype and device (unless given)."""
    dtype, device = _like(t, dtype, device)
    return randn(t.shape, dtype=dtype, device=device, requires_grad=requires_grad)


def rand_like(t: Tensor, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """Uniform [0, 1) samples with ``t``'s shape, dtype and device (unless given)."""
    dtype, device = _like(t, dtype, device)
    return rand(t.shape, dtype=dtype, device=device, requires_grad=requires_grad)


def randperm(n: int, dtype: Any = None, device: Any = None, generator: Any = None) -> Tensor:
    """A random permutation of ``0..n-1`` (int64) from the CPU generator (see :func:`manual_seed`)."""
    rng = default_rng("cpu") if generator is None else generator
    n = _sizes("randperm", (n,))[0]
    return Tensor(rng.permutation(n).astype(np.int64), dtype=dtype, device=device)


from tinygrad_rnn import ops as _ops  # noqa: E402  (ops builds on Function and Tensor above)

__all__ += ["DeviceError"]
