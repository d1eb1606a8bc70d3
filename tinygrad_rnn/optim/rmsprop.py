"""RMSprop (``torch.optim.RMSprop``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from tinygrad_rnn.optim.optimizer import COUNT, PARAM, Optimizer, check_bool, check_number, check_torch_switches, lerp_
from tinygrad_rnn.tensor import Tensor

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """RMSprop (Hinton, Srivastava & Swersky, 2012, "Neural Networks for Machine Learning", lecture 6e;
    the centered form from Graves, 2013, "Generating Sequences With Recurrent Neural Networks").

    For each parameter ``p`` with gradient ``g`` (``torch.optim.RMSprop``'s rule)::

        g ← -g                                   (maximize)
        g ← g + weight_decay·p
        v ← α·v + (1 - α)·g²
        ḡ ← α·ḡ + (1 - α)·g;   a ← sqrt(v - ḡ²) + eps      (centered)
        a ← sqrt(v) + eps                                   (otherwise)
        b ← momentum·b + g/a;  p ← p - lr·b                 (momentum > 0)
        p ← p - lr·g/a                                      (otherwise)

    Args:
        params: Tensors or parameter groups (see :class:`Optimizer`).
        lr: >= 0 (default 1e-2). alpha: smoothing constant, >= 0 (default 0.99). eps: >= 0 (default 1e-8).
        weight_decay: >= 0 (default 0). momentum: >= 0 (default 0). centered: default False.
        maximize: ascend the objective.
        foreach, fused, capturable: PyTorch's implementation switches, accepted and ignored;
            ``differentiable=True`` is refused (updates run outside the tape).

    State per parameter: ``step``, ``square_avg`` (v), ``momentum_buffer`` (b), ``grad_avg`` (ḡ).

    Raises:
        OptimizerError: bad params or an option out of range.
    """

    _state_kinds: ClassVar[dict[str, str]] = {"step": COUNT, "square_avg": PARAM, "momentum_buffer": PARAM,
                                              "grad_avg": PARAM}

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]], lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False,
                 capturable: bool = False, foreach: bool | None = None, maximize: bool = False,
                 differentiable: bool = False):
        check_torch_switches("RMSprop", foreach, None, capturable, differentiable)
        super().__init__(params, {"lr": lr, "alpha": alpha, "eps": eps, "weight_decay": weight_decay,
                                      "momentum": momentum,
                                      "centered": centered, "maximize": maximize})

    def _check_options(self, group: Mapping[str, Any]) -> None:
        for key in ("lr", "alpha", "eps", "weight_decay", "momentum"):
            check_number("RMSprop", key, group[key])
        check_bool("RMSprop", "centered", group["centered"])
        check_bool("RMSprop", "maximize", group["maximize"])

    def _required_state(self, group: Mapping[str, Any]) -> set[str]:
        return ({"step", "square_avg"} | ({"momentum_buffer"} if group["momentum"] > 0 else set())
                | ({"grad_avg"} if group["centered"] else set()))

    def _update_group(self, group: dict[str, Any]) -> None:
        lr, alpha, eps = float(group["lr"]), float(group["alpha"]), float(group["eps"])
        weight_decay, momentum = float(group["weight_decay"]), float(group["momentum"])
        for p, g, state, xp in self._with_grads(group, "square_avg"):
            if momentum > 0 and "momentum_buffer" not in state:
                state["momentum_buffer"] = xp.zeros_like(p.array)
            if group["centered"] and "grad_avg" not in state:
                state["grad_avg"] = xp.zeros_like(p.array)
            if group["maximize"]:
                g = -g
            state["step"] += 1
            if weight_decay != 0:
                g = g + weight_decay * p.array
            v = state["square_avg"]
            v *= alpha
            v += (1 - alpha) * (g * g)
            if group["centered"]:
                grad_avg = state["grad_avg"]
                lerp_(grad_avg, g, 1 - alpha)
                avg = xp.sqrt(v - grad_avg * grad_avg)
            else:
                avg = xp.sqrt(v)
            avg += eps
            if momentum > 0:
                buf = state["momentum_buffer"]
                buf *= momentum
                buf += g / avg
                p.array -= lr * buf
            else:
                p.array -= lr * (g / avg)
