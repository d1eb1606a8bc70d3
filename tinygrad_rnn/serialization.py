"""Saving and loading state dicts as ``.npz`` files, written atomically.

A checkpoint is a NumPy ``.npz`` archive with one array per state-dict key (PyTorch's key names). It is
written to a temporary file in the target's folder, flushed to disk, then renamed over the target in one
step (``os.replace``), so a crash mid-write never leaves a truncated checkpoint at ``path``: either the
old file or the complete new one is there.
"""

from __future__ import annotations

import os
import tempfile
from collections import OrderedDict
from typing import Any, Mapping

import numpy as np

from tinygrad_rnn.backend import get_array_module, is_torch_tensor, to_numpy
from tinygrad_rnn.tensor import Tensor

__all__ = ["save", "load", "as_array"]


def as_array(value: Any) -> Any:
    """The array behind a state-dict value: a Tensor's backend array, a NumPy/CuPy array as it is, a
    (CPU) PyTorch tensor as NumPy, or ``numpy.asarray`` of anything else."""
    if isinstance(value, Tensor):
        return value.array
    if is_torch_tensor(value):
        return value.detach().cpu().numpy()
    if get_array_module(value) is not np:
        return value
    return np.asarray(value)


def save(state: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Write ``state`` (name -> Tensor or array) to ``path`` as ``.npz``, atomically.

    Extra entries that are not arrays (e.g. a step counter, a vocabulary as a string) are stored as 0-d
    arrays. The file is complete at ``path`` or not there at all.

    Raises:
        OSError: the folder is missing or not writable (the temporary file is removed).
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"save: cannot write {path!r}: the folder {folder!r} does not exist")
    arrays = {name: to_numpy(as_array(value)) for name, value in state.items()}
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            os.chmod(tmp, _file_mode(path))  # mkstemp's 0600 would make the checkpoint private
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _file_mode(path: str) -> int:
    """The permission bits the checkpoint gets: those of the file it replaces, else 0666 less the umask."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0o022)  # the only portable way to read the umask is to set it and set it back
        os.umask(umask)
        return 0o666 & ~umask


def load(path: str | os.PathLike[str]) -> "OrderedDict[str, np.ndarray]":
    """Read a ``.npz`` checkpoint into an ordered dict of NumPy arrays (in the order it was saved)."""
    with np.load(os.fspath(path), allow_pickle=False) as archive:
        return OrderedDict((name, archive[name]) for name in archive.files)
