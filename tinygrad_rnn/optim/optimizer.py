"""The :class:`Optimizer` base class: parameter groups, per-parameter state, closures, state dicts.

Follows ``torch.optim.Optimizer``: ``param_groups`` is a list of dicts, each holding its ``"params"`` (a list
of Tensors) and its own copy of every option (``lr``, ``momentum``, ...), missing options filled from
``defaults``; ``state`` maps each parameter to a dict of its buffers (``exp_avg``, ``step``, ...).
``state_dict()`` has torch's layout: ``{"state": {index: {...}}, "param_groups": [{..., "params": [indices]}]}``,
parameters numbered in group order.

Updates run on the raw arrays (``p.array``, ``p.grad.array``) in place, under ``no_grad``, so a parameter
keeps its dtype, its device and its identity (the model still holds the same Tensor).
"""

from __future__ import annotations

import copy
import math
import numbers
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, ClassVar

import numpy as np

from tinygrad_rnn.backend import device_of, get_array_module, to_device
from tinygrad_rnn.nn.module import Parameter
from tinygrad_rnn.tensor import OpError, Tensor, enable_grad, no_grad

__all__ = ["Optimizer", "OptimizerError"]


class OptimizerError(OpError, TypeError):
    """An optimizer or a scheduler got a bad argument or a state dict it cannot load.

    A subclass of :class:`~tinygrad_rnn.tensor.OpError` (a ``ValueError``) and of ``TypeError``, so code
    written for PyTorch, which raises either for these mistakes, catches it.
    """


# ------------------------------------------------------------------------------------------------ checks


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_number(owner: str, name: str, value: Any, low: float = 0.0, high: float = math.inf,
                 low_open: bool = False, high_open: bool = False, integer: bool = False) -> None:
    """Raise :class:`OptimizerError` unless ``value`` is a finite real number (an int if ``integer``) in range."""
    lo, hi = ("(" if low_open else "["), (")" if high_open else "]")
    kind = "an integer" if integer else "a finite number"
    if high == math.inf:
        expected = f"{kind} {'>' if low_open else '>='} {low}"
    else:
        expected = f"{kind} in {lo}{low}, {high}{hi}"
    if integer and not (isinstance(value, numbers.Integral) and not isinstance(value, bool)):
        raise OptimizerError(f"{owner}: {name} must be {expected}, got {value!r} ({type(value).__name__})")
    if not _is_number(value):
        raise OptimizerError(f"{owner}: {name} must be {expected}, got {value!r} ({type(value).__name__})")
    try:
        v = float(value)
    except OverflowError:  # an int beyond float range
        v = math.inf
    ok = math.isfinite(v) and (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
    if not ok:
        raise OptimizerError(f"{owner}: {name} must be {expected}, got {value!r}")


def check_bool(owner: str, name: str, value: Any) -> None:
    """Raise :class:`OptimizerError` unless ``value`` is a bool."""
    if not isinstance(value, (bool, np.bool_)):
        raise OptimizerError(f"{owner}: {name} must be True or False, got {value!r} ({type(value).__name__})")


def check_torch_switches(owner: str, foreach: Any = None, fused: Any = None, capturable: Any = False,
                         differentiable: Any = False) -> None:
    """PyTorch's implementation switches (``foreach``, ``fused``, ``capturable``) are accepted and ignored: there
    is one NumPy/CuPy code path. ``differentiable=True`` is refused: updates run outside the tape."""
    for key, value in (("foreach", foreach), ("fused", fused), ("capturable", capturable)):
        if value is not None and not isinstance(value, (bool, np.bool_)):
            raise OptimizerError(f"{owner}: {key} must be None, True or False, got {value!r}")
    if differentiable:
        raise OptimizerError(f"{owner}: differentiable=True is not supported (updates run outside the tape)")


def check_betas(owner: str, value: Any) -> None:
    """``betas`` must be a pair ``(beta1, beta2)``, each a finite number in [0, 1)."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        got = f"{value!r} ({type(value).__name__}" + (f" of length {len(value)})" if isinstance(value, (tuple, list))
                                                      else ")")
        raise OptimizerError(f"{owner}: betas must be a pair (beta1, beta2), each in [0, 1), got {got}")
    for i, beta in enumerate(value):
        check_number(owner, f"betas[{i}]", beta, 0.0, 1.0, high_open=True)


# ------------------------------------------------------------------------------------------------ state kinds

# How each per-parameter state entry is checked and converted by ``load_state_dict``.
COUNT = "count"  # a non-negative integer (a step count); stored as a Python int
PARAM = "param"  # an array of the parameter's shape, cast to its dtype and moved to its device
OPTIONAL_PARAM = "optional param"  # PARAM or None (SGD's momentum buffer before the first step)


def _as_backend_array(value: Any) -> Any:
    """A Tensor's array, a backend array, or ``numpy.asarray(value)`` (a CPU torch tensor, a list)."""
    if isinstance(value, Tensor):
        return value.array
    if isinstance(value, np.ndarray) or get_array_module(value) is not np:
        return value
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _as_count(owner: str, where: str, value: Any) -> int:
    try:
        array = _as_backend_array(value)
        ok = array.ndim == 0 and array.dtype.kind in "iuf" and float(array) >= 0 and float(array) == int(float(array))
    except Exception:  # noqa: BLE001 - anything unusable is reported below
        ok = False
    if not ok:
        raise OptimizerError(f"{owner}.load_state_dict: {where} must be a non-negative integer count, got {value!r}")
    return int(float(array))


def _as_param_array(owner: str, where: str, value: Any, p: Tensor, shape: tuple[int, ...] | None = None) -> Any:
    """``value`` as an array of ``p``'s dtype and device, of ``shape`` (default: ``p.shape``)."""
    shape = tuple(p.shape) if shape is None else shape
    try:
        array = _as_backend_array(value)
    except Exception as exc:  # noqa: BLE001
        raise OptimizerError(f"{owner}.load_state_dict: {where} must be an array of shape {shape}, "
                             f"got {type(value).__name__} ({exc})") from None
    if not hasattr(array, "dtype") or array.dtype.kind not in "fiu":
        raise OptimizerError(f"{owner}.load_state_dict: {where} must be a real floating-point array of shape "
                             f"{shape}, got dtype {getattr(array, 'dtype', type(value).__name__)}")
    if tuple(array.shape) != shape:
        raise OptimizerError(f"{owner}.load_state_dict: {where} has shape {tuple(array.shape)}, "
                             f"expected {shape} (the parameter's)")
    xp = get_array_module(p.array)
    return xp.array(to_device(array, p.device), dtype=p.dtype, copy=True)


def _export(value: Any) -> Any:
    """A copy of one state value for ``state_dict()``: arrays become Tensors, lists are copied item by item."""
    if isinstance(value, (list, tuple)):
        return type(value)(_export(v) for v in value)
    if isinstance(value, Tensor):
        return Tensor(value.array)
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return Tensor(value)
    return copy.deepcopy(value)


# ------------------------------------------------------------------------------------------------ Optimizer


class Optimizer:
    """Base class of all optimizers (``torch.optim.Optimizer``).

    Args:
        params: an iterable of Tensors that require grad (e.g. ``model.parameters()``; the ``(name, tensor)``
            pairs of ``model.named_parameters()`` too, the names kept as the group's ``param_names``), or an
            iterable of dicts (parameter groups), each with a ``"params"`` entry and any options to override,
            e.g. ``[{"params": model.rnn.parameters()}, {"params": model.fc.parameters(), "lr": 1e-3}]``.
            It is read once, in order (a set is refused: its order changes between runs).
        defaults: the default value of every option of this optimizer.

    Attributes:
        param_groups: list of dicts: ``"params"`` (list of Tensors) and every option.
        defaults: the options' defaults.
        state: parameter -> dict of its buffers (empty until its first update).

    Raises:
        OptimizerError: ``params`` is a Tensor, a set, empty, holds something other than Tensors/dicts, a
            tensor that does not require grad (a frozen :class:`~tinygrad_rnn.nn.Parameter` is accepted and
            skipped while it has no gradient, as in PyTorch), a non-leaf tensor, or a parameter twice; an option
            is out of range (the message names the optimizer, the option, the value and the valid range).
    """

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]], defaults: dict[str, Any]):
        name = type(self).__name__
        self.defaults = dict(defaults)
        self._check_options(self.defaults)
        if isinstance(params, Tensor):
            raise OptimizerError(f"{name}: params must be an iterable of Tensors or dicts, got a Tensor "
                                 f"(of shape {tuple(params.shape)}); pass [tensor] or model.parameters()")
        if isinstance(params, (set, frozenset)):
            raise OptimizerError(f"{name}: params must be an ordered iterable of Tensors or dicts, got a set "
                                 "(its order changes between runs); pass a list")
        if isinstance(params, Mapping):
            raise OptimizerError(f"{name}: params must be an iterable of Tensors or dicts, got a "
                                 f"{type(params).__name__}; wrap one parameter group in a list: [group]")
        try:
            items: list[Any] = list(params)
        except TypeError:
            raise OptimizerError(f"{name}: params must be an iterable of Tensors or dicts, got "
                                 f"{type(params).__name__}") from None
        if not items:
            raise OptimizerError(f"{name}: got an empty parameter list (expected at least one Tensor)")
        self.state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        if all(isinstance(item, Mapping) for item in items):
            for group in items:
                self.add_param_group(dict(group))
        elif any(isinstance(item, Mapping) for item in items):
            raise OptimizerError(f"{name}: params mixes dicts (parameter groups) and Tensors; pass one kind")
        else:
            self.add_param_group({"params": items})

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines) + "\n)"

    # -------------------------------------------------------------------------------------- groups
    def _check_options(self, group: Mapping[str, Any]) -> None:
        """Check every option of one group (or the defaults); subclasses raise :class:`OptimizerError`."""

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a parameter group: a dict with ``"params"`` and any options (the rest come from ``defaults``).

        Raises:
            OptimizerError: no ``"params"``, a bad parameter, a parameter already in another group, or an
                option out of range.
        """
        name = type(self).__name__
        if not isinstance(param_group, Mapping):
            raise OptimizerError(f"{name}.add_param_group: expected a dict with 'params', got "
                                 f"{type(param_group).__name__}")
        if "params" not in param_group:
            raise OptimizerError(f"{name}: a parameter group must have a 'params' entry, got keys "
                                 f"{sorted(param_group)}")
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise OptimizerError(f"{name}: a group's params must be ordered (a list), got a set "
                                 "(its order changes between runs)")
        else:
            try:
                params = list(params)
            except TypeError:
                raise OptimizerError(f"{name}: a group's params must be an iterable of Tensors, got "
                                     f"{type(params).__name__}") from None
        if not params:
            raise OptimizerError(f"{name}: got a parameter group with an empty parameter list")
        named = [isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in params]
        if any(named):  # model.named_parameters(): (name, tensor) pairs, as torch >= 2.5 accepts
            if not all(named):
                raise OptimizerError(f"{name}: params mixes (name, tensor) pairs and bare tensors; pass one kind")
            group["param_names"] = [n for n, _ in params]
            params = [p for _, p in params]
        for p in params:
            if not isinstance(p, Tensor):
                raise OptimizerError(f"{name}: params must be an iterable of Tensors or dicts, got an item of "
                                     f"type {type(p).__name__}")
            if not p.requires_grad and not isinstance(p, Parameter):  # a frozen Parameter is fine, as in torch
                raise OptimizerError(f"{name}: a tensor of shape {tuple(p.shape)} and dtype {p.dtype} does not "
                                     "require grad (expected tensors with requires_grad=True, or Parameters)")
            if not p.is_leaf:
                raise OptimizerError(f"{name}: can't optimize a non-leaf tensor (shape {tuple(p.shape)}): it is "
                                     "the result of an op; optimize the leaf it was computed from")
        if len({id(p) for p in params}) != len(params):
            raise OptimizerError(f"{name}: a parameter group lists the same parameter more than once")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise OptimizerError(f"{name}: some parameters appear in more than one parameter group")
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self._check_options(group)
        group["params"] = params
        self.param_groups.append(group)

    def _all_params(self) -> list[Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    # -------------------------------------------------------------------------------------- gradients
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients: ``.grad = None`` (the default, as PyTorch), or zero them in place."""
        for p in self._all_params():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad.array[...] = 0

    def _with_grads(self, group: Mapping[str, Any], *buffers: str,
                    **initial: Any) -> Iterator[tuple[Tensor, Any, dict[str, Any], Any]]:
        """``(p, its gradient array, its state, its array module)`` for each parameter of ``group`` that has a
        gradient. A parameter seen for the first time gets ``state = {"step": 0, **initial}`` and a zero array
        (like ``p``) for each name in ``buffers``."""
        for p in group["params"]:
            if p.grad is None:
                continue
            g = self._grad(p)
            xp = get_array_module(p.array)
            state = self.state[p]
            if not state:
                state["step"] = 0
                state.update(initial)
                for name in buffers:
                    state[name] = xp.zeros_like(p.array)
            yield p, g, state, xp

    def _grad(self, p: Tensor) -> Any:
        """``p.grad``'s array, checked against ``p`` (shape, dtype, device)."""
        g = p.grad
        array = g.array if isinstance(g, Tensor) else None
        if array is None:
            raise OptimizerError(f"{type(self).__name__}.step: a parameter's .grad must be a Tensor, got "
                                 f"{type(g).__name__}")
        if array.shape != p.array.shape or array.dtype != p.array.dtype or device_of(array) != p.device:
            raise OptimizerError(f"{type(self).__name__}.step: a gradient of shape {tuple(array.shape)}, dtype "
                                 f"{array.dtype} on {device_of(array)} does not match its parameter (shape "
                                 f"{tuple(p.shape)}, dtype {p.dtype} on {p.device})")
        return array

    # -------------------------------------------------------------------------------------- step
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One update of every parameter that has a gradient.

        Args:
            closure: optional; called (with gradients enabled) before the update to re-evaluate the model,
                typically ``opt.zero_grad(); loss = model(...); loss.backward(); return loss``.

        Returns:
            What ``closure`` returned (the loss), or None.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                self._update_group(group)
        return loss

    def _update_group(self, group: dict[str, Any]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # -------------------------------------------------------------------------------------- state dicts
    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state in ``torch.optim``'s layout (a copy: later steps do not change it).

        Returns:
            ``{"state": {i: {name: value}}, "param_groups": [{option: value, ..., "params": [i, ...]}]}``
            where ``i`` numbers the parameters in group order; arrays are returned as Tensors.
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            packed["params"] = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                packed["params"].append(index[id(p)])
            groups.append(packed)
        state = {index[id(p)]: {k: _export(v) for k, v in s.items()}
                 for p, s in self.state.items() if s and id(p) in index}
        return {"state": dict(sorted(state.items())), "param_groups": groups}

    # the per-parameter state entries of this optimizer: name -> kind (COUNT, PARAM, OPTIONAL_PARAM)
    _state_kinds: ClassVar[dict[str, str]] = {}

    def _required_state(self, group: Mapping[str, Any]) -> set[str]:
        """The state entries a parameter of ``group`` must have once it has any state."""
        return set()

    def _load_param_state(self, p: Tensor, group: Mapping[str, Any], saved: Any, where: str) -> dict[str, Any]:
        """Check one parameter's saved state and convert it to ``p``'s dtype and device (nothing is changed)."""
        owner = type(self).__name__
        if not isinstance(saved, Mapping):
            raise OptimizerError(f"{owner}.load_state_dict: {where} must be a dict, got {type(saved).__name__}")
        out: dict[str, Any] = {}
        if not saved:
            return out
        unknown = sorted(str(k) for k in saved if k not in self._state_kinds)
        if unknown:
            raise OptimizerError(f"{owner}.load_state_dict: {where} has unknown entries {unknown} "
                                 f"(expected some of {sorted(self._state_kinds)})")
        missing = sorted(self._required_state(group) - set(saved))
        if missing:
            raise OptimizerError(f"{owner}.load_state_dict: {where} lacks {missing} (needed with this group's "
                                 "options)")
        for key, value in saved.items():
            kind = self._state_kinds[key]
            if kind == COUNT:
                out[key] = _as_count(owner, f"{where}[{key!r}]", value)
            elif kind == OPTIONAL_PARAM and value is None:
                out[key] = None
            else:
                out[key] = _as_param_array(owner, f"{where}[{key!r}]", value, p)
        return out

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Load a state written by :meth:`state_dict` (or by ``torch.optim``'s, converted to arrays).

        Everything is checked first — the number of groups and of parameters per group, every option's
        range, every state entry's name, shape and dtype — and only then is anything changed: on error
        the optimizer is left as it was. Arrays are cast to each parameter's dtype and moved to its device.
        Options come from the saved groups (as PyTorch does); the parameters stay this optimizer's.

        Raises:
            OptimizerError: naming what does not match and what was expected.
        """
        owner = type(self).__name__
        if not isinstance(state_dict, Mapping) or not {"state", "param_groups"} <= set(state_dict):
            got = sorted(map(str, state_dict)) if isinstance(state_dict, Mapping) else type(state_dict).__name__
            raise OptimizerError(f"{owner}.load_state_dict: expected a dict with 'state' and 'param_groups' "
                                 f"(from Optimizer.state_dict()), got {got}")
        saved_groups, saved_state = state_dict["param_groups"], state_dict["state"]
        if not isinstance(saved_groups, (list, tuple)) or not all(isinstance(g, Mapping) for g in saved_groups):
            raise OptimizerError(f"{owner}.load_state_dict: 'param_groups' must be a list of dicts, got "
                                 f"{type(saved_groups).__name__}")
        if not isinstance(saved_state, Mapping):
            raise OptimizerError(f"{owner}.load_state_dict: 'state' must be a dict, got "
                                 f"{type(saved_state).__name__}")
        if len(saved_groups) != len(self.param_groups):
            raise OptimizerError(f"{owner}.load_state_dict: the state dict has {len(saved_groups)} parameter "
                                 f"group(s), this optimizer has {len(self.param_groups)}")
        id_map: dict[Any, tuple[Tensor, dict[str, Any]]] = {}
        new_groups = []
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups, strict=False)):
            ids = saved.get("params")
            if not isinstance(ids, (list, tuple)) or not all(
                    isinstance(k, numbers.Integral) and not isinstance(k, bool) for k in ids):
                raise OptimizerError(f"{owner}.load_state_dict: param_groups[{i}]['params'] must be a list of "
                                     f"integer indices, got {ids!r}")
            if len(ids) != len(group["params"]):
                raise OptimizerError(f"{owner}.load_state_dict: param_groups[{i}] has {len(ids)} parameter(s) in "
                                     f"the state dict, {len(group['params'])} in this optimizer")
            missing = sorted(k for k in self.defaults if k not in saved)
            if missing:
                raise OptimizerError(f"{owner}.load_state_dict: param_groups[{i}] lacks the option(s) {missing}")
            new_group = {k: copy.deepcopy(v) for k, v in saved.items() if k != "params"}
            self._check_options(new_group)
            new_group["params"] = group["params"]
            for k, p in zip(ids, group["params"], strict=False):
                if int(k) in id_map:
                    raise OptimizerError(f"{owner}.load_state_dict: parameter index {int(k)} appears twice in "
                                         "param_groups")
                id_map[int(k)] = (p, new_group)
            new_groups.append(new_group)
        new_state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        for key, saved in saved_state.items():
            try:
                k = int(key)
            except (TypeError, ValueError):
                k = None
            if k is None or k not in id_map:
                raise OptimizerError(f"{owner}.load_state_dict: 'state' has an entry for parameter {key!r}, which "
                                     "is in no parameter group")
            p, group = id_map[k]
            loaded = self._load_param_state(p, group, saved, f"state[{key!r}]")
            if loaded:
                new_state[p] = loaded
        self._check_loaded(new_state)
        self.param_groups = new_groups
        self.state = new_state

    def _check_loaded(self, state: Mapping[Tensor, dict[str, Any]]) -> None:
        """A last whole-state check before :meth:`load_state_dict` commits (LBFGS checks sizes across)."""


def lerp_(a: Any, b: Any, weight: float) -> None:
    """``a ← a + weight·(b - a)`` in place, evaluated as PyTorch's ``lerp_`` does (from the nearer end)."""
    if weight < 0.5:
        a += weight * (b - a)
    else:
        a[...] = b - (b - a) * (1 - weight)
