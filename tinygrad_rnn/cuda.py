"""``torch.cuda``'s common calls: is the GPU usable, how many, seeding the GPU generators.

The GPU backend is CuPy (see :mod:`tinygrad_rnn.backend`); these answer without raising on a machine
without CuPy or a GPU.
"""

from __future__ import annotations

from tinygrad_rnn.backend import _cupy, cuda_is_available, normalize_device
from tinygrad_rnn.tensor import _manual_seed_cuda

__all__ = ["is_available", "device_count", "manual_seed", "manual_seed_all", "current_device", "synchronize"]


def is_available() -> bool:
    """True when CuPy imports and at least one CUDA GPU is visible (``torch.cuda.is_available``)."""
    return cuda_is_available()


def device_count() -> int:
    """The number of visible CUDA GPUs (0 without CuPy or a GPU)."""
    if not cuda_is_available():
        return 0
    return int(_cupy.cuda.runtime.getDeviceCount())


def manual_seed(seed: int) -> None:
    """Seed the generators of the CUDA devices (the CPU generator is left alone); fine without a GPU."""
    _manual_seed_cuda(seed)


manual_seed_all = manual_seed


def current_device() -> int:
    """The index of the current CUDA device.

    Raises:
        DeviceError: CUDA is unavailable (the message says why).
    """
    normalize_device("cuda")
    return int(_cupy.cuda.runtime.getDevice())


def synchronize(device: object = None) -> None:
    """Wait for all queued GPU work to finish (a no-op without a GPU)."""
    if cuda_is_available():
        _cupy.cuda.runtime.deviceSynchronize()
