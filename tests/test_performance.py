"""What the speed and memory work relies on: the graph keeps no input arrays, sums of gradients are made in
place only in buffers the engine owns, and a recurrent layer keeps about what a hand-written BPTT keeps."""

from __future__ import annotations

import gc
import tracemalloc
import weakref

import numpy as np

import tinygrad_rnn as tg
from tinygrad_rnn import nn
from tinygrad_rnn.backend import to_numpy


def t64(values, device, requires_grad=True):
    return tg.Tensor(np.asarray(values, dtype=np.float64), requires_grad=requires_grad, device=device)


def test_the_graph_does_not_keep_an_intermediate_array_that_no_backward_needs(device):
    x = t64([0.5, -1.0, 2.0], device)
    a = x * 3.0
    probe = weakref.ref(a.array)
    loss = (a + 1.0).sum()  # add saves nothing, so only the name `a` holds a's array
    del a
    gc.collect()
    assert probe() is None
    loss.backward()
    np.testing.assert_array_equal(to_numpy(x.grad.array), [3.0, 3.0, 3.0])


def test_an_array_saved_for_backward_lives_until_backward(device):
    x = t64([0.5, -1.0, 2.0], device)
    t = x.tanh()  # tanh saves its output
    probe = weakref.ref(t.array)
    loss = (t * 2.0).sum()
    del t
    gc.collect()
    assert probe() is not None
    loss.backward()
    gc.collect()
    assert probe() is None  # released with the graph
    np.testing.assert_allclose(to_numpy(x.grad.array), 2 * (1 - np.tanh([0.5, -1.0, 2.0]) ** 2), rtol=1e-12)


def test_a_tensor_used_many_times_sums_its_gradients_without_touching_shared_arrays(device):
    rng = np.random.default_rng(0)
    w = t64(rng.standard_normal((3, 4)), device)
    xs = [t64(rng.standard_normal((2, 4)), device, requires_grad=False) for _ in range(5)]
    w_t = w.T.retain_grad()  # one non-leaf used at every "time step", as W_hhᵀ in a layer
    a = w_t * 1.0
    loss = None
    for x in xs:
        term = (x @ w_t).sum() + (a + a + a).sum()  # a + a + a: one gradient array sent to several inputs
        loss = term if loss is None else loss + term
    upstream = np.array(1.0)
    loss.backward(upstream)
    expected = sum(x.numpy().sum(axis=0)[:, None] * np.ones((1, 3)) for x in xs) + 3 * 5
    np.testing.assert_allclose(to_numpy(w_t.grad.array), expected, rtol=1e-12)
    np.testing.assert_allclose(to_numpy(w.grad.array), expected.T, rtol=1e-12)
    assert upstream == 1.0


def test_an_lstm_layer_keeps_about_what_a_hand_written_bptt_keeps():
    """After the forward pass the tape holds per step the gates (4 H-vectors), c, tanh(c), h and the stacked
    output: about 8·B·H floats, as a hand-written BPTT does. Keeping every intermediate array was about 27."""
    B, H = 8, 256
    layer = nn.LSTM(16, H)
    x = tg.Tensor(np.random.default_rng(0).standard_normal((2, B, 16)).astype(np.float32))
    layer(x)[0].sum().backward()  # warm up
    per_step = []
    for T in (20, 40):
        x = tg.Tensor(np.random.default_rng(0).standard_normal((T, B, 16)).astype(np.float32))
        gc.collect()
        tracemalloc.start()
        try:
            out, _ = layer(x)
            kept = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        per_step.append(kept / T / (B * H * 4))
        out.sum().backward()
    assert max(per_step) < 10.5, per_step  # H-vectors (B·H floats) kept per step
