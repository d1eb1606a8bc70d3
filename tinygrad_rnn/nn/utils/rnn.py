"""Packed sequences, as ``torch.nn.utils.rnn``: the recurrent layers accept and return a :class:`PackedSequence`."""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["PackedSequence"]


class PackedSequence(NamedTuple):
    """A batch of variable-length sequences packed time step by time step, in PyTorch's layout.

    Attributes:
        data: (Σ lengths, *features) Tensor: step 0 of every sequence (longest first), then step 1 of
            every sequence still running, and so on.
        batch_sizes: (T,) int64 array: how many sequences run at each step (non-increasing).
        sorted_indices: (B,) int64 array or None: ``sorted_indices[k]`` is the original batch index of the
            k-th longest sequence (None: the batch was already sorted).
        unsorted_indices: (B,) int64 array or None: the inverse permutation.
    """

    data: Any
    batch_sizes: Any
    sorted_indices: Any = None
    unsorted_indices: Any = None
