"""nn without PyTorch: recurrent layers' semantics (variable lengths, state order, dropout, unbatched input),
their error messages, pad_sequences, state dicts and atomic checkpoints.

PyTorch parity lives in ``test_parity_torch.py``; these tests hold the same properties by construction
(a padded batch against each sequence run alone, h_n against the output, train against eval).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import nn, serialization
from tinygrad_rnn.tensor import OpError, Tensor

LAYERS = ["RNN", "LSTM", "GRU"]


def make_layer(kind: str, *args, **kwargs):
    tg.manual_seed(0)
    return getattr(nn, kind)(*args, **kwargs)


def finals(kind: str, result) -> list:
    """``[h_n]`` or, for the LSTM, ``[h_n, c_n]`` from a layer's result."""
    _, final = result
    return list(final) if kind == "LSTM" else [final]


def close(a, b, tol: float = 1e-12) -> bool:
    a = a.numpy() if isinstance(a, tg.Tensor) else np.asarray(a)
    b = b.numpy() if isinstance(b, tg.Tensor) else np.asarray(b)
    return a.shape == b.shape and np.allclose(a, b, rtol=tol, atol=tol)


# --------------------------------------------------------------------------------------------------
# Variable-length batches
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", LAYERS)
@pytest.mark.parametrize("bidirectional,batch_first", [(False, False), (True, False), (True, True)])
def test_padded_batch_equals_each_sequence_run_alone(kind, bidirectional, batch_first, device):
    """Outputs past each end are 0, h_n/c_n are taken at each sequence's end, the reverse direction starts
    there, and the gradients (of parameters and inputs) are those of the sequences run one by one."""
    hidden = 3
    layer = make_layer(kind, 2, hidden, num_layers=2, bidirectional=bidirectional, batch_first=batch_first,
                       dtype=np.float64, device=device)
    lengths = [4, 6, 1, 3]  # unsorted
    rng = np.random.default_rng(0)
    seqs = [rng.standard_normal((n, 2)) for n in lengths]
    padded, lens = nn.pad_sequences(seqs, batch_first=batch_first, padding_value=7.0, device=device)
    x = tg.Tensor(padded.array, requires_grad=True)
    out, *_ = result = layer(x, lengths=lens)
    weights = [rng.standard_normal(out.shape), *(rng.standard_normal(f.shape) for f in finals(kind, result))]
    loss = sum(((t * tg.Tensor(w, device=device)).sum()
                for t, w in zip([out, *finals(kind, result)], weights, strict=False)),
               tg.zeros((), dtype=np.float64, device=device))
    loss.backward()
    grads = {n: p.grad.numpy() for n, p in layer.named_parameters()}
    out_np, x_grad = out.numpy(), x.grad.numpy()
    if batch_first:  # compare in (T, B, ·) order
        out_np, x_grad, weights[0] = out_np.swapaxes(0, 1), x_grad.swapaxes(0, 1), weights[0].swapaxes(0, 1)

    expected = {n: np.zeros_like(g) for n, g in grads.items()}
    for b, n in enumerate(lengths):
        layer.zero_grad()
        xb = tg.Tensor(seqs[b][:, None, :] if not batch_first else seqs[b][None], requires_grad=True, device=device)
        out_b, *_ = result_b = layer(xb)
        ob = out_b.numpy()[:, 0] if not batch_first else out_b.numpy()[0]
        assert close(out_np[:n, b], ob)
        assert np.all(out_np[n:, b] == 0)
        for f_all, f_b in zip(finals(kind, result), finals(kind, result_b), strict=False):
            assert close(f_all.numpy()[:, b], f_b.numpy()[:, 0])
        w_out = weights[0][:n, b][:, None] if not batch_first else weights[0][:n, b][None]
        loss_b = (out_b * tg.Tensor(w_out, device=device)).sum()
        for f_b, w in zip(finals(kind, result_b), weights[1:], strict=False):
            loss_b = loss_b + (f_b * tg.Tensor(w[:, b:b + 1], device=device)).sum()
        loss_b.backward()
        for name, p in layer.named_parameters():
            expected[name] += p.grad.numpy()
        gx = xb.grad.numpy()[:, 0] if not batch_first else xb.grad.numpy()[0]
        assert close(x_grad[:n, b], gx)
        assert np.all(x_grad[n:, b] == 0), "padding must get no gradient"
    for name, grad in grads.items():
        assert close(grad, expected[name], 1e-10), name


@pytest.mark.parametrize("kind", LAYERS)
def test_lengths_accept_lists_arrays_and_tensors_and_full_lengths_change_nothing(kind):
    layer = make_layer(kind, 3, 4, bidirectional=True, dtype=np.float64)
    x = tg.Tensor(np.random.default_rng(1).standard_normal((5, 3, 3)))
    plain = layer(x)
    for lengths in ([5, 5, 5], np.array([5, 5, 5], dtype=np.int32), tg.Tensor(np.array([5, 5, 5]))):
        assert all(close(a, b)
                   for a, b in zip(finals(kind, plain), finals(kind, layer(x, lengths=lengths)), strict=False))
    ragged = [layer(x, lengths=v)[0].numpy() for v in ([2, 5, 1], np.array([2, 5, 1]), tg.Tensor(np.array([2, 5, 1])))]
    assert close(ragged[0], ragged[1]) and close(ragged[0], ragged[2])


@pytest.mark.parametrize("kind", LAYERS)
@pytest.mark.parametrize("num_layers,bidirectional", [(1, False), (2, True), (3, True)])
def test_final_state_is_ordered_layer_major_forward_before_reverse(kind, num_layers, bidirectional):
    hidden, lengths = 3, np.array([2, 5, 4])
    layer = make_layer(kind, 2, hidden, num_layers=num_layers, bidirectional=bidirectional, dtype=np.float64)
    x = tg.Tensor(np.random.default_rng(2).standard_normal((5, 3, 2)))
    out, *_ = result = layer(x, lengths=lengths)
    h_n = finals(kind, result)[0].numpy()
    directions = 2 if bidirectional else 1
    assert h_n.shape == (num_layers * directions, 3, hidden)
    out = out.numpy()
    for b, n in enumerate(lengths):
        assert close(h_n[(num_layers - 1) * directions, b], out[n - 1, b, :hidden])  # forward: its last real step
        if bidirectional:
            assert close(h_n[-1, b], out[0, b, hidden:])  # reverse: ends at t = 0
    if num_layers > 1:  # layer 0's states: the same weights as a one-layer model
        first = make_layer(kind, 2, hidden, bidirectional=bidirectional, dtype=np.float64)
        first.load_state_dict({k: v for k, v in layer.state_dict().items() if "_l0" in k})
        assert close(finals(kind, first(x, lengths=lengths))[0], h_n[:directions])


@pytest.mark.parametrize("kind", LAYERS)
def test_unbatched_input_equals_a_batch_of_one(kind, device):
    layer = make_layer(kind, 3, 4, num_layers=2, bidirectional=True, batch_first=True, dtype=np.float64,
                       device=device)
    x = np.random.default_rng(3).standard_normal((5, 3))
    h0 = np.random.default_rng(4).standard_normal((4, 4))
    state = (tg.Tensor(h0, device=device),) * 2 if kind == "LSTM" else tg.Tensor(h0, device=device)
    state_b = (tg.Tensor(h0[:, None], device=device),) * 2 if kind == "LSTM" else tg.Tensor(h0[:, None], device=device)
    one = layer(tg.Tensor(x, device=device), state)
    batch = layer(tg.Tensor(x[None], device=device), state_b)
    assert close(one[0], batch[0].numpy()[0])
    for a, b in zip(finals(kind, one), finals(kind, batch), strict=False):
        assert a.shape == (4, 4) and close(a, b.numpy()[:, 0])


def test_initial_state_may_be_an_array():
    layer = make_layer("GRU", 3, 4, dtype=np.float64)
    x = tg.Tensor(np.ones((2, 1, 3)))
    h0 = np.full((1, 1, 4), 0.5)
    assert close(layer(x, h0)[0], layer(x, tg.Tensor(h0))[0])


# --------------------------------------------------------------------------------------------------
# Dropout between layers
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", LAYERS)
def test_dropout_acts_between_layers_in_training_only_and_stays_differentiable(kind):
    layer = make_layer(kind, 3, 4, num_layers=2, dropout=0.5, dtype=np.float64)
    x = tg.Tensor(np.random.default_rng(5).standard_normal((6, 2, 3)), requires_grad=True)
    layer.eval()
    out_eval, *_ = eval_result = layer(x)
    assert close(out_eval, layer(x)[0])  # deterministic
    layer.train()
    tg.manual_seed(1)
    out_train, *_ = train_result = layer(x)
    assert not close(out_train, out_eval, 1e-6)
    assert close(finals(kind, train_result)[0].numpy()[0], finals(kind, eval_result)[0].numpy()[0])  # layer 0
    assert not close(finals(kind, train_result)[0].numpy()[1], finals(kind, eval_result)[0].numpy()[1], 1e-6)

    def fixed_mask(x, *params):
        tg.manual_seed(1)  # the same dropout mask at every evaluation
        return layer(x)[0]

    assert tg.gradcheck(fixed_mask, [x, *layer.parameters()])


def test_dropout_is_not_applied_after_the_last_layer():
    layer = make_layer("LSTM", 3, 4, num_layers=1, dropout=0.5, dtype=np.float64)
    x = tg.Tensor(np.ones((3, 2, 3)))
    assert close(layer.train()(x)[0], layer.eval()(x)[0])


# --------------------------------------------------------------------------------------------------
# Errors name the layer, the expected and the received shape
# --------------------------------------------------------------------------------------------------


def raises(fn, *fragments):
    with pytest.raises(OpError) as info:
        fn()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


@pytest.mark.parametrize("kind", LAYERS)
def test_layer_errors_name_the_layer_and_both_shapes(kind, device):
    layer = make_layer(kind, 4, 5, num_layers=2, bidirectional=True, device=device)
    x = tg.randn(6, 3, 4, device=device)

    def state(shape, c_shape=None):
        h = tg.zeros(*shape, device=device)
        return (h, tg.zeros(*(c_shape or shape), device=device)) if kind == "LSTM" else h

    h_name = "h0" if kind == "LSTM" else "hx"
    raises(lambda: layer(tg.randn(4, device=device)), kind, "(T, B, I)", "(4,)")
    raises(lambda: layer(tg.randn(2, 6, 3, 4, device=device)), kind, "(T, B, I)", "(2, 6, 3, 4)")
    raises(lambda: layer(tg.randn(6, 3, 7, device=device)), kind, "(T, B, 4)", "(6, 3, 7)")
    raises(lambda: layer(x, state((4, 2, 5))), kind, h_name, "(4, 3, 5)", "(4, 2, 5)")
    raises(lambda: layer(x, state((2, 3, 5))), kind, h_name, "(4, 3, 5)", "(2, 3, 5)")
    raises(lambda: layer(tg.randn(6, 4, device=device), state((4, 3, 5))), kind, "(4, 5)", "(4, 3, 5)")
    if kind == "LSTM":
        raises(lambda: layer(x, state((4, 3, 5), (4, 3, 6))), "LSTM", "c0", "(4, 3, 5)", "(4, 3, 6)")
        raises(lambda: layer(x, tg.zeros(4, 3, 5, device=device)), "LSTM", "(h0, c0)")
    raises(lambda: layer(x, lengths=[1, 2]), kind, "lengths", "(3,)", "(2,)")
    raises(lambda: layer(x, lengths=[[1, 2, 3]]), kind, "lengths", "(3,)", "(1, 3)")
    raises(lambda: layer(x, lengths=[0, 2, 3]), kind, "1..6", "[0, 2, 3]")
    raises(lambda: layer(x, lengths=[7, 2, 3]), kind, "1..6", "[7, 2, 3]")
    raises(lambda: layer(x, lengths=[1.5, 2, 3]), kind, "integers", "1.5")
    raises(lambda: layer(x, lengths=[True, True, True]), kind, "integers")
    raises(lambda: layer(tg.randn(6, 4, device=device), lengths=[3]), kind, "lengths", "(6, 4)")
    raises(lambda: layer(tg.randn(0, 3, 4, device=device)), kind, "empty", "(0, 3, 4)")


def test_batch_first_layer_errors_show_its_layout():
    layer = make_layer("GRU", 4, 5, batch_first=True)
    raises(lambda: layer(tg.randn(3, 6, 2)), "GRU", "(B, T, 4)", "(3, 6, 2)")
    raises(lambda: layer(tg.randn(3, 6, 4), lengths=[1, 7, 2]), "GRU", "1..6", "[1, 7, 2]")


@pytest.mark.parametrize("kind", ["RNNCell", "LSTMCell", "GRUCell"])
def test_cell_errors_name_the_cell_and_both_shapes(kind):
    cell = make_layer(kind, 4, 5)
    raises(lambda: cell(tg.randn(3, 3)), kind, "(batch, 4)", "(3, 3)")
    raises(lambda: cell(tg.randn(2, 3, 4)), kind, "(batch, 4)", "(2, 3, 4)")
    bad = tg.zeros(2, 5)
    raises(lambda: cell(tg.randn(3, 4), (bad, bad) if kind == "LSTMCell" else bad), kind, "(3, 5)", "(2, 5)")


def test_constructor_arguments_are_checked():
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="dropout"):
        nn.LSTM(3, 4, num_layers=2, dropout=1.5)
    with pytest.raises(ValueError, match="positive"):
        nn.GRU(3, 0)


# --------------------------------------------------------------------------------------------------
# pad_sequences
# --------------------------------------------------------------------------------------------------


def test_pad_sequences_pads_in_any_order_and_returns_lengths():
    seqs = [np.ones((2, 3)), np.full((4, 3), 2.0), tg.Tensor(np.full((1, 3), 3.0))]
    padded, lengths = nn.pad_sequences(seqs, padding_value=-1.0)
    assert padded.shape == (4, 3, 3) and not padded.requires_grad
    assert lengths.dtype == np.int64 and lengths.tolist() == [2, 4, 1]
    p = padded.numpy()
    assert np.all(p[:2, 0] == 1) and np.all(p[2:, 0] == -1)
    assert np.all(p[:, 1] == 2)
    assert np.all(p[:1, 2] == 3) and np.all(p[1:, 2] == -1)
    first, _ = nn.pad_sequences(seqs, batch_first=True, padding_value=-1.0)
    assert first.shape == (3, 4, 3) and np.array_equal(first.numpy(), p.swapaxes(0, 1))


def test_pad_sequences_keeps_dtype_and_takes_token_ids():
    padded, lengths = nn.pad_sequences([np.array([5, 6, 7]), np.array([8])], batch_first=True)
    assert padded.dtype == np.int64 and padded.numpy().tolist() == [[5, 6, 7], [8, 0, 0]]
    assert lengths.tolist() == [3, 1]
    f32, _ = nn.pad_sequences([np.ones((2, 2), np.float32)])
    assert f32.dtype == np.float32


def test_pad_sequences_errors():
    with pytest.raises(ValueError, match="at least one"):
        nn.pad_sequences([])
    with pytest.raises(ValueError, match="sequence 1 is empty"):
        nn.pad_sequences([np.ones((2, 3)), np.ones((0, 3))])
    with pytest.raises(ValueError, match=r"sequence 1 has features \(4,\), expected \(3,\)"):
        nn.pad_sequences([np.ones((2, 3)), np.ones((2, 4))])


# --------------------------------------------------------------------------------------------------
# state_dict / load_state_dict
# --------------------------------------------------------------------------------------------------


def test_state_dict_uses_pytorch_names_in_pytorch_order():
    lstm = make_layer("LSTM", 3, 4, num_layers=2, bidirectional=True)
    names = [f"{w}_l{k}{s}" for k in range(2) for s in ("", "_reverse")
             for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    state = lstm.state_dict()
    assert list(state) == names
    assert state["weight_ih_l1"].shape == (16, 8) and state["weight_hh_l0_reverse"].shape == (16, 4)
    assert all(not t.requires_grad for t in state.values())
    assert list(make_layer("GRU", 3, 4, bias=False).state_dict()) == ["weight_ih_l0", "weight_hh_l0"]
    assert list(make_layer("RNNCell", 3, 4).state_dict()) == ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]


def test_load_state_dict_casts_copies_and_round_trips():
    source = make_layer("GRU", 3, 4, num_layers=2)
    target = nn.GRU(3, 4, num_layers=2, dtype=np.float64)
    arrays = {k: v.numpy().copy() for k, v in source.state_dict().items()}  # float32
    assert target.load_state_dict(arrays) == ([], [])
    for name, p in target.named_parameters():
        assert p.dtype == np.float64 and np.array_equal(p.numpy(), arrays[name].astype(np.float64))
    arrays["weight_hh_l0"][...] = 0  # the layer holds its own copy
    assert np.any(target.weight_hh_l0.numpy() != 0)
    target.load_state_dict({"bias_ih_l1": [0.5] * 12}, strict=False)  # anything numpy.asarray takes
    assert np.all(target.bias_ih_l1.numpy() == 0.5) and target.bias_ih_l1.dtype == np.float64


def test_load_state_dict_reports_every_problem_at_once_and_changes_nothing():
    layer = make_layer("LSTM", 3, 4)
    before = {k: v.numpy().copy() for k, v in layer.state_dict().items()}
    bad = {k: v.numpy() for k, v in layer.state_dict().items() if k != "bias_hh_l0"}
    bad["weight_ih_l0"] = np.zeros((16, 5))
    bad["weight_ih_l1"] = np.zeros((16, 4))
    with pytest.raises(nn.StateDictError) as info:
        layer.load_state_dict(bad)
    message = str(info.value)
    for fragment in ("LSTM", "missing keys: ['bias_hh_l0']", "unexpected keys: ['weight_ih_l1']",
                     "weight_ih_l0: expected (16, 3), got (16, 5)"):
        assert fragment in message, message
    assert all(np.array_equal(v.numpy(), before[k]) for k, v in layer.state_dict().items())
    with pytest.raises(nn.StateDictError, match="mis-shaped"):  # shapes are checked even when not strict
        layer.load_state_dict({"weight_ih_l0": np.zeros((16, 5))}, strict=False)
    missing, unexpected = layer.load_state_dict({"bias_ih_l0": np.ones(16), "extra": np.ones(2)}, strict=False)
    assert missing == ["weight_ih_l0", "weight_hh_l0", "bias_hh_l0"] and unexpected == ["extra"]
    assert np.all(layer.bias_ih_l0.numpy() == 1)


def test_load_state_dict_moves_values_to_the_parameters_device(device):
    layer = make_layer("RNN", 2, 3, device=device)
    layer.load_state_dict({k: np.ones(v.shape) for k, v in layer.state_dict().items()})
    assert all(p.device == layer.weight_ih_l0.device and np.all(p.numpy() == 1) for p in layer.parameters())


# --------------------------------------------------------------------------------------------------
# save / load: atomic checkpoints
# --------------------------------------------------------------------------------------------------


def test_save_and_load_round_trip(tmp_path):
    layer = make_layer("LSTM", 3, 4, num_layers=2, bidirectional=True, dtype=np.float64)
    path = tmp_path / "model.npz"
    layer.save(path)
    fresh = nn.LSTM(3, 4, num_layers=2, bidirectional=True, dtype=np.float64).load(path)
    x = tg.Tensor(np.random.default_rng(0).standard_normal((4, 2, 3)))
    assert np.array_equal(fresh(x)[0].numpy(), layer(x)[0].numpy())
    assert list(serialization.load(path)) == list(layer.state_dict())
    assert os.listdir(tmp_path) == ["model.npz"]
    if os.name == "posix":  # not the 0600 of the temporary file it was written to
        assert os.stat(path).st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _checkpoint(tmp_path):
    layer = make_layer("GRU", 3, 4, dtype=np.float64)
    path = tmp_path / "ckpt.npz"
    layer.save(path)
    old = {k: v.numpy().copy() for k, v in layer.state_dict().items()}
    for p in layer.parameters():
        p.array = p.array + 1.0
    return layer, path, old


def _assert_previous_checkpoint_intact(tmp_path, path, old):
    assert os.listdir(tmp_path) == [path.name], "no temporary file may be left behind"
    loaded = serialization.load(path)
    assert list(loaded) == list(old) and all(np.array_equal(loaded[k], old[k]) for k in old)


def test_failure_while_writing_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    layer, path, old = _checkpoint(tmp_path)

    def partial_savez(file, **arrays):
        file.write(b"PK\x03\x04 half a zip archive")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", partial_savez)
    with pytest.raises(OSError, match="disk full"):
        layer.save(path)
    _assert_previous_checkpoint_intact(tmp_path, path, old)


def test_interrupt_while_writing_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    layer, path, old = _checkpoint(tmp_path)

    def interrupted_savez(file, **arrays):
        file.write(b"PK")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted_savez)
    with pytest.raises(KeyboardInterrupt):
        layer.save(path)
    _assert_previous_checkpoint_intact(tmp_path, path, old)


def test_failed_rename_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    layer, path, old = _checkpoint(tmp_path)

    def failing_replace(src, dst):
        raise PermissionError("rename refused")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(PermissionError, match="rename refused"):
        layer.save(path)
    _assert_previous_checkpoint_intact(tmp_path, path, old)


def test_save_into_a_missing_folder_raises(tmp_path):
    with pytest.raises(OSError):
        make_layer("RNN", 2, 3).save(tmp_path / "missing" / "x.npz")
    assert os.listdir(tmp_path) == []


def test_pad_sequences_is_differentiable_through_its_inputs():
    emb = nn.Embedding(10, 4, dtype=np.float64)
    padded, lengths = nn.pad_sequences([emb(Tensor([1, 2, 3])), emb(Tensor([4, 5]))], batch_first=True)
    assert padded.shape == (2, 3, 4) and lengths.tolist() == [3, 2]
    (padded * padded).sum().backward()
    expected = np.zeros((10, 4))
    for i in (1, 2, 3, 4, 5):
        expected[i] = 2 * emb.weight.numpy()[i]
    np.testing.assert_allclose(emb.weight.grad.numpy(), expected)


def test_nan_in_padding_does_not_reach_the_gradients():
    gru = nn.GRU(2, 3, dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((4, 2, 2))
    x[3, 1] = np.nan  # past the end of sequence 1
    out, _ = gru(Tensor(x), lengths=[4, 3])
    out.sum().backward()
    assert all(np.isfinite(p.grad.numpy()).all() for p in gru.parameters())


def test_a_tuple_state_for_a_gru_and_integer_input_raise_clearly():
    gru = nn.GRU(2, 3)
    with pytest.raises(OpError, match=r"GRU: expected hx to be one tensor.*got a tuple"):
        gru(tg.randn(4, 2, 2), (tg.zeros(1, 2, 3),))
    with pytest.raises(OpError, match=r"LSTM: expected a floating-point input, got dtype int64"):
        nn.LSTM(2, 3)(Tensor(np.zeros((3, 2, 2), np.int64)))
