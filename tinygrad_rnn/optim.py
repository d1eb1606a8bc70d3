"""Optimizers with ``torch.optim``'s documented update rules, and ``clip_grad_norm_``.

Updates run on the parameters' arrays in place, outside the tape. With the same gradients, SGD and Adam
give the same parameters as PyTorch (to rounding: ≤ 1e-10 relative in float64).
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

from tinygrad_rnn.backend import get_array_module
from tinygrad_rnn.tensor import Tensor

__all__ = ["Optimizer", "SGD", "Adam", "clip_grad_norm_"]


class Optimizer:
    """Base class: holds the parameter list and per-parameter state (e.g. momentum buffers).

    Args:
        params: an iterable of Parameters (e.g. ``model.parameters()``); it is read once.

    Raises:
        ValueError: an empty parameter list, or a parameter listed twice.
    """

    def __init__(self, params: Iterable[Tensor]):
        self.params = list(params)
        for p in self.params:
            if not isinstance(p, Tensor):
                hint = " (parameter groups as dicts are not supported: pass the parameters)" if isinstance(p, dict) else ""
                raise TypeError(f"{type(self).__name__}: expected Parameters/Tensors, got {type(p).__name__}{hint}")
            if not p.requires_grad:
                raise ValueError(f"{type(self).__name__}: a tensor of shape {p.shape} does not require grad")
        if not self.params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if len({id(p) for p in self.params}) != len(self.params):
            raise ValueError(f"{type(self).__name__}: a parameter appears more than once")
        self.state: list[dict[str, Any]] = [{} for _ in self.params]

    def zero_grad(self) -> None:
        """Set every parameter's ``.grad`` to None (as PyTorch's default ``set_to_none=True``)."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """The optimizer state as flat ``"state.{i}.{name}"`` -> array entries (for checkpoints)."""
        out: dict[str, Any] = {}
        for i, state in enumerate(self.state):
            for name, value in state.items():
                out[f"state.{i}.{name}"] = value
        return out

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the state written by :meth:`state_dict` (arrays are moved to each parameter's device)."""
        from tinygrad_rnn.backend import to_device

        self.state = [{} for _ in self.params]
        for key, value in state_dict.items():
            _, index, name = key.split(".", 2)
            p = self.params[int(index)]
            value = value.array if isinstance(value, Tensor) else value
            if name == "step":
                self.state[int(index)][name] = int(np.asarray(value))
            else:
                self.state[int(index)][name] = to_device(np.asarray(value) if not hasattr(value, "device")
                                                         else value, p.device).astype(p.dtype)


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, dampening, Nesterov momentum and weight decay.

    With gradient ``g`` of parameter ``p`` (``torch.optim.SGD``'s rule)::

        g ← g + weight_decay·p
        b ← g                          (first step)
        b ← momentum·b + (1 - dampening)·g     (later steps)
        g ← g + momentum·b  (nesterov)   or   g ← b
        p ← p - lr·g

    With ``momentum = 0`` this is the article's ``V_new = V_old - η dL/dV``.
    """

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        super().__init__(params)
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD: lr, momentum and weight_decay must be >= 0, got {lr}, {momentum}, {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum needs momentum > 0 and dampening = 0")
        self.lr, self.momentum, self.dampening = lr, momentum, dampening
        self.weight_decay, self.nesterov = weight_decay, nesterov

    def step(self) -> None:
        """Update every parameter that has a gradient."""
        for p, state in zip(self.params, self.state):
            if p.grad is None:
                continue
            g = p.grad.array
            if self.weight_decay:
                g = g + self.weight_decay * p.array
            if self.momentum:
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = g.copy()
                else:
                    buf *= self.momentum
                    buf += (1 - self.dampening) * g
                g = g + self.momentum * buf if self.nesterov else buf
            p.array -= self.lr * g


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with PyTorch's bias correction and eps placement.

    With gradient ``g`` at step ``t`` (``torch.optim.Adam``'s rule)::

        g ← g + weight_decay·p
        m ← β1·m + (1 - β1)·g;     v ← β2·v + (1 - β2)·g²       (v ← max(v_max, v) with amsgrad)
        p ← p - lr/(1 - β1^t) · m / (sqrt(v)/sqrt(1 - β2^t) + eps)
    """

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False):
        super().__init__(params)
        if lr < 0 or eps < 0 or weight_decay < 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"Adam: invalid hyper-parameters lr={lr}, betas={betas}, eps={eps}, "
                             f"weight_decay={weight_decay}")
        self.lr, self.betas, self.eps = lr, betas, eps
        self.weight_decay, self.amsgrad = weight_decay, amsgrad

    def step(self) -> None:
        """Update every parameter that has a gradient."""
        beta1, beta2 = self.betas
        for p, state in zip(self.params, self.state):
            if p.grad is None:
                continue
            xp = get_array_module(p.array)
            g = p.grad.array
            if self.weight_decay:
                g = g + self.weight_decay * p.array
            if not state:
                state["step"] = 0
                state["exp_avg"] = xp.zeros_like(p.array)
                state["exp_avg_sq"] = xp.zeros_like(p.array)
                if self.amsgrad:
                    state["max_exp_avg_sq"] = xp.zeros_like(p.array)
            state["step"] += 1
            t = state["step"]
            m, v = state["exp_avg"], state["exp_avg_sq"]
            m += (1 - beta1) * (g - m)
            v *= beta2
            v += (1 - beta2) * (g * g)
            if self.amsgrad:
                xp.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
                v = state["max_exp_avg_sq"]
            bias_correction1 = 1 - beta1**t
            bias_correction2_sqrt = math.sqrt(1 - beta2**t)
            denom = xp.sqrt(v) / bias_correction2_sqrt + self.eps
            p.array -= (self.lr / bias_correction1) * (m / denom)


def clip_grad_norm_(parameters: Iterable[Tensor] | Tensor, max_norm: float, norm_type: float = 2.0) -> Tensor:
    """Scale all gradients together so that their joint norm is at most ``max_norm`` (in place).

    The total norm is taken over all gradients as if concatenated into one vector:
    ``‖g‖ = (Σ_p Σ_i |g_pi|^norm_type)^(1/norm_type)`` (``inf``: the largest ``|g_pi|``). Each gradient is
    multiplied by ``min(1, max_norm / (‖g‖ + 1e-6))``, as ``torch.nn.utils.clip_grad_norm_``.

    Returns:
        The total norm before clipping, as a 0-d Tensor.
    """
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    grads = [p.grad.array for p in params if p.grad is not None]
    if not grads:
        return Tensor(0.0)
    xp = get_array_module(grads[0])
    if norm_type == math.inf:
        total = xp.max(xp.stack([xp.abs(g).max() for g in grads]))
    else:
        total = xp.sum(xp.stack([(xp.abs(g) ** norm_type).sum() for g in grads])) ** (1.0 / norm_type)
    coef = xp.minimum(max_norm / (total + 1e-6), 1.0)
    for g in grads:
        g *= coef.astype(g.dtype)
    return Tensor._wrap(total)
