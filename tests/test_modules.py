"""torch.nn's module surface: loss modules and activations (values and gradients equal to PyTorch's in float64),
containers and their state-dict names, buffers, tied weights, all-or-nothing load_state_dict, Module.to/double,
repr, nn.init formulas and statistics, nn.utils vectors."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest

import tinygrad_rnn as tg
import tinygrad_rnn.nn.functional as F
from tinygrad_rnn import nn


def t64(array, requires_grad=False):
    return tg.Tensor(np.asarray(array, dtype=np.float64), requires_grad=requires_grad)


def close(ours, ref, tol=1e-12):
    ours = ours.numpy() if isinstance(ours, tg.Tensor) else np.asarray(ours)
    ref = ref.detach().numpy() if hasattr(ref, "detach") else np.asarray(ref)
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    np.testing.assert_allclose(ours, ref, rtol=tol, atol=tol)


# --------------------------------------------------------------------------------------------------
# loss modules and activations against PyTorch (float64, values and input gradients)
# --------------------------------------------------------------------------------------------------

RNG = np.random.default_rng(0)
LOGITS = RNG.standard_normal((6, 4)) * 3
LOGITS_ND = RNG.standard_normal((3, 4, 5))  # (N, C, d1)
TARGET = np.array([0, 3, 1, -100, 2, 3])
TARGET_ND = RNG.integers(0, 4, size=(3, 5))
CLASS_WEIGHT = np.array([0.2, 1.0, 3.0, 0.5])

LOSS_CASES = [
    ("CrossEntropyLoss", {}, LOGITS, TARGET),
    ("CrossEntropyLoss", {"reduction": "sum"}, LOGITS, TARGET),
    ("CrossEntropyLoss", {"reduction": "none"}, LOGITS, TARGET),
    ("CrossEntropyLoss", {"weight": CLASS_WEIGHT}, LOGITS, TARGET),
    ("CrossEntropyLoss", {"label_smoothing": 0.2}, LOGITS, TARGET),
    ("CrossEntropyLoss", {"label_smoothing": 0.1, "weight": CLASS_WEIGHT}, LOGITS, TARGET),
    ("CrossEntropyLoss", {"label_smoothing": 0.1, "reduction": "none"}, LOGITS, TARGET),
    ("CrossEntropyLoss", {"ignore_index": 3}, LOGITS, np.where(TARGET < 0, 0, TARGET)),
    ("CrossEntropyLoss", {}, LOGITS_ND, TARGET_ND),
    ("CrossEntropyLoss", {"reduction": "none", "weight": CLASS_WEIGHT}, LOGITS_ND, TARGET_ND),
    ("CrossEntropyLoss", {}, LOGITS, RNG.dirichlet(np.ones(4), size=6)),  # class probabilities
    ("CrossEntropyLoss", {"label_smoothing": 0.3, "weight": CLASS_WEIGHT}, LOGITS, RNG.dirichlet(np.ones(4), size=6)),
    ("CrossEntropyLoss", {}, LOGITS[0], np.array(2)),  # unbatched
    ("NLLLoss", {}, LOGITS, TARGET),
    ("NLLLoss", {"weight": CLASS_WEIGHT, "reduction": "sum"}, LOGITS, TARGET),
    ("NLLLoss", {"reduction": "none"}, LOGITS_ND, TARGET_ND),
    ("MSELoss", {}, LOGITS, RNG.standard_normal((6, 4))),
    ("MSELoss", {"reduction": "none"}, LOGITS, RNG.standard_normal((6, 4))),
    ("L1Loss", {"reduction": "sum"}, LOGITS, RNG.standard_normal((6, 4))),
    ("BCELoss", {}, RNG.uniform(0.01, 0.99, (6, 4)), RNG.uniform(0, 1, (6, 4))),
    ("BCELoss", {"weight": RNG.uniform(0, 2, (4,)), "reduction": "none"}, RNG.uniform(0.01, 0.99, (3, 4)),
     RNG.integers(0, 2, (3, 4)).astype(np.float64)),
    ("BCEWithLogitsLoss", {}, LOGITS * 20, RNG.uniform(0, 1, (6, 4))),
    ("BCEWithLogitsLoss", {"pos_weight": np.array([1.0, 2.0, 0.5, 3.0]), "weight": RNG.uniform(0, 2, (6, 4))},
     LOGITS, RNG.integers(0, 2, (6, 4)).astype(np.float64)),
    ("BCEWithLogitsLoss", {"reduction": "none"}, np.zeros((2, 3)), np.ones((2, 3))),  # the kink at 0
]


@pytest.mark.parametrize("case", range(len(LOSS_CASES)))
def test_loss_modules_match_torch_in_float64(case):
    torch = pytest.importorskip("torch")
    name, kwargs, x, target = LOSS_CASES[case]
    torch_kwargs = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    theirs_x = torch.tensor(x, requires_grad=True)
    theirs = getattr(torch.nn, name)(**torch_kwargs)(theirs_x, torch.tensor(target))
    ours_x = t64(x, requires_grad=True)
    ours = getattr(nn, name)(**kwargs)(ours_x, target)
    close(ours, theirs)
    seed = np.random.default_rng(1).standard_normal(tuple(theirs.shape))
    theirs.backward(torch.tensor(seed))
    ours.backward(t64(seed))
    close(ours_x.grad, theirs_x.grad)
    assert ours.dtype == np.float64


def test_bce_clamps_its_logs_at_minus_100_as_torch():
    torch = pytest.importorskip("torch")
    x, y = np.array([0.0, 1.0, 0.5, 0.25]), np.array([1.0, 0.0, 1.0, 0.0])
    ours = nn.BCELoss(reduction="none")(t64(x, requires_grad=True), y)
    close(ours, torch.nn.BCELoss(reduction="none")(torch.tensor(x), torch.tensor(y)))
    ours.sum().backward()  # finite (0 where the clamp holds; PyTorch's own formula gives ±1e12 there)


@pytest.mark.parametrize("module", ["tinygrad_rnn.functional", "tinygrad_rnn.nn.functional"])
def test_binary_cross_entropies_have_torchs_gradient_at_the_edges(module):
    """Probabilities exactly 0 and 1 (the clamped logs: a finite loss, zero gradient) and logits exactly 0
    (where relu/abs-based formulas would give a wrong gradient), in both functional namespaces."""
    torch = pytest.importorskip("torch")
    fn = __import__(module, fromlist=["x"])
    z, t = np.array([0.0, 0.0, 0.0, -800.0, 800.0]), np.array([1.0, 0.0, 0.5, 1.0, 0.0])
    ours_z, theirs_z = t64(z, requires_grad=True), torch.tensor(z, requires_grad=True)
    ours = fn.binary_cross_entropy_with_logits(ours_z, t, reduction="none")
    theirs = torch.nn.functional.binary_cross_entropy_with_logits(theirs_z, torch.tensor(t), reduction="none")
    close(ours, theirs)
    ours.sum().backward()
    theirs.sum().backward()
    close(ours_z.grad, theirs_z.grad)
    p = t64([0.0, 1.0, 0.5], requires_grad=True)
    loss = fn.binary_cross_entropy(p, np.array([1.0, 0.0, 1.0]), reduction="sum")
    close(loss, torch.nn.functional.binary_cross_entropy(torch.tensor([0.0, 1.0, 0.5], dtype=torch.float64),
                                                         torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64),
                                                         reduction="sum"))
    loss.backward()
    assert np.all(np.isfinite(p.grad.numpy()))


def test_loss_modules_keep_float32_and_reject_bad_arguments():
    logits = tg.randn(4, 3)
    assert nn.CrossEntropyLoss(weight=[1.0, 2.0, 3.0])(logits, np.array([0, 1, 2, 1])).dtype == np.float32
    assert nn.BCEWithLogitsLoss()(logits, np.ones((4, 3), dtype=np.float32)).dtype == np.float32
    with pytest.raises(tg.OpError, match="reduction"):
        nn.MSELoss(reduction="bogus")
    with pytest.raises(tg.OpError, match="same shape|must equal"):
        nn.MSELoss()(logits, np.zeros((4, 1)))
    with pytest.raises(tg.OpError, match=r"\[0, 1\]"):
        nn.BCELoss()(logits, np.zeros((4, 3), dtype=np.float32))
    with pytest.raises(tg.OpError, match=r"target values must lie in \[0, 3\)"):
        nn.CrossEntropyLoss()(logits, np.array([0, 1, 2, 3]))
    with pytest.raises(tg.OpError, match="target of shape"):
        nn.NLLLoss()(logits, np.array([0, 1]))
    assert nn.MSELoss(size_average=False).reduction == "sum"  # PyTorch's legacy keywords
    assert nn.L1Loss(reduce=False).reduction == "none"


@pytest.mark.parametrize("name", ["CrossEntropyLoss", "NLLLoss", "MSELoss", "L1Loss", "BCELoss", "BCEWithLogitsLoss"])
def test_loss_modules_over_shapes_and_dtypes_agree_with_torch_or_refuse_clearly(name):
    """Every (input, target) shape and dtype pair: our result equals PyTorch's (value and dtype), or we raise
    the project's error naming the loss. We never accept what PyTorch refuses; we refuse (deliberately) what
    PyTorch would broadcast with a warning, integer input, and mixed dtypes in the binary cross-entropies."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    shapes, dtypes = [(), (3,), (2, 3), (2, 3, 4), (0, 3)], [np.float64, np.float32, np.float16, np.int64]
    loss_name = {"CrossEntropyLoss": "cross_entropy", "NLLLoss": "nll_loss", "MSELoss": "mse_loss",
                 "L1Loss": "l1_loss", "BCELoss": "binary_cross_entropy",
                 "BCEWithLogitsLoss": "binary_cross_entropy_with_logits"}[name]
    for x_shape, t_shape, x_dtype, t_dtype in itertools.product(shapes, shapes, dtypes, dtypes):
        x = rng.integers(0, 2, x_shape) if x_dtype == np.int64 else rng.uniform(0.05, 0.95, x_shape).astype(x_dtype)
        t = rng.integers(0, 3, t_shape) if t_dtype == np.int64 else rng.uniform(0, 1, t_shape).astype(t_dtype)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                theirs = getattr(torch.nn, name)()(torch.tensor(x), torch.tensor(t)).numpy()
        except Exception:  # noqa: BLE001 - any refusal by PyTorch
            theirs = None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # NumPy's warnings for the mean of an empty batch (NaN, as torch)
                ours = getattr(nn, name)()(tg.tensor(x), t).numpy()
        except (tg.OpError, TypeError) as exc:
            assert loss_name in str(exc), str(exc)
            continue
        case = (x_shape, t_shape, np.dtype(x_dtype).name, np.dtype(t_dtype).name)
        assert theirs is not None, f"{name} accepted {case}, which PyTorch refuses"
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, case
        np.testing.assert_allclose(ours, theirs, rtol=2e-3, atol=2e-3, err_msg=str(case))


@pytest.mark.parametrize("name", ["ReLU", "Tanh", "Sigmoid", "Softmax", "LogSoftmax", "Identity", "Flatten"])
def test_activation_modules_match_torch(name):
    torch = pytest.importorskip("torch")
    x = RNG.standard_normal((3, 4, 2)) * 4
    kwargs = {"dim": 1} if "Softmax" in name else {}
    theirs_x = torch.tensor(x, requires_grad=True)
    theirs = getattr(torch.nn, name)(**kwargs)(theirs_x)
    ours_x = t64(x, requires_grad=True)
    ours = getattr(nn, name)(**kwargs)(ours_x)
    close(ours, theirs)
    seed = np.random.default_rng(2).standard_normal(tuple(theirs.shape))
    theirs.backward(torch.tensor(seed))
    ours.backward(t64(seed))
    close(ours_x.grad, theirs_x.grad)


def test_softmax_without_dim_warns_and_picks_pytorchs_implicit_dimension():
    x = tg.randn(2, 3)
    with pytest.warns(UserWarning, match="Implicit dimension"):
        out = nn.Softmax()(x)
    np.testing.assert_allclose(out.numpy().sum(axis=1), 1, rtol=1e-6)


def test_functional_namespace_is_importable_like_torchs():
    import tinygrad_rnn.functional as base

    assert F.relu is base.relu and F.dropout is base.dropout and F.linear is base.linear
    logits = t64(LOGITS[:3])
    target = np.array([0, 1, 2])
    assert float(F.cross_entropy(logits, target)) == pytest.approx(float(base.cross_entropy(logits, target)), rel=1e-15)


# --------------------------------------------------------------------------------------------------
# Embedding
# --------------------------------------------------------------------------------------------------


def test_embedding_padding_idx_row_is_zero_and_gets_no_gradient():
    tg.manual_seed(0)
    emb = nn.Embedding(5, 3, padding_idx=-1, dtype=np.float64)
    assert emb.padding_idx == 4 and np.all(emb.weight.numpy()[4] == 0) and repr(emb) == "Embedding(5, 3, padding_idx=4)"
    ids = np.array([[4, 1], [1, 4]])
    emb(ids).sum().backward()
    grad = emb.weight.grad.numpy()
    assert np.all(grad[4] == 0) and np.all(grad[1] == 2) and np.all(grad[0] == 0)


def test_embedding_from_pretrained_is_frozen_unless_asked():
    weights = np.arange(6.0).reshape(3, 2)
    frozen = nn.Embedding.from_pretrained(weights)
    assert not frozen.weight.requires_grad and np.array_equal(frozen(np.array([2])).numpy(), [[4.0, 5.0]])
    assert list(frozen.parameters()) == [frozen.weight]
    trainable = nn.Embedding.from_pretrained(tg.tensor(weights), freeze=False)
    assert trainable.weight.requires_grad and trainable.weight.dtype == np.float64
    with pytest.raises(ValueError, match="2-D"):
        nn.Embedding.from_pretrained(np.zeros(3))


# --------------------------------------------------------------------------------------------------
# containers, registration, traversal, repr
# --------------------------------------------------------------------------------------------------


def test_containers_and_buffers_name_state_dict_keys_as_torch_does():
    torch = pytest.importorskip("torch")

    class TorchNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(7, 4)
            self.blocks = torch.nn.ModuleList([torch.nn.Linear(4, 4), torch.nn.Linear(4, 4, bias=False)])
            self.heads = torch.nn.ModuleDict({"a": torch.nn.Linear(4, 2),
                                              "b": torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(4, 3))})
            self.scales = torch.nn.ParameterList([torch.nn.Parameter(torch.ones(2))])
            self.drop = torch.nn.Dropout(0.1)
            self.register_buffer("steps", torch.zeros(1, dtype=torch.int64))
            self.register_buffer("cache", torch.zeros(3), persistent=False)

    class OurNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(7, 4)
            self.blocks = nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 4, bias=False)])
            self.heads = nn.ModuleDict({"a": nn.Linear(4, 2), "b": nn.Sequential(nn.ReLU(), nn.Linear(4, 3))})
            self.scales = nn.ParameterList([nn.Parameter(tg.ones(2))])
            self.drop = nn.Dropout(0.1)
            self.register_buffer("steps", tg.zeros(1, dtype=np.int64))
            self.register_buffer("cache", tg.zeros(3), persistent=False)

    theirs, ours = TorchNet(), OurNet()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]
    assert repr(ours).replace("OurNet", "X") == repr(theirs).replace("TorchNet", "X").replace(
        "Parameter containing: [torch.float32 of size 2]", "Parameter containing: [float32 of size 2]")
    # a torch state dict loads (values converted through NumPy), and the model then computes the same
    missing, unexpected = ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    assert missing == [] and unexpected == []
    ids = np.array([[1, 2, 6]])
    theirs_out = theirs.heads["b"](theirs.blocks[1](theirs.blocks[0](theirs.embed(torch.tensor(ids)))))
    ours_out = ours.heads["b"](ours.blocks[1](ours.blocks[0](ours.embed(ids))))
    close(ours_out, theirs_out, 1e-6)


def test_sequential_indexing_len_iteration_append_insert_delete():
    a, b, c = nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1)
    seq = nn.Sequential(a, b)
    assert len(seq) == 2 and seq[0] is a and seq[-1] is b and list(seq) == [a, b]
    seq.append(c)
    assert seq[2] is c and isinstance(seq[1:], nn.Sequential) and list(seq[1:]) == [b, c]
    x = tg.randn(4, 2)
    np.testing.assert_allclose(seq(x).numpy(), c(b(a(x))).numpy())
    del seq[1]
    assert list(seq) == [a, c] and [n for n, _ in seq.named_children()] == ["0", "1"]
    seq.insert(1, b)
    assert list(seq) == [a, b, c]
    with pytest.raises(IndexError, match="Sequential"):
        seq[3]
    named = nn.Sequential(__import__("collections").OrderedDict([("fc", a), ("act", b)]))
    assert list(named.state_dict()) == ["fc.weight", "fc.bias"]


def test_module_list_dict_and_parameter_list_behave_like_lists_and_dicts():
    layers = nn.ModuleList([nn.Linear(2, 2)])
    layers.append(nn.ReLU())
    layers += [nn.Tanh()]
    assert len(layers) == 3 and isinstance(layers[-1], nn.Tanh)
    heads = nn.ModuleDict()
    heads["x"] = nn.Linear(2, 1)
    assert "x" in heads and list(heads.keys()) == ["x"] and len(heads) == 1
    del heads["x"]
    assert len(heads) == 0 and list(heads.parameters()) == []
    params = nn.ParameterList([tg.zeros(2), nn.Parameter(tg.ones(3))])
    assert all(isinstance(p, nn.Parameter) for p in params) and len(params) == 2
    assert [n for n, _ in params.named_parameters()] == ["0", "1"]


def test_registration_rules():
    m = nn.Module()
    m.register_parameter("w", nn.Parameter(tg.zeros(2)))
    m.register_parameter("b", None)
    m.register_buffer("mask", tg.ones(2))
    m.add_module("child", nn.Linear(1, 1))
    assert list(m.state_dict()) == ["w", "mask", "child.weight", "child.bias"]
    with pytest.raises(TypeError, match="Parameter"):
        m.register_parameter("x", tg.zeros(2))
    with pytest.raises(TypeError, match="Parameter or None"):
        m.w = tg.zeros(2)  # a plain tensor over a parameter
    with pytest.raises(KeyError, match=r"'\.'"):
        m.register_buffer("a.b", tg.zeros(1))
    m.mask = tg.zeros(2)  # replacing a buffer keeps it a buffer
    assert np.all(m.state_dict()["mask"].numpy() == 0)
    assert m.get_submodule("child") is m.child


def test_tied_weights_appear_under_both_keys_once_in_parameters():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.Embedding(5, 3)
            self.decoder = nn.Linear(3, 5)
            self.decoder.weight = self.encoder.weight

    m = Tied()
    assert list(m.state_dict()) == ["encoder.weight", "decoder.weight", "decoder.bias"]
    assert [n for n, _ in m.named_parameters()] == ["encoder.weight", "decoder.bias"]
    m.load_state_dict({"encoder.weight": np.ones((5, 3)), "decoder.weight": np.ones((5, 3)),
                       "decoder.bias": np.zeros(5)})
    assert m.encoder.weight is m.decoder.weight and np.all(m.decoder.weight.numpy() == 1)


def test_traversal_apply_modes_and_zero_grad():
    model = nn.Sequential(nn.Linear(2, 3), nn.Dropout(0.5), nn.Linear(3, 1))
    seen = []
    assert model.apply(lambda m: seen.append(type(m).__name__)) is model
    assert seen == ["Linear", "Dropout", "Linear", "Sequential"]
    assert all(not m.training for m in model.eval().modules()) and model.train().training
    with pytest.raises(TypeError, match="bool"):
        model.train("no")
    model(tg.randn(4, 2)).sum().backward()
    model.zero_grad(set_to_none=False)
    assert all(p.grad is not None and np.all(p.grad.numpy() == 0) for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    model.requires_grad_(False)
    assert not any(p.requires_grad for p in model.parameters())
    assert len(list(model.parameters(recurse=False))) == 0 and len(list(model[0].parameters(recurse=False))) == 2


def test_to_double_float_cast_floating_tensors_and_their_gradients_only():
    m = nn.Linear(2, 2)
    m.register_buffer("count", tg.zeros(1, dtype=np.int64))
    weight = m.weight
    m(tg.randn(3, 2)).sum().backward()
    assert m.double() is m
    assert m.weight is weight and m.weight.dtype == np.float64 and m.weight.grad.dtype == np.float64
    assert m.count.dtype == np.int64
    assert m.to(np.float32).weight.dtype == np.float32 and m.to(dtype=np.float64).bias.dtype == np.float64
    assert m.to("cpu", np.float32).weight.dtype == np.float32
    assert m.to(tg.zeros(1, dtype=np.float64)).bias.dtype == np.float64
    assert m.half().weight.dtype == np.float16 and m.float().weight.dtype == np.float32 and m.cpu() is m
    with pytest.raises(TypeError, match="floating"):
        m.to(np.int32)
    with pytest.raises(tg.DeviceError):
        m.to("tpu")


# --------------------------------------------------------------------------------------------------
# load_state_dict: validated first, all or nothing (issue 13)
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad_value", [
    np.array(["a", "b", "c", "d"]),      # strings
    np.zeros((2, 2), dtype=complex),     # complex into float
    object(),                            # not an array at all
    np.zeros((2, 3)),                    # wrong shape
])
def test_load_state_dict_changes_nothing_when_any_value_is_bad(bad_value):
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    model.register_buffer("count", tg.zeros(1, dtype=np.int64))
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    state = {k: np.full(v.shape, 7.0) for k, v in model.state_dict().items()}
    state["count"] = np.array([3])
    state["1.weight"] = bad_value  # the last parameter: everything before it would be valid
    with pytest.raises(nn.StateDictError, match="1.weight") as info:
        model.load_state_dict(state)
    assert isinstance(info.value, RuntimeError) and isinstance(info.value, KeyError)
    assert all(np.array_equal(v.numpy(), before[k]) for k, v in model.state_dict().items())


def test_load_state_dict_copies_in_place_like_torch():
    m = nn.Linear(2, 2)
    view = m.state_dict()["weight"]  # shares the parameter's memory
    weight = m.weight
    m.load_state_dict({"weight": np.ones((2, 2)), "bias": np.zeros(2)})
    assert m.weight is weight and np.all(view.numpy() == 1)
    frozen = tg.zeros(3)
    frozen.array = np.broadcast_to(np.zeros(1, dtype=np.float32), (3,))  # a read-only view as storage
    m.register_buffer("frozen", frozen)
    m.load_state_dict({"weight": np.ones((2, 2)), "bias": np.zeros(2), "frozen": np.ones(3)})
    assert np.all(m.frozen.numpy() == 1)


def test_load_state_dict_refuses_truncating_floats_into_an_integer_buffer_and_returns_named_tuple():
    m = nn.Linear(1, 1)
    m.register_buffer("count", tg.zeros(1, dtype=np.int64))
    with pytest.raises(nn.StateDictError, match="truncating"):
        m.load_state_dict({"weight": np.ones((1, 1)), "bias": np.ones(1), "count": np.array([1.5])})
    result = m.load_state_dict({"weight": np.ones((1, 1)), "count": np.array([4])}, strict=False)
    assert result.missing_keys == ["bias"] and result.unexpected_keys == [] and result == (["bias"], [])
    assert int(m.count.numpy()[0]) == 4
    with pytest.raises(TypeError, match="mapping"):
        m.load_state_dict([("weight", np.ones((1, 1)))])


# --------------------------------------------------------------------------------------------------
# nn.init
# --------------------------------------------------------------------------------------------------


def test_calculate_gain_matches_torch():
    torch = pytest.importorskip("torch")
    for name, param in [("linear", None), ("sigmoid", None), ("tanh", None), ("relu", None), ("leaky_relu", None),
                        ("leaky_relu", 0.2), ("selu", None), ("conv2d", None)]:
        expected = torch.nn.init.calculate_gain(name, param)
        assert nn.init.calculate_gain(name, param) == pytest.approx(expected, rel=1e-15)
    with pytest.raises(ValueError, match="unsupported"):
        nn.init.calculate_gain("swish")


@pytest.mark.parametrize("fn, kwargs, dist, scale", [
    ("xavier_uniform_", {"gain": 2.0}, "uniform", lambda fi, fo: 2.0 * math.sqrt(6 / (fi + fo))),
    ("xavier_normal_", {}, "normal", lambda fi, fo: math.sqrt(2 / (fi + fo))),
    ("kaiming_uniform_", {"a": math.sqrt(5)}, "uniform",
     lambda fi, fo: math.sqrt(3) * math.sqrt(2 / 6) / math.sqrt(fi)),
    ("kaiming_normal_", {"mode": "fan_out", "nonlinearity": "relu"}, "normal", lambda fi, fo: math.sqrt(2 / fo)),
    ("uniform_", {"a": -0.3, "b": 0.3}, "uniform", lambda fi, fo: 0.3),
    ("normal_", {"std": 0.05}, "normal", lambda fi, fo: 0.05),
])
def test_init_follows_torchs_formulas(fn, kwargs, dist, scale):
    tg.manual_seed(0)
    w = tg.zeros(200, 300, dtype=np.float64)
    assert getattr(nn.init, fn)(w, **kwargs) is w
    values = w.numpy()
    expected = scale(300, 200)  # fan_in = size(1), fan_out = size(0)
    if dist == "uniform":  # bound, and the std of U(-b, b) = b/√3
        assert np.abs(values).max() <= expected and np.abs(values).max() > 0.99 * expected
        assert values.std() == pytest.approx(expected / math.sqrt(3), rel=0.02)
    else:
        assert values.std() == pytest.approx(expected, rel=0.02) and abs(values.mean()) < 0.01 * expected + 1e-3


def test_init_orthogonal_constant_eye_and_seeding():
    for shape in [(4, 6), (6, 4), (3, 2, 2)]:
        w = nn.init.orthogonal_(tg.zeros(*shape, dtype=np.float64), gain=1.5)
        flat = w.numpy().reshape(shape[0], -1)
        gram = flat @ flat.T if shape[0] <= flat.shape[1] else flat.T @ flat
        np.testing.assert_allclose(gram, 2.25 * np.eye(gram.shape[0]), atol=1e-12)
    assert np.all(nn.init.constant_(tg.zeros(2, 2), 0.5).numpy() == 0.5)
    assert np.all(nn.init.ones_(tg.zeros(3)).numpy() == 1) and np.all(nn.init.zeros_(tg.ones(3)).numpy() == 0)
    assert np.array_equal(nn.init.eye_(tg.zeros(2, 3)).numpy(), np.eye(2, 3))
    tg.manual_seed(5)
    first = nn.init.xavier_uniform_(tg.zeros(3, 4)).numpy()
    tg.manual_seed(5)
    assert np.array_equal(first, nn.init.xavier_uniform_(tg.zeros(3, 4)).numpy())
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        nn.init.xavier_uniform_(tg.zeros(3))
    with pytest.raises(TypeError, match="floating"):
        nn.init.normal_(tg.zeros(3, dtype=np.int64))
    w = tg.zeros(3, 3, requires_grad=True)
    before = w._version
    nn.init.kaiming_uniform_(w)  # on a leaf that requires grad: fine (no_grad), and counted as an in-place change
    assert w._version == before + 1 and w.requires_grad
    t = nn.init.trunc_normal_(tg.zeros(1000, dtype=np.float64), std=1.0, a=-0.5, b=0.5)
    assert t.numpy().min() >= -0.5 and t.numpy().max() <= 0.5


def test_init_in_apply_like_a_pytorch_program():
    def init_weights(m):
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)

    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)).apply(init_weights)
    assert np.all(model[0].bias.numpy() == 0) and np.abs(model[2].weight.numpy()).max() <= math.sqrt(6 / 10)


# --------------------------------------------------------------------------------------------------
# nn.utils
# --------------------------------------------------------------------------------------------------


def test_parameters_to_vector_and_back():
    torch = pytest.importorskip("torch")
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    vec = nn.utils.parameters_to_vector(model.parameters())
    theirs = torch.nn.utils.parameters_to_vector([torch.tensor(p.numpy()) for p in model.parameters()])
    close(vec, theirs, 0)
    vec.sum().backward()  # differentiable, as PyTorch's
    assert all(np.all(p.grad.numpy() == 1) for p in model.parameters())
    nn.utils.vector_to_parameters(tg.arange(13).astype(np.float32), model.parameters())
    assert np.array_equal(model[0].weight.numpy().ravel(), np.arange(6)) and float(model[1].bias.numpy()[0]) == 12
    with pytest.raises(tg.OpError, match="13 elements"):
        nn.utils.vector_to_parameters(tg.zeros(12), model.parameters())
