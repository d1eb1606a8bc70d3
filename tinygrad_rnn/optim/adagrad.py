"""Adagrad (``torch.optim.Adagrad``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from tinygrad_rnn.backend import get_array_module
from tinygrad_rnn.optim.optimizer import COUNT, PARAM, Optimizer, check_bool, check_number, check_torch_switches
from tinygrad_rnn.tensor import Tensor

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    """Adagrad (Duchi, Hazan & Singer, 2011, "Adaptive Subgradient Methods for Online Learning and
    Stochastic Optimization").

    For each parameter ``p`` with gradient ``g`` at step ``t = 1, 2, ...`` (``torch.optim.Adagrad``'s rule)::

        g ← -g                                   (maximize)
        g ← g + weight_decay·p
        lr_t ← lr / (1 + (t - 1)·lr_decay)
        s ← s + g²                               (s starts at initial_accumulator_value)
        p ← p - lr_t · g / (sqrt(s) + eps)

    Args:
        params: Tensors or parameter groups (see :class:`Optimizer`).
        lr: >= 0 (default 1e-2). lr_decay: >= 0 (default 0). weight_decay: >= 0 (default 0).
        initial_accumulator_value: >= 0 (default 0). eps: >= 0 (default 1e-10). maximize: ascend.
        foreach, fused, capturable: PyTorch's implementation switches, accepted and ignored;
            ``differentiable=True`` is refused (updates run outside the tape).

    State per parameter (created at construction, as PyTorch): ``step``, ``sum`` (s). A group's own
    ``initial_accumulator_value`` is used for its parameters (PyTorch uses the constructor's for all groups).

    Raises:
        OptimizerError: bad params or an option out of range.
    """

    _state_kinds: ClassVar[dict[str, str]] = {"step": COUNT, "sum": PARAM}

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]], lr: float = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0, eps: float = 1e-10,
                 foreach: bool | None = None, *, maximize: bool = False, differentiable: bool = False,
                 fused: bool | None = None):
        check_torch_switches("Adagrad", foreach, fused, False, differentiable)
        super().__init__(params, {"lr": lr, "lr_decay": lr_decay, "weight_decay": weight_decay,
                                      "initial_accumulator_value": initial_accumulator_value, "eps": eps,
                                      "maximize": maximize})
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, group)

    def _check_options(self, group: Mapping[str, Any]) -> None:
        for key in ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            check_number("Adagrad", key, group[key])
        check_bool("Adagrad", "maximize", group["maximize"])

    def _required_state(self, group: Mapping[str, Any]) -> set[str]:
        return {"step", "sum"}

    def _init_state(self, p: Tensor, group: Mapping[str, Any]) -> None:
        xp = get_array_module(p.array)
        self.state[p]["step"] = 0
        self.state[p]["sum"] = xp.full_like(p.array, float(group["initial_accumulator_value"]))

    def _update_group(self, group: dict[str, Any]) -> None:
        lr, lr_decay, eps = float(group["lr"]), float(group["lr_decay"]), float(group["eps"])
        weight_decay = float(group["weight_decay"])
        for p in group["params"]:
            if p.grad is None:
                continue
            g = self._grad(p)
            xp = get_array_module(p.array)
            state = self.state[p]
            if not state:
                self._init_state(p, group)
            state["step"] += 1
            if group["maximize"]:
                g = -g
            if weight_decay != 0:
                g = g + weight_decay * p.array
            clr = lr / (1 + (state["step"] - 1) * lr_decay)
            s = state["sum"]
            s += g * g
            std = xp.sqrt(s) + eps
            p.array -= clr * (g / std)
