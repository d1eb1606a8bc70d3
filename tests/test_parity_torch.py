"""Parity with PyTorch (CPU): recurrent cells and layers, Linear, Embedding, cross_entropy, SGD, Adam and
clip_grad_norm_ give PyTorch's numbers, forward and backward.

Each recurrent case loads one PyTorch module's state dict (converted to NumPy) into ours, runs both on the
same input and initial states, backpropagates the same random scalar loss
``Σ output⊙W_o + Σ h_n⊙W_h (+ Σ c_n⊙W_c)`` and compares outputs, final states and the gradients of every
parameter, the input and the initial states. The error of an array is normwise relative,
``max|ours - torch| / max|torch|``: at most 1e-10 in float64 and 1e-5 in float32.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import functional as F
from tinygrad_rnn import nn, optim

torch = pytest.importorskip("torch")

TOL = {np.float64: 1e-10, np.float32: 1e-5}
TORCH_DTYPE = {np.float64: torch.float64, np.float32: torch.float32}
DTYPES = [np.float64, np.float32]
KINDS = ["RNN_tanh", "RNN_relu", "LSTM", "GRU"]


def list_product(*iterables):
    """``itertools.product`` as a list (pytest wants a sequence, not an iterator)."""
    return list(itertools.product(*iterables))


def rel_err(ours, ref) -> float:
    """``max|ours - ref| / max|ref|`` (``max|ours|`` when ``ref`` is all zeros); shapes must match."""
    ours = ours.numpy() if isinstance(ours, tg.Tensor) else np.asarray(ours)
    ref = ref.detach().numpy() if isinstance(ref, torch.Tensor) else np.asarray(ref)
    assert ours.shape == ref.shape, f"shape {ours.shape} != torch's {ref.shape}"
    ours, ref = ours.astype(np.float64), ref.astype(np.float64)
    if ours.size == 0:
        return 0.0
    scale = np.max(np.abs(ref))
    diff = np.max(np.abs(ours - ref))
    return float(diff / scale) if scale > 0 else float(diff)


def check(errors: dict[str, float], dtype) -> float:
    """Assert every error is within the dtype's tolerance; return the worst."""
    bad = {k: v for k, v in errors.items() if not v <= TOL[dtype]}
    assert not bad, f"beyond {TOL[dtype]:g} relative ({np.dtype(dtype).name}): {bad}"
    return max(errors.values())


def make_pair(kind: str, cell: bool, dtype, **kwargs):
    """A PyTorch module and ours with the same parameters (loaded from PyTorch's state dict as NumPy)."""
    torch.manual_seed(0)
    extra = {"nonlinearity": kind[4:]} if kind.startswith("RNN") else {}
    name = kind[:3] if kind.startswith("RNN") else kind
    name += "Cell" if cell else ""
    theirs = getattr(torch.nn, name)(**kwargs, **extra).to(TORCH_DTYPE[dtype])
    ours = getattr(nn, name)(**kwargs, **extra, dtype=dtype)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return theirs, ours


def backprop_both(outs_t, outs_g, rng, dtype):
    """Backpropagate ``Σ_k Σ out_k ⊙ W_k`` (random W_k) through both frameworks."""
    loss_t, loss_g = 0, 0
    for ot, og in zip(outs_t, outs_g, strict=False):
        w = rng.standard_normal(tuple(ot.shape)).astype(dtype)
        loss_t = loss_t + (ot * torch.from_numpy(w)).sum()
        loss_g = loss_g + (og * w).sum()
    loss_t.backward()
    loss_g.backward()


def grad_errors(theirs, ours, leaves) -> dict[str, float]:
    """Errors of every parameter's gradient (names must agree) and of the named leaf pairs."""
    errors = {}
    named_t, named_g = list(theirs.named_parameters()), list(ours.named_parameters())
    assert [n for n, _ in named_t] == [n for n, _ in named_g]
    for (name, pt), (_, pg) in zip(named_t, named_g, strict=False):
        errors[f"grad {name}"] = rel_err(pg.grad, pt.grad)
    for name, (lt, lg) in leaves.items():
        errors[f"grad {name}"] = rel_err(lg.grad, lt.grad)
    return errors


# --------------------------------------------------------------------------------------------------
# Recurrent cells
# --------------------------------------------------------------------------------------------------


def cell_errors(kind: str, bias: bool, batched: bool, given: bool, dtype, seed: int = 0) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    in_size, hidden, batch = 4, 5, 3
    theirs, ours = make_pair(kind, True, dtype, input_size=in_size, hidden_size=hidden, bias=bias)
    lead = (batch,) if batched else ()
    leaves = {"x": rng.standard_normal(lead + (in_size,)).astype(dtype)}
    if given:
        leaves["h"] = rng.standard_normal(lead + (hidden,)).astype(dtype)
        if kind == "LSTM":
            leaves["c"] = rng.standard_normal(lead + (hidden,)).astype(dtype)
    pairs = {k: (torch.tensor(v, requires_grad=True), tg.Tensor(v, requires_grad=True)) for k, v in leaves.items()}
    state = [n for n in ("h", "c") if n in pairs]
    x_t, x_g = pairs["x"]
    if kind == "LSTM":
        hx_t = tuple(pairs[n][0] for n in state) if given else None
        hx_g = tuple(pairs[n][1] for n in state) if given else None
        outs_t, outs_g = theirs(x_t, hx_t), ours(x_g, hx_g)
    else:
        outs_t = (theirs(x_t, pairs["h"][0] if given else None),)
        outs_g = (ours(x_g, pairs["h"][1] if given else None),)
    errors = {f"output {i}": rel_err(og, ot) for i, (ot, og) in enumerate(zip(outs_t, outs_g, strict=False))}
    backprop_both(outs_t, outs_g, rng, dtype)
    return {**errors, **grad_errors(theirs, ours, pairs)}


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("kind,bias,batched,given", list_product(KINDS, [True, False], [True, False],
                                                                      [True, False]))
def test_cell_matches_torch(kind, bias, batched, given, dtype):
    check(cell_errors(kind, bias, batched, given, dtype), dtype)


# --------------------------------------------------------------------------------------------------
# Recurrent layers
# --------------------------------------------------------------------------------------------------

T, B, IN, HID = 5, 4, 3, 4
LENGTHS = np.array([3, 5, 1, 4])  # unsorted, including 1 and T


def layer_errors(kind: str, num_layers: int, bidirectional: bool, batch_first: bool, mode: str, dtype,
                 bias: bool = True, dropout: float = 0.0, seed: int = 0) -> dict[str, float]:
    """Compare one layer configuration; ``mode`` is a '+'-joined subset of {unbatched, h0, lengths}."""
    flags = set(mode.split("+")) - {"plain"}
    rng = np.random.default_rng(seed)
    theirs, ours = make_pair(kind, False, dtype, input_size=IN, hidden_size=HID, num_layers=num_layers, bias=bias,
                             batch_first=batch_first, dropout=dropout, bidirectional=bidirectional)
    theirs.eval(), ours.eval()
    unbatched, lengths = "unbatched" in flags, "lengths" in flags
    states = num_layers * (2 if bidirectional else 1)
    x_shape = (T, IN) if unbatched else ((B, T, IN) if batch_first else (T, B, IN))
    h_shape = (states, HID) if unbatched else (states, B, HID)
    leaves = {"x": rng.standard_normal(x_shape).astype(dtype)}
    if "h0" in flags:
        leaves["h0"] = rng.standard_normal(h_shape).astype(dtype)
        if kind == "LSTM":
            leaves["c0"] = rng.standard_normal(h_shape).astype(dtype)
    pairs = {k: (torch.tensor(v, requires_grad=True), tg.Tensor(v, requires_grad=True)) for k, v in leaves.items()}
    if "h0" not in flags:
        hx_t = hx_g = None
    elif kind == "LSTM":
        hx_t, hx_g = (pairs["h0"][0], pairs["c0"][0]), (pairs["h0"][1], pairs["c0"][1])
    else:
        hx_t, hx_g = pairs["h0"]
    x_t, x_g = pairs["x"]
    if lengths:
        packed = torch.nn.utils.rnn.pack_padded_sequence(x_t, torch.from_numpy(LENGTHS), batch_first=batch_first,
                                                         enforce_sorted=False)
        out_packed, final_t = theirs(packed, hx_t)
        out_t, _ = torch.nn.utils.rnn.pad_packed_sequence(out_packed, batch_first=batch_first, total_length=T)
    else:
        out_t, final_t = theirs(x_t, hx_t)
    out_g, final_g = ours(x_g, hx_g, lengths=LENGTHS if lengths else None)
    final_t = final_t if kind == "LSTM" else (final_t,)
    final_g = final_g if kind == "LSTM" else (final_g,)
    outs_t, outs_g = (out_t, *final_t), (out_g, *final_g)
    errors = {name: rel_err(og, ot) for name, ot, og in zip(["output", "h_n", "c_n"], outs_t, outs_g, strict=False)}
    backprop_both(outs_t, outs_g, rng, dtype)
    return {**errors, **grad_errors(theirs, ours, pairs)}


MODES = ["plain", "unbatched", "h0", "lengths", "lengths+h0"]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("kind,num_layers,bidirectional,batch_first,mode",
                         [c for c in itertools.product(KINDS, [1, 2], [False, True], [False, True], MODES)
                          if not (c[4] == "unbatched" and c[3])])  # batch_first means nothing unbatched
def test_layer_matches_torch(kind, num_layers, bidirectional, batch_first, mode, dtype):
    check(layer_errors(kind, num_layers, bidirectional, batch_first, mode, dtype), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("kind", KINDS)
def test_layer_without_bias_matches_torch(kind, dtype):
    check(layer_errors(kind, 2, True, False, "lengths+h0", dtype, bias=False), dtype)


@pytest.mark.parametrize("kind", KINDS)
def test_layer_with_dropout_in_eval_mode_matches_torch(kind):
    check(layer_errors(kind, 2, True, True, "lengths", np.float64, dropout=0.5), np.float64)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_torch_tensors_load_directly_and_our_state_dict_loads_into_torch(kind):
    torch.manual_seed(1)
    theirs = getattr(torch.nn, kind)(3, 4, num_layers=2, bidirectional=True).double()
    ours = getattr(nn, kind)(3, 4, num_layers=2, bidirectional=True, dtype=np.float64)
    ours.load_state_dict(theirs.state_dict())  # torch tensors, no conversion
    assert list(ours.state_dict()) == list(theirs.state_dict())
    back = getattr(torch.nn, kind)(3, 4, num_layers=2, bidirectional=True).double()
    back.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in ours.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((6, 2, 3))
    assert rel_err(ours(tg.Tensor(x))[0], back(torch.from_numpy(x))[0]) <= 1e-12


# --------------------------------------------------------------------------------------------------
# Linear, Embedding, cross_entropy
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("bias,lead", list_product([True, False], [(), (5,), (2, 3)]))
def test_linear_matches_torch(bias, lead, dtype):
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    theirs = torch.nn.Linear(4, 3, bias=bias).to(TORCH_DTYPE[dtype])
    ours = nn.Linear(4, 3, bias=bias, dtype=dtype)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = rng.standard_normal(lead + (4,)).astype(dtype)
    pairs = {"x": (torch.tensor(x, requires_grad=True), tg.Tensor(x, requires_grad=True))}
    out_t, out_g = theirs(pairs["x"][0]), ours(pairs["x"][1])
    errors = {"output": rel_err(out_g, out_t)}
    backprop_both([out_t], [out_g], rng, dtype)
    check({**errors, **grad_errors(theirs, ours, pairs)}, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_embedding_matches_torch(dtype):
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    theirs = torch.nn.Embedding(7, 3).to(TORCH_DTYPE[dtype])
    ours = nn.Embedding(7, 3, dtype=dtype)
    ours.load_state_dict(theirs.state_dict())
    ids = np.array([[0, 6, 2, 2], [2, 5, 0, 2]])  # repeated ids accumulate
    out_t, out_g = theirs(torch.from_numpy(ids)), ours(ids)
    errors = {"output": rel_err(out_g, out_t)}
    backprop_both([out_t], [out_g], rng, dtype)
    check({**errors, **grad_errors(theirs, ours, {})}, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("reduction,ignore_index", list_product(["mean", "sum", "none"], [-100, 2]))
def test_cross_entropy_matches_torch(reduction, ignore_index, dtype):
    rng = np.random.default_rng(0)
    logits = (rng.standard_normal((6, 5)) * 4).astype(dtype)
    target = np.array([0, 4, 2, ignore_index, 1, 2])  # with ignore_index=2 three targets are ignored
    lt, lg = torch.tensor(logits, requires_grad=True), tg.Tensor(logits, requires_grad=True)
    loss_t = torch.nn.functional.cross_entropy(lt, torch.from_numpy(target), reduction=reduction,
                                               ignore_index=ignore_index)
    loss_g = F.cross_entropy(lg, target, reduction=reduction, ignore_index=ignore_index)
    errors = {"loss": rel_err(loss_g, loss_t)}
    backprop_both([loss_t], [loss_g], rng, dtype)
    errors["grad logits"] = rel_err(lg.grad, lt.grad)
    check(errors, dtype)


# --------------------------------------------------------------------------------------------------
# Optimizers and gradient clipping
# --------------------------------------------------------------------------------------------------

SHAPES = [(3, 4), (4,), (2, 2, 2)]


def optimizer_errors(make_theirs, make_ours, dtype, steps: int = 4, seed: int = 0) -> dict[str, float]:
    """Run ``steps`` updates with the same random gradients; errors of the parameters after each step."""
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    params_t = [torch.tensor(a, requires_grad=True) for a in init]
    params_g = [nn.Parameter(a) for a in init]
    opt_t, opt_g = make_theirs(params_t), make_ours(params_g)
    errors = {}
    for step in range(steps):
        for pt, pg in zip(params_t, params_g, strict=False):
            g = rng.standard_normal(pt.shape).astype(dtype)
            pt.grad, pg.grad = torch.from_numpy(g.copy()), tg.Tensor(g.copy())
        opt_t.step()
        opt_g.step()
        for i, (pt, pg) in enumerate(zip(params_t, params_g, strict=False)):
            errors[f"step {step + 1} param {i}"] = rel_err(pg, pt)
    return errors


SGD_CONFIGS = [{"momentum": 0.0}, {"momentum": 0.9}, {"momentum": 0.9, "dampening": 0.3},
               {"momentum": 0.8, "nesterov": True}, {"momentum": 0.9, "weight_decay": 0.1},
               {"momentum": 0.7, "dampening": 0.2, "weight_decay": 0.05},
               {"momentum": 0.9, "nesterov": True, "weight_decay": 0.1}, {"weight_decay": 0.1}]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("config", SGD_CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_sgd_matches_torch(config, dtype):
    check(optimizer_errors(lambda p: torch.optim.SGD(p, lr=0.1, **config),
                           lambda p: optim.SGD(p, lr=0.1, **config), dtype), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("weight_decay,amsgrad", list_product([0.0, 0.1], [False, True]))
def test_adam_matches_torch(weight_decay, amsgrad, dtype):
    config = {"lr": 0.01, "betas": (0.8, 0.95), "eps": 1e-6, "weight_decay": weight_decay, "amsgrad": amsgrad}
    check(optimizer_errors(lambda p: torch.optim.Adam(p, **config), lambda p: optim.Adam(p, **config), dtype,
                           steps=5), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("norm_type,max_norm", list_product([2.0, math.inf, 1.0], [0.5, 1e3]))
def test_clip_grad_norm_matches_torch(norm_type, max_norm, dtype):
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    params_t = [torch.zeros(s, dtype=TORCH_DTYPE[dtype], requires_grad=True) for s in SHAPES]
    params_g = [nn.Parameter(np.zeros(s, dtype=dtype)) for s in SHAPES]
    for g, pt, pg in zip(grads, params_t, params_g, strict=False):
        pt.grad, pg.grad = torch.from_numpy(g.copy()), tg.Tensor(g.copy())
    total_t = torch.nn.utils.clip_grad_norm_(params_t, max_norm, norm_type=norm_type)
    total_g = optim.clip_grad_norm_(params_g, max_norm, norm_type=norm_type)
    errors = {"total norm": rel_err(total_g, total_t)}
    for i, (pt, pg) in enumerate(zip(params_t, params_g, strict=False)):
        errors[f"grad {i}"] = rel_err(pg.grad, pt.grad)
    check(errors, dtype)
    clipped = max_norm < float(total_t)
    assert clipped == (max_norm == 0.5)  # both branches are exercised


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_packed_sequence_matches_torch(kind):
    """A PackedSequence made by torch's pack_padded_sequence runs through ours with the same numbers."""
    from tinygrad_rnn.nn.utils.rnn import PackedSequence

    rng = np.random.default_rng(5)
    theirs, ours = make_pair(kind, False, np.float64, input_size=IN, hidden_size=HID, num_layers=2,
                             bidirectional=True)
    x = rng.standard_normal((T, B, IN))
    packed_t = torch.nn.utils.rnn.pack_padded_sequence(torch.from_numpy(x), torch.from_numpy(LENGTHS),
                                                       enforce_sorted=False)
    packed_g = PackedSequence(tg.Tensor(packed_t.data.numpy()), packed_t.batch_sizes.numpy(),
                              packed_t.sorted_indices.numpy(), packed_t.unsorted_indices.numpy())
    (out_t, state_t), (out_g, state_g) = theirs(packed_t), ours(packed_g)
    errors = {"output": rel_err(out_g.data, out_t.data)}
    for i, (st, sg) in enumerate(zip(*(s if isinstance(s, tuple) else (s,) for s in (state_t, state_g)), strict=False)):
        errors[f"state {i}"] = rel_err(sg, st)
    check(errors, np.float64)
