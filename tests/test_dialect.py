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


# ------------------------------------------------------------------ 0-d results and comparisons
def test_op_outputs_are_arrays_never_numpy_scalars():
    a, b = tg.tensor(2.0, requires_grad=True), tg.tensor(3.0)
    for out in (a * b, a + b, tg.zeros(3).sum(), tg.tensor([1.0, 2.0])[0], tg.tensor([[1.0]]).mean(),
                tg.tensor([1.0, 5.0]).max(), (a * b).exp()):
        assert type(out.array) is np.ndarray and out.array.ndim == 0
    (a * b).backward()
    assert type(a.grad.array) is np.ndarray and a.grad.item() == 3.0


def test_zero_d_comparisons_with_numbers():
    assert (tg.zeros(3).sum() > 0).item() is False
    t = tg.tensor([1.0, -2.0])
    assert bool(t[0] > 0) and not bool(t[1] > 0)
    assert t[0].eq(1).item() and bool(tg.zeros(3).sum().eq(0))
    assert t[0] == 1  # __bool__ of a one-element bool tensor
    with pytest.raises(ValueError):
        bool(t == t)


def test_elementwise_comparisons_match_numpy():
    x = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    y = np.array([2.0, 2.0, 2.0])
    tx, ty = tg.tensor(x), tg.tensor(y)
    cases = {"eq": (tx == ty, tx.eq(ty), x == y), "ne": (tx != ty, tx.ne(ty), x != y),
             "lt": (tx < ty, tx.lt(ty), x < y), "le": (tx <= ty, tx.le(ty), x <= y),
             "gt": (tx > ty, tx.gt(ty), x > y), "ge": (tx >= ty, tx.ge(ty), x >= y)}
    for name, (op, method, ref) in cases.items():
        assert op.dtype == np.bool_ and method.dtype == np.bool_, name
        np.testing.assert_array_equal(op.numpy(), ref, err_msg=name)
        np.testing.assert_array_equal(method.numpy(), ref, err_msg=name)
    np.testing.assert_array_equal((tg.tensor([1, 2, 3]) == [1, 0, 3]).numpy(), [True, False, True])
    np.testing.assert_array_equal((2 == tg.tensor([1, 2])).numpy(), [False, True])
    with pytest.raises(tg.OpError):
        tg.tensor([1.0, 2.0]) == tg.tensor([1.0, 2.0, 3.0])


def test_tensors_stay_hashable_by_identity():
    a, b = tg.tensor([1.0]), tg.tensor([1.0])
    d = {a: "a", b: "b"}
    assert d[a] == "a" and d[b] == "b" and len({a, b, a}) == 2
    assert (a == None) is False and (a != None) is True  # noqa: E711 - torch's answer
    assert a in [a] and a not in {b}


def test_equal_allclose_isclose():
    t = tg.tensor([1.0, 2.0, 3.0])
    assert t.equal(tg.tensor([1.0, 2.0, 3.0])) and not t.equal(tg.tensor([1.0, 2.0]))
    assert not t.equal(tg.tensor([1.0, 2.0, 4.0]))
    assert t.allclose(t + 1e-9) and not t.allclose(t + 1e-3)
    np.testing.assert_array_equal(t.isclose(tg.tensor([1.0, 2.1, 3.0])).numpy(), [True, False, True])
