"""A first end-to-end check: an LSTM layer's gradients against finite differences."""

import numpy as np

import tinygrad_rnn as tg
from tinygrad_rnn import nn


def test_lstm_layer_gradients_match_finite_differences(device):
    tg.manual_seed(0)
    lstm = nn.LSTM(3, 4, dtype=np.float64, device=device)
    x = tg.Tensor(np.random.default_rng(1).standard_normal((5, 2, 3)), requires_grad=True, device=device)

    def f(x, *params):
        return lstm(x)[0]

    assert tg.gradcheck(f, [x, *lstm.parameters()])
