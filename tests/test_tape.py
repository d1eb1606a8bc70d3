"""Tape semantics: accumulation, sharing across time, retain_graph, released graphs, no_grad, detach,
retain_grad, and depth (no recursion). Every expected value is computed another way (closed form or a
hand-written NumPy BPTT), in float64.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import nn
from tinygrad_rnn.tensor import Tensor


def t64(values, device, requires_grad=True):
    return Tensor(np.asarray(values, dtype=np.float64), requires_grad=requires_grad, device=device)


def grad_of(t: Tensor) -> np.ndarray:
    assert t.grad is not None
    return t.grad.numpy()


# --------------------------------------------------------------------------------------------------
# A tensor used several times accumulates
# --------------------------------------------------------------------------------------------------


def test_tensor_used_twice_in_one_op(device):
    a = t64([1.0, -2.0, 3.0], device)
    (a * a).sum().backward()
    np.testing.assert_array_equal(grad_of(a), [2.0, -4.0, 6.0])  # d(a²)/da = 2a
    a.zero_grad()
    (a + a).sum().backward()
    np.testing.assert_array_equal(grad_of(a), [2.0, 2.0, 2.0])
    a.zero_grad()
    (a * a * a).sum().backward()
    np.testing.assert_allclose(grad_of(a), 3 * np.array([1.0, 4.0, 9.0]), rtol=1e-15)


def test_diamond(device):
    a = t64([0.5, -1.5], device)
    b = a * 2
    c = a * 3
    d = b * c  # = 6a², through two paths that meet again
    d.sum().backward()
    np.testing.assert_allclose(grad_of(a), 12 * np.array([0.5, -1.5]), rtol=1e-15)


def test_same_leaf_through_many_paths_of_different_length(device):
    a = t64(2.0, device)
    x = a
    total = a
    for _ in range(5):
        x = x * a  # a², a³, ..., a⁶
        total = total + x  # a + a² + ... + a⁶
    total.backward()
    expected = sum(k * 2.0 ** (k - 1) for k in range(1, 7))
    assert grad_of(a) == pytest.approx(expected, rel=1e-15)


def _tanh_rnn_bptt(w: np.ndarray, xs: np.ndarray, vs: np.ndarray,
                   h0: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Hand-derived BPTT of L = Σ_t v_t·h_t with h_t = tanh(W h_{t-1} + x_t): returns dL/dW and dL/dx_t."""
    hs = [np.zeros(w.shape[0]) if h0 is None else h0]
    for x in xs:
        hs.append(np.tanh(w @ hs[-1] + x))
    dw, dxs = np.zeros_like(w), np.zeros_like(xs)
    dh = np.zeros(w.shape[0])
    for t in range(len(xs), 0, -1):
        dh = dh + vs[t - 1]
        da = dh * (1 - hs[t] ** 2)
        dw += np.outer(da, hs[t - 1])
        dxs[t - 1] = da
        dh = w.T @ da
    return dw, dxs


def test_weight_shared_across_500_steps(device):
    rng = np.random.default_rng(0)
    steps, n = 500, 3
    w_value = rng.standard_normal((n, n)) * 0.5
    xs, vs = rng.standard_normal((steps, n)), rng.standard_normal((steps, n))
    w = t64(w_value, device)
    copies = [t64(w_value, device) for _ in range(steps)]  # the same weight as 500 separate leaves

    def run(weight_at):
        h = tg.zeros(n, dtype=np.float64, device=device)
        loss = None
        for t in range(steps):
            h = (weight_at(t) @ h + t64(xs[t], device, False)).tanh()
            term = (h * t64(vs[t], device, False)).sum()
            loss = term if loss is None else loss + term
        loss.backward()

    run(lambda t: w)
    run(lambda t: copies[t])
    per_step_sum = sum(grad_of(c) for c in copies)
    np.testing.assert_allclose(grad_of(w), per_step_sum, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(grad_of(w), _tanh_rnn_bptt(w_value, xs, vs)[0], rtol=1e-12, atol=1e-14)


# --------------------------------------------------------------------------------------------------
# backward() itself
# --------------------------------------------------------------------------------------------------


def test_retain_graph_then_second_backward_accumulates_exactly_twice(device):
    a = t64([0.3, -0.7, 1.1], device)
    b = a + 0.0  # a is used once, so each backward adds one array g into a.grad: g + g == 2g exactly
    loss = ((b * b).tanh() * b.exp()).sum()
    loss.backward(retain_graph=True)
    first = grad_of(a).copy()
    loss.backward(retain_graph=True)
    np.testing.assert_array_equal(grad_of(a), 2 * first)
    loss.backward()  # a third time, releasing the graph
    np.testing.assert_allclose(grad_of(a), 3 * first, rtol=1e-15)
    with pytest.raises(RuntimeError, match="released"):
        loss.backward()


def test_separate_backward_calls_accumulate_until_zero_grad(device):
    a = t64([1.0, 2.0], device)
    (a * 3).sum().backward()
    (a * a).sum().backward()
    np.testing.assert_array_equal(grad_of(a), [3 + 2.0, 3 + 4.0])
    a.zero_grad()
    assert a.grad is None


def test_backward_through_a_released_graph_raises(device):
    a = t64([1.0, 2.0], device)
    loss = (a * a).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="released.*retain_graph=True"):
        loss.backward()


def test_backward_through_a_shared_intermediate_after_release_raises(device):
    a = t64([1.0, 2.0], device)
    y = a.exp()
    (y * 2).sum().backward()  # releases exp's saved output
    with pytest.raises(RuntimeError, match="released"):
        (y * 3).sum().backward()


def test_backward_on_non_scalar_without_grad_raises(device):
    a = t64([[1.0, 2.0]], device)
    y = a * 2
    with pytest.raises(RuntimeError, match=r"non-scalar.*\(1, 2\)"):
        y.backward()
    y.backward(np.array([[1.0, 1.0]]))  # with an explicit gradient it works
    np.testing.assert_array_equal(grad_of(a), [[2.0, 2.0]])


def test_backward_with_wrong_grad_shape_raises(device):
    y = t64([1.0, 2.0], device) * 2
    with pytest.raises(RuntimeError, match=r"\(3,\).*\(2,\)"):
        y.backward(np.ones(3))


def test_backward_on_a_tensor_without_history_raises(device):
    with pytest.raises(RuntimeError, match="does not require grad"):
        t64([1.0], device, requires_grad=False).sum().backward()


# --------------------------------------------------------------------------------------------------
# Modes and graph cutting
# --------------------------------------------------------------------------------------------------


def test_no_grad_records_nothing(device):
    a = t64([1.0, 2.0], device)
    with tg.no_grad():
        assert not tg.is_grad_enabled()
        y = (a * a).exp().sum()
        with tg.enable_grad():
            z = (a * 2).sum()
    assert tg.is_grad_enabled()
    assert not y.requires_grad and y._ctx is None
    assert z.requires_grad and z._ctx is not None
    with pytest.raises(RuntimeError):
        y.backward()


def test_no_grad_is_restored_after_an_exception(device):
    with pytest.raises(ZeroDivisionError), tg.no_grad():
        raise ZeroDivisionError
    assert tg.is_grad_enabled()


def test_detach_stops_gradients(device):
    a = t64([1.0, 2.0], device)
    b = a * 3
    c = b.detach() * a  # only the direct path to a remains
    assert not b.detach().requires_grad
    c.sum().backward()
    np.testing.assert_array_equal(grad_of(a), [3.0, 6.0])  # = b, not b + 3a


def test_truncated_bptt_with_detach(device):
    """Detaching the state every k steps: each window's backward reaches its own window only."""
    rng = np.random.default_rng(1)
    n, steps, k = 3, 12, 4
    w_value = rng.standard_normal((n, n)) * 0.5
    xs, vs = rng.standard_normal((steps, n)), rng.standard_normal((steps, n))
    w = t64(w_value, device)
    inputs = [t64(x, device) for x in xs]
    h = tg.zeros(n, dtype=np.float64, device=device)
    earlier: dict[int, np.ndarray] = {}
    for start in range(0, steps, k):
        h = h.detach()
        assert not h.requires_grad
        h_start = h.numpy().copy()
        w.zero_grad()
        loss = None
        for t in range(start, start + k):
            h = (w @ h + inputs[t]).tanh()
            term = (h * t64(vs[t], device, False)).sum()
            loss = term if loss is None else loss + term
        loss.backward()
        dw, dxs = _tanh_rnn_bptt(w_value, xs[start:start + k], vs[start:start + k], h_start)
        np.testing.assert_allclose(grad_of(w), dw, rtol=1e-12, atol=1e-14)
        # without the detach, this window's backward would also have added into the earlier inputs' grads
        for t in range(start + k):
            np.testing.assert_allclose(grad_of(inputs[t]), dxs[t - start] if t >= start else earlier[t],
                                       rtol=1e-12, atol=1e-14)
        earlier = {t: grad_of(inputs[t]).copy() for t in range(start + k)}


def test_retain_grad_on_an_intermediate(device):
    a = t64([1.0, -2.0], device)
    y = a * 3
    y.retain_grad()
    z = y * 2
    (y * y + z).sum().backward()
    np.testing.assert_array_equal(grad_of(y), 2 * np.array([3.0, -6.0]) + 2)
    assert z.grad is None  # not retained
    np.testing.assert_array_equal(grad_of(a), 3 * grad_of(y))


def test_retain_grad_on_the_root(device):
    a = t64([1.0, -2.0], device)
    y = (a * a).sum()
    y.retain_grad()
    y.backward()
    assert grad_of(y) == 1.0


# --------------------------------------------------------------------------------------------------
# Depth: no recursion anywhere
# --------------------------------------------------------------------------------------------------


def test_10000_deep_chain(device):
    assert sys.getrecursionlimit() < 10_000 * 2
    a = t64(0.5, device)
    y = a
    c = 1.0001
    for _ in range(10_000):
        y = y * c
    y.backward()
    assert grad_of(a) == pytest.approx(c**10_000, rel=1e-11)
    assert y.item() == pytest.approx(0.5 * c**10_000, rel=1e-11)


def test_10000_deep_chain_of_mixed_ops(device):
    a = t64(0.3, device)
    y = a
    for _ in range(5_000):
        y = (y + 0.1).tanh()  # 10,000 nodes
    y.backward()
    # the same derivative by the chain rule in NumPy
    x, d = 0.3, 1.0
    for _ in range(5_000):
        x = np.tanh(x + 0.1)
        d *= 1 - x * x
    assert y.item() == pytest.approx(x, rel=1e-13)
    assert grad_of(a) == pytest.approx(d, rel=1e-10, abs=1e-300)


def _rnn_cell_reference(cell: nn.RNNCell, xs: np.ndarray, vs: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    w_ih, w_hh = cell.weight_ih.numpy(), cell.weight_hh.numpy()
    b = cell.bias_ih.numpy() + cell.bias_hh.numpy()
    hs = [np.zeros(w_hh.shape[0])]
    for x in xs:
        hs.append(np.tanh(w_ih @ x + w_hh @ hs[-1] + b))
    grads = {"w_ih": np.zeros_like(w_ih), "w_hh": np.zeros_like(w_hh), "b": np.zeros_like(b)}
    dh = np.zeros_like(b)
    for t in range(len(xs), 0, -1):
        dh = dh + vs[t - 1]
        da = dh * (1 - hs[t] ** 2)
        grads["w_ih"] += np.outer(da, xs[t - 1])
        grads["w_hh"] += np.outer(da, hs[t - 1])
        grads["b"] += da
        dh = w_hh.T @ da
    return np.array(hs[1:]), grads


def test_5000_step_rnn_cell_loop(device):
    tg.manual_seed(0)
    steps = 5_000
    cell = nn.RNNCell(2, 3, dtype=np.float64, device=device)
    rng = np.random.default_rng(2)
    xs, vs = rng.standard_normal((steps, 2)), rng.standard_normal((steps, 3))
    x_all = t64(xs, device, requires_grad=False)
    v_all = t64(vs, device, requires_grad=False)
    h = None
    loss = None
    for t, x in enumerate(x_all.unbind(0)):
        h = cell(x, h)
        term = (h * v_all[t]).sum()
        loss = term if loss is None else loss + term
    loss.backward()
    _, expected = _rnn_cell_reference(cell, xs, vs)
    np.testing.assert_allclose(grad_of(cell.weight_hh), expected["w_hh"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grad_of(cell.weight_ih), expected["w_ih"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grad_of(cell.bias_hh), expected["b"], rtol=1e-10, atol=1e-12)


def test_5000_step_rnn_layer(device):
    tg.manual_seed(0)
    steps = 5_000
    rnn = nn.RNN(2, 3, dtype=np.float64, device=device)
    rng = np.random.default_rng(3)
    xs, vs = rng.standard_normal((steps, 2)), rng.standard_normal((steps, 3))
    out, _ = rnn(t64(xs[:, None, :], device, requires_grad=False))
    (out * t64(vs[:, None, :], device, False)).sum().backward()
    cell = nn.RNNCell(2, 3, dtype=np.float64)
    cell.load_state_dict({"weight_ih": rnn.weight_ih_l0.numpy(), "weight_hh": rnn.weight_hh_l0.numpy(),
                          "bias_ih": rnn.bias_ih_l0.numpy(), "bias_hh": rnn.bias_hh_l0.numpy()})
    hs, expected = _rnn_cell_reference(cell, xs, vs)
    np.testing.assert_allclose(out.numpy()[:, 0], hs, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(grad_of(rnn.weight_hh_l0), expected["w_hh"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grad_of(rnn.weight_ih_l0), expected["w_ih"], rtol=1e-10, atol=1e-12)


def test_tensor_copies_its_source_array_so_later_writes_do_not_reach_the_tape():
    buffer = np.array([1.0, 2.0], dtype=np.float32)
    w = Tensor([3.0, 3.0], requires_grad=True)
    loss = (w * Tensor(buffer)).sum()
    buffer[:] = 100.0
    loss.backward()
    np.testing.assert_array_equal(w.grad.numpy(), [1.0, 2.0])


def test_iterating_a_tensor_yields_rows_on_one_node_and_numpy_conversions_work():
    x = Tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    rows = list(x)
    assert [r.shape for r in rows] == [(2,)] * 3
    (rows[0] * 1 + rows[2] * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[1, 1], [0, 0], [3, 3]])
    np.testing.assert_array_equal(np.asarray(x), np.arange(6.0).reshape(3, 2))
    assert float(Tensor([2.5])) == 2.5 and int(Tensor(7)) == 7
    assert Tensor([Tensor(1.0), Tensor(2.0)]).dtype == np.float32
