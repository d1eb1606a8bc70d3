"""``Module`` and ``Parameter``: named, ordered containers of trainable tensors and buffers (``torch.nn.Module``)."""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from tinygrad_rnn import serialization
from tinygrad_rnn.backend import get_array_module, normalize_device, to_device
from tinygrad_rnn.tensor import Tensor, no_grad

__all__ = ["IncompatibleKeys", "Module", "Parameter", "StateDictError"]


class StateDictError(KeyError, RuntimeError):
    """``load_state_dict`` found missing, unexpected, mis-shaped or wrongly typed keys (all are listed).

    A ``KeyError`` (as before) and a ``RuntimeError`` (what ``torch.nn.Module.load_state_dict`` raises).
    """

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict`` returns: ``(missing_keys, unexpected_keys)``, as PyTorch's named tuple."""

    missing_keys: list[str]
    unexpected_keys: list[str]

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return f"IncompatibleKeys(missing_keys={self.missing_keys}, unexpected_keys={self.unexpected_keys})"


class Parameter(Tensor):
    """A Tensor that a :class:`Module` registers as trainable (``requires_grad=True``).

    ``Parameter(data)`` copies ``data`` (a Tensor, an array, a list); ``Parameter(t, requires_grad=False)``
    is a parameter that is saved and loaded but not trained.
    """

    __slots__ = ()

    def __init__(self, data: Any = None, requires_grad: bool = True, dtype: Any = None, device: str | None = None):
        if data is None:
            data = np.zeros((0,), dtype=np.float32)
        super().__init__(data, requires_grad=requires_grad, dtype=dtype, device=device)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


def _add_indent(text: str, spaces: int) -> str:
    """Indent every line of ``text`` but the first by ``spaces`` (how a child's repr nests in its parent's)."""
    lines = text.split("\n")
    return "\n".join(lines[:1] + [" " * spaces + line for line in lines[1:]])


def _is_float_dtype(dtype: Any) -> bool:
    return np.dtype(dtype).kind in "fc"


def _resolve_to_args(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str | None, Any]:
    """``Module.to``'s arguments as PyTorch takes them -> ``(device or None, dtype or None)``."""
    device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
    kwargs.pop("non_blocking", None)
    kwargs.pop("copy", None)
    if kwargs:
        raise TypeError(f"Module.to: unexpected keyword(s) {sorted(kwargs)}")
    if len(args) > 2:
        raise TypeError(f"Module.to: expected at most a device and a dtype, got {len(args)} positional arguments")
    for arg in args:
        if isinstance(arg, Tensor):
            device, dtype = arg.device, arg.dtype
        elif isinstance(arg, str) or arg is None or type(arg).__name__ == "device":
            device = arg if arg is not None else device
        else:
            try:
                dtype = np.dtype(arg)
            except TypeError:
                device = arg  # e.g. a device object; normalize_device says what it accepts
    if dtype is not None:
        dtype = np.dtype(dtype)
        if not _is_float_dtype(dtype):
            raise TypeError(f"Module.to: only floating-point dtypes are accepted (parameters and buffers keep "
                            f"their kind), got {dtype}")
    return (None if device is None else normalize_device(str(device) if type(device).__name__ == "device"
                                                         else device)), dtype


class Module:
    """Base class of layers: holds Parameters, buffers and sub-Modules in the order they were assigned.

    Assigning a :class:`Parameter` or a :class:`Module` to an attribute registers it; so do
    :meth:`register_parameter`, :meth:`register_buffer` and :meth:`add_module`. ``named_parameters`` yields
    them depth-first in that order with dotted names (``"rnn.weight_ih_l0"``), exactly like PyTorch, and
    ``state_dict`` holds every parameter and persistent buffer under its PyTorch key.

    Subclasses implement ``forward``; calling the module calls it.
    """

    training: bool
    # the registries, set in __init__ through object.__setattr__ (this class's __setattr__ files into them)
    _parameters: OrderedDict[str, Any]
    _buffers: OrderedDict[str, Any]
    _non_persistent_buffers: set[str]
    _modules: OrderedDict[str, Any]

    if TYPE_CHECKING:  # for mypy: a parameter, buffer or sub-module registered under any name is an attribute

        def __getattr__(self, name: str) -> Any: ...

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # ---------------------------------------------------------------- registration
    def _check_init(self, name: str) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() before assigning {name}")

    def _check_name(self, kind: str, name: Any) -> None:
        self._check_init(str(name))
        if not isinstance(name, str):
            raise TypeError(f"{type(self).__name__}.{kind}: the name must be a string, got {type(name).__name__}")
        if not name or "." in name:
            raise KeyError(f"{type(self).__name__}.{kind}: the name must be non-empty and contain no '.', got {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        self._check_init(name)
        if isinstance(value, Parameter):
            self.register_parameter(name, value)
        elif isinstance(value, Module):
            self.add_module(name, value)
        elif name in self._parameters:
            if value is not None:
                raise TypeError(f"{type(self).__name__}: cannot assign {type(value).__name__} to parameter "
                                f"{name!r} (expected a Parameter or None)")
            self.register_parameter(name, None)
        elif name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"{type(self).__name__}: cannot assign {type(value).__name__} to buffer "
                                f"{name!r} (expected a Tensor or None)")
            self._buffers[name] = value
            object.__setattr__(self, name, value)
        else:
            self._modules.pop(name, None)
            object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._parameters.pop(name, None)
        self._buffers.pop(name, None)
        self._non_persistent_buffers.discard(name)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    def _forget(self, name: str, keep: str) -> None:
        """Remove ``name`` from the tables other than ``keep`` (in ``keep`` it stays at its position)."""
        for table in ("_parameters", "_buffers", "_modules"):
            if table != keep:
                getattr(self, table).pop(name, None)
        self._non_persistent_buffers.discard(name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` (a :class:`Parameter`, or None for an absent one such as ``bias=False``)."""
        self._check_name("register_parameter", name)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"{type(self).__name__}.register_parameter({name!r}): expected a Parameter or None, "
                            f"got {type(param).__name__} (wrap a tensor in nn.Parameter)")
        self._forget(name, "_parameters")
        self._parameters[name] = param
        object.__setattr__(self, name, param)

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Register a non-trainable tensor (running statistics, masks) that moves and casts with the module.

        A persistent buffer is part of :meth:`state_dict`; ``persistent=False`` keeps it out.
        """
        self._check_name("register_buffer", name)
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"{type(self).__name__}.register_buffer({name!r}): expected a Tensor or None, "
                            f"got {type(tensor).__name__}")
        self._forget(name, "_buffers")
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent_buffers.add(name)
        object.__setattr__(self, name, tensor)

    def add_module(self, name: str, module: Module | None) -> None:
        """Register a sub-module under ``name`` (its parameters get the prefix ``name.``)."""
        self._check_name("add_module", name)
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__}.add_module({name!r}): expected a Module or None, "
                            f"got {type(module).__name__}")
        self._forget(name, "_modules")
        self._modules[name] = module
        object.__setattr__(self, name, module)

    register_module = add_module

    def get_submodule(self, target: str) -> Module:
        """The sub-module at the dotted path ``target`` (``""`` is this module)."""
        module = self
        for part in target.split(".") if target else []:
            child = module._modules.get(part)
            if child is None:
                raise AttributeError(f"{type(module).__name__} has no submodule {part!r} (looking up {target!r})")
            module = child
        return module

    def forward(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} does not implement forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # ---------------------------------------------------------------- traversal
    def named_modules(self, memo: set[int] | None = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Module]]:
        """``(name, module)`` for this module and every descendant, depth-first in assignment order.

        A module reachable twice is yielded once (unless ``remove_duplicate=False``).
        """
        seen: set[int] = memo if memo is not None else set()
        stack: list[tuple[str, Module]] = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if remove_duplicate:
                if id(module) in seen:
                    continue
                seen.add(id(module))
            yield name, module
            children = [(f"{name}.{n}" if name else n, m) for n, m in module._modules.items() if m is not None]
            stack.extend(reversed(children))

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        seen: set[int] = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def _named_members(self, table: str, prefix: str, recurse: bool,
                       remove_duplicate: bool) -> Iterator[tuple[str, Any]]:
        seen: set[int] = set()
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for module_name, module in modules:
            for name, value in getattr(module, table).items():
                if value is None:
                    continue
                if remove_duplicate:
                    if id(value) in seen:
                        continue
                    seen.add(id(value))
                yield (f"{module_name}.{name}" if module_name else name), value

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        """``(dotted name, Parameter)`` pairs in a deterministic order (assignment order, depth-first).

        A parameter shared by two modules (tied weights) is yielded once, under its first name.
        """
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Tensor]]:
        """``(dotted name, buffer)`` pairs, in the same order as :meth:`named_parameters`."""
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call ``fn`` on every sub-module (children first) and then on this module; returns self.

        The usual use is initialisation: ``model.apply(init_weights)``.
        """
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ---------------------------------------------------------------- modes and gradients
    def train(self, mode: bool = True) -> Module:
        """Training mode (dropout active) for this module and all descendants; returns self."""
        if not isinstance(mode, bool):
            raise TypeError(f"{type(self).__name__}.train: mode must be a bool, got {type(mode).__name__}")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        """Evaluation mode (dropout off); returns self."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Set ``requires_grad`` of every parameter (freeze with False); returns self."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every parameter's gradient: ``.grad = None`` (default), or fill it with zeros."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad.zero_()

    # ---------------------------------------------------------------- device and dtype
    def _convert(self, fn: Callable[[Any], Any]) -> Module:
        """Replace the array of every parameter, buffer and gradient with ``fn(array)`` (tensors stay the same
        objects, so optimizers holding them keep working)."""
        seen: set[int] = set()
        for module in self.modules():
            for t in list(module._parameters.values()) + list(module._buffers.values()):
                if t is None or id(t) in seen:
                    continue
                seen.add(id(t))
                t.array = fn(t.array)
                if t.grad is not None:
                    t.grad.array = fn(t.grad.array)
        return self

    def to(self, *args: Any, **kwargs: Any) -> Module:
        """Move and/or cast the parameters and buffers in place, as ``torch.nn.Module.to``; returns self.

        ``to(device)``, ``to(dtype)``, ``to(device, dtype)``, ``to(tensor)``, or keywords ``device=``, ``dtype=``.
        A dtype (floating point only) applies to floating-point parameters and buffers; integer buffers keep
        theirs. Gradients are moved and cast with their tensors.

        Raises:
            TypeError: a non-floating dtype. DeviceError: an unknown or unusable device.
        """
        device, dtype = _resolve_to_args(args, kwargs)

        def convert(array: Any) -> Any:
            if dtype is not None and array.dtype.kind in "fc" and array.dtype != dtype:
                array = array.astype(dtype)
            if device is not None:
                array = to_device(array, device)
            return array

        return self._convert(convert)

    def double(self) -> Module:
        """Cast floating-point parameters and buffers to float64; returns self."""
        return self.to(np.float64)

    def float(self) -> Module:
        """Cast floating-point parameters and buffers to float32; returns self."""
        return self.to(np.float32)

    def half(self) -> Module:
        """Cast floating-point parameters and buffers to float16; returns self."""
        return self.to(np.float16)

    def cpu(self) -> Module:
        return self.to("cpu")

    def cuda(self, device: int | str | None = None) -> Module:
        """Move to the GPU (``cuda:device``; raises DeviceError without CuPy or a GPU)."""
        if device is None:
            return self.to("cuda")
        return self.to(device if isinstance(device, str) else f"cuda:{int(device)}")

    # ---------------------------------------------------------------- state
    def _state_items(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        """Every parameter and persistent buffer under its dotted name; tied tensors under each of their names."""
        for module_name, module in self.named_modules(prefix=prefix, remove_duplicate=False):
            dotted = f"{module_name}." if module_name else ""
            for name, p in module._parameters.items():
                if p is not None:
                    yield dotted + name, p
            for name, b in module._buffers.items():
                if b is not None and name not in module._non_persistent_buffers:
                    yield dotted + name, b

    def state_dict(self, destination: Any = None, prefix: str = "",
                   keep_vars: bool = False) -> OrderedDict[str, Tensor]:
        """An ordered dict of dotted name -> Tensor: parameters and persistent buffers, as PyTorch names them.

        Values are detached tensors sharing the parameters' memory (the Parameters themselves with
        ``keep_vars=True``). A tensor registered under two names (tied weights) appears under both.
        """
        out = OrderedDict() if destination is None else destination
        for name, t in self._state_items(prefix):
            out[name] = t if keep_vars else t.detach()
        return out

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True,
                        assign: bool = False) -> IncompatibleKeys:
        """Copy values into the parameters and buffers, cast to each one's dtype and device; all or nothing.

        Every value is checked and converted first (key, shape, a dtype that casts without loss of kind, the
        device transfer); only when all pass is any tensor changed, so a failed load leaves the module as it was.
        Values are copied in place (``copy_`` under ``no_grad``, as PyTorch), so tensors taken from
        ``state_dict()`` earlier see them, and a pending backward through the old values raises.

        Args:
            state_dict: name -> Tensor, NumPy/CuPy array, or anything ``numpy.asarray`` takes (a CPU PyTorch
                tensor included).
            strict: raise when a key is missing or unexpected (shape and dtype problems always raise).
            assign: accepted for PyTorch compatibility; values are always copied into the existing tensors.

        Returns:
            ``IncompatibleKeys(missing_keys, unexpected_keys)`` (a named tuple; equal to a plain 2-tuple).

        Raises:
            StateDictError: listing every missing, unexpected, mis-shaped or wrongly typed key, before
                anything is changed.
            TypeError: ``state_dict`` is not a mapping.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"{type(self).__name__}.load_state_dict: expected a mapping of name -> tensor, "
                            f"got {type(state_dict).__name__}")
        own: dict[str, Tensor] = {}
        for name, t in self._state_items():
            own.setdefault(name, t)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        converted: list[tuple[Tensor, Any]] = []
        bad = []
        for name, value in state_dict.items():
            if name not in own:
                continue
            target = own[name]
            try:
                array = serialization.as_array(value)
            except Exception as exc:  # noqa: BLE001 - anything numpy.asarray rejects: reported with the rest
                bad.append(f"{name}: cannot convert {type(value).__name__} to an array ({exc})")
                continue
            if tuple(array.shape) != tuple(target.shape):
                bad.append(f"{name}: expected {tuple(target.shape)}, got {tuple(array.shape)}")
                continue
            problem = _cast_problem(array.dtype, target.dtype)
            if problem:
                bad.append(f"{name}: {problem}")
                continue
            try:
                moved = to_device(array, target.device)
                new = get_array_module(moved).array(moved, dtype=target.dtype, copy=True)
            except Exception as exc:  # noqa: BLE001 - a device or cast failure: reported with the rest
                bad.append(f"{name}: cannot move to {target.device} as {target.dtype} ({exc})")
                continue
            converted.append((target, new))
        problems = []
        if strict and missing:
            problems.append(f"missing keys: {missing}")
        if strict and unexpected:
            problems.append(f"unexpected keys: {unexpected}")
        if bad:
            problems.append(f"mis-shaped or wrongly typed keys: {bad}")
        if problems:
            raise StateDictError(f"error loading state dict into {type(self).__name__}: " + "; ".join(problems))
        with no_grad():  # nothing can fail from here on: shapes, dtypes and devices all match
            for target, new in converted:
                if _writable(target.array):
                    target.copy_(new)  # in place, as PyTorch: tensors sharing the storage see the new values
                else:  # a read-only view (e.g. a broadcast buffer): give the tensor the new array instead
                    target.array = new
        return IncompatibleKeys(missing, unexpected)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write ``state_dict()`` to ``path``, atomically (see :func:`tinygrad_rnn.save`), with this module's
        configuration (its class and repr) in the checkpoint's metadata."""
        serialization.save(self.state_dict(), path, metadata={"module": type(self).__name__, "repr": repr(self)})

    def load(self, path: str | os.PathLike[str], strict: bool = True) -> Module:
        """Load parameters from a file written by :meth:`save` (or ``tinygrad_rnn.save(state_dict)``); returns self.

        Raises:
            StateDictError: the checkpoint does not fit this module (the message quotes the configuration it
                was saved from, when known); nothing is changed.
            CheckpointError: the file is truncated, corrupted, foreign or in a newer format.
        """
        state = serialization.load(path)
        if not isinstance(state, Mapping):
            raise serialization.CheckpointError(f"{type(self).__name__}.load: {os.fspath(path)!r} holds a "
                                                f"{type(state).__name__}, not a state dict")
        try:
            self.load_state_dict(state, strict=strict)
        except StateDictError as exc:
            saved = serialization.read_metadata(path).get("repr")
            if saved is None:
                raise
            raise StateDictError(f"{exc}; the checkpoint {os.fspath(path)!r} was saved from {saved}") from None
        return self

    # ---------------------------------------------------------------- printing
    def extra_repr(self) -> str:
        """The text between the parentheses of this module's repr (its settings); subclasses override it."""
        return ""

    def _get_name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({name}): " + _add_indent(repr(m), 2) for name, m in self._modules.items()]
        lines = extra_lines + child_lines
        body = ""
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                body = extra_lines[0]
            else:
                body = "\n  " + "\n  ".join(lines) + "\n"
        return f"{self._get_name()}({body})"


def _writable(array: Any) -> bool:
    flags = getattr(array, "flags", None)
    return flags is None or bool(getattr(flags, "writeable", True))


def _cast_problem(source: Any, target: Any) -> str | None:
    """Why an array of dtype ``source`` cannot be loaded into a tensor of dtype ``target`` (None if it can).

    Numbers load into floating tensors (cast, as PyTorch's ``copy_``); an integer or bool tensor accepts only
    integers or bools (no silent truncation of floats); strings, objects, dates are refused.
    """
    source, target = np.dtype(source), np.dtype(target)
    if source.kind not in "biufc":
        return f"expected numbers for a {target} tensor, got dtype {source}"
    if source.kind == "c" and target.kind != "c":
        return f"cannot load complex values ({source}) into a {target} tensor"
    if target.kind in "biu" and source.kind in "fc":
        return f"cannot load {source} values into a {target} tensor without truncating them"
    return None
