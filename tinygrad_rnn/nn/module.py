"""``Module`` and ``Parameter``: named, ordered containers of trainable tensors."""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any, Iterator, Mapping

from tinygrad_rnn import serialization
from tinygrad_rnn.backend import get_array_module, normalize_device, to_device
from tinygrad_rnn.tensor import Tensor

__all__ = ["Module", "Parameter", "StateDictError"]


class StateDictError(KeyError):
    """``load_state_dict`` found missing, unexpected or mis-shaped keys (all are listed)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class Parameter(Tensor):
    """A Tensor that a :class:`Module` registers as trainable (``requires_grad=True``)."""

    __slots__ = ()

    def __init__(self, data: Any, requires_grad: bool = True, dtype: Any = None, device: str | None = None):
        super().__init__(data, requires_grad=requires_grad, dtype=dtype, device=device)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of layers: holds Parameters and sub-Modules in the order they were assigned.

    Assigning a :class:`Parameter` or a :class:`Module` to an attribute registers it; ``named_parameters``
    yields them depth-first in that order, with dotted names (``"rnn.weight_ih_l0"``), exactly like PyTorch.
    """

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() before assigning {name}")
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    def forward(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} does not implement forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # ---------------------------------------------------------------- traversal
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        """``(name, module)`` for this module and every descendant, depth-first in assignment order."""
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            yield name, module
            children = [(f"{name}.{n}" if name else n, m) for n, m in module._modules.items()]
            stack.extend(reversed(children))

    def modules(self) -> Iterator["Module"]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        yield from self._modules.items()

    def children(self) -> Iterator["Module"]:
        yield from self._modules.values()

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """``(dotted name, Parameter)`` pairs in a deterministic order (assignment order, depth-first)."""
        seen: set[int] = set()
        for module_name, module in self.named_modules(prefix):
            for name, p in module._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{module_name}.{name}" if module_name else name), p

    def parameters(self) -> Iterator[Parameter]:
        for _, p in self.named_parameters():
            yield p

    # ---------------------------------------------------------------- modes and gradients
    def train(self, mode: bool = True) -> "Module":
        """Training mode (dropout active) for this module and all descendants; returns self."""
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> "Module":
        """Evaluation mode (dropout off); returns self."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Set every parameter's ``.grad`` to None."""
        for p in self.parameters():
            p.grad = None

    def to(self, device: str | None = None, dtype: Any = None) -> "Module":
        """Move (and/or cast) every parameter in place; gradients are dropped. Returns self."""
        dev = None if device is None else normalize_device(device)
        for p in self.parameters():
            data = p.array
            if dtype is not None:
                data = get_array_module(data).asarray(data, dtype=dtype)
            if dev is not None:
                data = to_device(data, dev)
            p.array = data
            p.grad = None
        return self

    # ---------------------------------------------------------------- state
    def state_dict(self) -> "OrderedDict[str, Tensor]":
        """An ordered dict of dotted name -> detached Tensor sharing the parameter's data."""
        return OrderedDict((name, p.detach()) for name, p in self.named_parameters())

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> tuple[list[str], list[str]]:
        """Copy values into the parameters, cast to each parameter's dtype and device.

        Args:
            state_dict: name -> Tensor, NumPy/CuPy array, or anything ``numpy.asarray`` takes (a CPU PyTorch
                tensor included).
            strict: raise when a key is missing or unexpected (shape mismatches always raise).

        Returns:
            ``(missing_keys, unexpected_keys)``.

        Raises:
            StateDictError: listing every missing, unexpected and mis-shaped key, before anything is changed.
        """
        own = dict(self.named_parameters())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        arrays: dict[str, Any] = {}
        mis_shaped = []
        for name, value in state_dict.items():
            if name not in own:
                continue
            array = serialization.as_array(value)
            if tuple(array.shape) != tuple(own[name].shape):
                mis_shaped.append(f"{name}: expected {tuple(own[name].shape)}, got {tuple(array.shape)}")
            arrays[name] = array
        problems = []
        if strict and missing:
            problems.append(f"missing keys: {missing}")
        if strict and unexpected:
            problems.append(f"unexpected keys: {unexpected}")
        if mis_shaped:
            problems.append(f"mis-shaped keys: {mis_shaped}")
        if problems:
            raise StateDictError(f"error loading state dict into {type(self).__name__}: " + "; ".join(problems))
        for name, array in arrays.items():
            p = own[name]
            array = to_device(array, p.device)
            p.array = get_array_module(array).array(array, dtype=p.dtype, copy=True)
        return missing, unexpected

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write ``state_dict()`` to ``path`` (``.npz``), atomically (see :mod:`tinygrad_rnn.serialization`)."""
        serialization.save(self.state_dict(), path)

    def load(self, path: str | os.PathLike[str], strict: bool = True) -> "Module":
        """Load parameters from a ``.npz`` written by :meth:`save`; returns self."""
        self.load_state_dict(serialization.load(path), strict=strict)
        return self

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, child in self._modules.items():
            lines.append(f"  ({name}): " + repr(child).replace("\n", "\n  "))
        return "\n".join(lines) + ")" if len(lines) > 1 else lines[0] + ")"
