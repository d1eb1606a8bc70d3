"""PyTorch's Tensor dialect (issue 11): ``.data``, ``size()``, comparisons, ``dim=``/``keepdim=``, dtypes,
creation functions and the ``torch.*`` spellings; checked against PyTorch when it is installed, else NumPy."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_rnn as tg


# ------------------------------------------------------------------ .data, .array, size()
def test_data_is_an_untracked_tensor_sharing_memory():
    w = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    d = w.data
    assert isinstance(d, tg.Tensor)
    assert not d.requires_grad and d._ctx is None
    d.array[0] = 10.0  # writes through: same memory
    assert w.array[0] == 10.0
    assert d.array is w.array


def test_data_assignment_replaces_the_storage():
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    new = tg.tensor([5.0, 6.0])
    w.data = new
    assert w.array is new.array and w.requires_grad
    np.testing.assert_array_equal(w.numpy(), [5.0, 6.0])
    with pytest.raises(TypeError):
        w.data = [1.0, 2.0]


def test_size_numel_dim():
    t = tg.zeros(2, 3, 4)
    s = t.size()
    assert isinstance(s, tuple) and isinstance(s, tg.Size) and s == (2, 3, 4)
    assert s.numel() == 24
    assert t.size(0) == 2 and t.size(-1) == 4 and t.size(1) == 3
    with pytest.raises(IndexError):
        t.size(3)
    with pytest.raises(IndexError):
        t.size(-4)
    assert t.numel() == 24 and t.nelement() == 24 and t.dim() == 3
    assert tg.tensor(1.0).size() == () and tg.tensor(1.0).numel() == 1
