"""tinygrad_rnn.viz: the tape as DOT text (nodes, names, edges, gradients, folding) and its rendering."""

from __future__ import annotations

import re
import shutil
import sys

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import nn
from tinygrad_rnn.viz import render, to_dot

NODE = re.compile(r'^\s*(\w+) \[label="((?:[^"\\]|\\.)*)"', re.MULTILINE)
EDGE = re.compile(r'^\s*(\w+) -> (\w+)(?: \[label="((?:[^"\\]|\\.)*)")?', re.MULTILINE)


def parse(dot: str) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    """The nodes (id -> label, with real newlines) and edges (src, dst, label) of to_dot's text."""
    nodes = {m[1]: m[2].replace("\\n", "\n") for m in NODE.finditer(dot)}
    edges = [(m[1], m[2], m[3] or "") for m in EDGE.finditer(dot)]
    return nodes, edges


def by_label(nodes: dict[str, str], first_line: str) -> list[str]:
    return [k for k, v in nodes.items() if v.split("\n")[0] == first_line]


def test_small_graph_nodes_edges_and_direction() -> None:
    a = tg.tensor(np.ones((2, 3)), requires_grad=True)
    b = tg.tensor(np.ones((3, 4)))
    c = tg.tensor(np.zeros(4), requires_grad=True)
    y = (a @ b + c).tanh().sum()
    nodes, edges = parse(to_dot(y, names={"a": a, "c": c}))
    assert nodes["op0"] == "matmul\n(2, 4) float64"
    assert nodes["op1"] == "add\n(2, 4) float64"
    assert nodes["op2"] == "tanh\n(2, 4) float64"
    assert nodes["op3"] == "sum\n() float64"
    [la], [lc], [lb] = by_label(nodes, "a"), by_label(nodes, "c"), by_label(nodes, "input")
    assert nodes[lb] == "input\n(3, 4) float64"
    # data flows from the inputs to the ops that use them, and on to the output
    assert {(s, d) for s, d, _ in edges} == {(la, "op0"), (lb, "op0"), ("op0", "op1"), (lc, "op1"),
                                              ("op1", "op2"), ("op2", "op3")}
    assert "fillcolor=\"#fef3c7\"" in next(line for line in to_dot(y).splitlines() if line.startswith("  op3 "))


def test_reuse_is_one_edge_with_a_count_and_constants_show_their_value() -> None:
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    nodes, edges = parse(to_dot((x * x * 0.5).sum()))
    [leaf] = by_label(nodes, "leaf")
    assert (leaf, "op0", "×2") in edges
    [const] = [k for k, v in nodes.items() if v.startswith("const 0.5")]
    assert (const, "op1", "") in edges


def test_module_names_leaves_and_multi_output_edges() -> None:
    tg.manual_seed(0)
    cell = nn.LSTMCell(3, 4)
    h, c = cell(tg.randn(2, 3))
    nodes, edges = parse(to_dot((h, c), module=cell))
    names = {v.split("\n")[0] for v in nodes.values()}
    assert {"weight_ih", "weight_hh", "bias_ih", "bias_hh"} <= names
    assert nodes[by_label(nodes, "weight_hh")[0]] == "weight_hh\n(16, 4) float32"
    [gates] = [k for k, v in nodes.items() if v == "split\n3 outputs"]
    assert sorted(label for s, _, label in edges if s == gates) == ["[0]", "[1]", "[2]"]
    # a mapping of names works as well as a Module
    nodes2, _ = parse(to_dot(h, module=dict(cell.named_parameters())))
    assert by_label(nodes2, "weight_ih")


def test_show_grads_after_backward_with_retain_graph() -> None:
    x = tg.tensor([3.0, 4.0], requires_grad=True)
    y = x * x
    y.retain_grad()
    loss = y.sum()
    assert "grad" not in to_dot(loss, show_grads=True).replace("grad None", "")
    loss.backward(retain_graph=True)
    nodes, _ = parse(to_dot(loss, names={"x": x}, show_grads=True))
    [lx] = by_label(nodes, "x")
    norm = np.linalg.norm([6.0, 8.0])  # d(sum x²)/dx = 2x
    assert nodes[lx] == f"x\n(2,) float32\ngrad (2,) ‖·‖={norm:.3g}"
    assert nodes["op0"].endswith("grad (2,) ‖·‖=1.41")  # y retained its gradient, ones: norm √2


def test_released_graph_raises_a_clear_error() -> None:
    x = tg.tensor([1.0], requires_grad=True)
    loss = (x * 2).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        to_dot(loss)


def test_bad_arguments() -> None:
    x = tg.tensor([1.0], requires_grad=True)
    with pytest.raises(TypeError, match="Tensor"):
        to_dot(np.ones(2))
    with pytest.raises(TypeError, match="names"):
        to_dot(x * 2, names={"x": np.ones(1)})
    with pytest.raises(ValueError, match="rankdir"):
        to_dot(x * 2, rankdir="up")


def test_a_leaf_alone_is_one_node() -> None:
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    nodes, edges = parse(to_dot(x, names={"x": x}))
    assert list(nodes.values()) == ["x\n(2,) float32"] and edges == []


def test_a_10000_op_chain_without_recursion() -> None:
    x = tg.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    limit = sys.getrecursionlimit()
    assert limit < 10_000  # a recursive walk would fail here
    nodes, edges = parse(to_dot(y, collapse=False))
    assert len(by_label(nodes, "mul")) == 10_000
    assert len(edges) == 20_000
    # folded: the one op of the repeated step, its constant, and the recurrence
    dot = to_dot(y)  # more than AUTO_COLLAPSE_OPS ops: folded by default
    nodes, edges = parse(dot)
    assert "one time step, × 10000" in dot
    assert len(by_label(nodes, "mul")) == 1
    [op] = by_label(nodes, "mul")
    assert (op, op, "t−1 → t") in edges


def test_lstm_layer_folds_to_the_eleven_ops_of_one_step() -> None:
    tg.manual_seed(0)
    lstm = nn.LSTM(3, 4)
    out, _ = lstm(tg.randn(20, 2, 3))
    dot = to_dot(out.sum(), module=lstm, collapse=True)
    nodes, edges = parse(dot)
    cluster = dot[dot.index("subgraph cluster_step0"):dot.index("  }\n")]
    assert "one time step, × 20" in cluster
    inside = [line.split()[0] for line in cluster.splitlines() if line.strip().startswith("op")]
    assert [nodes[k].split("\n")[0] for k in inside] == [
        "addmm", "split", "sigmoid", "split", "mul", "tanh", "mul", "add", "sigmoid", "tanh", "mul"]
    recurrent = [(s, d) for s, d, label in edges if label == "t−1 → t"]
    assert len(recurrent) == 2  # h_{t-1} into the step's addmm, c_{t-1} into f ⊙ c
    assert any(label == "[0…19], one per step" for _, _, label in edges)  # the unbind's per-step slices
    [w_hh] = by_label(nodes, "weight_hh_l0")
    [perm] = [d for s, d, _ in edges if s == w_hh]
    assert any(s == perm and label == "×20" for s, _, label in edges)  # W_hhᵀ feeds every step
    # and nothing is folded when told not to: 20 steps of 11 ops
    full, _ = parse(to_dot(out.sum(), module=lstm, collapse=False))
    assert len(by_label(full, "addmm")) == 1 + 20


def test_only_identically_wired_steps_are_folded() -> None:
    # mul(h, w) and mul(w, h) look alike (same op, shape) but are wired differently: the steps are pairs
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    w = tg.tensor([0.5, 0.5], requires_grad=True)
    h = x
    for t in range(6):
        h = h * w if t % 2 == 0 else w * h
    dot = to_dot(h, names={"x": x, "w": w}, collapse=True)
    assert "one time step, × 3" in dot
    nodes, edges = parse(dot)
    assert len(by_label(nodes, "mul")) == 2
    [lw] = by_label(nodes, "w")
    assert sorted(label for s, _, label in edges if s == lw) == ["×3", "×3"]


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot program is not installed")
def test_render_svg_and_png(tmp_path) -> None:
    pytest.importorskip("graphviz")
    tg.manual_seed(0)
    gru = nn.GRU(2, 3, bidirectional=True)
    out, _ = gru(tg.randn(8, 1, 2), lengths=[5])
    svg = render(out.sum(), tmp_path / "g.svg", module=gru, collapse=True)
    assert svg == str(tmp_path / "g.svg")
    text = (tmp_path / "g.svg").read_text()
    assert "<svg" in text and "weight_hh_l0_reverse" in text
    render(to_dot(out.sum()), tmp_path / "g.png", format="png")
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_render_says_how_to_get_graphviz(tmp_path, monkeypatch) -> None:
    dot = to_dot(tg.tensor([1.0], requires_grad=True) * 2)
    monkeypatch.setitem(sys.modules, "graphviz", None)  # the Python package missing
    with pytest.raises(ImportError, match=r"tinygrad_rnn\[viz\]"):
        render(dot, tmp_path / "g.svg")
    monkeypatch.delitem(sys.modules, "graphviz")
    pytest.importorskip("graphviz")
    monkeypatch.setenv("PATH", str(tmp_path))  # the dot program missing
    with pytest.raises(RuntimeError, match="apt-get install graphviz"):
        render(dot, tmp_path / "g.svg")
    assert not (tmp_path / "g.svg").exists()


def test_steps_mode_draws_every_step_in_its_own_box() -> None:
    U = tg.tensor(np.ones((4, 3)), requires_grad=True)
    W = tg.tensor(np.eye(4), requires_grad=True)
    S = tg.tensor(np.zeros(4))
    for _ in range(3):  # the article's S_t = U I_t + W S_{t-1}
        S = U @ tg.tensor(np.ones(3)) + W @ S
    dot = to_dot(S, names={"U": U, "W": W}, collapse="steps")
    for t in (1, 2, 3):
        assert f'label="step {t} of 3"' in dot
    nodes, edges = parse(dot)
    assert len(by_label(nodes, "matmul")) == 6 and len(by_label(nodes, "input")) == 4  # I_1..I_3 and S_0
    assert not any("t−1" in label for _, _, label in edges)  # nothing folded, nothing merged
    with pytest.raises(ValueError, match="collapse"):
        to_dot(S, collapse="yes")
