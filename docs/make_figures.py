"""Regenerate the tape pictures of the documentation (docs/img/*.svg) with tinygrad_rnn.viz.

    pip install -e ".[viz]"  &&  apt-get install graphviz   # the Python package and the dot program
    python docs/make_figures.py            # writes docs/img/*.svg and docs/img/*.dot

Each picture is drawn from a real run of the package: the same program gives the same DOT text (node ids
follow the order in which ops were recorded), so a changed picture means a changed tape. The figures of
the examples (vanishing gradients, sunspots) come from the examples themselves, see docs/tour/*.md.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # this checkout's tinygrad_rnn, even without an install

import tinygrad_rnn as tg
from tinygrad_rnn import nn
from tinygrad_rnn.viz import render, to_dot


def article_rnn(steps: int) -> tuple[tg.Tensor, dict[str, tg.Tensor]]:
    """The article's RNN, S_t = U I_t + W S_{t-1} + b, unrolled over ``steps`` steps (n = 3, d = 4)."""
    rng = np.random.default_rng(0)
    U = tg.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    W = tg.tensor(rng.standard_normal((4, 4)), requires_grad=True)
    b = tg.tensor(np.zeros(4), requires_grad=True)
    S = tg.tensor(np.zeros(4))  # S_0
    names = {"U": U, "W": W, "b": b, "S_0": S}
    for t in range(1, steps + 1):
        I_t = tg.tensor(rng.standard_normal(3))
        names[f"I_{t}"] = I_t
        S = U @ I_t + W @ S + b
    return S, names


def figures() -> dict[str, str]:
    """name -> DOT text of every figure."""
    out = {}
    S3, names = article_rnn(3)
    out["rnn_unrolled"] = to_dot(S3, names=names, collapse="steps", rankdir="LR")
    S12, names = article_rnn(12)
    out["rnn_rolled"] = to_dot(S12, names=names, collapse=True)

    tg.manual_seed(0)
    lstm = nn.LSTM(input_size=3, hidden_size=4)
    output, _ = lstm(tg.randn(5, 2, 3))  # T = 5 steps, batch 2
    out["lstm_step"] = to_dot(output.sum(), module=lstm, collapse=True)

    gru = nn.GRU(input_size=3, hidden_size=4)
    output, _ = gru(tg.randn(5, 2, 3))
    out["gru_step"] = to_dot(output.sum(), module=gru, collapse=True)

    a = tg.tensor([[1.0, 2.0]], requires_grad=True)
    w = tg.tensor([[0.5], [0.25]], requires_grad=True)
    y = (a @ w).tanh()
    y.retain_grad()
    loss = (y * y).sum()
    loss.backward(retain_graph=True)
    out["tape_grads"] = to_dot(loss, names={"a": a, "w": w}, show_grads=True, rankdir="LR")

    out["capture_program"] = captured_program()
    return out


# --------------------------------------------------------------------------------------------------
# The replay program of tinygrad_rnn.capture
# --------------------------------------------------------------------------------------------------


def _call_name(instr) -> str:
    fn = instr.fn
    name = getattr(fn, "__name__", None) or getattr(getattr(fn, "func", None), "__name__", type(fn).__name__)
    if name == "_generic_fwd":  # an op without a lowering: its own forward, copied into the out buffer
        return f"{instr.args[0].__name__.lower()}.forward"
    if name.startswith("_generic_bwd"):
        return "generic backward"
    if name in ("_acc_leaf", "_acc_arg"):
        return "accumulate .grad"
    return name.strip("_").removesuffix("_out")


def captured_program() -> str:
    """The flat program that ``tinygrad_rnn.capture`` replays for two steps of the article's RNN (tanh form)
    and a squared loss, drawn as DOT: one node per backend call in execution order, and an edge from the
    call that last wrote a buffer to each call that reads it.

    This reads the recorder's internals (``Captured._programs``, the instructions' ``fn``/``args``, the slots'
    ``kind``/``root()``), which are not public API: it documents today's program, and fails loudly if they
    change.
    """
    from tinygrad_rnn.capture import capture

    rng = np.random.default_rng(0)
    U = tg.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    W = tg.tensor(rng.standard_normal((4, 4)), requires_grad=True)

    @capture
    def train_step(I):  # S_t = tanh(U I_t + W S_{t-1}), L = ‖S_2‖²
        S = tg.zeros(4, 1, dtype=np.float64)
        for t in range(2):
            S = (U @ I[t] + W @ S).tanh()
        loss = (S * S).sum()
        loss.backward()
        return loss

    I = tg.tensor(rng.standard_normal((2, 3, 1)))
    train_step(I)  # records
    train_step(I)  # replays
    [program] = list(train_step._programs.values())
    names = {id(U): "U", id(W): "W"}
    lines = ["digraph program {",
             '  graph [rankdir=TB, fontname="Helvetica", fontsize=11, nodesep=0.2, ranksep=0.25];',
             '  node [fontname="Helvetica", fontsize=10, height=0.3, shape=box, style="rounded"];',
             '  edge [fontname="Helvetica", fontsize=9, arrowsize=0.6];']
    writer: dict[int, str] = {}  # root slot id -> the node that last wrote it
    inputs: dict[int, str] = {}

    def source(slot) -> str | None:
        root = slot.root()
        if root.kind == "buf":
            return writer.get(root.id)
        if root.kind in ("param", "arg"):
            if root.id not in inputs:
                label = names.get(id(root.ref), "leaf") if root.kind == "param" else "argument I"
                node = f"in{len(inputs)}"
                inputs[root.id] = node
                lines.append(f'  {node} [label="{label}\\n{root.shape}", style="filled", fillcolor="#dbeafe"];')
            return inputs[root.id]
        return None  # a constant made at the recording

    for i, instr in enumerate(program.instrs):
        slots = [a for a in instr.args if type(a).__name__ == "_Slot"]
        name = _call_name(instr)
        node = f"call{i}"
        out = slots[-1] if slots and name != "accumulate .grad" else None
        shape = f"\\n→ {out.shape}" if out is not None else ""
        lines.append(f'  {node} [label="{i}: {name}{shape}"];')
        reads: dict[str, int] = {}
        for s in (slots[:-1] if out is not None else slots):
            src = source(s)
            if src is not None:
                reads[src] = reads.get(src, 0) + 1
        for src, count in reads.items():
            lines.append(f"  {src} -> {node}" + (f' [label="×{count}"]' if count > 1 else "") + ";")
        if name == "accumulate .grad":
            target = next(a for a in instr.args if isinstance(a, tg.Tensor))
            lines.append(f'  grad{i} [label="{names.get(id(target), "leaf")}.grad", style="filled", '
                         'fillcolor="#fef3c7"];')
            lines.append(f"  {node} -> grad{i};")
        if out is not None:
            writer[out.root().id] = node
        if i:
            lines.append(f'  call{i - 1} -> {node} [style=invis, weight=10];')  # keep execution order
    lines.append("}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(HERE, "img"), help="folder for the .svg and .dot files")
    parser.add_argument("--format", default="svg", help="svg (default) or png")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name, dot in figures().items():
        with open(os.path.join(args.out, f"{name}.dot"), "w", encoding="utf-8") as f:
            f.write(dot)
        path = render(dot, os.path.join(args.out, f"{name}.{args.format}"), format=args.format)
        print(path)


if __name__ == "__main__":
    main()
