"""Variable-length sequences, as ``torch.nn.utils.rnn``: padding, packing, and :class:`PackedSequence`.

The recurrent layers (``RNN``/``LSTM``/``GRU``) accept a :class:`PackedSequence` and return one. Every function
here is a gather (``getitem`` with integer arrays), ``concat`` or ``stack`` on the tape, so gradients flow back
through packing and padding into the original sequences.

The packed layout is PyTorch's: ``data`` holds step 0 of every sequence (longest first), then step 1 of every
sequence still running, and so on; ``batch_sizes[t]`` is how many sequences run at step t.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Sequence
from typing import Any

import numpy as np

from tinygrad_rnn import ops
from tinygrad_rnn.backend import to_device, to_numpy
from tinygrad_rnn.tensor import OpError, Tensor, full, tensor

__all__ = [
    "PackedSequence",
    "pack_padded_sequence",
    "pack_sequence",
    "pad_packed_sequence",
    "pad_sequence",
    "unpack_sequence",
    "unpad_sequence",
]


def _int_array(name: str, value: Any) -> np.ndarray:
    """A 1-D int64 NumPy array from a list, an array or a Tensor (on any device)."""
    raw = to_numpy(value.array) if isinstance(value, Tensor) else np.asarray(value)
    if raw.ndim != 1 or (raw.size and raw.dtype.kind not in "iu"):
        raise OpError(f"{name}: expected a 1-D sequence of integers, got shape {raw.shape} dtype {raw.dtype}")
    return raw.astype(np.int64)


def _index_tensor(values: np.ndarray) -> Tensor:
    return tensor(np.asarray(values, dtype=np.int64))


class PackedSequence(namedtuple("PackedSequence", ["data", "batch_sizes", "sorted_indices", "unsorted_indices"])):
    """A batch of variable-length sequences packed time step by time step, in PyTorch's layout.

    Attributes:
        data: (Σ lengths, *features) Tensor: step 0 of every sequence (longest first), then step 1 of every
            sequence still running, and so on.
        batch_sizes: (T,) int64 CPU Tensor: how many sequences run at each step (non-increasing).
        sorted_indices: (B,) int64 Tensor or None: ``sorted_indices[k]`` is the original batch index of the
            k-th longest sequence (None: the batch was given sorted, longest first).
        unsorted_indices: (B,) int64 Tensor or None: the inverse permutation (computed when only
            ``sorted_indices`` is given).

    Build one with :func:`pack_padded_sequence` or :func:`pack_sequence`, not by hand.
    """

    __slots__ = ()

    def __new__(cls, data: Tensor, batch_sizes: Any = None, sorted_indices: Any = None,
                unsorted_indices: Any = None) -> PackedSequence:
        if unsorted_indices is None and sorted_indices is not None:
            order = _int_array("PackedSequence", sorted_indices)
            inverse = np.empty_like(order)
            inverse[order] = np.arange(order.size)
            unsorted_indices = _index_tensor(inverse)
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def to(self, *args: Any, **kwargs: Any) -> PackedSequence:
        """The same packing with ``data`` moved/cast by ``Tensor.to`` (the index tensors stay on the CPU)."""
        return type(self)(self.data.to(*args, **kwargs), self.batch_sizes, self.sorted_indices,
                          self.unsorted_indices)

    @property
    def is_cuda(self) -> bool:
        return self.data.device.startswith("cuda")


def _as_tensor(name: str, value: Any) -> Tensor:
    if isinstance(value, Tensor):
        return value
    try:
        return tensor(value)
    except Exception as exc:
        raise OpError(f"{name}: expected Tensors, got {type(value).__name__} ({exc})") from exc


def pad_sequence(sequences: Sequence[Tensor], batch_first: bool = False, padding_value: float = 0.0,
                 padding_side: str = "right") -> Tensor:
    """Stack sequences of shapes (L_i, *) into one (T, B, *) tensor (``(B, T, *)`` with ``batch_first``), T = max L_i.

    Positions past each sequence's end hold ``padding_value`` (before its start with ``padding_side='left'``).
    Differentiable: ``concat`` + ``stack`` on the tape.

    Raises:
        OpError: no sequences, 0-d items, items whose trailing shapes, dtypes or devices differ, or a bad side.
    """
    if padding_side not in ("right", "left"):
        raise OpError(f"pad_sequence: padding_side must be 'right' or 'left', got {padding_side!r}")
    if isinstance(sequences, Tensor):
        sequences = list(sequences.unbind(0)) if sequences.ndim else [sequences]
    tensors = [_as_tensor("pad_sequence", s) for s in sequences]
    if not tensors:
        raise OpError("pad_sequence: expected at least one sequence, got none")
    first = tensors[0]
    for i, t in enumerate(tensors):
        if t.ndim == 0:
            raise OpError(f"pad_sequence: sequence {i} is 0-d; each must have shape (L, *)")
        if t.shape[1:] != first.shape[1:] or t.dtype != first.dtype or t.device != first.device:
            raise OpError(f"pad_sequence: sequence {i} has shape {tuple(t.shape)} {t.dtype} on {t.device}, "
                          f"sequence 0 has {tuple(first.shape)} {first.dtype} on {first.device}; the trailing "
                          "shapes, dtypes and devices must agree")
    longest = max(t.shape[0] for t in tensors)
    padded = []
    for t in tensors:
        missing = longest - t.shape[0]
        if missing:
            pad = full((missing, *t.shape[1:]), padding_value, dtype=t.dtype, device=t.device)
            t = ops.concat([t, pad] if padding_side == "right" else [pad, t], 0)
        padded.append(t)
    return ops.stack(padded, 0 if batch_first else 1)


def pack_padded_sequence(input: Tensor, lengths: Any, batch_first: bool = False,
                         enforce_sorted: bool = True) -> PackedSequence:
    """Pack a padded batch (T, B, *) (``(B, T, *)`` with ``batch_first``) of sequences with the given lengths.

    Args:
        input: the padded batch; what lies past each length is never read.
        lengths: (B,) integers in [1, T] (a list, array or CPU Tensor).
        enforce_sorted: True requires lengths in decreasing order (then ``sorted_indices`` is None); False
            sorts them (longest first, ties in batch order) and records the permutation.

    Returns:
        A :class:`PackedSequence`; its ``data`` is one gather from ``input`` (gradients flow back).

    Raises:
        OpError: lengths of the wrong count, outside [1, T], or unsorted with ``enforce_sorted=True``.
    """
    if not isinstance(input, Tensor):
        input = _as_tensor("pack_padded_sequence", input)
    if input.ndim < 2:
        raise OpError(f"pack_padded_sequence: expected input (T, B, *) or (B, T, *), got shape {tuple(input.shape)}")
    lens = _int_array("pack_padded_sequence: lengths", lengths)
    steps, batch = (input.shape[1], input.shape[0]) if batch_first else (input.shape[0], input.shape[1])
    if lens.size != batch:
        raise OpError(f"pack_padded_sequence: expected {batch} lengths (one per sequence), got {lens.size}")
    if lens.size and (lens.min() < 1 or lens.max() > steps):
        raise OpError(f"pack_padded_sequence: every length must lie in [1, {steps}], got lengths {lens.tolist()}")
    if enforce_sorted:
        if np.any(np.diff(lens) > 0):
            raise OpError(f"pack_padded_sequence: lengths must be sorted in decreasing order when "
                          f"enforce_sorted=True, got {lens.tolist()}; pass enforce_sorted=False to pack them anyway")
        order, sorted_indices = np.arange(batch), None
    else:
        order = np.argsort(-lens, kind="stable")
        sorted_indices = _index_tensor(order)
    sorted_lens = lens[order]
    batch_sizes = np.array([(sorted_lens > t).sum() for t in range(int(sorted_lens[0]))], dtype=np.int64)
    t_index = np.concatenate([np.full(n, t) for t, n in enumerate(batch_sizes)])
    b_index = np.concatenate([order[:n] for n in batch_sizes])
    rows = (b_index, t_index) if batch_first else (t_index, b_index)
    data = input[tuple(to_device(i, input.device) for i in rows)]
    return PackedSequence(data, _index_tensor(batch_sizes), sorted_indices)


def pad_packed_sequence(sequence: PackedSequence, batch_first: bool = False, padding_value: float = 0.0,
                        total_length: int | None = None) -> tuple[Tensor, Tensor]:
    """The inverse of :func:`pack_padded_sequence`: ``(padded, lengths)`` in the original batch order.

    ``padded`` is (T, B, *) (``(B, T, *)`` with ``batch_first``), T = the longest length or ``total_length``;
    ``lengths`` is an int64 Tensor (B,). One gather from ``data`` plus one padding row (differentiable).

    Raises:
        OpError: not a PackedSequence, or ``total_length`` shorter than the longest sequence.
    """
    if not isinstance(sequence, PackedSequence):
        raise OpError(f"pad_packed_sequence: expected a PackedSequence, got {type(sequence).__name__}")
    data = sequence.data
    batch_sizes = _int_array("pad_packed_sequence: batch_sizes", sequence.batch_sizes)
    steps, batch = len(batch_sizes), int(batch_sizes[0])
    if total_length is not None:
        if total_length < steps:
            raise OpError(f"pad_packed_sequence: total_length={total_length} is shorter than the longest "
                          f"sequence ({steps} steps)")
        steps = int(total_length)
    n = data.shape[0]
    rows = np.full((steps, batch), n, dtype=np.int64)  # row n: the padding row appended below
    offset = 0
    for t, size in enumerate(batch_sizes):
        rows[t, :size] = np.arange(offset, offset + size)
        offset += size
    lengths = (rows < n).sum(axis=0)
    if sequence.unsorted_indices is not None:
        unsorted = _int_array("pad_packed_sequence: unsorted_indices", sequence.unsorted_indices)
        rows, lengths = rows[:, unsorted], lengths[unsorted]
    pad = full((1, *data.shape[1:]), padding_value, dtype=data.dtype, device=data.device)
    padded = ops.concat([data, pad], 0)[to_device(rows.T if batch_first else rows, data.device)]
    return padded, _index_tensor(lengths)


def pack_sequence(sequences: Sequence[Tensor], enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of sequences (L_i, *) directly: ``pack_padded_sequence(pad_sequence(seqs), lengths)``."""
    tensors = [_as_tensor("pack_sequence", s) for s in sequences]
    lengths = [t.shape[0] if t.ndim else 0 for t in tensors]
    return pack_padded_sequence(pad_sequence(tensors), lengths, enforce_sorted=enforce_sorted)


def unpad_sequence(padded_sequences: Tensor, lengths: Any, batch_first: bool = False) -> list[Tensor]:
    """The list of sequences (L_i, *) in a padded batch: the inverse of :func:`pad_sequence`."""
    lens = _int_array("unpad_sequence: lengths", lengths)
    x = padded_sequences if batch_first else padded_sequences.transpose(0, 1)
    if lens.size != x.shape[0] or (lens.size and (lens.min() < 0 or lens.max() > x.shape[1])):
        raise OpError(f"unpad_sequence: lengths {lens.tolist()} do not fit a batch of shape {tuple(x.shape)}")
    return [x[i, : int(n)] for i, n in enumerate(lens)]


def unpack_sequence(packed_sequences: PackedSequence) -> list[Tensor]:
    """The list of sequences in a :class:`PackedSequence`, in the original order: the inverse of
    :func:`pack_sequence`."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
