"""Stochastic gradient descent (``torch.optim.SGD``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from tinygrad_rnn.optim.optimizer import (
    OPTIONAL_PARAM,
    Optimizer,
    OptimizerError,
    check_bool,
    check_number,
    check_torch_switches,
)
from tinygrad_rnn.tensor import Tensor

__all__ = ["SGD"]


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, dampening, Nesterov momentum and weight decay.

    For each parameter ``p`` with gradient ``g`` (``torch.optim.SGD``'s rule; Nesterov momentum as in
    Sutskever et al., 2013, "On the importance of initialization and momentum in deep learning")::

        g ← -g                                   (maximize)
        g ← g + weight_decay·p
        b ← g                                    (first step)
        b ← momentum·b + (1 - dampening)·g       (later steps)
        g ← g + momentum·b  (nesterov)   or   g ← b
        p ← p - lr·g

    With ``momentum = 0`` this is the article's ``V_new = V_old - η dL/dV``.

    Args:
        params: Tensors or parameter groups (see :class:`Optimizer`).
        lr: learning rate, >= 0 (default 1e-3, as PyTorch).
        momentum: >= 0 (default 0). dampening: a finite number (default 0).
        weight_decay: L2 penalty, >= 0 (default 0). nesterov: needs momentum > 0 and dampening = 0.
        maximize: ascend the objective instead.
        foreach, fused, capturable: PyTorch's implementation switches, accepted and ignored;
            ``differentiable=True`` is refused (updates run outside the tape).

    State per parameter: ``momentum_buffer`` (with momentum).

    Raises:
        OptimizerError: bad params or an option out of range.
    """

    _state_kinds: ClassVar[dict[str, str]] = {"momentum_buffer": OPTIONAL_PARAM}

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]], lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False, *,
                 maximize: bool = False, foreach: bool | None = None, differentiable: bool = False,
                 fused: bool | None = None):
        check_torch_switches("SGD", foreach, fused, False, differentiable)
        super().__init__(params, {"lr": lr, "momentum": momentum, "dampening": dampening, "weight_decay": weight_decay,
                                      "nesterov": nesterov, "maximize": maximize})

    def _check_options(self, group: Mapping[str, Any]) -> None:
        check_number("SGD", "lr", group["lr"])
        check_number("SGD", "momentum", group["momentum"])
        check_number("SGD", "dampening", group["dampening"], -float("inf"))
        check_number("SGD", "weight_decay", group["weight_decay"])
        check_bool("SGD", "nesterov", group["nesterov"])
        check_bool("SGD", "maximize", group["maximize"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise OptimizerError(f"SGD: Nesterov momentum needs momentum > 0 and dampening = 0, got momentum="
                                 f"{group['momentum']}, dampening={group['dampening']}")

    def _update_group(self, group: dict[str, Any]) -> None:
        lr, momentum, dampening = float(group["lr"]), float(group["momentum"]), float(group["dampening"])
        weight_decay = float(group["weight_decay"])
        for p in group["params"]:
            if p.grad is None:
                continue
            g = self._grad(p)
            if group["maximize"]:
                g = -g
            if weight_decay != 0:
                g = g + weight_decay * p.array
            if momentum != 0:
                state = self.state[p]
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = g.copy()
                else:
                    buf *= momentum
                    buf += (1 - dampening) * g
                g = g + momentum * buf if group["nesterov"] else buf
            p.array -= lr * g
