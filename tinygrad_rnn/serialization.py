"""Saving and loading as PyTorch users do: ``tg.save(obj, f)`` / ``tg.load(f)``, in a safe format, written atomically.

**What can be saved.** State dicts, tensors (Parameters stay Parameters, ``requires_grad`` and device are kept),
NumPy (and CuPy) arrays and scalars, Python numbers, strings, bytes, ``None``, and dicts (``OrderedDict``
too; keys may be strings, numbers, bools, None or tuples), lists and tuples nesting any of these — e.g. an
optimizer's ``state_dict()``. Tensors that share memory (tied weights: the same Parameter under two state-dict
keys) are stored once and share memory again after loading.

**The format.** A ZIP archive written by ``numpy.savez`` (so ``numpy.load`` can list it): one ``.npy`` member
per array, named by its path of keys (``model.weight``; ``__t<n>`` where that is not a plain name), and a JSON
manifest (``__tinygrad_rnn__``) that describes the structure, each
array's dtype and shape, and the format version. Reading it never runs code: no pickle is involved.

**Anything else** (a whole ``Module``, an optimizer object, a custom class) is pickled into the archive, and
``load`` refuses it unless called with ``weights_only=False``: unpickling runs code chosen by whoever wrote the
file, so do that only with files you trust (PyTorch's rule, ``torch.load(weights_only=False)``). As in PyTorch,
``weights_only=True`` does unpickle an object whose every global (class or function) was allowed with
:func:`add_safe_globals` or inside ``with safe_globals([...]):`` — e.g. a whole model saved with
``save(model, f)``, when its class and its layers' classes are listed; the project's tensors, Parameters, cells,
NumPy arrays and ``OrderedDict`` are always allowed.

**Atomic writes.** Saving to a path writes a temporary file in the same folder, flushes and fsyncs it, renames
it over the target in one step (``os.replace``) and fsyncs the folder: after a crash or a kill, ``path`` holds
the old file or the complete new one, and the temporary file is removed on any failure (including
``KeyboardInterrupt``). Saving to a file object writes the finished archive in one ``write``.

**Loading** checks the archive (ZIP CRCs, the manifest, every array's dtype and shape) and raises
:class:`CheckpointError` naming the file for a truncated, corrupted or foreign file, or one written in a newer
format. Files written by earlier versions (plain ``.npz`` of name -> array) still load, as an ordered dict of
NumPy arrays.
"""

from __future__ import annotations

import base64
import io
import json
import os
import pickle
import re
import tempfile
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, BinaryIO

import numpy as np

from tinygrad_rnn.backend import get_array_module, is_torch_tensor, normalize_device, to_device, to_numpy
from tinygrad_rnn.tensor import Tensor

__all__ = ["FORMAT_VERSION", "CheckpointError", "add_safe_globals", "as_array", "clear_safe_globals",
           "get_safe_globals", "load", "read_metadata", "safe_globals", "save"]

FORMAT_VERSION = 1
_MANIFEST = "__tinygrad_rnn__"
_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
_FORMAT_NAME = "tinygrad_rnn checkpoint"


class CheckpointError(ValueError):
    """A checkpoint cannot be read (truncated, corrupted, foreign, newer format) or holds pickled objects that
    ``load(weights_only=True)`` refuses; or an object cannot be saved."""


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


# --------------------------------------------------------------------------------------------------
# Encoding: object -> (manifest node, arrays)
# --------------------------------------------------------------------------------------------------


def _is_backend_array(value: Any) -> bool:
    return isinstance(value, np.ndarray) or (get_array_module(value) is not np and hasattr(value, "dtype"))


class _Encoder:
    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self.array_keys: dict[int, str] = {}  # id(backend array) -> member name (shared storage stored once)
        self.kept: list[Any] = []  # keeps encoded arrays alive so their ids stay unique while encoding
        self.tensors: dict[int, int] = {}  # id(Tensor) -> index in encoding order (the same Tensor twice)
        self.n_tensors = 0
        self.active: set[int] = set()
        self.pickled = False
        self.path: list[str] = []  # the keys/indices leading to the value being encoded

    def member_name(self) -> str:
        """The archive member for the next array: its dotted path (``"model.weight"``, so ``numpy.load`` shows a
        state dict's own keys) when that is a plain, unused name; otherwise ``__t<n>``."""
        name = ".".join(self.path)
        if not self.path or not _PLAIN.fullmatch(name) or name.startswith("__") or name in self.arrays:
            name = f"__t{len(self.arrays)}"
        return name

    def store(self, array: Any) -> str:
        key = self.array_keys.get(id(array))
        if key is None:
            key = self.member_name()
            host = to_numpy(array)
            if host.dtype.kind not in "biufcSU":
                raise _NeedsPickle
            self.arrays[key] = host
            self.array_keys[id(array)] = key
            self.kept.append(array)
        return key

    def node(self, obj: Any) -> Any:
        if obj is None:
            return {"type": "none"}
        if isinstance(obj, bool):
            return {"type": "bool", "value": obj}
        if isinstance(obj, int) and type(obj) is int:
            return {"type": "int", "value": str(obj)}
        if type(obj) is float:
            return {"type": "float", "hex": obj.hex()}
        if type(obj) is complex:
            return {"type": "complex", "re": obj.real.hex(), "im": obj.imag.hex()}
        if type(obj) is str:
            return {"type": "str", "value": obj}
        if type(obj) is bytes:
            return {"type": "bytes", "value": base64.b64encode(obj).decode("ascii")}
        if isinstance(obj, Tensor):
            return self.tensor(obj)
        if isinstance(obj, np.generic) and obj.dtype.kind in "biufcSU":
            return {"type": "npscalar", "array": self.store(np.asarray(obj))}
        if _is_backend_array(obj) and obj.dtype.kind in "biufcSU":
            return {"type": "ndarray", "array": self.store(obj), "device": _device(obj)}
        if type(obj) in (dict, OrderedDict, list, tuple):
            if id(obj) in self.active:
                raise CheckpointError(f"save: the object contains itself (a cycle through a {type(obj).__name__})")
            self.active.add(id(obj))
            try:
                if isinstance(obj, dict):
                    return {"type": "ordereddict" if type(obj) is OrderedDict else "dict",
                            "keys": [self.key_node(k) for k in obj],
                            "values": [self.child(str(k), v) for k, v in obj.items()]}
                return {"type": type(obj).__name__, "items": [self.child(str(i), v) for i, v in enumerate(obj)]}
            finally:
                self.active.discard(id(obj))
        return self.pickle(obj)

    def child(self, step: str, value: Any) -> Any:
        self.path.append(step)
        try:
            return self.node(value)
        finally:
            self.path.pop()

    def key_node(self, key: Any) -> Any:
        if key is None or type(key) in (bool, int, float, str) or (type(key) is tuple and all(
                k is None or type(k) in (bool, int, float, str) for k in key)):
            return self.node(key)
        return self.pickle(key)

    def tensor(self, t: Tensor) -> Any:
        index = self.tensors.get(id(t))
        if index is not None:
            return {"type": "tensor_ref", "index": index}
        self.tensors[id(t)] = self.n_tensors
        self.n_tensors += 1
        self.kept.append(t)
        try:
            key = self.store(t.array)
        except _NeedsPickle:  # pragma: no cover - tensors hold numbers only
            return self.pickle(t)
        from tinygrad_rnn.nn.module import Parameter  # here: nn builds on this module

        return {"type": "tensor", "array": key, "device": t.device, "requires_grad": bool(t.requires_grad),
                "parameter": isinstance(t, Parameter)}

    def pickle(self, obj: Any) -> Any:
        try:
            blob = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise CheckpointError(f"save: cannot store a {type(obj).__module__}.{type(obj).__qualname__}: it is "
                                  f"not a tensor, array, number, string or container, and pickling it failed ({exc})"
                                  ) from exc
        self.pickled = True
        key = f"__p{len(self.arrays)}"
        self.arrays[key] = np.frombuffer(blob, dtype=np.uint8)
        return {"type": "pickle", "array": key, "class": f"{type(obj).__module__}.{type(obj).__qualname__}"}


class _NeedsPickle(Exception):
    pass


def _device(array: Any) -> str:
    return "cpu" if isinstance(array, np.ndarray) else f"cuda:{array.device.id}"


def _encode(obj: Any, metadata: Mapping[str, Any] | None) -> dict[str, np.ndarray]:
    enc = _Encoder()
    root = enc.node(obj)
    manifest = {
        "format": _FORMAT_NAME,
        "version": FORMAT_VERSION,
        "root": root,
        "arrays": {k: {"dtype": a.dtype.str, "shape": list(a.shape)} for k, a in enc.arrays.items()},
        "pickled": enc.pickled,
        "metadata": dict(metadata) if metadata else {},
    }
    try:
        text = json.dumps(manifest)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"save: metadata must be JSON-serialisable ({exc})") from exc
    arrays = dict(enc.arrays)
    arrays[_MANIFEST] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    return arrays


# --------------------------------------------------------------------------------------------------
# save
# --------------------------------------------------------------------------------------------------


def save(obj: Any, f: str | os.PathLike[str] | BinaryIO, *, metadata: Mapping[str, Any] | None = None) -> None:
    """Write ``obj`` to ``f`` (a path or a binary file object), as ``torch.save``; atomically for a path.

    Args:
        obj: a state dict, a tensor, an array, a number, a string, or dicts/lists/tuples of these (an optimizer's
            ``state_dict()``); anything else is pickled and needs ``load(..., weights_only=False)``.
        f: a path (written atomically: a temporary file in the same folder, fsynced, renamed, folder fsynced)
            or a writable binary file object (receives the whole archive in one ``write``).
        metadata: optional JSON-serialisable dict stored in the manifest (e.g. the model's configuration);
            read it back with :func:`read_metadata`.

    Raises:
        FileNotFoundError: the target folder does not exist. OSError: the write failed (nothing is left behind).
        CheckpointError: ``obj`` contains itself, or an object that can be neither stored nor pickled.
    """
    arrays: dict[str, Any] = _encode(obj, metadata)
    if hasattr(f, "write"):
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        f.write(buffer.getvalue())
        return
    path = os.fspath(f)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"save: cannot write {path!r}: the folder {folder!r} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.chmod(tmp, _file_mode(path))  # mkstemp's 0600 would make the checkpoint private
            np.savez(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    _fsync_folder(folder)


def _fsync_folder(folder: str) -> None:
    """Make the rename durable: fsync the folder's entry table (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a folder
        pass
    finally:
        os.close(fd)


def _file_mode(path: str) -> int:
    """The permission bits the checkpoint gets: those of the file it replaces, else 0666 less the umask."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0o022)  # the only portable way to read the umask is to set it and set it back
        os.umask(umask)
        return 0o666 & ~umask


# --------------------------------------------------------------------------------------------------
# load
# --------------------------------------------------------------------------------------------------


def _open_archive(f: Any, name: str) -> tuple[dict[str, np.ndarray], dict[str, Any] | None]:
    """Every member of the archive as an array, and the manifest (None for a legacy plain ``.npz``)."""
    try:
        if hasattr(f, "read"):
            source: Any = f if getattr(f, "seekable", lambda: False)() else io.BytesIO(f.read())
        else:
            source = os.fspath(f)
            if not os.path.exists(source):
                raise FileNotFoundError(f"load: no such file: {source!r}")
        archive = np.load(source, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise CheckpointError(f"load: {name} is a single .npy array, not a checkpoint (use numpy.load)")
        with archive:
            assert archive.zip is not None  # (an NpzFile always holds its zip)
            raw_names = archive.zip.namelist()
            if any(not n.endswith(".npy") for n in raw_names):
                raise CheckpointError(f"load: {name} is not a tinygrad_rnn checkpoint (a ZIP archive with other "
                                      f"members, e.g. {next(n for n in raw_names if not n.endswith('.npy'))!r}; "
                                      "a PyTorch file? read it with torch.load and pass the state dict)")
            members = {key: archive[key] for key in archive.files}
    except (CheckpointError, FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except Exception as exc:  # BadZipFile, EOFError, a bad CRC, a bad .npy header, pickled data refused
        raise CheckpointError(f"load: cannot read {name}: the file is truncated, corrupted or not a checkpoint "
                              f"({type(exc).__name__}: {exc})") from exc
    if _MANIFEST not in members:
        return members, None
    try:
        manifest = json.loads(members.pop(_MANIFEST).tobytes().decode("utf-8"))
        if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT_NAME:
            raise ValueError("the manifest does not name the format")
        version = manifest["version"]
    except Exception as exc:
        raise CheckpointError(f"load: {name} has a corrupted manifest ({exc})") from exc
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(f"load: {name} is in checkpoint format {version}, written by a newer tinygrad_rnn; "
                              f"this version reads formats up to {FORMAT_VERSION} (upgrade tinygrad_rnn)")
    return members, manifest


def _target_device(device: str, map_location: Any) -> str:
    if map_location is None:
        return device
    if isinstance(map_location, Mapping):
        return normalize_device(map_location.get(device, device))
    if callable(map_location):
        return normalize_device(map_location(device))
    return normalize_device(str(map_location) if type(map_location).__name__ == "device" else map_location)


# globals a weights_only load may unpickle without being listed: the containers of weights themselves
_ALWAYS_SAFE = frozenset({
    "collections.OrderedDict",
    "numpy.dtype", "numpy.ndarray", "numpy._core.numeric._frombuffer", "numpy.core.numeric._frombuffer",
    "numpy._core.multiarray._reconstruct", "numpy.core.multiarray._reconstruct", "numpy._core.multiarray.scalar",
    "numpy.core.multiarray.scalar", "tinygrad_rnn.tensor.Tensor", "tinygrad_rnn.nn.module.Parameter",
    "tinygrad_rnn.ops.tanh", "tinygrad_rnn.ops.relu",  # an Elman cell's nonlinearity
})
_safe_globals: list[Any] = []


def _global_name(obj: Any) -> str:
    if isinstance(obj, tuple):  # (obj, "module.name"), as torch accepts
        return str(obj[1])
    return f"{obj.__module__}.{obj.__qualname__}"


def add_safe_globals(safe_globals: list[Any]) -> None:
    """Allow these classes/functions in ``load(weights_only=True)`` (``torch.serialization.add_safe_globals``),
    for the whole process. Each item: the object, or ``(object, "module.name")``."""
    _safe_globals.extend(safe_globals)


def get_safe_globals() -> list[Any]:
    """The globals allowed by :func:`add_safe_globals` (a copy)."""
    return list(_safe_globals)


def clear_safe_globals() -> None:
    """Forget every global allowed by :func:`add_safe_globals`."""
    _safe_globals.clear()


class safe_globals:  # PyTorch's name (a context manager class)
    """``with safe_globals([Model, nn.LSTM, ...]):`` allows those globals in ``load(weights_only=True)`` inside
    the block only (``torch.serialization.safe_globals``)."""

    def __init__(self, safe_globals: list[Any]) -> None:
        self.safe_globals = list(safe_globals)

    def __enter__(self) -> None:
        self.before = len(_safe_globals)
        _safe_globals.extend(self.safe_globals)

    def __exit__(self, *exc: object) -> None:
        del _safe_globals[self.before:]


class _WeightsUnpickler(pickle.Unpickler):
    """Unpickles only allowed globals: checked by name before anything is imported."""

    def __init__(self, data: bytes, name: str) -> None:
        super().__init__(io.BytesIO(data))
        self.name = name
        self.allowed = _ALWAYS_SAFE | {_global_name(g) for g in _safe_globals}

    def find_class(self, module: str, name: str) -> Any:
        full = f"{module}.{name}"
        if full not in self.allowed and module != "tinygrad_rnn.nn.cells":
            raise CheckpointError(
                f"load: {self.name} holds a pickled object that needs {full}, which weights_only=True does not "
                f"allow. If you trust the file's source, allow it with tinygrad_rnn.serialization.add_safe_globals"
                f"([{name}]) or 'with tinygrad_rnn.serialization.safe_globals([...]):', or load with "
                "weights_only=False (unpickling can run arbitrary code).")
        return super().find_class(module, name)


class _Decoder:
    def __init__(self, members: dict[str, np.ndarray], manifest: dict[str, Any], name: str, weights_only: bool,
                 map_location: Any):
        self.members, self.name, self.weights_only, self.map_location = members, name, weights_only, map_location
        self.tensors: list[Tensor] = []
        self.by_array: dict[tuple[str, str], Any] = {}  # (member, device) -> the loaded backend array (ties)
        for key, spec in manifest.get("arrays", {}).items():
            array = members.get(key)
            if array is None:
                raise CheckpointError(f"load: {name} is corrupted: array {key!r} is missing")
            if array.dtype.str != spec["dtype"] or list(array.shape) != list(spec["shape"]):
                raise CheckpointError(f"load: {name} is corrupted: array {key!r} is {array.dtype.str} "
                                      f"{list(array.shape)}, the manifest says {spec['dtype']} {spec['shape']}")

    def array(self, key: str) -> np.ndarray:
        try:
            return self.members[key]
        except KeyError:
            raise CheckpointError(f"load: {self.name} is corrupted: array {key!r} is missing") from None

    def backend_array(self, key: str, device: str) -> Any:
        device = _target_device(device, self.map_location)
        cached = self.by_array.get((key, device))
        if cached is None:
            cached = to_device(self.array(key), device)
            self.by_array[(key, device)] = cached
        return cached

    def node(self, n: Any) -> Any:
        kind = n["type"]
        if kind == "none":
            return None
        if kind == "bool":
            return bool(n["value"])
        if kind == "int":
            return int(n["value"])
        if kind == "float":
            return float.fromhex(n["hex"])
        if kind == "complex":
            return complex(float.fromhex(n["re"]), float.fromhex(n["im"]))
        if kind == "str":
            return str(n["value"])
        if kind == "bytes":
            return base64.b64decode(n["value"])
        if kind == "npscalar":
            return self.array(n["array"])[()]
        if kind == "ndarray":
            if n.get("device", "cpu") == "cpu" and self.map_location is None:
                return self.array(n["array"])
            return to_device(self.array(n["array"]), _target_device(n["device"], self.map_location))
        if kind == "tensor":
            return self.tensor(n)
        if kind == "tensor_ref":
            return self.tensors[n["index"]]
        if kind in ("dict", "ordereddict"):
            keys = [self.key(k) for k in n["keys"]]
            values = [self.node(v) for v in n["values"]]
            return (OrderedDict if kind == "ordereddict" else dict)(zip(keys, values, strict=False))
        if kind == "list":
            return [self.node(v) for v in n["items"]]
        if kind == "tuple":
            return tuple(self.node(v) for v in n["items"])
        if kind == "pickle":
            if self.weights_only:
                return self.safe_unpickle(n)
            return pickle.loads(self.array(n["array"]).tobytes())  # opt-in, documented as unsafe
        raise CheckpointError(f"load: {self.name} is corrupted or newer: unknown entry type {kind!r}")

    def safe_unpickle(self, n: Any) -> Any:
        """weights_only=True: unpickle only when every global is allowed (see :func:`add_safe_globals`)."""
        try:
            return _WeightsUnpickler(self.array(n["array"]).tobytes(), self.name).load()
        except CheckpointError as exc:
            raise CheckpointError(
                f"load: {self.name} holds a pickled {n.get('class', 'object')}; weights_only=True (the default) "
                f"reads only tensors, arrays, numbers, strings, containers and allowed globals. {exc}") from None

    def key(self, n: Any) -> Any:
        value = self.node(n)
        return tuple(value) if isinstance(value, list) else value

    def tensor(self, n: Any) -> Tensor:
        from tinygrad_rnn.nn.module import Parameter  # here: nn builds on this module

        array = self.backend_array(n["array"], n.get("device", "cpu"))
        placeholder = np.zeros(0, dtype=array.dtype)
        t: Tensor = Parameter(placeholder, requires_grad=False) if n.get("parameter") else Tensor(placeholder)
        t.array = array  # shares memory with every other tensor stored from the same array (tied weights)
        if n.get("requires_grad"):
            t.requires_grad_(True)
        self.tensors.append(t)
        return t


def load(f: str | os.PathLike[str] | BinaryIO, map_location: Any = None, weights_only: bool | None = True,
         **kwargs: Any) -> Any:
    """Read what :func:`save` wrote, as ``torch.load``: the same structure, types and values.

    Args:
        f: a path or a readable binary file object.
        map_location: None (each tensor back on its device), a device (``"cpu"``), a dict of device -> device,
            or a function of the saved device string.
        weights_only: True (default; None means the default, as in PyTorch): read only tensors, arrays,
            numbers, strings and containers; a file holding pickled objects is refused. False (exactly) also
            unpickles them: **unsafe** for untrusted files.
        kwargs: ``mmap`` and other PyTorch options are accepted and ignored.

    Returns:
        The saved object. A legacy plain ``.npz`` (name -> array) loads as an ordered dict of NumPy arrays.

    Raises:
        CheckpointError: truncated, corrupted or foreign file, a newer format, or pickled objects with
            ``weights_only=True``. FileNotFoundError: no such file. DeviceError: a tensor's device is unusable
            here (pass ``map_location="cpu"``).
    """
    name = repr(os.fspath(f)) if not hasattr(f, "read") else f"file object {getattr(f, 'name', type(f).__name__)!r}"
    weights_only = weights_only is not False  # only an explicit False opts in to unpickling
    members, manifest = _open_archive(f, name)
    if manifest is None:  # a checkpoint from an earlier version: a flat name -> array archive
        return OrderedDict(members)
    try:
        return _Decoder(members, manifest, name, weights_only, map_location).node(manifest["root"])
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise CheckpointError(f"load: {name} has a corrupted manifest ({type(exc).__name__}: {exc})") from exc


def read_metadata(f: str | os.PathLike[str] | BinaryIO) -> dict[str, Any]:
    """The ``metadata`` dict a checkpoint was saved with (``{}`` when none, or for a legacy file)."""
    name = repr(os.fspath(f)) if not hasattr(f, "read") else "file object"
    _, manifest = _open_archive(f, name)
    return {} if manifest is None else dict(manifest.get("metadata", {}))

