"""Issue 11, second pass: boolean tensors, grad_fn, autograd.grad, torch.* spellings, default dtype in nn,
Linear/LSTM refusals, relu's sign of zero. Checked against torch in float64 where torch is installed."""

import math

import numpy as np
import pytest

import tinygrad_rnn as tg
import tinygrad_rnn.nn.functional as F
from tinygrad_rnn import nn

torch = pytest.importorskip("torch")

M = np.array([[True, False, True], [False, False, True]])
N = np.array([[True, True, False], [False, True, True]])
INTS = np.array([[5, -3, 0], [7, 12, -1]], dtype=np.int64)
X = np.array([[1.5, -2.0, np.nan], [np.inf, -np.inf, 0.0]])


def same(ours, theirs):
    if isinstance(theirs, tuple):
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs, strict=False):
            same(a, b)
        return
    a = ours.numpy() if isinstance(ours, tg.Tensor) else np.asarray(ours)
    b = theirs.numpy()
    assert a.dtype == b.dtype, (a.dtype, b.dtype)
    assert a.shape == b.shape, (a.shape, b.shape)
    np.testing.assert_array_equal(a, b)


def test_boolean_operators_match_torch():
    m, n, i = tg.tensor(M), tg.tensor(N), tg.tensor(INTS)
    tm, tn, ti = torch.tensor(M), torch.tensor(N), torch.tensor(INTS)
    same(~m, ~tm)
    same(m & n, tm & tn)
    same(m | n, tm | tn)
    same(m ^ n, tm ^ tn)
    same(m & True, tm & True)
    same(False | m, False | tm)
    same(~i, ~ti)
    same(i & 6, ti & 6)
    same(3 | i, 3 | ti)
    same(i ^ i.flip(0), ti ^ ti.flip(0))
    with pytest.raises(TypeError, match="bitwise"):
        ~tg.tensor([1.0])
    with pytest.raises(TypeError, match="bitwise"):
        tg.tensor([1.0]) & tg.tensor([1.0])


def test_logical_functions_match_torch():
    x = tg.tensor(X)
    tx = torch.tensor(X)
    for name in ("logical_and", "logical_or", "logical_xor"):
        same(getattr(tg, name)(tg.tensor(M), tg.tensor(INTS)),
             getattr(torch, name)(torch.tensor(M), torch.tensor(INTS)))
        same(getattr(tg.tensor(INTS), name)(tg.tensor(N)), getattr(torch.tensor(INTS), name)(torch.tensor(N)))
    same(tg.logical_not(x), torch.logical_not(tx))
    same(x.logical_not(), tx.logical_not())
    for name in ("isnan", "isinf", "isfinite"):
        same(getattr(tg, name)(x), getattr(torch, name)(tx))
        same(getattr(x, name)(), getattr(tx, name)())


@pytest.mark.parametrize("dim,keepdim", [(None, False), (0, False), (1, True), (-1, False)])
def test_any_all(dim, keepdim):
    for data in (M, INTS, X):
        t, tt = tg.tensor(data), torch.tensor(data)
        if dim is None:
            same(t.any(), tt.any())
            same(t.all(), tt.all())
        else:
            same(t.any(dim, keepdim), tt.any(dim, keepdim))
            same(t.all(dim=dim, keepdim=keepdim), tt.all(dim=dim, keepdim=keepdim))


def test_masked_select_fill_nonzero_where():
    x = np.arange(6.0).reshape(2, 3)
    t, tt = tg.tensor(x), torch.tensor(x)
    same(t.masked_select(tg.tensor(M)), tt.masked_select(torch.tensor(M)))
    same(t.masked_fill(tg.tensor(M), -1.0), tt.masked_fill(torch.tensor(M), -1.0))
    same(t.masked_select(t > 2), tt.masked_select(tt > 2))
    same(tg.nonzero(tg.tensor(INTS)), torch.nonzero(torch.tensor(INTS)))
    same(tg.tensor(M).nonzero(), torch.tensor(M).nonzero())
    same(tg.tensor(M).nonzero(as_tuple=True), torch.tensor(M).nonzero(as_tuple=True))
    same(tg.where(tg.tensor(M)), torch.where(torch.tensor(M)))
    same(tg.nonzero(tg.tensor(3.0)), torch.nonzero(torch.tensor(3.0)))
    same(tg.nonzero(tg.tensor(0.0), as_tuple=True), torch.nonzero(torch.tensor(0.0), as_tuple=True))
    same(tg.where(tg.tensor(M), t, 0.5), torch.where(torch.tensor(M), tt, 0.5))


def test_nan_to_num_values_and_gradient():
    x = tg.tensor(X, requires_grad=True)
    tx = torch.tensor(X, requires_grad=True)
    w = np.linspace(0.1, 0.6, 6).reshape(2, 3)  # < 1: the default posinf times w stays finite
    for kwargs in ({}, {"nan": 1.0, "posinf": 9.0, "neginf": -9.0}):
        x.grad = tx.grad = None
        out, tout = tg.nan_to_num(x, **kwargs), torch.nan_to_num(tx, **kwargs)
        same(out.detach(), tout.detach())
        (out * tg.tensor(w)).sum().backward()
        (tout * torch.tensor(w)).sum().backward()
        same(x.grad, tx.grad)
    same(tg.tensor(INTS).nan_to_num(), torch.tensor(INTS).nan_to_num())


def test_grad_fn():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    assert x.grad_fn is None
    y = (x * x).sum()
    assert y.grad_fn is not None and y.grad_fn.name == "sum"
    with tg.no_grad():
        assert (x * 2).grad_fn is None
    assert tg.tensor([1.0]).grad_fn is None


def test_autograd_grad_matches_torch_and_leaves_grad_alone():
    a = np.array([[0.3, -1.2], [2.0, 0.5]])
    b = np.array([0.7, -0.4])
    x, w = tg.tensor(a, requires_grad=True), tg.tensor(b, requires_grad=True)
    tx, tw = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    w.grad = tg.tensor([10.0, 10.0])
    h = (x @ w).tanh()
    th = (tx @ tw).tanh()
    gx, gh = tg.autograd.grad((h * h).sum(), [x, h])
    tgx, tgh = torch.autograd.grad((th * th).sum(), [tx, th])
    np.testing.assert_allclose(gx.numpy(), tgx.numpy(), rtol=1e-12)
    np.testing.assert_allclose(gh.numpy(), tgh.numpy(), rtol=1e-12)
    assert x.grad is None and w.grad.tolist() == [10.0, 10.0]  # untouched
    go = np.array([1.0, -2.0])
    (gw,) = tg.autograd.grad(x @ w, w, grad_outputs=tg.tensor(go))
    (tgw,) = torch.autograd.grad(tx @ tw, tw, grad_outputs=torch.tensor(go))
    np.testing.assert_allclose(gw.numpy(), tgw.numpy(), rtol=1e-12)
    unused = tg.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="not used"):
        tg.autograd.grad((x * 2).sum(), [unused])
    assert tg.autograd.grad((x * 2).sum(), [unused], allow_unused=True) == (None,)
    with pytest.raises(NotImplementedError, match="create_graph"):
        tg.autograd.grad((x * 2).sum(), [x], create_graph=True)
    assert tg.autograd.no_grad is tg.no_grad and tg.autograd.detect_anomaly is tg.detect_anomaly


@pytest.mark.parametrize("p", [2, 1, math.inf, -math.inf, "fro"])
@pytest.mark.parametrize("dim,keepdim", [(None, False), (1, False), (0, True)])
def test_norm_value_and_gradient(p, dim, keepdim):
    if p == "fro" and dim is not None:
        return
    a = np.array([[0.3, -1.2, 2.5], [2.0, 0.5, -0.1]])
    x, tx = tg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    out = tg.norm(x, p, dim, keepdim)
    tout = torch.norm(tx, p, dim, keepdim)
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-12)
    assert out.shape == tuple(tout.shape)
    w = np.linspace(0.5, 1.5, tout.numel()).reshape(tout.shape)
    (out * tg.tensor(w)).sum().backward()
    (tout * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(x.norm(p, dim, keepdim).numpy(), tout.detach().numpy(), rtol=1e-12)


def test_function_spellings():
    a = np.arange(24.0).reshape(2, 3, 4) / 7
    b = np.arange(40.0).reshape(2, 4, 5) / 9
    t, tt = tg.tensor(a), torch.tensor(a)
    np.testing.assert_allclose(tg.bmm(t, tg.tensor(b)).numpy(), torch.bmm(tt, torch.tensor(b)).numpy(), rtol=1e-13)
    np.testing.assert_allclose(tg.mm(t[0], tg.tensor(b[0])).numpy(), torch.mm(tt[0], torch.tensor(b[0])).numpy(),
                               rtol=1e-13)
    with pytest.raises(tg.OpError, match="mm"):
        tg.mm(t, t)
    same(tg.flip(t, (0, 2)), torch.flip(tt, (0, 2)))
    same(tg.narrow(t, 2, 1, 2), torch.narrow(tt, 2, 1, 2))
    np.testing.assert_allclose(tg.logsumexp(t, 1).numpy(), torch.logsumexp(tt, 1).numpy(), rtol=1e-13)
    np.testing.assert_allclose(tg.logsumexp(t, -1, True).numpy(), torch.logsumexp(tt, -1, True).numpy(), rtol=1e-13)


def test_default_dtype_reaches_layers():
    previous = tg.get_default_dtype()
    tg.set_default_dtype(tg.float64)
    try:
        layers = [nn.Linear(2, 3), nn.Embedding(4, 2), nn.RNN(2, 3), nn.LSTM(2, 3, 2), nn.GRU(2, 3),
                  nn.RNNCell(2, 3), nn.LSTMCell(2, 3), nn.GRUCell(2, 3)]
        if hasattr(nn, "PeepholeLSTM"):
            layers.append(nn.PeepholeLSTM(2, 3))
        for layer in layers:
            assert {p.dtype for p in layer.parameters()} == {np.dtype(np.float64)}, type(layer).__name__
        w = tg.empty(3, 4)
        assert w.dtype == np.float64
        nn.init.xavier_uniform_(w)
        assert w.dtype == np.float64
    finally:
        tg.set_default_dtype(previous)
    assert {p.dtype for p in nn.Linear(2, 3).parameters()} == {np.dtype(previous)}


def test_linear_refuses_integer_input():
    with pytest.raises(tg.OpError, match="Linear"):
        nn.Linear(2, 3)(tg.tensor([[1, 2]]))
    with pytest.raises(tg.OpError, match="Linear"):
        F.linear(tg.tensor([[1, 2]]), tg.zeros(3, 2))


def test_lstm_proj_size_refused():
    with pytest.raises(NotImplementedError, match="LSTM.*proj_size"):
        nn.LSTM(4, 8, proj_size=2)
    assert nn.LSTM(4, 8, proj_size=0).hidden_size == 8


def test_relu_gives_positive_zero():
    out = F.relu(tg.tensor([-1.0, -0.0, 2.0, np.nan]))
    ref = torch.relu(torch.tensor([-1.0, -0.0, 2.0, np.nan]))
    np.testing.assert_array_equal(np.signbit(out.numpy()[:1]), np.signbit(ref.numpy()[:1]))
    np.testing.assert_array_equal(out.numpy(), ref.numpy())
    assert str(F.relu(tg.tensor([-1.0])).tolist()) == "[0.0]"


def _check_fn(ours, theirs, a, rtol=1e-12, atol=1e-15):
    """Values and input gradients (weighted sum) of ours(x) against theirs(torch x), float64."""
    x, tx = tg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    out, tout = ours(x), theirs(tx)
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=rtol, atol=atol)
    w = np.linspace(-1.0, 2.0, tout.numel()).reshape(tuple(tout.shape))
    (out * tg.tensor(w)).sum().backward()
    (tout * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=rtol, atol=atol)


A = np.array([[-30.0, -3.2, -0.7, 0.0, 0.4], [1.3, 2.9, 9.5, 25.0, -1e-3]])


@pytest.mark.parametrize("kwargs", [{}, {"beta": 2.0}, {"beta": 0.5, "threshold": 1.0}])
def test_softplus(kwargs):
    _check_fn(lambda x: F.softplus(x, **kwargs), lambda x: torch.nn.functional.softplus(x, **kwargs), A)
    _check_fn(nn.Softplus(**kwargs), torch.nn.Softplus(**kwargs), A)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu(approximate):
    _check_fn(lambda x: F.gelu(x, approximate=approximate),
              lambda x: torch.nn.functional.gelu(x, approximate=approximate), A / 4)
    _check_fn(nn.GELU(approximate), torch.nn.GELU(approximate), A / 4)


def test_erf_log1p():
    _check_fn(tg.erf, torch.erf, A / 8)
    _check_fn(tg.log1p, torch.log1p, np.abs(A) / 3 + 1e-9)


@pytest.mark.parametrize("slope", [0.01, 0.2])
def test_leaky_relu(slope):
    _check_fn(lambda x: F.leaky_relu(x, slope), lambda x: torch.nn.functional.leaky_relu(x, slope), A)
    _check_fn(nn.LeakyReLU(slope), torch.nn.LeakyReLU(slope), A)


@pytest.mark.parametrize("p,dim", [(2.0, 1), (1.0, 0), (2.0, -1)])
def test_normalize(p, dim):
    _check_fn(lambda x: F.normalize(x, p, dim), lambda x: torch.nn.functional.normalize(x, p, dim), A / 7)
    z = np.zeros((2, 3))
    _check_fn(lambda x: F.normalize(x, p, dim), lambda x: torch.nn.functional.normalize(x, p, dim), z)


@pytest.mark.parametrize("shape,affine,bias", [(5, True, True), ((3, 5), True, False), (5, False, True)])
def test_layer_norm(shape, affine, bias):
    a = np.random.default_rng(0).normal(size=(4, 3, 5))
    ours = nn.LayerNorm(shape, eps=1e-4, elementwise_affine=affine, bias=bias, dtype=tg.float64)
    theirs = torch.nn.LayerNorm(shape, eps=1e-4, elementwise_affine=affine, bias=bias, dtype=torch.float64)
    if affine:
        g = np.random.default_rng(1).normal(size=theirs.weight.shape)
        with torch.no_grad():
            theirs.weight.copy_(torch.tensor(g))
        ours.weight = nn.Parameter(tg.tensor(g))
    _check_fn(ours, theirs, a)
    if affine:
        (ours(tg.tensor(a)) ** 2).sum().backward()
        (theirs(torch.tensor(a)) ** 2).sum().backward()
        np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-11)
        if bias:
            np.testing.assert_allclose(ours.bias.grad.numpy(), theirs.bias.grad.numpy(), rtol=1e-11)
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())
    with pytest.raises(tg.OpError, match="LayerNorm"):
        ours(tg.zeros(2, 4))
    previous = tg.get_default_dtype()
    tg.set_default_dtype(tg.float64)
    try:
        assert nn.LayerNorm(3).weight.dtype == np.float64
    finally:
        tg.set_default_dtype(previous)


def test_tensor_legacy_sizes_form():
    t = tg.Tensor(4, 3)
    assert t.shape == (4, 3) and t.dtype == tg.get_default_dtype() and not t.requires_grad
    assert t.tolist() == [[0.0] * 3] * 4
    assert tg.Tensor(2, 3, 4, 5, 6).shape == (2, 3, 4, 5, 6)
    w = nn.Parameter(tg.Tensor(4 * 3, 2))  # the LSTM-from-scratch idiom
    nn.init.uniform_(w, -0.1, 0.1)
    assert w.requires_grad and w.shape == (12, 2) and float(w.abs().max()) <= 0.1
    previous = tg.get_default_dtype()
    tg.set_default_dtype(tg.float64)
    try:
        assert tg.Tensor(2, 2).dtype == np.float64
    finally:
        tg.set_default_dtype(previous)
    # the data form is unchanged
    x = tg.Tensor([1.0, 2.0], True)
    assert x.requires_grad and x.shape == (2,)
    assert tg.Tensor(3).shape == () and tg.Tensor([1, 2]).dtype == np.int64  # keeps the data's dtype
    assert tg.Tensor([1, 2], dtype=tg.float64).dtype == np.float64
    with pytest.raises(TypeError, match="sizes must be ints"):
        tg.Tensor(2, 3, "float32")
    with pytest.raises(ValueError, match="negative"):
        tg.Tensor(2, -3)


@pytest.mark.parametrize("name,kwargs", [
    ("NAdam", {}),
    ("NAdam", {"lr": 0.01, "betas": (0.8, 0.95), "weight_decay": 0.1, "momentum_decay": 0.01}),
    ("NAdam", {"weight_decay": 0.05, "decoupled_weight_decay": True, "maximize": True}),
    ("Adamax", {}),
    ("Adamax", {"lr": 0.05, "betas": (0.7, 0.9), "eps": 1e-3, "weight_decay": 0.1}),
    ("Adamax", {"maximize": True}),
])
def test_nadam_adamax_match_torch(name, kwargs):
    rng = np.random.default_rng(3)
    w0, b0 = rng.normal(size=(3, 4)), rng.normal(size=(3,))
    ws = [tg.tensor(w0, requires_grad=True), tg.tensor(b0, requires_grad=True)]
    ts = [torch.tensor(w0, requires_grad=True), torch.tensor(b0, requires_grad=True)]
    opt = getattr(tg.optim, name)(ws, **kwargs)
    topt = getattr(torch.optim, name)(ts, **kwargs)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # torch keeps NAdam's mu_product in the default dtype (float32: ~1e-10 off)
    try:
        _run_both(rng, ws, ts, opt, topt)
    finally:
        torch.set_default_dtype(previous)
    # the state round-trips through state_dict / load_state_dict
    fresh = getattr(tg.optim, name)([tg.tensor(w0, requires_grad=True), tg.tensor(b0, requires_grad=True)], **kwargs)
    fresh.load_state_dict(opt.state_dict())
    assert sorted(fresh.state_dict()["state"][0]) == sorted(topt.state_dict()["state"][0])
    assert fresh.state_dict()["state"][0]["step"] == 6


def _run_both(rng, ws, ts, opt, topt):
    for _ in range(6):
        x = rng.normal(size=(5, 4))
        for params, o, lib in ((ws, opt, tg), (ts, topt, torch)):
            o.zero_grad()
            out = (lib.tensor(x) @ params[0].T + params[1]).tanh()
            ((out - 0.3) ** 2).sum().backward()
            o.step()
        for a, b in zip(ws, ts, strict=True):
            np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=0, atol=1e-10)


def test_weighted_random_sampler():
    from tinygrad_rnn.utils.data import DataLoader, TensorDataset, WeightedRandomSampler

    weights = [0.1, 0.0, 0.6, 0.3]
    s = WeightedRandomSampler(weights, 20000, generator=0)
    assert len(s) == 20000
    counts = np.bincount(list(s), minlength=4) / 20000
    np.testing.assert_allclose(counts, weights, atol=0.02)
    assert counts[1] == 0
    once = list(WeightedRandomSampler(tg.tensor(weights), 3, replacement=False, generator=1))
    assert sorted(once) == [0, 2, 3]
    assert list(WeightedRandomSampler(weights, 5, generator=7)) == list(WeightedRandomSampler(weights, 5, generator=7))
    for bad in ({"num_samples": 0}, {"num_samples": 2.0}, {"num_samples": True}):
        with pytest.raises(ValueError, match="num_samples"):
            WeightedRandomSampler(weights, **bad)
    with pytest.raises(ValueError, match="replacement"):
        WeightedRandomSampler(weights, 2, replacement=1)
    with pytest.raises(ValueError, match="without replacement"):
        WeightedRandomSampler(weights, 4, replacement=False)
    with pytest.raises(ValueError, match="non-negative"):
        WeightedRandomSampler([1.0, -1.0], 2)
    sampler = WeightedRandomSampler(weights, 6, generator=2)
    loader = DataLoader(TensorDataset(tg.arange(4)), batch_size=2, sampler=sampler)
    assert sum(len(b[0]) for b in loader) == 6
    torch_s = torch.utils.data.WeightedRandomSampler(weights, 6)
    assert len(torch_s) == len(WeightedRandomSampler(weights, 6))
