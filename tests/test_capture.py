"""tinygrad_rnn.capture: a recorded step replayed on new data equals eager bitwise; what it cannot replay is refused.

Each property test builds the same model twice from one seed, trains one eagerly and one through a captured
step on the same batches (optimizer steps in between, dropout reseeded identically), and compares the loss,
every gradient, the parameters and the random generator's state afterwards with ``array_equal``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_rnn as tg
from tinygrad_rnn import functional as F
from tinygrad_rnn import nn
from tinygrad_rnn.capture import CaptureError, capture


class Model(nn.Module):
    """Embedding -> recurrent layer -> Linear, for next-token cross-entropy."""

    def __init__(self, kind: str, vocab: int, emb: int, hidden: int, layers: int, bidirectional: bool,
                 batch_first: bool, dropout: float, dtype):
        super().__init__()
        tg.manual_seed(0)
        self.embed = nn.Embedding(vocab, emb, dtype=dtype)
        kwargs = dict(num_layers=layers, bidirectional=bidirectional, batch_first=batch_first, dropout=dropout,
                      dtype=dtype)
        if kind in ("tanh", "relu"):
            self.rnn = nn.RNN(emb, hidden, nonlinearity=kind, **kwargs)
        else:
            self.rnn = getattr(nn, kind)(emb, hidden, **kwargs)
        self.head = nn.Linear(hidden * (2 if bidirectional else 1), vocab, dtype=dtype)
        self.vocab = vocab

    def loss(self, x, y, lengths=None):
        out, _ = self.rnn(self.embed(x), lengths=lengths)
        logits = self.head(out).reshape(-1, self.vocab)
        return F.cross_entropy(logits, y.reshape(-1))


def _step(model):
    def step(x, y, lengths=None):
        loss = model.loss(x, y, lengths)
        loss.backward()
        return loss
    return step


def _grads(model):
    return [None if p.grad is None else p.grad.numpy().copy() for p in model.parameters()]


def _assert_same(a, b, what):
    assert len(a) == len(b)
    for i, (u, v) in enumerate(zip(a, b, strict=False)):
        assert (u is None) == (v is None), f"{what} {i}: one is None"
        if u is not None:
            assert u.dtype == v.dtype and u.shape == v.shape, f"{what} {i}: {u.dtype}{u.shape} vs {v.dtype}{v.shape}"
            assert np.array_equal(u, v, equal_nan=True), f"{what} {i}: max diff {np.nanmax(np.abs(u - v))}"


configs = st.fixed_dictionaries({
    "kind": st.sampled_from(["tanh", "relu", "LSTM", "GRU"]),
    "layers": st.integers(1, 2),
    "bidirectional": st.booleans(),
    "batch_first": st.booleans(),
    "lengths": st.booleans(),
    "dtype": st.sampled_from([np.float32, np.float64]),
    "dropout": st.sampled_from([0.0, 0.5]),
    "T": st.integers(1, 5),
    "B": st.integers(1, 3),
    "seed": st.integers(0, 2**16),
})


@settings(max_examples=12)
@given(configs)
def test_replay_equals_eager_bitwise_over_training_steps(cfg):
    vocab, emb, hidden = 7, 4, 5
    models = [Model(cfg["kind"], vocab, emb, hidden, cfg["layers"], cfg["bidirectional"], cfg["batch_first"],
                    cfg["dropout"], cfg["dtype"]) for _ in range(2)]
    eager, captured = models
    step = capture(_step(captured))
    opts = [tg.optim.SGD(m.parameters(), lr=0.1, momentum=0.9) for m in models]
    rng = np.random.default_rng(cfg["seed"])
    T, B = cfg["T"], cfg["B"]
    shape = (B, T) if cfg["batch_first"] else (T, B)
    for call in range(3):
        x = tg.tensor(rng.integers(0, vocab, shape))
        y = tg.tensor(rng.integers(0, vocab, shape))
        lengths = rng.integers(1, T + 1, B) if cfg["lengths"] else None
        results = []
        for model, fn in ((eager, _step(eager)), (captured, step)):
            tg.manual_seed(100 + call)  # the same dropout masks for both
            if call != 1:  # call 1 accumulates into the gradients of call 0, as eager does
                for p in model.parameters():
                    p.grad = None
            loss = fn(x, y, lengths)
            results.append((loss.numpy().copy(), _grads(model), tg.default_rng().random(3)))
        (l1, g1, r1), (l2, g2, r2) = results
        _assert_same([l1], [l2], "loss")
        _assert_same(g1, g2, "grad")
        _assert_same([r1], [r2], "generator state after the call")
        for o in opts:
            o.step()
        _assert_same([p.numpy() for p in eager.parameters()], [p.numpy() for p in captured.parameters()], "param")
    assert step.stats["replayed"] >= 1 or cfg["lengths"]


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "tanh"])
def test_sequence_regression_with_mse_and_adam_replays_bitwise(kind):
    """A sunspots-like model: float64 series in, mse_loss, Adam and clipping between the calls."""
    def build():
        tg.manual_seed(3)
        f64 = {"dtype": tg.float64}  # float64 series in: the layers must be float64 too (as in PyTorch)
        rnn = nn.LSTM(1, 6, **f64) if kind == "LSTM" else nn.GRU(1, 6, **f64) if kind == "GRU" else nn.RNN(1, 6, **f64)
        return rnn, nn.Linear(6, 1, **f64)

    def make_step(rnn, fc):
        def step(x, target):
            out, _ = rnn(x)
            loss = F.mse_loss(fc(out[-1]), target)
            loss.backward()
            return loss, fc.bias.grad
        return step

    (r1, f1), (r2, f2) = build(), build()
    p1 = list(r1.parameters()) + list(f1.parameters())
    p2 = list(r2.parameters()) + list(f2.parameters())
    eager, step = make_step(r1, f1), capture(make_step(r2, f2))
    o1, o2 = tg.optim.Adam(p1, lr=0.01), tg.optim.Adam(p2, lr=0.01)
    rng = np.random.default_rng(0)
    for _ in range(4):
        x = tg.tensor(rng.standard_normal((9, 4, 1)))
        target = tg.tensor(rng.standard_normal((4, 1)))
        for o in (o1, o2):
            o.zero_grad()
        (l1, b1), (l2, b2) = eager(x, target), step(x, target)
        _assert_same([l1.numpy(), b1.numpy()], [l2.numpy(), b2.numpy()], "loss, bias grad")
        _assert_same([p.grad.numpy() for p in p1], [p.grad.numpy() for p in p2], "grad")
        for params, o in ((p1, o1), (p2, o2)):
            tg.optim.clip_grad_norm_(params, 0.5)
            o.step()
    assert step.stats == {"recorded": 1, "replayed": 3}


def test_a_new_shape_records_a_new_program_and_the_cache_is_bounded():
    model = Model("GRU", 6, 3, 4, 1, False, False, 0.0, np.float64)
    step = capture(_step(model), cache_size=2)
    rng = np.random.default_rng(0)
    for T in (4, 4, 3, 4, 2, 3):
        x, y = (tg.tensor(rng.integers(0, 6, (T, 2))) for _ in range(2))
        model.zero_grad()
        loss = step(x, y)
        expected = model.loss(x, y)
        assert loss.item() == expected.item()
    assert step.stats == {"recorded": 4, "replayed": 2}  # T=4 replayed once; 3 evicted by 2, then re-recorded


def test_lengths_as_arrays_are_replayed_and_as_lists_are_part_of_the_signature():
    model = Model("LSTM", 6, 3, 4, 1, True, False, 0.0, np.float64)
    step = capture(_step(model))
    rng = np.random.default_rng(1)
    x, y = (tg.tensor(rng.integers(0, 6, (5, 3))) for _ in range(2))
    cases = ([5, 2, 3], [5, 2, 3], [1, 5, 4], np.array([5, 2, 3]), np.array([2, 5, 1]), np.array([5, 5, 5]),
             tg.tensor([1, 1, 4]))
    for lengths in cases:
        model.zero_grad()
        step(x, y, lengths)
        got = _grads(model)
        model.zero_grad()
        _step(model)(x, y, lengths)
        _assert_same(got, _grads(model), "grad")
    # lists are arguments by value (2 programs); an array or tensor of lengths is data (1 program each, replayed)
    assert step.stats == {"recorded": 4, "replayed": 3}
    with pytest.raises(tg.OpError, match="every length must lie in"):
        step(x, y, np.array([6, 1, 1]))  # checked at a replay too


def test_replaced_parameter_arrays_are_relinked_and_views_follow():
    model = Model("LSTM", 5, 3, 4, 1, False, False, 0.0, np.float32)
    step = capture(_step(model))
    x, y = tg.tensor([[1, 2], [3, 4]]), tg.tensor([[0, 1], [2, 3]])
    step(x, y)
    for p in model.parameters():
        p.array = p.array * np.float32(0.5)  # new array objects (not written in place)
    model.zero_grad()
    loss = step(x, y)
    assert loss.item() == model.loss(x, y).item()
    assert step.stats == {"recorded": 1, "replayed": 1}


def test_gradient_into_a_tensor_argument_and_returned_values():
    w = tg.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)

    @capture
    def f(x):
        y = (x @ w).tanh()
        s = (y * y).sum()
        s.backward()
        return {"s": s, "y": y, "n": 3, "w": w}

    for k in range(3):
        x = tg.tensor(np.full((4, 2), 0.1 * k), requires_grad=True)
        out = f(x)
        x2 = tg.tensor(np.full((4, 2), 0.1 * k), requires_grad=True)
        w_grad = w.grad.numpy().copy()
        w.grad = None
        y2 = (x2 @ w).tanh()
        (y2 * y2).sum().backward()
        assert np.array_equal(x.grad.numpy(), x2.grad.numpy())
        assert np.array_equal(out["y"].numpy(), y2.numpy()) and out["n"] == 3 and out["w"] is w
        assert k == 0 or not out["y"].requires_grad  # replays return tensors without history
        w.grad = tg.tensor(w_grad) if k == 0 else w.grad
    assert f.stats["replayed"] == 2


def test_returned_tensors_do_not_change_at_the_next_call():
    @capture
    def f(x):
        with tg.no_grad():
            return (x * 2).sum()

    a = f(tg.tensor([1.0, 2.0]))
    b = f(tg.tensor([3.0, 4.0]))
    c = f(tg.tensor([5.0, 6.0]))
    assert (a.item(), b.item(), c.item()) == (6.0, 14.0, 22.0)


def test_decorator_with_options_and_on_a_method():
    class Trainer:
        def __init__(self):
            self.w = tg.tensor([1.0, 2.0], requires_grad=True)

        @capture(cache_size=1)
        def step(self, x):
            loss = (self.w * x).sum()
            loss.backward()
            return loss

    t = Trainer()
    assert t.step(tg.tensor([1.0, 1.0])).item() == 3.0
    assert t.step(tg.tensor([2.0, 1.0])).item() == 4.0
    assert np.array_equal(t.w.grad.numpy(), [3.0, 2.0])


# ------------------------------------------------------------------------------------------------ refusals


def _linear_model():
    tg.manual_seed(0)
    return nn.Linear(3, 2)


@pytest.mark.parametrize("read", ["item", "numpy", "bool", "float"])
def test_reading_a_value_inside_is_refused(read):
    fc = _linear_model()

    @capture
    def f(x):
        loss = fc(x).sum()
        if read == "item":
            loss.item()
        elif read == "numpy":
            loss.numpy()
        elif read == "bool":
            if loss:  # bool(tensor)
                pass
        else:
            float(loss)
        loss.backward()
        return loss

    with pytest.raises(CaptureError, match="reads a value"):
        f(tg.ones(4, 3))


def test_random_numbers_outside_an_op_are_refused():
    fc = _linear_model()

    @capture
    def f(x):
        noise = tg.randn(4, 3)
        loss = fc(x + noise).sum()
        loss.backward()
        return loss

    with pytest.raises(CaptureError, match="random numbers"):
        f(tg.ones(4, 3))


def test_an_optimizer_step_inside_is_refused():
    fc = _linear_model()
    opt = tg.optim.SGD(fc.parameters(), lr=0.1)

    @capture
    def f(x):
        loss = fc(x).sum()
        loss.backward()
        opt.step()
        return loss

    with pytest.raises(CaptureError, match="parameter .* changed inside"):
        f(tg.ones(4, 3))


def test_clipping_inside_is_refused():
    fc = _linear_model()

    @capture
    def f(x):
        loss = (fc(x) * 100).sum()
        loss.backward()
        tg.optim.clip_grad_norm_(fc.parameters(), 0.1)
        return loss

    with pytest.raises(CaptureError, match="gradient .* changed inside"):
        f(tg.ones(4, 3))


def test_a_changed_parameter_shape_is_refused_at_the_replay():
    fc = _linear_model()

    @capture
    def f(x):
        loss = fc(x).sum()
        loss.backward()
        return loss

    f(tg.ones(4, 3))
    fc.bias.array = np.zeros(3, dtype=np.float32)
    with pytest.raises(CaptureError, match="parameter recorded with shape"):
        f(tg.ones(4, 3))


def test_history_from_outside_and_live_graphs_are_refused():
    fc = _linear_model()
    h = fc(tg.ones(1, 3))  # a tensor with history made outside

    @capture
    def uses_outside_history(x):
        loss = (fc(x) * h).sum()
        loss.backward()
        return loss

    with pytest.raises(CaptureError, match="history"):
        uses_outside_history(tg.ones(4, 3))
    with pytest.raises(CaptureError, match="history"):
        capture(lambda x: x)(h)

    @capture
    def no_backward(x):
        return fc(x).sum()

    with pytest.raises(CaptureError, match="calls no backward"):
        no_backward(tg.ones(4, 3))


def test_retain_grad_inside_is_refused():
    fc = _linear_model()

    @capture
    def f(x):
        y = fc(x).retain_grad()
        loss = y.sum()
        loss.backward()
        return loss

    with pytest.raises(CaptureError, match="retain_grad"):
        f(tg.ones(4, 3))


def test_values_read_by_value_warn_after_many_recordings():
    fc = _linear_model()

    @capture(cache_size=2)
    def f(x):
        loss = fc(tg.tensor(x)).sum()  # a copy of the argument: read by value, outside the ops
        loss.backward()
        return loss

    with pytest.warns(UserWarning, match="read by value"):
        for k in range(4):
            fc.zero_grad()
            assert f(np.full((2, 3), float(k), dtype=np.float32)).item() == fc(tg.full((2, 3), float(k))).sum().item()


@pytest.mark.parametrize("dtype, bound", [(np.float32, 2.0**-24), (np.float64, 2.0**-53)])
def test_fast_sigmoid_is_opt_in_and_within_its_documented_bound(dtype, bound):
    x_np = np.linspace(-100, 100, 20001).astype(dtype)
    exact = 1 / (1 + np.exp(-x_np.astype(np.longdouble)))
    w = tg.tensor(np.ones_like(x_np), requires_grad=True)

    def f(x):
        y = (x * w).sigmoid()
        y.sum().backward()
        return y

    fast, default = capture(f, fast_sigmoid=True), capture(f)
    x = tg.tensor(x_np)
    for _ in range(2):  # the recording call is eager; the second call replays
        w.grad = None
        y_fast = fast(x).numpy()
        g_fast = w.grad.numpy()
        w.grad = None
        y_default = default(x).numpy()
    assert np.array_equal(y_default, f(x).numpy())  # the default stays bitwise
    assert float(np.max(np.abs(y_fast - exact))) <= bound
    exact_grad = x_np.astype(np.longdouble) * exact * (1 - exact)
    assert float(np.max(np.abs(g_fast - exact_grad))) <= 200 * bound  # |x| ≤ 100 scales the error
    assert not np.array_equal(y_fast, y_default)  # it is a different formula


def test_replay_equals_eager_on_every_device(device):
    """The same program on CuPy (skipped without a GPU): buffers, views and out= calls on the device's arrays."""
    models = []
    for _ in range(2):
        tg.manual_seed(0)
        models.append((nn.Embedding(6, 3, device=device), nn.LSTM(3, 4, bidirectional=True, device=device),
                       nn.Linear(8, 6, device=device)))

    def make(model):
        embed, lstm, head = model

        def step(x, y):
            out, _ = lstm(embed(x))
            loss = F.cross_entropy(head(out).reshape(-1, 6), y)
            loss.backward()
            return loss
        return step

    eager, step = make(models[0]), capture(make(models[1]))
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = tg.tensor(rng.integers(0, 6, (5, 2)), device=device)
        y = tg.tensor(rng.integers(0, 6, 10), device=device)
        grads = []
        for model, fn in ((models[0], eager), (models[1], step)):
            params = [p for m in model for p in m.parameters()]
            for p in params:
                p.grad = None
            loss = fn(x, y)
            grads.append([loss.numpy()] + [p.grad.numpy() for p in params])
        _assert_same(grads[0], grads[1], "loss and grads")
    assert step.stats["replayed"] == 2


def test_in_place_writes_behind_the_tape_are_refused():
    fc = _linear_model()

    @capture
    def f(x):
        with tg.no_grad():
            y = fc(x)
            y.add_(1.0)  # an in-place write into a recorded op's output
        return y

    with pytest.raises(CaptureError, match="in-place op"):
        f(tg.ones(4, 3))

    @capture
    def g(x):
        h = tg.zeros(4, 2)
        h.fill_(2.0)  # a constant made inside, written before any op reads it: fine
        with tg.no_grad():
            return fc(x) * h

    for k in range(3):
        assert np.array_equal(g(tg.full((4, 3), float(k))).numpy(), (fc(tg.full((4, 3), float(k))) * 2.0).numpy())


def test_python_branches_on_computed_comparisons_are_refused():
    """A branch on ``s > 0`` (a comparison outside the tape) would replay the first call's branch: refused."""
    lin = nn.Linear(2, 1)

    @tg.capture
    def step(x):
        out = lin(x)
        s = out.sum()
        loss = (out * 2).sum() if s > 0 else (out * -3).sum()
        loss.backward()
        return loss

    with pytest.raises(tg.CaptureError, match="gt"):
        step(tg.ones(3, 2))


@pytest.mark.parametrize("op", [lambda o: o.argmax(0), lambda o: o.max(0).values, lambda o: o.topk(1).values,
                                lambda o: (o > 0).float() * o, lambda o: o.long().float(),
                                lambda o: o * o.isfinite().all().float(), lambda o: o * (~o.isnan()).float(),
                                lambda o: o.masked_select(o.isfinite()), lambda o: o.nonzero().float()])
def test_ops_that_decide_from_computed_values_are_refused(op):
    lin = nn.Linear(2, 3)

    @tg.capture
    def step(x):
        return op(lin(x)).sum()

    with pytest.raises(tg.CaptureError):
        step(tg.ones(4, 2))


def test_a_mask_from_an_argument_is_keyed_by_its_value():
    """Comparing an argument is fine: its values become part of the program's key (a new value records anew)."""
    w = tg.tensor([1.0, -2.0, 3.0], requires_grad=True)

    def f(x):
        loss = tg.where(x > 0, w * x, w * 0.0).sum()
        loss.backward()
        return loss

    step = tg.capture(f)
    for values in ([1.0, -1.0, 2.0], [-1.0, 1.0, 2.0], [1.0, -1.0, 2.0]):
        w.grad = None
        replayed = step(tg.tensor(values)).item()
        replayed_grad = w.grad.numpy().copy()
        w.grad = None
        eager = f(tg.tensor(values)).item()
        assert replayed == eager and np.array_equal(replayed_grad, w.grad.numpy())


def _gamma(n, dtype):
    u = float(np.finfo(dtype).eps) / 2
    return n * u / (1 - n * u)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fuse_weight_grads_is_one_matmul_within_its_error_bound(dtype):
    """Σ_t h_tᵀ @ g_t as one (H, T·B) @ (T·B, K) product: |fused − eager| ≤ 2·γ_n·Σ_t |h_t|ᵀ|g_t|, n = T·B."""
    T, B, H, K = 50, 4, 6, 5
    rng = np.random.default_rng(0)
    w = tg.tensor(rng.standard_normal((K, H)).astype(dtype), requires_grad=True)

    def f(hs, rs):  # the weight used through one transpose, as the recurrent layers use theirs
        wt = w.T
        loss = None
        for h, r in zip(hs.unbind(0), rs.unbind(0), strict=True):
            term = ((h @ wt) * r).sum()
            loss = term if loss is None else loss + term
        loss.backward()
        return loss

    fused, default = capture(f, fuse_weight_grads=True), capture(f)
    for _ in range(3):
        hs_np = rng.standard_normal((T, B, H)).astype(dtype)
        rs_np = (rng.standard_normal((T, B, K)) * 10.0 ** rng.uniform(-3, 3, (T, 1, 1))).astype(dtype)
        hs, rs = tg.tensor(hs_np), tg.tensor(rs_np)
        w.grad = None
        f(hs, rs)
        g_eager = w.grad.numpy().copy()
        w.grad = None
        default(hs, rs)
        assert np.array_equal(w.grad.numpy(), g_eager)  # the default stays bitwise
        w.grad = None
        fused(hs, rs)
        g_fused = w.grad.numpy().copy()
    exact = np.einsum("tbh,tbk->kh", hs_np.astype(np.longdouble), rs_np.astype(np.longdouble))
    scale = np.einsum("tbh,tbk->kh", np.abs(hs_np).astype(np.longdouble), np.abs(rs_np).astype(np.longdouble))
    bound = _gamma(T * B, dtype) * scale
    assert np.all(np.abs(g_fused - exact) <= bound) and np.all(np.abs(g_eager - exact) <= bound)
    assert np.all(np.abs(g_fused - g_eager) <= 2 * bound)
    program = next(iter(fused._programs.values()))
    assert sum(ins.fn is np.matmul for ins in program.instrs) == T + 1  # T forward products, one for the gradient


@pytest.mark.parametrize("kind, batch_first", [("tanh", False), ("relu", True), ("LSTM", True), ("GRU", False)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fuse_weight_grads_on_the_layers_with_lengths_bidirectional_two_layers(kind, batch_first, dtype):
    model_e = Model(kind, 7, 3, 5, 2, True, batch_first, 0.5, dtype)
    model_f = Model(kind, 7, 3, 5, 2, True, batch_first, 0.5, dtype)
    eager, fused = _step(model_e), capture(_step(model_f), fuse_weight_grads=True)
    T, B = 9, 3
    rng = np.random.default_rng(1)
    u = float(np.finfo(dtype).eps) / 2
    worst = 0.0
    for k in range(3):
        shape = (B, T) if batch_first else (T, B)
        x, y = rng.integers(0, 7, shape), rng.integers(0, 7, shape)
        lengths = np.array([9, 4, 7])
        model_e.zero_grad()
        model_f.zero_grad()
        tg.manual_seed(k)  # the same dropout masks
        le = eager(tg.tensor(x), tg.tensor(y), lengths)
        tg.manual_seed(k)
        lf = fused(tg.tensor(x), tg.tensor(y), lengths)
        assert le.item() == lf.item()  # the forward is untouched
        for (name, pe), pf in zip(model_e.named_parameters(), model_f.parameters(), strict=True):
            ge, gf = pe.grad.numpy(), pf.grad.numpy()
            if "weight_hh" not in name:
                assert np.array_equal(ge, gf), name  # only the recurrent weights' gradients are summed otherwise
            else:
                d = float(np.max(np.abs(ge - gf)) / np.max(np.abs(ge)))
                worst = max(worst, d)
                assert d <= 4 * T * B * u, (name, d)
    default = capture(_step(model_e))
    default(tg.tensor(x), tg.tensor(y), lengths)

    def products(c):
        return sum(ins.fn is np.matmul for ins in next(iter(c._programs.values())).instrs)

    # one product per recurrent weight (2 layers × 2 directions) instead of one per step
    assert products(default) - products(fused) == 4 * (T - 1)
