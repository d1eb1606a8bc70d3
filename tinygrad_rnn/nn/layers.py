"""Feed-forward layers: Linear, Embedding, Dropout."""

from __future__ import annotations

import math
from typing import Any


from tinygrad_rnn import functional as F
from tinygrad_rnn.backend import normalize_device, to_device
from tinygrad_rnn.nn.module import Module, Parameter
from tinygrad_rnn.tensor import DEFAULT_FLOAT, OpError, Tensor, default_rng

__all__ = ["Linear", "Embedding", "Dropout", "uniform_parameter"]


def uniform_parameter(shape: tuple[int, ...], bound: float, dtype: Any, device: str | None) -> Parameter:
    """A Parameter drawn from U(-bound, bound) with the CPU generator, then moved to ``device``.

    Drawing on the CPU makes a seeded model identical on every device.
    """
    data = default_rng("cpu").uniform(-bound, bound, size=shape).astype(dtype)
    device = normalize_device(device)
    return Parameter(to_device(data, device))


class Linear(Module):
    """``y = x Wᵀ + b``: x (..., in_features) -> y (..., out_features).

    Parameters ``weight`` (out_features, in_features) and ``bias`` (out_features,), initialised from
    U(-1/√in_features, 1/√in_features) as PyTorch does.

    Raises:
        OpError: when x's last dimension is not ``in_features``.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype: Any = DEFAULT_FLOAT,
                 device: str | None = None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        bound = 1 / math.sqrt(in_features) if in_features else 0.0
        self.weight = uniform_parameter((out_features, in_features), bound, dtype, device)
        self.bias = uniform_parameter((out_features,), bound, dtype, device) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise OpError(f"Linear: expected input (..., {self.in_features}), got shape {tuple(x.shape)}")
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Embedding(Module):
    """A lookup table: integer ids (...) -> rows of ``weight`` (num_embeddings, embedding_dim), shape (..., dim).

    ``weight`` is initialised from N(0, 1) as PyTorch does. Backward scatter-adds into the rows used.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, dtype: Any = DEFAULT_FLOAT,
                 device: str | None = None):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        data = default_rng("cpu").standard_normal((num_embeddings, embedding_dim)).astype(dtype)
        self.weight = Parameter(to_device(data, normalize_device(device)))

    def forward(self, indices: Any) -> Tensor:
        return F.embedding(indices, self.weight)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"


class Dropout(Module):
    """Inverted dropout with probability ``p`` in training mode; the identity in eval mode."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        self.p = F.check_dropout_probability(p, "Dropout")

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


