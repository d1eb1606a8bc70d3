"""The backward contract (issue 12): the engine tells an op which inputs need a gradient
(``needs_input_grad``) and checks what ``backward`` returns — one gradient (or None) per input, a backend
array, summable back to its input's shape — raising an error that names the op otherwise."""

from __future__ import annotations

import ast
import inspect

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import Function, ops


class Scale(Function):
    """a * b for two inputs; its backward is replaced per test by ``returns``."""

    returns = None

    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, g):
        return type(self).returns(self, g)


def run(returns, a_shape=(2, 3), b_shape=(2, 3), b_grad=True):
    cls = type("Scale", (Scale,), {"returns": staticmethod(returns)})
    a = tg.tensor(np.ones(a_shape), requires_grad=True)
    b = tg.tensor(np.full(b_shape, 2.0), requires_grad=b_grad)
    cls.apply(a, b).sum().backward()
    return a, b


def test_too_few_gradients_names_the_op_and_the_counts():
    with pytest.raises(RuntimeError, match=r"^scale: backward returned 1 gradient\(s\), expected 2"):
        run(lambda fn, g: g * fn.b)


def test_too_many_gradients_names_the_op_and_the_counts():
    with pytest.raises(RuntimeError, match=r"^scale: backward returned 3 gradient\(s\), expected 2"):
        run(lambda fn, g: (g * fn.b, g * fn.a, g))


def test_wrong_shape_names_the_op_the_input_and_both_shapes():
    with pytest.raises(RuntimeError, match=r"^scale: backward .* shape \(3, 2\) for input 1 of shape \(2, 3\)"):
        run(lambda fn, g: (g * fn.b, (g * fn.a).T))
    # (6,) could be reshaped to (2, 3) but is no broadcast of it: refused too, not silently reshaped
    with pytest.raises(RuntimeError, match=r"shape \(6,\) for input 0 of shape \(2, 3\)"):
        run(lambda fn, g: ((g * fn.b).reshape(6), g * fn.a))


def test_non_array_gradient_is_refused():
    with pytest.raises(RuntimeError, match=r"^scale: backward returned a float as the gradient of input 0"):
        run(lambda fn, g: (1.0, g * fn.a))
    with pytest.raises(RuntimeError, match=r"returned a list as the gradient of input 1"):
        run(lambda fn, g: (g * fn.b, (g * fn.a).tolist()))
    with pytest.raises(RuntimeError, match=r"returned a Tensor as the gradient of input 0"):
        run(lambda fn, g: (tg.tensor(g * fn.b), g * fn.a))


def test_a_correct_backward_passes_with_broadcast_and_none():
    # a broadcast gradient is summed back; None for an input that needs none
    a, b = run(lambda fn, g: (g * fn.b, None), b_grad=False)
    np.testing.assert_array_equal(a.grad.numpy(), np.full((2, 3), 2.0))
    a, b = run(lambda fn, g: (g * fn.b, g * fn.a), a_shape=(1, 3))
    np.testing.assert_array_equal(a.grad.numpy(), np.full((1, 3), 4.0))
    np.testing.assert_array_equal(b.grad.numpy(), np.ones((2, 3)))
    a, b = run(lambda fn, g: [g * fn.b, g * fn.a])  # a list works as a tuple
    np.testing.assert_array_equal(b.grad.numpy(), np.ones((2, 3)))


def test_needs_input_grad_is_set_before_backward():
    seen = []

    class Probe(Function):
        def forward(self, a, b, c):
            return a + b + c

        def backward(self, g):
            seen.append(self.needs_input_grad)
            return tuple(g if need else None for need in self.needs_input_grad)

    x = tg.tensor(np.ones(3), requires_grad=True)
    y = tg.tensor(np.ones(3))
    z = tg.tensor(np.ones(3), requires_grad=True) * 2  # an input with history
    Probe.apply(x, y, z).sum().backward()
    assert seen == [(True, False, True)]
    assert y.grad is None and x.grad is not None


def test_ops_never_read_the_graph():
    """No op's backward reads ``parents``: the engine's ``needs_input_grad`` is the only interface."""
    tree = ast.parse(inspect.getsource(ops))
    reads = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Attribute) and node.attr == "parents"]
    assert reads == []
