"""``nn.LayerNorm`` and the activation modules ``nn.GELU``, ``nn.LeakyReLU``, ``nn.Softplus`` (PyTorch's names,
constructor keywords and defaults), composed from primitive ops so their gradients come from the tape."""

from __future__ import annotations

from typing import Any

from tinygrad_rnn import ops
from tinygrad_rnn.nn import functional as F
from tinygrad_rnn.nn.module import Module, Parameter
from tinygrad_rnn.tensor import OpError, Tensor, get_default_dtype, ones, zeros

__all__ = ["GELU", "LayerNorm", "LeakyReLU", "Softplus"]


class LayerNorm(Module):
    """Normalize over the last ``len(normalized_shape)`` dims: ``(x - mean) / sqrt(var + eps) · weight + bias``
    (biased variance, as PyTorch). ``weight`` starts at ones and ``bias`` at zeros, in ``dtype`` (None: the
    default dtype); ``elementwise_affine=False`` has neither, ``bias=False`` no bias."""

    def __init__(self, normalized_shape: Any, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True,
                 device: Any = None, dtype: Any = None):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape = tuple(int(n) for n in shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        dtype = get_default_dtype() if dtype is None else dtype
        if elementwise_affine:
            self.weight = Parameter(ones(self.normalized_shape, dtype=dtype, device=device))
            if bias:
                self.bias = Parameter(zeros(self.normalized_shape, dtype=dtype, device=device))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: Tensor) -> Tensor:
        k = len(self.normalized_shape)
        if tuple(x.shape[x.ndim - k:]) != self.normalized_shape or x.ndim < k:
            raise OpError(f"LayerNorm: expected input (..., {', '.join(map(str, self.normalized_shape))}), "
                          f"got shape {tuple(x.shape)}")
        dims = tuple(range(x.ndim - k, x.ndim))
        centered = x - x.mean(dims, keepdim=True)
        var = (centered * centered).mean(dims, keepdim=True)
        out = centered / ops.sqrt(var + self.eps)
        if self.weight is not None:
            out = out * self.weight
        if self.bias is not None:
            out = out + self.bias
        return out

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class GELU(Module):
    """``F.gelu`` as a module (``approximate='none'`` or ``'tanh'``)."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(x, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class LeakyReLU(Module):
    """``F.leaky_relu`` as a module. ``inplace`` is accepted and ignored."""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Softplus(Module):
    """``F.softplus`` as a module."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, x: Tensor) -> Tensor:
        return F.softplus(x, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"
