"""Cells as objects: the peephole LSTM against a hand-written NumPy forward and finite differences, a cell
defined outside the package (the IndRNN of examples/custom_cell.py) getting the whole layer machinery,
PackedSequence input, flatten_parameters, and the one dropout-probability check."""

from __future__ import annotations

import json

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import functional as F
from tinygrad_rnn import nn
from tinygrad_rnn.nn.utils.rnn import PackedSequence


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


def peephole_by_hand(sd: dict[str, np.ndarray], x: np.ndarray, h: np.ndarray, c: np.ndarray):
    """Gers, Schraudolph & Schmidhuber (2002), one layer, written out with NumPy, gate by gate."""
    H = h.shape[-1]
    w_ih, w_hh = sd["weight_ih_l0"], sd["weight_hh_l0"]
    b = sd["bias_ih_l0"] + sd["bias_hh_l0"]
    outs = []
    for x_t in x:
        a = x_t @ w_ih.T + h @ w_hh.T + b
        i = _sigmoid(a[:, :H] + sd["weight_ci_l0"] * c)
        f = _sigmoid(a[:, H : 2 * H] + sd["weight_cf_l0"] * c)
        c = f * c + i * np.tanh(a[:, 2 * H : 3 * H])
        o = _sigmoid(a[:, 3 * H :] + sd["weight_co_l0"] * c)
        h = o * np.tanh(c)
        outs.append(h)
    return np.stack(outs), h, c


def test_peephole_lstm_matches_its_equations_written_by_hand(rng):
    layer = nn.PeepholeLSTM(3, 4, dtype=np.float64)
    sd = {k: v.numpy() for k, v in layer.state_dict().items()}
    assert list(sd) == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
                        "weight_ci_l0", "weight_cf_l0", "weight_co_l0"]
    assert sd["weight_ci_l0"].shape == (4,)
    x, h0, c0 = rng.standard_normal((6, 2, 3)), rng.standard_normal((2, 4)), rng.standard_normal((2, 4))
    out, (h_n, c_n) = layer(tg.Tensor(x), (tg.Tensor(h0[None]), tg.Tensor(c0[None])))
    ref_out, ref_h, ref_c = peephole_by_hand(sd, x, h0, c0)
    np.testing.assert_allclose(out.numpy(), ref_out, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h_n.numpy()[0], ref_h, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(c_n.numpy()[0], ref_c, rtol=1e-12, atol=1e-14)


def test_peephole_lstm_with_zero_peepholes_is_the_lstm(rng):
    lstm = nn.LSTM(3, 4, num_layers=2, dtype=np.float64)
    peep = nn.PeepholeLSTM(3, 4, num_layers=2, dtype=np.float64)
    sd = lstm.state_dict()
    missing, _ = peep.load_state_dict(sd, strict=False)
    assert sorted(missing) == sorted(f"weight_c{g}_l{k}" for g in "ifo" for k in (0, 1))
    peep.load_state_dict({name: np.zeros(4) for name in missing}, strict=False)
    x = tg.Tensor(rng.standard_normal((5, 2, 3)))
    np.testing.assert_array_equal(peep(x)[0].numpy(), lstm(x)[0].numpy())


def test_peephole_lstm_gradients_stacked_bidirectional_with_lengths(rng):
    tg.manual_seed(3)
    layer = nn.PeepholeLSTM(3, 2, num_layers=2, bidirectional=True, dtype=np.float64)
    x = tg.Tensor(rng.standard_normal((4, 2, 3)), requires_grad=True)
    h0 = tg.Tensor(rng.standard_normal((4, 2, 2)), requires_grad=True)
    c0 = tg.Tensor(rng.standard_normal((4, 2, 2)), requires_grad=True)

    def run(x, h0, c0, *params):
        out, (h_n, c_n) = layer(x, (h0, c0), lengths=[4, 2])
        return out, h_n, c_n

    assert tg.gradcheck(run, [x, h0, c0, *layer.parameters()])


def test_peephole_lstm_cell_is_one_step_of_the_layer(rng):
    layer = nn.PeepholeLSTM(3, 4, dtype=np.float64)
    cell = nn.PeepholeLSTMCell(3, 4, dtype=np.float64)
    cell.load_state_dict({k[: -len("_l0")]: v for k, v in layer.state_dict().items()})
    x = rng.standard_normal((2, 3))
    h, c = cell(tg.Tensor(x))
    out, (h_n, c_n) = layer(tg.Tensor(x[None]))
    np.testing.assert_allclose(h.numpy(), h_n.numpy()[0], rtol=1e-14)
    np.testing.assert_allclose(c.numpy(), c_n.numpy()[0], rtol=1e-14)
    h1, c1 = cell(tg.Tensor(x[0]))  # unbatched
    np.testing.assert_allclose(h1.numpy(), h.numpy()[0], rtol=1e-14)


def test_a_cell_defined_outside_the_package_gets_the_whole_machinery(load_example, rng):
    example = load_example("custom_cell")
    assert example.gradcheck_indrnn()  # float64, 2 layers, bidirectional, lengths
    layer = example.IndRNN(3, 4, num_layers=2, bidirectional=True, batch_first=True)
    assert [n for n, _ in layer.named_parameters()][:4] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0",
                                                            "weight_ih_l0_reverse"]
    assert layer.weight_hh_l1.shape == (4,) and layer.weight_ih_l1.shape == (4, 8)
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    out, h_n = layer(tg.Tensor(x))
    assert out.shape == (2, 5, 8) and h_n.shape == (4, 2, 4)
    # h_t = relu(W x_t + b + u ⊙ h_{t-1}) by hand, first layer forward direction
    sd = {k: v.numpy() for k, v in layer.state_dict().items()}
    h = np.zeros((2, 4), np.float32)
    for t in range(5):
        h = np.maximum(x[:, t] @ sd["weight_ih_l0"].T + sd["bias_ih_l0"] + sd["weight_hh_l0"] * h, 0)
    for single in (example.IndRNN(3, 4), nn.RNNBase(3, 4, cell=example.IndRNNCell())):
        single.load_state_dict({k: sd[k] for k in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0")})
        np.testing.assert_allclose(single(tg.Tensor(x.transpose(1, 0, 2)))[1].numpy()[0], h, rtol=1e-5, atol=1e-6)
    # one step as a module, from the same cell
    step = nn.RNNCellBase(3, 4, cell=example.IndRNNCell(), bias=False)
    assert [n for n, _ in step.named_parameters()] == ["weight_ih", "weight_hh"] and step.bias_ih is None


def test_the_custom_cell_example_learns_the_sunspots(load_example):
    scores = load_example("custom_cell").train(epochs=20, hidden_size=32, num_layers=1, window=16, lr=1e-2, seed=0)
    assert scores["IndRNN (this model)"] < 0.85 * scores["persistence (next = this year)"]


def _pack(x: np.ndarray, lengths: np.ndarray) -> PackedSequence:
    """PyTorch's packing of x (T, B, F) by hand: longest first, step by step."""
    order = np.argsort(-lengths, kind="stable")
    batch_sizes = np.array([(lengths > t).sum() for t in range(lengths.max())])
    data = np.concatenate([x[t, order[: batch_sizes[t]]] for t in range(len(batch_sizes))])
    return PackedSequence(tg.Tensor(data, requires_grad=True), batch_sizes, order, np.argsort(order))


@pytest.mark.parametrize("layer_type", [nn.GRU, nn.LSTM, nn.PeepholeLSTM])
def test_packed_input_gives_the_results_of_lengths_and_packs_the_output(layer_type, rng):
    layer = layer_type(3, 4, num_layers=2, bidirectional=True, dtype=np.float64)
    lengths = np.array([2, 5, 1, 4])
    x = rng.standard_normal((5, 4, 3))
    packed = _pack(x, lengths)
    out_p, state_p = layer(packed)
    out_l, state_l = layer(tg.Tensor(x), lengths=lengths)
    assert isinstance(out_p, PackedSequence) and out_p.batch_sizes is packed.batch_sizes
    expected = _pack(out_l.numpy(), lengths).data.numpy()
    np.testing.assert_allclose(out_p.data.numpy(), expected, rtol=1e-13)
    for a, b in zip(state_p if isinstance(state_p, tuple) else (state_p,),
                    state_l if isinstance(state_l, tuple) else (state_l,), strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-13)
    out_p.data.sum().backward()  # the gradient reaches the packed data; padding rows get none
    assert packed.data.grad.shape == packed.data.shape and np.all(np.isfinite(packed.data.grad.numpy()))


def test_flatten_parameters_is_a_no_op():
    layer = nn.LSTM(2, 3)
    before = {k: v.numpy().copy() for k, v in layer.state_dict().items()}
    assert layer.flatten_parameters() is None
    assert all(np.array_equal(before[k], v.numpy()) for k, v in layer.state_dict().items())


@pytest.mark.parametrize("p", [-0.1, 1.5, "0.5", True])
def test_dropout_probability_is_checked_in_one_place_with_one_error(p):
    for make in (lambda: nn.Dropout(p), lambda: nn.GRU(2, 3, num_layers=2, dropout=p),
                 lambda: F.dropout(tg.ones(3), p)):
        with pytest.raises(ValueError, match="dropout probability must be a number in \\[0, 1\\]"):
            make()


def test_dropout_of_one_zeroes_everything_as_in_pytorch():
    assert np.all(F.dropout(tg.ones(5), 1.0).numpy() == 0)
    assert nn.LSTM(2, 3, num_layers=2, dropout=1.0).dropout == 1.0


def test_the_custom_cell_example_runs_with_the_common_options(load_example, tmp_path, capsys):
    example = load_example("custom_cell")
    assert example.main(["--epochs", "2", "--hidden-size", "8", "--out", str(tmp_path)]) == 0
    assert "gradcheck" in capsys.readouterr().out
    result = json.loads((tmp_path / "custom_cell.json").read_text(encoding="utf-8"))
    assert result["gradcheck"] is True
    assert result["test_rmse"]["persistence (next = this year)"] == pytest.approx(32.78, abs=0.01)


def test_a_layer_without_a_cell_or_with_a_mode_string_says_what_it_needs():
    with pytest.raises(TypeError, match="needs a RecurrentCell"):
        nn.RNNBase(3, 4)
    with pytest.raises(TypeError, match="not PyTorch's mode string 'LSTM'"):
        nn.RNNBase("LSTM", 3, 4)
    with pytest.raises(TypeError, match="needs a RecurrentCell"):
        nn.RNNCellBase(3, 4, cell="gru")
