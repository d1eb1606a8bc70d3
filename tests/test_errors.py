"""Clear errors (DESIGN §9) and anomaly mode: each test asserts what the message says, not only its type."""

from __future__ import annotations

import inspect
import os
import re

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import functional as F
from tinygrad_rnn import ops
from tinygrad_rnn.tensor import Tensor

THIS_FILE = os.path.basename(__file__)


def on(device, values, requires_grad=False, dtype=np.float64):
    return Tensor(np.asarray(values, dtype=dtype), requires_grad=requires_grad, device=device)


def message(excinfo) -> str:
    return str(excinfo.value)


# --------------------------------------------------------------------------------------------------
# Shapes
# --------------------------------------------------------------------------------------------------


def test_matmul_shape_mismatch_names_the_op_and_both_shapes(device):
    a, b = on(device, np.ones((2, 3))), on(device, np.ones((4, 5)))
    with pytest.raises(tg.OpError) as info:
        a @ b
    assert message(info).startswith("matmul:")
    assert "(2, 3)" in message(info) and "(4, 5)" in message(info)
    with pytest.raises(tg.OpError, match=r"matmul.*\(3,\).*\(2,\)"):
        on(device, np.ones(3)) @ on(device, np.ones(2))
    with pytest.raises(tg.OpError, match=r"matmul.*at least 1 dimension"):
        on(device, 1.0) @ on(device, np.ones(2))


def test_addmm_shape_errors_name_the_op_and_the_shapes(device):
    a, b = on(device, np.ones((2, 3))), on(device, np.ones((3, 4)))
    with pytest.raises(tg.OpError,
                       match=r"^addmm: addmm needs a \(n, k\) and b \(k, m\), got shapes \(2, 3\) and \(2, 4\)"):
        tg.addmm(0.0, a, on(device, np.ones((2, 4))))
    with pytest.raises(tg.OpError, match=r"addmm needs .* got shapes \(3,\) and \(3, 4\)"):
        tg.addmm(0.0, on(device, np.ones(3)), b)
    for shape_c in [(3,), (3, 4), (2, 2, 4)]:  # (3,): wrong m; (3, 4): wrong n; rank 3: bigger than (n, m)
        for dtype in (np.float64, np.float32):  # in place, and promoted
            c = on(device, np.ones(shape_c), dtype=dtype)
            with pytest.raises(tg.OpError, match=r"c of shape .* does not broadcast to \(n, m\) = \(2, 4\)"):
                tg.addmm(c, a, b)


@pytest.mark.parametrize("name, op", [("add", lambda a, b: a + b), ("sub", lambda a, b: a - b),
                                      ("mul", lambda a, b: a * b), ("div", lambda a, b: a / b),
                                      ("where", lambda a, b: tg.where(np.ones((2, 3), bool), a, b))])
def test_broadcast_mismatch_names_the_op_and_both_shapes(device, name, op):
    a, b = on(device, np.ones((2, 3))), on(device, np.ones(4))
    with pytest.raises(tg.OpError) as info:
        op(a, b)
    assert message(info).startswith(f"{name}:")
    assert "(2, 3)" in message(info) and "(4,)" in message(info)
    assert "broadcast" in message(info)


def test_shape_op_errors(device):
    t = on(device, np.ones((2, 3)))
    with pytest.raises(tg.OpError, match=r"reshape.*size 6.*\(4,\)"):
        t.reshape(4)
    assert t.squeeze(1).shape == (2, 3)  # PyTorch's squeeze(dim) leaves an axis of another size alone
    with pytest.raises(tg.OpError, match=r"split: sizes \[1, 1\] sum to 2, but axis 1 of \(2, 3\) has 3"):
        t.split([1, 1], axis=1)
    with pytest.raises(tg.OpError, match=r"sum: dim 2 is out of range for a tensor with 2 dimension"):
        t.sum(axis=2)
    with pytest.raises(tg.OpError, match=r"expand.*\(2, 3\).*"):
        t.expand(4, 3)
    with pytest.raises(tg.OpError, match=r"permute.*repeats an axis"):
        t.permute(0, 0)
    with pytest.raises(tg.OpError, match=r"concat.*input 0: shape \(2, 3\).*input 1: shape \(2, 2\)"):
        tg.concat([t, on(device, np.ones((2, 2)))])
    with pytest.raises(tg.OpError, match=r"stack.*same shape.*\(2, 3\).*\(3, 2\)"):
        tg.stack([t, on(device, np.ones((3, 2)))])
    with pytest.raises(tg.OpError, match="clip: at least one of min and max"):
        t.clip()
    with pytest.raises(tg.OpError, match=r"mse_loss: input \(2, 3\) and target \(3,\)"):
        F.mse_loss(t, np.ones(3))


def test_cross_entropy_errors(device):
    logits = on(device, np.zeros((2, 3)))
    with pytest.raises(tg.OpError, match=r"target values must lie in \[0, 3\).*\[0, 3\]"):
        F.cross_entropy(logits, np.array([0, 3]))
    with pytest.raises(tg.OpError, match=r"expected input \(N, C\) and target \(N,\).*\(2, 3\).*\(3,\)"):
        F.cross_entropy(logits, np.array([0, 1, 2]))
    with pytest.raises(tg.OpError, match="integer class indices, got dtype float64"):
        F.cross_entropy(logits, np.array([0.0, 1.0]))


# --------------------------------------------------------------------------------------------------
# Indexing
# --------------------------------------------------------------------------------------------------


def test_indexing_out_of_range(device):
    t = on(device, np.arange(6.0).reshape(2, 3))
    with pytest.raises(tg.OpError, match=r"getitem: index 5 is out of bounds for axis 0 with size 2"):
        t[5]
    with pytest.raises(tg.OpError, match=r"getitem: index -4 is out of bounds for axis 1 with size 3"):
        t[:, -4]
    with pytest.raises(tg.OpError, match=r"getitem: index 3 is out of bounds for axis 1 with size 3"):
        t[:, np.array([0, 3])]
    with pytest.raises(tg.OpError, match=r"input 0: shape \(2, 3\) float64"):
        t[[0, 2]]
    with pytest.raises(tg.OpError, match=r"embedding: indices must lie in \[0, 2\).*\(2, 3\).*\[-1, 1\]"):
        tg.embedding(np.array([1, -1]), t)
    with pytest.raises(tg.OpError, match="embedding: indices must be integers, got dtype float64"):
        tg.embedding(np.array([0.0]), t)


# --------------------------------------------------------------------------------------------------
# dtypes and gradients
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_])
def test_integer_tensors_cannot_require_grad(device, dtype):
    with pytest.raises(TypeError, match=f"only floating-point tensors can require gradients, got dtype "
                                        f"{np.dtype(dtype).name}"):
        Tensor(np.array([1, 0], dtype=dtype), requires_grad=True, device=device)
    t = Tensor(np.array([1, 0], dtype=dtype), device=device)
    with pytest.raises(TypeError, match=r"convert first, e\.g\. t\.float\(\)"):
        t.requires_grad_()
    t.float().requires_grad_()  # the suggested fix works


def test_python_ints_are_int64_and_cannot_require_grad(device):
    with pytest.raises(TypeError, match="int64"):
        tg.tensor([1, 2], requires_grad=True, device=device)


def test_backward_errors_say_what_to_do(device):
    x = on(device, [1.0, 2.0], requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match=r"non-scalar tensor of shape \(2,\) needs `grad`"):
        y.backward()
    loss = y.sum()
    loss.backward()
    with pytest.raises(RuntimeError, match=r"already released.*retain_graph=True"):
        loss.backward()
    with pytest.raises(RuntimeError, match="does not require grad"):
        on(device, [1.0]).backward()


# --------------------------------------------------------------------------------------------------
# Devices
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["tpu", "gpu", "cuda:x", "cuda:-1", "", "cpu0"])
def test_unknown_device_strings(device, bad):
    expected = re.escape(f"unknown device {bad!r}") + ".*'cpu', 'cuda'.*'cuda:N'"
    with pytest.raises(tg.DeviceError, match=expected):
        Tensor([1.0], device=bad)
    with pytest.raises(tg.DeviceError, match=expected):
        tg.zeros(2, device=bad)
    with pytest.raises(tg.DeviceError, match=expected):
        on(device, [1.0]).to(bad)


def test_device_must_be_a_string(device):
    with pytest.raises(tg.DeviceError, match=r"device must be a string like 'cpu', 'cuda' or 'cuda:0', got \[0\]"):
        Tensor([1.0], device=[0])


def test_cuda_unavailable_says_why(device):
    if tg.cuda_is_available():
        with pytest.raises(tg.DeviceError, match=r"'cuda:99' does not exist: \d+ CUDA GPU\(s\) visible"):
            Tensor([1.0], device="cuda:99")
        return
    for make in [lambda: Tensor([1.0], device="cuda"), lambda: tg.zeros(2, device="cuda:0"),
                 lambda: on(device, [1.0]).to("cuda"), lambda: tg.randn(2, device="cuda"),
                 lambda: on(device, [1.0]).cuda()]:
        with pytest.raises(tg.DeviceError) as info:
            make()
        assert "was requested but CUDA/CuPy is unavailable" in message(info)
        assert "CuPy" in message(info) and "pip install" in message(info)


def test_mixing_devices_names_both(device, monkeypatch):
    a = on(device, np.ones(3))
    if device == "cpu":
        # With no GPU no tensor can live elsewhere. Exercise the path a real mix takes: one input reports
        # another device and the backend refuses the foreign array with a TypeError, as CuPy does.
        b = on(device, np.ones(3))
        real_device = Tensor.device
        monkeypatch.setattr(Tensor, "device", property(lambda t: "cuda:0" if t is b else real_device.fget(t)))

        def refuse(self, x, y):
            raise TypeError("Unsupported type <class 'numpy.ndarray'>")

        monkeypatch.setattr(ops.Add, "forward", refuse)
        with pytest.raises(tg.OpError) as info:
            a + b
        assert message(info).startswith("add: inputs are on different devices")
        assert "on cpu" in message(info) and "on cuda:0" in message(info) and ".to(device)" in message(info)
        return
    b = on("cpu", np.ones(3))
    for name, op in [("add", lambda: a + b), ("mul", lambda: b * a), ("matmul", lambda: a @ b)]:
        with pytest.raises(tg.OpError) as info:
            op()
        assert message(info).startswith(f"{name}:"), message(info)
        assert "different devices" in message(info) and "cpu" in message(info) and device in message(info)
    for name, op in [("concat", lambda: tg.concat([a, b])), ("where", lambda: tg.where([True] * 3, a, b))]:
        with pytest.raises(tg.OpError, match=f"{name}: all inputs must be on one device"):
            op()
    with pytest.raises(tg.OpError, match=r"cannot combine a numpy\.ndarray with a tensor on cuda"):
        a + np.ones(3)


# --------------------------------------------------------------------------------------------------
# Anomaly mode
# --------------------------------------------------------------------------------------------------


def next_line() -> int:
    """The line number after the caller's line."""
    return inspect.currentframe().f_back.f_lineno + 1


def test_anomaly_forward_names_the_op_and_where_it_was_created(device):
    x = on(device, [0.0, 1.0], requires_grad=True)
    with tg.detect_anomaly(), pytest.raises(FloatingPointError) as info:
        line = next_line()
        tg.log(x)
    assert "the forward of 'log' produced NaN or Inf" in message(info)
    assert f"{THIS_FILE}:{line}" in message(info), message(info)
    # a Tensor method is reported at the user's line too, not inside the package; so is an op with no tape
    with tg.detect_anomaly(), pytest.raises(FloatingPointError) as info:
        line = next_line()
        on(device, [1.0]) / on(device, [0.0])
    assert "the forward of 'div'" in message(info) and f"{THIS_FILE}:{line}" in message(info)


def test_anomaly_backward_names_the_op_and_where_it_was_created(device):
    x = on(device, [0.0, 4.0], requires_grad=True)
    with tg.detect_anomaly():
        line = next_line()
        y = x.sqrt()  # fine forward: sqrt(0) = 0
        loss = (y * 3).sum()
        with pytest.raises(FloatingPointError) as info:
            loss.backward()  # 1 / (2·sqrt(0)) = inf
    assert "the backward of 'sqrt' produced NaN or Inf" in message(info)
    assert f"{THIS_FILE}:{line}" in message(info), message(info)

    a, b = on(device, [-2.0], requires_grad=True), on(device, [3.0], requires_grad=True)
    with tg.detect_anomaly():
        line = next_line()
        y = a**b  # (-2)³ = -8 is fine; ∂b = a^b·log(a) is NaN
        with pytest.raises(FloatingPointError) as info:
            y.sum().backward()
    assert "the backward of 'pow'" in message(info) and f"{THIS_FILE}:{line}" in message(info)


def test_without_anomaly_mode_nan_and_inf_pass_silently(device):
    x = on(device, [0.0, 4.0], requires_grad=True)
    with np.errstate(divide="ignore"):
        assert tg.log(x).numpy()[0] == -np.inf
        x.sqrt().sum().backward()
    assert x.grad.numpy()[0] == np.inf


def test_anomaly_mode_has_no_false_alarms_and_is_restored(device):
    tg.manual_seed(0)
    cell = tg.nn.LSTMCell(3, 4, dtype=np.float64, device=device)
    x = on(device, np.random.default_rng(0).standard_normal((2, 3)), requires_grad=True)
    with tg.detect_anomaly():
        h, _ = cell(x)
        loss = F.cross_entropy(h, np.array([0, 3])) + tg.argmax(h).sum() * 0  # integers are not checked
        loss.backward()
    reference = cell(x)[0].numpy()
    np.testing.assert_array_equal(h.numpy(), reference)
    with pytest.raises(FloatingPointError), tg.detect_anomaly():
        tg.log(on(device, [0.0]))
    with np.errstate(divide="ignore"):
        tg.log(on(device, [0.0]))  # off again after the exception
