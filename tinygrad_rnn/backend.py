"""Array backends: NumPy on the CPU, CuPy on an NVIDIA GPU.

A *device* is a string: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``. Every tensor lives on one device and
holds a ``numpy.ndarray`` (cpu) or a ``cupy.ndarray`` (cuda). This module is the only place that knows
about CuPy; everything above it asks :func:`get_array_module` for the right module.

The CuPy import is optional. If it fails, the reason is kept and reported when a CUDA device is asked
for, so ``Tensor(..., device="cuda")`` on a machine without CuPy or without a GPU raises one clear
:class:`DeviceError` that says why.
"""

from __future__ import annotations

from typing import Any

import numpy as np

try:  # optional dependency: the "cuda" extra (cupy-cuda12x)
    import cupy as _cupy

    _CUPY_IMPORT_ERROR: BaseException | None = None
except Exception as exc:  # ImportError, or a CUDA driver error raised at import
    _cupy = None
    _CUPY_IMPORT_ERROR = exc

__all__ = [
    "DeviceError",
    "device",
    "get_default_device",
    "normalize_device",
    "set_default_device",
    "get_array_module",
    "device_of",
    "to_device",
    "to_numpy",
    "is_torch_tensor",
    "cuda_is_available",
    "cuda_unavailable_reason",
    "device_index",
    "cuda_module",
    "nccl_module",
    "scatter_add",
    "random_generator",
]


class DeviceError(RuntimeError):
    """A device string is malformed, or the device it names cannot be used here."""


class device(str):  # noqa: N801 - PyTorch's name
    """A device, as ``torch.device``: ``device("cpu")``, ``device("cuda")``, ``device("cuda:1")``,
    ``device("cuda", 1)``, ``device(1)`` (CUDA GPU 1).

    It *is* its string (``device("cuda:0") == "cuda:0"``), so it goes wherever a device string does; it
    adds ``.type`` (``"cpu"`` or ``"cuda"``) and ``.index`` (an int, or None when not given). Making one
    does not need a GPU; using it for a tensor does (see :func:`normalize_device`).

    Raises:
        DeviceError: a malformed device.
    """

    _type: str
    _index: int | None

    def __new__(cls, type_or_name: Any, index: int | None = None) -> device:
        if isinstance(type_or_name, int) and not isinstance(type_or_name, bool):
            type_or_name, index = "cuda", type_or_name
        if not isinstance(type_or_name, str):
            raise DeviceError(f"device must be a string like 'cpu', 'cuda' or 'cuda:0', got {type_or_name!r}")
        name = type_or_name.strip().lower()
        kind, _, index_text = name.partition(":")
        if kind not in ("cpu", "cuda") or (index_text and not index_text.isdigit()):
            raise DeviceError(f"unknown device {type_or_name!r}: expected 'cpu', 'cuda' or 'cuda:N'")
        if index_text:
            if index is not None:
                raise DeviceError(f"device {type_or_name!r} already has an index; got index={index} too")
            index = int(index_text)
        if index is not None and (not isinstance(index, int) or index < 0):
            raise DeviceError(f"device index must be a non-negative int, got {index!r}")
        if kind == "cpu" and index not in (None, 0):
            raise DeviceError(f"the cpu device has no index {index}")
        text = kind if index is None or kind == "cpu" else f"{kind}:{index}"
        self = super().__new__(cls, text)
        self._type, self._index = kind, (None if kind == "cpu" else index)
        return self

    @property
    def type(self) -> str:
        """``"cpu"`` or ``"cuda"``."""
        return self._type

    @property
    def index(self) -> int | None:  # type: ignore[override]  # torch.device.index, not str.index
        """The GPU index, or None (always None for the CPU)."""
        return self._index

    def __repr__(self) -> str:
        if self._index is None:
            return f"device(type='{self._type}')"
        return f"device(type='{self._type}', index={self._index})"

    def __reduce__(self) -> Any:
        return (device, (str(self),))


_Device = device  # (normalize_device's argument is named device, as everywhere)


def cuda_unavailable_reason() -> str | None:
    """Why the ``cuda`` device cannot be used, or ``None`` when it can.

    Returns:
        A one-line reason (CuPy missing, CuPy import failed, no GPU visible), or ``None``.
    """
    if _cupy is None:
        return (
            f"CuPy could not be imported ({type(_CUPY_IMPORT_ERROR).__name__}: {_CUPY_IMPORT_ERROR}); "
            "install CuPy (`pip install cupy-cuda12x`, or `pip install -e \".[cuda]\"` in a clone) on a machine "
            "with an NVIDIA GPU"
        )
    try:
        n = _cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # no driver, no device
        return f"CuPy is installed but CUDA is not usable ({type(exc).__name__}: {exc})"
    if n == 0:
        return "CuPy is installed but no CUDA GPU is visible"
    return None


def cuda_is_available() -> bool:
    """True when CuPy imports and at least one CUDA GPU is visible."""
    return cuda_unavailable_reason() is None


_default_device = ["cpu"]


def set_default_device(device: str | None) -> None:
    """``torch.set_default_device``: the device of new tensors from the creation functions (``zeros``, ``randn``,
    ...) and of new layers' parameters when no ``device`` is given. ``None`` restores ``"cpu"``.

    Tensors made from existing data (``tensor(list)``, ``from_numpy``) stay where the data is unless given a
    ``device`` (PyTorch would put ``tensor(list)`` on the default device).

    Raises:
        DeviceError: an unknown or unusable device (see :func:`normalize_device`).
    """
    _default_device[0] = "cpu" if device is None else normalize_device(device)


def get_default_device() -> device:
    """``torch.get_default_device``: the device set by :func:`set_default_device` (``device("cpu")`` at start)."""
    return device(_default_device[0])


def normalize_device(device: str | None) -> str:
    """Return the canonical form of a device string.

    ``None`` gives the default device (:func:`set_default_device`; ``"cpu"`` unless set), ``"cpu"`` gives
    ``"cpu"``; ``"cuda"`` gives ``"cuda:0"``; ``"cuda:N"`` is checked.

    Raises:
        DeviceError: for an unknown string, a bad index, or a CUDA device that cannot be used
            (the message names CUDA/CuPy and the reason).
    """
    if device is None:
        return _default_device[0]
    parsed = device if type(device) is _Device else _Device(device)  # the one parser of device strings
    if parsed.type == "cpu":
        return "cpu"
    reason = cuda_unavailable_reason()
    if reason is not None:
        raise DeviceError(f"device {str(parsed)!r} was requested but CUDA/CuPy is unavailable: {reason}")
    index = parsed.index or 0
    count = _cupy.cuda.runtime.getDeviceCount()
    if index >= count:
        raise DeviceError(f"device {str(parsed)!r} does not exist: {count} CUDA GPU(s) visible")
    return f"cuda:{index}"


def device_index(name: str) -> int:
    """The GPU index a device string names (``"cuda"`` and ``"cuda:0"`` give 0; the CPU gives 0)."""
    return device(name).index or 0


def cuda_module() -> Any:
    """The ``cupy`` module itself, for the few CUDA-only calls above this layer (devices, events, streams).

    Raises:
        DeviceError: CuPy or a GPU is unavailable (the message says why).
    """
    normalize_device("cuda")
    return _cupy


def nccl_module() -> Any:  # pragma: no cover - needs a GPU
    """``cupy.cuda.nccl`` (NVIDIA's collective library, for :mod:`tinygrad_rnn.distributed`).

    Raises:
        DeviceError: CuPy or a GPU is unavailable.
    """
    cuda_module()
    from cupy.cuda import nccl

    return nccl


def scatter_add(target: Any, index: Any, values: Any) -> None:
    """``target[index] += values`` in place, repeated indices adding up (``np.add.at`` / ``cupyx.scatter_add``)."""
    if type(target) is np.ndarray:
        np.add.at(target, index, values)
    else:  # pragma: no cover - needs a GPU
        import cupyx

        cupyx.scatter_add(target, index, values)


def random_generator(name: str, seed: int | None) -> Any:
    """A new random generator for a (normalized) device: ``numpy.random.default_rng(seed)`` on the CPU, CuPy's
    ``default_rng(seed)`` created on that GPU otherwise."""
    if name == "cpu":
        return np.random.default_rng(seed)
    with _cupy.cuda.Device(device_index(name)):  # pragma: no cover - needs a GPU
        return _cupy.random.default_rng(seed)


def get_array_module(x: Any) -> Any:
    """The array module (``numpy`` or ``cupy``) that owns ``x`` (an array, or a device string)."""
    if type(x) is np.ndarray:  # the common case, answered first: every op asks
        return np
    if isinstance(x, str):
        return np if x == "cpu" else _cupy
    if _cupy is not None and isinstance(x, _cupy.ndarray):
        return _cupy
    return np


def device_of(array: Any) -> str:
    """The device string of a backend array: ``"cpu"`` for NumPy, ``"cuda:N"`` for CuPy."""
    if _cupy is not None and isinstance(array, _cupy.ndarray):
        return f"cuda:{array.device.id}"
    return "cpu"


def to_device(array: Any, device: str) -> Any:
    """Copy ``array`` to ``device`` (already normalized) if it is not there; no copy otherwise."""
    if device == "cpu":
        return to_numpy(array)
    index = device_index(device)
    if isinstance(array, _cupy.ndarray) and array.device.id == index:
        return array
    with _cupy.cuda.Device(index):
        return _cupy.asarray(array)


def to_numpy(array: Any) -> np.ndarray:
    """A NumPy array with the same values: copied from the GPU if needed, unchanged otherwise."""
    if _cupy is not None and isinstance(array, _cupy.ndarray):
        return _cupy.asnumpy(array)
    return np.asarray(array)


def is_torch_tensor(x: Any) -> bool:
    """True for a PyTorch tensor (or Parameter), recognised by its type's module: torch is never imported."""
    return type(x).__module__.split(".", 1)[0] == "torch"


def erf(array: Any) -> Any:
    """The error function elementwise, on either backend (``math.erf`` per element on NumPy, which has no erf;
    ``cupyx.scipy.special.erf`` on CuPy). A 0-d input gives a 0-d array."""
    if get_array_module(array) is np:
        import math

        return np.asarray(np.frompyfunc(math.erf, 1, 1)(array), dtype=array.dtype)
    from cupyx.scipy.special import erf as cupy_erf  # pragma: no cover - needs a GPU

    return cupy_erf(array)  # pragma: no cover
