"""Datasets and batching, as ``torch.utils.data``: ``Dataset``, ``TensorDataset``, ``Subset``, ``ConcatDataset``,
``random_split``, samplers and ``DataLoader`` with PyTorch's ``default_collate``.

Randomness (``shuffle=True``, ``RandomSampler``, ``random_split``) comes from the project's generator
(:func:`tinygrad_rnn.manual_seed`) unless ``generator`` is given (a ``numpy.random.Generator`` or an int seed), so
a seeded run
draws the same batches every time. Batches are built in the calling process: ``num_workers`` must be 0 (worker
processes are not supported; the loader raises ``ValueError`` otherwise).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Generic, TypeVar

import numpy as np

from tinygrad_rnn import ops
from tinygrad_rnn.tensor import OpError, Tensor, default_rng, tensor

__all__ = [
    "BatchSampler",
    "ConcatDataset",
    "DataLoader",
    "Dataset",
    "IterableDataset",
    "RandomSampler",
    "Sampler",
    "SequentialSampler",
    "Subset",
    "SubsetRandomSampler",
    "TensorDataset",
    "default_collate",
    "default_convert",
    "random_split",
]

T_co = TypeVar("T_co", covariant=True)


def _generator(generator: Any) -> Any:
    """The generator to draw from: the project's (None), a ``numpy.random.Generator`` (or anything with its
    ``permutation``/``integers`` methods), or a fresh ``numpy.random.default_rng(seed)`` for an int seed."""
    if generator is None:
        return default_rng("cpu")
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        return np.random.default_rng(int(generator))
    if not (hasattr(generator, "permutation") and hasattr(generator, "integers")):
        raise TypeError(f"generator must be a numpy.random.Generator, an int seed or None, "
                        f"got {type(generator).__name__}")
    return generator


def _len(dataset: Any) -> int:
    """``len(dataset)`` (a map-style dataset defines ``__len__``; :class:`Dataset` itself does not, as PyTorch's)."""
    return len(dataset)


class Dataset(Generic[T_co]):
    """A map-style dataset: subclasses implement ``__getitem__(index)`` and ``__len__``. ``a + b`` concatenates."""

    def __getitem__(self, index: int) -> T_co:
        raise NotImplementedError(f"{type(self).__name__} does not implement __getitem__")

    def __add__(self, other: Dataset[T_co]) -> ConcatDataset[T_co]:
        return ConcatDataset([self, other])


class IterableDataset(Dataset[T_co]):
    """A dataset that is a stream: subclasses implement ``__iter__`` (the loader batches what it yields)."""

    def __iter__(self) -> Iterator[T_co]:
        raise NotImplementedError(f"{type(self).__name__} does not implement __iter__")


class TensorDataset(Dataset[tuple]):
    """Samples are ``tuple(t[i] for t in tensors)``: rows of tensors (or arrays) that share their first dimension.

    Raises:
        OpError: no tensors, or first dimensions that differ.
    """

    def __init__(self, *tensors: Any):
        if not tensors:
            raise OpError("TensorDataset: expected at least one tensor")
        sizes = [len(t) for t in tensors]
        if any(s != sizes[0] for s in sizes):
            raise OpError(f"TensorDataset: every tensor must have the same first dimension, got {sizes}")
        self.tensors = tensors

    def __getitem__(self, index: int) -> tuple:
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return len(self.tensors[0])


class Subset(Dataset[T_co]):
    """The samples of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset: Dataset[T_co], indices: Sequence[int]):
        self.dataset, self.indices = dataset, list(indices)

    def __getitem__(self, idx: Any) -> Any:
        if isinstance(idx, list):
            return [self.dataset[self.indices[i]] for i in idx]
        return self.dataset[self.indices[idx]]

    def __len__(self) -> int:
        return len(self.indices)


class ConcatDataset(Dataset[T_co]):
    """The samples of several datasets, one after another."""

    def __init__(self, datasets: Iterable[Dataset[T_co]]):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: expected at least one dataset")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise TypeError("ConcatDataset does not support IterableDataset")
        self.cumulative_sizes = list(np.cumsum([_len(d) for d in self.datasets]))

    def __len__(self) -> int:
        return int(self.cumulative_sizes[-1])

    def __getitem__(self, idx: int) -> T_co:
        n = len(self)
        if not -n <= idx < n:
            raise IndexError(f"ConcatDataset: index {idx} is out of range for length {n}")
        idx %= n
        which = int(np.searchsorted(self.cumulative_sizes, idx, side="right"))
        start = 0 if which == 0 else int(self.cumulative_sizes[which - 1])
        return self.datasets[which][idx - start]


def random_split(dataset: Dataset[T_co], lengths: Sequence[int | float], generator: Any = None) -> list[Subset[T_co]]:
    """Split ``dataset`` into non-overlapping random subsets of the given lengths (as
    ``torch.utils.data.random_split``).

    ``lengths`` are counts summing to ``len(dataset)``, or fractions summing to 1: each gets ``floor(f·n)``
    and the remainder is dealt one by one to the subsets in order (PyTorch's rule).

    Raises:
        ValueError: counts that do not sum to the dataset's length, or fractions that do not sum to 1.
    """
    n = _len(dataset)
    lengths = list(lengths)
    if lengths and all(isinstance(x, float) for x in lengths) and math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        counts = [math.floor(n * f) for f in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        lengths = counts
    if any(isinstance(x, float) for x in lengths) or any(x < 0 for x in lengths) or sum(lengths) != n:
        raise ValueError(f"random_split: the lengths must be non-negative counts summing to the dataset's length "
                         f"({n}) or fractions summing to 1, got {lengths}")
    order = _generator(generator).permutation(n).tolist()
    out, offset = [], 0
    for count in map(int, lengths):
        out.append(Subset(dataset, order[offset:offset + count]))
        offset += count
    return out


class Sampler(Generic[T_co]):
    """Yields the indices (or lists of indices) a loader fetches; subclasses implement ``__iter__``/``__len__``."""

    def __iter__(self) -> Iterator[T_co]:
        raise NotImplementedError


class SequentialSampler(Sampler[int]):
    """0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source: Any):
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler[int]):
    """A new random permutation every pass (or ``num_samples`` draws with ``replacement=True``)."""

    def __init__(self, data_source: Any, replacement: bool = False, num_samples: int | None = None,
                 generator: Any = None):
        self.data_source, self.replacement, self._num_samples = data_source, replacement, num_samples
        self.generator = generator
        if not isinstance(replacement, bool):
            raise TypeError(f"RandomSampler: replacement must be a bool, got {replacement!r}")
        if num_samples is not None and (not isinstance(num_samples, int) or num_samples <= 0):
            raise ValueError(f"RandomSampler: num_samples must be a positive integer, got {num_samples!r}")

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self) -> Iterator[int]:
        rng, n = _generator(self.generator), len(self.data_source)
        if self.replacement:
            return iter(rng.integers(0, n, size=self.num_samples).tolist())
        order: list[int] = []
        while len(order) < self.num_samples:
            order.extend(rng.permutation(n).tolist())
        return iter(order[: self.num_samples])

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler[int]):
    """The given indices in a new random order every pass."""

    def __init__(self, indices: Sequence[int], generator: Any = None):
        self.indices, self.generator = list(indices), generator

    def __iter__(self) -> Iterator[int]:
        return iter([self.indices[i] for i in _generator(self.generator).permutation(len(self.indices))])

    def __len__(self) -> int:
        return len(self.indices)


class BatchSampler(Sampler[list]):
    """Groups the indices of ``sampler`` into lists of ``batch_size`` (the last one shorter unless ``drop_last``)."""

    def __init__(self, sampler: Iterable[int], batch_size: int, drop_last: bool):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"BatchSampler: batch_size must be a positive integer, got {batch_size!r}")
        if not isinstance(drop_last, bool):
            raise ValueError(f"BatchSampler: drop_last must be a bool, got {drop_last!r}")
        self.sampler, self.batch_size, self.drop_last = sampler, batch_size, drop_last

    def __iter__(self) -> Iterator[list[int]]:
        batch: list[int] = []
        for idx in self.sampler:
            batch.append(idx)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        n = len(self.sampler)  # type: ignore[arg-type]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


def default_convert(data: Any) -> Any:
    """What ``DataLoader(batch_size=None)`` does to each sample: NumPy arrays become Tensors, containers are
    walked, everything else is left as it is (PyTorch's ``default_convert``)."""
    if isinstance(data, np.ndarray) and data.dtype.kind in "biufc":
        return tensor(data)
    if isinstance(data, Mapping):
        return type(data)({k: default_convert(v) for k, v in data.items()})  # type: ignore[call-arg]
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, (list, tuple)):
        return type(data)(default_convert(d) for d in data)
    return data


def default_collate(batch: Sequence[Any]) -> Any:
    """Merge a list of samples into a batch, as PyTorch's ``default_collate``.

    Tensors are stacked along a new first dimension (on the tape); NumPy arrays and NumPy scalars become one
    stacked Tensor; Python floats a float64 Tensor, ints an int64 Tensor, bools a bool Tensor; strings and
    bytes stay a list; dicts are collated key by key, named tuples field by field, and other sequences
    (tuples included, which become lists as in PyTorch) position by position.

    Raises:
        OpError: tensors of different shapes. RuntimeError: sequences of different lengths. TypeError: a
            sample of another type.
    """
    if not batch:
        raise ValueError("default_collate: the batch is empty")
    elem = batch[0]
    if isinstance(elem, Tensor):
        return ops.stack(list(batch), 0)
    if isinstance(elem, (np.ndarray, np.generic)) and not isinstance(elem, (np.str_, np.bytes_)):
        if elem.dtype.kind not in "biufc":
            raise TypeError(f"default_collate: NumPy arrays of dtype {elem.dtype} cannot be batched")
        return default_collate([tensor(np.asarray(b)) for b in batch])
    if isinstance(elem, bool):
        return tensor(list(batch), dtype=np.bool_)
    if isinstance(elem, float):
        return tensor(list(batch), dtype=np.float64)
    if isinstance(elem, int):
        return tensor(list(batch), dtype=np.int64)
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, Mapping):
        try:
            return type(elem)({k: default_collate([d[k] for d in batch]) for k in elem})  # type: ignore[call-arg]
        except TypeError:
            return {k: default_collate([d[k] for d in batch]) for k in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):
        return type(elem)(*(default_collate(list(s)) for s in zip(*batch, strict=False)))
    if isinstance(elem, Sequence):
        size = len(elem)
        if any(len(b) != size for b in batch):
            raise RuntimeError("default_collate: each element in list of batch should be of equal size")
        transposed = [default_collate(list(s)) for s in zip(*batch, strict=False)]
        if isinstance(elem, tuple):
            return transposed
        try:
            elem_type: Any = type(elem)
            return elem_type(transposed)
        except TypeError:
            return transposed
    raise TypeError(f"default_collate: batch must contain Tensors, NumPy arrays, numbers, dicts or lists; "
                    f"found {type(elem).__name__}")


class DataLoader(Generic[T_co]):
    """Iterate over a dataset in batches, as ``torch.utils.data.DataLoader`` (in this process).

    Args:
        dataset: a map-style :class:`Dataset` (anything with ``__getitem__`` and ``__len__``) or an
            :class:`IterableDataset`.
        batch_size: samples per batch (None: yield samples one by one, converted by :func:`default_convert`).
        shuffle: a new random order every epoch (the project's generator, or ``generator``).
        sampler / batch_sampler: custom index orders (exclusive with ``shuffle``; ``batch_sampler`` also with
            ``batch_size``, ``drop_last`` and ``sampler``).
        num_workers: must be 0 (no worker processes).
        collate_fn: merges a list of samples (default :func:`default_collate`).
        drop_last: drop the last incomplete batch.
        generator: a ``numpy.random.Generator`` for shuffling.
        pin_memory, timeout, worker_init_fn, prefetch_factor, persistent_workers, ...: accepted for
            compatibility and ignored.

    Raises:
        ValueError: contradictory or invalid options (as PyTorch), or ``num_workers`` > 0.
    """

    def __init__(self, dataset: Any, batch_size: int | None = 1, shuffle: bool | None = None, sampler: Any = None,
                 batch_sampler: Any = None, num_workers: int = 0, collate_fn: Callable[[list], Any] | None = None,
                 pin_memory: bool = False, drop_last: bool = False, timeout: float = 0,
                 worker_init_fn: Callable | None = None, multiprocessing_context: Any = None, generator: Any = None,
                 *, prefetch_factor: int | None = None, persistent_workers: bool = False, pin_memory_device: str = ""):
        if not isinstance(num_workers, int) or num_workers != 0:
            raise ValueError(f"DataLoader: num_workers must be 0 (batches are built in this process; worker "
                             f"processes are not supported), got {num_workers!r}")
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                       or batch_size <= 0):
            raise ValueError(f"DataLoader: batch_size must be a positive integer or None, got {batch_size!r}")
        self.dataset, self.num_workers, self.generator = dataset, 0, generator
        self.pin_memory, self.timeout = pin_memory, timeout
        iterable = isinstance(dataset, IterableDataset)
        if iterable and (shuffle or sampler is not None or batch_sampler is not None):
            raise ValueError("DataLoader with IterableDataset: shuffle, sampler and batch_sampler must not be given")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("DataLoader: batch_sampler option is mutually exclusive with batch_size, shuffle, "
                                 "sampler, and drop_last")
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError("DataLoader: batch_size=None option disables auto-batching and is mutually exclusive "
                             "with drop_last")
        if sampler is None and not iterable:
            sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None and not iterable:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.batch_size, self.drop_last = batch_size, drop_last
        self.sampler, self.batch_sampler = sampler, batch_sampler
        self._iterable = iterable
        self.collate_fn = collate_fn if collate_fn is not None else (
            default_collate if (batch_size is not None or batch_sampler is not None) else default_convert)

    def __iter__(self) -> Iterator[Any]:
        if self._iterable:
            yield from self._iter_stream()
        elif self.batch_sampler is not None:
            for indices in self.batch_sampler:
                yield self.collate_fn([self.dataset[i] for i in indices])
        else:
            for i in self.sampler:
                yield self.collate_fn(self.dataset[i])

    def _iter_stream(self) -> Iterator[Any]:
        if self.batch_size is None:
            for sample in self.dataset:
                yield self.collate_fn(sample)
            return
        batch: list[Any] = []
        for sample in self.dataset:
            batch.append(sample)
            if len(batch) == self.batch_size:
                yield self.collate_fn(batch)
                batch = []
        if batch and not self.drop_last:
            yield self.collate_fn(batch)

    def __len__(self) -> int:
        if self._iterable:
            n = len(self.dataset)
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        return len(self.batch_sampler if self.batch_sampler is not None else self.sampler)


class WeightedRandomSampler(Sampler[int]):
    """``num_samples`` indices in ``[0, len(weights))``, index ``i`` drawn with probability ``weights[i] / Σ weights``
    (``torch.utils.data.WeightedRandomSampler``): with replacement by default; without it, each index at most once.
    The numbers drawn differ from PyTorch's (NumPy's generator), the law is the same.

    Raises:
        ValueError: ``num_samples`` not a positive int, ``replacement`` not a bool, weights not a 1-D sequence of
            finite non-negative numbers with a positive sum, or more samples without replacement than non-zero weights.
    """

    def __init__(self, weights: Sequence[float], num_samples: int, replacement: bool = True, generator: Any = None):
        if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) or num_samples <= 0:
            raise ValueError("WeightedRandomSampler: num_samples should be a positive integer value, "
                             f"got {num_samples!r}")
        if not isinstance(replacement, bool):
            raise ValueError(f"WeightedRandomSampler: replacement should be a boolean value, got {replacement!r}")
        w = np.asarray(weights.numpy() if isinstance(weights, Tensor) else weights, dtype=np.float64)
        if w.ndim != 1 or w.size == 0:
            raise ValueError(f"WeightedRandomSampler: weights should be a non-empty 1-D sequence, got shape {w.shape}")
        if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
            raise ValueError("WeightedRandomSampler: weights must be finite, non-negative and not all zero")
        if not replacement and num_samples > int((w > 0).sum()):
            raise ValueError(f"WeightedRandomSampler: cannot draw {num_samples} samples without replacement from "
                             f"{int((w > 0).sum())} non-zero weights")
        self.weights = tensor(w)
        self.num_samples, self.replacement, self.generator = int(num_samples), replacement, generator

    def __iter__(self) -> Iterator[int]:
        w = self.weights.numpy()
        rng = _generator(self.generator)
        return iter(rng.choice(len(w), size=self.num_samples, replace=self.replacement, p=w / w.sum()).tolist())

    def __len__(self) -> int:
        return self.num_samples


__all__ += ["WeightedRandomSampler"]
