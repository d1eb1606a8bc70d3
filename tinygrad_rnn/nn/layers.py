"""Feed-forward layers and activations: Linear, Embedding, Dropout, Identity, Flatten, ReLU, Tanh, Sigmoid,
Softmax, LogSoftmax (``torch.nn``'s names, constructor keywords and defaults)."""

from __future__ import annotations

import math
import warnings
from typing import Any

from tinygrad_rnn import ops
from tinygrad_rnn.backend import get_array_module, normalize_device, to_device
from tinygrad_rnn.nn import functional as F
from tinygrad_rnn.nn.module import Module, Parameter
from tinygrad_rnn.tensor import OpError, Tensor, default_rng, get_default_dtype

__all__ = [
    "Dropout",
    "Embedding",
    "Flatten",
    "Identity",
    "Linear",
    "LogSoftmax",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "uniform_parameter",
]


def uniform_parameter(shape: tuple[int, ...], bound: float, dtype: Any, device: str | None) -> Parameter:
    """A Parameter drawn from U(-bound, bound) with the CPU generator, then moved to ``device``.

    Drawing on the CPU makes a seeded model identical on every device. ``dtype`` None: the default dtype
    (:func:`tinygrad_rnn.get_default_dtype`, as PyTorch's layers follow ``torch.set_default_dtype``).
    """
    dtype = get_default_dtype() if dtype is None else dtype
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

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype: Any = None,
                 device: str | None = None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        bound = 1 / math.sqrt(in_features) if in_features else 0.0
        self.weight = uniform_parameter((out_features, in_features), bound, dtype, device)
        if bias:
            self.bias = uniform_parameter((out_features,), bound, dtype, device)
        else:
            self.register_parameter("bias", None)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise OpError(f"Linear: expected input (..., {self.in_features}), got shape {tuple(x.shape)}")
        if x.dtype != self.weight.dtype:  # as PyTorch: no silent promotion to the input's dtype
            raise OpError(f"Linear: expected input of dtype {self.weight.dtype} (the layer's parameters), got "
                          f"{x.dtype}; convert the input (.to(dtype)) or the layer (.to(dtype), .double())")
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Embedding(Module):
    """A lookup table: integer ids (...) -> rows of ``weight`` (num_embeddings, embedding_dim), shape (..., dim).

    ``weight`` is initialised from N(0, 1) as PyTorch does. Backward scatter-adds into the rows used.
    With ``padding_idx`` that row starts at zero and never receives a gradient (PyTorch's meaning).
    ``max_norm``, ``scale_grad_by_freq`` and ``sparse`` are not supported (they raise if set).

    Raises:
        OpError: ids that are not integers or lie outside ``[0, num_embeddings)``.
        ValueError: ``padding_idx`` outside ``[-num_embeddings, num_embeddings)``.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 max_norm: float | None = None, norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                 sparse: bool = False, _weight: Any = None, _freeze: bool = False, device: str | None = None,
                 dtype: Any = None):
        super().__init__()
        if max_norm is not None or scale_grad_by_freq or sparse:
            raise NotImplementedError("Embedding: max_norm, scale_grad_by_freq and sparse are not supported")
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"Embedding: padding_idx must be in [{-num_embeddings}, {num_embeddings}), "
                                 f"got {padding_idx}")
            padding_idx = padding_idx % num_embeddings
        self.num_embeddings, self.embedding_dim, self.padding_idx = num_embeddings, embedding_dim, padding_idx
        self.max_norm, self.norm_type, self.scale_grad_by_freq, self.sparse = max_norm, norm_type, False, False
        if _weight is None:
            data = default_rng("cpu").standard_normal((num_embeddings, embedding_dim))
            data = data.astype(get_default_dtype() if dtype is None else dtype)
            if padding_idx is not None:
                data[padding_idx] = 0
            self.weight = Parameter(to_device(data, normalize_device(device)), requires_grad=not _freeze)
        else:
            weight = _weight.array if isinstance(_weight, Tensor) else _weight
            if tuple(weight.shape) != (num_embeddings, embedding_dim):
                raise ValueError(f"Embedding: _weight must have shape ({num_embeddings}, {embedding_dim}), "
                                 f"got {tuple(weight.shape)}")
            self.weight = Parameter(weight, requires_grad=not _freeze, dtype=dtype, device=device)

    @classmethod
    def from_pretrained(cls, embeddings: Any, freeze: bool = True, padding_idx: int | None = None,
                        max_norm: float | None = None, norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                        sparse: bool = False) -> Embedding:
        """An Embedding whose weight is a copy of the 2-D ``embeddings``; frozen (no gradient) unless
        ``freeze=False``."""
        shape = tuple(embeddings.shape)
        if len(shape) != 2:
            raise ValueError(f"Embedding.from_pretrained: embeddings must be 2-D, got shape {shape}")
        return cls(shape[0], shape[1], padding_idx=padding_idx, max_norm=max_norm, norm_type=norm_type,
                   scale_grad_by_freq=scale_grad_by_freq, sparse=sparse, _weight=embeddings, _freeze=freeze)

    def forward(self, indices: Any) -> Tensor:
        out = F.embedding(indices, self.weight)
        if self.padding_idx is None or not out.requires_grad:
            return out
        ids = indices.array if isinstance(indices, Tensor) else get_array_module(out.array).asarray(indices)
        pad = ids == self.padding_idx
        if not bool(pad.any()):
            return out
        return ops.where(pad[..., None], out.detach(), out)  # no gradient reaches the padding row

    def extra_repr(self) -> str:
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        return text + (f", padding_idx={self.padding_idx}" if self.padding_idx is not None else "")


class Dropout(Module):
    """Inverted dropout with probability ``p`` in training mode; the identity in eval mode.

    ``inplace`` is accepted for PyTorch compatibility (the result is always a new tensor).
    """

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        self.p, self.inplace = F.check_dropout_probability(p, "Dropout"), inplace

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Identity(Module):
    """Returns its input unchanged; any constructor arguments are ignored (as PyTorch)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__()

    def forward(self, x: Any) -> Any:
        return x


class Flatten(Module):
    """Merge dimensions ``start_dim..end_dim`` (default: all but the batch dimension) into one."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        return F.flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class ReLU(Module):
    """``max(x, 0)`` elementwise (gradient 1 where x > 0, else 0). ``inplace`` is accepted and ignored."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        return ops.relu(x)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class Tanh(Module):
    """``tanh(x)`` elementwise (gradient ``1 - tanh²``)."""

    def forward(self, x: Tensor) -> Tensor:
        return ops.tanh(x)


class Sigmoid(Module):
    """``σ(x) = 1/(1 + e⁻ˣ)`` elementwise, stable in both tails (gradient ``σ(1 - σ)``)."""

    def forward(self, x: Tensor) -> Tensor:
        return ops.sigmoid(x)


def _softmax_dim(name: str, dim: int | None, ndim: int) -> int:
    """PyTorch's implicit dimension when ``dim`` is None (0 for 0-, 1- and 3-d input, else 1), with its warning."""
    if dim is not None:
        return dim
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call to include dim=X "
                  "as an argument.", UserWarning, stacklevel=3)
    return 0 if ndim in (0, 1, 3) else 1


class LogSoftmax(Module):
    """``log_softmax`` along ``dim`` (one stable op): ``x_i - log Σ_j exp(x_j)``."""

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return ops.log_softmax(x, _softmax_dim("LogSoftmax", self.dim, x.ndim))

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmax(Module):
    """``softmax`` along ``dim``: ``exp(x_i) / Σ_j exp(x_j)``, computed as ``exp(log_softmax)`` (stable)."""

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return ops.exp(ops.log_softmax(x, _softmax_dim("Softmax", self.dim, x.ndim)))

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


