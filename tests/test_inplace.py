"""In-place ops with PyTorch's safety (issue 11): item assignment through views, the trailing-underscore
methods, the leaf rule, and the version counter that makes backward() refuse values changed after saving."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_rnn as tg


def test_item_assignment_through_views_writes_the_original():
    x = tg.zeros(3, 4)
    x[0][1] = 5.0
    x[1, 2] = 7
    x[2] = tg.tensor([1.0, 2.0, 3.0, 4.0])
    x[:, 3] = 9.0
    ref = np.zeros((3, 4), dtype=np.float32)
    ref[0][1], ref[1, 2], ref[2] = 5.0, 7, [1.0, 2.0, 3.0, 4.0]
    ref[:, 3] = 9.0
    np.testing.assert_array_equal(x.numpy(), ref)
    x[tg.tensor([0, 2]), 0] = -1.0
    assert x[0, 0].item() == -1.0 and x[2, 0].item() == -1.0 and x[1, 0].item() == 0.0
    row = x[1]
    row.zero_()
    assert x[1].abs().sum().item() == 0.0  # basic indexing shares memory, as torch's views do


def test_inplace_methods_match_pytorch():
    torch = pytest.importorskip("torch")
    a = np.array([[1.0, -2.0, 3.0], [0.5, 4.0, -1.5]])
    b = np.array([2.0, -1.0, 0.5])
    steps = [
        lambda m, t: t.add_(m.tensor(b), alpha=-0.5),
        lambda m, t: t.sub_(m.tensor(b)),
        lambda m, t: t.mul_(m.tensor(b)),
        lambda m, t: t.div_(2.0),
        lambda m, t: t.clamp_(-1.0, 2.5),
        lambda m, t: t.addcmul_(m.tensor(b), m.tensor(b), value=0.1),
        lambda m, t: t.addcdiv_(m.tensor(b), m.tensor(b) + 3, value=2),
        lambda m, t: t.pow_(2),
        lambda m, t: t.neg_(),
        lambda m, t: t.masked_fill_(t > -1, 0.25),
        lambda m, t: t.unsqueeze_(0),
        lambda m, t: t.squeeze_(0),
        lambda m, t: t.copy_(m.tensor(b)),
        lambda m, t: t.fill_(3.0),
        lambda m, t: t.zero_(),
    ]
    ours, ref = tg.tensor(a), torch.tensor(a)
    for i, step in enumerate(steps):
        assert step(tg, ours) is ours and step(torch, ref) is ref
        assert tuple(ours.shape) == tuple(ref.shape)
        np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-14, err_msg=str(i))
    assert ours._version == ref._version  # unsqueeze_/squeeze_ change the shape, not the values


def test_augmented_assignment():
    x = tg.ones(3)
    alias = x
    x += 2
    x *= tg.tensor([1.0, 2.0, 3.0])
    x -= 1
    x /= 2
    assert x is alias and x.tolist() == [1.0, 2.5, 4.0] and x._version == 4
    w = tg.ones(2, requires_grad=True)
    total = 0
    for k in range(3):  # the everyday `loss += ...` on tensors on the tape: the out-of-place sum
        total += (w * k).sum()
    total.backward()
    assert w.grad.tolist() == [3.0, 3.0]
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
        w += 1
    with tg.no_grad():
        w -= 0.5
    assert w.tolist() == [0.5, 0.5] and w.requires_grad


def test_leaf_rule_and_no_grad():
    w = tg.ones(2, requires_grad=True)
    for op in (lambda: w.add_(1), lambda: w.zero_(), lambda: w.fill_(2), lambda: w.copy_(tg.zeros(2)),
               lambda: w.mul_(2), lambda: w.uniform_(), lambda: w.normal_(), lambda: w.__setitem__(0, 1.0)):
        with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
            op()
    h = w * 2
    with pytest.raises(RuntimeError, match="recorded on the tape"):
        h.add_(1)
    with pytest.raises(RuntimeError, match="operand requires grad"):
        tg.zeros(2).add_(w)
    with tg.no_grad():
        w.add_(1)
        w[0] = 5.0
    assert w.tolist() == [5.0, 2.0]
    w.data.mul_(2)  # .data is untracked: allowed outside no_grad, as in PyTorch
    assert w.tolist() == [10.0, 4.0]
    p = tg.ones(3, requires_grad=True)
    p.data.add_(tg.ones(3), alpha=-0.1)  # the classic hand-written SGD step
    np.testing.assert_allclose(p.numpy(), 0.9, rtol=1e-7)


def test_random_fills_use_the_seeded_generator():
    t = tg.zeros(1000, dtype=tg.float64)
    tg.manual_seed(5)
    t.uniform_(-2.0, 3.0)
    assert -2.0 <= t.min().item() and t.max().item() < 3.0 and abs(t.mean().item() - 0.5) < 0.15
    first = t.numpy().copy()
    tg.manual_seed(5)
    np.testing.assert_array_equal(t.uniform_(-2.0, 3.0).numpy(), first)
    t.normal_(1.0, 0.5)
    assert abs(t.mean().item() - 1.0) < 0.1 and abs(t.std().item() - 0.5) < 0.05


def test_errors_name_the_op():
    x = tg.zeros(2, 3)
    with pytest.raises(tg.OpError, match="add_"):
        x.add_(tg.ones(4))
    with pytest.raises(tg.OpError, match="read-only view"):
        tg.zeros(3).expand(2, 3).zero_()
    with pytest.raises(tg.OpError, match="div_"):
        tg.tensor([1, 2]).div_(2)  # an integer tensor cannot hold the quotient (PyTorch raises too)


# ------------------------------------------------------------------ the version counter
def test_optimizer_step_before_backward_raises_naming_the_op():
    """The issue's example: loss = (w*w).sum(); opt.step(); loss.backward() must raise, not differentiate at
    the updated w."""
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    opt = tg.optim.SGD([w], lr=0.1)
    loss = (w * w).sum()
    w.grad = tg.ones(2)
    opt.step()
    with pytest.raises(RuntimeError,
                       match=r"mul: an input saved for backward was modified in place \(version 0 -> 1\)"):
        loss.backward()


def test_version_counter_counts_changes_of_the_storage():
    torch = pytest.importorskip("torch")
    ours, ref = tg.zeros(2, 3), torch.zeros(2, 3)
    for _, t in ((tg, ours), (torch, ref)):
        t.add_(1)
        t[0].mul_(2)  # through a view: the same storage
        t.detach().zero_()  # a detached tensor shares the counter too
        t[1, 1] = 5.0
    assert ours._version == ref._version == 4
    assert ours[0]._version == 4  # a view shares its base's counter


@pytest.mark.parametrize("case", ["exp_output", "matmul_weight", "view_of_input", "setitem"])
def test_backward_detects_saved_values_changed_in_place(case):
    torch = pytest.importorskip("torch")
    for m in (tg, torch):
        w = m.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
        x = m.tensor([[0.5, -1.0], [2.0, 0.25]])
        if case == "exp_output":
            y = w.exp()
            with m.no_grad():
                y.mul_(2)
            loss = y.sum()
        elif case == "matmul_weight":
            loss = (x.requires_grad_() @ w).sum()  # (w is needed for x's gradient)
            with m.no_grad():
                w.sub_(0.1)
        elif case == "view_of_input":
            loss = (w * x).sum()
            x[0].zero_()
        else:
            loss = (w * x).sum()
            x[1, 1] = 3.0
        with pytest.raises(RuntimeError, match="modified"):
            loss.backward()


def test_writes_through_data_and_detach_are_counted_too():
    """Stricter than PyTorch on purpose: its `.data` has a counter of its own, so a write through it before
    backward() silently changes the gradient there; here the storage's counter sees every write."""
    for alias in (lambda t: t.data, lambda t: t.detach()):
        w = tg.tensor([1.0, 2.0], requires_grad=True)
        loss = (w * w).sum()
        alias(w).mul_(0.5)
        with pytest.raises(RuntimeError, match=r"mul: an input saved for backward was modified in place"):
            loss.backward()


def test_changes_that_backward_does_not_need_are_allowed():
    torch = pytest.importorskip("torch")
    for m in (tg, torch):
        w = m.tensor([1.0, 2.0], requires_grad=True)
        x = m.tensor([3.0, 4.0])
        loss = (w + x).sum()  # add saves nothing
        x.zero_()
        loss.backward()
        assert w.grad.tolist() == [1.0, 1.0]
        w.grad = None
        loss = (w * x.clone()).sum()  # a copy was saved
        x.fill_(7.0)
        loss.backward()
        assert w.grad.tolist() == [0.0, 0.0]


def test_training_loop_order_works():
    """The usual order (backward, then step) never trips the check, over many steps."""
    tg.manual_seed(0)
    model = tg.nn.Linear(3, 1)
    opt = tg.optim.Adam(model.parameters(), lr=0.01)
    x = tg.randn(8, 3)
    for _ in range(5):
        opt.zero_grad()
        loss = (model(x) ** 2).mean()
        loss.backward()
        opt.step()
    assert all(p._version == 5 for p in model.parameters())
