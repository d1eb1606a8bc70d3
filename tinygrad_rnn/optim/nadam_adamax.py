"""NAdam and Adamax (``torch.optim.NAdam``, ``torch.optim.Adamax``), with torch.optim's formulas."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from tinygrad_rnn.optim.optimizer import (
    COUNT,
    PARAM,
    Optimizer,
    OptimizerError,
    check_betas,
    check_bool,
    check_number,
    check_torch_switches,
    lerp_,
)
from tinygrad_rnn.tensor import Tensor

__all__ = ["Adamax", "NAdam"]


class NAdam(Optimizer):
    """Adam with Nesterov momentum (Dozat, 2016, "Incorporating Nesterov Momentum into Adam"), PyTorch's rule.

    For each parameter ``p`` with gradient ``g`` at step ``t = 1, 2, ...`` (ψ = ``momentum_decay``)::

        g ← -g                                          (maximize)
        p ← p·(1 - lr·weight_decay)                     (decoupled_weight_decay)
        g ← g + weight_decay·p                          (otherwise)
        μ_t = β1·(1 - ½·0.96^(t·ψ)),  μ_{t+1} likewise;  Π_t = Π_{t-1}·μ_t  (Π_0 = 1)
        m ← β1·m + (1 - β1)·g;   v ← β2·v + (1 - β2)·g²;   d = sqrt(v / (1 - β2^t)) + eps
        p ← p - lr·(1 - μ_t)/(1 - Π_t) · g/d - lr·μ_{t+1}/(1 - Π_t·μ_{t+1}) · m/d

    Args: params, lr (2e-3), betas ((0.9, 0.999)), eps (1e-8), weight_decay (0), momentum_decay (4e-3),
    decoupled_weight_decay (False), maximize; foreach/capturable are accepted and ignored,
    ``differentiable=True`` refused. State per parameter: ``step``, ``mu_product`` (a float), ``exp_avg``,
    ``exp_avg_sq``.
    """

    _state_kinds: ClassVar[dict[str, str]] = {"step": COUNT, "mu_product": "float", "exp_avg": PARAM,
                                              "exp_avg_sq": PARAM}

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]], lr: float = 2e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 momentum_decay: float = 4e-3, decoupled_weight_decay: bool = False, *, foreach: bool | None = None,
                 maximize: bool = False, capturable: bool = False, differentiable: bool = False):
        check_torch_switches(type(self).__name__, foreach, None, capturable, differentiable)
        betas = tuple(betas) if isinstance(betas, list) else betas
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                                  "momentum_decay": momentum_decay, "decoupled_weight_decay": decoupled_weight_decay,
                                  "maximize": maximize})

    def _check_options(self, group: Mapping[str, Any]) -> None:
        name = type(self).__name__
        check_number(name, "lr", group["lr"])
        check_betas(name, group["betas"])
        check_number(name, "eps", group["eps"])
        check_number(name, "weight_decay", group["weight_decay"])
        check_number(name, "momentum_decay", group["momentum_decay"])
        for key in ("maximize", "decoupled_weight_decay"):
            check_bool(name, key, group[key])

    def _required_state(self, group: Mapping[str, Any]) -> set[str]:
        return {"step", "exp_avg", "exp_avg_sq"}  # and mu_product, checked in _load_param_state

    def _load_param_state(self, p: Tensor, group: Mapping[str, Any], saved: Any, where: str) -> dict[str, Any]:
        """The base checks (``step`` and the arrays), plus ``mu_product``: a finite number (a float here)."""
        if not isinstance(saved, Mapping) or not saved:
            return super()._load_param_state(p, group, saved, where)
        if "mu_product" not in saved:
            raise OptimizerError(f"NAdam.load_state_dict: {where} lacks ['mu_product']")
        value = saved["mu_product"]
        value = value.item() if hasattr(value, "item") else value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise OptimizerError(f"NAdam.load_state_dict: {where}['mu_product'] must be a finite number, got {value!r}")
        out = super()._load_param_state(p, group, {k: v for k, v in saved.items() if k != "mu_product"}, where)
        out["mu_product"] = float(value)
        return out

    def _update_group(self, group: dict[str, Any]) -> None:
        lr, eps, weight_decay = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
        beta1, beta2 = (float(b) for b in group["betas"])
        psi = float(group["momentum_decay"])
        for p, g, state, xp in self._with_grads(group, "exp_avg", "exp_avg_sq", mu_product=1.0):
            if group["maximize"]:
                g = -g
            state["step"] += 1
            t = state["step"]
            bias_correction2 = 1 - beta2**t
            if weight_decay != 0:
                if group["decoupled_weight_decay"]:
                    p.array *= 1 - lr * weight_decay
                else:
                    g = g + weight_decay * p.array
            mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * psi))
            mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * psi))
            state["mu_product"] *= mu
            mu_product = state["mu_product"]
            m, v = state["exp_avg"], state["exp_avg_sq"]
            lerp_(m, g, 1 - beta1)
            v *= beta2
            v += (1 - beta2) * (g * g)
            denom = xp.sqrt(v / bias_correction2) + eps
            p.array -= (lr * (1.0 - mu) / (1.0 - mu_product)) * (g / denom)
            p.array -= (lr * mu_next / (1.0 - mu_product * mu_next)) * (m / denom)


class Adamax(Optimizer):
    """Adamax, Adam's infinity-norm variant (Kingma & Ba, 2015, §7), PyTorch's rule::

        g ← -g (maximize);   g ← g + weight_decay·p
        m ← β1·m + (1 - β1)·g;   u ← max(β2·u, |g| + eps)
        p ← p - lr/(1 - β1^t) · m/u

    Args: params, lr (2e-3), betas ((0.9, 0.999)), eps (1e-8), weight_decay (0), maximize; foreach/capturable
    accepted and ignored, ``differentiable=True`` refused. State per parameter: ``step``, ``exp_avg``, ``exp_inf``.
    """

    _state_kinds: ClassVar[dict[str, str]] = {"step": COUNT, "exp_avg": PARAM, "exp_inf": PARAM}

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]], lr: float = 2e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 foreach: bool | None = None, *, maximize: bool = False, differentiable: bool = False,
                 capturable: bool = False):
        check_torch_switches(type(self).__name__, foreach, None, capturable, differentiable)
        betas = tuple(betas) if isinstance(betas, list) else betas
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                                  "maximize": maximize})

    def _check_options(self, group: Mapping[str, Any]) -> None:
        name = type(self).__name__
        check_number(name, "lr", group["lr"])
        check_betas(name, group["betas"])
        check_number(name, "eps", group["eps"])
        check_number(name, "weight_decay", group["weight_decay"])
        check_bool(name, "maximize", group["maximize"])

    def _required_state(self, group: Mapping[str, Any]) -> set[str]:
        return {"step", "exp_avg", "exp_inf"}

    def _update_group(self, group: dict[str, Any]) -> None:
        lr, eps, weight_decay = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
        beta1, beta2 = (float(b) for b in group["betas"])
        for p, g, state, xp in self._with_grads(group, "exp_avg", "exp_inf"):
            if group["maximize"]:
                g = -g
            state["step"] += 1
            if weight_decay != 0:
                g = g + weight_decay * p.array
            m, u = state["exp_avg"], state["exp_inf"]
            lerp_(m, g, 1 - beta1)
            u *= beta2
            xp.maximum(u, xp.abs(g) + eps, out=u)
            p.array -= (lr / (1 - beta1 ** state["step"])) * (m / u)
