"""Parameter initialisation in place, as ``torch.nn.init``: ``nn.init.xavier_uniform_(layer.weight)``.

Every function fills its tensor without recording on the tape, returns the tensor, and draws from the
project's generator (:func:`tinygrad_rnn.manual_seed`), on the CPU, then moves the values to the tensor's
device, so a seeded model is the same on every device. Formulas and gains are PyTorch's:

* Glorot & Bengio (2010): ``std = gain·√(2/(fan_in + fan_out))`` (Xavier);
* He et al. (2015): ``std = gain/√fan`` with ``fan`` = fan_in or fan_out (Kaiming);
* Saxe et al. (2013): orthogonal matrices from the QR decomposition of a Gaussian matrix;
* uniform bounds are ``√3·std`` (a uniform on [-a, a] has standard deviation a/√3).

``fan_in = size(1)·receptive``, ``fan_out = size(0)·receptive``, ``receptive`` = the product of the
dimensions after the second (1 for a matrix).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinygrad_rnn.backend import to_device
from tinygrad_rnn.tensor import Tensor, default_rng, no_grad

__all__ = [
    "calculate_gain",
    "constant_",
    "eye_",
    "kaiming_normal_",
    "kaiming_uniform_",
    "normal_",
    "ones_",
    "orthogonal_",
    "trunc_normal_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]

_LINEAR = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
           "sigmoid")


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity (PyTorch's table).

    ``linear``/``conv*``/``sigmoid`` 1, ``tanh`` 5/3, ``relu`` √2, ``leaky_relu`` √(2/(1+slope²)) (slope
    ``param``, default 0.01), ``selu`` 3/4.

    Raises:
        ValueError: an unknown nonlinearity or a non-numeric slope.
    """
    if nonlinearity in _LINEAR:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = float(param)
        else:
            raise ValueError(f"calculate_gain: negative_slope {param!r} is not a valid number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _check(name: str, tensor: Any) -> None:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"nn.init.{name}: expected a Tensor, got {type(tensor).__name__}")
    if tensor.dtype.kind != "f":
        raise TypeError(f"nn.init.{name}: expected a floating-point tensor, got dtype {tensor.dtype}")


def _fill(tensor: Tensor, values: Any) -> Tensor:
    """Write ``values`` (a NumPy array or scalar) into ``tensor`` in place, cast to its dtype, on its device.

    An in-place ``copy_`` under ``no_grad``, as PyTorch's ``nn.init`` does: it counts as a change of the
    tensor's storage, so a backward through an op that saved the old values raises.
    """
    values = np.asarray(values, dtype=tensor.dtype)
    with no_grad():
        tensor.copy_(to_device(values, tensor.device) if tensor.device != "cpu" else values)
    return tensor


def _fans(name: str, tensor: Tensor) -> tuple[int, int]:
    if tensor.ndim < 2:
        raise ValueError(f"nn.init.{name}: fan in and fan out cannot be computed for a tensor with fewer than "
                         f"2 dimensions (got shape {tuple(tensor.shape)})")
    receptive = int(np.prod(tensor.shape[2:])) if tensor.ndim > 2 else 1
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator: Any = None) -> Tensor:
    """Fill with draws from U(a, b). ``generator``: a ``numpy.random.Generator`` (default: the project's)."""
    _check("uniform_", tensor)
    rng = generator if generator is not None else default_rng("cpu")
    return _fill(tensor, rng.uniform(a, b, size=tensor.shape))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator: Any = None) -> Tensor:
    """Fill with draws from N(mean, std²)."""
    _check("normal_", tensor)
    rng = generator if generator is not None else default_rng("cpu")
    return _fill(tensor, rng.normal(mean, std, size=tensor.shape))


def trunc_normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0,
                  generator: Any = None) -> Tensor:
    """Fill with draws from N(mean, std²) restricted to [a, b] (rejection sampling; same law as PyTorch's)."""
    _check("trunc_normal_", tensor)
    if not a < b:
        raise ValueError(f"nn.init.trunc_normal_: expected a < b, got a={a}, b={b}")
    rng = generator if generator is not None else default_rng("cpu")
    n = int(np.prod(tensor.shape))
    out = np.empty(0)
    while out.size < n:
        draw = rng.normal(mean, std, size=max(2 * (n - out.size), 16))
        out = np.concatenate([out, draw[(draw >= a) & (draw <= b)]])
    return _fill(tensor, out[:n].reshape(tensor.shape))


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill with ``val``."""
    _check("constant_", tensor)
    return _fill(tensor, val)


def zeros_(tensor: Tensor) -> Tensor:
    """Fill with 0."""
    return constant_(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    """Fill with 1."""
    return constant_(tensor, 1.0)


def eye_(tensor: Tensor) -> Tensor:
    """Fill a 2-D tensor with the identity matrix (ones on the diagonal)."""
    _check("eye_", tensor)
    if tensor.ndim != 2:
        raise ValueError(f"nn.init.eye_: only 2-D tensors are supported, got shape {tuple(tensor.shape)}")
    return _fill(tensor, np.eye(tensor.shape[0], tensor.shape[1]))


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator: Any = None) -> Tensor:
    """U(-a, a) with ``a = gain·√(6/(fan_in + fan_out))`` (Glorot & Bengio, 2010)."""
    _check("xavier_uniform_", tensor)
    fan_in, fan_out = _fans("xavier_uniform_", tensor)
    a = math.sqrt(3.0) * gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return uniform_(tensor, -a, a, generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator: Any = None) -> Tensor:
    """N(0, std²) with ``std = gain·√(2/(fan_in + fan_out))`` (Glorot & Bengio, 2010)."""
    _check("xavier_normal_", tensor)
    fan_in, fan_out = _fans("xavier_normal_", tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / float(fan_in + fan_out)), generator)


def _kaiming_std(name: str, tensor: Tensor, a: float, mode: str, nonlinearity: str) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"nn.init.{name}: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _fans(name, tensor)
    fan = fan_in if mode == "fan_in" else fan_out
    if fan == 0:
        raise ValueError(f"nn.init.{name}: cannot initialise a tensor with a zero {mode} (shape {tuple(tensor.shape)})")
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(tensor: Tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                     generator: Any = None) -> Tensor:
    """U(-b, b) with ``b = √3·gain/√fan`` (He et al., 2015); ``a`` is the leaky-ReLU slope for the gain."""
    _check("kaiming_uniform_", tensor)
    bound = math.sqrt(3.0) * _kaiming_std("kaiming_uniform_", tensor, a, mode, nonlinearity)
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor: Tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                    generator: Any = None) -> Tensor:
    """N(0, std²) with ``std = gain/√fan`` (He et al., 2015)."""
    _check("kaiming_normal_", tensor)
    return normal_(tensor, 0.0, _kaiming_std("kaiming_normal_", tensor, a, mode, nonlinearity), generator)


def orthogonal_(tensor: Tensor, gain: float = 1.0, generator: Any = None) -> Tensor:
    """A (semi-)orthogonal matrix times ``gain`` (Saxe et al., 2013), dimensions after the first flattened.

    The QR decomposition of a Gaussian (rows, cols) matrix (transposed when rows < cols), with Q's columns
    multiplied by the signs of R's diagonal so that Q is uniformly distributed.
    """
    _check("orthogonal_", tensor)
    if tensor.ndim < 2:
        raise ValueError(f"nn.init.orthogonal_: only tensors with 2 or more dimensions are supported, "
                         f"got shape {tuple(tensor.shape)}")
    if tensor.array.size == 0:
        return tensor
    rows = tensor.shape[0]
    cols = tensor.array.size // rows
    rng = generator if generator is not None else default_rng("cpu")
    flat = rng.standard_normal((rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return _fill(tensor, gain * q.reshape(tensor.shape))
