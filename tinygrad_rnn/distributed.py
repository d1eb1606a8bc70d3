"""Data-parallel training on MPI (mpi4py): every process holds the same model, works on its own shard of the
batch, and the gradients are averaged with an allreduce before every optimizer step (as Horovod and
PyTorch's DistributedDataParallel do).

Install the optional extra (``pip install -e ".[mpi]"``: mpi4py and MPICH, which brings ``mpiexec``) and
launch one process per rank::

    mpiexec -n 2 python examples/char_lm.py --distributed

A training step on every rank::

    import tinygrad_rnn.distributed as dist

    dist.broadcast_parameters(model)                   # once: every rank starts from rank 0's weights
    x, y = dist.shard(x_global), dist.shard(y_global)  # this rank's rows of the global batch
    loss = F.cross_entropy(model(x), y)                # the mean over this rank's rows
    opt.zero_grad()
    loss.backward()
    dist.allreduce_gradients(model.parameters())       # now every rank holds the global batch's gradient
    clip_grad_norm_(model.parameters(), 1.0)           # ... so clipping sees the global norm
    opt.step()                                         # ... and every rank takes the same step

**Why the result does not depend on the number of ranks.** With a loss that is a mean over the batch, the
global batch's gradient is the weighted mean of the shards' gradients, ``g = Σ_r n_r g_r / Σ_r n_r`` (``n_r``
the items of rank ``r``'s shard, ``g_r`` the gradient of its mean loss). ``allreduce_gradients`` computes
exactly that (plain ``Σ_r g_r / p`` when every shard has the same size, its default; pass ``weight=n_r`` for
unequal shards), so after it every rank holds the gradient one process would have computed on the whole
batch, to rounding. Clipping and the optimizer step must come *after* the allreduce: clipping each rank's own
gradient first would scale each shard by its own norm, which no single process ever does.

**Buckets.** The gradients are packed, in parameter order, into flat buffers of at most ``bucket_cap_mb``
(25 MB, DDP's default; one dtype and device per buffer) and each buffer is reduced with one
``MPI_Allreduce`` call: a model with hundreds of small tensors costs a few calls per step, not hundreds.

**Errors never hang the job.** A rank that dies while the others wait in a collective would leave them
waiting forever. This module therefore installs a ``sys.excepthook`` that prints the uncaught exception with
the rank's number and calls ``MPI.COMM_WORLD.Abort``: ``mpiexec`` then stops every rank and exits non-zero
within seconds. It is installed when the module is imported in a process that ``mpiexec`` started with more
than one rank (so an error before the first MPI call is covered too), and by :func:`init` otherwise; a hook
that was there before still prints the traceback.
``sys.exit(code)`` is not an exception Python reports to the hook: on one rank only, call :func:`abort`
instead (or launch with ``mpiexec -n 2 python -m mpi4py script.py``, which aborts on a non-zero exit too).

**GPU tensors.** Gradients on a CUDA device are reduced either by staging through host memory (the default,
``gpu_backend="host"``: one device-to-host copy per bucket, an MPI allreduce, one copy back; works with any
MPI) or with NCCL through ``cupy.cuda.nccl`` (``gpu_backend="nccl"``: the bucket never leaves the GPU;
every rank must own a different GPU, see :func:`device_for_rank`). Both paths are written but have not yet
run on a GPU: treat them as unverified until ``tests/test_distributed.py``'s CUDA tests have passed on one.

The ``comm`` argument of the functions below defaults to ``MPI.COMM_WORLD`` (any mpi4py intracommunicator
may be passed, e.g. ``MPI.COMM_SELF`` for a one-process reference run).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

import numpy as np

from tinygrad_rnn.backend import cuda_module, device_index, get_array_module, nccl_module, to_device, to_numpy
from tinygrad_rnn.tensor import Tensor

__all__ = [
    "init",
    "is_initialized",
    "get_rank",
    "get_world_size",
    "rank",
    "size",
    "local_rank",
    "is_main",
    "barrier",
    "abort",
    "broadcast_parameters",
    "broadcast_object",
    "allreduce_gradients",
    "allreduce",
    "shard",
    "shard_range",
    "DistributedSampler",
    "print0",
    "save_on_main",
    "load_on_main",
    "on_main",
    "gather",
    "device_for_rank",
    "mpiexec_command",
]

T = TypeVar("T")


class _World:
    """The default communicator and what :func:`init` learned about it (module-wide, set once)."""

    comm: Any = None
    local_rank: int = 0
    previous_excepthook: Any = None
    nccl: ClassVar[dict[str, Any]] = {}


_world = _World()


def _mpi() -> Any:
    """The ``mpi4py.MPI`` module (importing it initialises MPI), or a clear ImportError."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ImportError(
            f"tinygrad_rnn.distributed needs mpi4py and an MPI library ({exc}); install the extra: "
            "pip install mpi4py mpich (or pip install -e \".[mpi]\" in a clone)"
        ) from exc
    return MPI


# ----------------------------------------------------------------------------------------------- the world


def init(comm: Any = None) -> tuple[int, int]:
    """Start MPI (if needed) and set the default communicator; returns ``(rank, world size)``.

    Every function of this module calls it on first use, so calling it yourself is optional; it is cheap and
    idempotent. It also installs the excepthook that aborts the whole job when a rank raises (see the module
    docstring), when there is more than one rank, and learns each rank's index on its node (:func:`local_rank`).
    ``init`` is collective the first time: every rank must reach it.

    Args:
        comm: an mpi4py intracommunicator; default ``MPI.COMM_WORLD``.
    """
    if _world.comm is None or (comm is not None and comm is not _world.comm):
        MPI = _mpi()
        _world.comm = MPI.COMM_WORLD if comm is None else comm
        node = _world.comm.Split_type(MPI.COMM_TYPE_SHARED)  # the ranks that share this node's memory
        _world.local_rank = node.Get_rank()
        node.Free()
        if _world.comm.Get_size() > 1:
            _install_excepthook()
    return _world.comm.Get_rank(), _world.comm.Get_size()


def is_initialized() -> bool:
    """Whether :func:`init` has run in this process."""
    return _world.comm is not None


def _comm(comm: Any = None) -> Any:
    if comm is not None:
        return comm
    if _world.comm is None:
        init()
    return _world.comm


def get_rank(comm: Any = None) -> int:
    """This process's rank, 0 .. world size - 1 (as ``torch.distributed.get_rank``)."""
    return _comm(comm).Get_rank()


def get_world_size(comm: Any = None) -> int:
    """The number of ranks (as ``torch.distributed.get_world_size``)."""
    return _comm(comm).Get_size()


rank = get_rank  # Horovod's names
size = get_world_size


def local_rank() -> int:
    """This rank's index among the ranks on the same node (for choosing a GPU): 0 .. ranks per node - 1."""
    _comm()
    return _world.local_rank


def is_main(comm: Any = None) -> bool:
    """True on rank 0, the rank that logs and writes checkpoints."""
    return get_rank(comm) == 0


def barrier(comm: Any = None) -> None:
    """Wait until every rank has reached this call."""
    _comm(comm).Barrier()


def abort(code: int = 1) -> None:
    """Stop every rank of the job now (``MPI.COMM_WORLD.Abort``); ``mpiexec`` exits with a non-zero status."""
    sys.stdout.flush()
    sys.stderr.flush()
    _mpi().COMM_WORLD.Abort(code)


def _abort_on_uncaught_exception(exc_type: Any, exc: BaseException, tb: Any) -> None:
    """``sys.excepthook`` installed by :func:`init`: report the exception with the rank, then abort the job."""
    world = _mpi().COMM_WORLD  # (starts MPI if this rank failed before using it: Abort needs it)
    sys.stderr.write(f"[tinygrad_rnn.distributed] rank {world.Get_rank()} of {world.Get_size()} raised an "
                     "uncaught exception; aborting all ranks\n")
    (_world.previous_excepthook or sys.__excepthook__)(exc_type, exc, tb)
    abort(130 if issubclass(exc_type, KeyboardInterrupt) else 1)


def _install_excepthook() -> None:
    if _world.previous_excepthook is None:
        _world.previous_excepthook = sys.excepthook
        sys.excepthook = _abort_on_uncaught_exception


def _launched_ranks() -> int:
    """How many ranks ``mpiexec`` started, from the environment it gives them (MPICH/Hydra, Open MPI, MVAPICH)."""
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"):
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 1


if _launched_ranks() > 1:  # under mpiexec: a rank that fails before its first MPI call must not hang the others
    _install_excepthook()


# ----------------------------------------------------------------------------------------------- buckets


def _array(x: Any) -> Any:
    return x.array if isinstance(x, Tensor) else x


def _buckets(arrays: Sequence[Any], cap_bytes: int) -> list[list[int]]:
    """Indices of ``arrays`` grouped into buckets: parameter order kept within each (dtype, device) group, each
    bucket at most ``cap_bytes`` (an array larger than that forms a bucket of its own)."""
    groups: dict[tuple[str, str], list[list[int]]] = {}
    filled: dict[tuple[str, str], int] = {}
    for i, a in enumerate(arrays):
        key = (str(a.dtype), str(get_array_module(a).__name__) + str(getattr(a, "device", "")))
        buckets = groups.setdefault(key, [])
        if not buckets or (filled[key] + a.nbytes > cap_bytes and buckets[-1]):
            buckets.append([])
            filled[key] = 0
        buckets[-1].append(i)
        filled[key] += a.nbytes
    return [bucket for buckets in groups.values() for bucket in buckets]


def _pack(arrays: Sequence[Any], scale: float = 1.0) -> Any:
    """One flat buffer holding ``scale * a`` for every array, back to back (on the arrays' device)."""
    xp = get_array_module(arrays[0])
    flat = xp.empty(sum(a.size for a in arrays), dtype=arrays[0].dtype)
    offset = 0
    for a in arrays:
        view = flat[offset : offset + a.size].reshape(a.shape)
        if scale == 1.0:
            view[...] = a
        else:
            xp.multiply(a, scale, out=view)
        offset += a.size
    return flat


def _unpack(flat: Any, arrays: Sequence[Any]) -> None:
    """Copy the flat buffer back into the arrays, in place."""
    offset = 0
    for a in arrays:
        a[...] = flat[offset : offset + a.size].reshape(a.shape)
        offset += a.size


_NCCL_TYPES = {"float16": "NCCL_FLOAT16", "float32": "NCCL_FLOAT32", "float64": "NCCL_FLOAT64"}


def _nccl_communicator(device: str, comm: Any) -> Any:
    """One NCCL communicator per device and MPI communicator, set up over MPI on first use (unverified)."""
    key = f"{device}/{comm.py2f()}"
    if key not in _world.nccl:
        cupy, nccl = cuda_module(), nccl_module()
        unique_id = nccl.get_unique_id() if comm.Get_rank() == 0 else None
        unique_id = comm.bcast(unique_id, root=0)
        with cupy.cuda.Device(device_index(device)):
            _world.nccl[key] = nccl.NcclCommunicator(comm.Get_size(), unique_id, comm.Get_rank())
    return _world.nccl[key]


def _allreduce_flat(flat: Any, comm: Any, gpu_backend: str) -> Any:
    """Sum ``flat`` over the ranks; returns the summed buffer on ``flat``'s device."""
    MPI = _mpi()
    xp = get_array_module(flat)
    if xp is np:
        comm.Allreduce(MPI.IN_PLACE, flat, op=MPI.SUM)
        return flat
    device = f"cuda:{flat.device.id}"
    if gpu_backend == "nccl":  # the buffer stays on the GPU
        cupy, nccl = cuda_module(), nccl_module()
        if str(flat.dtype) not in _NCCL_TYPES:
            raise TypeError(f"allreduce_gradients: NCCL cannot reduce {flat.dtype} buffers")
        with cupy.cuda.Device(flat.device.id):
            _nccl_communicator(device, comm).allReduce(
                flat.data.ptr, flat.data.ptr, flat.size, getattr(nccl, _NCCL_TYPES[str(flat.dtype)]), nccl.NCCL_SUM,
                cupy.cuda.get_current_stream().ptr)
        return flat
    host = to_numpy(flat)  # staging through host memory: device -> host, MPI, host -> device
    comm.Allreduce(MPI.IN_PLACE, host, op=MPI.SUM)
    return to_device(host, device)


def _bucket_cap(bucket_cap_mb: float, name: str) -> int:
    if not bucket_cap_mb > 0:
        raise ValueError(f"{name}: bucket_cap_mb must be > 0, got {bucket_cap_mb}")
    return int(bucket_cap_mb * 2**20)


# ----------------------------------------------------------------------------------------------- collectives


def broadcast_parameters(params: Any, root: int = 0, bucket_cap_mb: float = 25.0, comm: Any = None) -> None:
    """Overwrite, in place, every rank's parameters with rank ``root``'s (call once, before training).

    Ranks that initialised their models differently (another seed, a checkpoint read on one rank only) then
    hold identical weights. The arrays travel in flat buckets like :func:`allreduce_gradients`' (GPU arrays
    through host memory).

    Args:
        params: a Module (its parameters, and its buffers when it has ``buffers()``), a state dict
            (name -> Tensor sharing the parameter's memory, or array), or an iterable of Tensors/arrays. Every
            rank must pass the same structure: same order, shapes and dtypes.
        root: the rank whose values are sent.

    Raises:
        TypeError: an item that is neither a Tensor nor an array.
    """
    comm = _comm(comm)
    if hasattr(params, "parameters") and callable(params.parameters):
        tensors = list(params.parameters())
        if hasattr(params, "buffers") and callable(params.buffers):
            tensors += list(params.buffers())
    elif isinstance(params, Mapping):
        tensors = list(params.values())
    else:
        tensors = list(params)
    arrays = [_array(t) for t in tensors]
    for t, a in zip(tensors, arrays, strict=False):
        if not hasattr(a, "dtype") or not hasattr(a, "shape"):
            raise TypeError(f"broadcast_parameters: expected Tensors or arrays, got {type(t).__name__}")
    if comm.Get_size() == 1 or not arrays:
        return
    for bucket in _buckets(arrays, _bucket_cap(bucket_cap_mb, "broadcast_parameters")):
        members = [arrays[i] for i in bucket]
        flat = _pack(members)
        host = to_numpy(flat)
        comm.Bcast(host, root=root)
        _unpack(host if get_array_module(flat) is np else to_device(host, f"cuda:{flat.device.id}"), members)


def broadcast_object(obj: T, root: int = 0, comm: Any = None) -> T:
    """Rank ``root``'s ``obj`` on every rank (pickled: for settings and small state, not for big arrays)."""
    return _comm(comm).bcast(obj, root=root)


def allreduce_gradients(parameters: Iterable[Tensor], average: bool = True, weight: float | None = None,
                        bucket_cap_mb: float = 25.0, gpu_backend: str = "host", comm: Any = None) -> int:
    """Replace every parameter's ``.grad`` by its mean (or sum) over the ranks, in place.

    Call it after ``loss.backward()`` and before clipping and ``optimizer.step()``. The gradients are packed
    into flat buckets (at most ``bucket_cap_mb`` each, one dtype and device per bucket) and each bucket is
    summed with one allreduce; one more tiny allreduce carries the weights and which parameters have a
    gradient on any rank.

    With ``average=True`` the result is ``Σ_r w_r g_r / Σ_r w_r`` where ``g_r`` is rank ``r``'s gradient and
    ``w_r`` its ``weight`` (default 1: the plain mean over ranks). When each rank's loss is the mean over its
    shard, pass the shard's size as ``weight`` (the number of items, or of targets that count) and the result
    is the gradient of the mean over the global batch, whatever the shard sizes. With ``average=False`` the
    gradients are summed (for a loss that is a sum).

    A parameter whose ``.grad`` is None on some ranks counts as zero there; it keeps ``.grad = None`` only if
    it has no gradient on any rank (so optimizers skip it as they would in one process).

    Args:
        parameters: the Parameters (e.g. ``model.parameters()``, or the Module), in the same order on every rank.
        average: mean (True) or sum (False) over the ranks.
        weight: this rank's weight in the mean (> 0); only with ``average=True``.
        bucket_cap_mb: the largest bucket in MiB.
        gpu_backend: for CUDA gradients, ``"host"`` (stage through host memory) or ``"nccl"`` (NCCL via
            ``cupy.cuda.nccl``; each rank on its own GPU). Both unverified on a GPU so far.

    Returns:
        The number of gradient buckets reduced (0 with a single rank or no gradients).

    Raises:
        ValueError: a bad ``weight``, ``bucket_cap_mb`` or ``gpu_backend``, or all weights zero.
        TypeError: an item that is not a Tensor requiring grad.
    """
    params = list(parameters.parameters() if hasattr(parameters, "parameters") else parameters)
    for p in params:
        if not isinstance(p, Tensor) or not p.requires_grad:
            what = f"a Tensor of shape {p.shape} without requires_grad" if isinstance(p, Tensor) else type(p).__name__
            raise TypeError(f"allreduce_gradients: expected Parameters (Tensors that require grad), got {what}")
    if gpu_backend not in ("host", "nccl"):
        raise ValueError(f"allreduce_gradients: gpu_backend must be 'host' or 'nccl', got {gpu_backend!r}")
    if weight is not None and not average:
        raise ValueError("allreduce_gradients: weight is only meaningful with average=True")
    if weight is not None and not (np.isfinite(weight) and weight >= 0):
        raise ValueError(f"allreduce_gradients: weight must be a finite number >= 0, got {weight}")
    cap = _bucket_cap(bucket_cap_mb, "allreduce_gradients")
    comm = _comm(comm)
    if comm.Get_size() == 1:
        return 0
    MPI = _mpi()
    # header: [this rank's weight, has-gradient flag of each parameter], summed over the ranks in one call
    header = np.empty(len(params) + 1, dtype=np.float64)
    header[0] = 1.0 if weight is None else float(weight)
    header[1:] = [p.grad is not None for p in params]
    comm.Allreduce(MPI.IN_PLACE, header, op=MPI.SUM)
    total_weight = header[0]
    if average and not total_weight > 0:
        raise ValueError("allreduce_gradients: the weights of all ranks sum to 0")
    scale = (1.0 if weight is None else float(weight)) / total_weight if average else 1.0
    present = [p for p, n in zip(params, header[1:], strict=False) if n > 0]
    for p in present:
        if p.grad is None:  # no gradient here, but on another rank: it counts as zero here
            xp = get_array_module(p.array)
            p.grad = Tensor(xp.zeros(p.shape, dtype=p.dtype))
    grads = [p.grad.array for p in present]
    buckets = _buckets(grads, cap)
    for bucket in buckets:
        members = [grads[i] for i in bucket]
        flat = _allreduce_flat(_pack(members, scale), comm, gpu_backend)
        _unpack(flat, members)
    return len(buckets)


def allreduce(value: Any, op: str = "sum", weight: float | None = None, comm: Any = None) -> Any:
    """``value`` reduced over the ranks with ``op`` (``"sum"``, ``"mean"``, ``"max"``, ``"min"``), on every rank.

    For the small things of a training loop (a loss to log, a count); gradients go through
    :func:`allreduce_gradients`. ``op="mean"`` with ``weight`` gives ``Σ_r w_r v_r / Σ_r w_r`` (e.g. the mean
    loss over the global batch from each shard's mean loss and size), in one call. A Python number gives a
    Python float (or int), a NumPy/CuPy array an array of the same shape, a Tensor a new Tensor (no history).

    Raises:
        ValueError: an unknown ``op``, or ``weight`` without ``op="mean"``.
        TypeError: a value that is not numeric.
    """
    MPI = _mpi()
    ops = {"sum": MPI.SUM, "mean": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}
    if op not in ops:
        raise ValueError(f"allreduce: op must be one of {sorted(ops)}, got {op!r}")
    if weight is not None and op != "mean":
        raise ValueError(f"allreduce: weight is only meaningful with op='mean', got op={op!r}")
    comm = _comm(comm)
    if isinstance(value, Tensor):
        return Tensor(allreduce(value.array, op, weight, comm))
    is_array = hasattr(value, "__array__") or hasattr(value, "__cuda_array_interface__")
    xp = get_array_module(value) if is_array else np
    host = np.array(to_numpy(value) if is_array else value)
    if host.dtype.kind not in "biuf":
        raise TypeError(f"allreduce: expected a number or a numeric array, got {type(value).__name__}")
    if op == "mean":  # sum [w·v, w] in one call, then divide
        host = host.astype(np.result_type(host.dtype, np.float64) if host.dtype.kind != "f" else host.dtype)
        w = 1.0 if weight is None else float(weight)
        packed = np.append(host.ravel() * w, w).astype(host.dtype)
        comm.Allreduce(MPI.IN_PLACE, packed, op=MPI.SUM)
        host = (packed[:-1] / packed[-1]).reshape(host.shape)
    else:
        comm.Allreduce(MPI.IN_PLACE, host, op=ops[op])
    if not is_array:
        return host.item()
    return host if xp is np else to_device(host, f"cuda:{value.device.id}")


# ----------------------------------------------------------------------------------------------- sharding


def shard_range(n: int, rank: int | None = None, size: int | None = None) -> range:
    """The indices ``0 .. n-1`` that belong to ``rank`` (default: this rank) of ``size`` ranks.

    Contiguous and as even as possible: the first ``n % size`` ranks get one item more (``numpy.array_split``'s
    rule), so the shards of all ranks, in rank order, are exactly ``range(n)``.

    Raises:
        ValueError: ``n < size`` (a rank would get nothing, and the mean loss over nothing is not defined), or a
            rank outside ``0 .. size-1``.
    """
    if rank is None:
        rank = get_rank()
    if size is None:
        size = get_world_size()
    if not 0 <= rank < size:
        raise ValueError(f"shard_range: rank must be in 0..{size - 1}, got {rank}")
    if n < size:
        raise ValueError(f"shard_range: {n} items cannot be shared by {size} ranks (each needs at least one)")
    base, extra = divmod(n, size)
    start = rank * base + min(rank, extra)
    return range(start, start + base + (rank < extra))


def shard(data: Any, rank: int | None = None, size: int | None = None, dim: int = 0) -> Any:
    """This rank's contiguous part of ``data`` along ``dim`` (see :func:`shard_range` for the split).

    Args:
        data: a NumPy/CuPy array, a Tensor (sliced on the tape), or a sequence (``dim`` must be 0).
        dim: the axis to split (the batch axis).

    Returns:
        The same kind of object holding this rank's items (a view for arrays).
    """
    if isinstance(data, (Tensor, np.ndarray)) or hasattr(data, "__cuda_array_interface__"):
        ndim = len(data.shape)
        if not -ndim <= dim < ndim:
            raise ValueError(f"shard: dim {dim} is out of range for an array of shape {tuple(data.shape)}")
        part = shard_range(data.shape[dim], rank, size)
        index = (slice(None),) * (dim % ndim) + (slice(part.start, part.stop),)
        return data[index]
    if dim != 0:
        raise ValueError(f"shard: a {type(data).__name__} can only be split along dim 0, got dim={dim}")
    part = shard_range(len(data), rank, size)
    return data[part.start : part.stop]


class DistributedSampler:
    """The indices of a dataset that belong to one rank, as ``torch.utils.data.distributed.DistributedSampler``.

    Every epoch, the indices ``0 .. len(dataset)-1`` are shuffled with ``seed + epoch`` (the same order on every
    rank), padded by repeating the first ones (or, with ``drop_last``, cut) to a multiple of ``num_replicas``,
    and rank ``r`` takes every ``num_replicas``-th index starting at ``r``. Iterate it, or pass it as a data
    loader's ``sampler``; call :meth:`set_epoch` before each epoch for a new order.

    Args:
        dataset: anything with ``len()``.
        num_replicas: the number of ranks (default: the world size).
        rank: this rank (default: this process's rank).
        shuffle: shuffle every epoch (else in order).
        seed: the shuffle's seed, the same on every rank.
        drop_last: drop the tail instead of padding, so no sample is seen twice in an epoch.

    Raises:
        ValueError: ``rank`` outside ``0 .. num_replicas-1``.
    """

    def __init__(self, dataset: Any, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False):
        self.num_replicas = get_world_size() if num_replicas is None else int(num_replicas)
        self.rank = get_rank() if rank is None else int(rank)
        if self.num_replicas < 1 or not 0 <= self.rank < self.num_replicas:
            raise ValueError(f"DistributedSampler: rank must be in 0..{self.num_replicas - 1}, got {self.rank}")
        self.dataset, self.shuffle, self.seed, self.drop_last, self.epoch = dataset, shuffle, seed, drop_last, 0
        n = len(dataset)
        if drop_last:
            self.num_samples = n // self.num_replicas
        else:
            self.num_samples = -(-n // self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        order = np.random.default_rng(self.seed + self.epoch).permutation(n) if self.shuffle else np.arange(n)
        order = order.tolist()
        if self.total_size > n:  # pad by repeating from the start (as often as needed for tiny datasets)
            order += (order * (-(-self.total_size // max(n, 1))))[: self.total_size - n]
        order = order[: self.total_size]
        return iter(order[self.rank : self.total_size : self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Use the order of ``epoch`` (with ``shuffle``): call it at the start of every epoch, on every rank."""
        self.epoch = int(epoch)


# ----------------------------------------------------------------------------------------------- rank 0 only


def print0(*args: Any, **kwargs: Any) -> None:
    """``print`` on rank 0 only (flushed, so lines from a long run show up while it runs)."""
    if is_main():
        kwargs.setdefault("flush", True)
        print(*args, **kwargs)


def save_on_main(state: Mapping[str, Any], path: str | os.PathLike[str], comm: Any = None) -> None:
    """Rank 0 writes the state dict with :func:`tinygrad_rnn.serialization.save` (atomically); every rank
    waits until it is written. Call it on every rank with the same state (identical after the allreduce)."""
    from tinygrad_rnn.serialization import save

    comm = _comm(comm)
    if comm.Get_rank() == 0:
        save(state, path)
    comm.Barrier()


def load_on_main(path: str | os.PathLike[str], root: int = 0, comm: Any = None) -> dict[str, np.ndarray]:
    """Rank ``root`` reads the state dict at ``path`` (:func:`tinygrad_rnn.serialization.load`) and every rank
    gets a copy, so the file need only exist on the root's file system.

    Raises:
        The root's error (e.g. FileNotFoundError), raised on every rank alike, so no rank is left waiting.
    """
    from tinygrad_rnn.serialization import load

    return on_main(lambda: dict(load(path)), root=root, comm=comm)


def on_main(fn: Callable[..., T], *args: Any, root: int = 0, comm: Any = None, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` run on rank ``root`` only; its result on every rank (pickled).

    For what one rank should do for all (read a file, check that a path exists, write a checkpoint). An
    exception ``fn`` raises, ``SystemExit`` included, is raised on every rank alike, so a failure on the root
    stops all ranks the same way instead of leaving the others waiting.
    """
    comm = _comm(comm)
    result: Any = None
    error: BaseException | None = None
    if comm.Get_rank() == root:
        try:
            result = fn(*args, **kwargs)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - handed to every rank, raised there
            error = exc
    result, error = comm.bcast((result, error), root=root)
    if error is not None:
        raise error
    return result


def gather(value: Any, dim: int = 0, root: int = 0, comm: Any = None) -> Any:
    """The ranks' arrays concatenated along ``dim`` in rank order, on rank ``root`` (None on the others).

    The inverse of :func:`shard`: ``gather(shard(x, dim=d), dim=d)`` is ``x`` on the root. A Tensor gives a
    Tensor (no history) on its device; arrays travel through host memory (for states, not for gradients).
    """
    comm = _comm(comm)
    array = _array(value)
    parts = comm.gather(to_numpy(array), root=root)
    if parts is None:
        return None
    whole = np.concatenate(parts, axis=dim)
    if get_array_module(array) is not np:
        whole = to_device(whole, f"cuda:{array.device.id}")
    return Tensor(whole) if isinstance(value, Tensor) else whole


# ----------------------------------------------------------------------------------------------- launching


def device_for_rank(device: str) -> str:
    """The device this rank should use: ``"cuda"`` becomes ``"cuda:{local rank % GPUs on the node}"`` (one GPU
    per rank when there are enough); ``"cpu"`` and explicit ``"cuda:N"`` stay as they are."""
    if device.strip().lower() != "cuda":
        return device
    cupy = cuda_module()  # a clear DeviceError without CuPy or a GPU
    return f"cuda:{local_rank() % cupy.cuda.runtime.getDeviceCount()}"


def mpiexec_command(n: int, args: Sequence[str], python: str | None = None) -> list[str]:
    """The command line that runs ``python args...`` on ``n`` ranks: ``[mpiexec, -n, n, ..., python, *args]``.

    ``mpiexec`` is looked up next to the Python executable first (where ``pip install mpich`` puts it in a
    virtualenv), then on ``PATH``. Open MPI refuses to run as root and to start more ranks than cores unless
    told; its flags are added when needed (MPICH needs none). Importing this module does not start MPI, so
    a launcher (a test, a benchmark) can use this without becoming an MPI process itself.

    Raises:
        FileNotFoundError: no ``mpiexec`` found.
    """
    python = python or sys.executable
    beside = os.path.join(os.path.dirname(os.path.abspath(python)), "mpiexec")
    mpiexec = beside if os.access(beside, os.X_OK) else shutil.which("mpiexec")
    if mpiexec is None:
        raise FileNotFoundError(f"no mpiexec next to {python} or on PATH: pip install mpich (the [mpi] extra)")
    command = [mpiexec, "-n", str(n)]
    version = subprocess.run([mpiexec, "--version"], check=False, capture_output=True, text=True, timeout=30)
    if "Open MPI" in version.stdout + version.stderr or "OpenRTE" in version.stdout + version.stderr:
        command.append("--oversubscribe")
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.append("--allow-run-as-root")
    return [*command, python, *args]
