"""PyTorch's Tensor dialect (issue 11): ``.data``, ``size()``, comparisons, ``dim=``/``keepdim=``, dtypes,
creation functions and the ``torch.*`` spellings; checked against PyTorch when it is installed, else NumPy."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_rnn as tg


# ------------------------------------------------------------------ .data, .array, size()
def test_data_is_an_untracked_tensor_sharing_memory():
    w = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    d = w.data
    assert isinstance(d, tg.Tensor)
    assert not d.requires_grad and d._ctx is None
    d.array[0] = 10.0  # writes through: same memory
    assert w.array[0] == 10.0
    assert d.array is w.array


def test_data_assignment_replaces_the_storage():
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    new = tg.tensor([5.0, 6.0])
    w.data = new
    assert w.array is new.array and w.requires_grad
    np.testing.assert_array_equal(w.numpy(), [5.0, 6.0])
    with pytest.raises(TypeError):
        w.data = [1.0, 2.0]


def test_size_numel_dim():
    t = tg.zeros(2, 3, 4)
    s = t.size()
    assert isinstance(s, tuple) and isinstance(s, tg.Size) and s == (2, 3, 4)
    assert s.numel() == 24
    assert t.size(0) == 2 and t.size(-1) == 4 and t.size(1) == 3
    with pytest.raises(IndexError):
        t.size(3)
    with pytest.raises(IndexError):
        t.size(-4)
    assert t.numel() == 24 and t.nelement() == 24 and t.dim() == 3
    assert tg.tensor(1.0).size() == () and tg.tensor(1.0).numel() == 1


# ------------------------------------------------------------------ 0-d results and comparisons
def test_op_outputs_are_arrays_never_numpy_scalars():
    a, b = tg.tensor(2.0, requires_grad=True), tg.tensor(3.0)
    for out in (a * b, a + b, tg.zeros(3).sum(), tg.tensor([1.0, 2.0])[0], tg.tensor([[1.0]]).mean(),
                tg.tensor([1.0, 5.0]).max(), (a * b).exp()):
        assert type(out.array) is np.ndarray and out.array.ndim == 0
    (a * b).backward()
    assert type(a.grad.array) is np.ndarray and a.grad.item() == 3.0


def test_zero_d_comparisons_with_numbers():
    assert (tg.zeros(3).sum() > 0).item() is False
    t = tg.tensor([1.0, -2.0])
    assert bool(t[0] > 0) and not bool(t[1] > 0)
    assert t[0].eq(1).item() and bool(tg.zeros(3).sum().eq(0))
    assert t[0] == 1  # __bool__ of a one-element bool tensor
    with pytest.raises(ValueError):
        bool(t == t)


def test_elementwise_comparisons_match_numpy():
    x = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    y = np.array([2.0, 2.0, 2.0])
    tx, ty = tg.tensor(x), tg.tensor(y)
    cases = {"eq": (tx == ty, tx.eq(ty), x == y), "ne": (tx != ty, tx.ne(ty), x != y),
             "lt": (tx < ty, tx.lt(ty), x < y), "le": (tx <= ty, tx.le(ty), x <= y),
             "gt": (tx > ty, tx.gt(ty), x > y), "ge": (tx >= ty, tx.ge(ty), x >= y)}
    for name, (op, method, ref) in cases.items():
        assert op.dtype == np.bool_ and method.dtype == np.bool_, name
        np.testing.assert_array_equal(op.numpy(), ref, err_msg=name)
        np.testing.assert_array_equal(method.numpy(), ref, err_msg=name)
    np.testing.assert_array_equal((tg.tensor([1, 2, 3]) == [1, 0, 3]).numpy(), [True, False, True])
    np.testing.assert_array_equal((2 == tg.tensor([1, 2])).numpy(), [False, True])
    with pytest.raises(tg.OpError):
        _ = tg.tensor([1.0, 2.0]) == tg.tensor([1.0, 2.0, 3.0])


def test_tensors_stay_hashable_by_identity():
    a, b = tg.tensor([1.0]), tg.tensor([1.0])
    d = {a: "a", b: "b"}
    assert d[a] == "a" and d[b] == "b" and len({a, b, a}) == 2
    assert (a == None) is False and (a != None) is True  # noqa: E711 - torch's answer
    assert a in [a] and a not in {b}


def test_equal_allclose_isclose():
    t = tg.tensor([1.0, 2.0, 3.0])
    assert t.equal(tg.tensor([1.0, 2.0, 3.0])) and not t.equal(tg.tensor([1.0, 2.0]))
    assert not t.equal(tg.tensor([1.0, 2.0, 4.0]))
    assert t.allclose(t + 1e-9) and not t.allclose(t + 1e-3)
    np.testing.assert_array_equal(t.isclose(tg.tensor([1.0, 2.1, 3.0])).numpy(), [True, False, True])


# ------------------------------------------------------------------ dim=/keepdim= and the torch functions
X = np.array([[0.5, -1.0, 2.0, 0.25], [3.0, 0.0, -2.0, 1.5], [1.0, 1.25, -0.5, 0.75]])  # no ties

# name -> (ours, torch's); both called as f(module, x) with module = tinygrad_rnn or torch
DIM_CASES = {
    "sum_dim": lambda m, x: x.sum(dim=1),
    "sum_keepdim": lambda m, x: x.sum(1, keepdim=True),
    "sum_tuple": lambda m, x: x.sum(dim=(0, 1)),
    "sum_axis_alias": lambda m, x: x.sum(axis=0, keepdims=True),
    "mean_dim": lambda m, x: x.mean(dim=-1),
    "max_values": lambda m, x: x.max(dim=1).values,
    "max_tuple_unpack": lambda m, x: x.max(1)[0] * 2 + x.min(0, keepdim=True)[0].sum(),
    "max_all": lambda m, x: x.max(),
    "max_other": lambda m, x: x.max(x * 0.5) + m.maximum(x, -x),
    "argmax": lambda m, x: (x.argmax(dim=1), x.argmin(0, keepdim=True), x.argmax()),
    "softmax": lambda m, x: m.softmax(x, dim=0) + x.log_softmax(dim=1),
    "cat_stack": lambda m, x: (m.cat([x, x], dim=1), m.stack([x, x], dim=-1)),
    "split_chunk": lambda m, x: (*x.split(2, dim=1), *x.chunk(2, dim=0), *x.unbind(dim=1)),
    "squeeze": lambda m, x: x.unsqueeze(dim=1).squeeze(dim=1) + x.unsqueeze(0).squeeze(),
    "transpose_t": lambda m, x: x.transpose(0, 1) + x.t() + m.t(x),
    "flatten": lambda m, x: (x.flatten(), x.reshape(3, 2, 2).flatten(1), m.flatten(x, 0, 1)),
    "view": lambda m, x: x.view(4, 3) + x.view(-1, 3),
    "var_std": lambda m, x: (x.var(dim=1), x.std(), x.var(0, unbiased=False), x.std(dim=1, keepdim=True)),
    "topk": lambda m, x: x.topk(2, dim=1).values * 3,
    "topk_smallest": lambda m, x: m.topk(x, 2, dim=0, largest=False)[0],
    "sort": lambda m, x: x.sort(dim=1, descending=True).values,
    "gather": lambda m, x: x.gather(1, m.tensor([[0, 0], [3, 1], [2, 2]])),
    "repeat": lambda m, x: x.repeat(2, 1) + 0 * x.repeat(1, 2).sum(),
    "expand": lambda m, x: x[:1].expand(3, 4) + x.unsqueeze(0).expand(2, -1, -1).sum(0),
    "clone_contiguous": lambda m, x: x.clone() * 2 + x.t().contiguous().t(),
    "masked_fill": lambda m, x: x.masked_fill(x > 1, 0.0),
}


def _run(case, module, x):
    out = case(module, x)
    return out if isinstance(out, tuple) else (out,)


@pytest.mark.parametrize("name", sorted(DIM_CASES))
def test_dim_keywords_and_torch_functions_match_pytorch(name):
    torch = pytest.importorskip("torch")
    case = DIM_CASES[name]
    ours_x = tg.tensor(X, requires_grad=True)
    ref_x = torch.tensor(X, requires_grad=True)
    ours, ref = _run(case, tg, ours_x), _run(case, torch, ref_x)
    assert len(ours) == len(ref)
    for o, r in zip(ours, ref, strict=False):
        assert tuple(o.shape) == tuple(r.shape), name
        np.testing.assert_allclose(o.numpy(), r.detach().numpy(), rtol=1e-12, atol=1e-12, err_msg=name)
    floats = [(o, r) for o, r in zip(ours, ref, strict=False) if r.dtype.is_floating_point]
    if floats:
        weights = [np.linspace(0.5, 1.5, r.numel()).reshape(tuple(r.shape)) for _, r in floats]
        sum(((o * w).sum() for (o, _), w in zip(floats, weights, strict=False)),
            tg.tensor(0.0, dtype=tg.float64)).backward()
        sum((r * torch.from_numpy(w)).sum() for (_, r), w in zip(floats, weights, strict=False)).backward()
        np.testing.assert_allclose(ours_x.grad.numpy(), ref_x.grad.numpy(), rtol=1e-12, atol=1e-12, err_msg=name)


def test_dim_and_axis_together_is_an_error():
    x = tg.ones(2, 3)
    for call in (lambda: x.sum(dim=0, axis=0), lambda: x.mean(1, axis=1), lambda: x.max(dim=0, axis=0),
                 lambda: x.sum(0, keepdim=True, keepdims=True), lambda: tg.cat([x, x], dim=0, axis=0),
                 lambda: x.softmax(dim=0, axis=0), lambda: x.squeeze(dim=0, axis=0)):
        with pytest.raises(TypeError, match="both"):
            call()
    with pytest.raises(tg.OpError, match="amax"):
        x.max(dim=(0, 1))


def test_max_dim_returns_named_values_and_indices():
    x = tg.tensor([[1.0, 5.0, 5.0], [7.0, 2.0, 3.0]])
    result = x.max(1)
    values, indices = result
    assert result.values is values and result.indices is indices
    np.testing.assert_array_equal(values.numpy(), [5.0, 7.0])
    np.testing.assert_array_equal(indices.numpy(), [1, 0])
    assert indices.dtype == tg.int64
    v, i = tg.min(x, dim=0, keepdim=True)
    assert v.shape == (1, 3) and i.tolist() == [[0, 1, 1]]
    assert x.max().item() == 7.0 and tg.max(x).item() == 7.0


def test_multinomial_uses_the_seeded_generator():
    probs = tg.tensor([[0.0, 1.0, 3.0], [5.0, 1.0, 0.0]])
    tg.manual_seed(3)
    a = tg.multinomial(probs, 2)
    tg.manual_seed(3)
    b = probs.multinomial(2)
    assert a.tolist() == b.tolist() and a.dtype == tg.int64 and a.shape == (2, 2)
    assert sorted(a.tolist()[0]) == [1, 2] and sorted(a.tolist()[1]) == [0, 1]  # no replacement
    with pytest.raises(tg.OpError, match="without replacement"):
        tg.multinomial(probs, 3)
    draws = tg.multinomial(tg.tensor([1.0, 3.0]), 4000, replacement=True)
    assert abs(draws.float().mean().item() - 0.75) < 0.03


def test_new_tensors_conversions_and_dtype_methods():
    x = tg.tensor([[1.5, -2.0]], dtype=tg.float64)
    for made, shape, value in ((x.new_zeros(2, 3), (2, 3), 0), (x.new_ones((2,)), (2,), 1),
                               (x.new_full((1, 2), 7.0), (1, 2), 7), (x.new_tensor([4.0]), (1,), 4)):
        assert made.shape == shape and made.dtype == tg.float64 and made.device == x.device
        assert (made == value).all() if hasattr(made, "all") else bool((made.numpy() == value).all())
    assert x.long().dtype == tg.int64 and x.long().tolist() == [[1, -2]]
    assert x.int().dtype == tg.int32 and x.half().dtype == tg.float16 and x.bool().dtype == tg.bool
    assert x.float().dtype == tg.float32 and x.double() is x
    assert x.type() == "tinygrad_rnn.DoubleTensor" and x.type(tg.LongTensor).dtype == tg.int64
    assert x.type("torch.FloatTensor").dtype == tg.float32
    assert x.to(tg.float32).dtype == tg.float32 and x.to("cpu") is x and x.to(tg.device("cpu")) is x
    assert x.to(tg.tensor([1], dtype=tg.int32)).dtype == tg.int32
    assert x.to("cpu", tg.float32).dtype == tg.float32 and x.to(dtype=tg.float16).dtype == tg.float16
    assert x.to(x, copy=True) is not x and x.cpu() is x
    assert x.is_floating_point() and not x.long().is_floating_point()
    assert x.element_size() == 8 and x.float().element_size() == 4
    assert x[0, 0].item() == 1.5
    assert isinstance(x.numpy(), np.ndarray) and x.tolist() == [[1.5, -2.0]]
    d = x.detach()
    assert d.array is x.array and not d.requires_grad


def test_dtypes_and_default_dtype():
    assert tg.float is tg.float32 and tg.double is tg.float64 and tg.half is tg.float16
    assert tg.long is tg.int64 and tg.int is tg.int32 and tg.bool == np.bool_ and tg.uint8 == np.uint8
    assert tg.get_default_dtype() == tg.float32
    assert tg.tensor([1.0]).dtype == tg.float32 and tg.tensor([1]).dtype == tg.int64
    try:
        tg.set_default_dtype(tg.float64)
        assert tg.tensor([1.0]).dtype == tg.float64 and tg.zeros(2).dtype == tg.float64
        assert tg.randn(2).dtype == tg.float64 and tg.arange(0.0, 1.0, 0.5).dtype == tg.float64
    finally:
        tg.set_default_dtype(tg.float32)
    with pytest.raises(TypeError):
        tg.set_default_dtype(tg.int64)


def test_legacy_tensor_types():
    a = tg.LongTensor([1, 2, 3])
    assert a.dtype == tg.int64 and a.tolist() == [1, 2, 3]
    b = tg.FloatTensor(2, 3)
    assert b.shape == (2, 3) and b.dtype == tg.float32
    assert tg.DoubleTensor([1.0]).dtype == tg.float64
    assert isinstance(a, tg.LongTensor) and not isinstance(a, tg.FloatTensor) and isinstance(a, tg.Tensor)


def test_from_numpy_shares_memory_tensor_copies_as_tensor_shares():
    arr = np.arange(4.0)
    t = tg.from_numpy(arr)
    arr[0] = 9.0
    assert t.array is arr and t[0].item() == 9.0 and t.dtype == tg.float64
    c = tg.tensor(arr)
    arr[1] = 7.0
    assert c[1].item() == 1.0
    assert tg.as_tensor(arr).array is arr and tg.as_tensor(arr, dtype=tg.float32).dtype == tg.float32
    assert tg.as_tensor(t) is t and tg.as_tensor([1, 2]).dtype == tg.int64
    with pytest.raises(TypeError):
        tg.from_numpy([1.0])


def test_device_class():
    d = tg.device("cuda:1")
    assert d.type == "cuda" and d.index == 1 and d == "cuda:1" and repr(d) == "device(type='cuda', index=1)"
    assert tg.device("cuda").index is None and tg.device("cuda", 0) == "cuda:0" and tg.device(2) == "cuda:2"
    cpu = tg.device("cpu")
    assert cpu.type == "cpu" and cpu.index is None and str(cpu) == "cpu"
    x = tg.zeros(2, device=cpu)
    assert x.device == cpu and x.device.type == "cpu" and isinstance(x.device, tg.device)
    with pytest.raises(tg.DeviceError):
        tg.device("tpu")
    assert tg.cuda.is_available() == tg.cuda_is_available()
    assert tg.cuda.device_count() >= (1 if tg.cuda.is_available() else 0)
    if not tg.cuda.is_available():
        assert tg.cuda.device_count() == 0
        with pytest.raises(tg.DeviceError):
            x.to(tg.device("cuda"))
    tg.cuda.manual_seed(0)  # fine without a GPU


def test_creation_functions_match_numpy():
    assert tg.zeros_like(tg.ones(2, 3, dtype=tg.float64)).dtype == tg.float64
    assert tg.full((2,), 3).dtype == tg.int64 and tg.full((2,), 3.0).dtype == tg.float32
    assert tg.full((2,), True).dtype == tg.bool
    np.testing.assert_array_equal(tg.eye(3, 2).numpy(), np.eye(3, 2))
    np.testing.assert_allclose(tg.linspace(0, 1, 5).numpy(), np.linspace(0, 1, 5), rtol=1e-7)
    assert tg.arange(5).tolist() == [0, 1, 2, 3, 4] and tg.arange(1, 4, dtype=tg.float64).dtype == tg.float64
    assert tg.empty(2, 3).shape == (2, 3) and tg.empty_like(tg.ones(4)).shape == (4,)
    r = tg.randint(0, 5, (1000,))
    assert r.dtype == tg.int64 and r.min().item() >= 0 and r.max().item() <= 4 and len(set(r.tolist())) == 5
    assert tg.randint(3, (4,)).max().item() < 3
    like = tg.randn_like(tg.zeros(3, 2, dtype=tg.float64))
    assert like.shape == (3, 2) and like.dtype == tg.float64
    assert tg.rand_like(tg.zeros(2)).shape == (2,) and sorted(tg.randperm(5).tolist()) == [0, 1, 2, 3, 4]
    assert tg.is_tensor(like) and not tg.is_tensor(np.zeros(2)) and tg.numel(like) == 6
    assert tg.ones(2, requires_grad=True).requires_grad


def test_no_grad_as_decorator_and_set_grad_enabled():
    w = tg.ones(2, requires_grad=True)

    @tg.no_grad()
    def f(x):
        return x * 2

    @tg.no_grad
    def g(x):
        return x * 2

    assert not f(w).requires_grad and not g(w).requires_grad and (w * 2).requires_grad
    with tg.set_grad_enabled(False):
        assert not (w * 2).requires_grad
    assert tg.is_grad_enabled()
    tg.set_grad_enabled(False)
    try:
        assert not tg.is_grad_enabled() and not (w * 2).requires_grad
    finally:
        tg.set_grad_enabled(True)
    with tg.no_grad():
        with tg.enable_grad():
            assert (w * 2).requires_grad


def test_manual_seed_is_process_wide_across_threads():
    """Issue 13 item 5: seed in one thread, build a model in another: the same weights."""
    import threading

    def weights():
        return tg.nn.Linear(3, 2).weight.numpy().copy()

    tg.manual_seed(1234)
    expected = weights()
    out = {}
    tg.manual_seed(1234)
    thread = threading.Thread(target=lambda: out.setdefault("w", weights()))
    thread.start()
    thread.join()
    np.testing.assert_array_equal(out["w"], expected)
    seeder = threading.Thread(target=lambda: tg.manual_seed(99))
    seeder.start()
    seeder.join()
    a = tg.randn(3).numpy()
    tg.manual_seed(99)
    np.testing.assert_array_equal(a, tg.randn(3).numpy())


# ------------------------------------------------------------------ torch.nn.functional's keywords
def test_functional_losses_match_pytorch():
    torch = pytest.importorskip("torch")
    tF = torch.nn.functional
    F = tg.functional
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((4, 3, 5))  # (N, C, d1): classes on dim 1
    target = rng.integers(0, 3, (4, 5))
    target[0, 0] = -100
    weight = np.array([0.5, 2.0, 1.0])
    probs = 1 / (1 + np.exp(-rng.standard_normal((4, 3))))
    y = rng.random((4, 3))
    cases = [
        (lambda m, f, x: f.cross_entropy(x, m.tensor(target)), logits),
        (lambda m, f, x: f.cross_entropy(x, m.tensor(target), reduction="none"), logits),
        (lambda m, f, x: f.cross_entropy(x[:, :, 0], m.tensor(target[:, 1]), weight=m.tensor(weight)), logits),
        (lambda m, f, x: f.nll_loss(f.log_softmax(x, dim=1), m.tensor(abs(target) % 3), ignore_index=1,
                                    reduction="sum"), logits),
        (lambda m, f, x: f.cross_entropy(x[0, :, 1], m.tensor(target[0, 1])), logits),
        (lambda m, f, x: f.mse_loss(x, m.tensor(y), reduction="sum") + f.l1_loss(x, m.tensor(y)), probs),
        (lambda m, f, x: f.binary_cross_entropy(x, m.tensor(y)), probs),
        (lambda m, f, x: f.binary_cross_entropy_with_logits(x * 4 - 2, m.tensor(y), reduction="sum"), probs),
        (lambda m, f, x: f.relu(x - 0.5) + f.tanh(x) + f.sigmoid(x) + f.softmax(x, dim=0), probs),
        (lambda m, f, x: f.dropout(x, p=0.3, training=False) + f.linear(x, x[:2], x[0, :2]).sum(), probs),
        (lambda m, f, x: f.pad(x, (1, 2, 0, 1), value=0.5), probs),
        (lambda m, f, x: f.embedding(m.tensor([[0, 2], [1, 0]]), x, padding_idx=0), probs),
    ]
    for i, (case, data) in enumerate(cases):
        ours_x, ref_x = tg.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
        ours, ref = case(tg, F, ours_x), case(torch, tF, ref_x)
        np.testing.assert_allclose(ours.numpy(), ref.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=str(i))
        w = np.linspace(0.5, 1.5, ref.numel()).reshape(tuple(ref.shape))
        (ours * tg.tensor(w)).sum().backward()
        (ref * torch.from_numpy(w)).sum().backward()
        np.testing.assert_allclose(ours_x.grad.numpy(), ref_x.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=str(i))
    one_hot = F.one_hot(tg.tensor([0, 2, 1]), 3)
    assert one_hot.tolist() == tF.one_hot(torch.tensor([0, 2, 1]), 3).tolist()
    with pytest.raises(tg.OpError, match="reduction"):
        F.mse_loss(tg.ones(2), tg.ones(2), reduction="avg")
    with pytest.raises(tg.OpError, match="size_average"):
        F.cross_entropy(tg.ones(2, 3), tg.tensor([0, 1]), None, True)


METHOD_CASES = {
    "arith": lambda m, x: x.add(x, alpha=2).sub(1.5).mul(x).div(3) + x.neg().pow(2) + (x.square() + 1).reciprocal(),
    "mm": lambda m, x: x.mm(x.t()) + x.matmul(x.t()) + x[0].dot(x[1]),
    "narrow_flip": lambda m, x: (x.narrow(1, 1, 2), x.flip(0), x.flip(0, 1), x.index_select(1, m.tensor([3, 0, 3]))),
    "masked_where": lambda m, x: (x.masked_select(x > 0.5), x.where(x > 0, -x)),
    "logsumexp_norm": lambda m, x: (x.logsumexp(1), x.logsumexp(0, keepdim=True), x.norm(), x.norm(p=1, dim=1)),
    "rsqrt": lambda m, x: (x.abs() + 1).rsqrt(),
    "bool_reductions": lambda m, x: ((x > 0).all(), (x > 0).any(1), x.argsort(1), x.detach().sign()),
}


@pytest.mark.parametrize("name", sorted(METHOD_CASES))
def test_method_spellings_match_pytorch(name):
    _compare(METHOD_CASES[name], name)


def _compare(case, name):
    torch = pytest.importorskip("torch")
    ours_x = tg.tensor(X, requires_grad=True)
    ref_x = torch.tensor(X, requires_grad=True)
    ours, ref = _run(case, tg, ours_x), _run(case, torch, ref_x)
    for o, r in zip(ours, ref, strict=False):
        assert tuple(o.shape) == tuple(r.shape), name
        np.testing.assert_allclose(o.numpy(), r.detach().numpy(), rtol=1e-12, atol=1e-12, err_msg=name)
    floats = [(o, r) for o, r in zip(ours, ref, strict=False) if r.dtype.is_floating_point and r.requires_grad]
    if floats:
        weights = [np.linspace(0.5, 1.5, r.numel()).reshape(tuple(r.shape)) for _, r in floats]
        sum(((o * w).sum() for (o, _), w in zip(floats, weights, strict=False)),
            tg.tensor(0.0, dtype=tg.float64)).backward()
        sum((r * torch.from_numpy(w)).sum() for (_, r), w in zip(floats, weights, strict=False)).backward()
        np.testing.assert_allclose(ours_x.grad.numpy(), ref_x.grad.numpy(), rtol=1e-12, atol=1e-12, err_msg=name)
