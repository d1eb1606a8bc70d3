"""Numerical edges, each value pinned: saturating activations, the tails of sigmoid and log-softmax,
extreme logits, powers at 0 and of negative bases, ties in max/min, and ``where`` over a singular branch.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import functional as F
from tinygrad_rnn.tensor import Tensor

FLOAT_DTYPES = [np.float32, np.float64]


def leaf(values, device, dtype=np.float64):
    return Tensor(np.asarray(values, dtype=dtype), requires_grad=True, device=device)


def grad_of(t: Tensor) -> np.ndarray:
    assert t.grad is not None
    return t.grad.numpy()


# --------------------------------------------------------------------------------------------------
# Saturating activations and tails
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_sigmoid_and_tanh_at_plus_minus_1000(device, dtype):
    for op, expected in [(tg.sigmoid, [0.0, 1.0]), (tg.tanh, [-1.0, 1.0])]:
        x = leaf([-1000.0, 1000.0], device, dtype)
        with np.errstate(over="raise", invalid="raise", divide="raise"):  # no overflow on the way
            y = op(x)
            y.backward(np.ones(2))
        assert y.dtype == dtype and x.grad.dtype == dtype
        np.testing.assert_array_equal(y.numpy(), expected)
        np.testing.assert_array_equal(grad_of(x), [0.0, 0.0])  # the true derivatives underflow to 0


def test_sigmoid_minus_100_keeps_full_relative_precision(device):
    y = tg.sigmoid(Tensor(np.array(-100.0), device=device))
    reference = math.exp(-100) / (1 + math.exp(-100))
    assert y.item() == pytest.approx(3.7200759760208356e-44, rel=1e-15)
    assert abs(y.item() - reference) <= 1e-12 * reference
    x = leaf(-100.0, device)
    tg.sigmoid(x).backward()
    assert grad_of(x) == pytest.approx(3.7200759760208356e-44, rel=1e-12)  # σ' = σ(1 - σ) ≈ σ here


def test_sigmoid_relative_error_everywhere_float64(device):
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50
    x = np.concatenate([np.linspace(-708, 708, 1417), [-1e-300, 0.0, 1e-300, -36.7, 36.7]])
    got = tg.sigmoid(Tensor(x, device=device)).numpy()
    ref = np.array([float(1 / (1 + mpmath.exp(-mpmath.mpf(v)))) for v in x])
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=0)


def test_log_softmax_relative_error_in_the_tails_float64(device):
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 800  # a -1e-300 result next to a +700 logit needs many digits
    rows = np.array([[0.0, -50.0, -100.0], [700.0, -700.0, 0.0], [1e-3, 0.0, -1e-3], [-745.0, 0.0, 2.0],
                     [30.0, 30.0, -30.0], [0.0, -36.0, -37.0]])
    got = tg.log_softmax(Tensor(rows, device=device), axis=1).numpy()
    for row, out in zip(rows, got, strict=False):
        lse = mpmath.log(sum(mpmath.exp(mpmath.mpf(v)) for v in row))
        ref = np.array([float(mpmath.mpf(v) - lse) for v in row])
        np.testing.assert_allclose(out, ref, rtol=1e-12, atol=0)
    # the dominant class: log(1 + e^-50) rounds to 0, log1p keeps it
    assert got[0, 0] == pytest.approx(-math.log1p(math.exp(-50) + math.exp(-100)), rel=1e-12)
    assert got[0, 0] == pytest.approx(-1.9287498479639178e-22, rel=1e-12)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_log_softmax_with_extreme_logits(device, dtype):
    x = leaf([[-1000.0, 1000.0], [1e8, 1e8]], device, dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = x.log_softmax(axis=1)
        y.backward(np.array([[1.0, 0.0], [1.0, 0.0]]))
    assert y.dtype == dtype
    np.testing.assert_array_equal(y.numpy()[0], [-2000.0, 0.0])
    np.testing.assert_allclose(y.numpy()[1], [-math.log(2)] * 2, rtol=1e-6)
    # ∂ = g - softmax·Σg
    np.testing.assert_array_equal(grad_of(x), [[1.0, -1.0], [0.5, -0.5]])


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_cross_entropy_with_extreme_logits(device, dtype):
    logits = leaf([[-1000.0, 1000.0], [-1000.0, 1000.0], [1e8, 1e8]], device, dtype)
    loss = F.cross_entropy(logits, np.array([0, 1, 0]), reduction="none")
    assert loss.dtype == dtype
    np.testing.assert_allclose(loss.numpy(), [2000.0, 0.0, math.log(2)], rtol=1e-6)
    mean = F.cross_entropy(logits, np.array([0, 1, 0]))
    assert mean.item() == pytest.approx((2000 + math.log(2)) / 3, rel=1e-6)
    mean.backward()
    assert logits.grad.dtype == dtype
    # (softmax - onehot) / N
    np.testing.assert_allclose(grad_of(logits), np.array([[-1.0, 1.0], [0.0, 0.0], [-0.5, 0.5]]) / 3, rtol=1e-6)


# --------------------------------------------------------------------------------------------------
# Powers
# --------------------------------------------------------------------------------------------------


def test_x_to_the_zero_at_zero(device):
    x = leaf([0.0, 2.0], device)
    y = x**0
    y.backward(np.ones(2))
    np.testing.assert_array_equal(y.numpy(), [1.0, 1.0])
    np.testing.assert_array_equal(grad_of(x), [0.0, 0.0])  # not 0·0⁻¹ = NaN
    # the same with a tensor exponent: both gradients 0 at 0**0
    a, b = leaf([0.0], device), leaf([0.0], device)
    (a**b).backward(np.ones(1))
    np.testing.assert_array_equal(grad_of(a), [0.0])
    np.testing.assert_array_equal(grad_of(b), [0.0])


def test_zero_to_the_b(device):
    b = leaf([2.0, 1.0, 0.5, 0.0], device)
    a = leaf([0.0, 0.0, 0.0, 0.0], device)
    with np.errstate(divide="ignore"):
        y = a**b
    y.backward(np.ones(4))
    np.testing.assert_array_equal(y.numpy(), [0.0, 0.0, 0.0, 1.0])
    # ∂b = a^b·log a, with the limit 0 where a == 0 and b >= 0 (as PyTorch)
    np.testing.assert_array_equal(grad_of(b), [0.0, 0.0, 0.0, 0.0])
    # ∂a = b·a^(b-1): 0, 1, +inf (the square root's vertical tangent), 0
    np.testing.assert_array_equal(grad_of(a), [0.0, 1.0, np.inf, 0.0])
    # 2 ** b with a Python scalar base (reflected): ∂b = 2^b·log 2
    c = leaf([0.0, 3.0], device)
    (2**c).backward(np.ones(2))
    np.testing.assert_allclose(grad_of(c), [math.log(2), 8 * math.log(2)], rtol=1e-15)


def test_negative_base_with_integer_exponent(device):
    x = leaf([-2.0, -0.5], device)
    y = x**3
    y.backward(np.ones(2))
    np.testing.assert_array_equal(y.numpy(), [-8.0, -0.125])
    np.testing.assert_array_equal(grad_of(x), [12.0, 0.75])  # 3x²
    x.zero_grad()
    (x**-1).backward(np.ones(2))
    np.testing.assert_array_equal(grad_of(x), [-0.25, -4.0])  # -x⁻²
    x.zero_grad()
    (x**2.0).backward(np.ones(2))  # an integral float exponent is fine too
    np.testing.assert_array_equal(grad_of(x), [-4.0, -1.0])
    # with a tensor exponent, ∂a is the same but ∂b = a^b·log(a) has no real value: NaN (as PyTorch)
    a, b = leaf([-2.0], device), leaf([3.0], device)
    (a**b).backward(np.ones(1))
    np.testing.assert_array_equal(grad_of(a), [12.0])
    assert np.isnan(grad_of(b)).all()


# --------------------------------------------------------------------------------------------------
# Ties in max/min: the gradient is split evenly among the tied elements (PyTorch's amax/amin rule)
# --------------------------------------------------------------------------------------------------


def test_max_min_ties_split_the_gradient_evenly(device):
    x = leaf([1.0, 3.0, 3.0, 2.0], device)
    x.max().backward()
    np.testing.assert_array_equal(grad_of(x), [0.0, 0.5, 0.5, 0.0])
    y = leaf([2.0, 1.0, 1.0, 1.0], device)
    (y.min() * 6).backward()
    np.testing.assert_array_equal(grad_of(y), [0.0, 2.0, 2.0, 2.0])


def test_max_ties_along_an_axis_and_over_all_axes(device):
    x = leaf([[5.0, 5.0, 1.0], [0.0, 2.0, 2.0], [7.0, 7.0, 7.0]], device)
    m = x.amax(axis=1, keepdims=True)
    np.testing.assert_array_equal(m.numpy(), [[5.0], [2.0], [7.0]])
    m.backward(np.array([[1.0], [2.0], [3.0]]))
    np.testing.assert_array_equal(grad_of(x), [[0.5, 0.5, 0.0], [0.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    x.zero_grad()
    x.max().backward()  # three maxima of 7 over the whole matrix
    np.testing.assert_allclose(grad_of(x), [[0, 0, 0], [0, 0, 0], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-15)
    x.zero_grad()
    x.amin(axis=(0, 1)).backward()  # a unique minimum takes all of it
    np.testing.assert_array_equal(grad_of(x), [[0, 0, 0], [1, 0, 0], [0, 0, 0]])


# --------------------------------------------------------------------------------------------------
# where over a branch that would be log(0)
# --------------------------------------------------------------------------------------------------


def test_where_safe_pattern_has_no_nan_and_the_naive_one_does(device):
    """Both branches of ``where`` are computed; an infinite branch not taken still poisons its own gradient.

    Naive: ``where(x > 0, log(x), 0)``: at x = 0 the where sends 0 to log's output, and log's backward
    computes 0 / 0 = NaN. Safe: ``where(x > 0, log(where(x > 0, x, 1)), 0)``: log never sees 0.
    """
    values = [0.0, 1.0, 2.0]
    x = leaf(values, device)
    with np.errstate(divide="ignore", invalid="ignore"):
        naive = tg.where(x > 0, tg.log(x), 0.0)
        naive.sum().backward()
    np.testing.assert_array_equal(naive.numpy(), [0.0, 0.0, math.log(2)])
    assert np.isnan(grad_of(x)[0])  # pinned: the naive pattern gives NaN
    np.testing.assert_array_equal(grad_of(x)[1:], [1.0, 0.5])

    x = leaf(values, device)
    safe = tg.where(x > 0, tg.log(tg.where(x > 0, x, 1.0)), 0.0)
    safe.sum().backward()
    np.testing.assert_array_equal(safe.numpy(), [0.0, 0.0, math.log(2)])
    np.testing.assert_array_equal(grad_of(x), [0.0, 1.0, 0.5])
