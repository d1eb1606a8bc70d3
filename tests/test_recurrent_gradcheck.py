"""Recurrent cells and layers: every parameter's, the input's and the initial state's gradient against
float64 central differences, on tiny models whose input size differs from their hidden size."""

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import nn

INPUT, HIDDEN, STEPS, BATCH = 3, 4, 5, 2


def _tensor(rng, shape, device):
    return tg.Tensor(rng.standard_normal(shape), requires_grad=True, device=device)


@pytest.mark.parametrize("cell", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
def test_cell_gradients(cell, device, rng):
    tg.manual_seed(1)
    if cell.startswith("rnn"):
        module = nn.RNNCell(INPUT, HIDDEN, nonlinearity=cell[4:], dtype=np.float64, device=device)
    else:
        module = {"lstm": nn.LSTMCell, "gru": nn.GRUCell}[cell](INPUT, HIDDEN, dtype=np.float64, device=device)
    x = _tensor(rng, (BATCH, INPUT), device)
    h = _tensor(rng, (BATCH, HIDDEN), device)
    c = _tensor(rng, (BATCH, HIDDEN), device)
    if cell == "lstm":
        assert tg.gradcheck(lambda x, h, c, *p: module(x, (h, c)), [x, h, c, *module.parameters()])
    else:
        assert tg.gradcheck(lambda x, h, *p: module(x, h), [x, h, *module.parameters()])


@pytest.mark.parametrize("layer", [nn.RNN, nn.LSTM, nn.GRU])
@pytest.mark.parametrize("bidirectional,num_layers,with_lengths", [(False, 1, False), (True, 2, True)])
def test_layer_gradients(layer, bidirectional, num_layers, with_lengths, device, rng):
    tg.manual_seed(2)
    module = layer(INPUT, HIDDEN, num_layers=num_layers, bidirectional=bidirectional, dtype=np.float64,
                   device=device)
    states = num_layers * (2 if bidirectional else 1)
    x = _tensor(rng, (STEPS, BATCH, INPUT), device)
    h0 = _tensor(rng, (states, BATCH, HIDDEN), device)
    c0 = _tensor(rng, (states, BATCH, HIDDEN), device)
    lengths = [STEPS, 2] if with_lengths else None

    def run(x, h0, c0, *params):
        if layer is nn.LSTM:
            out, (h_n, c_n) = module(x, (h0, c0), lengths=lengths)
            return out, h_n, c_n
        out, h_n = module(x, h0, lengths=lengths)
        return out, h_n

    assert tg.gradcheck(run, [x, h0, c0, *module.parameters()])


def test_shared_weight_gradient_is_the_sum_over_time_steps(rng):
    """A linear recurrence h_t = W h_{t-1}: dL/dW from the tape equals Σ_t g_t h_{t-1}ᵀ computed by hand."""
    w = tg.Tensor(rng.standard_normal((3, 3)) * 0.5, requires_grad=True)
    h0 = rng.standard_normal(3)
    hs = [tg.Tensor(h0)]
    for _ in range(6):
        hs.append(w @ hs[-1])
    hs[-1].sum().backward()
    # by hand: g_T = 1, g_{t-1} = Wᵀ g_t; dL/dW = Σ_t g_t h_{t-1}ᵀ
    W = w.numpy()
    states = [h0]
    for _ in range(6):
        states.append(W @ states[-1])
    g, expected = np.ones(3), np.zeros((3, 3))
    for t in range(6, 0, -1):
        expected += np.outer(g, states[t - 1])
        g = W.T @ g
    np.testing.assert_allclose(w.grad.numpy(), expected, rtol=1e-12, atol=1e-12)
