"""Adam and AdamW (``torch.optim.Adam``, ``torch.optim.AdamW``)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from tinygrad_rnn.optim.optimizer import (
    COUNT,
    PARAM,
    Optimizer,
    check_betas,
    check_bool,
    check_number,
    check_torch_switches,
    lerp_,
)
from tinygrad_rnn.tensor import Tensor

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015, "Adam: A Method for Stochastic Optimization"), with PyTorch's eps placement.

    For each parameter ``p`` with gradient ``g`` at step ``t = 1, 2, ...`` (``torch.optim.Adam``'s rule)::

        g ← -g                                          (maximize)
        p ← p·(1 - lr·weight_decay)                     (decoupled_weight_decay: AdamW)
        g ← g + weight_decay·p                          (otherwise: L2 penalty)
        m ← β1·m + (1 - β1)·g
        v ← β2·v + (1 - β2)·g²
        v̂ ← max(v̂, v)                                  (amsgrad, Reddi et al., 2018)
        p ← p - lr/(1 - β1^t) · m / (sqrt(v or v̂)/sqrt(1 - β2^t) + eps)

    Args:
        params: Tensors or parameter groups (see :class:`Optimizer`).
        lr: >= 0 (default 1e-3). betas: ``(β1, β2)``, each in [0, 1) (default (0.9, 0.999)).
        eps: >= 0 (default 1e-8). weight_decay: >= 0 (default 0). amsgrad: default False.
        maximize: ascend the objective. decoupled_weight_decay: AdamW's decay instead of the L2 penalty.
        foreach, fused, capturable: PyTorch's implementation switches, accepted and ignored;
            ``differentiable=True`` is refused (updates run outside the tape).

    State per parameter: ``step``, ``exp_avg`` (m), ``exp_avg_sq`` (v), ``max_exp_avg_sq`` (v̂, amsgrad).

    Raises:
        OptimizerError: bad params or an option out of range.
    """

    _state_kinds: ClassVar[dict[str, str]] = {"step": COUNT, "exp_avg": PARAM, "exp_avg_sq": PARAM,
                                              "max_exp_avg_sq": PARAM}

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 amsgrad: bool = False, *, foreach: bool | None = None, maximize: bool = False,
                 capturable: bool = False, differentiable: bool = False, fused: bool | None = None,
                 decoupled_weight_decay: bool = False):
        check_torch_switches(type(self).__name__, foreach, fused, capturable, differentiable)
        betas = tuple(betas) if isinstance(betas, list) else betas
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                                      "amsgrad": amsgrad, "maximize": maximize,
                                      "decoupled_weight_decay": decoupled_weight_decay})

    def _check_options(self, group: Mapping[str, Any]) -> None:
        name = type(self).__name__
        check_number(name, "lr", group["lr"])
        check_betas(name, group["betas"])
        check_number(name, "eps", group["eps"])
        check_number(name, "weight_decay", group["weight_decay"])
        for key in ("amsgrad", "maximize", "decoupled_weight_decay"):
            check_bool(name, key, group[key])

    def _required_state(self, group: Mapping[str, Any]) -> set[str]:
        return {"step", "exp_avg", "exp_avg_sq"} | ({"max_exp_avg_sq"} if group["amsgrad"] else set())

    def _update_group(self, group: dict[str, Any]) -> None:
        lr, eps, weight_decay = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
        beta1, beta2 = (float(b) for b in group["betas"])
        for p, g, state, xp in self._with_grads(group, "exp_avg", "exp_avg_sq"):
            if group["amsgrad"] and "max_exp_avg_sq" not in state:
                state["max_exp_avg_sq"] = xp.zeros_like(p.array)
            if group["maximize"]:
                g = -g
            state["step"] += 1
            t = state["step"]
            if weight_decay != 0:
                if group["decoupled_weight_decay"]:
                    p.array *= 1 - lr * weight_decay
                else:
                    g = g + weight_decay * p.array
            m, v = state["exp_avg"], state["exp_avg_sq"]
            lerp_(m, g, 1 - beta1)
            v *= beta2
            v += (1 - beta2) * (g * g)
            if group["amsgrad"]:
                xp.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
                v = state["max_exp_avg_sq"]
            step_size = lr / (1 - beta1**t)
            bias_correction2_sqrt = math.sqrt(1 - beta2**t)
            denom = xp.sqrt(v) / bias_correction2_sqrt + eps
            p.array -= step_size * (m / denom)


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter, 2019, "Decoupled Weight Decay Regularization"): Adam whose weight decay
    shrinks the parameter directly, ``p ← p·(1 - lr·weight_decay)``, instead of entering the moments.

    Same arguments, state and errors as :class:`Adam`, with ``weight_decay`` defaulting to 1e-2 (as PyTorch).
    """

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 1e-2,
                 amsgrad: bool = False, *, maximize: bool = False, foreach: bool | None = None,
                 capturable: bool = False, differentiable: bool = False, fused: bool | None = None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize, foreach=foreach,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)
