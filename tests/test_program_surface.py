"""The small pieces of PyTorch's surface the kept programs (tests/test_programs.py) needed: narrow, Generator,
set/get_default_device, layers following set_default_dtype, serialization.safe_globals, nn.modules' paths, and the
deliberate refusals nn.Transformer and onnx.export."""

from __future__ import annotations

import io

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import nn
from tinygrad_rnn.serialization import CheckpointError


def test_narrow_values_and_gradient():
    x = tg.tensor(np.arange(24.0).reshape(4, 6), requires_grad=True)
    y = x.narrow(1, 2, 3)
    assert y.size() == (4, 3)
    np.testing.assert_array_equal(y.numpy(), np.arange(24.0).reshape(4, 6)[:, 2:5])
    y.sum().backward()
    expected = np.zeros((4, 6))
    expected[:, 2:5] = 1
    np.testing.assert_array_equal(x.grad.numpy(), expected)
    np.testing.assert_array_equal(x.narrow(-1, -2, 2).numpy(), x.numpy()[:, 4:6])
    with pytest.raises(tg.OpError, match="narrow"):
        x.narrow(0, 3, 2)  # would run past the end: refused, not truncated
    with pytest.raises(tg.OpError, match="narrow"):
        x.narrow(2, 0, 1)


def test_narrow_matches_torch():
    torch = pytest.importorskip("torch")
    a = np.arange(30).reshape(5, 6)
    for dim, start, length in [(0, 0, 5), (0, 1, 3), (1, -3, 2), (-1, 0, 0)]:
        np.testing.assert_array_equal(tg.tensor(a).narrow(dim, start, length).numpy(),
                                      torch.tensor(a).narrow(dim, start, length).numpy())


def test_generator_is_seeded_and_chains():
    g = tg.Generator(device="cpu").manual_seed(2024)
    assert isinstance(g, tg.Generator) and g.initial_seed() == 2024 and g.device == "cpu"
    first = g.permutation(10)
    g2 = tg.Generator().manual_seed(2024)
    np.testing.assert_array_equal(first, g2.permutation(10))
    state = g.get_state()
    a = tg.randn(3, generator=g).numpy()
    g.set_state(state)
    np.testing.assert_array_equal(a, tg.randn(3, generator=g).numpy())
    # random_split takes it, and the same seed gives the same split
    s1 = tg.utils.data.random_split(range(20), [0.8, 0.2], generator=tg.Generator().manual_seed(1))
    s2 = tg.utils.data.random_split(range(20), [0.8, 0.2], generator=tg.Generator().manual_seed(1))
    assert list(s1[0]) == list(s2[0]) and len(s1[0]) == 16


def test_default_device_and_dtype_reach_new_layers():
    assert tg.get_default_device() == "cpu" and tg.get_default_device().type == "cpu"
    tg.set_default_device("cpu")
    assert tg.zeros(2).device == "cpu"
    with pytest.raises(tg.DeviceError):
        tg.set_default_device("tpu")
    tg.set_default_device(None)
    assert tg.get_default_device() == "cpu"
    before = tg.get_default_dtype()
    tg.set_default_dtype(tg.float64)
    try:
        for layer in (nn.Linear(2, 3), nn.LSTM(2, 3, 2), nn.RNNCell(2, 3), nn.Embedding(4, 2)):
            assert {p.dtype for p in layer.parameters()} == {np.dtype(np.float64)}, layer
    finally:
        tg.set_default_dtype(before)
    assert nn.Linear(2, 3).weight.dtype == before


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(3, 4)
        self.out = nn.Linear(4, 2)


def test_whole_module_loads_with_safe_globals_only():
    model = Model()
    f = io.BytesIO()
    tg.save(model, f)
    f.seek(0)
    with pytest.raises(CheckpointError, match="Model"):
        tg.load(f)  # weights_only=True: the class is not allowed
    f.seek(0)
    with tg.serialization.safe_globals([Model, nn.modules.rnn.GRU, nn.modules.linear.Linear]):
        loaded = tg.load(f)
    assert tg.serialization.get_safe_globals() == []
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy()), k
    f.seek(0)
    with tg.serialization.safe_globals([Model, nn.modules.rnn.GRU]):  # Linear missing: named in the error
        with pytest.raises(CheckpointError, match="Linear"):
            tg.load(f)
    tg.serialization.add_safe_globals([Model, nn.GRU, nn.Linear])
    try:
        f.seek(0)
        assert isinstance(tg.load(f), Model)
    finally:
        tg.serialization.clear_safe_globals()


def test_torch_module_paths_are_the_classes():
    assert nn.modules.rnn.LSTM is nn.LSTM and nn.modules.sparse.Embedding is nn.Embedding
    assert nn.modules.dropout.Dropout is nn.Dropout and nn.modules.linear.Linear is nn.Linear
    assert nn.modules.loss.NLLLoss is nn.NLLLoss and nn.modules.container.ModuleList is nn.ModuleList


def test_transformer_and_onnx_refuse_clearly():
    class TransformerModel(nn.Transformer):  # defining a subclass works (programs do), building one raises
        pass

    with pytest.raises(NotImplementedError, match="TransformerModel: nn.Transformer is not supported"):
        TransformerModel(d_model=8, nhead=2)
    with pytest.raises(NotImplementedError, match="ONNX export is not supported"):
        tg.onnx.export(nn.Linear(2, 2), tg.zeros(1, 2), "m.onnx")
